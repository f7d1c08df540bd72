//! spanpipe's span batch and codecs, each beside the baseline it replaces, in one run.
//!
//! ## Results
//!
//! Ratio = baseline time / spanpipe time, pair measured side by side in one run (above 1: spanpipe
//! is faster); median of three short runs (`--warm-up-time 1 --measurement-time 3`) on a shared
//! 2-core Xeon @ 2.8 GHz, 2026-11-25. `instr` = the same ratio in instructions per iteration under
//! callgrind (`benches/instructions.sh`), which repeats exactly. Details and spread:
//! docs/PERFORMANCE.md.
//!
//! | group          | pair                                       |     1 |   100 |  8192 | instr (100) |
//! | -------------- | ------------------------------------------ | ----: | ----: | ----: | ----------: |
//! | index_build    | spanpipe vs prost                          | 1.25x | 1.20x | 1.51x |       1.35x |
//! | index_build    | spanpipe vs quick-protobuf                 | 0.95x | 0.89x | 1.37x |       0.89x |
//! | attribute_walk | walk only, views vs prost structs          | 0.04x | 0.07x | 0.07x |       0.03x |
//! | attribute_walk | decode + walk                              | 0.86x | 0.83x | 1.03x |       0.76x |
//! | reframe_half   | filter vs drop + encode (decoded)          | 9.3x  | 27.9x | 24.0x |             |
//! | reframe_half   | decode + filter vs decode + drop + encode  | 1.81x | 1.25x | 2.31x |       1.72x |
//! | json_decode    | spanpipe vs serde_json                     | 1.26x | 1.62x | 1.49x |       1.28x |
//! | json_encode    | spanpipe vs serde_json                     | 0.67x | 0.45x | 0.53x |       0.63x |
//!
//! Time per iteration at 100 spans (third run, context only): index_build 225 us (prost 260 us),
//! json_decode 373 us (serde_json 603 us), json_encode 431 us (serde_json 191 us).
//!
//! Run: `cargo bench -p spanpipe-benches --bench codecs` (on a shared machine, shorten it:
//! `-- --warm-up-time 1 --measurement-time 3`). Quote ratios of neighbours in one run, not times.
//!
//! Groups (each on the realistic payloads of 1, 100 and 8192 spans, throughput in spans and bytes):
//! - `index_build`: `SpanBatch::decode` (the validating one-pass index) vs prost's full decode
//!   into `opentelemetry-proto` structs vs quick-protobuf's decode into borrowed `Cow` structs.
//! - `attribute_walk`: every span attribute read through the lazy views vs through prost's structs,
//!   walk only and decode + walk (what a processor that reads attributes pays per request).
//! - `reframe_half`: a new request with every other span. `SpanBatch::filter` on an indexed batch
//!   vs prost drop + encode of decoded structs, and both again starting from the bytes.
//! - `json_decode`: `otlp_json::decode` (simd-json, in place, so the time includes copying the
//!   input into a scratch buffer) vs `serde_json::from_slice` into `opentelemetry-proto` structs.
//! - `json_encode`: `otlp_json::encode` vs `serde_json::to_writer` of the prost structs, both
//!   into a reused buffer.
//!
//! Every iteration builds its output and drops it (a pipeline stage in steady state), for our
//! path and the baseline alike. The inputs are checked for equivalence before anything is timed
//! (`spanpipe_benches::Payload::realistic`): both sides of every pair compute the same result.

use std::hint::black_box;
use std::sync::OnceLock;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use spanpipe_benches::{
    decode_quick, filter_every_other_span, keep_every_other_span, walk_batch, walk_prost, Payload, SIZES,
};
use spanpipe_codecs::otlp_json;
use spanpipe_core::SpanBatch;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The payloads of the size ladder, built and checked once per process.
fn payloads() -> &'static [Payload] {
    static PAYLOADS: OnceLock<Vec<Payload>> = OnceLock::new();
    PAYLOADS.get_or_init(|| SIZES.iter().map(|&spans| Payload::realistic(spans)).collect())
}

/// Sets the group up for one rung of the ladder: both throughputs, and flat sampling for the big
/// payload, whose iterations take milliseconds (linear sampling would ask for minutes).
fn rung(group: &mut BenchmarkGroup<'_, WallTime>, spans: usize, bytes: usize) {
    group.throughput(Throughput::ElementsAndBytes { elements: spans as u64, bytes: bytes as u64 });
    group.sampling_mode(if spans >= 1000 { SamplingMode::Flat } else { SamplingMode::Auto });
}

fn index_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("index_build");
    for payload in payloads() {
        rung(&mut group, payload.spans, payload.proto.len());
        let bytes = &payload.proto;
        group.bench_function(BenchmarkId::new("spanpipe", payload.spans), |b| {
            b.iter(|| SpanBatch::decode(black_box(bytes).clone()).expect("indexes"));
        });
        group.bench_function(BenchmarkId::new("prost", payload.spans), |b| {
            b.iter(|| ExportTraceServiceRequest::decode(black_box(bytes.as_ref())).expect("decodes"));
        });
        group.bench_function(BenchmarkId::new("quick-protobuf", payload.spans), |b| {
            b.iter(|| decode_quick(black_box(bytes.as_ref())).expect("decodes"));
        });
    }
    group.finish();
}

fn attribute_walk(c: &mut Criterion) {
    let mut group = c.benchmark_group("attribute_walk");
    for payload in payloads() {
        rung(&mut group, payload.spans, payload.proto.len());
        let bytes = &payload.proto;
        group.bench_function(BenchmarkId::new("spanpipe", payload.spans), |b| {
            b.iter(|| walk_batch(black_box(&payload.batch)));
        });
        group.bench_function(BenchmarkId::new("prost", payload.spans), |b| {
            b.iter(|| walk_prost(black_box(&payload.request)));
        });
        group.bench_function(BenchmarkId::new("spanpipe_decode+walk", payload.spans), |b| {
            b.iter(|| walk_batch(&SpanBatch::decode(black_box(bytes).clone()).expect("indexes")));
        });
        group.bench_function(BenchmarkId::new("prost_decode+walk", payload.spans), |b| {
            b.iter(|| walk_prost(&ExportTraceServiceRequest::decode(black_box(bytes.as_ref())).expect("decodes")));
        });
    }
    group.finish();
}

fn reframe_half(c: &mut Criterion) {
    let mut group = c.benchmark_group("reframe_half");
    for payload in payloads() {
        rung(&mut group, payload.spans, payload.proto.len());
        let bytes = &payload.proto;
        let size = if payload.spans >= 1000 { BatchSize::LargeInput } else { BatchSize::SmallInput };
        group.bench_function(BenchmarkId::new("spanpipe_filter", payload.spans), |b| {
            b.iter(|| filter_every_other_span(black_box(&payload.batch)));
        });
        // The prost structs are consumed by the drop, so each iteration gets a clone, made
        // outside the timed region.
        group.bench_function(BenchmarkId::new("prost_drop+encode", payload.spans), |b| {
            b.iter_batched(
                || payload.request.clone(),
                |mut request| {
                    keep_every_other_span(&mut request);
                    request.encode_to_vec()
                },
                size,
            );
        });
        group.bench_function(BenchmarkId::new("spanpipe_decode+filter", payload.spans), |b| {
            b.iter(|| filter_every_other_span(&SpanBatch::decode(black_box(bytes).clone()).expect("indexes")));
        });
        group.bench_function(BenchmarkId::new("prost_decode+drop+encode", payload.spans), |b| {
            b.iter(|| {
                let mut request = ExportTraceServiceRequest::decode(black_box(bytes.as_ref())).expect("decodes");
                keep_every_other_span(&mut request);
                request.encode_to_vec()
            });
        });
    }
    group.finish();
}

fn json_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("json_decode");
    for payload in payloads() {
        rung(&mut group, payload.spans, payload.json.len());
        let json = &payload.json;
        // simd-json parses in place: copy the request into a scratch buffer inside the timed
        // region, as a receiver that keeps the body it was handed would have to.
        let mut scratch = Vec::with_capacity(json.len());
        group.bench_function(BenchmarkId::new("spanpipe", payload.spans), |b| {
            b.iter(|| {
                scratch.clear();
                scratch.extend_from_slice(black_box(json));
                otlp_json::decode(&mut scratch).expect("decodes")
            });
        });
        group.bench_function(BenchmarkId::new("serde_json", payload.spans), |b| {
            b.iter(|| serde_json::from_slice::<ExportTraceServiceRequest>(black_box(json)).expect("decodes"));
        });
    }
    group.finish();
}

fn json_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("json_encode");
    for payload in payloads() {
        rung(&mut group, payload.spans, payload.json.len());
        let mut out = Vec::with_capacity(payload.json.len());
        group.bench_function(BenchmarkId::new("spanpipe", payload.spans), |b| {
            b.iter(|| {
                out.clear();
                otlp_json::encode(black_box(&payload.batch), &mut out);
                out.len()
            });
        });
        group.bench_function(BenchmarkId::new("serde_json", payload.spans), |b| {
            b.iter(|| {
                out.clear();
                serde_json::to_writer(&mut out, black_box(&payload.request)).expect("encodes");
                out.len()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, index_build, attribute_walk, reframe_half, json_decode, json_encode);
criterion_main!(benches);
