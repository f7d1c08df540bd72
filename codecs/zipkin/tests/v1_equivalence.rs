//! Zipkin v1 ≡ v2: a generated v2 span, written as v2 JSON and as the v1 JSON zipkin's
//! `V2SpanConverter`/`V1SpanWriter` would write for it, decodes to the same batch through
//! [`ZipkinV2Json`] and [`ZipkinV1Json`]. This checks the v1 conversion (kinds and times from core
//! annotations, endpoints from annotation endpoints, remote endpoints from `ca`/`sa`/`ma`, tags
//! from binary annotations, of which the last of a key counts, the `lc` marker, `traceIdHigh`)
//! against the v2 decoder, which the vectors pin to the specification.
//!
//! The generated spans hold what v1 can say: a local endpoint with a service name (core
//! annotations need one), a remote one under another service name (zipkin drops the name of a
//! `ca` that repeats the server's own), annotations in time order with names that are not core
//! annotation values, a timestamp on every span with a kind, and no duration without a timestamp.

mod common;

use bytes::Bytes;
use common::{endpoint, endpoint_json, kind, v2_json, Kind, ZipkinSpan};
use proptest::prelude::*;
use serde_json::{json, Value};
use spanpipe_codecs::Codec;
use spanpipe_zipkin::{DecodeOptions, ZipkinV1Json, ZipkinV2Json};

/// The core annotations of a kind at the begin and end of a span, and the address annotation key
/// for its remote endpoint (`V2SpanConverter`).
fn v1_annotations(kind: Kind) -> (&'static str, &'static str, &'static str) {
    match kind {
        Kind::Client => ("cs", "cr", "sa"),
        Kind::Server => ("sr", "ss", "ca"),
        Kind::Producer => ("ms", "ws", "ma"),
        Kind::Consumer => ("wr", "mr", "ma"),
    }
}

/// A generated span, whether its v1 form writes the high half of the trace id as `traceIdHigh`
/// beside a 16-digit `traceId`, and binary annotations its v1 form writes before the span's own
/// tags, of keys the span has: zipkin's span keeps the last value of a key, so they change
/// nothing.
#[derive(Clone, Debug)]
struct Case {
    span: ZipkinSpan,
    split_trace_id: bool,
    earlier_tags: Vec<(String, String)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (1..=u128::MAX, any::<bool>(), 1..=u64::MAX, proptest::option::of(1..=u64::MAX)),
        kind(),
        "\\PC{0,10}",
        (proptest::option::of(1u64..1 << 52), 0u64..1 << 40, any::<bool>()),
        ("[a-z]{1,8}", endpoint(), proptest::option::of(endpoint())),
        proptest::collection::vec((0u64..1 << 52, "[a-z][a-z .]{2,10}"), 0..4),
        proptest::collection::btree_map("t\\.[a-z]{1,6}", "\\PC{0,10}", 0..5),
        any::<bool>(),
        proptest::collection::vec((any::<prop::sample::Index>(), "\\PC{0,6}"), 0..4),
    )
        .prop_map(
            |(
                (trace_id, split_trace_id, id, parent_id),
                kind,
                name,
                (timestamp, duration, has_timestamp),
                (service, mut local, remote),
                mut annotations,
                tags,
                debug,
                earlier,
            )| {
                local.service = format!("l-{service}");
                let remote = remote.map(|mut remote| {
                    if !remote.service.is_empty() {
                        remote.service = format!("r-{}", remote.service);
                    }
                    remote
                });
                // Spans with a kind need a timestamp for their begin annotation; a duration needs a
                // timestamp to be kept (zipkin drops a v1 span's duration without one).
                let timestamp = timestamp.filter(|_| has_timestamp || kind.is_some()).or(kind.map(|_| 1));
                let duration = if timestamp.is_some() { duration } else { 0 };
                annotations.sort_by_key(|&(timestamp, _)| timestamp);
                let span = ZipkinSpan {
                    trace_id,
                    id,
                    parent_id: parent_id.filter(|&parent| parent != id),
                    kind,
                    name,
                    timestamp,
                    duration,
                    local: Some(local),
                    remote,
                    annotations,
                    tags,
                    debug,
                    shared: false,
                };
                let keys: Vec<&String> = span.tags.keys().collect();
                let earlier_tags = if keys.is_empty() {
                    Vec::new()
                } else {
                    earlier.into_iter().map(|(pick, value)| (pick.get(&keys).to_string(), value)).collect()
                };
                Case { span, split_trace_id: split_trace_id && trace_id >> 64 != 0, earlier_tags }
            },
        )
}

/// The v1 form, as zipkin's v2 → v1 conversion writes it: core annotations for the kind at the
/// span's begin and (with a duration) end, every annotation and tag with the local endpoint (the
/// case's earlier tags first), the remote endpoint as an address annotation, and an empty `lc` tag
/// to carry the local endpoint of a span without a kind.
fn v1_json(cases: &[Case]) -> Vec<u8> {
    let spans: Vec<Value> = cases
        .iter()
        .map(|Case { span, split_trace_id, earlier_tags }| {
            let local = endpoint_json(span.local.as_ref().expect("v1 spans have a local endpoint"));
            let mut object = serde_json::Map::new();
            if *split_trace_id {
                object.insert("traceIdHigh".into(), json!(format!("{:016x}", span.trace_id >> 64)));
                object.insert("traceId".into(), json!(format!("{:016x}", span.trace_id as u64)));
            } else {
                object.insert("traceId".into(), json!(format!("{:032x}", span.trace_id)));
            }
            object.insert("id".into(), json!(format!("{:016x}", span.id)));
            if let Some(parent) = span.parent_id {
                object.insert("parentId".into(), json!(format!("{parent:016x}")));
            }
            object.insert("name".into(), json!(span.name));
            if let Some(timestamp) = span.timestamp {
                object.insert("timestamp".into(), json!(timestamp));
                if span.duration != 0 {
                    object.insert("duration".into(), json!(span.duration));
                }
            }
            let mut annotations: Vec<(u64, String)> = span.annotations.clone();
            let mut binary = Vec::new();
            match (span.kind, span.timestamp) {
                (Some(kind), Some(timestamp)) => {
                    let (begin, end, address) = v1_annotations(kind);
                    annotations.push((timestamp, begin.to_owned()));
                    if span.duration != 0 {
                        annotations.push((timestamp + span.duration, end.to_owned()));
                    }
                    if let Some(remote) = &span.remote {
                        binary.push(json!({"key": address, "value": true, "endpoint": endpoint_json(remote)}));
                    }
                }
                _ => {
                    binary.push(json!({"key": "lc", "value": "", "endpoint": local}));
                    if let Some(remote) = &span.remote {
                        binary.push(json!({"key": "sa", "value": true, "endpoint": endpoint_json(remote)}));
                    }
                }
            }
            annotations.sort_by_key(|(timestamp, _)| *timestamp);
            let annotations: Vec<Value> = annotations
                .iter()
                .map(|(timestamp, value)| json!({"timestamp": timestamp, "value": value, "endpoint": local}))
                .collect();
            let tags = earlier_tags.iter().map(|(key, value)| (key, value)).chain(&span.tags);
            binary.extend(tags.map(|(key, value)| json!({"key": key, "value": value, "endpoint": local})));
            object.insert("annotations".into(), Value::Array(annotations));
            object.insert("binaryAnnotations".into(), Value::Array(binary));
            object.insert("debug".into(), json!(span.debug));
            Value::Object(object)
        })
        .collect();
    serde_json::to_vec(&spans).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn v1_json_decodes_to_the_batch_of_the_equivalent_v2_json(
        cases in proptest::collection::vec(case(), 1..6),
        parse_string_tags in any::<bool>(),
    ) {
        let options = DecodeOptions { parse_string_tags };
        let spans: Vec<ZipkinSpan> = cases.iter().map(|case| case.span.clone()).collect();
        let from_v2 = ZipkinV2Json::new(options).decode(Bytes::from(v2_json(&spans))).expect("generated v2 decodes");
        let v1 = v1_json(&cases);
        let from_v1 = ZipkinV1Json::new(options).decode(Bytes::from(v1.clone())).expect("generated v1 decodes");
        prop_assert_eq!(
            common::request(&from_v1),
            common::request(&from_v2),
            "v1 body: {}",
            String::from_utf8_lossy(&v1)
        );
    }
}
