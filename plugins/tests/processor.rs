//! Plugin processor stages over real plugin libraries: decisions applied, failures isolated,
//! versions swapped at batch boundaries.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{attribute_values, batch, examples, examples_v2, panicking_batch, Recorded, REDACT_VERSION_KEY};
use spanpipe_plugins::{
    load, BackoffConfig, BreakerConfig, BreakerState, OnFailure, PluginEvent, PluginProcessor, PluginStageConfig,
    TripReason,
};
use spanpipe_processors::{DropReason, Output, Processor};

fn run(stage: &mut PluginProcessor, batch: spanpipe_core::SpanBatch, now: Instant) -> Vec<spanpipe_core::SpanBatch> {
    let mut out = Output::new();
    stage.process(batch, now, &mut out);
    out.drain().map(|routed| routed.batch).collect()
}

fn publish(recorded: &Recorded, path: &std::path::Path) -> u64 {
    let state = tempfile::tempdir().unwrap();
    recorded.registry.publish(load(path, state.path()).unwrap())
}

#[test]
fn redact_replaces_listed_values_and_stamps_its_version() {
    let recorded = Recorded::new();
    publish(&recorded, &examples().redact);
    let mut config = PluginStageConfig::new("redact");
    config.config_json = r#"{"keys":["user.email"],"replacement":"***"}"#.to_owned();
    let mut stage = PluginProcessor::new(&config, Arc::clone(&recorded.registry));
    let output = run(&mut stage, batch(3, &[("user.email", "a@example.com"), ("http.route", "/cart")]), Instant::now());
    assert_eq!(output.len(), 1);
    assert_eq!(attribute_values(&output[0], "user.email"), vec![Some("***".to_owned()); 3]);
    assert_eq!(attribute_values(&output[0], "http.route"), vec![Some("/cart".to_owned()); 3]);
    assert_eq!(attribute_values(&output[0], REDACT_VERSION_KEY), vec![Some("1.0.0".to_owned()); 3]);
    assert_eq!((stage.stats().spans_in, stage.stats().spans_out, stage.stats().spans_modified), (3, 3, 3));
    assert_eq!(stage.plugin_stats().spans_modified, 3);
}

#[test]
fn sample_drops_spans_by_reframing_and_accounts_for_every_span() {
    let recorded = Recorded::new();
    publish(&recorded, &examples().sample);
    let mut stage = PluginProcessor::new(&PluginStageConfig::new("sample"), Arc::clone(&recorded.registry));
    let output = run(&mut stage, batch(200, &[]), Instant::now());
    let kept: usize = output.iter().map(spanpipe_core::SpanBatch::len).sum();
    let stats = stage.stats();
    assert!(kept > 50 && kept < 150, "about half kept, got {kept}");
    assert_eq!(stats.dropped(DropReason::Plugin), 200 - kept as u64);
    assert_eq!(stats.spans_in, stats.spans_out + stats.dropped_total());
    assert_eq!(stage.plugin_stats().spans_dropped_by_plugin, 200 - kept as u64);
}

#[test]
fn an_absent_plugin_passes_batches_through_and_counts_them() {
    let recorded = Recorded::new();
    let mut stage = PluginProcessor::new(&PluginStageConfig::new("not-installed"), Arc::clone(&recorded.registry));
    let output = run(&mut stage, batch(4, &[]), Instant::now());
    assert_eq!(output.iter().map(spanpipe_core::SpanBatch::len).sum::<usize>(), 4);
    assert_eq!(stage.plugin_stats().spans_passed_through_absent, 4);
}

#[test]
fn a_panic_is_caught_the_instance_restarted_after_backoff_and_k_panics_open_the_breaker() {
    let recorded = Recorded::new();
    publish(&recorded, &examples().panicky);
    let mut config = PluginStageConfig::new("panicky");
    config.failure.breaker =
        BreakerConfig { failures: 3, window: Duration::from_secs(60), cool_down: Duration::from_secs(5) };
    config.failure.restart_backoff = BackoffConfig { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
    let mut stage = PluginProcessor::new(&config, Arc::clone(&recorded.registry));
    let start = Instant::now();
    let at = |millis: u64| start + Duration::from_millis(millis);

    // The panic is caught, the message kept, the batch passed through (the default).
    let output = run(&mut stage, panicking_batch(2, 1), at(0));
    assert_eq!(output.iter().map(spanpipe_core::SpanBatch::len).sum::<usize>(), 2);
    let panics: Vec<String> = recorded
        .events()
        .into_iter()
        .filter_map(|event| match event {
            PluginEvent::Panicked { message, restart_in, .. } => {
                assert_eq!(restart_in, Duration::from_millis(100));
                Some(message)
            }
            _ => None,
        })
        .collect();
    assert_eq!(panics.len(), 1);
    assert!(panics[0].contains("panicky: asked to panic by span"), "{}", panics[0]);
    assert_eq!(stage.plugin_stats().spans_passed_through_on_failure, 2);

    // Before the backoff is over no instance exists: the batch passes through without a call.
    run(&mut stage, batch(1, &[]), at(50));
    assert_eq!(stage.plugin_stats().failures.restarts, 0);
    assert_eq!(stage.plugin_stats().spans_passed_through_on_failure, 3);

    // After it, the instance is restarted and works.
    run(&mut stage, batch(1, &[]), at(150));
    assert_eq!(stage.plugin_stats().failures.restarts, 1);
    assert_eq!(stage.plugin_stats().spans_passed_through_on_failure, 3);

    // Two more panics (the first is still in the window) open the breaker.
    run(&mut stage, panicking_batch(1, 0), at(200));
    run(&mut stage, panicking_batch(1, 0), at(400));
    assert_eq!(stage.plugin_stats().failures.panics, 3);
    assert_eq!(stage.plugin_stats().failures.breaker_trips, 1);
    assert!(matches!(stage.breaker_state(), BreakerState::Open { .. }));
    assert_eq!(
        recorded.count(|event| matches!(
            event,
            PluginEvent::BreakerOpened { reason: TripReason::Failures { failures: 3 }, .. }
        )),
        1
    );

    // Open: bypassed for the cool-down, even a batch that would panic.
    run(&mut stage, panicking_batch(1, 0), at(3000));
    assert_eq!(stage.plugin_stats().failures.panics, 3);

    // Half-open after the cool-down: one success closes it.
    let output = run(&mut stage, batch(2, &[]), at(5400 + 2000));
    assert_eq!(output.iter().map(spanpipe_core::SpanBatch::len).sum::<usize>(), 2);
    assert_eq!(stage.breaker_state(), BreakerState::Closed);
    assert_eq!(recorded.count(|event| matches!(event, PluginEvent::BreakerClosed { .. })), 1);
    let stats = stage.stats();
    assert_eq!(stats.spans_in, stats.spans_out, "pass_through loses nothing");
}

#[test]
fn on_failure_drop_drops_and_counts_the_batch_of_a_panicking_plugin() {
    let recorded = Recorded::new();
    publish(&recorded, &examples().panicky);
    let mut config = PluginStageConfig::new("panicky");
    config.failure.on_failure = OnFailure::Drop;
    let mut stage = PluginProcessor::new(&config, Arc::clone(&recorded.registry));
    assert!(run(&mut stage, panicking_batch(3, 2), Instant::now()).is_empty());
    assert_eq!(stage.stats().dropped(DropReason::Plugin), 3);
    assert_eq!(stage.plugin_stats().spans_dropped_on_failure, 3);
}

#[test]
fn a_slow_plugin_over_its_cpu_budget_is_cut_off_by_the_breaker() {
    let recorded = Recorded::new();
    publish(&recorded, &examples().slow);
    let mut config = PluginStageConfig::new("slow");
    config.config_json = r#"{"spin_ms":30}"#.to_owned();
    config.failure.cpu_budget = Some(Duration::from_millis(5));
    config.failure.budget_strikes = 3;
    let mut stage = PluginProcessor::new(&config, Arc::clone(&recorded.registry));
    let now = Instant::now();
    for _ in 0..3 {
        run(&mut stage, batch(1, &[]), now);
    }
    assert_eq!(stage.plugin_stats().failures.budget_overruns, 3);
    assert!(matches!(stage.breaker_state(), BreakerState::Open { .. }));
    assert_eq!(
        recorded.count(|event| matches!(
            event,
            PluginEvent::BreakerOpened { reason: TripReason::CpuBudget { strikes: 3 }, .. }
        )),
        1
    );
    // Bypassed now: the batch goes on without the 30 ms spin.
    let before = spanpipe_plugins::thread_cpu_time();
    let output = run(&mut stage, batch(1, &[]), now);
    assert!(spanpipe_plugins::thread_cpu_time() - before < Duration::from_millis(15));
    assert_eq!(output.len(), 1);
    assert_eq!(stage.plugin_stats().failures.budget_overruns, 3);
    assert_eq!(stage.plugin_stats().spans_passed_through_on_failure, 1);
}

#[test]
fn a_new_version_published_mid_stream_takes_over_at_a_batch_boundary_on_every_core() {
    const CORES: usize = 2;
    const BATCHES: usize = 40;
    const SPANS: usize = 5;
    let recorded = Recorded::new();
    publish(&recorded, &examples().redact);
    let v1 = recorded.registry.current("redact").unwrap().plugin.unwrap();
    let halfway = Arc::new(Barrier::new(CORES + 1));
    let swapped = Arc::new(Barrier::new(CORES + 1));
    let cores: Vec<_> = (0..CORES)
        .map(|_| {
            let registry = Arc::clone(&recorded.registry);
            let (halfway, swapped) = (Arc::clone(&halfway), Arc::clone(&swapped));
            std::thread::spawn(move || {
                let mut stage = PluginProcessor::new(&PluginStageConfig::new("redact"), registry);
                let mut versions = Vec::new();
                for index in 0..BATCHES {
                    if index == BATCHES / 2 {
                        halfway.wait();
                        swapped.wait();
                    }
                    for output in run(&mut stage, batch(SPANS, &[]), Instant::now()) {
                        let stamps = attribute_values(&output, REDACT_VERSION_KEY);
                        assert!(stamps.windows(2).all(|pair| pair[0] == pair[1]), "one version per batch: {stamps:?}");
                        versions.push((stamps[0].clone().unwrap(), output.len()));
                    }
                }
                (versions, stage.plugin_stats())
            })
        })
        .collect();
    halfway.wait();
    publish(&recorded, &examples_v2().redact);
    swapped.wait();
    for core in cores {
        let (versions, stats) = core.join().unwrap();
        assert_eq!(versions.iter().map(|(_, spans)| spans).sum::<usize>(), BATCHES * SPANS, "no span lost");
        let expected: Vec<&str> =
            (0..BATCHES).map(|index| if index < BATCHES / 2 { "1.0.0" } else { "2.0.0" }).collect();
        let found: Vec<&str> = versions.iter().map(|(version, _)| version.as_str()).collect();
        assert_eq!(found, expected);
        assert_eq!(stats.failures.swaps, 1);
    }
    // Every instance of v1 is destroyed: only this test still holds the old version.
    assert_eq!(Arc::strong_count(&v1), 1);
    assert!(
        recorded.count(|event| matches!(event, PluginEvent::Swapped { version, .. } if version == "2.0.0")) == CORES
    );
}

#[test]
fn a_retired_plugin_is_passed_through_from_the_next_batch() {
    let recorded = Recorded::new();
    publish(&recorded, &examples().redact);
    let mut stage = PluginProcessor::new(&PluginStageConfig::new("redact"), Arc::clone(&recorded.registry));
    let output = run(&mut stage, batch(1, &[]), Instant::now());
    assert_eq!(attribute_values(&output[0], REDACT_VERSION_KEY), vec![Some("1.0.0".to_owned())]);
    recorded.registry.retire("redact").unwrap();
    let output = run(&mut stage, batch(1, &[]), Instant::now());
    assert_eq!(attribute_values(&output[0], REDACT_VERSION_KEY), vec![None]);
    assert_eq!(stage.plugin_stats().spans_passed_through_absent, 1);
}

#[test]
fn a_config_the_plugin_refuses_is_reported_and_retried_with_backoff() {
    let recorded = Recorded::new();
    publish(&recorded, &examples().redact);
    let mut config = PluginStageConfig::new("redact");
    config.config_json = r#"{"no_such_key":1}"#.to_owned();
    let mut stage = PluginProcessor::new(&config, Arc::clone(&recorded.registry));
    let start = Instant::now();
    let output = run(&mut stage, batch(2, &[]), start);
    assert_eq!(output.iter().map(spanpipe_core::SpanBatch::len).sum::<usize>(), 2, "passed through");
    let messages: Vec<String> = recorded
        .events()
        .into_iter()
        .filter_map(|event| match event {
            PluginEvent::CreateFailed { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("invalid redact config"), "{}", messages[0]);
    // Within the backoff nothing is tried; after it, the create is tried (and fails) again.
    run(&mut stage, batch(1, &[]), start + Duration::from_millis(50));
    assert_eq!(stage.plugin_stats().failures.create_failures, 1);
    run(&mut stage, batch(1, &[]), start + Duration::from_millis(150));
    assert_eq!(stage.plugin_stats().failures.create_failures, 2);
    assert_eq!(stage.plugin_stats().spans_passed_through_on_failure, 4);
}

#[test]
fn threads_an_instance_leaves_running_are_reported_when_it_is_retired() {
    let recorded = Recorded::new();
    publish(&recorded, &examples().slow);
    let config = PluginStageConfig {
        config_json: r#"{"spin_ms": 0, "leak_threads": 2}"#.to_owned(),
        ..PluginStageConfig::new("slow")
    };
    let mut stage = PluginProcessor::new(&config, Arc::clone(&recorded.registry));
    assert_eq!(run(&mut stage, batch(1, &[]), Instant::now()).len(), 1, "the instance runs");
    // Retiring the plugin retires the instance at the next batch.
    recorded.registry.retire("slow").unwrap();
    run(&mut stage, batch(1, &[]), Instant::now());
    let reports: Vec<(usize, usize)> = recorded
        .events()
        .into_iter()
        .filter_map(|event| match event {
            PluginEvent::ThreadsLeftRunning { plugin, before, after } if plugin == "slow" => Some((before, after)),
            _ => None,
        })
        .collect();
    assert_eq!(reports.len(), 1, "{:?}", recorded.events());
    let (before, after) = reports[0];
    assert!(after >= before + 2, "two threads left running: {before} before, {after} after");
    assert_eq!(stage.plugin_stats().failures.threads_left_running, 1);
}
