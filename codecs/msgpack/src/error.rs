//! The decoding error: what is wrong ([`MsgpackErrorKind`]), where in the data model
//! ([`FieldPath`]) and where in the bytes (the offset).
//!
//! As in the OTLP/JSON decoder, the path is built backwards, with the same types
//! ([`spanpipe_codecs::field_path`]): nothing about the position is recorded while decoding
//! succeeds; a refused value creates the error with its byte offset and an empty path, and each
//! enclosing level adds its key or index as the error travels up through `?`. The path is put in
//! reading order once, at the public boundary.

use std::fmt;

use spanpipe_codecs::field_path::PathError;
pub use spanpipe_codecs::field_path::{FieldPath, PathSegment};
pub use spanpipe_codecs::otlp_map::IntegerProblem;
use spanpipe_core::ScanError;

/// Why a MessagePack body was refused: what, the path of the field in the OTLP data model, and
/// the byte offset of the offending value.
///
/// ```
/// use spanpipe_msgpack::MsgpackErrorKind;
///
/// // {"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId": bin of 3 bytes}]}]}]}
/// let mut body = vec![0x81, 0xad];
/// body.extend_from_slice(b"resourceSpans");
/// body.extend_from_slice(&[0x91, 0x81, 0xaa]);
/// body.extend_from_slice(b"scopeSpans");
/// body.extend_from_slice(&[0x91, 0x81, 0xa5]);
/// body.extend_from_slice(b"spans");
/// body.extend_from_slice(&[0x91, 0x81, 0xa7]);
/// body.extend_from_slice(b"traceId");
/// body.extend_from_slice(&[0xc4, 0x03, 1, 2, 3]);
/// let error = spanpipe_msgpack::decode(&body).unwrap_err();
/// assert!(matches!(error.kind(), MsgpackErrorKind::InvalidIdLength { expected: 16, found: 3 }));
/// assert_eq!(error.path().to_string(), "resourceSpans[0].scopeSpans[0].spans[0].traceId");
/// assert_eq!(error.offset(), 46);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0)]
pub struct MsgpackError(Box<Inner>);

/// Boxed so that `Result<_, MsgpackError>` stays one pointer wide on the hot path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Inner {
    kind: MsgpackErrorKind,
    path: FieldPath,
    offset: usize,
}

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)?;
        if !self.path.is_empty() {
            write!(f, " (`{}`)", self.path)?;
        }
        Ok(())
    }
}

impl MsgpackError {
    /// What is wrong. Match on this, never on the message text.
    #[must_use]
    pub fn kind(&self) -> &MsgpackErrorKind {
        &self.0.kind
    }

    /// Where in the data model: the path of the offending field (empty for the top-level value).
    #[must_use]
    pub fn path(&self) -> &FieldPath {
        &self.0.path
    }

    /// Where in the body: the byte offset of the offending value (its first byte, or where the
    /// body ended for [`MsgpackErrorKind::UnexpectedEnd`]).
    #[must_use]
    pub fn offset(&self) -> usize {
        self.0.offset
    }

    #[cold]
    pub(crate) fn new(kind: MsgpackErrorKind, offset: usize) -> Self {
        Self(Box::new(Inner { kind, path: FieldPath::default(), offset }))
    }
}

impl PathError for MsgpackError {
    fn path_mut(&mut self) -> &mut FieldPath {
        &mut self.0.path
    }
}

/// The kinds of fault the decoder reports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsgpackErrorKind {
    /// The body ends inside a value (a truncated body, or a length that runs past its end).
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// Bytes follow the top-level map.
    #[error("trailing bytes after the top-level map")]
    TrailingBytes,
    /// The byte 0xc1, which the MessagePack specification reserves and no encoder writes.
    #[error("reserved MessagePack marker 0xc1")]
    ReservedMarker,
    /// A field holds a value of the wrong MessagePack type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the mapping allows here.
        expected: Expected,
        /// What the body has.
        found: Family,
    },
    /// A map key that is not a string.
    #[error("map key must be a string, found {found}")]
    NonStringKey {
        /// What the body has.
        found: Family,
    },
    /// A string that is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A trace or span id of the wrong length (bin bytes, or hex digits for a string id).
    #[error("id must be {expected} bytes, found {found}")]
    InvalidIdLength {
        /// 16 for trace ids, 8 for span ids.
        expected: usize,
        /// Bytes in the bin, or half the characters of a hex string (rounded up).
        found: usize,
    },
    /// A string id that is not hexadecimal.
    #[error("string id is not hexadecimal: character {position} is not a hex digit")]
    InvalidHexDigit {
        /// Character position (from zero) of the first bad digit.
        position: usize,
    },
    /// A span or link without a trace id or span id (absent, nil or empty). The OTLP protos call
    /// both required, and spanpipe's index needs them to route and sample.
    #[error("required {expected}-byte id is missing or empty")]
    MissingId {
        /// 16 for trace ids, 8 for span ids.
        expected: usize,
    },
    /// An integer field whose value does not fit its protobuf type, or a string that is not a
    /// decimal integer.
    #[error("invalid {ty} value: {problem}")]
    InvalidInteger {
        /// The protobuf type (`int64`, `fixed64`, `uint32`, `fixed32`, `enum`).
        ty: &'static str,
        /// What is wrong with it.
        problem: IntegerProblem,
    },
    /// A `doubleValue` string that is not a number, `"NaN"`, `"Infinity"` or `"-Infinity"`.
    #[error("invalid double: expected a float, an integer or a string such as \"2.5\" or \"NaN\"")]
    InvalidNumber,
    /// An enum given by a name that the enum does not have.
    #[error("unknown {enum_type} name {name:?}")]
    UnknownEnumName {
        /// `SpanKind` or `StatusCode`.
        enum_type: &'static str,
        /// The name in the request (cut to 64 characters).
        name: String,
    },
    /// A `bytesValue` string that is not base64 (standard or URL-safe, padded or not).
    #[error("invalid base64 in a string bytesValue")]
    InvalidBase64,
    /// A singular message or `oneof` member given twice in one map (`resource`, `scope`, two
    /// members of one `AnyValue`). Refused rather than guessed: the decoder writes as it reads
    /// and cannot take back the first one.
    #[error("`{key}` given twice in one map (or with another member of its oneof)")]
    DuplicateKey {
        /// The key, in lowerCamelCase.
        key: &'static str,
    },
    /// Attribute values nested deeper than [`spanpipe_core::MAX_VALUE_DEPTH`]. Refused so that a
    /// hostile body cannot exhaust the stack.
    #[error("values nested deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The decoded spans could not be indexed (only for requests beyond the batch size limit).
    #[error("decoded request cannot be indexed: {0}")]
    Index(ScanError),
}

/// The MessagePack format families, as found in a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// nil.
    Nil,
    /// true or false.
    Bool,
    /// Any integer format.
    Integer,
    /// float 32 or float 64.
    Float,
    /// Any str format.
    Str,
    /// Any bin format.
    Bin,
    /// Any array format.
    Array,
    /// Any map format.
    Map,
    /// Any ext format (including the timestamp extension).
    Ext,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nil => "nil",
            Self::Bool => "a boolean",
            Self::Integer => "an integer",
            Self::Float => "a float",
            Self::Str => "a string",
            Self::Bin => "a bin",
            Self::Array => "an array",
            Self::Map => "a map",
            Self::Ext => "an ext value",
        })
    }
}

/// What the mapping allows where a [`MsgpackErrorKind::WrongType`] was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// A message: a map (or nil where the message is optional).
    Map,
    /// A repeated field: an array (or nil).
    Array,
    /// A string (or nil).
    Str,
    /// true or false (or nil).
    Bool,
    /// An integer, or a decimal string (or nil).
    Integer,
    /// A double: a float, an integer or a string (or nil).
    Number,
    /// An enum: an integer or the value's name (or nil).
    Enum,
    /// An id: a bin, or a hex string (or nil).
    Id,
    /// Bytes: a bin, or a base64 string (or nil).
    Bytes,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Map => "a map",
            Self::Array => "an array",
            Self::Str => "a string",
            Self::Bool => "true or false",
            Self::Integer => "an integer (or a decimal string)",
            Self::Number => "a float (or an integer or a string)",
            Self::Enum => "an enum (an integer or a name such as \"SPAN_KIND_SERVER\")",
            Self::Id => "an id (a bin, or a hex string)",
            Self::Bytes => "bytes (a bin, or a base64 string)",
        })
    }
}
