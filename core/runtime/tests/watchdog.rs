//! The CPU watchdog in a running collector, with its CPU figure injected through
//! `StartOptions::cpu_probe`: sustained pressure lowers every adaptive sampler's rate step by step
//! to the floor, calm restores it step by step, and each step is in the health log and the
//! metrics. (tests/plugins.rs does it once for real, with a plugin that burns CPU.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spanpipe_runtime::watchdog::CpuProbe;
use spanpipe_runtime::{builtin_registry, RunningCollector, StartOptions};

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
    let registry = builtin_registry().unwrap();
    let (config, _) = spanpipe_config::load_str(yaml, &registry).unwrap_or_else(|errors| panic!("{errors}"));
    let cpu = Arc::new(AtomicU64::new(0.3f64.to_bits()));
    let reading = Arc::clone(&cpu);
    let probe = CpuProbe(Arc::new(move || Some(f64::from_bits(reading.load(Ordering::Relaxed)))));
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
