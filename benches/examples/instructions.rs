//! Runs one workload of the `codecs` benchmark a fixed number of times, for counting instructions
//! under callgrind — the noise-free cross-check of the wall-clock ratios on a shared machine.
//!
//! ```text
//! cargo build --release -p spanpipe-benches --example instructions
//! valgrind --tool=callgrind --toggle-collect='instructions::measured' \
//!     target/release/examples/instructions index_build/prost 100 20
//! ```
//!
//! Only `measured` is counted (a warm-up call runs first, uncounted), so the `Collected` total
//! divided by the iteration count is the cost of one iteration. `benches/instructions.sh` does this
//! for every pair and prints the ratio table. Workload names are the benchmark ids without the size.

use std::hint::black_box;
use std::process::ExitCode;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use spanpipe_benches::{decode_quick, filter_every_other_span, keep_every_other_span, walk_batch, walk_prost, Payload};
use spanpipe_codecs::otlp_json;
use spanpipe_core::SpanBatch;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Every workload, named as in the benchmark.
const WORKLOADS: &[&str] = &[
    "index_build/spanpipe",
    "index_build/prost",
    "index_build/quick-protobuf",
    "attribute_walk/spanpipe",
    "attribute_walk/prost",
    "attribute_walk/spanpipe_decode+walk",
    "attribute_walk/prost_decode+walk",
    "reframe_half/spanpipe_filter",
    "reframe_half/prost_drop+encode",
    "reframe_half/spanpipe_decode+filter",
    "reframe_half/prost_decode+drop+encode",
    "json_decode/spanpipe",
    "json_decode/serde_json",
    "json_encode/spanpipe",
    "json_encode/serde_json",
];

/// Reused buffers, as in the benchmark.
struct Buffers {
    scratch: Vec<u8>,
    out: Vec<u8>,
}

fn run(workload: &str, payload: &Payload, buffers: &mut Buffers, iterations: usize) {
    let bytes = &payload.proto;
    for _ in 0..iterations {
        match workload {
            "index_build/spanpipe" => {
                let _ = black_box(SpanBatch::decode(black_box(bytes).clone()));
            }
            "index_build/prost" => {
                let _ = black_box(ExportTraceServiceRequest::decode(black_box(bytes.as_ref())));
            }
            "index_build/quick-protobuf" => {
                let _ = black_box(decode_quick(black_box(bytes.as_ref())));
            }
            "attribute_walk/spanpipe" => {
                let _ = black_box(walk_batch(black_box(&payload.batch)));
            }
            "attribute_walk/prost" => {
                let _ = black_box(walk_prost(black_box(&payload.request)));
            }
            "attribute_walk/spanpipe_decode+walk" => {
                black_box(walk_batch(&SpanBatch::decode(black_box(bytes).clone()).expect("indexes")));
            }
            "attribute_walk/prost_decode+walk" => {
                black_box(walk_prost(&ExportTraceServiceRequest::decode(black_box(bytes.as_ref())).expect("decodes")));
            }
            "reframe_half/spanpipe_filter" => {
                let _ = black_box(filter_every_other_span(black_box(&payload.batch)));
            }
            // The benchmark clones outside its timed region; here the clone is counted, so this
            // one workload is not comparable to its benchmark and `instructions.sh` leaves it out.
            "reframe_half/prost_drop+encode" => {
                let mut request = payload.request.clone();
                keep_every_other_span(&mut request);
                black_box(request.encode_to_vec());
            }
            "reframe_half/spanpipe_decode+filter" => {
                black_box(filter_every_other_span(&SpanBatch::decode(black_box(bytes).clone()).expect("indexes")));
            }
            "reframe_half/prost_decode+drop+encode" => {
                let mut request = ExportTraceServiceRequest::decode(black_box(bytes.as_ref())).expect("decodes");
                keep_every_other_span(&mut request);
                black_box(request.encode_to_vec());
            }
            "json_decode/spanpipe" => {
                buffers.scratch.clear();
                buffers.scratch.extend_from_slice(black_box(&payload.json));
                black_box(otlp_json::decode(&mut buffers.scratch).expect("decodes"));
            }
            "json_decode/serde_json" => {
                black_box(
                    serde_json::from_slice::<ExportTraceServiceRequest>(black_box(&payload.json)).expect("decodes"),
                );
            }
            "json_encode/spanpipe" => {
                buffers.out.clear();
                otlp_json::encode(black_box(&payload.batch), &mut buffers.out);
                black_box(buffers.out.len());
            }
            "json_encode/serde_json" => {
                buffers.out.clear();
                serde_json::to_writer(&mut buffers.out, black_box(&payload.request)).expect("encodes");
                black_box(buffers.out.len());
            }
            _ => unreachable!("workload names are checked in main"),
        }
    }
}

/// The counted region: callgrind's `--toggle-collect` names this function.
#[inline(never)]
fn measured(workload: &str, payload: &Payload, buffers: &mut Buffers, iterations: usize) {
    run(workload, payload, buffers, iterations);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [workload, spans, iterations] if WORKLOADS.contains(&workload.as_str()) => {
            spans.parse::<usize>().ok().zip(iterations.parse::<usize>().ok()).map(|(s, i)| (workload, s, i))
        }
        _ => None,
    };
    let Some((workload, spans, iterations)) = parsed else {
        eprintln!("usage: instructions <workload> <spans> <iterations>\nworkloads: {}", WORKLOADS.join(", "));
        return ExitCode::FAILURE;
    };
    let payload = Payload::realistic(spans);
    let mut buffers =
        Buffers { scratch: Vec::with_capacity(payload.json.len()), out: Vec::with_capacity(payload.json.len()) };
    run(workload, &payload, &mut buffers, 1);
    measured(workload, &payload, &mut buffers, iterations);
    ExitCode::SUCCESS
}
