//! The `otlp` and `otlphttp` exporters over TLS, against a scripted server speaking TLS through
//! tokio-rustls (independent of spanpipe's own TLS glue), with certificates made per test: TLS by
//! default with only `ca_file`, HTTP/2 or HTTP/1.1 as the server selects by ALPN, refused
//! certificates counted and given up within the retry budget, `server_name_override`,
//! `insecure_skip_verify`, client certificates (and a server refusing their absence), failover
//! lists, a server that never answers the handshake, and certificate files that cannot be used.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use spanpipe_config::GoDuration;
use spanpipe_exporters::{
    BuildError, DropReason, ExporterBuilder, FailoverConfig, OtlpExporterConfig, OtlpHttpExporterConfig, RetryConfig,
    TlsClientConfig,
};
use spanpipe_testkit::tls::{Issued, Pki, TestCa};
use support::{batch, eventually, on_glommio, FakeServer};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;

const WAIT: Duration = Duration::from_secs(10);

/// A TLS server configuration with `certificate`, selecting from `alpn`, requiring client
/// certificates from `client_ca` if given.
fn server_config(certificate: &Issued, alpn: &[&[u8]], client_ca: Option<&TestCa>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(rustls::pki_types::CertificateDer::from_pem_file(ca.ca_file()).unwrap()).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let chain = vec![rustls::pki_types::CertificateDer::from_pem_file(&certificate.cert_file).unwrap()];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&certificate.key_file).unwrap();
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Arc::new(config)
}

/// Quick retries: 10 ms doubling to 50 ms, within `budget`.
fn retry(budget: Duration) -> RetryConfig {
    RetryConfig {
        initial_interval: GoDuration::from_millis(10),
        randomization_factor: 0.0,
        multiplier: 2.0,
        max_interval: GoDuration::from_millis(50),
        max_elapsed_time: GoDuration(budget),
        ..RetryConfig::default()
    }
}

/// An `otlp` exporter config as a Collector user writes it for TLS: the endpoint and the CA.
fn grpc_config(endpoint: String, tls: TlsClientConfig) -> OtlpExporterConfig {
    OtlpExporterConfig {
        endpoint,
        tls,
        timeout: GoDuration::from_secs(2),
        retry_on_failure: retry(Duration::from_secs(5)),
        ..OtlpExporterConfig::default()
    }
}

fn http_config(endpoint: String, tls: TlsClientConfig) -> OtlpHttpExporterConfig {
    OtlpHttpExporterConfig {
        endpoint,
        tls,
        timeout: GoDuration::from_secs(2),
        retry_on_failure: retry(Duration::from_secs(5)),
        ..OtlpHttpExporterConfig::default()
    }
}

fn with_ca(ca_file: String) -> TlsClientConfig {
    TlsClientConfig { ca_file, ..TlsClientConfig::default() }
}

#[test]
fn otlp_uses_tls_by_default_with_only_endpoint_and_ca_file() {
    let pki = Pki::new(&["localhost"]);
    let server = FakeServer::start_tls(server_config(&pki.server, &[b"h2"], None));
    let config = grpc_config(format!("localhost:{}", server.addr.port()), with_ca(pki.ca_file()));
    // Large enough to span many TLS records and several socket writes.
    let sent = [batch(3, 1), batch(4000, 2), batch(5, 3)];
    let expected: Vec<_> = sent.iter().map(|batch| batch.bytes().clone()).collect();
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        for batch in sent {
            exporter.try_send(batch).unwrap();
        }
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 3).await);
        let stats = exporter.stats().snapshot();
        assert_eq!((stats.tls_handshake_failures, stats.retries), (0, 0));
        exporter.flush(Instant::now() + WAIT).await;
    });
    let received = server.received();
    assert!(received.iter().all(|request| request.version == http::Version::HTTP_2), "gRPC over h2");
    assert!(received.iter().all(|request| request.peer == received[0].peer), "one multiplexed connection");
    let mut got: Vec<_> = received.into_iter().map(|request| request.request).collect();
    let mut expected = expected;
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "every batch arrived intact");
    assert_eq!(server.failed_handshakes(), 0);
}

#[test]
fn otlphttp_speaks_http2_when_the_server_selects_it_and_http1_otherwise() {
    let pki = Pki::new(&["localhost"]);
    for (offered, version) in
        [(&[&b"h2"[..], b"http/1.1"][..], http::Version::HTTP_2), (&[&b"http/1.1"[..]][..], http::Version::HTTP_11)]
    {
        let server = FakeServer::start_tls(server_config(&pki.server, offered, None));
        let config = http_config(format!("https://localhost:{}", server.addr.port()), with_ca(pki.ca_file()));
        on_glommio(move || async move {
            let exporter = ExporterBuilder::otlp_http("otlphttp", &config).unwrap().build().unwrap();
            for seed in 0..6 {
                exporter.try_send(batch(20, seed)).unwrap();
                // One at a time, so that HTTP/1.1 connections are reused rather than opened in parallel.
                assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == seed + 1).await);
            }
            exporter.flush(Instant::now() + WAIT).await;
        });
        let received = server.exports();
        assert_eq!(received.len(), 6);
        assert!(received.iter().all(|request| request.version == version), "{version:?} expected");
        assert!(received.iter().all(|request| request.peer == received[0].peer), "the connection is reused");
        let authority = format!("localhost:{}", server.addr.port());
        assert!(received.iter().all(|request| request.authority.as_deref() == Some(authority.as_str())));
    }
}

#[test]
fn a_refused_server_certificate_is_counted_retried_within_the_budget_and_dropped() {
    let pki = Pki::new(&["localhost"]);
    let stranger_ca = TestCa::new(pki.dir.path(), "stranger");
    let elsewhere = pki.ca.issue("elsewhere", &["collector.example"]);
    // Signed by an unknown CA; valid, but for another name.
    for certificate in [stranger_ca.issue("stranger-server", &["localhost"]), elsewhere] {
        let server = FakeServer::start_tls(server_config(&certificate, &[b"h2"], None));
        let mut config = grpc_config(format!("localhost:{}", server.addr.port()), with_ca(pki.ca_file()));
        config.retry_on_failure = retry(Duration::from_millis(300));
        on_glommio(move || async move {
            let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
            exporter.try_send(batch(9, 1)).unwrap();
            assert!(eventually(WAIT, || exporter.stats().snapshot().dropped_batches_total() == 1).await);
            let stats = exporter.stats().snapshot();
            assert_eq!(stats.dropped_spans_for(DropReason::RetriesExhausted), 9);
            assert!(stats.tls_handshake_failures >= 2, "each attempt's handshake failed: {stats:?}");
            assert_eq!(stats.tls_handshake_failures, stats.retries + 1, "one handshake per attempt");
            assert_eq!(stats.batches_sent, 0);
        });
        assert!(server.received().is_empty(), "nothing was sent to a server that was not trusted");
    }
}

#[test]
fn server_name_override_names_the_certificate_and_the_authority() {
    let pki = Pki::new(&["localhost"]);
    let elsewhere = pki.ca.issue("elsewhere", &["collector.example"]);
    let server = FakeServer::start_tls(server_config(&elsewhere, &[b"h2"], None));
    let tls = TlsClientConfig { server_name_override: "collector.example".into(), ..with_ca(pki.ca_file()) };
    let config = grpc_config(format!("127.0.0.1:{}", server.addr.port()), tls);
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(2, 1)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
    });
    let received = server.received();
    assert_eq!(received[0].authority.as_deref(), Some("collector.example"), "gRPC's :authority follows the override");
}

#[test]
fn insecure_skip_verify_accepts_an_unknown_ca_and_plaintext_needs_insecure() {
    let pki = Pki::new(&["localhost"]);
    let server = FakeServer::start_tls(server_config(&pki.server, &[b"h2", b"http/1.1"], None));
    let skip = TlsClientConfig { insecure_skip_verify: true, ..TlsClientConfig::default() };
    let grpc = grpc_config(format!("localhost:{}", server.addr.port()), skip.clone());
    let http = http_config(format!("https://localhost:{}", server.addr.port()), skip);
    let plaintext_server = FakeServer::start();
    let insecure = TlsClientConfig { insecure: true, ..TlsClientConfig::default() };
    let plaintext = grpc_config(plaintext_server.authority(), insecure);
    on_glommio(move || async move {
        for exporter in [
            ExporterBuilder::otlp("otlp", &grpc).unwrap().build().unwrap(),
            ExporterBuilder::otlp_http("otlphttp", &http).unwrap().build().unwrap(),
            ExporterBuilder::otlp("otlp/plain", &plaintext).unwrap().build().unwrap(),
        ] {
            exporter.try_send(batch(3, 4)).unwrap();
            assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await, "{}", exporter.name());
        }
    });
    assert_eq!(server.exports().len(), 2);
    assert_eq!(plaintext_server.exports().len(), 1);
}

#[test]
fn a_client_certificate_is_presented_for_mutual_tls() {
    let pki = Pki::new(&["localhost"]);
    let client_ca = TestCa::new(pki.dir.path(), "clients");
    let client = client_ca.issue("client", &["exporter.test"]);
    let server = FakeServer::start_tls(server_config(&pki.server, &[b"h2", b"http/1.1"], Some(&client_ca)));
    let with_certificate = TlsClientConfig {
        cert_file: client.cert_file.display().to_string(),
        key_file: client.key_file.display().to_string(),
        ..with_ca(pki.ca_file())
    };
    let delivering = http_config(format!("https://localhost:{}", server.addr.port()), with_certificate);
    let mut refused = grpc_config(format!("localhost:{}", server.addr.port()), with_ca(pki.ca_file()));
    refused.retry_on_failure = retry(Duration::from_millis(200));
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp_http("otlphttp", &delivering).unwrap().build().unwrap();
        exporter.try_send(batch(5, 1)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        let without = ExporterBuilder::otlp("otlp", &refused).unwrap().build().unwrap();
        without.try_send(batch(5, 2)).unwrap();
        // Dropped once the retry budget ran out. Whether the attempts also count as TLS failures
        // is a race: TLS 1.3 refuses a missing client certificate only after the client's side of
        // the handshake is done, and the server's alert may lose to its connection reset.
        assert!(eventually(WAIT, || without.stats().snapshot().dropped_batches_total() == 1).await);
    });
    assert_eq!(server.exports().len(), 1, "only the exporter with a certificate was served");
    assert!(server.failed_handshakes() >= 1);
}

#[test]
fn every_failover_endpoint_uses_the_same_tls_settings() {
    let pki = Pki::new(&["localhost"]);
    // The primary speaks plaintext: the TLS handshake with it fails, and the exporter moves on.
    let primary = FakeServer::start();
    let secondary = FakeServer::start_tls(server_config(&pki.server, &[b"h2"], None));
    let config = OtlpExporterConfig {
        endpoints: vec![format!("localhost:{}", primary.addr.port()), format!("localhost:{}", secondary.addr.port())],
        failover: FailoverConfig {
            failures: 2,
            window: GoDuration::from_secs(10),
            probe_interval: GoDuration::from_secs(60),
            ..FailoverConfig::default()
        },
        ..grpc_config(String::new(), with_ca(pki.ca_file()))
    };
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(7, 1)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        let stats = exporter.stats().snapshot();
        assert_eq!(stats.failovers, 1);
        assert_eq!(stats.tls_handshake_failures, 2, "two handshakes with the plaintext primary failed");
        assert_eq!(exporter.active_endpoint(), Some(1));
    });
    assert!(primary.exports().is_empty(), "nothing went to the primary in plaintext");
    assert_eq!(secondary.exports().len(), 1);
}

#[test]
fn a_server_that_never_answers_the_handshake_costs_each_attempt_its_timeout() {
    let pki = Pki::new(&["localhost"]);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap();
    let mut config = grpc_config(format!("localhost:{}", address.port()), with_ca(pki.ca_file()));
    config.timeout = GoDuration::from_millis(200);
    config.retry_on_failure = retry(Duration::from_millis(300));
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        let started = Instant::now();
        exporter.try_send(batch(2, 1)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().dropped_batches_total() == 1).await);
        let stats = exporter.stats().snapshot();
        assert_eq!(stats.dropped_spans_for(DropReason::RetriesExhausted), 2);
        assert!(stats.retries >= 1, "the stalled handshake ended each attempt at its timeout: {stats:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "given up after {:?}", started.elapsed());
    });
    drop(silent);
}

#[test]
fn unusable_certificate_files_fail_the_build_naming_the_key() {
    let pki = Pki::new(&["localhost"]);
    let missing = pki.dir.path().join("missing.pem").display().to_string();
    let server_key_as_certificate = pki.server.key_file.display().to_string();
    let cases = [
        (with_ca(missing.clone()), "tls.ca_file", "missing.pem"),
        (with_ca(server_key_as_certificate), "tls.ca_file", "holds no PEM certificate"),
        (
            TlsClientConfig {
                cert_file: pki.server.cert_file.display().to_string(),
                key_file: missing,
                ..with_ca(pki.ca_file())
            },
            "tls.key_file",
            "missing.pem",
        ),
    ];
    for (tls, field, mentioned) in cases {
        let config = grpc_config("localhost:4317".to_owned(), tls);
        let error = ExporterBuilder::otlp("otlp/backend", &config).unwrap_err();
        let BuildError::Tls { name, source } = &error else { panic!("not a TLS error: {error}") };
        assert_eq!((name.as_str(), source.field.as_str()), ("otlp/backend", field));
        let message = error.to_string();
        assert!(message.contains(field) && message.contains(mentioned), "{message}");
    }
    // `otlphttp` loads nothing for `http://` URLs, whose connections are plaintext.
    let plaintext = http_config("http://localhost:4318".to_owned(), with_ca("/nonexistent/ca.pem".to_owned()));
    assert!(ExporterBuilder::otlp_http("otlphttp", &plaintext).is_ok());
}
