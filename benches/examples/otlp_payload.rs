//! Writes one realistic OTLP request (`spanpipe_testkit::realistic`, fixed seed) as the bodies a
//! load tool sends: `<dir>/request.pb` (OTLP/HTTP protobuf) and `<dir>/request.grpc` (the same
//! message behind gRPC's five-byte length prefix). Used by `tools/bench`.
//!
//! ```text
//! cargo run --release -p spanpipe-benches --example otlp_payload -- <dir> [spans]
//! ```

use std::process::ExitCode;

use prost::Message;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: otlp_payload <dir> [spans]");
        return ExitCode::FAILURE;
    };
    let spans: usize = match args.next().map(|text| text.parse()) {
        None => 100,
        Some(Ok(spans)) => spans,
        Some(Err(error)) => {
            eprintln!("otlp_payload: spans: {error}");
            return ExitCode::FAILURE;
        }
    };
    let body = spanpipe_testkit::realistic::request(spans, 7).encode_to_vec();
    let Ok(length) = u32::try_from(body.len()) else {
        eprintln!("otlp_payload: a request of {} bytes does not fit a gRPC frame", body.len());
        return ExitCode::FAILURE;
    };
    let mut framed = Vec::with_capacity(body.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(&body);
    let dir = std::path::Path::new(&dir);
    for (name, bytes) in [("request.pb", &body), ("request.grpc", &framed)] {
        if let Err(error) = std::fs::write(dir.join(name), bytes) {
            eprintln!("otlp_payload: writing {}: {error}", dir.join(name).display());
            return ExitCode::FAILURE;
        }
    }
    eprintln!("{spans} spans, {} bytes ({} per span)", body.len(), body.len() / spans.max(1));
    ExitCode::SUCCESS
}
