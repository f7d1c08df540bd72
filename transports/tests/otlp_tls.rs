//! The OTLP receivers over TLS, against an independent client (rustls through tokio-rustls, hyper
//! on tokio) with certificates made per test: gRPC negotiates `h2` by ALPN, HTTP/1.1 and HTTP/2
//! both work on the HTTP port, plain HTTP on a TLS port is answered 400 and counted, mutual TLS
//! refuses clients without the right certificate, a client that never finishes its handshake is
//! dropped at the header timeout while others are served, certificates reload, and certificate
//! files that cannot be used are refused naming the key and the file.

mod common;

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tls::{client, server_tls, tls_request};
use common::*;
use spanpipe_codecs::CodecRegistry;
use spanpipe_config::{ComponentConfig, GoDuration};
use spanpipe_testkit::tls::{Pki, TestCa};
use spanpipe_transports::otlp::{OtlpReceiver, OtlpReceiverConfig, ReceiverError};
use spanpipe_transports::tls::{TlsProblem, TlsServerConfig};

/// Both protocols with TLS (and short timeouts, from `test_config`).
fn tls_receiver(tls: &TlsServerConfig) -> OtlpReceiverConfig {
    let mut config = test_config();
    for protocol_tls in
        [&mut config.protocols.grpc.as_mut().unwrap().tls, &mut config.protocols.http.as_mut().unwrap().tls]
    {
        *protocol_tls = Some(tls.clone());
    }
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    config
}

#[test]
fn grpc_negotiates_h2_and_http_serves_http1_and_http2_over_tls() {
    let pki = Pki::new(&["localhost", "127.0.0.1"]);
    let server = TestServer::start_with(tls_receiver(&server_tls(&pki.server)), SinkMode::Accept);
    let ca = pki.ca.ca_file();

    // Large enough to arrive in many TLS records over several reads.
    let grpc = tls_request(server.grpc, client(&ca, None, &[b"h2"]), true, Some(EXPORT_PATH), 1500).unwrap();
    assert_eq!(grpc.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!((grpc.status, grpc.grpc_status.as_deref()), (http::StatusCode::OK, Some("0")));

    let http1 = tls_request(server.http, client(&ca, None, &[b"http/1.1"]), false, None, 7).unwrap();
    assert_eq!(http1.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(http1.status, 200);

    let offered_both = client(&ca, None, &[b"h2", b"http/1.1"]);
    let http2 = tls_request(server.http, offered_both, true, None, 11).unwrap();
    assert_eq!(http2.alpn.as_deref(), Some(&b"h2"[..]), "the server prefers HTTP/2");
    assert_eq!(http2.status, 200);

    assert_eq!(server.spans_received(), 1500 + 7 + 11, "every span arrived");
    let (grpc_stats, http_stats) = server.finish();
    assert_eq!((grpc_stats.tls_handshake_failures, http_stats.tls_handshake_failures), (0, 0));
    assert_eq!(grpc_stats.spans_accepted + http_stats.spans_accepted, 1518);
}

#[test]
fn plain_http_on_a_tls_port_is_answered_400_counted_and_does_not_disturb_tls_clients() {
    let pki = Pki::new(&["localhost", "127.0.0.1"]);
    let server = TestServer::start_with(tls_receiver(&server_tls(&pki.server)), SinkMode::Accept);
    let wait = Duration::from_secs(5);

    let answer = raw_exchange(server.http, b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n", wait);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.0 400 Bad Request"), "{answer}");
    assert!(answer.contains("HTTP request to an HTTPS server"), "{answer}");
    // gRPC without TLS (HTTP/2 prior knowledge) gets the same answer, which ends its attempt.
    let answer = raw_exchange(server.grpc, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", wait);
    assert!(answer.starts_with(b"HTTP/1.0 400"), "{}", String::from_utf8_lossy(&answer));
    // Bytes that are neither TLS nor HTTP end the connection without an answer.
    let answer = raw_exchange(server.http, b"\x16\x03\x01\x00\x05hello", wait);
    assert!(answer.is_empty() || answer[0] == 0x15, "only a TLS alert may come back: {answer:?}");

    let reply = tls_request(server.http, client(&pki.ca.ca_file(), None, &[b"http/1.1"]), false, None, 3).unwrap();
    assert_eq!(reply.status, 200);
    let (grpc_stats, http_stats) = server.finish();
    assert_eq!((grpc_stats.tls_handshake_failures, http_stats.tls_handshake_failures), (1, 2));
    assert_eq!(http_stats.spans_accepted, 3);
}

#[test]
fn mutual_tls_refuses_clients_without_a_certificate_from_the_clients_ca() {
    let pki = Pki::new(&["localhost", "127.0.0.1"]);
    let client_ca = TestCa::new(pki.path(), "clients");
    let other_ca = TestCa::new(pki.path(), "other");
    let good = client_ca.issue("good-client", &["client.test"]);
    let foreign = other_ca.issue("foreign-client", &["client.test"]);
    let tls = TlsServerConfig { client_ca_file: client_ca.ca_file().display().to_string(), ..server_tls(&pki.server) };
    let server = TestServer::start_with(tls_receiver(&tls), SinkMode::Accept);
    let ca = pki.ca.ca_file();

    // With TLS 1.3 the client may finish its side before the server refuses its certificate; the
    // refusal then ends the first exchange.
    let without = tls_request(server.grpc, client(&ca, None, &[b"h2"]), true, Some(EXPORT_PATH), 2);
    assert!(without.is_err(), "a client without a certificate was served: {without:?}");
    let with_foreign = tls_request(server.grpc, client(&ca, Some(&foreign), &[b"h2"]), true, Some(EXPORT_PATH), 2);
    assert!(with_foreign.is_err(), "a client with another CA's certificate was served: {with_foreign:?}");
    let with_good = tls_request(server.grpc, client(&ca, Some(&good), &[b"h2"]), true, Some(EXPORT_PATH), 4).unwrap();
    assert_eq!(with_good.grpc_status.as_deref(), Some("0"));

    assert_eq!(server.spans_received(), 4, "only the authenticated client's spans arrived");
    let (grpc_stats, _) = server.finish();
    assert_eq!(grpc_stats.tls_handshake_failures, 2);
}

#[test]
fn a_client_that_never_finishes_its_handshake_is_dropped_at_the_header_timeout_while_others_are_served() {
    let pki = Pki::new(&["localhost", "127.0.0.1"]);
    let server = TestServer::start_with(tls_receiver(&server_tls(&pki.server)), SinkMode::Accept);
    let address = server.grpc;
    // The first bytes of a ClientHello record, then silence.
    let stalled = std::thread::spawn(move || {
        let started = Instant::now();
        let answer = raw_exchange(address, b"\x16\x03\x01\x02\x00\x01", Duration::from_secs(10));
        (answer, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    let reply =
        tls_request(server.grpc, client(&pki.ca.ca_file(), None, &[b"h2"]), true, Some(EXPORT_PATH), 6).unwrap();
    assert_eq!(reply.grpc_status.as_deref(), Some("0"), "another client is served meanwhile");
    let (answer, closed_after) = stalled.join().unwrap();
    assert!(answer.is_empty(), "nothing is sent to a handshake that never completed: {answer:?}");
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(8),
        "closed after {closed_after:?}; the header timeout is 1s"
    );
    let (grpc_stats, _) = server.finish();
    assert_eq!(grpc_stats.tls_handshake_failures, 1);
    assert_eq!(grpc_stats.spans_accepted, 6);
}

#[test]
fn certificates_are_reloaded_after_reload_interval() {
    let pki = Pki::new(&["localhost", "127.0.0.1"]);
    let mut tls = server_tls(&pki.server);
    tls.reload_interval = Some(GoDuration::from_millis(100));
    let server = TestServer::start_with(tls_receiver(&tls), SinkMode::Accept);
    let first = tls_request(server.http, client(&pki.ca.ca_file(), None, &[b"http/1.1"]), false, None, 1);
    assert_eq!(first.unwrap().status, 200);

    // A new CA's certificate replaces the files: after the interval, only its clients succeed.
    let renewed_ca = TestCa::new(pki.path(), "renewed");
    let renewed = renewed_ca.issue("renewed", &["localhost"]);
    std::fs::write(&pki.server.cert_file, &renewed.cert_pem).unwrap();
    std::fs::write(&pki.server.key_file, &renewed.key_pem).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    let deadline = Instant::now() + Duration::from_secs(5);
    let reloaded = loop {
        let attempt = tls_request(server.http, client(&renewed_ca.ca_file(), None, &[b"http/1.1"]), false, None, 1);
        if attempt.is_ok() || Instant::now() > deadline {
            break attempt;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(reloaded.expect("the renewed certificate is served").status, 200);
    let old = tls_request(server.http, client(&pki.ca.ca_file(), None, &[b"http/1.1"]), false, None, 1);
    assert!(old.is_err(), "the old certificate is no longer served");
    drop(server);
}

/// Binds `config` on a glommio executor and returns the error.
fn bind_error(config: OtlpReceiverConfig) -> ReceiverError {
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let sink = Rc::new(TestSink::new(SinkMode::Accept, Arc::default()));
            OtlpReceiver::bind(&config, sink, &CodecRegistry::with_builtins()).expect_err("binding fails")
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn unusable_certificate_files_are_refused_naming_the_key_and_the_file() {
    let pki = Pki::new(&["localhost", "127.0.0.1"]);
    let garbage = pki.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").unwrap();
    let other = pki.ca.issue("other", &["localhost"]);
    let missing = pki.path().join("missing.pem");

    let cases: [(TlsServerConfig, &str, &str); 5] = [
        (
            TlsServerConfig { cert_file: missing.display().to_string(), ..server_tls(&pki.server) },
            "protocols.grpc.tls.cert_file",
            "missing.pem",
        ),
        (
            TlsServerConfig { cert_file: garbage.display().to_string(), ..server_tls(&pki.server) },
            "protocols.grpc.tls.cert_file",
            "garbage.pem",
        ),
        (
            TlsServerConfig { key_file: other.key_file.display().to_string(), ..server_tls(&pki.server) },
            "protocols.grpc.tls.key_file",
            "does not belong to the certificate",
        ),
        (
            TlsServerConfig { key_file: pki.server.cert_file.display().to_string(), ..server_tls(&pki.server) },
            "protocols.grpc.tls.key_file",
            "holds no PEM private key",
        ),
        (
            TlsServerConfig { client_ca_file: missing.display().to_string(), ..server_tls(&pki.server) },
            "protocols.grpc.tls.client_ca_file",
            "missing.pem",
        ),
    ];
    for (tls, field, mentioned) in cases {
        let mut config = test_config();
        config.protocols.http = None;
        config.protocols.grpc.as_mut().unwrap().tls = Some(tls);
        let error = bind_error(config);
        let ReceiverError::Tls(tls_error) = &error else { panic!("not a TLS error: {error}") };
        assert_eq!(tls_error.field, field, "{error}");
        let message = error.to_string();
        assert!(message.starts_with(field) && message.contains(mentioned), "{message}");
    }

    // The CA of a server's `tls` block is read and checked as the Collector does.
    let with_bad_ca = TlsServerConfig { ca_file: garbage.display().to_string(), ..server_tls(&pki.server) };
    let error = with_bad_ca.load(&[]).unwrap_err();
    assert_eq!(error.field, "ca_file");
    assert!(matches!(error.problem, TlsProblem::NotPem { .. }), "{error}");
    let inline = TlsServerConfig {
        cert_pem: spanpipe_transports::tls::OpaqueString(pki.server.cert_pem.clone()),
        key_pem: spanpipe_transports::tls::OpaqueString(pki.server.key_pem.clone()),
        ..TlsServerConfig::default()
    };
    assert!(inline.load(&[]).is_ok(), "inline PEM works as the files do");
}
