//! The batch processor under an injected clock: output batches never exceed their limits, nothing
//! is lost, duplicated or reordered, and every span leaves no later than `timeout` after it arrived
//! when the runtime ticks at the deadlines the processor asks for.

mod common;

use std::time::{Duration, Instant};

use common::{batch_of, decode, request_of, span, spans_in_context};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use proptest::prelude::*;
use spanpipe_config::{ComponentConfig, GoDuration};
use spanpipe_core::SpanBatch;
use spanpipe_processors::{BatchConfig, BatchProcessor, Output, Processor};

/// One step of a run: time passes, then (maybe) a batch of `spans` spans arrives.
#[derive(Clone, Debug)]
struct Step {
    advance_ms: u64,
    spans: usize,
    /// Bytes of padding in each span's name, so sizes vary.
    padding: usize,
    service: u8,
}

fn step() -> impl Strategy<Value = Step> {
    (0u64..300, 0usize..40, 0usize..120, 0u8..3).prop_map(|(advance_ms, spans, padding, service)| Step {
        advance_ms,
        spans,
        padding,
        service,
    })
}

fn config() -> impl Strategy<Value = BatchConfig> {
    (0u32..60, prop_oneof![Just(0u32), 0u32..60], 0u64..250, prop_oneof![Just(0u64), 150u64..4000]).prop_map(
        |(send_batch_size, extra, timeout_ms, send_batch_max_bytes)| BatchConfig {
            send_batch_size,
            send_batch_max_size: if extra == 0 { 0 } else { send_batch_size.max(1) + extra },
            timeout: GoDuration(Duration::from_millis(timeout_ms)),
            send_batch_max_bytes,
        },
    )
}

/// A batch of `step.spans` spans with ids from `next_id` on.
fn incoming(step: &Step, next_id: &mut u64) -> ExportTraceServiceRequest {
    let spans = (0..step.spans)
        .map(|_| {
            *next_id += 1;
            let mut span = span([step.service + 1; 16], *next_id);
            span.name.push_str(&"x".repeat(step.padding));
            span
        })
        .collect();
    request_of(&format!("service-{}", step.service), spans)
}

/// Ticks the processor at every deadline up to `now`, recording when each output left.
fn tick_until(processor: &mut BatchProcessor, now: Instant, sent: &mut Vec<(Instant, SpanBatch)>) {
    let mut out = Output::new();
    while let Some(deadline) = processor.next_deadline().filter(|deadline| *deadline <= now) {
        processor.tick(deadline, &mut out);
        sent.extend(out.drain().map(|routed| (deadline, routed.batch)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn batches_respect_limits_and_deadlines_and_keep_every_span_once_in_order(
        config in config(),
        steps in proptest::collection::vec(step(), 1..25),
    ) {
        prop_assume!(config.validate().is_empty());
        let mut processor = config.build();
        let start = Instant::now();
        let mut now = start;
        let mut next_id = 0;
        let mut arrived: Vec<(Instant, ExportTraceServiceRequest)> = Vec::new();
        let mut sent: Vec<(Instant, SpanBatch)> = Vec::new();
        let mut out = Output::new();
        for step in &steps {
            now += Duration::from_millis(step.advance_ms);
            tick_until(&mut processor, now, &mut sent);
            if step.spans == 0 {
                continue;
            }
            let request = incoming(step, &mut next_id);
            processor.process(batch_of(&request), now, &mut out);
            sent.extend(out.drain().map(|routed| (now, routed.batch)));
            arrived.push((now, request));
        }
        // The runtime keeps ticking at the deadlines until nothing is held.
        tick_until(&mut processor, now + config.timeout.0, &mut sent);
        processor.flush(&mut out);
        prop_assert!(out.is_empty(), "everything left at its deadline");
        prop_assert_eq!(processor.next_deadline(), None);

        let max_spans = config.send_batch_max_size as usize;
        let max_bytes = config.send_batch_max_bytes as usize;
        for (_, batch) in &sent {
            prop_assert!(!batch.is_empty());
            prop_assert!(max_spans == 0 || batch.len() <= max_spans, "{} spans over {}", batch.len(), max_spans);
            prop_assert!(max_bytes == 0 || batch.len() == 1 || batch.encoded_len() <= max_bytes,
                "{} bytes over {}", batch.encoded_len(), max_bytes);
            let rescanned = SpanBatch::decode(batch.bytes().clone()).expect("valid batch");
            prop_assert_eq!(rescanned.index(), batch.index());
        }

        let expected: Vec<_> = arrived.iter().flat_map(|(_, request)| spans_in_context(request)).collect();
        let got: Vec<_> = sent.iter().flat_map(|(_, batch)| spans_in_context(&decode(batch))).collect();
        prop_assert_eq!(got.len(), expected.len());
        prop_assert!(got == expected, "spans, with their resource and scope, leave exactly once and in order");

        let arrival_of_span: Vec<Instant> = arrived
            .iter()
            .flat_map(|(at, request)| std::iter::repeat_n(*at, spans_in_context(request).len()))
            .collect();
        let departure_of_span: Vec<Instant> =
            sent.iter().flat_map(|(at, batch)| std::iter::repeat_n(*at, batch.len())).collect();
        for (arrival, departure) in arrival_of_span.iter().zip(&departure_of_span) {
            prop_assert!(*departure <= *arrival + config.timeout.0, "a span waited past its timeout");
        }

        let stats = processor.stats();
        prop_assert_eq!(stats.spans_in, stats.spans_out);
        prop_assert_eq!(stats.batches_out as usize, sent.len());
        prop_assert_eq!(stats.spans_held(), 0);
    }
}

#[test]
fn a_batch_sent_whole_is_not_copied() {
    let config = BatchConfig { send_batch_size: 10, ..BatchConfig::default() };
    let mut processor = config.build();
    let batch = batch_of(&request_of("svc", (0..10).map(|id| span([1; 16], id)).collect()));
    let mut out = Output::new();
    processor.process(batch.clone(), Instant::now(), &mut out);
    let sent: Vec<_> = out.drain().collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].batch.bytes().as_ptr(), batch.bytes().as_ptr());
}

#[test]
fn size_trigger_sends_everything_held_in_pieces_of_the_maximum() {
    let config = BatchConfig { send_batch_size: 10, send_batch_max_size: 15, ..BatchConfig::default() };
    let mut processor = config.build();
    let now = Instant::now();
    let mut out = Output::new();
    processor.process(batch_of(&request_of("svc", (0..8).map(|id| span([1; 16], id)).collect())), now, &mut out);
    assert!(out.is_empty());
    assert_eq!(processor.next_deadline(), Some(now + Duration::from_millis(200)));
    processor.process(batch_of(&request_of("svc", (8..40).map(|id| span([1; 16], id)).collect())), now, &mut out);
    let sizes: Vec<usize> = out.drain().map(|routed| routed.batch.len()).collect();
    // 40 held: 15, 15, then 10 is still at the trigger, so it goes too.
    assert_eq!(sizes, vec![15, 15, 10]);
    assert_eq!(processor.next_deadline(), None);
}

#[test]
fn byte_limit_splits_and_triggers() {
    let padded = |id: u64| {
        let mut span = span([1; 16], id);
        span.name = "n".repeat(100);
        span
    };
    let config = BatchConfig { send_batch_max_bytes: 1000, ..BatchConfig::default() };
    let mut processor = config.build();
    let mut out = Output::new();
    processor.process(batch_of(&request_of("svc", (0..30).map(padded).collect())), Instant::now(), &mut out);
    let sent: Vec<SpanBatch> = out.drain().map(|routed| routed.batch).collect();
    assert!(sent.len() >= 3, "about 3.9 KB of spans fill three 1000-byte batches");
    assert!(sent.iter().all(|batch| batch.encoded_len() <= 1000));
    let held = processor.stats().spans_held();
    assert_eq!(sent.iter().map(SpanBatch::len).sum::<usize>() as u64 + held, 30);
}

#[test]
fn validation_follows_the_collector() {
    let invalid = BatchConfig { send_batch_size: 100, send_batch_max_size: 50, ..BatchConfig::default() };
    let errors = invalid.validate();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "send_batch_max_size");
    let parsed: BatchConfig = serde_json::from_str(r#"{"timeout": "5s", "send_batch_size": 1000}"#).unwrap();
    assert_eq!(parsed.timeout, GoDuration::from_secs(5));
    assert_eq!(parsed.send_batch_max_size, 0);
    let defaults: BatchConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(defaults, BatchConfig::default());
    assert_eq!((defaults.send_batch_size, defaults.timeout), (8192, GoDuration::from_millis(200)));
    let unknown = serde_json::from_str::<BatchConfig>(r#"{"metadata_keys": ["tenant"]}"#).unwrap_err();
    assert!(unknown.to_string().contains("metadata_keys"), "{unknown}");
}
