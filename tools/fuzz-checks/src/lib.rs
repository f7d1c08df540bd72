//! The properties each fuzz target checks, in one place.
//!
//! cargo-fuzz targets under `fuzz/` call these functions on every input the fuzzer makes; the
//! test `tests/corpus_replay.rs` calls the same functions on every file of the committed corpus,
//! so stable CI checks exactly what the fuzzer checked, without nightly or libFuzzer.
//!
//! "Never panics" is the floor. On top of it each check asserts what must hold for an accepted
//! input: prost (the reference decoder) agrees on every indexed field, the lazy views read
//! everything without fault, re-framed subsets are valid and carry the same spans, and an OTLP/JSON
//! round trip keeps every indexed field and is a fixed point.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use prost::Message;
use spanpipe_codecs::otlp_json;
use spanpipe_core::{AnyValueView, KeyValues, SpanBatch, SpanView};

pub mod jaeger;
pub mod msgpack;
pub mod websocket;
pub mod zipkin;

/// A fuzz target's check: panics when a property fails.
pub type Check = fn(&[u8]);

/// The fuzz targets, by name: each maps to its check and its corpus directory `fuzz/corpus/<name>`.
pub const TARGETS: &[(&str, Check)] = &[
    ("otlp_proto", otlp_proto),
    ("otlp_json", otlp_json),
    ("zipkin_json", zipkin::zipkin_json),
    ("zipkin_proto", zipkin::zipkin_proto),
    ("zipkin_v1_json", zipkin::zipkin_v1_json),
    ("jaeger_compact", jaeger::jaeger_compact),
    ("jaeger_binary", jaeger::jaeger_binary),
    ("jaeger_proto", jaeger::jaeger_proto),
    ("websocket", websocket::websocket),
    ("msgpack", msgpack::msgpack),
];

/// Reads every value of an attribute list, recursing into arrays and key-value lists.
fn walk_key_values(values: KeyValues<'_>) -> usize {
    values.map(|kv| kv.key.len() + walk_value(kv.value)).sum()
}

fn walk_value(value: AnyValueView<'_>) -> usize {
    match value {
        AnyValueView::Empty | AnyValueView::Bool(_) | AnyValueView::Int(_) | AnyValueView::Double(_) => 1,
        AnyValueView::String(s) => s.len(),
        AnyValueView::Bytes(b) => b.len(),
        AnyValueView::Array(values) => values.map(walk_value).sum(),
        AnyValueView::KvList(values) => walk_key_values(values),
    }
}

/// What every decoder that writes the batch with the span writer must give: bytes that pass the
/// validating scan again with the same index, and views that read every field.
fn check_written(batch: &SpanBatch) {
    read_everything(batch);
    if !batch.is_empty() {
        let rescanned = SpanBatch::decode(batch.bytes().clone()).expect("the writer's output passes the scan");
        assert_eq!(rescanned.index(), batch.index());
    }
}

/// What a decoder that translates another model into OTLP must give beyond [`check_written`]:
/// every attribute list (a resource's, a span's, an event's, a key-value list's at any depth) with
/// unique keys, as OTLP requires; the source's repeated keys count by their last value.
fn assert_unique_keys(batch: &SpanBatch) {
    fn unique(values: KeyValues<'_>, what: &str) {
        let mut seen = std::collections::HashSet::new();
        for kv in values {
            assert!(seen.insert(kv.key), "{what}: attribute key {:?} given twice", kv.key);
            nested(kv.value, what);
        }
    }
    fn nested(value: AnyValueView<'_>, what: &str) {
        match value {
            AnyValueView::KvList(values) => unique(values, what),
            AnyValueView::Array(values) => values.for_each(|value| nested(value, what)),
            _ => {}
        }
    }
    for resource in batch.resources() {
        unique(resource.attributes(), "resource");
    }
    for span in batch.spans() {
        unique(span.attributes(), "span");
        span.events().for_each(|event| unique(event.attributes(), "event"));
        span.links().for_each(|link| unique(link.attributes(), "link"));
    }
}

/// Touches every lazily read field of every span.
fn read_everything(batch: &SpanBatch) -> usize {
    let mut touched = 0;
    for resource in batch.resources() {
        touched += walk_key_values(resource.attributes()) + resource.schema_url().len();
        for scope in resource.scopes() {
            touched += walk_key_values(scope.attributes()) + scope.name().len() + scope.version().len();
        }
    }
    for span in batch.spans() {
        touched += span.trace_state().len() + span.status_message().len() + walk_key_values(span.attributes());
        touched += span.events().map(|e| e.name.len() + walk_key_values(e.attributes())).sum::<usize>();
        touched += span.links().map(|l| l.trace_state.len() + walk_key_values(l.attributes())).sum::<usize>();
    }
    touched
}

/// The indexed fields of a span, for comparing two readings of the same span.
fn indexed(span: &SpanView<'_>) -> impl PartialEq + std::fmt::Debug {
    (
        *span.trace_id(),
        *span.span_id(),
        span.parent_span_id().copied(),
        span.name().to_owned(),
        span.kind(),
        span.start_time_unix_nano(),
        span.end_time_unix_nano(),
        span.status_code(),
        span.flags(),
        span.service_name().map(str::to_owned),
    )
}

fn assert_same_spans(a: &SpanBatch, b: &SpanBatch, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: span count differs");
    for (x, y) in a.spans().zip(b.spans()) {
        assert_eq!(indexed(&x), indexed(&y), "{what}: span {} differs", x.position());
    }
}

/// The `otlp_proto` target: arbitrary bytes as an OTLP protobuf request.
pub fn otlp_proto(data: &[u8]) {
    let Ok(batch) = SpanBatch::decode(Bytes::copy_from_slice(data)) else { return };
    read_everything(&batch);

    // The scan is stricter than prost, never looser, and agrees with it on every indexed field.
    let request = ExportTraceServiceRequest::decode(data).expect("prost accepts what the scan accepts");
    let prost_spans: Vec<_> =
        request.resource_spans.iter().flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter())).collect();
    assert_eq!(prost_spans.len(), batch.len());
    for (span, expected) in batch.spans().zip(prost_spans) {
        assert_eq!(&span.trace_id()[..], &expected.trace_id[..]);
        assert_eq!(&span.span_id()[..], &expected.span_id[..]);
        assert_eq!(span.parent_span_id().map(|p| p.to_vec()).unwrap_or_default(), expected.parent_span_id);
        assert_eq!(span.name(), expected.name);
        assert_eq!(span.kind().as_i32(), expected.kind);
        assert_eq!(span.start_time_unix_nano(), expected.start_time_unix_nano);
        assert_eq!(span.end_time_unix_nano(), expected.end_time_unix_nano);
        assert_eq!(span.status_code().as_i32(), expected.status.as_ref().map_or(0, |s| s.code));
        assert_eq!(span.flags(), expected.flags);
    }

    // Re-framing a subset gives valid bytes whose fresh scan is the index re-framing built.
    let odd = batch.filter(|span| span.position() % 2 == 1);
    if !odd.is_empty() {
        let rescanned = SpanBatch::decode(odd.bytes().clone()).expect("re-framed bytes pass the scan");
        assert_eq!(rescanned.index(), odd.index());
        assert!(batch
            .spans()
            .filter(|s| s.position() % 2 == 1)
            .zip(odd.spans())
            .all(|(a, b)| indexed(&a) == indexed(&b)));
    }
    let rejoined = SpanBatch::merge(&batch.split(3, 0));
    assert_same_spans(&batch, &rejoined, "split then merge");

    // OTLP/JSON keeps every indexed field, and encoding is a fixed point after one round.
    let mut json = Vec::new();
    otlp_json::encode(&batch, &mut json);
    let mut scratch = json.clone();
    let from_json = otlp_json::decode(&mut scratch).expect("our own OTLP/JSON decodes");
    assert_same_spans(&batch, &from_json, "proto -> JSON -> proto");
    assert_eq!(
        canonical_protobuf(&batch),
        canonical_protobuf(&from_json),
        "proto -> JSON -> proto changes the request"
    );
    let mut again = Vec::new();
    otlp_json::encode(&from_json, &mut again);
    assert_eq!(String::from_utf8_lossy(&json), String::from_utf8_lossy(&again), "JSON encoding is not a fixed point");
}

/// The `otlp_json` target: arbitrary bytes as an OTLP/JSON request.
pub fn otlp_json(data: &[u8]) {
    let mut scratch = data.to_vec();
    let Ok(batch) = otlp_json::decode(&mut scratch) else { return };
    check_written(&batch);
    let mut json = Vec::new();
    otlp_json::encode(&batch, &mut json);
    let mut scratch = json.clone();
    let again = otlp_json::decode(&mut scratch).expect("our own OTLP/JSON decodes");
    assert_same_spans(&batch, &again, "JSON -> batch -> JSON -> batch");
    // Decoding writes fields in the document's key order, so the bytes may differ from those of
    // the canonical document; as protobuf messages the two must be equal. prost's re-encoding is
    // canonical (field order, defaults left out) and compares NaN by bits.
    assert_eq!(canonical_protobuf(&batch), canonical_protobuf(&again), "a JSON round trip changes the request");
    let mut json_again = Vec::new();
    otlp_json::encode(&again, &mut json_again);
    assert_eq!(
        String::from_utf8_lossy(&json),
        String::from_utf8_lossy(&json_again),
        "JSON encoding is not a fixed point"
    );
}

/// The request as prost re-encodes it, without what OTLP/JSON cannot carry:
/// - the profiles signal's string-table indexes (`KeyValue.key_strindex`,
///   `AnyValue.string_value_strindex`), which mean nothing in a trace request and which OTLP/JSON,
///   as spanpipe writes it, does not carry;
/// - the sign and payload bits of a NaN `double_value`: the protobuf JSON mapping has the one
///   spelling `"NaN"`, which reads back as the canonical quiet NaN, so every NaN is compared as
///   that one (found by fuzzing: `regression_nan_with_payload.pb`).
fn canonical_protobuf(batch: &SpanBatch) -> Vec<u8> {
    let mut request = ExportTraceServiceRequest::decode(batch.bytes().clone()).expect("prost accepts a batch's bytes");
    for rs in &mut request.resource_spans {
        if let Some(resource) = &mut rs.resource {
            strip_string_table(&mut resource.attributes);
        }
        for ss in &mut rs.scope_spans {
            if let Some(scope) = &mut ss.scope {
                strip_string_table(&mut scope.attributes);
            }
            for span in &mut ss.spans {
                strip_string_table(&mut span.attributes);
                span.events.iter_mut().for_each(|e| strip_string_table(&mut e.attributes));
                span.links.iter_mut().for_each(|l| strip_string_table(&mut l.attributes));
            }
        }
    }
    request.encode_to_vec()
}

fn strip_string_table(attributes: &mut [KeyValue]) {
    for kv in attributes {
        kv.key_strindex = 0;
        if let Some(value) = &mut kv.value {
            strip_value(value);
        }
    }
}

fn strip_value(value: &mut AnyValue) {
    match &mut value.value {
        Some(Value::StringValueStrindex(_)) => value.value = None,
        Some(Value::DoubleValue(double)) if double.is_nan() => *double = f64::NAN,
        Some(Value::ArrayValue(array)) => array.values.iter_mut().for_each(strip_value),
        Some(Value::KvlistValue(list)) => strip_string_table(&mut list.values),
        _ => {}
    }
}
