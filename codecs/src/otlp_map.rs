//! OTLP's JSON data model read from a format that spells it as keyed maps, written once for
//! OTLP/JSON (here) and MessagePack (`spanpipe-msgpack`): which key names which field, in either
//! spelling (`traceId` or `trace_id`), how each field is written through the span writer, which
//! values mean "absent" (proto3's defaults), which fields are required, the enum names, and how
//! numbers spelled as strings read (so both formats refuse `"1.0"` for an integer alike).
//!
//! A format supplies a cursor, [`MapValue`], that reads one value in its own encoding and makes
//! its own errors, and reads attribute lists itself ([`AttributeReader`]). What stays with each
//! format is where the two differ on purpose:
//! - repeated singular messages (`resource`, `scope`, an `AnyValue`'s member): JSON takes the last
//!   one, found by looking ahead over the tape; MessagePack, read front to back, refuses the
//!   repeat;
//! - `KeyValue`s, whose key the writer needs before the value: JSON looks ahead for it,
//!   MessagePack remembers where the value was;
//! - the top-level request, `ResourceSpans` and `ScopeSpans`, which hold those singular messages.
//!
//! Everything here is generic over the cursor, so each format gets its own monomorphized copy: no
//! dynamic call is added to either decoder's walk.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use spanpipe_core::{Attributes, LinkWriter, ResourceSpansWriter, ResourceWriter, ScopeSpansWriter, SpanWriter};

use crate::field_path::{PathContext as _, PathError};

/// A format's cursor at one value of a request. Readers consume the value (MessagePack moves
/// past it; a JSON tape value is simply read); every key a message does not know is passed over
/// with [`MapValue::skip`].
///
/// The scalar readers follow proto3: `null` (nil) is the field's default, returned as `None`, as
/// are the defaults `""`, `0` and enum 0 where the reader's name says so.
pub trait MapValue<'a>: Sized {
    /// The format's decoding error, which collects its path on the way out.
    type Error: PathError;

    /// Hands every entry of the map here to `entry` with the cursor at the entry's value, which
    /// `entry` must consume. Anything but a map is refused as the wrong type.
    ///
    /// # Errors
    /// The format's error for a value that is not a map, or the first error `entry` returns.
    fn entries(&mut self, entry: impl FnMut(&'a str, &mut Self) -> Result<(), Self::Error>) -> Result<(), Self::Error>;

    /// Hands every element of the array here to `element`, adding the element's index to the path
    /// of an error. `null` is an empty array (proto3's empty repeated field).
    ///
    /// # Errors
    /// The format's error for a value that is not an array, or the first error `element` returns.
    fn elements(&mut self, element: impl FnMut(&mut Self) -> Result<(), Self::Error>) -> Result<(), Self::Error>;

    /// Passes over a value that no field reads.
    ///
    /// # Errors
    /// The format's error for a value it cannot pass over (truncated MessagePack).
    fn skip(&mut self) -> Result<(), Self::Error>;

    /// Whether the value is `null`; consumes it if so.
    fn null(&mut self) -> bool;

    /// A string field; `None` for `null`.
    ///
    /// # Errors
    /// The wrong type.
    fn string(&mut self) -> Result<Option<&'a str>, Self::Error>;

    /// An element of a repeated string field, where `null` is no string.
    ///
    /// # Errors
    /// The wrong type, `null` included.
    fn required_string(&mut self) -> Result<&'a str, Self::Error>;

    /// A string field, `None` when it is the default (`""` or `null`).
    ///
    /// # Errors
    /// The wrong type.
    fn non_empty_string(&mut self) -> Result<Option<&'a str>, Self::Error> {
        Ok(self.string()?.filter(|text| !text.is_empty()))
    }

    /// A trace or span id of `N` bytes; `None` when empty or `null` (proto3's empty bytes).
    ///
    /// # Errors
    /// The wrong type, a bad hex digit or the wrong length.
    fn id<const N: usize>(&mut self) -> Result<Option<[u8; N]>, Self::Error>;

    /// A `uint32` or `fixed32` (counts and flags; `ty` names which, for errors), `None` when
    /// absent or zero.
    ///
    /// # Errors
    /// The wrong type, not an integer, or out of range.
    fn non_zero_u32(&mut self, ty: &'static str) -> Result<Option<u32>, Self::Error>;

    /// A `fixed64` (the times), `None` when absent or zero.
    ///
    /// # Errors
    /// The wrong type, not an integer, or out of range.
    fn non_zero_u64(&mut self) -> Result<Option<u64>, Self::Error>;

    /// An enum as a number or one of its `names`, `None` when absent or zero. Unknown numbers are
    /// kept (proto3 enums are open); unknown names are refused, as the Collector does.
    ///
    /// # Errors
    /// The wrong type, an unknown name, or a number out of `i32`'s range.
    fn enumeration(&mut self, names: &EnumNames) -> Result<Option<i32>, Self::Error>;

    /// The error for a span or link without its trace or span id, of `bytes` bytes. Called with
    /// the cursor after the message's map.
    fn missing_id(&self, bytes: usize) -> Self::Error;
}

/// A format's reader of attribute lists (`KeyValue`s, whose rules are its own: see the module
/// documentation).
pub trait AttributeReader<'a, V: MapValue<'a>> {
    /// Reads the list of `KeyValue`s at `value` into `target`, at value nesting `depth` (0 for
    /// the attributes of resources, scopes, spans, events and links).
    ///
    /// # Errors
    /// The first fault in the list, with its path below the list.
    fn attributes<A: Attributes>(&mut self, value: &mut V, target: &mut A, depth: usize) -> Result<(), V::Error>;
}

/// An enum's names in the protobuf JSON mapping, with their numbers.
#[derive(Debug)]
pub struct EnumNames {
    /// The enum's protobuf name, for errors.
    pub type_name: &'static str,
    /// Every name with its number.
    pub names: &'static [(&'static str, i32)],
}

impl EnumNames {
    /// The number of `name`, if it is one of the enum's names.
    #[inline]
    #[must_use]
    pub fn number(&self, name: &str) -> Option<i32> {
        self.names.iter().find(|(known, _)| *known == name).map(|&(_, number)| number)
    }
}

/// `SpanKind` names.
pub static SPAN_KINDS: EnumNames = EnumNames {
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
pub static STATUS_CODES: EnumNames = EnumNames {
    type_name: "StatusCode",
    names: &[("STATUS_CODE_UNSET", 0), ("STATUS_CODE_OK", 1), ("STATUS_CODE_ERROR", 2)],
};

/// The members of the `AnyValue` oneof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnyValueMember {
    /// `stringValue`
    String,
    /// `boolValue`
    Bool,
    /// `intValue`
    Int,
    /// `doubleValue`
    Double,
    /// `bytesValue`
    Bytes,
    /// `arrayValue`
    Array,
    /// `kvlistValue`
    KvList,
}

impl AnyValueMember {
    /// The member a key names, in either spelling.
    #[inline]
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
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
    #[must_use]
    pub fn key(self) -> &'static str {
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

/// A double's string spellings: a decimal number, or `"NaN"`, `"Infinity"`, `"-Infinity"` (the
/// mapping's only spellings of non-finite values). Other spellings Rust's float parser knows
/// (`"inf"`, `"+Infinity"`, which older collectors wrote) are taken as well.
#[must_use]
pub fn parse_double(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// Why an integer field was refused, in either format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegerProblem {
    /// Not decimal digits at all (`"12x"`, `""`).
    #[error("not a decimal integer")]
    NotAnInteger,
    /// A fraction or exponent (`1.5`, `1e3`, `"1.0"`): integers must be plain decimal digits.
    #[error("integers must be written without a fraction or exponent")]
    Fraction,
    /// Outside the range of the field's type (including any negative value for unsigned types).
    #[error("out of range")]
    OutOfRange,
}

/// An integer's string spelling (the mapping writes 64-bit integers as strings): an optional `-`
/// and one or more ASCII digits, nothing else (no `+`, no spaces), widened to `i128` so that one
/// routine serves `int64` and `uint64` alike; callers narrow it to their type. Leading zeros are
/// allowed, as Go's `strconv` (the Collector) allows them.
///
/// # Errors
/// Which [`IntegerProblem`] the text has.
pub fn parse_decimal(text: &str) -> Result<i128, IntegerProblem> {
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

/// Lenient decoding as the protobuf JSON mapping asks: padding optional, and non-zero bits in
/// the last symbol tolerated (Go's decoder, which most senders are tested against, does).
const BASE64_CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const BASE64_STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, BASE64_CONFIG);
const BASE64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, BASE64_CONFIG);

/// Decodes a `bytesValue` string, standard or URL-safe base64, padded or not, appending to `out`.
/// A string that mixes the two alphabets (`+` and `-`) is refused.
///
/// # Errors
/// base64's error, which names the offending offset where there is one.
pub fn decode_base64(text: &str, out: &mut Vec<u8>) -> Result<(), base64::DecodeError> {
    let url_safe = text.bytes().any(|b| b == b'-' || b == b'_');
    let engine = if url_safe { &BASE64_URL_SAFE } else { &BASE64_STANDARD };
    engine.decode_vec(text, out)
}

/// Writes the field `read` gave, unless it is absent; an error gets `key` in its path.
#[inline(always)]
fn set<T, R, E: PathError>(read: Result<Option<T>, E>, key: &'static str, write: impl FnOnce(T) -> R) -> Result<(), E> {
    if let Some(value) = read.in_key(key)? {
        write(value);
    }
    Ok(())
}

/// A `Resource`, not `null` (the caller's rule for a repeated `resource` decides which one).
///
/// # Errors
/// The first fault, with its path inside the resource.
pub fn resource<'a, V: MapValue<'a>>(
    reader: &mut impl AttributeReader<'a, V>,
    value: &mut V,
    rs: &mut ResourceSpansWriter<'_>,
) -> Result<(), V::Error> {
    rs.resource(|r| {
        value.entries(|key, value| match key {
            "attributes" => reader.attributes(value, r, 0).in_key("attributes"),
            "droppedAttributesCount" | "dropped_attributes_count" => {
                set(value.non_zero_u32("uint32"), "droppedAttributesCount", |count| r.dropped_attributes_count(count))
            }
            "entityRefs" | "entity_refs" => value.elements(|value| entity_ref(value, r)).in_key("entityRefs"),
            _ => value.skip(),
        })
    })
}

/// A `Resource.entityRefs` element. The elements of `idKeys` and `descriptionKeys` are values of a
/// repeated field, so empty strings among them are kept.
fn entity_ref<'a, V: MapValue<'a>>(value: &mut V, r: &mut ResourceWriter<'_>) -> Result<(), V::Error> {
    r.entity_ref(|e| {
        value.entries(|key, value| match key {
            "schemaUrl" | "schema_url" => set(value.non_empty_string(), "schemaUrl", |url| e.schema_url(url)),
            "type" => set(value.non_empty_string(), "type", |entity_type| e.entity_type(entity_type)),
            "idKeys" | "id_keys" => value
                .elements(|value| {
                    e.id_key(value.required_string()?);
                    Ok(())
                })
                .in_key("idKeys"),
            "descriptionKeys" | "description_keys" => value
                .elements(|value| {
                    e.description_key(value.required_string()?);
                    Ok(())
                })
                .in_key("descriptionKeys"),
            _ => value.skip(),
        })
    })
}

/// A key of a `ResourceSpans` or `ScopeSpans` other than its messages and lists: the
/// `schemaUrl` is read and written, anything else passed over.
///
/// # Errors
/// A `schemaUrl` of the wrong type.
pub fn schema_url_or_skip<'a, V: MapValue<'a>, R>(
    key: &str,
    value: &mut V,
    write: impl FnOnce(&'a str) -> R,
) -> Result<(), V::Error> {
    match key {
        "schemaUrl" | "schema_url" => set(value.non_empty_string(), "schemaUrl", write),
        _ => value.skip(),
    }
}

/// An `InstrumentationScope`, not `null` (the caller's rule for a repeated `scope` decides which
/// one).
///
/// # Errors
/// The first fault, with its path inside the scope.
pub fn scope<'a, V: MapValue<'a>>(
    reader: &mut impl AttributeReader<'a, V>,
    value: &mut V,
    ss: &mut ScopeSpansWriter<'_>,
) -> Result<(), V::Error> {
    ss.scope(|s| {
        value.entries(|key, value| match key {
            "name" => set(value.non_empty_string(), "name", |name| s.name(name)),
            "version" => set(value.non_empty_string(), "version", |version| s.version(version)),
            "attributes" => reader.attributes(value, s, 0).in_key("attributes"),
            "droppedAttributesCount" | "dropped_attributes_count" => {
                set(value.non_zero_u32("uint32"), "droppedAttributesCount", |count| s.dropped_attributes_count(count))
            }
            _ => value.skip(),
        })
    })
}

/// A `Span`.
///
/// # Errors
/// The first fault, with its path inside the span; a span without its trace or span id.
pub fn span<'a, V: MapValue<'a>>(
    reader: &mut impl AttributeReader<'a, V>,
    value: &mut V,
    ss: &mut ScopeSpansWriter<'_>,
) -> Result<(), V::Error> {
    ss.span(|s| {
        let mut ids = RequiredIds::default();
        value.entries(|key, value| {
            if span_context(key, value, s, &mut ids)? {
                return Ok(());
            }
            match key {
                // An absent or empty parent id is how OTLP says "root span".
                "parentSpanId" | "parent_span_id" => set(value.id::<8>(), "parentSpanId", |id| s.parent_span_id(&id)),
                "name" => set(value.non_empty_string(), "name", |name| s.name(name)),
                "kind" => set(value.enumeration(&SPAN_KINDS), "kind", |kind| s.kind(kind)),
                "startTimeUnixNano" | "start_time_unix_nano" => {
                    set(value.non_zero_u64(), "startTimeUnixNano", |nanos| s.start_time_unix_nano(nanos))
                }
                "endTimeUnixNano" | "end_time_unix_nano" => {
                    set(value.non_zero_u64(), "endTimeUnixNano", |nanos| s.end_time_unix_nano(nanos))
                }
                "attributes" => reader.attributes(value, s, 0).in_key("attributes"),
                "droppedAttributesCount" | "dropped_attributes_count" => {
                    set(value.non_zero_u32("uint32"), "droppedAttributesCount", |count| {
                        s.dropped_attributes_count(count)
                    })
                }
                "events" => value.elements(|value| event(reader, value, s)).in_key("events"),
                "droppedEventsCount" | "dropped_events_count" => {
                    set(value.non_zero_u32("uint32"), "droppedEventsCount", |count| s.dropped_events_count(count))
                }
                "links" => value.elements(|value| link(reader, value, s)).in_key("links"),
                "droppedLinksCount" | "dropped_links_count" => {
                    set(value.non_zero_u32("uint32"), "droppedLinksCount", |count| s.dropped_links_count(count))
                }
                "status" => status(value, s).in_key("status"),
                _ => value.skip(),
            }
        })?;
        ids.check(value)
    })
}

/// A `Span.Event`.
fn event<'a, V: MapValue<'a>>(
    reader: &mut impl AttributeReader<'a, V>,
    value: &mut V,
    s: &mut SpanWriter<'_>,
) -> Result<(), V::Error> {
    s.event(|e| {
        value.entries(|key, value| match key {
            "timeUnixNano" | "time_unix_nano" => {
                set(value.non_zero_u64(), "timeUnixNano", |nanos| e.time_unix_nano(nanos))
            }
            "name" => set(value.non_empty_string(), "name", |name| e.name(name)),
            "attributes" => reader.attributes(value, e, 0).in_key("attributes"),
            "droppedAttributesCount" | "dropped_attributes_count" => {
                set(value.non_zero_u32("uint32"), "droppedAttributesCount", |count| e.dropped_attributes_count(count))
            }
            _ => value.skip(),
        })
    })
}

/// A `Span.Link`. Its ids are required, as a span's are: a link without them points nowhere.
fn link<'a, V: MapValue<'a>>(
    reader: &mut impl AttributeReader<'a, V>,
    value: &mut V,
    s: &mut SpanWriter<'_>,
) -> Result<(), V::Error> {
    s.link(|l| {
        let mut ids = RequiredIds::default();
        value.entries(|key, value| {
            if span_context(key, value, l, &mut ids)? {
                return Ok(());
            }
            match key {
                "attributes" => reader.attributes(value, l, 0).in_key("attributes"),
                "droppedAttributesCount" | "dropped_attributes_count" => {
                    set(value.non_zero_u32("uint32"), "droppedAttributesCount", |count| {
                        l.dropped_attributes_count(count)
                    })
                }
                _ => value.skip(),
            }
        })?;
        ids.check(value)
    })
}

/// A span's `status`: present (even as `{}`) unless absent or `null`.
fn status<'a, V: MapValue<'a>>(value: &mut V, s: &mut SpanWriter<'_>) -> Result<(), V::Error> {
    if value.null() {
        return Ok(());
    }
    let mut code = 0;
    let mut message = "";
    value.entries(|key, value| {
        match key {
            "code" => code = value.enumeration(&STATUS_CODES).in_key("code")?.unwrap_or(0),
            "message" => message = value.string().in_key("message")?.unwrap_or_default(),
            _ => value.skip()?,
        }
        Ok(())
    })?;
    s.status(code, message);
    Ok(())
}

/// The fields a span and a link share: the span context they name.
trait SpanContextWriter {
    fn trace_id(&mut self, id: &[u8; 16]);
    fn span_id(&mut self, id: &[u8; 8]);
    fn trace_state(&mut self, state: &str);
    fn flags(&mut self, flags: u32);
}

/// Both writers have the four methods under the same names.
macro_rules! span_context_writer {
    ($($writer:ident),*) => {$(
        impl SpanContextWriter for $writer<'_> {
            fn trace_id(&mut self, id: &[u8; 16]) {
                $writer::trace_id(self, id);
            }

            fn span_id(&mut self, id: &[u8; 8]) {
                $writer::span_id(self, id);
            }

            fn trace_state(&mut self, state: &str) {
                $writer::trace_state(self, state);
            }

            fn flags(&mut self, flags: u32) {
                $writer::flags(self, flags);
            }
        }
    )*};
}

span_context_writer!(SpanWriter, LinkWriter);

/// Reads the span-context field `key` of a span or link: `true` if `key` names one.
#[inline]
fn span_context<'a, V: MapValue<'a>>(
    key: &str,
    value: &mut V,
    w: &mut impl SpanContextWriter,
    ids: &mut RequiredIds,
) -> Result<bool, V::Error> {
    match key {
        "traceId" | "trace_id" => set(value.id::<16>(), "traceId", |id| {
            w.trace_id(&id);
            ids.trace_id = true;
        })?,
        "spanId" | "span_id" => set(value.id::<8>(), "spanId", |id| {
            w.span_id(&id);
            ids.span_id = true;
        })?,
        "traceState" | "trace_state" => set(value.non_empty_string(), "traceState", |state| w.trace_state(state))?,
        "flags" => set(value.non_zero_u32("fixed32"), "flags", |flags| w.flags(flags))?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Which of a span's or link's ids were met. The protos call both required, and the index
/// refuses a span or link without them (it routes and samples by them).
#[derive(Default)]
struct RequiredIds {
    trace_id: bool,
    span_id: bool,
}

impl RequiredIds {
    fn check<'a, V: MapValue<'a>>(&self, value: &V) -> Result<(), V::Error> {
        if !self.trace_id {
            return Err(value.missing_id(16).in_key("traceId"));
        }
        if !self.span_id {
            return Err(value.missing_id(8).in_key("spanId"));
        }
        Ok(())
    }
}
