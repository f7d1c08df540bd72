//! Zipkin decode and encode throughput, in spans per second, with the baseline in the same run:
//! serde_json decoding the same documents into serde-derived owned structs of the Zipkin v2 model
//! (what a typical Rust receiver does, and what zipkin-go does in Go).
//!
//! Documents: realistic spans (HTTP server/client pairs with ten tags, two annotations, local and
//! remote endpoints, 128-bit ids), at 1, 100 and 1000 spans per request; the same spans in Zipkin
//! v1 JSON for `zipkin_v1_json` (core annotations, the endpoint repeated on all 14 entries of a
//! span, an address annotation), which decodes to a byte-identical batch (checked before measuring).
//!
//! Both sides are timed the same way: the baseline reads the shared document and its structs are
//! dropped inside the timed loop; simd-json parses in place, so ours copies the document into a
//! reused scratch buffer inside the timed loop (a cost the baseline does not pay) and its batch is
//! dropped there too. This is the OTLP/JSON benchmark's method; an earlier version of this file
//! decoded pre-made copies and dropped the batches outside the timing, which left ours a cold
//! input and output on every iteration and the baseline none.
//!
//! `simd_json_tape_only` is a reference, not a decoder: the same copy and simd-json parse into the
//! tape that `zipkin_json` starts with, and nothing after it. It is the floor of any decoder built
//! on simd-json's tape, measured in the same run, so the share of the baseline's time left for
//! validation, mapping and writing can be read off every run rather than estimated.
//!
//! Figures, with how and when they were measured, are in docs/PERFORMANCE.md (one table per
//! change, each side by side with the commit before it; this machine's wall-clock noise makes
//! anything else meaningless). A v1 body is about 2.4 times the bytes of the same v2 spans
//! (every entry repeats its endpoint, whose address is parsed each time), and the converter keeps
//! each entry's owner in per-request vectors, so v1 decodes at roughly a third of v2's rate. The
//! v2 decoder also does more than the baseline: it validates ids, numbers and addresses, maps to
//! OTLP, and produces the indexed protobuf batch.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;
use spanpipe_zipkin::{
    decode_json, decode_proto, decode_v1_json, encode_json, encode_proto, DecodeOptions, DEFAULT_SERVICE_NAME,
};

/// Both sides allocate through the allocator the spanpipe binary installs, as the workspace
/// benchmarks in `benches/` do, so the ratio is the one a collector process sees (the baselines
/// allocate per field, so the allocator weighs on them most).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Zipkin v2 span model as owned structs: the baseline's target.
#[allow(dead_code)] // Fields are read only by the deserializer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Span {
    trace_id: String,
    parent_id: Option<String>,
    id: String,
    kind: Option<String>,
    name: Option<String>,
    timestamp: Option<u64>,
    duration: Option<u64>,
    local_endpoint: Option<Endpoint>,
    remote_endpoint: Option<Endpoint>,
    #[serde(default)]
    annotations: Vec<Annotation>,
    #[serde(default)]
    tags: HashMap<String, String>,
    debug: Option<bool>,
    shared: Option<bool>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    service_name: Option<String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
    port: Option<u16>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct Annotation {
    timestamp: u64,
    value: String,
}

/// `spans` realistic Zipkin v2 spans as a JSON document.
fn document(spans: usize) -> Vec<u8> {
    let mut out = String::from("[");
    for i in 0..spans {
        if i > 0 {
            out.push(',');
        }
        let (kind, service, peer) =
            if i % 2 == 0 { ("SERVER", "checkout", "frontend") } else { ("CLIENT", "frontend", "checkout") };
        let start = 1_700_000_000_000_000u64 + i as u64 * 37;
        out.push_str(&format!(
            r#"{{"traceId":"5b8efff798038103d269b633813fc6{t:02x}","parentId":"{p:016x}","id":"{s:016x}","kind":"{kind}","name":"post /api/cart/items","timestamp":{start},"duration":{d},"localEndpoint":{{"serviceName":"{service}","ipv4":"10.1.{a}.{b}","port":8080}},"remoteEndpoint":{{"serviceName":"{peer}","ipv4":"10.2.{a}.{b}","port":{port}}},"annotations":[{{"timestamp":{w},"value":"wire.send"}},{{"timestamp":{r},"value":"wire.recv"}}],"tags":{{"http.method":"POST","http.path":"/api/cart/items","http.status_code":"200","http.url":"https://shop.example.com/api/cart/items?session=a81f2c","http.user_agent":"Mozilla/5.0 (X11; Linux x86_64)","net.transport":"ip_tcp","otel.scope.name":"io.opentelemetry.okhttp-3.0","otel.scope.version":"1.32.0","otel.status_code":"OK","user.id":"u-{i}"}}}}"#,
            t = i % 256,
            p = 0x1000 + i as u64,
            s = 0x2000 + i as u64,
            d = 1200 + i % 500,
            a = i % 250,
            b = (i / 250) % 250,
            port = 40000 + i % 20000,
            w = start + 10,
            r = start + 900,
        ));
    }
    out.push(']');
    out.into_bytes()
}

/// The same spans as [`document`] in Zipkin v1 JSON, as a v1 tracer (Brave 4, zipkin-ruby) sends
/// them: kind and times as core annotations, every annotation and tag carrying the local endpoint,
/// the remote endpoint as an `sa`/`ca` address annotation.
fn v1_document(spans: usize) -> Vec<u8> {
    let tags = [
        ("http.method", "POST"),
        ("http.path", "/api/cart/items"),
        ("http.status_code", "200"),
        ("http.url", "https://shop.example.com/api/cart/items?session=a81f2c"),
        ("http.user_agent", "Mozilla/5.0 (X11; Linux x86_64)"),
        ("net.transport", "ip_tcp"),
        ("otel.scope.name", "io.opentelemetry.okhttp-3.0"),
        ("otel.scope.version", "1.32.0"),
        ("otel.status_code", "OK"),
    ];
    let mut out = String::from("[");
    for i in 0..spans {
        if i > 0 {
            out.push(',');
        }
        let ((begin, end, address), service, peer) = if i % 2 == 0 {
            (("sr", "ss", "ca"), "checkout", "frontend")
        } else {
            (("cs", "cr", "sa"), "frontend", "checkout")
        };
        let start = 1_700_000_000_000_000u64 + i as u64 * 37;
        let duration = 1200 + i as u64 % 500;
        let local =
            format!(r#"{{"serviceName":"{service}","ipv4":"10.1.{}.{}","port":8080}}"#, i % 250, (i / 250) % 250);
        let remote = format!(
            r#"{{"serviceName":"{peer}","ipv4":"10.2.{}.{}","port":{}}}"#,
            i % 250,
            (i / 250) % 250,
            40000 + i % 20000
        );
        out.push_str(&format!(
            r#"{{"traceId":"5b8efff798038103d269b633813fc6{t:02x}","parentId":"{p:016x}","id":"{s:016x}","name":"post /api/cart/items","timestamp":{start},"duration":{duration},"annotations":["#,
            t = i % 256,
            p = 0x1000 + i as u64,
            s = 0x2000 + i as u64,
        ));
        for (at, value) in
            [(start, begin), (start + 10, "wire.send"), (start + 900, "wire.recv"), (start + duration, end)]
        {
            out.push_str(&format!(r#"{{"timestamp":{at},"value":"{value}","endpoint":{local}}},"#));
        }
        out.pop();
        out.push_str(r#"],"binaryAnnotations":["#);
        for (key, value) in tags {
            out.push_str(&format!(r#"{{"key":"{key}","value":"{value}","endpoint":{local}}},"#));
        }
        out.push_str(&format!(r#"{{"key":"user.id","value":"u-{i}","endpoint":{local}}},"#));
        out.push_str(&format!(r#"{{"key":"{address}","value":true,"endpoint":{remote}}}]}}"#));
    }
    out.push(']');
    out.into_bytes()
}

fn decode(c: &mut Criterion) {
    for spans in [1usize, 100, 1000] {
        let json = document(spans);
        let mut group = c.benchmark_group(format!("zipkin_decode/{spans}"));
        group.throughput(Throughput::Elements(spans as u64));
        group.bench_function("serde_json_structs", |b| {
            b.iter(|| black_box(serde_json::from_slice::<Vec<Span>>(black_box(&json)).expect("valid document")))
        });
        // simd-json parses in place: the document is copied into a scratch buffer inside the timed
        // region (charged to the decoder, as in the OTLP/JSON benchmark), and the batch is dropped
        // there too, as the baseline's structs are.
        let mut scratch = Vec::with_capacity(json.len());
        group.bench_function("zipkin_json", |b| {
            b.iter(|| {
                scratch.clear();
                scratch.extend_from_slice(black_box(&json));
                decode_json(&mut scratch, DecodeOptions::default()).expect("valid document").len()
            })
        });
        // The floor under `zipkin_json`: its copy and parse, without the decoding.
        group.bench_function("simd_json_tape_only", |b| {
            b.iter(|| {
                scratch.clear();
                scratch.extend_from_slice(black_box(&json));
                spanpipe_codecs::json_tape::with_tape(&mut scratch, |tape| black_box(tape.0.len())).expect("valid")
            })
        });
        let v1 = v1_document(spans);
        group.bench_function("zipkin_v1_json", |b| {
            b.iter(|| {
                scratch.clear();
                scratch.extend_from_slice(black_box(&v1));
                decode_v1_json(&mut scratch, DecodeOptions::default()).expect("valid document").len()
            })
        });
        let batch = decode_json(&mut json.clone(), DecodeOptions::default()).expect("valid document");
        let from_v1 = decode_v1_json(&mut v1.clone(), DecodeOptions::default()).expect("valid document");
        assert_eq!(from_v1.bytes(), batch.bytes(), "the v1 document must hold the same spans as the v2 one");
        let mut proto = Vec::new();
        encode_proto(&batch, DEFAULT_SERVICE_NAME, &mut proto);
        group.bench_function("zipkin_proto", |b| {
            b.iter(|| black_box(decode_proto(black_box(&proto), DecodeOptions::default()).expect("valid body")))
        });
        group.finish();

        let mut group = c.benchmark_group(format!("zipkin_encode/{spans}"));
        group.throughput(Throughput::Elements(spans as u64));
        group.bench_function("zipkin_json", |b| {
            b.iter(|| {
                let mut out = String::with_capacity(json.len());
                encode_json(black_box(&batch), DEFAULT_SERVICE_NAME, &mut out);
                black_box(out)
            })
        });
        group.bench_function("zipkin_proto", |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(proto.len());
                encode_proto(black_box(&batch), DEFAULT_SERVICE_NAME, &mut out);
                black_box(out)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, decode);
criterion_main!(benches);
