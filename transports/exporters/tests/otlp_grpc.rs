//! The `otlp` (gRPC) exporter against a scripted server on loopback: delivery, partial success,
//! retries (counted, delivered once), permanent failures (not retried), `RetryInfo`, a server that
//! comes up late, failover and return to the primary, a full queue, and the shutdown deadline.

mod support;

use std::time::{Duration, Instant};

use spanpipe_config::GoDuration;
use spanpipe_exporters::{
    Compression, DropReason, ExporterBuilder, FailoverConfig, OtlpExporterConfig, QueueConfig, RetryConfig, SendError,
    TlsClientConfig, EXPORT_PATH,
};
use support::{batch, eventually, fast_retry, free_port, on_glommio, FakeServer, Reply};

const WAIT: Duration = Duration::from_secs(10);

fn config(endpoint: &str) -> OtlpExporterConfig {
    OtlpExporterConfig {
        endpoint: endpoint.to_owned(),
        tls: TlsClientConfig { insecure: true, ..TlsClientConfig::default() },
        timeout: GoDuration::from_secs(2),
        retry_on_failure: fast_retry(),
        ..OtlpExporterConfig::default()
    }
}

#[test]
fn delivers_a_batch_as_a_gzipped_grpc_export() {
    let server = FakeServer::start();
    let config = config(&server.authority());
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        let sent = batch(20, 1);
        exporter.try_send(sent.clone()).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        let received = server.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].path, EXPORT_PATH);
        assert_eq!(received[0].request, sent.bytes());
        let header = |name: &str| received[0].headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), "application/grpc");
        assert_eq!(header("grpc-encoding"), "gzip");
        assert_eq!(header("te"), "trailers");
        let stats = exporter.stats().snapshot();
        assert_eq!((stats.spans_sent, stats.bytes_sent), (20, sent.encoded_len() as u64));
        assert!(stats.wire_bytes_sent < stats.bytes_sent, "gzip made the request smaller");
        assert_eq!(stats.latency_count(), 1);
        assert_eq!(exporter.flush(Instant::now() + WAIT).await, Default::default());
    });
}

#[test]
fn every_compression_delivers_every_batch_over_one_multiplexed_connection() {
    let server = FakeServer::start();
    for compression in [Compression::None, Compression::Zstd] {
        let config = OtlpExporterConfig { compression, ..config(&server.authority()) };
        on_glommio(move || async move {
            let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
            for seed in 0..10 {
                exporter.try_send(batch(5, seed)).unwrap();
            }
            assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 10).await);
            exporter.flush(Instant::now() + WAIT).await;
        });
    }
    let received = server.received();
    assert_eq!(received.len(), 20);
    for run in received.chunks(10) {
        assert!(run.iter().all(|received| received.peer == run[0].peer), "one HTTP/2 connection per core and endpoint");
    }
    assert_ne!(received[0].peer, received[10].peer, "each exporter instance has its own connection");
    let mut expected: Vec<_> = (0..10).map(|seed| batch(5, seed).into_bytes()).collect();
    expected.extend(expected.clone());
    let mut got: Vec<_> = received.into_iter().map(|received| received.request).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "every batch arrived intact under every compression");
}

#[test]
fn partial_success_is_delivered_and_counts_rejected_spans() {
    let server = FakeServer::start();
    server.script([Reply::PartialSuccess { rejected: 3, message: "3 spans too old" }]);
    let config = config(&server.authority());
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(10, 2)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        let stats = exporter.stats().snapshot();
        assert_eq!(stats.spans_rejected_by_backend, 3);
        assert_eq!((stats.retries, stats.dropped_batches_total()), (0, 0));
    });
}

#[test]
fn retryable_failures_are_retried_and_the_batch_delivered_once() {
    let server = FakeServer::start();
    let unavailable = Reply::GrpcStatus { code: 14, message: "try later", retry_delay: None };
    server.script([
        unavailable.clone(),
        unavailable,
        Reply::GrpcStatus { code: 4, message: "slow", retry_delay: None },
    ]);
    let config = config(&server.authority());
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        let sent = batch(7, 3);
        exporter.try_send(sent.clone()).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        let stats = exporter.stats().snapshot();
        assert_eq!(stats.retries, 3);
        assert_eq!(stats.dropped_batches_total(), 0);
        let received = server.received();
        assert_eq!(received.len(), 4, "three failed attempts and one success");
        assert!(received.iter().all(|received| received.request == sent.bytes()));
    });
}

#[test]
fn non_retryable_failures_are_not_retried() {
    let server = FakeServer::start();
    server.script([Reply::GrpcStatus { code: 3, message: "bad span", retry_delay: None }]);
    let config = config(&server.authority());
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(4, 4)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().dropped_batches_total() == 1).await);
        // Give a wrong retry time to happen: it must not.
        glommio::timer::sleep(Duration::from_millis(100)).await;
        let stats = exporter.stats().snapshot();
        assert_eq!(stats.dropped_batches_for(DropReason::Rejected), 1);
        assert_eq!(stats.dropped_spans_for(DropReason::Rejected), 4);
        assert_eq!((stats.retries, stats.batches_sent), (0, 0));
        assert_eq!(server.received().len(), 1);
    });
}

#[test]
fn resource_exhausted_without_retry_info_is_permanent_and_with_it_waits_as_asked() {
    let server = FakeServer::start();
    server.script([
        Reply::GrpcStatus { code: 8, message: "over quota", retry_delay: None },
        Reply::GrpcStatus { code: 8, message: "busy", retry_delay: Some(Duration::from_millis(300)) },
    ]);
    let config = config(&server.authority());
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(1, 5)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().dropped_batches_total() == 1).await);
        exporter.try_send(batch(2, 6)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        let received = server.received();
        assert_eq!(received.len(), 3);
        let waited = received[2].at - received[1].at;
        assert!(waited >= Duration::from_millis(300), "RetryInfo asked for 300 ms, the retry came after {waited:?}");
        assert_eq!(exporter.stats().snapshot().retries, 1);
    });
}

#[test]
fn a_server_that_comes_up_late_gets_the_batch() {
    let addr = free_port();
    let config = config(&addr.to_string());
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        let sent = batch(3, 7);
        exporter.try_send(sent.clone()).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().retries >= 3).await, "connection refused is retried");
        let server = FakeServer::start_on(addr);
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        let received = server.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].request, sent.bytes());
    });
}

#[test]
fn fails_over_to_the_second_endpoint_and_returns_when_the_primary_is_back() {
    let primary_addr = free_port();
    let secondary = FakeServer::start();
    let config = OtlpExporterConfig {
        endpoint: String::new(),
        endpoints: vec![primary_addr.to_string(), format!("http://{}", secondary.authority())],
        failover: FailoverConfig {
            failures: 2,
            window: GoDuration::from_secs(30),
            probe_interval: GoDuration::from_millis(50),
            healthy_for: GoDuration::from_millis(100),
        },
        ..config("")
    };
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(5, 8)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        assert_eq!(exporter.active_endpoint(), Some(1));
        assert_eq!(exporter.stats().snapshot().failovers, 1);
        assert_eq!(secondary.exports().len(), 1);

        let primary = FakeServer::start_on(primary_addr);
        assert!(eventually(WAIT, || exporter.active_endpoint() == Some(0)).await, "probes brought it back");
        assert_eq!(exporter.stats().snapshot().failbacks, 1);
        let probes = primary.received();
        assert!(probes.len() >= 2, "one good probe is not enough to return: {probes:?}");
        assert!(probes.iter().all(|probe| probe.spans() == 0), "probes are empty export requests");

        exporter.try_send(batch(6, 9)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 2).await);
        assert_eq!(primary.exports().len(), 1);
        assert_eq!(secondary.exports().len(), 1);
    });
}

#[test]
fn a_full_queue_refuses_at_once_and_hands_the_batch_back() {
    let server = FakeServer::start();
    server.script([Reply::Delayed(Duration::from_millis(300), Box::new(Reply::Ok))]);
    let config = OtlpExporterConfig {
        sending_queue: QueueConfig { num_consumers: 1, queue_size: 2, ..QueueConfig::default() },
        ..config(&server.authority())
    };
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(1, 10)).unwrap();
        // Let the only sender take the first batch; it then waits on the slow answer.
        assert!(eventually(WAIT, || exporter.stats().snapshot().in_flight == 1).await);
        exporter.try_send(batch(1, 11)).unwrap();
        exporter.try_send(batch(1, 12)).unwrap();
        let refused = exporter.try_send(batch(4, 13)).unwrap_err();
        assert!(matches!(refused, SendError::Full(_)));
        assert_eq!(refused.into_batch().len(), 4, "the caller gets its batch back");
        let stats = exporter.stats().snapshot();
        assert_eq!((stats.refused_batches, stats.refused_spans, stats.queue_depth), (1, 4, 2));

        let report = exporter.flush(Instant::now() + WAIT).await;
        assert_eq!(report.undelivered_batches, 0);
        assert_eq!(exporter.stats().snapshot().batches_sent, 3);
        assert!(matches!(exporter.try_send(batch(1, 14)), Err(SendError::Closed(_))));
    });
}

#[test]
fn flush_gives_up_at_the_deadline_and_counts_what_was_left() {
    let addr = free_port();
    let config = OtlpExporterConfig {
        sending_queue: QueueConfig { num_consumers: 2, ..QueueConfig::default() },
        ..config(&addr.to_string())
    };
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        for seed in 0..5 {
            exporter.try_send(batch(2, seed)).unwrap();
        }
        let started = Instant::now();
        let report = exporter.flush(Instant::now() + Duration::from_millis(200)).await;
        assert!(started.elapsed() < WAIT);
        assert_eq!((report.undelivered_batches, report.undelivered_spans), (5, 10));
        let stats = exporter.stats().snapshot();
        assert_eq!(stats.dropped_batches_for(DropReason::Shutdown), 5);
        assert_eq!((stats.queue_depth, stats.in_flight), (0, 0));
    });
}

#[test]
fn retries_stop_after_max_elapsed_time() {
    let addr = free_port();
    let config = OtlpExporterConfig {
        retry_on_failure: RetryConfig { max_elapsed_time: GoDuration::from_millis(150), ..fast_retry() },
        ..config(&addr.to_string())
    };
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(3, 1)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().dropped_batches_total() == 1).await);
        let stats = exporter.stats().snapshot();
        assert_eq!(stats.dropped_spans_for(DropReason::RetriesExhausted), 3);
        assert!(stats.retries >= 2);
    });
}

#[test]
fn send_waits_for_room_instead_of_refusing() {
    let server = FakeServer::start();
    server.script([Reply::Delayed(Duration::from_millis(100), Box::new(Reply::Ok))]);
    let config = OtlpExporterConfig {
        sending_queue: QueueConfig {
            num_consumers: 1,
            queue_size: 1,
            block_on_overflow: true,
            ..QueueConfig::default()
        },
        ..config(&server.authority())
    };
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        assert!(exporter.blocks_on_overflow());
        for seed in 0..4 {
            exporter.send(batch(1, seed)).await.unwrap();
        }
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 4).await);
        assert_eq!(exporter.stats().snapshot().refused_batches, 0, "waiting is not refusing");
    });
}

#[test]
fn a_disabled_queue_takes_a_batch_only_when_a_sender_is_idle() {
    let server = FakeServer::start();
    server.script([Reply::Delayed(Duration::from_millis(200), Box::new(Reply::Ok))]);
    let config = OtlpExporterConfig {
        sending_queue: QueueConfig { enabled: false, num_consumers: 1, ..QueueConfig::default() },
        ..config(&server.authority())
    };
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(1, 1)).unwrap();
        assert!(matches!(exporter.try_send(batch(1, 2)), Err(SendError::Full(_))), "the only sender is taken");
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        assert!(eventually(WAIT, || exporter.try_send(batch(1, 3)).is_ok()).await, "idle again after delivering");
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 2).await);
    });
}

#[test]
fn a_request_without_an_answer_times_out_and_is_retried() {
    let server = FakeServer::start();
    server.script([Reply::Delayed(Duration::from_secs(5), Box::new(Reply::Ok))]);
    let config = OtlpExporterConfig { timeout: GoDuration::from_millis(100), ..config(&server.authority()) };
    on_glommio(move || async move {
        let exporter = ExporterBuilder::otlp("otlp", &config).unwrap().build().unwrap();
        exporter.try_send(batch(2, 1)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        let stats = exporter.stats().snapshot();
        assert_eq!((stats.retries, stats.in_flight), (1, 0));
        assert_eq!(server.received().len(), 2);
        let header = server.received()[0].headers["grpc-timeout"].to_str().unwrap().to_owned();
        assert_eq!(header, "100m", "the deadline travels with the request");
    });
}
