//! The MessagePack codec beside OTLP/JSON on the same requests, in one run.
//!
//! ## Results
//!
//! Ratio = OTLP/JSON time / MessagePack time in one `--quick` run (above 1: MessagePack is faster)
//! on a shared 2-core Xeon, 2026-12-02; noisy, so read them as "about the same":
//!
//! | group  |     1 |   100 |  1000 | MessagePack spans/s at 100 |
//! | ------ | ----: | ----: | ----: | -------------------------: |
//! | decode | 1.12x | 0.92x | 1.03x |                      298 k |
//! | encode | 0.88x | 0.90x | 0.99x |                      548 k |
//!
//! Why not faster than simd-json: both decoders spend most of their time in what they share — the
//! span writer (which records the batch's index as it writes) — and MessagePack still carries every
//! key as a string. What it buys is size: at 100 realistic spans, protobuf 57 697 B, MessagePack
//! 90 103 B, OTLP/JSON 116 169 B (MessagePack = 0.78x JSON, 1.56x protobuf; the bench prints
//! the sizes of every payload when it starts).
//!
//! Run: `cargo bench -p spanpipe-msgpack --bench codec` (on a shared machine: `-- --quick`).
//! Quote ratios of neighbours in one run, not times.
//!
//! Groups, each on `spanpipe_testkit::realistic` requests of 1, 100 and 1000 spans, throughput in
//! spans:
//! - `decode`: `spanpipe_msgpack::decode` vs `otlp_json::decode`, both into the indexed batch.
//!   simd-json parses in place, so the JSON side includes copying the body into a scratch buffer
//!   (as a receiver that keeps the body pays); MessagePack reads the body where it is.
//! - `encode`: `spanpipe_msgpack::encode` vs `otlp_json::encode` from the same batch, each into a
//!   fresh buffer.
//!
//! Both sides decode to the same batch; that is checked before anything is timed.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use spanpipe_codecs::otlp_json;
use spanpipe_core::SpanBatch;

const SIZES: [usize; 3] = [1, 100, 1000];

/// One request in the three encodings.
struct Payload {
    spans: usize,
    batch: SpanBatch,
    json: Vec<u8>,
    msgpack: Vec<u8>,
}

impl Payload {
    fn realistic(spans: usize) -> Self {
        let batch = SpanBatch::decode(Bytes::from(spanpipe_testkit::realistic::encoded(spans, 11)))
            .expect("realistic payloads are valid");
        let mut json = Vec::new();
        otlp_json::encode(&batch, &mut json);
        let mut msgpack = Vec::new();
        spanpipe_msgpack::encode(&batch, &mut msgpack);
        let from_msgpack = spanpipe_msgpack::decode(&msgpack).expect("our MessagePack decodes");
        let from_json = otlp_json::decode(&mut json.clone()).expect("our OTLP/JSON decodes");
        assert_eq!(from_msgpack.bytes(), batch.bytes(), "MessagePack must give back the batch");
        assert_eq!(from_json.len(), batch.len(), "OTLP/JSON must give back every span");
        eprintln!(
            "{spans} spans: protobuf {} B, MessagePack {} B, OTLP/JSON {} B",
            batch.encoded_len(),
            msgpack.len(),
            json.len()
        );
        Self { spans, batch, json, msgpack }
    }
}

fn codecs(c: &mut Criterion) {
    let payloads: Vec<_> = SIZES.iter().map(|&spans| Payload::realistic(spans)).collect();

    let mut decode = c.benchmark_group("decode");
    for payload in &payloads {
        decode.throughput(Throughput::Elements(payload.spans as u64));
        decode.bench_with_input(BenchmarkId::new("msgpack", payload.spans), payload, |b, p| {
            b.iter(|| spanpipe_msgpack::decode(black_box(&p.msgpack)).expect("valid"));
        });
        decode.bench_with_input(BenchmarkId::new("otlp_json", payload.spans), payload, |b, p| {
            b.iter(|| otlp_json::decode(&mut black_box(&p.json).clone()).expect("valid"));
        });
    }
    decode.finish();

    let mut encode = c.benchmark_group("encode");
    for payload in &payloads {
        encode.throughput(Throughput::Elements(payload.spans as u64));
        encode.bench_with_input(BenchmarkId::new("msgpack", payload.spans), payload, |b, p| {
            b.iter(|| {
                let mut out = Vec::new();
                spanpipe_msgpack::encode(black_box(&p.batch), &mut out);
                out
            });
        });
        encode.bench_with_input(BenchmarkId::new("otlp_json", payload.spans), payload, |b, p| {
            b.iter(|| {
                let mut out = Vec::new();
                otlp_json::encode(black_box(&p.batch), &mut out);
                out
            });
        });
    }
    encode.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
