//! Jaeger Thrift decode and encode throughput, in spans per second, with the baseline in the
//! same run: Apache Thrift's Rust library running the code its compiler generates from
//! jaeger-idl (`thrift_gen/`, Debian's thrift-compiler 0.17), decoding the same datagram into
//! its owned structs the way a Jaeger agent's generated processor does (`AgentSyncProcessor`).
//! `jaeger_proto_decode` does the same for Jaeger's protobuf model (the gRPC collector API), with
//! prost decoding the same `PostSpansRequest` into model.proto's structs (`api_v2/`) as its
//! baseline; figures in docs/PERFORMANCE.md.
//!
//! spanpipe's decoder does more than the baseline: it maps to OTLP, writes the canonical
//! protobuf and builds its index (the scan), while the baseline stops at a tree of Thrift
//! structs with no mapping at all.
//!
//! Datagrams: realistic spans (`spanpipe_testkit::realistic`, mapped to Jaeger by this crate's
//! encoder and packed into datagrams of at most 65,000 bytes; the largest datagram is used).
//!
//! Results (2-core VM shared with other builds, load average 2–4, so figures are noisy; two
//! runs of `cargo bench -p spanpipe-jaeger --bench decode -- --measurement-time 3
//! --warm-up-time 1 _decode`), in spans/s, taken with the system allocator this harness used
//! until the collector's (mimalloc, below) was installed; with mimalloc the baseline is faster
//! and the ratios lower (compact 2.2–2.7× at one span, 3.0–3.6× from 15 spans; binary 2.5–2.8×
//! and 2.8–3.3×) — docs/PERFORMANCE.md has both side by side:
//!
//! | spans in datagram | thrift crate compact | spanpipe compact | ratio | thrift crate binary | spanpipe binary | ratio |
//! |---|---|---|---|---|---|---|
//! | 1 | 276–314 K | 596–758 K | 2.2–2.4 | 352–353 K | 792–796 K | 2.25 |
//! | 15 | 390–449 K | 1.21–1.54 M | 3.1–3.4 | 524–536 K | 1.65–1.66 M | 3.1–3.2 |
//! | 98 (compact) / 69 (binary) | 462–490 K | 1.47–1.68 M | 3.0–3.6 | 554–557 K | 1.78–1.79 M | 3.2 |
//!
//! Before the single-pass decoder (tags read twice, log fields three times, every string
//! checked twice, every attribute written through two length frames and walked again by the
//! scan) the ratios were 1.0–1.6 (compact) and 1.2–1.9 (binary) on the same machine.
//!
//! These figures are old; docs/PERFORMANCE.md keeps the current ones, with the date of each
//! (its goals table, and "Where the two codec goals stand"). A one-span datagram is the hard
//! case. Its cost is per tag (the process's and the span's, ~25 in all): the baseline's cost is
//! too, two `String` allocations a tag, and what remains here is reading a tag (two length-checked
//! strings, the field headers around them) and writing its attribute, then the scan of the
//! output's structure (resource attributes, span fields, events), about a sixth of the time.

#[allow(clippy::all, clippy::pedantic, rust_2018_idioms, missing_debug_implementations, dead_code)]
#[path = "thrift_gen/agent.rs"]
mod agent;
#[allow(clippy::all, clippy::pedantic, rust_2018_idioms, missing_debug_implementations, dead_code)]
#[path = "thrift_gen/jaeger.rs"]
mod jaeger;
// Shared with the tests, which use more of it.
#[allow(dead_code)]
#[path = "api_v2/mod.rs"]
mod api_v2;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message as _;
use spanpipe_core::SpanBatch;
use spanpipe_jaeger::{
    decode_agent, decode_post_spans, encode_agent, encode_batch, split_into_datagrams, Protocol, MAX_DATAGRAM_SIZE,
};
use thrift::protocol::TSerializable;
use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TCompactInputProtocol, TCompactOutputProtocol, TInputProtocol,
};
use thrift::server::TProcessor;

/// Both sides allocate through the allocator the spanpipe binary installs, as the workspace
/// benchmarks in `benches/` do, so the ratio is the one a collector process sees (the baselines
/// allocate per field, so the allocator weighs on them most).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The generated processor's handler: takes the decoded batch and lets it go.
struct Discard;

impl agent::AgentSyncHandler for Discard {
    fn handle_emit_batch(&self, batch: jaeger::Batch) -> thrift::Result<()> {
        black_box(batch);
        Ok(())
    }
}

/// The largest datagram of a realistic request of `spans` spans.
fn datagram(protocol: Protocol, spans: usize) -> Vec<u8> {
    let batch = SpanBatch::decode(spanpipe_testkit::realistic::encoded(spans, 7).into()).expect("realistic OTLP");
    let datagrams = split_into_datagrams(protocol, &batch, MAX_DATAGRAM_SIZE).expect("realistic spans fit");
    datagrams.into_iter().max_by_key(|d| d.len()).expect("spans give datagrams").to_vec()
}

fn thrift_crate(protocol: Protocol, message: &[u8]) {
    let processor = agent::AgentSyncProcessor::new(Discard);
    let mut sink = Vec::new();
    let mut input: Box<dyn TInputProtocol + '_> = match protocol {
        Protocol::Compact => Box::new(TCompactInputProtocol::new(message)),
        Protocol::Binary => Box::new(TBinaryInputProtocol::new(message, false)),
    };
    let result = match protocol {
        Protocol::Compact => processor.process(&mut *input, &mut TCompactOutputProtocol::new(&mut sink)),
        Protocol::Binary => processor.process(&mut *input, &mut TBinaryOutputProtocol::new(&mut sink, true)),
    };
    result.expect("the thrift crate decodes the datagram");
}

fn decode(c: &mut Criterion) {
    for (protocol, name) in [(Protocol::Compact, "compact"), (Protocol::Binary, "binary")] {
        let mut group = c.benchmark_group(format!("jaeger_{name}_decode"));
        for requested in [1, 30, 300] {
            let message = datagram(protocol, requested);
            let spans = decode_agent(protocol, &message).expect("our datagram decodes").len();
            group.throughput(Throughput::Elements(spans as u64));
            group.bench_function(format!("thrift_crate/{spans}"), |b| b.iter(|| thrift_crate(protocol, &message)));
            group.bench_function(format!("spanpipe/{spans}"), |b| {
                b.iter(|| decode_agent(protocol, black_box(&message)).expect("decodes"))
            });
        }
        group.finish();
    }
}

/// The spans of [`datagram`] as a gRPC `PostSpansRequest` in Jaeger's protobuf model, the
/// process in the batch (as Jaeger's model batches are built).
fn post_spans_request(spans: usize) -> Vec<u8> {
    let otlp = decode_agent(Protocol::Binary, &datagram(Protocol::Binary, spans)).expect("our datagram decodes");
    let bare = encode_batch(Protocol::Binary, &otlp).expect("one resource");
    let batch = jaeger::Batch::read_from_in_protocol(&mut TBinaryInputProtocol::new(&bare[..], true))
        .expect("the thrift crate reads our batch");
    api_v2::post_spans(&batch, api_v2::Placement::Batch).encode_to_vec()
}

/// Jaeger's protobuf model (the gRPC collector API), against prost decoding the same request
/// into model.proto's structs: what a Rust gRPC server (tonic) does before any mapping.
fn decode_protobuf(c: &mut Criterion) {
    let mut group = c.benchmark_group("jaeger_proto_decode");
    for requested in [1, 30, 300] {
        let request = post_spans_request(requested);
        let spans = decode_post_spans(&request).expect("decodes").len();
        group.throughput(Throughput::Elements(spans as u64));
        group.bench_function(format!("prost_structs/{spans}"), |b| {
            b.iter(|| api_v2::PostSpansRequest::decode(black_box(&request[..])).expect("prost decodes"))
        });
        group.bench_function(format!("spanpipe/{spans}"), |b| {
            b.iter(|| decode_post_spans(black_box(&request)).expect("decodes"))
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("jaeger_encode");
    for requested in [1, 30, 300] {
        let message = datagram(Protocol::Compact, requested);
        let batch = decode_agent(Protocol::Compact, &message).expect("our datagram decodes");
        group.throughput(Throughput::Elements(batch.len() as u64));
        for (protocol, name) in [(Protocol::Compact, "compact"), (Protocol::Binary, "binary")] {
            group.bench_function(format!("spanpipe_{name}/{}", batch.len()), |b| {
                b.iter(|| encode_agent(protocol, black_box(&batch)).expect("encodes"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decode, decode_protobuf, encode);
criterion_main!(benches);
