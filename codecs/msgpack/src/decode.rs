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

use spanpipe_codecs::field_path::{PathContext as _, PathError as _};
use spanpipe_codecs::otlp_map::{self, AnyValueMember as Member, AttributeReader, EnumNames, MapValue};
use spanpipe_core::{
    ArrayWriter, Attributes, BatchWriter, KeyValueListWriter, ResourceSpansWriter, SpanBatch, ValueWriter,
    MAX_VALUE_DEPTH,
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
            "resourceSpans" | "resource_spans" => r.elements(|r| self.resource_spans(r, w)).in_key("resourceSpans"),
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
                    otlp_map::resource(self, r, rs).in_key("resource")
                }
                "scopeSpans" | "scope_spans" => r.elements(|r| self.scope_spans(r, rs)).in_key("scopeSpans"),
                _ => otlp_map::schema_url_or_skip(key, r, |url| rs.schema_url(url)),
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
                    otlp_map::scope(self, r, ss).in_key("scope")
                }
                "spans" => r.elements(|r| otlp_map::span(self, r, ss)).in_key("spans"),
                _ => otlp_map::schema_url_or_skip(key, r, |url| ss.schema_url(url)),
            })
        })
    }

    /// A list of `KeyValue`s (`attributes`, or a `kvlistValue`'s `values`), at value nesting
    /// `depth` (0 for the attributes of resources, scopes, spans, events and links).
    fn key_values<A: Attributes>(&mut self, r: &mut Reader<'_>, target: &mut A, depth: usize) -> Result {
        r.elements(|r| self.key_value(r, target, depth))
    }

    /// A `KeyValue`. The writer needs the key first; a `value` met before its `key` is skipped and
    /// read again from its remembered position once the map is done.
    // Inlined into the list loop: out of line, every attribute pays a call and the compiler stops
    // inlining the key reader into it (callgrind, perfgate's documents: about 3% of a decode).
    #[inline]
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
            "values" => r.elements(|r| a.value(|v| self.any_value(r, v, depth))).in_key("values"),
            _ => r.skip(),
        })
    }

    fn kvlist_value(&mut self, r: &mut Reader<'_>, l: &mut KeyValueListWriter<'_>, depth: usize) -> Result {
        entries(r, Expected::Map, |key, r| match key {
            "values" => self.key_values(r, l, depth).in_key("values"),
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
                otlp_map::decode_base64(text, &mut self.scratch)
                    .map_err(|_| at.error(MsgpackErrorKind::InvalidBase64))?;
                Ok(&self.scratch)
            }
            found => Err(r.error(MsgpackErrorKind::WrongType { expected: Expected::Bytes, found })),
        }
    }
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
            otlp_map::parse_decimal(text)
                .map(Some)
                .map_err(|problem| at.error(MsgpackErrorKind::InvalidInteger { ty, problem }))
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

/// A double: a float, an integer (converted, as JSON numbers are) or a string
/// ([`otlp_map::parse_double`]). Nil is refused (a present member).
fn double(r: &mut Reader<'_>) -> Result<f64> {
    let at = *r;
    match r.peek()? {
        Family::Float => r.float(),
        Family::Integer => Ok(r.integer(Expected::Number)? as f64),
        Family::Str => {
            let text = r.str(Expected::Number)?;
            otlp_map::parse_double(text).ok_or_else(|| at.error(MsgpackErrorKind::InvalidNumber))
        }
        found => Err(r.error(MsgpackErrorKind::WrongType { expected: Expected::Number, found })),
    }
}

/// The cursor as the shared OTLP walk's: every reader moves past the value it reads.
impl<'a> MapValue<'a> for Reader<'a> {
    type Error = MsgpackError;

    #[inline]
    fn entries(&mut self, entry: impl FnMut(&'a str, &mut Self) -> Result) -> Result {
        entries(self, Expected::Map, entry)
    }

    /// An array (nil is an empty one).
    #[inline]
    fn elements(&mut self, mut element: impl FnMut(&mut Self) -> Result) -> Result {
        let len = self.array_len_or_nil()?;
        for i in 0..len as usize {
            element(self).in_index(i)?;
        }
        Ok(())
    }

    #[inline]
    fn skip(&mut self) -> Result {
        Reader::skip(self)
    }

    #[inline]
    fn null(&mut self) -> bool {
        self.nil()
    }

    #[inline]
    fn string(&mut self) -> Result<Option<&'a str>> {
        str_or_nil(self)
    }

    #[inline]
    fn required_string(&mut self) -> Result<&'a str> {
        self.str(Expected::Str)
    }

    /// A bin of `N` bytes, or `2N` hex digits of either case.
    fn id<const N: usize>(&mut self) -> Result<Option<[u8; N]>> {
        let at = *self;
        match self.peek()? {
            Family::Nil => {
                self.nil();
                Ok(None)
            }
            Family::Bin => {
                let bytes = self.bin()?;
                if bytes.is_empty() {
                    return Ok(None);
                }
                let id = <[u8; N]>::try_from(bytes)
                    .map_err(|_| at.error(MsgpackErrorKind::InvalidIdLength { expected: N, found: bytes.len() }))?;
                Ok(Some(id))
            }
            Family::Str => {
                let text = self.str(Expected::Id)?;
                if text.is_empty() {
                    return Ok(None);
                }
                let mut id = [0; N];
                hex::decode_to_slice(text, &mut id).map_err(|_| at.error(hex_fault(text, N)))?;
                Ok(Some(id))
            }
            found => Err(self.error(MsgpackErrorKind::WrongType { expected: Expected::Id, found })),
        }
    }

    #[inline]
    fn non_zero_u32(&mut self, ty: &'static str) -> Result<Option<u32>> {
        let at = *self;
        let int = integer(self, ty, Expected::Integer)?.map(|int| narrow::<u32>(&at, int, ty)).transpose()?;
        Ok(int.filter(|&int| int != 0))
    }

    #[inline]
    fn non_zero_u64(&mut self) -> Result<Option<u64>> {
        let at = *self;
        let int =
            integer(self, "fixed64", Expected::Integer)?.map(|int| narrow::<u64>(&at, int, "fixed64")).transpose()?;
        Ok(int.filter(|&int| int != 0))
    }

    fn enumeration(&mut self, names: &EnumNames) -> Result<Option<i32>> {
        let at = *self;
        let int = match self.peek()? {
            Family::Nil => {
                self.nil();
                return Ok(None);
            }
            Family::Str => {
                let name = self.str(Expected::Enum)?;
                let Some(int) = names.number(name) else {
                    let name = name.chars().take(64).collect();
                    return Err(at.error(MsgpackErrorKind::UnknownEnumName { enum_type: names.type_name, name }));
                };
                int
            }
            _ => {
                let int = self.integer(Expected::Enum)?;
                narrow(&at, int, "enum")?
            }
        };
        Ok((int != 0).then_some(int))
    }

    /// Counted in bytes; the offset is the end of the span's or link's map.
    fn missing_id(&self, bytes: usize) -> MsgpackError {
        self.error(MsgpackErrorKind::MissingId { expected: bytes })
    }
}

impl<'a> AttributeReader<'a, Reader<'a>> for Decoder {
    #[inline]
    fn attributes<A: Attributes>(&mut self, r: &mut Reader<'a>, target: &mut A, depth: usize) -> Result {
        self.key_values(r, target, depth)
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
