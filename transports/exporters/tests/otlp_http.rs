//! The `otlphttp` exporter against a scripted server on loopback: protobuf, JSON and MessagePack
//! bodies (the last decoded by spanpipe's `msgpack` codec, the answers in MessagePack too),
//! compression, partial success, 503 with `Retry-After`, permanent 400, a server that comes up
//! late, failover, and connection reuse.

mod support;

use std::time::{Duration, Instant};

use spanpipe_config::GoDuration;
use spanpipe_exporters::{
    Compression, DropReason, ExporterBuilder, FailoverConfig, HttpEncoding, OtlpHttpExporterConfig, TRACES_PATH,
};
use support::{batch, eventually, fast_retry, free_port, on_glommio, FakeServer, Reply};

const WAIT: Duration = Duration::from_secs(10);

fn config(endpoint: &str) -> OtlpHttpExporterConfig {
    OtlpHttpExporterConfig {
        endpoint: endpoint.to_owned(),
        timeout: GoDuration::from_secs(2),
        retry_on_failure: fast_retry(),
        ..OtlpHttpExporterConfig::default()
    }
}

#[test]
fn posts_protobuf_and_json_bodies_with_every_compression() {
    let server = FakeServer::start();
    let mut expected = Vec::new();
    for (encoding, compression) in [
        (HttpEncoding::Proto, Compression::Gzip),
        (HttpEncoding::Proto, Compression::None),
        (HttpEncoding::Json, Compression::Zstd),
        (HttpEncoding::Json, Compression::None),
    ] {
        let config = OtlpHttpExporterConfig { encoding, compression, ..config(&server.url()) };
        let seed = expected.len() as u64;
        expected.push(batch(12, seed));
        on_glommio(move || async move {
            let exporter = ExporterBuilder::otlp_http("otlphttp", &config).unwrap().build().unwrap();
            exporter.try_send(batch(12, seed)).unwrap();
            assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        });
    }
    let received = server.received();
    assert_eq!(received.len(), 4);
    type Request = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    for (received, sent) in received.iter().zip(&expected) {
        assert_eq!(received.path, TRACES_PATH);
        // JSON re-encodes the spans; compare messages, not bytes.
        let decode = |bytes: &[u8]| <Request as prost::Message>::decode(bytes).unwrap();
        assert_eq!(decode(&received.request), decode(sent.bytes()));
    }
    let content_types: Vec<_> =
        received.iter().map(|received| received.headers["content-type"].to_str().unwrap().to_owned()).collect();
    assert_eq!(
        content_types,
        ["application/x-protobuf", "application/x-protobuf", "application/json", "application/json"]
    );
    assert_eq!(received[0].headers["content-encoding"], "gzip");
    assert!(received[1].headers.get("content-encoding").is_none());
    assert_eq!(received[2].headers["content-encoding"], "zstd");
}

#[test]
fn posts_msgpack_bodies_that_the_msgpack_codec_decodes_to_the_same_batch() {
    let server = FakeServer::start();
    let mut expected = Vec::new();
    for compression in [Compression::Gzip, Compression::None] {
        let config = OtlpHttpExporterConfig { encoding: HttpEncoding::Msgpack, compression, ..config(&server.url()) };
        let seed = 40 + expected.len() as u64;
        expected.push(batch(25, seed));
        on_glommio(move || async move {
            let exporter = ExporterBuilder::otlp_http("otlphttp", &config).unwrap().build().unwrap();
            exporter.try_send(batch(25, seed)).unwrap();
            assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        });
    }
    let received = server.received();
    assert_eq!(received.len(), 2);
    for (received, sent) in received.iter().zip(&expected) {
        assert_eq!(received.headers["content-type"], "application/msgpack");
        // MessagePack keys follow field-number order: the decoded batch is the sent one, byte for byte.
        assert_eq!(received.request, sent.bytes());
    }
    assert_eq!(received[0].headers["content-encoding"], "gzip");
    assert!(received[1].headers.get("content-encoding").is_none());
}

#[test]
fn msgpack_answers_are_read_in_msgpack() {
    let server = FakeServer::start();
    server.script([
        Reply::HttpStatus { status: 503, retry_after: None, message: "overloaded" },
        Reply::PartialSuccess { rejected: 3, message: "too old" },
        Reply::HttpStatus { status: 400, retry_after: None, message: "malformed" },
    ]);
    let config = OtlpHttpExporterConfig { encoding: HttpEncoding::Msgpack, ..config(&server.url()) };
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp_http("otlphttp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(5, 50)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        let stats = exporter.stats().snapshot();
        assert_eq!((stats.retries, stats.spans_rejected_by_backend), (1, 3));
        exporter.try_send(batch(4, 51)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().dropped_batches_total() == 1).await);
        assert_eq!(exporter.stats().snapshot().dropped_spans_for(DropReason::Rejected), 4);
    });
    assert!(server.received().iter().all(|request| request.headers["content-type"] == "application/msgpack"));
}

#[test]
fn keeps_connections_alive_between_requests() {
    let server = FakeServer::start();
    let config = OtlpHttpExporterConfig {
        sending_queue: spanpipe_exporters::QueueConfig { num_consumers: 1, ..Default::default() },
        ..config(&server.url())
    };
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp_http("otlphttp", &config).unwrap().build().unwrap();
        for seed in 0..5 {
            exporter.try_send(batch(2, seed)).unwrap();
        }
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 5).await);
        let received = server.received();
        assert!(received.iter().all(|request| request.peer == received[0].peer), "one reused connection");
    });
}

#[test]
fn partial_success_is_counted() {
    let server = FakeServer::start();
    server.script([Reply::PartialSuccess { rejected: 2, message: "bad attributes" }]);
    let config = config(&server.url());
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp_http("otlphttp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(5, 1)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        assert_eq!(exporter.stats().snapshot().spans_rejected_by_backend, 2);
    });
}

#[test]
fn retry_after_is_honoured_and_the_batch_delivered_once() {
    let server = FakeServer::start();
    server.script([
        Reply::HttpStatus { status: 503, retry_after: Some("1"), message: "overloaded" },
        Reply::HttpStatus { status: 502, retry_after: None, message: "bad gateway" },
    ]);
    let config = config(&server.url());
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp_http("otlphttp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(3, 2)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        let received = server.received();
        assert_eq!(received.len(), 3);
        let waited = received[1].at - received[0].at;
        assert!(waited >= Duration::from_secs(1), "Retry-After: 1 was answered after {waited:?}");
        let stats = exporter.stats().snapshot();
        assert_eq!((stats.retries, stats.batches_sent, stats.dropped_batches_total()), (2, 1, 0));
    });
}

#[test]
fn client_errors_are_not_retried() {
    let server = FakeServer::start();
    server.script([Reply::HttpStatus { status: 400, retry_after: Some("1"), message: "malformed" }]);
    let config = config(&server.url());
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp_http("otlphttp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(6, 3)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().dropped_batches_total() == 1).await);
        glommio::timer::sleep(Duration::from_millis(100)).await;
        assert_eq!(exporter.stats().snapshot().dropped_spans_for(DropReason::Rejected), 6);
        assert_eq!(exporter.stats().snapshot().retries, 0);
        assert_eq!(server.received().len(), 1);
    });
}

#[test]
fn a_server_that_comes_up_late_gets_the_batch() {
    let addr = free_port();
    let config = config(&format!("http://{addr}"));
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp_http("otlphttp", &config).unwrap().build().unwrap();
        let sent = batch(4, 4);
        exporter.try_send(sent.clone()).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().retries >= 3).await);
        let server = FakeServer::start_on(addr);
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        assert_eq!(server.received()[0].request, sent.bytes());
        assert_eq!(exporter.flush(Instant::now() + WAIT).await, Default::default());
    });
}

#[test]
fn fails_over_and_returns_to_the_primary() {
    let primary_addr = free_port();
    let secondary = FakeServer::start();
    let config = OtlpHttpExporterConfig {
        endpoints: vec![format!("http://{primary_addr}"), secondary.url()],
        failover: FailoverConfig {
            failures: 1,
            window: GoDuration::from_secs(30),
            probe_interval: GoDuration::from_millis(50),
            healthy_for: GoDuration::from_millis(100),
        },
        ..config("")
    };
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp_http("otlphttp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(2, 5)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        assert_eq!((exporter.active_endpoint(), secondary.exports().len()), (Some(1), 1));
        let primary = FakeServer::start_on(primary_addr);
        assert!(eventually(WAIT, || exporter.active_endpoint() == Some(0)).await);
        exporter.try_send(batch(2, 6)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 2).await);
        assert_eq!(primary.exports().len(), 1);
        let stats = exporter.stats().snapshot();
        assert_eq!((stats.failovers, stats.failbacks), (1, 1));
    });
}
