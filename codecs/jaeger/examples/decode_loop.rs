//! Decodes one realistic Jaeger datagram over and over: a steady workload for a profiler
//! (`perf record -e cpu-clock`, `valgrind --tool=callgrind`).
//!
//! `cargo run --release -p spanpipe-jaeger --example decode_loop -- [compact|binary] [spans] [iterations]`
//! (`spans` as the benchmark asks for them: the largest datagram of that many realistic spans).

// A profiling workload: printing what it decoded is its only output.
#![allow(clippy::print_stdout)]

use spanpipe_core::SpanBatch;
use spanpipe_jaeger::{decode_agent, split_into_datagrams, Protocol, MAX_DATAGRAM_SIZE};

fn main() {
    let mut args = std::env::args().skip(1);
    let protocol = match args.next().as_deref() {
        Some("binary") => Protocol::Binary,
        _ => Protocol::Compact,
    };
    let spans: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let batch = SpanBatch::decode(spanpipe_testkit::realistic::encoded(spans, 7).into()).expect("realistic OTLP");
    let datagrams = split_into_datagrams(protocol, &batch, MAX_DATAGRAM_SIZE).expect("realistic spans fit");
    let datagram = datagrams.into_iter().max_by_key(|d| d.len()).expect("spans give datagrams");
    let mut decoded = 0;
    for _ in 0..iterations {
        decoded += decode_agent(protocol, std::hint::black_box(&datagram)).expect("decodes").len();
    }
    println!("{} bytes, {} spans decoded", datagram.len(), decoded);
}
