//! MessagePack → canonical batch, in one pass over the body.
//!
//! Each map is read entry by entry and every field is written through [`BatchWriter`] when its
//! key is met: no tree, no `String` per key or value (strings and bins are borrowed from the
//! body). Protobuf does not care about field order, so keys may come in any order. One place
//! needs the order: a `KeyValue` must be written key first, so a `value` that comes before its
//! `key` is skipped, remembered by position, and read once the key is known.
//!
//! Because fields are written as they are read, a singular message or `oneof` member cannot be
//! taken back when it appears a second time in one map; such a map is refused
//! ([`MsgpackErrorKind::DuplicateKey`]) instead of guessing which one the sender meant.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use spanpipe_codecs::field_path::{PathContext as _, PathError as _};
use spanpipe_core::{
    ArrayWriter, Attributes, BatchWriter, KeyValueListWriter, ResourceSpansWriter, ResourceWriter, ScopeSpansWriter,
    SpanBatch, SpanWriter, ValueWriter, MAX_VALUE_DEPTH,
};

use crate::error::{Expected, Family, IntegerProblem, MsgpackError, MsgpackErrorKind};
use crate::reader::{Reader, Result};

/// Decodes a MessagePack `ExportTraceServiceRequest` (or `TracesData`) into a batch.
///
/// A request without spans gives an empty batch (the [`crate::OtlpMsgpack`] codec turns that into
/// [`spanpipe_codecs::CodecError::Empty`]).
///
/// # Errors
/// A [`MsgpackError`] naming what is wrong, the path of the field and the byte offset.
pub fn decode(body: &[u8]) -> std::result::Result<SpanBatch, MsgpackError> {
    let mut reader = Reader::new(body);
    // The protobuf form is a little smaller than MessagePack (field numbers instead of keys).
    let mut writer = BatchWriter::with_capacity(body.len());
    Decoder { scratch: Vec::new() }.request(&mut reader, &mut writer).map_err(MsgpackError::finish)?;
    if !reader.is_at_end() {
        return Err(reader.error(MsgpackErrorKind::TrailingBytes));
    }
    writer.finish().map_err(|error| MsgpackError::new(MsgpackErrorKind::Index(error), body.len()))
}

/// State shared by the whole pass.
struct Decoder {
    /// `bytesValue`s given as base64 strings are decoded here before they are copied in.
    scratch: Vec<u8>,
}

/// Reads the entries of the map at the cursor, handing each key to `entry`, which must consume
/// the value. `expected` names what the field wanted if the value is not a map.
#[inline]
fn entries<'a>(
    r: &mut Reader<'a>,
    expected: Expected,
    mut entry: impl FnMut(&'a str, &mut Reader<'a>) -> Result,
) -> Result {
    let len = r.map_len(expected)?;
    for _ in 0..len {
        let key = r.key()?;
        entry(key, r)?;
    }
    Ok(())
}

/// Reads an array (nil is an empty one), handing each element's index to `element`.
#[inline]
fn elements<'a>(r: &mut Reader<'a>, mut element: impl FnMut(usize, &mut Reader<'a>) -> Result) -> Result {
    let len = r.array_len_or_nil()?;
    for i in 0..len as usize {
        element(i, r).in_index(i)?;
    }
    Ok(())
}

/// Refuses the second non-nil occurrence of a singular message in one map.
#[inline]
fn first_time(seen: &mut bool, r: &Reader<'_>, key: &'static str) -> Result {
    if std::mem::replace(seen, true) {
        return Err(r.error(MsgpackErrorKind::DuplicateKey { key }).in_key(key));
    }
    Ok(())
}

impl Decoder {
    fn request(&mut self, r: &mut Reader<'_>, w: &mut BatchWriter) -> Result {
        entries(r, Expected::Map, |key, r| match key {
            "resourceSpans" | "resource_spans" => elements(r, |_, r| self.resource_spans(r, w)).in_key("resourceSpans"),
            _ => r.skip(),
        })
    }

    fn resource_spans(&mut self, r: &mut Reader<'_>, w: &mut BatchWriter) -> Result {
        w.resource_spans(|rs| {
            let mut seen_resource = false;
            entries(r, Expected::Map, |key, r| match key {
                "resource" => {
                    if r.nil() {
                        return Ok(());
                    }
                    first_time(&mut seen_resource, r, "resource")?;
                    self.resource(r, rs).in_key("resource")
                }
                "scopeSpans" | "scope_spans" => elements(r, |_, r| self.scope_spans(r, rs)).in_key("scopeSpans"),
                "schemaUrl" | "schema_url" => {
                    if let Some(url) = non_empty_str(r).in_key("schemaUrl")? {
                        rs.schema_url(url);
                    }
                    Ok(())
                }
                _ => r.skip(),
            })
        })
    }

    fn resource(&mut self, r: &mut Reader<'_>, rs: &mut ResourceSpansWriter<'_>) -> Result {
        rs.resource(|res| {
            entries(r, Expected::Map, |key, r| match key {
                "attributes" => self.attributes(r, res, 0).in_key("attributes"),
                "droppedAttributesCount" | "dropped_attributes_count" => {
                    if let Some(count) = non_zero_u32(r, "uint32").in_key("droppedAttributesCount")? {
                        res.dropped_attributes_count(count);
                    }
                    Ok(())
                }
                "entityRefs" | "entity_refs" => elements(r, |_, r| entity_ref(r, res)).in_key("entityRefs"),
                _ => r.skip(),
            })
        })
    }

    fn scope_spans(&mut self, r: &mut Reader<'_>, rs: &mut ResourceSpansWriter<'_>) -> Result {
        rs.scope_spans(|ss| {
            let mut seen_scope = false;
            entries(r, Expected::Map, |key, r| match key {
                "scope" => {
                    if r.nil() {
                        return Ok(());
                    }
                    first_time(&mut seen_scope, r, "scope")?;
                    self.scope(r, ss).in_key("scope")
                }
                "spans" => elements(r, |_, r| self.span(r, ss)).in_key("spans"),
                "schemaUrl" | "schema_url" => {
                    if let Some(url) = non_empty_str(r).in_key("schemaUrl")? {
                        ss.schema_url(url);
                    }
                    Ok(())
                }
                _ => r.skip(),
            })
        })
    }

    fn scope(&mut self, r: &mut Reader<'_>, ss: &mut ScopeSpansWriter<'_>) -> Result {
        ss.scope(|s| {
            entries(r, Expected::Map, |key, r| match key {
                "name" => {
                    if let Some(name) = non_empty_str(r).in_key("name")? {
                        s.name(name);
                    }
                    Ok(())
                }
                "version" => {
                    if let Some(version) = non_empty_str(r).in_key("version")? {
                        s.version(version);
                    }
                    Ok(())
                }
                "attributes" => self.attributes(r, s, 0).in_key("attributes"),
                "droppedAttributesCount" | "dropped_attributes_count" => {
                    if let Some(count) = non_zero_u32(r, "uint32").in_key("droppedAttributesCount")? {
                        s.dropped_attributes_count(count);
                    }
                    Ok(())
                }
                _ => r.skip(),
            })
        })
    }

    fn span(&mut self, r: &mut Reader<'_>, ss: &mut ScopeSpansWriter<'_>) -> Result {
        ss.span(|s| {
            let mut has_trace_id = false;
            let mut has_span_id = false;
            entries(r, Expected::Map, |key, r| {
                match key {
                    "traceId" | "trace_id" => {
                        if let Some(id) = id::<16>(r).in_key("traceId")? {
                            s.trace_id(&id);
                            has_trace_id = true;
                        }
                    }
                    "spanId" | "span_id" => {
                        if let Some(id) = id::<8>(r).in_key("spanId")? {
                            s.span_id(&id);
                            has_span_id = true;
                        }
                    }
                    "traceState" | "trace_state" => {
                        if let Some(state) = non_empty_str(r).in_key("traceState")? {
                            s.trace_state(state);
                        }
                    }
                    "parentSpanId" | "parent_span_id" => {
                        if let Some(id) = id::<8>(r).in_key("parentSpanId")? {
                            s.parent_span_id(&id);
                        }
                    }
                    "flags" => {
                        if let Some(flags) = non_zero_u32(r, "fixed32").in_key("flags")? {
                            s.flags(flags);
                        }
                    }
                    "name" => {
                        if let Some(name) = non_empty_str(r).in_key("name")? {
                            s.name(name);
                        }
                    }
                    "kind" => {
                        if let Some(kind) = enumeration(r, &SPAN_KINDS).in_key("kind")? {
                            s.kind(kind);
                        }
                    }
                    "startTimeUnixNano" | "start_time_unix_nano" => {
                        if let Some(nanos) = non_zero_u64(r).in_key("startTimeUnixNano")? {
                            s.start_time_unix_nano(nanos);
                        }
                    }
                    "endTimeUnixNano" | "end_time_unix_nano" => {
                        if let Some(nanos) = non_zero_u64(r).in_key("endTimeUnixNano")? {
                            s.end_time_unix_nano(nanos);
                        }
                    }
                    "attributes" => self.attributes(r, s, 0).in_key("attributes")?,
                    "droppedAttributesCount" | "dropped_attributes_count" => {
                        if let Some(count) = non_zero_u32(r, "uint32").in_key("droppedAttributesCount")? {
                            s.dropped_attributes_count(count);
                        }
                    }
                    "events" => elements(r, |_, r| self.event(r, s)).in_key("events")?,
                    "droppedEventsCount" | "dropped_events_count" => {
                        if let Some(count) = non_zero_u32(r, "uint32").in_key("droppedEventsCount")? {
                            s.dropped_events_count(count);
                        }
                    }
                    "links" => elements(r, |_, r| self.link(r, s)).in_key("links")?,
                    "droppedLinksCount" | "dropped_links_count" => {
                        if let Some(count) = non_zero_u32(r, "uint32").in_key("droppedLinksCount")? {
                            s.dropped_links_count(count);
                        }
                    }
                    "status" => status(r, s).in_key("status")?,
                    _ => r.skip()?,
                }
                Ok(())
            })?;
            required_ids(r, has_trace_id, has_span_id)
        })
    }

    fn event(&mut self, r: &mut Reader<'_>, s: &mut SpanWriter<'_>) -> Result {
        s.event(|e| {
            entries(r, Expected::Map, |key, r| match key {
                "timeUnixNano" | "time_unix_nano" => {
                    if let Some(nanos) = non_zero_u64(r).in_key("timeUnixNano")? {
                        e.time_unix_nano(nanos);
                    }
                    Ok(())
                }
                "name" => {
                    if let Some(name) = non_empty_str(r).in_key("name")? {
                        e.name(name);
                    }
                    Ok(())
                }
                "attributes" => self.attributes(r, e, 0).in_key("attributes"),
                "droppedAttributesCount" | "dropped_attributes_count" => {
                    if let Some(count) = non_zero_u32(r, "uint32").in_key("droppedAttributesCount")? {
                        e.dropped_attributes_count(count);
                    }
                    Ok(())
                }
                _ => r.skip(),
            })
        })
    }

    /// A `Span.Link`. Its ids are required, as a span's are: a link without them points nowhere.
    fn link(&mut self, r: &mut Reader<'_>, s: &mut SpanWriter<'_>) -> Result {
        s.link(|l| {
            let mut has_trace_id = false;
            let mut has_span_id = false;
            entries(r, Expected::Map, |key, r| {
                match key {
                    "traceId" | "trace_id" => {
                        if let Some(id) = id::<16>(r).in_key("traceId")? {
                            l.trace_id(&id);
                            has_trace_id = true;
                        }
                    }
                    "spanId" | "span_id" => {
                        if let Some(id) = id::<8>(r).in_key("spanId")? {
                            l.span_id(&id);
                            has_span_id = true;
                        }
                    }
                    "traceState" | "trace_state" => {
                        if let Some(state) = non_empty_str(r).in_key("traceState")? {
                            l.trace_state(state);
                        }
                    }
                    "attributes" => self.attributes(r, l, 0).in_key("attributes")?,
                    "droppedAttributesCount" | "dropped_attributes_count" => {
                        if let Some(count) = non_zero_u32(r, "uint32").in_key("droppedAttributesCount")? {
                            l.dropped_attributes_count(count);
                        }
                    }
                    "flags" => {
                        if let Some(flags) = non_zero_u32(r, "fixed32").in_key("flags")? {
                            l.flags(flags);
                        }
                    }
                    _ => r.skip()?,
                }
                Ok(())
            })?;
            required_ids(r, has_trace_id, has_span_id)
        })
    }

    /// A list of `KeyValue`s (`attributes`, or a `kvlistValue`'s `values`), at value nesting
    /// `depth` (0 for the attributes of resources, scopes, spans, events and links).
    fn attributes<A: Attributes>(&mut self, r: &mut Reader<'_>, target: &mut A, depth: usize) -> Result {
        elements(r, |_, r| self.key_value(r, target, depth))
    }

    /// A `KeyValue`. The writer needs the key first; a `value` met before its `key` is skipped and
    /// read again from its remembered position once the map is done.
    fn key_value<A: Attributes>(&mut self, r: &mut Reader<'_>, target: &mut A, depth: usize) -> Result {
        let mut key = None;
        let mut value_seen = false;
        let mut value_before_key = None;
        entries(r, Expected::Map, |name, r| match name {
            "key" => {
                if key.is_some() {
                    return Err(r.error(MsgpackErrorKind::DuplicateKey { key: "key" }).in_key("key"));
                }
                key = Some(str_or_nil(r).in_key("key")?.unwrap_or_default());
                Ok(())
            }
            "value" => {
                first_time(&mut value_seen, r, "value")?;
                match key {
                    Some(key) => self.attribute_value(r, target, key, depth).in_key("value"),
                    None => {
                        value_before_key = Some(*r);
                        r.skip()
                    }
                }
            }
            _ => r.skip(),
        })?;
        let key = key.unwrap_or_default();
        match value_before_key {
            Some(mut value) => self.attribute_value(&mut value, target, key, depth).in_key("value"),
            // No `value` at all: a KeyValue without a value message.
            None if !value_seen => {
                target.attribute_without_value(key);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Writes one attribute whose `value` is at the cursor; nil means no value message.
    fn attribute_value<A: Attributes>(
        &mut self,
        r: &mut Reader<'_>,
        target: &mut A,
        key: &str,
        depth: usize,
    ) -> Result {
        if r.nil() {
            target.attribute_without_value(key);
            return Ok(());
        }
        target.attribute(key, |v| self.any_value(r, v, depth))
    }

    /// An `AnyValue` map. Nil members are absent; a second non-nil member is refused, since the
    /// first one is already written.
    fn any_value(&mut self, r: &mut Reader<'_>, w: &mut ValueWriter<'_>, depth: usize) -> Result {
        let mut chosen = false;
        entries(r, Expected::Map, |key, r| {
            let Some(member) = Member::from_key(key) else { return r.skip() };
            if r.nil() {
                return Ok(());
            }
            first_time(&mut chosen, r, member.key())?;
            self.member(member, r, w, depth).in_key(member.key())
        })
    }

    /// The value of one `AnyValue` member.
    fn member(&mut self, member: Member, r: &mut Reader<'_>, w: &mut ValueWriter<'_>, depth: usize) -> Result {
        match member {
            Member::String => w.string(r.str(Expected::Str)?),
            Member::Bool => w.bool(r.bool()?),
            Member::Int => w.int(int64(r)?),
            Member::Double => w.double(double(r)?),
            Member::Bytes => w.bytes(self.bytes(r)?),
            Member::Array => {
                check_depth(r, depth)?;
                w.array(|a| self.array_value(r, a, depth + 1))?;
            }
            Member::KvList => {
                check_depth(r, depth)?;
                w.kvlist(|l| self.kvlist_value(r, l, depth + 1))?;
            }
        }
        Ok(())
    }

    fn array_value(&mut self, r: &mut Reader<'_>, a: &mut ArrayWriter<'_>, depth: usize) -> Result {
        entries(r, Expected::Map, |key, r| match key {
            // Elements are AnyValue messages: `{}` is an empty one; nil is refused, as in JSON.
            "values" => elements(r, |_, r| a.value(|v| self.any_value(r, v, depth))).in_key("values"),
            _ => r.skip(),
        })
    }

    fn kvlist_value(&mut self, r: &mut Reader<'_>, l: &mut KeyValueListWriter<'_>, depth: usize) -> Result {
        entries(r, Expected::Map, |key, r| match key {
            "values" => self.attributes(r, l, depth).in_key("values"),
            _ => r.skip(),
        })
    }

    /// A `bytesValue`: a bin, borrowed; or a base64 string, decoded into the scratch buffer.
    fn bytes<'s, 'a: 's>(&'s mut self, r: &mut Reader<'a>) -> Result<&'s [u8]> {
        match r.peek()? {
            Family::Bin => r.bin(),
            Family::Str => {
                let at = *r;
                let text = r.str(Expected::Bytes)?;
                self.scratch.clear();
                let engine =
                    if text.bytes().any(|b| b == b'-' || b == b'_') { &BASE64_URL_SAFE } else { &BASE64_STANDARD };
                engine.decode_vec(text, &mut self.scratch).map_err(|_| at.error(MsgpackErrorKind::InvalidBase64))?;
                Ok(&self.scratch)
            }
            found => Err(r.error(MsgpackErrorKind::WrongType { expected: Expected::Bytes, found })),
        }
    }
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

impl Member {
    /// The member a key names, in either spelling.
    fn from_key(key: &str) -> Option<Self> {
        Some(match key {
            "stringValue" | "string_value" => Self::String,
            "boolValue" | "bool_value" => Self::Bool,
            "intValue" | "int_value" => Self::Int,
            "doubleValue" | "double_value" => Self::Double,
            "bytesValue" | "bytes_value" => Self::Bytes,
            "arrayValue" | "array_value" => Self::Array,
            "kvlistValue" | "kvlist_value" => Self::KvList,
            _ => return None,
        })
    }

    /// The lowerCamelCase key, for paths.
    fn key(self) -> &'static str {
        match self {
            Self::String => "stringValue",
            Self::Bool => "boolValue",
            Self::Int => "intValue",
            Self::Double => "doubleValue",
            Self::Bytes => "bytesValue",
            Self::Array => "arrayValue",
            Self::KvList => "kvlistValue",
        }
    }
}

/// Spans and links need both ids: the protos call them required, and the index refuses a span
/// or link without them (it routes and samples by them). The offset is the end of the map.
fn required_ids(r: &Reader<'_>, has_trace_id: bool, has_span_id: bool) -> Result {
    if !has_trace_id {
        return Err(r.error(MsgpackErrorKind::MissingId { expected: 16 }).in_key("traceId"));
    }
    if !has_span_id {
        return Err(r.error(MsgpackErrorKind::MissingId { expected: 8 }).in_key("spanId"));
    }
    Ok(())
}

/// A `Resource.entityRefs` element. The elements of `idKeys` and `descriptionKeys` are values of
/// a repeated field, so empty strings among them are kept.
fn entity_ref(r: &mut Reader<'_>, res: &mut ResourceWriter<'_>) -> Result {
    res.entity_ref(|e| {
        entries(r, Expected::Map, |key, r| match key {
            "schemaUrl" | "schema_url" => {
                if let Some(url) = non_empty_str(r).in_key("schemaUrl")? {
                    e.schema_url(url);
                }
                Ok(())
            }
            "type" => {
                if let Some(entity_type) = non_empty_str(r).in_key("type")? {
                    e.entity_type(entity_type);
                }
                Ok(())
            }
            "idKeys" | "id_keys" => elements(r, |_, r| {
                e.id_key(r.str(Expected::Str)?);
                Ok(())
            })
            .in_key("idKeys"),
            "descriptionKeys" | "description_keys" => elements(r, |_, r| {
                e.description_key(r.str(Expected::Str)?);
                Ok(())
            })
            .in_key("descriptionKeys"),
            _ => r.skip(),
        })
    })
}

/// A span's `status`: present (even as an empty map) unless nil.
fn status(r: &mut Reader<'_>, s: &mut SpanWriter<'_>) -> Result {
    if r.nil() {
        return Ok(());
    }
    let mut code = 0;
    let mut message = "";
    entries(r, Expected::Map, |key, r| {
        match key {
            "code" => code = enumeration(r, &STATUS_CODES).in_key("code")?.unwrap_or(0),
            "message" => message = str_or_nil(r).in_key("message")?.unwrap_or_default(),
            _ => r.skip()?,
        }
        Ok(())
    })?;
    s.status(code, message);
    Ok(())
}

/// Mirrors the index scan's rule, so a request this decoder accepts is one the index accepts:
/// a value at nesting `depth` may hold an array or key-value list only while `depth + 1` stays
/// below [`MAX_VALUE_DEPTH`].
fn check_depth(r: &Reader<'_>, depth: usize) -> Result {
    if depth + 1 >= MAX_VALUE_DEPTH {
        return Err(r.error(MsgpackErrorKind::TooDeep { limit: MAX_VALUE_DEPTH }));
    }
    Ok(())
}

/// A string field, `None` for nil.
#[inline]
pub(crate) fn str_or_nil<'a>(r: &mut Reader<'a>) -> Result<Option<&'a str>> {
    if r.nil() {
        return Ok(None);
    }
    r.str(Expected::Str).map(Some)
}

/// A string field, `None` when it is the default (`""` or nil).
#[inline]
fn non_empty_str<'a>(r: &mut Reader<'a>) -> Result<Option<&'a str>> {
    Ok(str_or_nil(r)?.filter(|text| !text.is_empty()))
}

/// An integer as any MessagePack integer or a decimal string (`-` and digits only), widened to
/// `i128`; `None` for nil.
#[inline]
pub(crate) fn integer(r: &mut Reader<'_>, ty: &'static str, expected: Expected) -> Result<Option<i128>> {
    match r.peek()? {
        Family::Nil => {
            r.nil();
            Ok(None)
        }
        Family::Str => {
            let at = *r;
            let text = r.str(expected)?;
            parse_decimal(text).map(Some).map_err(|problem| at.error(MsgpackErrorKind::InvalidInteger { ty, problem }))
        }
        _ => r.integer(expected).map(Some),
    }
}

/// Narrows an integer read at `at` to `T`, or says it is out of range for `ty`.
#[inline]
pub(crate) fn narrow<T: TryFrom<i128>>(at: &Reader<'_>, int: i128, ty: &'static str) -> Result<T> {
    T::try_from(int).map_err(|_| at.error(MsgpackErrorKind::InvalidInteger { ty, problem: IntegerProblem::OutOfRange }))
}

/// An `int64` (`intValue`); nil is refused, since a member that is present must have a value.
#[inline]
fn int64(r: &mut Reader<'_>) -> Result<i64> {
    let at = *r;
    match integer(r, "int64", Expected::Integer)? {
        Some(int) => narrow(&at, int, "int64"),
        None => Err(at.error(MsgpackErrorKind::WrongType { expected: Expected::Integer, found: Family::Nil })),
    }
}

/// A `fixed64` (the times), `None` when nil or zero.
#[inline]
fn non_zero_u64(r: &mut Reader<'_>) -> Result<Option<u64>> {
    let at = *r;
    let int = integer(r, "fixed64", Expected::Integer)?.map(|int| narrow::<u64>(&at, int, "fixed64")).transpose()?;
    Ok(int.filter(|&int| int != 0))
}

/// A `uint32` or `fixed32` (counts and flags), `None` when nil or zero.
#[inline]
fn non_zero_u32(r: &mut Reader<'_>, ty: &'static str) -> Result<Option<u32>> {
    let at = *r;
    let int = integer(r, ty, Expected::Integer)?.map(|int| narrow::<u32>(&at, int, ty)).transpose()?;
    Ok(int.filter(|&int| int != 0))
}

/// A decimal integer string: an optional `-` and one or more ASCII digits, nothing else.
fn parse_decimal(text: &str) -> std::result::Result<i128, IntegerProblem> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IntegerProblem::NotAnInteger);
    }
    // At most 39 digits fit an i128; longer strings of digits are out of range for every field.
    text.parse().map_err(|_| IntegerProblem::OutOfRange)
}

/// A double: a float, an integer (converted, as JSON numbers are) or a string — a decimal
/// number, `"NaN"`, `"Infinity"` or `"-Infinity"`. Nil is refused (a present member).
fn double(r: &mut Reader<'_>) -> Result<f64> {
    let at = *r;
    match r.peek()? {
        Family::Float => r.float(),
        Family::Integer => Ok(r.integer(Expected::Number)? as f64),
        Family::Str => {
            let text = r.str(Expected::Number)?;
            let parsed = match text {
                "NaN" => Some(f64::NAN),
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                _ => text.parse().ok(),
            };
            parsed.ok_or_else(|| at.error(MsgpackErrorKind::InvalidNumber))
        }
        found => Err(r.error(MsgpackErrorKind::WrongType { expected: Expected::Number, found })),
    }
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

/// An enum as an integer or one of its names, `None` when nil or zero. Unknown numbers are kept
/// (proto3 enums are open); unknown names are refused, as the Collector does for JSON.
fn enumeration(r: &mut Reader<'_>, names: &EnumNames) -> Result<Option<i32>> {
    let at = *r;
    let int = match r.peek()? {
        Family::Nil => {
            r.nil();
            return Ok(None);
        }
        Family::Str => {
            let name = r.str(Expected::Enum)?;
            let found = names.names.iter().find(|(known, _)| *known == name);
            let Some(&(_, int)) = found else {
                let name = name.chars().take(64).collect();
                return Err(at.error(MsgpackErrorKind::UnknownEnumName { enum_type: names.type_name, name }));
            };
            int
        }
        _ => {
            let int = r.integer(Expected::Enum)?;
            narrow(&at, int, "enum")?
        }
    };
    Ok((int != 0).then_some(int))
}

/// A trace or span id of `N` bytes: a bin of `N` bytes, or `2N` hex digits of either case.
/// `None` for nil and for an empty bin or string (proto3's empty bytes).
fn id<const N: usize>(r: &mut Reader<'_>) -> Result<Option<[u8; N]>> {
    let at = *r;
    match r.peek()? {
        Family::Nil => {
            r.nil();
            Ok(None)
        }
        Family::Bin => {
            let bytes = r.bin()?;
            if bytes.is_empty() {
                return Ok(None);
            }
            let id = <[u8; N]>::try_from(bytes)
                .map_err(|_| at.error(MsgpackErrorKind::InvalidIdLength { expected: N, found: bytes.len() }))?;
            Ok(Some(id))
        }
        Family::Str => {
            let text = r.str(Expected::Id)?;
            if text.is_empty() {
                return Ok(None);
            }
            let mut id = [0; N];
            hex::decode_to_slice(text, &mut id).map_err(|_| at.error(hex_fault(text, N)))?;
            Ok(Some(id))
        }
        found => Err(r.error(MsgpackErrorKind::WrongType { expected: Expected::Id, found })),
    }
}

/// Explains a bad hex id: the first non-hex character if there is one, else the wrong length.
#[cold]
fn hex_fault(text: &str, expected: usize) -> MsgpackErrorKind {
    match text.chars().position(|c| !c.is_ascii_hexdigit()) {
        Some(position) => MsgpackErrorKind::InvalidHexDigit { position },
        None => MsgpackErrorKind::InvalidIdLength { expected, found: text.len().div_ceil(2) },
    }
}

/// Lenient as the protobuf JSON mapping asks: padding optional, non-zero trailing bits tolerated.
const BASE64_CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const BASE64_STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, BASE64_CONFIG);
const BASE64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, BASE64_CONFIG);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_are_digits_with_an_optional_minus() {
        assert_eq!(parse_decimal("-42"), Ok(-42));
        assert_eq!(parse_decimal("0018446744073709551615"), Ok(18_446_744_073_709_551_615));
        for text in ["", "-", "+1", "1.0", "1e3", " 1", "0x10"] {
            assert_eq!(parse_decimal(text), Err(IntegerProblem::NotAnInteger), "{text:?}");
        }
        assert_eq!(parse_decimal(&"9".repeat(60)), Err(IntegerProblem::OutOfRange));
    }
}
