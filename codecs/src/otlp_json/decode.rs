//! OTLP/JSON → canonical batch, in one walk over simd-json's tape.
//!
//! simd-json parses the body in place into a flat tape (see [`super::tape`]); this module walks
//! the tape once and writes every field straight into protobuf through [`BatchWriter`]. There is
//! no intermediate tree: no `String` per key or value (strings are borrowed from the unescaped
//! input), no `Vec` or map per object. The only per-request allocations are simd-json's buffers,
//! the tape, the output and one scratch buffer reused for every `bytesValue`.
//!
//! Keys can come in any order and protobuf does not care about field order, so each field is
//! written when its key is met. Three places look ahead within one object (a pass over its keys,
//! which the tape makes cheap because values are skipped by count):
//! - `KeyValue`: the writer needs the key before the value;
//! - `ResourceSpans.resource` and `ScopeSpans.scope`: the index refuses a repeated singular
//!   message, so with duplicate JSON keys only the last one is written ("last wins", as the
//!   protobuf JSON mapping says for duplicate keys);
//! - `AnyValue`: the `oneof` member that comes last is the only one written, for the same reason.
//!
//! Proto3 default values (`0`, `""`, `false`, enum 0) of scalar fields are not written, so the
//! encoding is as compact as prost's; an `AnyValue`'s content is always written (an `intValue`
//! of 0 stays an integer).

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use simd_json::{Node, StaticNode};
use spanpipe_core::{
    ArrayWriter, Attributes, BatchWriter, KeyValueListWriter, ResourceSpansWriter, ResourceWriter, ScopeSpansWriter,
    SpanBatch, SpanWriter, ValueWriter, MAX_VALUE_DEPTH,
};

use crate::json_tape::{self, JsonBuffer};

use super::error::{Expected, IntegerProblem, JsonError, JsonErrorKind, SyntaxError};
use super::tape::{Elements, Entries, Value};
use crate::field_path::{PathContext as _, PathError as _};

/// Decodes an OTLP/JSON `ExportTraceServiceRequest` (or `TracesData`) into a batch.
///
/// The buffer is parsed in place: simd-json unescapes strings inside it, so its contents are
/// unspecified afterwards. A request without spans gives an empty batch (the [`super::OtlpJson`]
/// codec turns that into [`crate::CodecError::Empty`]).
///
/// # Errors
/// A [`JsonError`] naming what is wrong and the JSON path of the offending value.
pub fn decode<B: JsonBuffer + ?Sized>(json: &mut B) -> std::result::Result<SpanBatch, JsonError> {
    // Protobuf takes roughly half the bytes of the same request in JSON (hex ids, quoted keys).
    let capacity = json.len() / 2;
    json_tape::with_tape(json, |tape| {
        let root = Value::root(&tape.0)
            .ok_or_else(|| JsonError::new(JsonErrorKind::Syntax { kind: SyntaxError::Malformed, offset: None }))?;
        let mut writer = BatchWriter::with_capacity(capacity);
        Decoder { scratch: Vec::new() }.request(root, &mut writer).map_err(JsonError::finish)?;
        writer.finish().map_err(|error| JsonError::new(JsonErrorKind::Index(error)))
    })
    .map_err(|error| JsonError::from_simd(&error))?
}

/// State shared by the whole walk.
struct Decoder {
    /// Decoded `bytesValue`s land here before they are copied into the batch.
    scratch: Vec<u8>,
}

type Result<T = ()> = std::result::Result<T, JsonError>;

impl Decoder {
    fn request(&mut self, value: Value<'_, '_>, w: &mut BatchWriter) -> Result {
        for (key, value) in object(value)? {
            if let "resourceSpans" | "resource_spans" = key {
                for (i, item) in array(value).in_key("resourceSpans")?.enumerate() {
                    self.resource_spans(item, w).in_index(i).in_key("resourceSpans")?;
                }
            }
        }
        Ok(())
    }

    fn resource_spans(&mut self, value: Value<'_, '_>, w: &mut BatchWriter) -> Result {
        let entries = object(value)?;
        let resource = last_of(entries.clone(), |key| matches!(key, "resource"));
        w.resource_spans(|rs| {
            if let Some(resource) = resource {
                self.resource(resource, rs).in_key("resource")?;
            }
            for (key, value) in entries {
                match key {
                    "scopeSpans" | "scope_spans" => {
                        for (i, item) in array(value).in_key("scopeSpans")?.enumerate() {
                            self.scope_spans(item, rs).in_index(i).in_key("scopeSpans")?;
                        }
                    }
                    "schemaUrl" | "schema_url" => {
                        if let Some(url) = non_empty_string(value).in_key("schemaUrl")? {
                            rs.schema_url(url);
                        }
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }

    /// A `Resource`.
    fn resource(&mut self, value: Value<'_, '_>, rs: &mut ResourceSpansWriter<'_>) -> Result {
        let Some(entries) = nullable_object(value)? else { return Ok(()) };
        rs.resource(|r| {
            for (key, value) in entries {
                match key {
                    "attributes" => self.attributes(value, r, 0).in_key("attributes")?,
                    "droppedAttributesCount" | "dropped_attributes_count" => {
                        if let Some(count) = non_zero_u32(value).in_key("droppedAttributesCount")? {
                            r.dropped_attributes_count(count);
                        }
                    }
                    "entityRefs" | "entity_refs" => {
                        for (i, item) in array(value).in_key("entityRefs")?.enumerate() {
                            entity_ref(item, r).in_index(i).in_key("entityRefs")?;
                        }
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }

    fn scope_spans(&mut self, value: Value<'_, '_>, rs: &mut ResourceSpansWriter<'_>) -> Result {
        let entries = object(value)?;
        let scope = last_of(entries.clone(), |key| matches!(key, "scope"));
        rs.scope_spans(|ss| {
            if let Some(scope) = scope {
                self.scope(scope, ss).in_key("scope")?;
            }
            for (key, value) in entries {
                match key {
                    "spans" => {
                        for (i, item) in array(value).in_key("spans")?.enumerate() {
                            self.span(item, ss).in_index(i).in_key("spans")?;
                        }
                    }
                    "schemaUrl" | "schema_url" => {
                        if let Some(url) = non_empty_string(value).in_key("schemaUrl")? {
                            ss.schema_url(url);
                        }
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }

    fn scope(&mut self, value: Value<'_, '_>, ss: &mut ScopeSpansWriter<'_>) -> Result {
        let Some(entries) = nullable_object(value)? else { return Ok(()) };
        ss.scope(|s| {
            for (key, value) in entries {
                match key {
                    "name" => {
                        if let Some(name) = non_empty_string(value).in_key("name")? {
                            s.name(name);
                        }
                    }
                    "version" => {
                        if let Some(version) = non_empty_string(value).in_key("version")? {
                            s.version(version);
                        }
                    }
                    "attributes" => self.attributes(value, s, 0).in_key("attributes")?,
                    "droppedAttributesCount" | "dropped_attributes_count" => {
                        if let Some(count) = non_zero_u32(value).in_key("droppedAttributesCount")? {
                            s.dropped_attributes_count(count);
                        }
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }

    fn span(&mut self, value: Value<'_, '_>, ss: &mut ScopeSpansWriter<'_>) -> Result {
        let entries = object(value)?;
        ss.span(|s| {
            let mut has_trace_id = false;
            let mut has_span_id = false;
            for (key, value) in entries {
                match key {
                    "traceId" | "trace_id" => {
                        if let Some(id) = id::<16>(value).in_key("traceId")? {
                            s.trace_id(&id);
                            has_trace_id = true;
                        }
                    }
                    "spanId" | "span_id" => {
                        if let Some(id) = id::<8>(value).in_key("spanId")? {
                            s.span_id(&id);
                            has_span_id = true;
                        }
                    }
                    "traceState" | "trace_state" => {
                        if let Some(state) = non_empty_string(value).in_key("traceState")? {
                            s.trace_state(state);
                        }
                    }
                    // An absent or empty parent id is how OTLP says "root span".
                    "parentSpanId" | "parent_span_id" => {
                        if let Some(id) = id::<8>(value).in_key("parentSpanId")? {
                            s.parent_span_id(&id);
                        }
                    }
                    "flags" => {
                        if let Some(flags) = non_zero_u32(value).in_key("flags")? {
                            s.flags(flags);
                        }
                    }
                    "name" => {
                        if let Some(name) = non_empty_string(value).in_key("name")? {
                            s.name(name);
                        }
                    }
                    "kind" => {
                        if let Some(kind) = enumeration(value, &SPAN_KINDS).in_key("kind")? {
                            s.kind(kind);
                        }
                    }
                    "startTimeUnixNano" | "start_time_unix_nano" => {
                        if let Some(nanos) = non_zero_u64(value).in_key("startTimeUnixNano")? {
                            s.start_time_unix_nano(nanos);
                        }
                    }
                    "endTimeUnixNano" | "end_time_unix_nano" => {
                        if let Some(nanos) = non_zero_u64(value).in_key("endTimeUnixNano")? {
                            s.end_time_unix_nano(nanos);
                        }
                    }
                    "attributes" => self.attributes(value, s, 0).in_key("attributes")?,
                    "droppedAttributesCount" | "dropped_attributes_count" => {
                        if let Some(count) = non_zero_u32(value).in_key("droppedAttributesCount")? {
                            s.dropped_attributes_count(count);
                        }
                    }
                    "events" => {
                        for (i, item) in array(value).in_key("events")?.enumerate() {
                            self.event(item, s).in_index(i).in_key("events")?;
                        }
                    }
                    "droppedEventsCount" | "dropped_events_count" => {
                        if let Some(count) = non_zero_u32(value).in_key("droppedEventsCount")? {
                            s.dropped_events_count(count);
                        }
                    }
                    "links" => {
                        for (i, item) in array(value).in_key("links")?.enumerate() {
                            self.link(item, s).in_index(i).in_key("links")?;
                        }
                    }
                    "droppedLinksCount" | "dropped_links_count" => {
                        if let Some(count) = non_zero_u32(value).in_key("droppedLinksCount")? {
                            s.dropped_links_count(count);
                        }
                    }
                    "status" => status(value, s).in_key("status")?,
                    _ => {}
                }
            }
            required_ids(has_trace_id, has_span_id)
        })
    }

    fn event(&mut self, value: Value<'_, '_>, s: &mut SpanWriter<'_>) -> Result {
        let entries = object(value)?;
        s.event(|e| {
            for (key, value) in entries {
                match key {
                    "timeUnixNano" | "time_unix_nano" => {
                        if let Some(nanos) = non_zero_u64(value).in_key("timeUnixNano")? {
                            e.time_unix_nano(nanos);
                        }
                    }
                    "name" => {
                        if let Some(name) = non_empty_string(value).in_key("name")? {
                            e.name(name);
                        }
                    }
                    "attributes" => self.attributes(value, e, 0).in_key("attributes")?,
                    "droppedAttributesCount" | "dropped_attributes_count" => {
                        if let Some(count) = non_zero_u32(value).in_key("droppedAttributesCount")? {
                            e.dropped_attributes_count(count);
                        }
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }

    /// A `Span.Link`. Its ids are required, as a span's are: a link without them points nowhere.
    fn link(&mut self, value: Value<'_, '_>, s: &mut SpanWriter<'_>) -> Result {
        let entries = object(value)?;
        s.link(|l| {
            let mut has_trace_id = false;
            let mut has_span_id = false;
            for (key, value) in entries {
                match key {
                    "traceId" | "trace_id" => {
                        if let Some(id) = id::<16>(value).in_key("traceId")? {
                            l.trace_id(&id);
                            has_trace_id = true;
                        }
                    }
                    "spanId" | "span_id" => {
                        if let Some(id) = id::<8>(value).in_key("spanId")? {
                            l.span_id(&id);
                            has_span_id = true;
                        }
                    }
                    "traceState" | "trace_state" => {
                        if let Some(state) = non_empty_string(value).in_key("traceState")? {
                            l.trace_state(state);
                        }
                    }
                    "attributes" => self.attributes(value, l, 0).in_key("attributes")?,
                    "droppedAttributesCount" | "dropped_attributes_count" => {
                        if let Some(count) = non_zero_u32(value).in_key("droppedAttributesCount")? {
                            l.dropped_attributes_count(count);
                        }
                    }
                    "flags" => {
                        if let Some(flags) = non_zero_u32(value).in_key("flags")? {
                            l.flags(flags);
                        }
                    }
                    _ => {}
                }
            }
            required_ids(has_trace_id, has_span_id)
        })
    }

    /// A list of `KeyValue`s (`attributes`, or a `kvlistValue`'s `values`), at value nesting
    /// `depth` (0 for attributes of resources, scopes, spans, events and links).
    fn attributes<A: Attributes>(&mut self, value: Value<'_, '_>, target: &mut A, depth: usize) -> Result {
        for (i, item) in array(value)?.enumerate() {
            self.key_value(item, target, depth).in_index(i)?;
        }
        Ok(())
    }

    fn key_value<A: Attributes>(&mut self, value: Value<'_, '_>, target: &mut A, depth: usize) -> Result {
        // The writer needs the key first, and JSON may put it after the value.
        let mut key = "";
        let mut any = None;
        for (name, value) in object(value)? {
            match name {
                "key" => key = string(value).in_key("key")?.unwrap_or_default(),
                "value" => any = Some(value),
                _ => {}
            }
        }
        match any.and_then(|value| nullable_object(value).transpose()) {
            Some(entries) => {
                let entries = entries.in_key("value")?;
                target.attribute(key, |v| self.any_value(entries, v, depth)).in_key("value")
            }
            // `"value": null` and no `value` at all both mean a KeyValue without a value message.
            None => {
                target.attribute_without_value(key);
                Ok(())
            }
        }
    }

    /// The members of an `AnyValue` object. Of several `oneof` members, the last non-null one
    /// wins and is the only one decoded (`{}` and all-null members give an empty value).
    fn any_value(&mut self, entries: Entries<'_, '_>, w: &mut ValueWriter<'_>, depth: usize) -> Result {
        let mut chosen = None;
        for (key, value) in entries {
            let member = match key {
                "stringValue" | "string_value" => Member::String,
                "boolValue" | "bool_value" => Member::Bool,
                "intValue" | "int_value" => Member::Int,
                "doubleValue" | "double_value" => Member::Double,
                "bytesValue" | "bytes_value" => Member::Bytes,
                "arrayValue" | "array_value" => Member::Array,
                "kvlistValue" | "kvlist_value" => Member::KvList,
                _ => continue,
            };
            if !value.is_null() {
                chosen = Some((member, value));
            }
        }
        let Some((member, value)) = chosen else { return Ok(()) };
        match member {
            Member::String => {
                if let Some(text) = string(value).in_key("stringValue")? {
                    w.string(text);
                }
            }
            Member::Bool => {
                if let Some(flag) = boolean(value).in_key("boolValue")? {
                    w.bool(flag);
                }
            }
            Member::Int => {
                if let Some(int) = int64(value).in_key("intValue")? {
                    w.int(int);
                }
            }
            Member::Double => {
                if let Some(double) = double(value).in_key("doubleValue")? {
                    w.double(double);
                }
            }
            Member::Bytes => {
                if let Some(text) = string(value).in_key("bytesValue")? {
                    self.scratch.clear();
                    base64_into(text, &mut self.scratch).in_key("bytesValue")?;
                    w.bytes(&self.scratch);
                }
            }
            Member::Array => {
                let entries = object(value).in_key("arrayValue")?;
                check_depth(depth).in_key("arrayValue")?;
                w.array(|a| self.array_values(entries, a, depth + 1)).in_key("arrayValue")?;
            }
            Member::KvList => {
                let entries = object(value).in_key("kvlistValue")?;
                check_depth(depth).in_key("kvlistValue")?;
                w.kvlist(|l| self.kvlist_values(entries, l, depth + 1)).in_key("kvlistValue")?;
            }
        }
        Ok(())
    }

    fn array_values(&mut self, entries: Entries<'_, '_>, a: &mut ArrayWriter<'_>, depth: usize) -> Result {
        for (key, value) in entries {
            if key == "values" {
                for (i, item) in array(value).in_key("values")?.enumerate() {
                    // Array elements are AnyValue messages; `{}` is an empty one, `null` no message.
                    let entries = object(item).in_index(i).in_key("values")?;
                    a.value(|v| self.any_value(entries, v, depth)).in_index(i).in_key("values")?;
                }
            }
        }
        Ok(())
    }

    fn kvlist_values(&mut self, entries: Entries<'_, '_>, l: &mut KeyValueListWriter<'_>, depth: usize) -> Result {
        for (key, value) in entries {
            if key == "values" {
                self.attributes(value, l, depth).in_key("values")?;
            }
        }
        Ok(())
    }
}

/// Spans and links need both ids: the protos call them required, and the index refuses a span
/// or link without them (it routes and samples by them).
fn required_ids(has_trace_id: bool, has_span_id: bool) -> Result {
    if !has_trace_id {
        return Err(JsonError::new(JsonErrorKind::MissingId { expected: 32 }).in_key("traceId"));
    }
    if !has_span_id {
        return Err(JsonError::new(JsonErrorKind::MissingId { expected: 16 }).in_key("spanId"));
    }
    Ok(())
}

/// A `Resource.entityRefs` element. The elements of `idKeys` and `descriptionKeys` are values of a
/// repeated field, so empty strings among them are kept.
fn entity_ref(value: Value<'_, '_>, r: &mut ResourceWriter<'_>) -> Result {
    let entries = object(value)?;
    r.entity_ref(|e| {
        for (key, value) in entries {
            match key {
                "schemaUrl" | "schema_url" => {
                    if let Some(url) = non_empty_string(value).in_key("schemaUrl")? {
                        e.schema_url(url);
                    }
                }
                "type" => {
                    if let Some(entity_type) = non_empty_string(value).in_key("type")? {
                        e.entity_type(entity_type);
                    }
                }
                "idKeys" | "id_keys" => {
                    for (i, item) in array(value).in_key("idKeys")?.enumerate() {
                        e.id_key(required_string(item).in_index(i).in_key("idKeys")?);
                    }
                }
                "descriptionKeys" | "description_keys" => {
                    for (i, item) in array(value).in_key("descriptionKeys")?.enumerate() {
                        e.description_key(required_string(item).in_index(i).in_key("descriptionKeys")?);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    })
}

/// The members of the `AnyValue` oneof.
#[derive(Clone, Copy)]
enum Member {
    String,
    Bool,
    Int,
    Double,
    Bytes,
    Array,
    KvList,
}

/// Mirrors the index scan's rule, so a request this decoder accepts is one the index accepts:
/// a value at nesting `depth` may hold an array or key-value list only while `depth + 1` stays
/// below [`MAX_VALUE_DEPTH`].
fn check_depth(depth: usize) -> Result {
    if depth + 1 >= MAX_VALUE_DEPTH {
        return Err(JsonError::new(JsonErrorKind::TooDeep { limit: MAX_VALUE_DEPTH }));
    }
    Ok(())
}

/// `SpanKind` names of the protobuf JSON mapping.
static SPAN_KINDS: EnumNames = EnumNames {
    type_name: "SpanKind",
    names: &[
        ("SPAN_KIND_UNSPECIFIED", 0),
        ("SPAN_KIND_INTERNAL", 1),
        ("SPAN_KIND_SERVER", 2),
        ("SPAN_KIND_CLIENT", 3),
        ("SPAN_KIND_PRODUCER", 4),
        ("SPAN_KIND_CONSUMER", 5),
    ],
};

/// `Status.StatusCode` names.
static STATUS_CODES: EnumNames = EnumNames {
    type_name: "StatusCode",
    names: &[("STATUS_CODE_UNSET", 0), ("STATUS_CODE_OK", 1), ("STATUS_CODE_ERROR", 2)],
};

struct EnumNames {
    type_name: &'static str,
    names: &'static [(&'static str, i32)],
}

/// A span's `status`: present (even as `{}`) unless absent or `null`.
fn status(value: Value<'_, '_>, s: &mut SpanWriter<'_>) -> Result {
    let Some(entries) = nullable_object(value)? else { return Ok(()) };
    let mut code = 0;
    let mut message = "";
    for (key, value) in entries {
        match key {
            "code" => code = enumeration(value, &STATUS_CODES).in_key("code")?.unwrap_or(0),
            "message" => message = string(value).in_key("message")?.unwrap_or_default(),
            _ => {}
        }
    }
    s.status(code, message);
    Ok(())
}

/// The last value of the keys `wanted` selects; `None` if there is none or it is `null`.
fn last_of<'t, 'i>(entries: Entries<'t, 'i>, wanted: impl Fn(&str) -> bool) -> Option<Value<'t, 'i>> {
    entries.filter(|(key, _)| wanted(key)).last().map(|(_, value)| value).filter(|value| !value.is_null())
}

#[cold]
fn wrong_type(expected: Expected, value: &Value<'_, '_>) -> JsonError {
    JsonError::new(JsonErrorKind::WrongType { expected, found: value.json_type() })
}

/// An object's entries; anything else (including `null`) is refused.
#[inline]
fn object<'t, 'i>(value: Value<'t, 'i>) -> Result<Entries<'t, 'i>> {
    value.entries().ok_or_else(|| wrong_type(Expected::Object, &value))
}

/// An optional message: `None` for `null`.
#[inline]
fn nullable_object<'t, 'i>(value: Value<'t, 'i>) -> Result<Option<Entries<'t, 'i>>> {
    if value.is_null() {
        return Ok(None);
    }
    object(value).map(Some)
}

/// A repeated field's elements; `null` is an empty list.
#[inline]
fn array<'t, 'i>(value: Value<'t, 'i>) -> Result<Elements<'t, 'i>> {
    match value.elements() {
        Some(elements) => Ok(elements),
        None if value.is_null() => Ok(Elements::default()),
        None => Err(wrong_type(Expected::Array, &value)),
    }
}

#[inline]
fn string<'i>(value: Value<'_, 'i>) -> Result<Option<&'i str>> {
    match value.node() {
        Node::String(text) => Ok(Some(text)),
        Node::Static(StaticNode::Null) => Ok(None),
        _ => Err(wrong_type(Expected::String, &value)),
    }
}

/// An element of a repeated string field: `null` is no string there.
#[inline]
fn required_string<'i>(value: Value<'_, 'i>) -> Result<&'i str> {
    match value.node() {
        Node::String(text) => Ok(text),
        _ => Err(wrong_type(Expected::String, &value)),
    }
}

/// A string field, `None` when it is the default (`""` or `null`).
#[inline]
fn non_empty_string<'i>(value: Value<'_, 'i>) -> Result<Option<&'i str>> {
    Ok(string(value)?.filter(|text| !text.is_empty()))
}

#[inline]
fn boolean(value: Value<'_, '_>) -> Result<Option<bool>> {
    match value.node() {
        Node::Static(StaticNode::Bool(flag)) => Ok(Some(flag)),
        Node::Static(StaticNode::Null) => Ok(None),
        _ => Err(wrong_type(Expected::Bool, &value)),
    }
}

/// An integer as a JSON number or a decimal string, widened to `i128` so that one routine
/// serves `int64` and `uint64` alike; callers narrow it to their type.
///
/// Fractions and exponents are refused, as numbers (`1.0`, `1e3`) and as strings (`"1e3"`).
/// The protobuf JSON mapping lets parsers accept integral exponent forms, but simd-json hands
/// such numbers over as `f64`, which cannot represent every `int64`/`fixed64` exactly; refusing
/// them in both spellings keeps the rule simple and never changes a value silently. The
/// OpenTelemetry Collector refuses them too, so no conforming sender writes them.
#[inline]
fn integer(value: Value<'_, '_>, ty: &'static str) -> Result<Option<i128>> {
    let problem = match value.node() {
        Node::Static(StaticNode::I64(int)) => return Ok(Some(i128::from(int))),
        Node::Static(StaticNode::U64(int)) => return Ok(Some(i128::from(int))),
        Node::Static(StaticNode::F64(_)) => IntegerProblem::Fraction,
        Node::String(text) => match parse_decimal(text) {
            Ok(int) => return Ok(Some(int)),
            Err(problem) => problem,
        },
        Node::Static(StaticNode::Null) => return Ok(None),
        _ => return Err(wrong_type(Expected::Integer, &value)),
    };
    Err(JsonError::new(JsonErrorKind::InvalidInteger { ty, problem }))
}

#[cold]
fn out_of_range(ty: &'static str) -> JsonError {
    JsonError::new(JsonErrorKind::InvalidInteger { ty, problem: IntegerProblem::OutOfRange })
}

#[inline]
fn int64(value: Value<'_, '_>) -> Result<Option<i64>> {
    integer(value, "int64")?.map(|int| i64::try_from(int).map_err(|_| out_of_range("int64"))).transpose()
}

/// A `fixed64` (the times), `None` when absent or zero.
#[inline]
fn non_zero_u64(value: Value<'_, '_>) -> Result<Option<u64>> {
    let int = integer(value, "fixed64")?.map(|int| u64::try_from(int).map_err(|_| out_of_range("fixed64")));
    Ok(int.transpose()?.filter(|&int| int != 0))
}

/// A `uint32` or `fixed32` (counts and flags), `None` when absent or zero.
#[inline]
fn non_zero_u32(value: Value<'_, '_>) -> Result<Option<u32>> {
    let int = integer(value, "uint32")?.map(|int| u32::try_from(int).map_err(|_| out_of_range("uint32")));
    Ok(int.transpose()?.filter(|&int| int != 0))
}

/// An enum as a number or one of its names, `None` when absent or zero. Unknown numbers are
/// kept (proto3 enums are open); unknown names are refused, as the collector does.
fn enumeration(value: Value<'_, '_>, names: &EnumNames) -> Result<Option<i32>> {
    let int = match value.node() {
        Node::String(name) => {
            let found = names.names.iter().find(|(known, _)| *known == name);
            let Some(&(_, int)) = found else {
                let name = name.chars().take(64).collect();
                return Err(JsonError::new(JsonErrorKind::UnknownEnumName { enum_type: names.type_name, name }));
            };
            int
        }
        Node::Static(StaticNode::Null) => return Ok(None),
        Node::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_)) => {
            let int = integer(value, "enum")?.unwrap_or_default();
            i32::try_from(int).map_err(|_| out_of_range("enum"))?
        }
        _ => return Err(wrong_type(Expected::Enum, &value)),
    };
    Ok((int != 0).then_some(int))
}

/// A double as a JSON number or a string: a decimal number, or `"NaN"`, `"Infinity"`,
/// `"-Infinity"` (the only spellings of non-finite values). Other spellings Rust's float parser
/// knows (`"inf"`, `"+Infinity"`, which older collectors wrote) are taken as well.
#[inline]
fn double(value: Value<'_, '_>) -> Result<Option<f64>> {
    match value.node() {
        Node::Static(StaticNode::F64(double)) => Ok(Some(double)),
        Node::Static(StaticNode::I64(int)) => Ok(Some(int as f64)),
        Node::Static(StaticNode::U64(int)) => Ok(Some(int as f64)),
        Node::String(text) => parse_double(text).map(Some).ok_or_else(|| JsonError::new(JsonErrorKind::InvalidNumber)),
        Node::Static(StaticNode::Null) => Ok(None),
        _ => Err(wrong_type(Expected::Number, &value)),
    }
}

pub(super) fn parse_double(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// A decimal integer string: an optional `-` and one or more ASCII digits, nothing else (no
/// `+`, no spaces). Leading zeros are allowed, as Go's `strconv` (the collector) allows them.
pub(super) fn parse_decimal(text: &str) -> std::result::Result<i128, IntegerProblem> {
    let (negative, digits) = match text.as_bytes() {
        [b'-', digits @ ..] => (true, digits),
        digits => (false, digits),
    };
    if digits.is_empty() {
        return Err(IntegerProblem::NotAnInteger);
    }
    let mut magnitude: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return Err(classify_non_integer(text));
        }
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(digit - b'0')))
            .ok_or_else(|| classify_non_integer(text))?;
    }
    let magnitude = i128::from(magnitude);
    Ok(if negative { -magnitude } else { magnitude })
}

/// Why a string that failed integer parsing is not an integer: a number with a fraction or
/// exponent, one too large (all digits), or no number at all.
#[cold]
fn classify_non_integer(text: &str) -> IntegerProblem {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        IntegerProblem::OutOfRange
    } else if digits.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
        && digits.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && text.parse::<f64>().is_ok_and(f64::is_finite)
    {
        IntegerProblem::Fraction
    } else {
        IntegerProblem::NotAnInteger
    }
}

/// A trace or span id of `N` bytes as `2N` hex digits of either case; `None` for `""` and `null`
/// (proto3's empty bytes).
#[inline]
fn id<const N: usize>(value: Value<'_, '_>) -> Result<Option<[u8; N]>> {
    match string(value)? {
        None | Some("") => Ok(None),
        Some(text) => decode_hex(text).map(Some).map_err(JsonError::new),
    }
}

pub(super) fn decode_hex<const N: usize>(text: &str) -> std::result::Result<[u8; N], JsonErrorKind> {
    crate::hex_id::decode_exact(text.as_bytes()).ok_or_else(|| hex_fault(text, 2 * N))
}

/// Explains a bad id: the first non-hex character if there is one, else the wrong length.
#[cold]
fn hex_fault(text: &str, expected: usize) -> JsonErrorKind {
    match text.chars().position(|c| !c.is_ascii_hexdigit()) {
        Some(position) => JsonErrorKind::InvalidHexDigit { position },
        None => JsonErrorKind::InvalidIdLength { expected, found: text.chars().count() },
    }
}

/// Lenient decoding as the protobuf JSON mapping asks: padding optional, and non-zero bits in
/// the last symbol tolerated (Go's decoder, which most senders are tested against, does).
const BASE64_CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const BASE64_STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, BASE64_CONFIG);
const BASE64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, BASE64_CONFIG);

/// Decodes standard or URL-safe base64, padded or not, appending to `out`. A string that mixes
/// the two alphabets (`+` and `-`) is refused.
pub(super) fn base64_into(text: &str, out: &mut Vec<u8>) -> Result {
    let url_safe = text.bytes().any(|b| b == b'-' || b == b'_');
    let engine = if url_safe { &BASE64_URL_SAFE } else { &BASE64_STANDARD };
    engine.decode_vec(text, out).map_err(|error| {
        let offset = match error {
            base64::DecodeError::InvalidByte(offset, _) | base64::DecodeError::InvalidLastSymbol(offset, _) => {
                Some(offset)
            }
            _ => None,
        };
        JsonError::new(JsonErrorKind::InvalidBase64 { offset })
    })
}
