//! Writes the seed corpus of the fuzz targets into `fuzz/corpus/`: realistic requests of several
//! sizes in protobuf and in OTLP/JSON, the OTLP/JSON test vectors, and a few malformed inputs, so
//! the fuzzer starts from the structures it must explore. Run from the workspace root:
//! `cargo run -p spanpipe-fuzz-checks --example seed_corpus`.

use std::path::Path;

use bytes::Bytes;
use spanpipe_codecs::otlp_json;
use spanpipe_core::SpanBatch;
use spanpipe_testkit::realistic;

fn write(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), data)
}

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let (proto_dir, json_dir) = (root.join("otlp_proto"), root.join("otlp_json"));
    for (spans, seed) in [(1, 1), (2, 2), (3, 3), (5, 4), (12, 5)] {
        let bytes = realistic::encoded(spans, seed);
        write(&proto_dir, &format!("realistic_{spans}_spans_seed_{seed}.pb"), &bytes)?;
        let batch = SpanBatch::decode(Bytes::from(bytes)).expect("realistic payloads are valid");
        let mut json = Vec::new();
        otlp_json::encode(&batch, &mut json);
        write(&json_dir, &format!("realistic_{spans}_spans_seed_{seed}.json"), &json)?;
    }
    // Malformed protobuf: a truncated request and a span with a 15-byte trace id.
    let valid = realistic::encoded(2, 9);
    write(&proto_dir, "truncated.pb", &valid[..valid.len() / 2])?;
    write(
        &proto_dir,
        "short_trace_id.pb",
        &[
            0x0a, 0x17, 0x12, 0x15, 0x12, 0x13, 0x0a, 0x0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x12,
            0x00,
        ],
    )?;
    // Every OTLP/JSON test vector, valid and invalid.
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../codecs/tests/vectors");
    for dir in [vectors.clone(), vectors.join("invalid")] {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("vector.json");
                write(&json_dir, &format!("vector_{name}"), &std::fs::read(&path)?)?;
            }
        }
    }
    Ok(())
}
