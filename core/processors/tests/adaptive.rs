//! The adaptive sampler keeps every error and every slow span, samples the rest consistently by
//! trace id at a rate that can change while it runs.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{batch_of, request_of, run_spans, span, with_status, SplitMix};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use spanpipe_config::{ComponentConfig, GoDuration};
use spanpipe_processors::{AdaptiveSamplerConfig, DropReason, Processor, ProcessorBuilder, ProcessorConfig};

fn slow(mut span: Span, millis: u64) -> Span {
    span.end_time_unix_nano = span.start_time_unix_nano + millis * 1_000_000;
    span
}

fn traffic(seed: u64, count: usize) -> Vec<Span> {
    let mut ids = SplitMix(seed);
    (0..count)
        .map(|index| {
            let span = span(ids.trace_id(), index as u64);
            match index % 10 {
                0 => with_status(span, StatusCode::Error),
                1 => slow(span, 750),
                _ => slow(span, 5),
            }
        })
        .collect()
}

#[test]
fn keeps_all_errors_and_slow_spans_and_samples_the_rest() {
    let config =
        AdaptiveSamplerConfig { base_sampling_percentage: 20.0, latency_threshold: GoDuration::from_millis(500) };
    assert!(config.validate().is_empty());
    let handle = config.handle();
    let mut sampler = config.build(&handle);
    let spans_in = traffic(1, 5_000);
    let kept = run_spans(&mut sampler, batch_of(&request_of("svc", spans_in.clone())));
    let kept_ids: BTreeSet<Vec<u8>> = kept.iter().map(|span| span.span_id.clone()).collect();
    for (index, span) in spans_in.iter().enumerate() {
        if index % 10 < 2 {
            assert!(kept_ids.contains(&span.span_id), "span {index} is an error or slow and must be kept");
        }
    }
    let ordinary_kept = kept
        .iter()
        .filter(|span| span.status.is_none() && span.end_time_unix_nano - span.start_time_unix_nano < 500_000_000)
        .count();
    let ordinary = 4_000.0;
    let sigma = (ordinary * 0.2 * 0.8f64).sqrt();
    assert!((ordinary_kept as f64 - ordinary * 0.2).abs() < 5.0 * sigma, "kept {ordinary_kept} of 4000 at 20%");
    let stats = sampler.stats();
    assert_eq!(stats.spans_out as usize, kept.len());
    assert_eq!(stats.spans_out + stats.dropped(DropReason::NotSampled), 5_000);
}

#[test]
fn rate_changes_at_run_time_for_every_instance() {
    let config = AdaptiveSamplerConfig {
        base_sampling_percentage: 100.0,
        latency_threshold: GoDuration(Duration::from_secs(60)),
    };
    let handle = config.handle();
    let mut core_a = config.build(&handle);
    let mut core_b = config.build(&handle.clone());
    let spans_in: Vec<Span> = traffic(2, 1_000).into_iter().filter(|span| span.status.is_none()).collect();
    let batch = || batch_of(&request_of("svc", spans_in.clone()));
    assert_eq!(run_spans(&mut core_a, batch()).len(), spans_in.len());
    handle.set_percentage(0.0).unwrap();
    assert!(run_spans(&mut core_a, batch()).is_empty());
    assert!(run_spans(&mut core_b, batch()).is_empty());
    handle.set_percentage(25.0).unwrap();
    let a: Vec<Span> = run_spans(&mut core_a, batch());
    let b: Vec<Span> = run_spans(&mut core_b, batch());
    assert_eq!(a, b, "instances on different cores decide alike");
    assert!(!a.is_empty() && a.len() < spans_in.len());
}

#[test]
fn decisions_are_consistent_by_trace_and_nested_across_rates() {
    let mut ids = SplitMix(3);
    let traces: Vec<[u8; 16]> = (0..1_000).map(|_| ids.trace_id()).collect();
    let spans_in: Vec<Span> = traces.iter().flat_map(|id| (0..2).map(move |n| span(*id, n))).collect();
    let kept_at = |percentage: f32| -> BTreeSet<Vec<u8>> {
        let config = AdaptiveSamplerConfig { base_sampling_percentage: percentage, ..AdaptiveSamplerConfig::default() };
        let mut sampler = config.build(&config.handle());
        let kept = run_spans(&mut sampler, batch_of(&request_of("svc", spans_in.clone())));
        let traces: BTreeSet<Vec<u8>> = kept.iter().map(|span| span.trace_id.clone()).collect();
        assert_eq!(kept.len(), traces.len() * 2, "both spans of a kept trace are kept");
        traces
    };
    assert!(kept_at(5.0).is_subset(&kept_at(40.0)));
}

#[test]
fn builder_shares_one_handle_across_cores() {
    let config = ProcessorConfig::AdaptiveSampler(AdaptiveSamplerConfig::default());
    let builder = ProcessorBuilder::new(&config).unwrap();
    let handle = builder.adaptive_handle().expect("adaptive sampler has a handle").clone();
    let mut cores: Vec<_> = (0..2).map(|_| builder.build()).collect();
    handle.set_percentage(0.0).unwrap();
    for core in &mut cores {
        let ordinary: Vec<Span> = traffic(4, 100)
            .into_iter()
            .filter(|span| span.status.is_none())
            .filter(|span| span.end_time_unix_nano - span.start_time_unix_nano < 1_000_000_000)
            .collect();
        assert!(run_spans(core, batch_of(&request_of("svc", ordinary))).is_empty());
    }
    let invalid = AdaptiveSamplerConfig { base_sampling_percentage: 120.0, ..AdaptiveSamplerConfig::default() };
    assert_eq!(invalid.validate()[0].path, "base_sampling_percentage");
}
