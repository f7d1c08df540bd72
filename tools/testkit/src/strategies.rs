//! Proptest strategies over OTLP trace requests.
//!
//! These exist so that codec round-trips, pipeline stages and equivalence checks can be tested
//! against the awkward corners of the data model rather than only against the happy path:
//! empty and non-ASCII strings, characters that JSON must escape, `i64::MIN`/`i64::MAX`,
//! infinities, unknown enum values, absent optional messages and nested attribute values.
//!
//! Collections are kept small on purpose: a whole [`request`] stays at a few kilobytes at most,
//! so hundreds of cases run quickly even with the test profile's light optimisation.
//!
//! Guarantees that tests may rely on:
//! - trace ids are exactly 16 bytes and span ids exactly 8 bytes; parent span ids are either
//!   empty or 8 bytes (see [`valid_span_ids`]);
//! - doubles are never NaN, so generated values can be compared with `PartialEq`;
//! - `KeyValue.key_strindex` and `AnyValue::StringValueStrindex` are never generated: they are
//!   indexes into the string table of the profiles signal and mean nothing in a trace request.
//!   `Resource.entity_refs` is generated: it is part of a trace request's resource.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// Length of an OTLP trace id in bytes.
pub const TRACE_ID_LEN: usize = 16;
/// Length of an OTLP span id in bytes.
pub const SPAN_ID_LEN: usize = 8;

/// Characters that text encoders must treat specially: JSON escapes (`"`, `\`, control
/// characters), characters some encoders escape optionally (`/`, U+2028, U+2029, DEL), a byte
/// order mark, and multi-byte UTF-8 of every length.
const AWKWARD_CHARS: &[char] = &[
    '"', '\\', '/', '\0', '\u{1}', '\u{8}', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1b}', '\u{1f}', '\u{7f}', '\u{80}',
    '\u{9f}', '\u{a0}', '\u{2028}', '\u{2029}', '\u{feff}', 'é', 'ß', '中', '😀', ' ', '\'', '<', '>', '&', '{', '}',
];

/// Arbitrary strings for names, keys and values.
///
/// Mixes empty strings, identifier-like ASCII (the common case, and what keeps shrunk failures
/// readable), printable Unicode, strings dense in characters that need escaping, and fully
/// arbitrary `char` sequences.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just(String::new()),
        3 => "[a-z][a-z0-9._]{0,15}",
        3 => "\\PC{0,12}",
        2 => vec(
            prop_oneof![select(AWKWARD_CHARS), proptest::char::range('a', 'z')],
            1..12,
        )
        .prop_map(String::from_iter),
        1 => vec(any::<char>(), 0..12).prop_map(String::from_iter),
    ]
}

/// Schema URLs: usually empty as in most SDK output, sometimes a real schema URL, sometimes
/// arbitrary text (the field is not validated anywhere in the protocol).
pub fn schema_url() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => Just("https://opentelemetry.io/schemas/1.26.0".to_owned()),
        1 => text(),
    ]
}

/// An exactly 16-byte trace id, including the all-zero (invalid per spec, but encodable) id.
pub fn trace_id() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => vec(any::<u8>(), TRACE_ID_LEN),
        1 => Just(vec![0; TRACE_ID_LEN]),
        1 => Just(vec![0xff; TRACE_ID_LEN]),
    ]
}

/// An exactly 8-byte span id, including the all-zero (invalid per spec, but encodable) id.
pub fn span_id() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => vec(any::<u8>(), SPAN_ID_LEN),
        1 => Just(vec![0; SPAN_ID_LEN]),
        1 => Just(vec![0xff; SPAN_ID_LEN]),
    ]
}

/// A parent span id: empty (a root span) or exactly 8 bytes.
pub fn parent_span_id() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        2 => span_id(),
    ]
}

/// The identifiers of one span, each with a length a spec-conforming producer would send.
///
/// Codecs that render ids as hex or base64 commonly assume these lengths; keeping them valid
/// here lets property tests exercise everything else without tripping over that assumption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanIds {
    /// Exactly [`TRACE_ID_LEN`] bytes.
    pub trace_id: Vec<u8>,
    /// Exactly [`SPAN_ID_LEN`] bytes.
    pub span_id: Vec<u8>,
    /// Empty, or exactly [`SPAN_ID_LEN`] bytes.
    pub parent_span_id: Vec<u8>,
}

/// Trace, span and parent span ids with valid lengths.
pub fn valid_span_ids() -> impl Strategy<Value = SpanIds> {
    (trace_id(), span_id(), parent_span_id()).prop_map(|(trace_id, span_id, parent_span_id)| SpanIds {
        trace_id,
        span_id,
        parent_span_id,
    })
}

/// Doubles: any finite value or ±infinity, never NaN (NaN would make `PartialEq`-based
/// round-trip assertions fail even when the code under test is correct).
pub fn finite_or_infinite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as float;
    prop_oneof![
        12 => float::POSITIVE | float::NEGATIVE | float::NORMAL | float::SUBNORMAL | float::INFINITE,
        2 => select(&[0.0, 1.0, -1.0, 0.5, 1e-300, 1e300][..]),
        1 => select(&[f64::MAX, f64::MIN, f64::MIN_POSITIVE, f64::EPSILON, -0.0][..]),
    ]
}

/// Integers at the boundaries of the varint and zigzag encodings and of narrower types.
const EDGE_INTS: &[i64] = &[i64::MIN, i64::MAX, 0, -1, i32::MIN as i64, i32::MAX as i64, u32::MAX as i64];

/// Integers over the full `i64` range, with the extremes and small values (which take the
/// short varint encodings) made likely.
pub fn int_value() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => any::<i64>(),
        2 => -1000i64..1000,
        1 => select(EDGE_INTS),
    ]
}

/// Non-recursive attribute values: every scalar variant plus the empty `AnyValue`.
fn scalar_any_value() -> impl Strategy<Value = AnyValue> {
    let present = prop_oneof![
        3 => text().prop_map(Value::StringValue),
        1 => any::<bool>().prop_map(Value::BoolValue),
        2 => int_value().prop_map(Value::IntValue),
        2 => finite_or_infinite_f64().prop_map(Value::DoubleValue),
        1 => vec(any::<u8>(), 0..16).prop_map(Value::BytesValue),
    ];
    prop_oneof![
        9 => present.prop_map(|value| AnyValue { value: Some(value) }),
        1 => Just(AnyValue { value: None }),
    ]
}

/// A key/value pair whose value comes from `values`; the value is occasionally absent, which
/// the protocol allows and encoders must handle.
fn key_value_from<S>(values: S) -> impl Strategy<Value = KeyValue>
where
    S: Strategy<Value = AnyValue>,
{
    let value = prop_oneof![
        9 => values.prop_map(Some),
        1 => Just(None),
    ];
    (text(), value).prop_map(|(key, value)| KeyValue { key, value, ..KeyValue::default() })
}

/// Attribute values of every variant, nested up to three levels through arrays and key/value
/// lists, with small collections.
pub fn any_value() -> impl Strategy<Value = AnyValue> {
    scalar_any_value().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4)
                .prop_map(|values| AnyValue { value: Some(Value::ArrayValue(ArrayValue { values })) }),
            vec(key_value_from(inner), 0..4)
                .prop_map(|values| AnyValue { value: Some(Value::KvlistValue(KeyValueList { values })) }),
        ]
    })
}

/// An attribute: an arbitrary key with (usually) an arbitrary [`any_value`].
pub fn key_value() -> impl Strategy<Value = KeyValue> {
    key_value_from(any_value())
}

/// Up to `max_len` attributes. Duplicate keys are possible and intentional: the protocol does
/// not forbid them and consumers must not lose either entry.
pub fn attributes(max_len: usize) -> impl Strategy<Value = Vec<KeyValue>> {
    vec(key_value(), 0..=max_len)
}

/// Span kinds: mostly the defined values 0..=5, sometimes an unknown value that decoders must
/// preserve rather than reject.
pub fn span_kind() -> impl Strategy<Value = i32> {
    prop_oneof![
        9 => 0i32..=5,
        1 => prop_oneof![Just(7), Just(42), 6..=i32::MAX],
    ]
}

/// Span status: absent, or a defined code (unset/ok/error) with an arbitrary message.
pub fn status() -> impl Strategy<Value = Option<Status>> {
    proptest::option::of((0i32..=2, text()).prop_map(|(code, message)| Status { message, code }))
}

/// A span event with arbitrary timestamp, name and attributes.
pub fn event() -> impl Strategy<Value = Event> {
    (any::<u64>(), text(), attributes(3), any::<u32>()).prop_map(
        |(time_unix_nano, name, attributes, dropped_attributes_count)| Event {
            time_unix_nano,
            name,
            attributes,
            dropped_attributes_count,
        },
    )
}

/// A span link with valid-length ids and arbitrary everything else.
pub fn link() -> impl Strategy<Value = Link> {
    (trace_id(), span_id(), text(), attributes(3), any::<u32>(), any::<u32>()).prop_map(
        |(trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags)| Link {
            trace_id,
            span_id,
            trace_state,
            attributes,
            dropped_attributes_count,
            flags,
        },
    )
}

/// A span with valid-length ids and arbitrary values in every other field.
pub fn span() -> impl Strategy<Value = Span> {
    let identity = (valid_span_ids(), text(), text(), span_kind(), any::<u32>());
    let timing = (any::<u64>(), any::<u64>());
    let attributes_part = (attributes(5), any::<u32>());
    let events_part = (vec(event(), 0..=2), any::<u32>());
    let links_part = (vec(link(), 0..=2), any::<u32>());
    (identity, timing, attributes_part, events_part, links_part, status()).prop_map(
        |(
            (ids, trace_state, name, kind, flags),
            (start_time_unix_nano, end_time_unix_nano),
            (attributes, dropped_attributes_count),
            (events, dropped_events_count),
            (links, dropped_links_count),
            status,
        )| Span {
            trace_id: ids.trace_id,
            span_id: ids.span_id,
            trace_state,
            parent_span_id: ids.parent_span_id,
            flags,
            name,
            kind,
            start_time_unix_nano,
            end_time_unix_nano,
            attributes,
            dropped_attributes_count,
            events,
            dropped_events_count,
            links,
            dropped_links_count,
            status,
        },
    )
}

/// A resource: up to four attributes, sometimes led by a `service.name` string attribute
/// (which collectors commonly route or group on), and an arbitrary dropped count.
pub fn resource() -> impl Strategy<Value = Resource> {
    (proptest::option::of(text()), attributes(3), any::<u32>(), vec(entity_ref(), 0..=2)).prop_map(
        |(service_name, other_attributes, dropped_attributes_count, entity_refs)| {
            let service_name_attribute = service_name.map(|name| KeyValue {
                key: "service.name".to_owned(),
                value: Some(AnyValue { value: Some(Value::StringValue(name)) }),
                ..KeyValue::default()
            });
            Resource {
                attributes: service_name_attribute.into_iter().chain(other_attributes).collect(),
                dropped_attributes_count,
                entity_refs,
            }
        },
    )
}

/// A resource's entity reference (`Resource.entity_refs`, newer OTLP): names which resource
/// attributes identify and describe an entity.
pub fn entity_ref() -> impl Strategy<Value = EntityRef> {
    (schema_url(), text(), vec(text(), 0..=2), vec(text(), 0..=2)).prop_map(
        |(schema_url, r#type, id_keys, description_keys)| EntityRef { schema_url, r#type, id_keys, description_keys },
    )
}

/// An instrumentation scope with arbitrary name, version, attributes and dropped count.
pub fn instrumentation_scope() -> impl Strategy<Value = InstrumentationScope> {
    (text(), text(), attributes(2), any::<u32>()).prop_map(|(name, version, attributes, dropped_attributes_count)| {
        InstrumentationScope { name, version, attributes, dropped_attributes_count }
    })
}

/// Spans of one (optional) instrumentation scope.
pub fn scope_spans() -> impl Strategy<Value = ScopeSpans> {
    (proptest::option::of(instrumentation_scope()), vec(span(), 0..=4), schema_url())
        .prop_map(|(scope, spans, schema_url)| ScopeSpans { scope, spans, schema_url })
}

/// Scope spans of one (optional) resource.
pub fn resource_spans() -> impl Strategy<Value = ResourceSpans> {
    (proptest::option::of(resource()), vec(scope_spans(), 0..=3), schema_url())
        .prop_map(|(resource, scope_spans, schema_url)| ResourceSpans { resource, scope_spans, schema_url })
}

/// A whole export request: up to three resources of up to three scopes of up to four spans.
pub fn request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    vec(resource_spans(), 0..=3).prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_no_nan(value: &AnyValue) {
        match &value.value {
            Some(Value::DoubleValue(double)) => assert!(!double.is_nan()),
            Some(Value::ArrayValue(array)) => array.values.iter().for_each(assert_no_nan),
            Some(Value::KvlistValue(list)) => {
                list.values.iter().filter_map(|kv| kv.value.as_ref()).for_each(assert_no_nan)
            }
            _ => {}
        }
    }

    fn assert_valid_link_ids(link: &Link) {
        assert_eq!(link.trace_id.len(), TRACE_ID_LEN);
        assert_eq!(link.span_id.len(), SPAN_ID_LEN);
    }

    fn assert_valid_span_ids(span: &Span) {
        assert_eq!(span.trace_id.len(), TRACE_ID_LEN);
        assert_eq!(span.span_id.len(), SPAN_ID_LEN);
        assert!(span.parent_span_id.is_empty() || span.parent_span_id.len() == SPAN_ID_LEN);
        span.links.iter().for_each(assert_valid_link_ids);
    }

    proptest! {
        #[test]
        fn every_generated_id_has_a_valid_length(request in request()) {
            request
                .resource_spans
                .iter()
                .flat_map(|resource_spans| &resource_spans.scope_spans)
                .flat_map(|scope_spans| &scope_spans.spans)
                .for_each(assert_valid_span_ids);
        }

        #[test]
        fn standalone_span_ids_have_valid_lengths(span in span()) {
            assert_valid_span_ids(&span);
        }

        #[test]
        fn values_never_contain_nan(value in any_value()) {
            assert_no_nan(&value);
        }

        #[test]
        fn string_table_fields_are_never_generated(kv in key_value()) {
            prop_assert_eq!(kv.key_strindex, 0);
            prop_assert!(!matches!(
                kv.value.and_then(|value| value.value),
                Some(Value::StringValueStrindex(_))
            ));
        }
    }
}
