//! The CPU watchdog in a running collector, with its CPU figure injected through
//! `StartOptions::cpu_probe`: sustained pressure lowers every adaptive sampler's rate step by step
//! to the floor, calm restores it step by step, and each step is in the health log and the
//! metrics. (tests/plugins.rs does it once for real, with a plugin that burns CPU.) The memory
//! watchdog likewise, through `StartOptions::memory_probe`: over the soft limit every new OTLP/HTTP
//! request is refused with 429 until memory use falls under `restore_below`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spanpipe_runtime::watchdog::{CpuProbe, MemoryProbe};
use spanpipe_runtime::{builtin_registry, RunningCollector, StartOptions};
use spanpipe_transports::otlp::Protocol;

/// Waits for `condition`, at most `limit`.
fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The config of `yaml`, loaded with every built-in component.
fn load(yaml: &str) -> spanpipe_config::Config {
    let registry = builtin_registry().unwrap();
    spanpipe_config::load_str(yaml, &registry).unwrap_or_else(|errors| panic!("{errors}")).0
}

/// A figure the test sets (the returned cell, as `f64` bits) and a probe reads.
#[allow(clippy::type_complexity)] // The probes' own closure type.
fn injected(initial: f64) -> (Arc<AtomicU64>, Arc<dyn Fn() -> Option<f64> + Send + Sync>) {
    let cell = Arc::new(AtomicU64::new(initial.to_bits()));
    let reading = Arc::clone(&cell);
    (cell, Arc::new(move || Some(f64::from_bits(reading.load(Ordering::Relaxed)))))
}

#[test]
fn injected_pressure_steps_the_sampling_rate_down_to_the_floor_and_calm_back_up() {
    let yaml = "
receivers:
  otlp: {protocols: {http: {endpoint: 127.0.0.1:0}}}
processors:
  adaptive_sampler/edge: {base_sampling_percentage: 40}
exporters:
  blackhole:
service:
  cores: 1
  telemetry: {metrics: {level: none}}
  watchdog:
    cpu: {interval: 20ms, high: 0.9, high_for: 100ms, low: 0.5, low_for: 100ms, steps: [1, 0.5, 0.25]}
  pipelines:
    traces: {receivers: [otlp], processors: [adaptive_sampler/edge], exporters: [blackhole]}
";
    let config = load(yaml);
    let (cpu, reading) = injected(0.3);
    let probe = CpuProbe(reading);
    let collector =
        RunningCollector::start(&config, &StartOptions { cpu_probe: Some(probe), ..StartOptions::default() })
            .expect("the collector starts");
    let actions = |collector: &RunningCollector| -> Vec<(String, String)> {
        collector
            .health_records(100)
            .into_iter()
            .map(|record| (record.action, record.after.unwrap_or_default()))
            .collect()
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(actions(&collector).is_empty(), "calm at the top step: nothing to do");

    cpu.store(0.95f64.to_bits(), Ordering::Relaxed);
    wait_for("two steps down", Duration::from_secs(10), || actions(&collector).len() == 2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        actions(&collector),
        [
            ("sampling_downgraded".to_owned(), "factor 0.5 (20%)".to_owned()),
            ("sampling_downgraded".to_owned(), "factor 0.25 (10%)".to_owned()),
        ],
        "down to the floor and no further"
    );
    wait_for("the factor gauge at the floor", Duration::from_secs(5), || {
        gauge(&collector.render_metrics(), "spanpipe_watchdog_sampling_factor") == Some(0.25)
    });
    let record = collector.health_records(1).pop().expect("a record");
    assert_eq!((record.component.as_str(), record.trigger.as_str()), ("processors/adaptive_sampler/edge", "cpu"));
    assert_eq!(record.measured.as_deref(), Some("0.95"));
    assert_eq!(record.threshold.as_deref(), Some(">= 0.9 for 100ms"));
    assert_eq!(record.before.as_deref(), Some("factor 0.5 (20%)"));

    cpu.store(0.7f64.to_bits(), Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(actions(&collector).len(), 2, "between the thresholds: no change");
    cpu.store(0.2f64.to_bits(), Ordering::Relaxed);
    wait_for("two steps up", Duration::from_secs(10), || actions(&collector).len() == 4);
    let restored: Vec<(String, String)> = actions(&collector).split_off(2);
    assert_eq!(
        restored,
        [
            ("sampling_restored".to_owned(), "factor 0.5 (20%)".to_owned()),
            ("sampling_restored".to_owned(), "factor 1 (40%)".to_owned()),
        ]
    );
    let report = collector.shutdown();
    assert_eq!(report.undelivered_spans, 0);
}

/// The status code and the head of an OTLP/HTTP export of no spans posted to `address`.
fn post_empty_export(address: SocketAddr) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connecting to the OTLP/HTTP receiver");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("a read timeout");
    let request = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("sending the request");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("reading the reply");
    let status = reply.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("{reply:?}"));
    (status, reply)
}

#[test]
fn memory_over_the_soft_limit_refuses_new_requests_until_it_falls_under_restore_below() {
    let yaml = "
receivers:
  otlp: {protocols: {http: {endpoint: 127.0.0.1:0}}}
exporters:
  blackhole:
service:
  cores: 1
  telemetry: {metrics: {level: none}}
  watchdog:
    cpu: {enabled: false}
    memory: {interval: 20ms, soft_limit: 0.8, restore_below: 0.7, retry_after: 2s}
  pipelines:
    traces: {receivers: [otlp], exporters: [blackhole]}
";
    let config = load(yaml);
    let (memory, reading) = injected(0.3);
    let probe = MemoryProbe(reading);
    let collector =
        RunningCollector::start(&config, &StartOptions { memory_probe: Some(probe), ..StartOptions::default() })
            .expect("the collector starts");
    let http = collector.receivers()[0].address(Protocol::Http).expect("an OTLP/HTTP listener");
    let actions = |collector: &RunningCollector| -> Vec<String> {
        collector.health_records(100).into_iter().map(|record| record.action).collect()
    };
    wait_for("the utilization gauge", Duration::from_secs(5), || {
        gauge(&collector.render_metrics(), "spanpipe_watchdog_memory_utilization") == Some(0.3)
    });
    assert_eq!(post_empty_export(http).0, 200, "under the soft limit: admitted");
    assert_eq!(gauge(&collector.render_metrics(), "spanpipe_watchdog_admission_tightened"), Some(0.0));

    memory.store(0.93f64.to_bits(), Ordering::Relaxed);
    wait_for("admission tightened", Duration::from_secs(5), || actions(&collector) == ["admission_tightened"]);
    let (status, reply) = post_empty_export(http);
    assert_eq!(status, 429, "{reply}");
    assert!(reply.to_ascii_lowercase().contains("retry-after: 2\r\n"), "{reply}");
    assert!(reply.contains("memory use 93% of the process's limit is over the watchdog's soft limit 80%"), "{reply}");
    let record = collector.health_records(1).pop().expect("a record");
    assert_eq!((record.component.as_str(), record.trigger.as_str()), ("process", "memory"));
    assert_eq!(record.measured.as_deref(), Some("0.93"));
    assert_eq!(record.threshold.as_deref(), Some("> 0.8"));
    assert_eq!(record.before.as_deref(), Some("admission open"));
    assert_eq!(record.after.as_deref(), Some("new requests refused"));
    wait_for("the tightened gauge at 1", Duration::from_secs(5), || {
        gauge(&collector.render_metrics(), "spanpipe_watchdog_admission_tightened") == Some(1.0)
    });

    memory.store(0.75f64.to_bits(), Ordering::Relaxed);
    wait_for("the utilization gauge between the marks", Duration::from_secs(5), || {
        gauge(&collector.render_metrics(), "spanpipe_watchdog_memory_utilization") == Some(0.75)
    });
    assert_eq!(post_empty_export(http).0, 429, "between the marks: still tightened");
    assert_eq!(actions(&collector), ["admission_tightened"]);

    memory.store(0.5f64.to_bits(), Ordering::Relaxed);
    wait_for("admission restored", Duration::from_secs(5), || actions(&collector).len() == 2);
    assert_eq!(actions(&collector), ["admission_tightened", "admission_restored"]);
    let record = collector.health_records(1).pop().expect("a record");
    assert_eq!(record.measured.as_deref(), Some("0.50"));
    assert_eq!(record.threshold.as_deref(), Some("< 0.7"));
    assert_eq!(record.after.as_deref(), Some("admission open"));
    assert_eq!(post_empty_export(http).0, 200, "admitted again");
    let report = collector.shutdown();
    assert_eq!(report.undelivered_spans, 0);
}
