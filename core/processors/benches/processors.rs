//! Each processor on realistic payloads (100 and 8192 spans, ~500 B/span), beside what the same
//! work costs with prost structs (decode, change, encode), in one run.
//!
//! ## Results
//!
//! See the report of the run in `docs/PERFORMANCE.md` (quoted there by the lead); ratios of
//! neighbours in one run are what to compare, not times across runs on a shared machine.
//!
//! Groups:
//! - `attributes_redact`: delete `db.query.text` and hash `app.user.id` on every span, vs prost.
//! - `probabilistic_proportional_10`: keep 10% of traces and record `ot=th:…` in their
//!   `tracestate`, vs prost doing the same.
//! - `adaptive_10`: keep errors, slow spans and 10% of the rest (re-framing only).
//! - `routing_by_service`: partition by the resource's `service.name`, vs prost.
//! - `batch_100_into_8192`: 100-span requests gathered into 8192-span batches (one merge), vs
//!   prost decoding the requests, concatenating and encoding.
//!
//! Run: `cargo bench -p spanpipe-processors -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue};
use prost::Message;
use sha2::{Digest, Sha256};
use spanpipe_config::GoDuration;
use spanpipe_core::SpanBatch;
use spanpipe_processors::{
    ActionKind, AdaptiveSamplerConfig, AttributeActionConfig, AttributeSource, AttributesConfig, BatchConfig, Output,
    ProbabilisticSamplerConfig, Processor, RoutingConfig, RoutingTableEntry, SamplerMode,
};

const SIZES: [usize; 2] = [100, 8192];
const SEED: u64 = 0x5EED;

fn payload(spans: usize) -> (ExportTraceServiceRequest, Bytes, SpanBatch) {
    let request = spanpipe_testkit::realistic::request(spans, SEED);
    let bytes = Bytes::from(request.encode_to_vec());
    let batch = SpanBatch::decode(bytes.clone()).expect("realistic payloads index");
    (request, bytes, batch)
}

fn action(kind: ActionKind, key: &str) -> AttributeActionConfig {
    AttributeActionConfig {
        key: key.to_owned(),
        action: kind,
        value: None,
        from_attribute: String::new(),
        from_context: String::new(),
        pattern: String::new(),
        converted_type: String::new(),
    }
}

/// Runs one batch through `processor`, returning the bytes emitted (so nothing is optimised out).
fn drive(processor: &mut impl Processor, batch: SpanBatch) -> usize {
    let mut out = Output::new();
    processor.process(batch, Instant::now(), &mut out);
    out.drain().map(|routed| routed.batch.encoded_len()).sum()
}

fn hash_value(value: &mut Option<AnyValue>) {
    if let Some(Value::StringValue(text)) = value.as_ref().and_then(|value| value.value.as_ref()) {
        let digest = hex::encode(Sha256::digest(text.as_bytes()));
        *value = Some(AnyValue { value: Some(Value::StringValue(digest)) });
    }
}

fn bench_attributes(c: &mut Criterion) {
    let mut group = c.benchmark_group("attributes_redact");
    let config = AttributesConfig {
        actions: vec![action(ActionKind::Delete, "db.query.text"), action(ActionKind::Hash, "app.user.id")],
    };
    for spans in SIZES {
        let (_, bytes, batch) = payload(spans);
        group.throughput(Throughput::Elements(spans as u64));
        let mut processor = config.build().expect("valid");
        group.bench_with_input(BenchmarkId::new("spanpipe", spans), &batch, |b, batch| {
            b.iter(|| drive(&mut processor, black_box(batch.clone())));
        });
        group.bench_with_input(BenchmarkId::new("prost", spans), &bytes, |b, bytes| {
            b.iter(|| {
                let mut request = ExportTraceServiceRequest::decode(black_box(bytes.clone())).expect("valid");
                for resource in &mut request.resource_spans {
                    for scope in &mut resource.scope_spans {
                        for span in &mut scope.spans {
                            span.attributes.retain(|attribute| attribute.key != "db.query.text");
                            for attribute in
                                span.attributes.iter_mut().filter(|attribute| attribute.key == "app.user.id")
                            {
                                hash_value(&mut attribute.value);
                            }
                        }
                    }
                }
                request.encode_to_vec().len()
            });
        });
    }
    group.finish();
}

fn bench_probabilistic(c: &mut Criterion) {
    let mut group = c.benchmark_group("probabilistic_proportional_10");
    let config = ProbabilisticSamplerConfig {
        sampling_percentage: 10.0,
        mode: Some(SamplerMode::Proportional),
        ..ProbabilisticSamplerConfig::default()
    };
    for spans in SIZES {
        let (_, bytes, batch) = payload(spans);
        group.throughput(Throughput::Elements(spans as u64));
        let mut sampler = config.build();
        group.bench_with_input(BenchmarkId::new("spanpipe", spans), &batch, |b, batch| {
            b.iter(|| drive(&mut sampler, black_box(batch.clone())));
        });
        group.bench_with_input(BenchmarkId::new("prost", spans), &bytes, |b, bytes| {
            b.iter(|| {
                let mut request = ExportTraceServiceRequest::decode(black_box(bytes.clone())).expect("valid");
                for resource in &mut request.resource_spans {
                    for scope in &mut resource.scope_spans {
                        scope.spans.retain_mut(|span| {
                            let mut low = [0u8; 8];
                            low.copy_from_slice(&span.trace_id[8..16]);
                            let keep = u64::from_be_bytes(low) & ((1 << 56) - 1) >= 0xe6666666666666;
                            if keep {
                                span.trace_state = "ot=th:e666".to_owned();
                            }
                            keep
                        });
                    }
                }
                request.encode_to_vec().len()
            });
        });
    }
    group.finish();
}

fn bench_adaptive(c: &mut Criterion) {
    let mut group = c.benchmark_group("adaptive_10");
    let config =
        AdaptiveSamplerConfig { base_sampling_percentage: 10.0, latency_threshold: GoDuration::from_millis(500) };
    let handle = config.handle();
    for spans in SIZES {
        let (_, _, batch) = payload(spans);
        group.throughput(Throughput::Elements(spans as u64));
        let mut sampler = config.build(&handle);
        group.bench_with_input(BenchmarkId::new("spanpipe", spans), &batch, |b, batch| {
            b.iter(|| drive(&mut sampler, black_box(batch.clone())));
        });
    }
    group.finish();
}

fn bench_routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing_by_service");
    let (request, _, _) = payload(100);
    let services: Vec<String> = request
        .resource_spans
        .iter()
        .filter_map(|resource| resource.resource.as_ref())
        .filter_map(|resource| resource.attributes.iter().find(|attribute| attribute.key == "service.name"))
        .filter_map(|attribute| match attribute.value.as_ref().and_then(|value| value.value.as_ref()) {
            Some(Value::StringValue(name)) => Some(name.clone()),
            _ => None,
        })
        .collect();
    let config = RoutingConfig {
        from_attribute: "service.name".into(),
        attribute_source: AttributeSource::Resource,
        default_exporters: vec!["debug".into()],
        table: vec![RoutingTableEntry {
            value: services[0].clone(),
            statement: String::new(),
            exporters: vec!["otlp".into()],
        }],
        drop_resource_routing_attribute: false,
    };
    for spans in SIZES {
        let (_, bytes, batch) = payload(spans);
        group.throughput(Throughput::Elements(spans as u64));
        let mut router = config.build();
        group.bench_with_input(BenchmarkId::new("spanpipe", spans), &batch, |b, batch| {
            b.iter(|| drive(&mut router, black_box(batch.clone())));
        });
        group.bench_with_input(BenchmarkId::new("prost", spans), &bytes, |b, bytes| {
            b.iter(|| {
                let request = ExportTraceServiceRequest::decode(black_box(bytes.clone())).expect("valid");
                let (routed, rest): (Vec<_>, Vec<_>) = request.resource_spans.into_iter().partition(|resource| {
                    resource.resource.as_ref().is_some_and(|resource| {
                        resource.attributes.iter().any(|attribute| {
                            attribute.key == "service.name"
                                && matches!(attribute.value.as_ref().and_then(|value| value.value.as_ref()),
                                    Some(Value::StringValue(name)) if *name == services[0])
                        })
                    })
                });
                ExportTraceServiceRequest { resource_spans: routed }.encode_to_vec().len()
                    + ExportTraceServiceRequest { resource_spans: rest }.encode_to_vec().len()
            });
        });
    }
    group.finish();
}

fn bench_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_100_into_8192");
    let requests: Vec<(Bytes, SpanBatch)> = (0..82)
        .map(|index| {
            let request = spanpipe_testkit::realistic::request(100, SEED + index);
            let bytes = Bytes::from(request.encode_to_vec());
            let batch = SpanBatch::decode(bytes.clone()).expect("valid");
            (bytes, batch)
        })
        .collect();
    group.throughput(Throughput::Elements(8200));
    let config = BatchConfig::default();
    group.bench_function("spanpipe", |b| {
        b.iter_batched(
            || config.build(),
            |mut processor| {
                let mut out = Output::new();
                let now = Instant::now();
                for (_, batch) in &requests {
                    processor.process(batch.clone(), now, &mut out);
                }
                processor.flush(&mut out);
                out.drain().map(|routed| routed.batch.encoded_len()).sum::<usize>()
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("prost", |b| {
        b.iter(|| {
            let mut merged = ExportTraceServiceRequest::default();
            for (bytes, _) in &requests {
                let request = ExportTraceServiceRequest::decode(black_box(bytes.clone())).expect("valid");
                merged.resource_spans.extend(request.resource_spans);
            }
            merged.encode_to_vec().len()
        });
    });
    group.finish();
}

criterion_group!(benches, bench_attributes, bench_probabilistic, bench_adaptive, bench_routing, bench_batch);
criterion_main!(benches);
