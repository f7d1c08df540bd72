//! Round-trip properties:
//! - Zipkin → OTLP → Zipkin: generated Zipkin spans, sent as JSON or protobuf, decode, encode to
//!   Zipkin JSON, and the result means the same as the input (every field but `debug`/`shared`);
//!   JSON and protobuf forms of the same spans decode to the same batch, and re-decoding each
//!   encoder's output gives that batch again.
//! - OTLP → Zipkin → OTLP: generated batches holding what Zipkin can represent come back equal,
//!   through JSON and through protobuf, with string attributes and with typed ones
//!   (`parse_string_tags`).
//! - Protobuf's merge rule: the same spans with each endpoint split over two occurrences of its
//!   field decode to the same batch.
//! - A tag key given twice counts by its last value: spans whose tags repeat keys decode, as
//!   JSON and as protobuf, to the batch of the same spans with the last tag of each key only.

mod common;

use common::{endpoint, endpoint_json, kind, v2_json, Endpoint, Kind, ZipkinSpan};

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{json, Value};
use spanpipe_codecs::Codec;
use spanpipe_core::wire::{put_len_field, put_tag, put_varint};
use spanpipe_core::{Attributes, BatchWriter, SpanBatch, WireType};
use spanpipe_testkit::wire::{split_singular_messages, Cardinality, MessageShape};
use spanpipe_zipkin::{DecodeOptions, ZipkinV2Json, ZipkinV2Proto, DEFAULT_SERVICE_NAME};

// ---------------------------------------------------------------- Zipkin model (test side)

/// Tags that name resource attributes: they go to the resource and come back as tags.
const RESOURCE_TAGS: &[&str] = &["service.name", "host.name", "telemetry.sdk.language", "k8s.pod.name"];

/// Text that is an annotation name and nothing else (no `|` form, no leading quote).
fn plain_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ./_-]{0,12}"
}

fn zipkin_span() -> impl Strategy<Value = ZipkinSpan> {
    (
        (1..=u128::MAX, 1..=u64::MAX, proptest::option::of(1..=u64::MAX)),
        kind(),
        "\\PC{0,10}",
        (proptest::option::of(1u64..1 << 52), 0u64..1 << 40),
        (proptest::option::of(endpoint()), proptest::option::of(endpoint())),
        proptest::collection::vec((0u64..1 << 52, plain_text()), 0..4),
        // Tag keys outside the names the mapping gives a meaning, and some that name the
        // resource (`service.name` among them).
        proptest::collection::btree_map(
            prop_oneof![3 => "t\\.[a-z]{1,6}".boxed(), 1 => proptest::sample::select(RESOURCE_TAGS).prop_map(str::to_owned).boxed()],
            "\\PC{0,10}",
            0..5,
        ),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (trace_id, id, parent_id),
                kind,
                name,
                (timestamp, duration),
                (local, remote),
                annotations,
                tags,
                (debug, shared),
            )| {
                ZipkinSpan {
                    trace_id,
                    id,
                    parent_id: parent_id.filter(|&parent| parent != id),
                    kind,
                    name,
                    timestamp,
                    duration,
                    local,
                    remote,
                    annotations,
                    tags,
                    debug,
                    shared,
                }
            },
        )
}

fn put_uint(out: &mut Vec<u8>, number: u32, value: u64) {
    put_tag(out, number, WireType::Varint);
    put_varint(out, value);
}

fn endpoint_proto(endpoint: &Endpoint) -> Vec<u8> {
    let mut out = Vec::new();
    if !endpoint.service.is_empty() {
        put_len_field(&mut out, 1, endpoint.service.as_bytes());
    }
    if let Some(v4) = endpoint.ipv4 {
        put_len_field(&mut out, 2, &v4);
    }
    if let Some(v6) = endpoint.ipv6 {
        put_len_field(&mut out, 3, &v6);
    }
    if endpoint.port != 0 {
        put_uint(&mut out, 4, u64::from(endpoint.port));
    }
    out
}

fn to_proto(spans: &[ZipkinSpan]) -> Vec<u8> {
    to_proto_with_earlier_tags(spans, &[])
}

/// The spans as protobuf, each with the tags of `earlier` (by span index, if any) as map entries
/// before its own.
fn to_proto_with_earlier_tags(spans: &[ZipkinSpan], earlier: &[Vec<(String, String)>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, span) in spans.iter().enumerate() {
        let mut s = Vec::new();
        put_len_field(&mut s, 1, &span.trace_id.to_be_bytes());
        if let Some(parent) = span.parent_id {
            put_len_field(&mut s, 2, &parent.to_be_bytes());
        }
        put_len_field(&mut s, 3, &span.id.to_be_bytes());
        if let Some(kind) = span.kind {
            put_uint(&mut s, 4, kind.number());
        }
        put_len_field(&mut s, 5, span.name.as_bytes());
        if let Some(timestamp) = span.timestamp {
            put_tag(&mut s, 6, WireType::I64);
            s.extend_from_slice(&timestamp.to_le_bytes());
        }
        put_uint(&mut s, 7, span.duration);
        if let Some(local) = &span.local {
            put_len_field(&mut s, 8, &endpoint_proto(local));
        }
        if let Some(remote) = &span.remote {
            put_len_field(&mut s, 9, &endpoint_proto(remote));
        }
        for (timestamp, value) in &span.annotations {
            let mut annotation = Vec::new();
            put_tag(&mut annotation, 1, WireType::I64);
            annotation.extend_from_slice(&timestamp.to_le_bytes());
            put_len_field(&mut annotation, 2, value.as_bytes());
            put_len_field(&mut s, 10, &annotation);
        }
        let earlier = earlier.get(index).into_iter().flatten().map(|(key, value)| (key, value));
        for (key, value) in earlier.chain(&span.tags) {
            let mut entry = Vec::new();
            put_len_field(&mut entry, 1, key.as_bytes());
            put_len_field(&mut entry, 2, value.as_bytes());
            put_len_field(&mut s, 11, &entry);
        }
        put_uint(&mut s, 12, u64::from(span.debug));
        put_uint(&mut s, 13, u64::from(span.shared));
        put_len_field(&mut out, 1, &s);
    }
    out
}

/// What a Zipkin span means, in the form the encoder writes it: ids as numbers, the endpoint
/// address that survives (Zipkin → OTLP keeps one), the `service.name` tag as the local service
/// when the endpoint names none (and gone when it names the same), the default service name for a
/// local endpoint without one, no empty endpoints, no debug/shared.
fn meaning(span: &ZipkinSpan) -> Value {
    let mut tags = span.tags.clone();
    let mut local = span.local.clone().unwrap_or_default();
    if let Some(service) = tags.get("service.name").cloned() {
        if local.service.is_empty() {
            local.service = service;
            tags.remove("service.name");
        } else if local.service == service {
            tags.remove("service.name");
        }
    }
    let normal_endpoint = |endpoint: &Endpoint, default: &str| {
        let mut normal = Endpoint {
            service: if endpoint.service.is_empty() { default.to_owned() } else { endpoint.service.clone() },
            ..endpoint.clone()
        };
        if normal.ipv6.is_some() {
            normal.ipv4 = None;
        }
        normal
    };
    let local = normal_endpoint(&local, DEFAULT_SERVICE_NAME);
    let remote =
        span.remote.as_ref().map(|remote| normal_endpoint(remote, "")).filter(|remote| *remote != Endpoint::default());
    json!({
        "traceId": span.trace_id.to_string(),
        "id": span.id.to_string(),
        "parentId": span.parent_id.map(|parent| parent.to_string()),
        "kind": span.kind.map(Kind::name),
        "name": span.name,
        "timestamp": span.timestamp,
        "duration": span.duration,
        "localEndpoint": endpoint_json(&local),
        "remoteEndpoint": remote.as_ref().map(endpoint_json),
        "annotations": span.annotations,
        "tags": tags,
    })
}

/// The same meaning, read back from the encoder's Zipkin JSON.
fn meaning_of_encoded(span: &Value) -> Value {
    let hex =
        |key: &str| span.get(key).and_then(Value::as_str).map(|id| u128::from_str_radix(id, 16).unwrap().to_string());
    let annotations: Vec<(u64, String)> = span
        .get("annotations")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter().map(|a| (a["timestamp"].as_u64().unwrap(), a["value"].as_str().unwrap().to_owned())).collect()
        })
        .unwrap_or_default();
    json!({
        "traceId": hex("traceId"),
        "id": hex("id"),
        "parentId": hex("parentId"),
        "kind": span.get("kind"),
        "name": span.get("name").and_then(Value::as_str).unwrap_or(""),
        "timestamp": span.get("timestamp"),
        "duration": span.get("duration").and_then(Value::as_u64).unwrap_or(0),
        "localEndpoint": span["localEndpoint"],
        "remoteEndpoint": span.get("remoteEndpoint"),
        "annotations": annotations,
        "tags": span.get("tags").cloned().unwrap_or_else(|| json!({})),
    })
}

fn decode_json(body: Vec<u8>) -> SpanBatch {
    ZipkinV2Json::default().decode(Bytes::from(body)).expect("generated JSON decodes")
}

fn decode_proto(body: Vec<u8>) -> SpanBatch {
    ZipkinV2Proto::default().decode(Bytes::from(body)).expect("generated protobuf decodes")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn zipkin_to_otlp_to_zipkin_keeps_the_meaning(spans in proptest::collection::vec(zipkin_span(), 1..6)) {
        let from_json = decode_json(v2_json(&spans));
        let from_proto = decode_proto(to_proto(&spans));
        prop_assert_eq!(common::request(&from_json), common::request(&from_proto), "JSON and protobuf forms differ");

        let encoded = ZipkinV2Json::default().encode(&from_json).unwrap();
        let written: Vec<Value> = serde_json::from_slice(&encoded).unwrap();
        // Spans come out grouped by service and scope; compare them by id.
        let mut expected: Vec<Value> = spans.iter().map(meaning).collect();
        let mut actual: Vec<Value> = written.iter().map(meaning_of_encoded).collect();
        let by_id = |v: &Value| (v["traceId"].to_string(), v["id"].to_string(), v["name"].to_string(), v.to_string());
        expected.sort_by_key(by_id);
        actual.sort_by_key(by_id);
        prop_assert_eq!(actual, expected);

        // Each encoder's output is a fixed point: decoding and encoding it again gives it back
        // (the first round adds the default service name to spans without one).
        let json_codec = ZipkinV2Json::default();
        prop_assert_eq!(json_codec.encode(&decode_json(encoded.to_vec())).unwrap(), encoded.clone());
        let proto_codec = ZipkinV2Proto::default();
        let proto_encoded = proto_codec.encode(&from_proto).unwrap();
        prop_assert_eq!(proto_codec.encode(&decode_proto(proto_encoded.to_vec())).unwrap(), proto_encoded.clone());
        // And both encodings carry the same spans.
        prop_assert_eq!(common::request(&decode_proto(proto_encoded.to_vec())), common::request(&decode_json(encoded.to_vec())));
    }

    /// A singular message field given twice is the merge of the two, as protobuf says: the
    /// spans with every `local_endpoint` and `remote_endpoint` split over two occurrences (the
    /// second at the end of the span) decode to the same batch.
    #[test]
    fn endpoints_given_twice_merge(
        spans in proptest::collection::vec(zipkin_span(), 1..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 1..16),
    ) {
        static SPAN: MessageShape = MessageShape {
            fields: &[(8, Cardinality::Singular, &MessageShape::SCALARS), (9, Cardinality::Singular, &MessageShape::SCALARS)],
        };
        static LIST_OF_SPANS: MessageShape = MessageShape { fields: &[(1, Cardinality::Repeated, &SPAN)] };
        let body = to_proto(&spans);
        let mut picks = cuts.iter().cycle();
        let split = split_singular_messages(&body, &LIST_OF_SPANS, &mut |n| picks.next().expect("cycles").index(n + 1));
        let (merged, expected) = (decode_proto(split), decode_proto(body));
        prop_assert_eq!(merged.bytes(), expected.bytes());
    }
}

/// Tags the mapping gives a meaning to, with values that mean something and values that do not:
/// the last of each must count for the special meaning too.
fn special_tag() -> impl Strategy<Value = (String, String)> {
    let pick = |key: &'static str, values: &'static [&'static str]| {
        proptest::sample::select(values).prop_map(move |value| (key.to_owned(), value.to_owned()))
    };
    prop_oneof![
        pick("error", &["true", "false", "boom"]),
        pick("otel.status_code", &["OK", "ERROR", "nonsense"]),
        pick("otel.status_description", &["why"]),
        pick("span.kind", &["internal", "server"]),
        pick("otel.scope.name", &["scope-a", "scope-b"]),
        pick("host.name", &["node-1", "node-2"]),
        pick("service.name", &["cart", "shop"]),
        pick("otel.zipkin.absentField.startTime", &["true"]),
        pick("net.peer.ip", &["10.0.0.1", "not an address"]),
        pick("otel.dropped_attributes_count", &["2", "x"]),
    ]
}

/// The JSON document of `spans`, each span's `tags` object led by the members of `earlier` (by
/// span index): a JSON object repeating a key, which serde_json's maps cannot hold.
fn v2_json_with_earlier_tags(spans: &[ZipkinSpan], earlier: &[Vec<(String, String)>]) -> Vec<u8> {
    let documents: Vec<Value> = serde_json::from_slice(&v2_json(spans)).expect("generated JSON");
    let mut texts = Vec::new();
    for (index, mut span) in documents.into_iter().enumerate() {
        let own = span.as_object_mut().expect("a span object").remove("tags").expect("tags");
        let own = own.as_object().expect("a tags object").iter().map(|(key, value)| (key.clone(), value.clone()));
        let earlier = earlier.get(index).into_iter().flatten().map(|(key, value)| (key.clone(), json!(value)));
        let members: Vec<String> = earlier.chain(own).map(|(key, value)| format!("{}:{value}", json!(key))).collect();
        let mut text = serde_json::to_string(&span).expect("serializes");
        text.pop();
        texts.push(format!("{text},\"tags\":{{{}}}}}", members.join(",")));
    }
    format!("[{}]", texts.join(",")).into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// A tag key given twice counts by its last value, as in zipkin-go's map and so in the
    /// Collector: spans whose tags repeat keys (plain, special and resource ones) with other
    /// values decode, as JSON and as protobuf, to the batch the same spans with only the last of
    /// each make.
    #[test]
    fn a_tag_key_given_twice_counts_by_its_last_value(
        mut spans in proptest::collection::vec(zipkin_span(), 1..6),
        specials in proptest::collection::vec(proptest::collection::vec(special_tag(), 0..4), 6),
        picks in proptest::collection::vec(proptest::collection::vec((any::<prop::sample::Index>(), "\\PC{0,6}"), 0..5), 6),
    ) {
        for (span, specials) in spans.iter_mut().zip(specials) {
            span.tags.extend(specials);
        }
        // Earlier tags only of keys the span has, so that the span's own tags are what counts.
        let earlier: Vec<Vec<(String, String)>> = spans
            .iter()
            .zip(&picks)
            .map(|(span, picks)| {
                let keys: Vec<&String> = span.tags.keys().collect();
                if keys.is_empty() {
                    return Vec::new();
                }
                picks.iter().map(|(pick, value)| (pick.get(&keys).to_string(), value.clone())).collect()
            })
            .collect();
        let json = v2_json_with_earlier_tags(&spans, &earlier);
        let (repeated, expected) = (decode_json(json.clone()), decode_json(v2_json(&spans)));
        prop_assert_eq!(repeated.bytes(), expected.bytes(), "{}", String::from_utf8_lossy(&json));
        let (repeated, expected) = (decode_proto(to_proto_with_earlier_tags(&spans, &earlier)), decode_proto(to_proto(&spans)));
        prop_assert_eq!(repeated.bytes(), expected.bytes());
    }
}

/// The Collector's `otel.zipkin.absentField.startTime` marker is the translation's own: a tag of
/// that name is not kept, or (typed `true` by `parse_string_tags`) it would make the encoder drop
/// a timestamp the span has. Found by the `zipkin_json` fuzz target.
#[test]
fn a_start_time_marker_tag_beside_a_timestamp_is_not_kept() {
    let body = br#"[{"traceId":"1","id":"a","timestamp":7,"duration":1,"tags":{"otel.zipkin.absentField.startTime":"true","k":"v"}}]"#;
    for parse_string_tags in [false, true] {
        let codec = ZipkinV2Json::new(DecodeOptions { parse_string_tags });
        let batch = codec.decode(Bytes::from_static(body)).expect("decodes");
        let span = batch.span(0).expect("one span");
        assert_eq!(span.start_time_unix_nano(), 7000);
        let keys: Vec<&str> = span.attributes().map(|attribute| attribute.key).collect();
        assert_eq!(keys, ["k"]);
        let encoded: Vec<Value> = serde_json::from_slice(&codec.encode(&batch).expect("encodes")).expect("JSON");
        assert_eq!(encoded[0]["timestamp"], json!(7), "{encoded:?}");
    }
}

// ---------------------------------------------------------------- OTLP side

#[derive(Clone, Debug)]
enum Attr {
    Str(String),
    Int(i64),
    Bool(bool),
    Double(f64),
}

/// An event: time in µs, name, attributes.
type Event = (u64, String, Vec<(String, Attr)>);
/// A scope's (name, version) and its spans.
type ScopeGroup = ((String, String), Vec<OSpan>);
/// A resource's service name, its other attributes (resource semantic conventions, which Zipkin
/// carries as tags) and its scopes.
type ResourceGroup = (String, Vec<(String, String)>, Vec<ScopeGroup>);

#[derive(Clone, Debug)]
struct OSpan {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    trace_state: String,
    name: String,
    kind: i32,
    start_micros: u64,
    duration_micros: u64,
    attributes: Vec<(String, Attr)>,
    dropped: (u32, u32, u32),
    events: Vec<Event>,
    status: (i32, String),
}

fn unique_keys<T: std::fmt::Debug + Clone>(items: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut seen = std::collections::HashSet::new();
    items.into_iter().filter(|(key, _)| seen.insert(key.clone())).collect()
}

/// Attribute values that survive being a Zipkin tag: strings that parse as nothing else, and —
/// with `parse_string_tags` — integers, booleans and doubles that are not whole numbers.
fn attr(typed: bool) -> BoxedStrategy<Attr> {
    let text = "s[a-z ]{0,8}".prop_map(Attr::Str);
    if typed {
        prop_oneof![
            text,
            any::<i64>().prop_map(Attr::Int),
            any::<bool>().prop_map(Attr::Bool),
            any::<f64>()
                .prop_filter("a whole double reads back as an integer", |d| d.is_finite() && d.fract() != 0.0)
                .prop_map(Attr::Double),
        ]
        .boxed()
    } else {
        text.boxed()
    }
}

/// Event attributes are JSON inside the annotation and keep their types whatever the options.
fn event_attr() -> impl Strategy<Value = Attr> {
    prop_oneof![
        "\\PC{0,6}".prop_map(Attr::Str),
        any::<i64>().prop_map(Attr::Int),
        any::<bool>().prop_map(Attr::Bool),
        any::<f64>().prop_filter("JSON holds finite numbers", |d| d.is_finite()).prop_map(Attr::Double),
    ]
}

fn otlp_span(typed: bool) -> impl Strategy<Value = OSpan> {
    (
        (any::<[u8; 16]>(), any::<[u8; 8]>(), proptest::option::of(any::<[u8; 8]>()), "([a-z]{1,3}=[a-z0-9]{1,3})?"),
        ("\\PC{0,8}", 0..=5i32, 1u64..1 << 50, 0u64..1 << 30),
        proptest::collection::vec(("a\\.[a-z]{1,5}", attr(typed)), 0..5),
        (any::<u32>(), any::<u32>(), any::<u32>()),
        proptest::collection::vec(
            (0u64..1 << 50, "[a-z][a-z ]{0,8}", proptest::collection::vec(("[a-z]{1,4}", event_attr()), 0..3)),
            0..3,
        ),
        prop_oneof![
            Just((0, String::new())),
            Just((1, String::new())),
            "[a-z ]{0,8}".prop_filter("`error=true` carries no message", |m| m != "true").prop_map(|m| (2, m))
        ],
    )
        .prop_filter("ids are never zero", |((trace, span, parent, _), ..)| {
            *trace != [0; 16] && *span != [0; 8] && parent.is_none_or(|p| p != [0; 8] && p != *span)
        })
        .prop_map(
            |(
                (trace_id, span_id, parent, trace_state),
                (name, kind, start_micros, duration_micros),
                attributes,
                dropped,
                events,
                status,
            )| OSpan {
                trace_id,
                span_id,
                parent,
                trace_state,
                name,
                kind,
                start_micros,
                duration_micros,
                attributes: unique_keys(attributes),
                dropped,
                events: events.into_iter().map(|(t, n, a)| (t, n, unique_keys(a))).collect(),
                status,
            },
        )
}

/// Resources with distinct service names, each with scopes of distinct (name, version), each
/// with at least one span: the grouping the decoder produces.
fn otlp_batch(typed: bool) -> impl Strategy<Value = Vec<ResourceGroup>> {
    let scope = (("[a-z.]{0,6}", "[0-9.]{0,4}"), proptest::collection::vec(otlp_span(typed), 1..3));
    let attributes = proptest::sample::subsequence(&RESOURCE_TAGS[1..], 0..=3)
        .prop_flat_map(|keys| keys.into_iter().map(|key| (Just(key.to_owned()), "s[a-z]{0,6}")).collect::<Vec<_>>());
    let resource = ("[a-z-]{1,8}", attributes, proptest::collection::vec(scope, 1..3));
    proptest::collection::vec(resource, 1..3).prop_map(|resources| {
        let mut services = std::collections::HashSet::new();
        resources
            .into_iter()
            .filter(|(service, ..)| services.insert(service.clone()))
            .map(|(service, attributes, scopes)| {
                let mut seen = std::collections::HashSet::new();
                (service, attributes, scopes.into_iter().filter(|(key, _)| seen.insert(key.clone())).collect())
            })
            .collect()
    })
}

fn write_attr(w: &mut impl Attributes, key: &str, value: &Attr) {
    match value {
        Attr::Str(s) => w.str_attribute(key, s),
        Attr::Int(i) => w.int_attribute(key, *i),
        Attr::Bool(b) => w.bool_attribute(key, *b),
        Attr::Double(d) => w.double_attribute(key, *d),
    }
}

fn build(resources: &[ResourceGroup]) -> SpanBatch {
    let mut writer = BatchWriter::new();
    for (service, attributes, scopes) in resources {
        writer.resource_spans(|rs| {
            rs.resource(|r| {
                r.str_attribute("service.name", service);
                for (key, value) in attributes {
                    r.str_attribute(key, value);
                }
            });
            for ((scope_name, scope_version), spans) in scopes {
                rs.scope_spans(|ss| {
                    if !scope_name.is_empty() || !scope_version.is_empty() {
                        ss.scope(|sc| {
                            if !scope_name.is_empty() {
                                sc.name(scope_name);
                            }
                            if !scope_version.is_empty() {
                                sc.version(scope_version);
                            }
                        });
                    }
                    for span in spans {
                        ss.span(|s| {
                            s.trace_id(&span.trace_id).span_id(&span.span_id);
                            if !span.trace_state.is_empty() {
                                s.trace_state(&span.trace_state);
                            }
                            if let Some(parent) = &span.parent {
                                s.parent_span_id(parent);
                            }
                            if !span.name.is_empty() {
                                s.name(&span.name);
                            }
                            if span.kind != 0 {
                                s.kind(span.kind);
                            }
                            s.start_time_unix_nano(span.start_micros * 1000);
                            s.end_time_unix_nano((span.start_micros + span.duration_micros) * 1000);
                            for (key, value) in &span.attributes {
                                write_attr(s, key, value);
                            }
                            if span.dropped.0 != 0 {
                                s.dropped_attributes_count(span.dropped.0);
                            }
                            for (time, name, attributes) in &span.events {
                                s.event(|e| {
                                    e.time_unix_nano(time * 1000).name(name);
                                    for (key, value) in attributes {
                                        write_attr(e, key, value);
                                    }
                                });
                            }
                            if span.dropped.1 != 0 {
                                s.dropped_events_count(span.dropped.1);
                            }
                            if span.dropped.2 != 0 {
                                s.dropped_links_count(span.dropped.2);
                            }
                            if span.status.0 != 0 {
                                s.status(span.status.0, &span.status.1);
                            }
                        });
                    }
                });
            }
        });
    }
    writer.finish().expect("generated batches are valid")
}

fn otlp_round_trip(resources: &[ResourceGroup], typed: bool) -> Result<(), TestCaseError> {
    let batch = build(resources);
    let options = DecodeOptions { parse_string_tags: typed };
    let json = ZipkinV2Json::new(options);
    let through_json = json.decode(json.encode(&batch).unwrap()).unwrap();
    prop_assert_eq!(common::request(&through_json), common::request(&batch), "through Zipkin JSON");
    let proto = ZipkinV2Proto::new(options);
    let through_proto = proto.decode(proto.encode(&batch).unwrap()).unwrap();
    prop_assert_eq!(common::request(&through_proto), common::request(&batch), "through Zipkin protobuf");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn otlp_to_zipkin_to_otlp_keeps_what_zipkin_can_hold(resources in otlp_batch(false)) {
        otlp_round_trip(&resources, false)?;
    }

    #[test]
    fn typed_attributes_come_back_with_parse_string_tags(resources in otlp_batch(true)) {
        otlp_round_trip(&resources, true)?;
    }
}

/// The error tag carries a failed span's description, but there `true` is a bare flag and `false`
/// no error: those descriptions must still come back, through JSON and protobuf alike (found by
/// the `zipkin_json` fuzz target, whose input is in its corpus).
#[test]
fn error_descriptions_the_error_tag_cannot_carry_survive_the_round_trip() {
    for description in ["true", "false", "", "boom"] {
        let body = json!([{
            "traceId": "2", "id": "1", "timestamp": 10,
            "tags": {"otel.status_code": "ERROR", "otel.status_description": description}
        }]);
        let batch = decode_json(serde_json::to_vec(&body).unwrap());
        let status = |batch: &SpanBatch| {
            let span = batch.span(0).expect("one span");
            (span.status_code(), span.status_message().to_owned())
        };
        assert_eq!(status(&batch), (spanpipe_core::StatusCode::Error, description.to_owned()));
        let json = ZipkinV2Json::default();
        let proto = ZipkinV2Proto::default();
        let mut through_json = batch.clone();
        let mut through_proto = batch.clone();
        // Twice: the second round must change nothing either.
        for _ in 0..2 {
            through_json = json.decode(json.encode(&through_json).unwrap()).unwrap();
            through_proto = proto.decode(proto.encode(&through_proto).unwrap()).unwrap();
            assert_eq!(status(&through_json), status(&batch), "{description:?} through Zipkin JSON");
            assert_eq!(status(&through_proto), status(&batch), "{description:?} through Zipkin protobuf");
        }
    }
}
