//! OTLP/JSON → canonical batch, in one walk over simd-json's tape.
//!
//! simd-json parses the body in place into a flat tape (see [`super::tape`]); this module walks
//! the tape once and writes every field straight into protobuf through [`BatchWriter`]. The
//! resource, scope and span messages are read by [`crate::otlp_map`], the walk shared with
//! MessagePack, with the tape value as its cursor; what is JSON's own stays here. There is
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

use simd_json::{Node, StaticNode};
use spanpipe_core::{
    ArrayWriter, Attributes, BatchWriter, KeyValueListWriter, ResourceSpansWriter, SpanBatch, ValueWriter,
    MAX_VALUE_DEPTH,
};

use crate::json_tape::{self, JsonBuffer};

use super::error::{Expected, IntegerProblem, JsonError, JsonErrorKind, SyntaxError};
use super::tape::{Elements, Entries, Value};
use crate::field_path::{PathContext as _, PathError as _};
use crate::otlp_map::{self, AnyValueMember as Member, AttributeReader, EnumNames, MapValue};

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
        for (key, mut value) in object(value)? {
            if let "resourceSpans" | "resource_spans" = key {
                value.elements(|item| self.resource_spans(*item, w)).in_key("resourceSpans")?;
            }
        }
        Ok(())
    }

    fn resource_spans(&mut self, value: Value<'_, '_>, w: &mut BatchWriter) -> Result {
        let entries = object(value)?;
        let resource = last_of(entries.clone(), |key| matches!(key, "resource"));
        w.resource_spans(|rs| {
            if let Some(mut resource) = resource {
                otlp_map::resource(self, &mut resource, rs).in_key("resource")?;
            }
            for (key, mut value) in entries {
                if let "scopeSpans" | "scope_spans" = key {
                    value.elements(|item| self.scope_spans(*item, rs)).in_key("scopeSpans")?;
                } else {
                    otlp_map::schema_url_or_skip(key, &mut value, |url| rs.schema_url(url))?;
                }
            }
            Ok(())
        })
    }

    fn scope_spans(&mut self, value: Value<'_, '_>, rs: &mut ResourceSpansWriter<'_>) -> Result {
        let entries = object(value)?;
        let scope = last_of(entries.clone(), |key| matches!(key, "scope"));
        rs.scope_spans(|ss| {
            if let Some(mut scope) = scope {
                otlp_map::scope(self, &mut scope, ss).in_key("scope")?;
            }
            for (key, mut value) in entries {
                if key == "spans" {
                    value.elements(|item| otlp_map::span(self, item, ss)).in_key("spans")?;
                } else {
                    otlp_map::schema_url_or_skip(key, &mut value, |url| ss.schema_url(url))?;
                }
            }
            Ok(())
        })
    }

    /// A list of `KeyValue`s (`attributes`, or a `kvlistValue`'s `values`), at value nesting
    /// `depth` (0 for attributes of resources, scopes, spans, events and links).
    fn key_values<A: Attributes>(&mut self, mut value: Value<'_, '_>, target: &mut A, depth: usize) -> Result {
        value.elements(|item| self.key_value(*item, target, depth))
    }

    // Inlined into the list loop: out of line, every attribute pays a call and the compiler stops
    // inlining the key reader into it (callgrind, perfgate's documents: about 3% of a decode).
    #[inline]
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
            let Some(member) = Member::from_key(key) else { continue };
            if !value.is_null() {
                chosen = Some((member, value));
            }
        }
        let Some((member, value)) = chosen else { return Ok(()) };
        self.member(member, value, w, depth).in_key(member.key())
    }

    /// The value of the one `AnyValue` member written.
    fn member(&mut self, member: Member, value: Value<'_, '_>, w: &mut ValueWriter<'_>, depth: usize) -> Result {
        match member {
            Member::String => {
                if let Some(text) = string(value)? {
                    w.string(text);
                }
            }
            Member::Bool => {
                if let Some(flag) = boolean(value)? {
                    w.bool(flag);
                }
            }
            Member::Int => {
                if let Some(int) = int64(value)? {
                    w.int(int);
                }
            }
            Member::Double => {
                if let Some(double) = double(value)? {
                    w.double(double);
                }
            }
            Member::Bytes => {
                if let Some(text) = string(value)? {
                    self.scratch.clear();
                    base64_into(text, &mut self.scratch)?;
                    w.bytes(&self.scratch);
                }
            }
            Member::Array => {
                let entries = object(value)?;
                check_depth(depth)?;
                w.array(|a| self.array_values(entries, a, depth + 1))?;
            }
            Member::KvList => {
                let entries = object(value)?;
                check_depth(depth)?;
                w.kvlist(|l| self.kvlist_values(entries, l, depth + 1))?;
            }
        }
        Ok(())
    }

    fn array_values(&mut self, entries: Entries<'_, '_>, a: &mut ArrayWriter<'_>, depth: usize) -> Result {
        for (key, mut value) in entries {
            if key == "values" {
                value
                    .elements(|item| {
                        // Array elements are AnyValue messages; `{}` is an empty one, `null` no message.
                        let entries = object(*item)?;
                        a.value(|v| self.any_value(entries, v, depth))
                    })
                    .in_key("values")?;
            }
        }
        Ok(())
    }

    fn kvlist_values(&mut self, entries: Entries<'_, '_>, l: &mut KeyValueListWriter<'_>, depth: usize) -> Result {
        for (key, value) in entries {
            if key == "values" {
                self.key_values(value, l, depth).in_key("values")?;
            }
        }
        Ok(())
    }
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
    value.object_entries().ok_or_else(|| wrong_type(Expected::Object, &value))
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
    match value.array_elements() {
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
        Node::String(text) => match otlp_map::parse_decimal(text) {
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

/// A double as a JSON number or a string ([`otlp_map::parse_double`]).
#[inline]
fn double(value: Value<'_, '_>) -> Result<Option<f64>> {
    match value.node() {
        Node::Static(StaticNode::F64(double)) => Ok(Some(double)),
        Node::Static(StaticNode::I64(int)) => Ok(Some(int as f64)),
        Node::Static(StaticNode::U64(int)) => Ok(Some(int as f64)),
        Node::String(text) => {
            otlp_map::parse_double(text).map(Some).ok_or_else(|| JsonError::new(JsonErrorKind::InvalidNumber))
        }
        Node::Static(StaticNode::Null) => Ok(None),
        _ => Err(wrong_type(Expected::Number, &value)),
    }
}

/// The tape as the shared OTLP walk's cursor: a value is read where it lies, so nothing is
/// consumed and skipping is free.
impl<'i> MapValue<'i> for Value<'_, 'i> {
    type Error = JsonError;

    #[inline]
    fn entries(&mut self, mut entry: impl FnMut(&'i str, &mut Self) -> Result) -> Result {
        for (key, mut value) in object(*self)? {
            entry(key, &mut value)?;
        }
        Ok(())
    }

    #[inline]
    fn elements(&mut self, mut element: impl FnMut(&mut Self) -> Result) -> Result {
        for (i, mut item) in array(*self)?.enumerate() {
            element(&mut item).in_index(i)?;
        }
        Ok(())
    }

    #[inline]
    fn skip(&mut self) -> Result {
        Ok(())
    }

    #[inline]
    fn null(&mut self) -> bool {
        self.is_null()
    }

    #[inline]
    fn string(&mut self) -> Result<Option<&'i str>> {
        string(*self)
    }

    #[inline]
    fn required_string(&mut self) -> Result<&'i str> {
        match self.node() {
            Node::String(text) => Ok(text),
            _ => Err(wrong_type(Expected::String, self)),
        }
    }

    /// `2N` hex digits of either case.
    #[inline]
    fn id<const N: usize>(&mut self) -> Result<Option<[u8; N]>> {
        match string(*self)? {
            None | Some("") => Ok(None),
            Some(text) => decode_hex(text).map(Some).map_err(JsonError::new),
        }
    }

    #[inline]
    fn non_zero_u32(&mut self, ty: &'static str) -> Result<Option<u32>> {
        let int = integer(*self, ty)?.map(|int| u32::try_from(int).map_err(|_| out_of_range(ty)));
        Ok(int.transpose()?.filter(|&int| int != 0))
    }

    #[inline]
    fn non_zero_u64(&mut self) -> Result<Option<u64>> {
        let int = integer(*self, "fixed64")?.map(|int| u64::try_from(int).map_err(|_| out_of_range("fixed64")));
        Ok(int.transpose()?.filter(|&int| int != 0))
    }

    fn enumeration(&mut self, names: &EnumNames) -> Result<Option<i32>> {
        let int = match self.node() {
            Node::String(name) => {
                let Some(int) = names.number(name) else {
                    let name = name.chars().take(64).collect();
                    return Err(JsonError::new(JsonErrorKind::UnknownEnumName { enum_type: names.type_name, name }));
                };
                int
            }
            Node::Static(StaticNode::Null) => return Ok(None),
            Node::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_)) => {
                let int = integer(*self, "enum")?.unwrap_or_default();
                i32::try_from(int).map_err(|_| out_of_range("enum"))?
            }
            _ => return Err(wrong_type(Expected::Enum, self)),
        };
        Ok((int != 0).then_some(int))
    }

    /// JSON ids are hex, so the error counts hex digits.
    fn missing_id(&self, bytes: usize) -> JsonError {
        JsonError::new(JsonErrorKind::MissingId { expected: 2 * bytes })
    }
}

impl<'i> AttributeReader<'i, Value<'_, 'i>> for Decoder {
    #[inline]
    fn attributes<A: Attributes>(&mut self, value: &mut Value<'_, 'i>, target: &mut A, depth: usize) -> Result {
        self.key_values(*value, target, depth)
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

/// [`otlp_map::decode_base64`], with the offset of the fault in the error.
pub(super) fn base64_into(text: &str, out: &mut Vec<u8>) -> Result {
    otlp_map::decode_base64(text, out).map_err(|error| {
        let offset = match error {
            base64::DecodeError::InvalidByte(offset, _) | base64::DecodeError::InvalidLastSymbol(offset, _) => {
                Some(offset)
            }
            _ => None,
        };
        JsonError::new(JsonErrorKind::InvalidBase64 { offset })
    })
}
