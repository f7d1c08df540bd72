//! The OTLP/JSON decoding error: what is wrong ([`JsonErrorKind`]) and where ([`FieldPath`],
//! built backwards on the way out as [`crate::field_path`] explains).

use std::fmt;

use crate::field_path::PathError;
pub use crate::field_path::{FieldPath, PathSegment};
pub use crate::otlp_map::IntegerProblem;

use spanpipe_core::ScanError;

/// Why an OTLP/JSON request body was refused, and the JSON path of the offending field.
///
/// ```
/// use spanpipe_codecs::otlp_json::{self, JsonErrorKind};
///
/// let mut body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abc"}]}]}]}"#.to_vec();
/// let error = otlp_json::decode(&mut body).unwrap_err();
/// assert!(matches!(error.kind(), JsonErrorKind::InvalidIdLength { .. }));
/// assert_eq!(error.path().to_string(), "resourceSpans[0].scopeSpans[0].spans[0].traceId");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0)]
pub struct JsonError(Box<Inner>);

/// Boxed so that `Result<_, JsonError>` stays one pointer wide on the hot path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Inner {
    kind: JsonErrorKind,
    path: FieldPath,
}

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{} at `{}`", self.kind, self.path)
        }
    }
}

impl JsonError {
    /// What is wrong. Match on this, never on the message text.
    #[must_use]
    pub fn kind(&self) -> &JsonErrorKind {
        &self.0.kind
    }

    /// Where: the JSON path of the offending value (empty for faults of the JSON text itself).
    #[must_use]
    pub fn path(&self) -> &FieldPath {
        &self.0.path
    }

    #[cold]
    pub(crate) fn new(kind: JsonErrorKind) -> Self {
        Self(Box::new(Inner { kind, path: FieldPath::default() }))
    }

    #[cold]
    pub(crate) fn from_simd(error: &simd_json::Error) -> Self {
        use simd_json::ErrorType as T;
        let (kind, offset) = match error.error() {
            T::DepthLimitExceeded => {
                return Self::new(JsonErrorKind::TooDeep { limit: simd_json::DEFAULT_MAX_DEPTH });
            }
            T::InputTooLarge => (SyntaxError::TooLarge, None),
            T::Eof | T::UnterminatedString => (SyntaxError::UnexpectedEnd, Some(error.index())),
            T::TrailingData => (SyntaxError::TrailingData, Some(error.index())),
            T::InvalidUtf8 => (SyntaxError::InvalidUtf8, Some(error.index())),
            T::InvalidEscape | T::InvalidUnicodeEscape | T::InvalidUnicodeCodepoint => {
                (SyntaxError::InvalidEscape, Some(error.index()))
            }
            T::InvalidNumber | T::InvalidExponent => (SyntaxError::InvalidNumber, Some(error.index())),
            T::Overflow => (SyntaxError::NumberTooLarge, Some(error.index())),
            _ => (SyntaxError::Malformed, Some(error.index())),
        };
        Self::new(JsonErrorKind::Syntax { kind, offset })
    }
}

impl PathError for JsonError {
    fn path_mut(&mut self) -> &mut FieldPath {
        &mut self.0.path
    }
}

/// The kinds of fault the OTLP/JSON decoder reports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// The body is not one well-formed JSON text (RFC 8259).
    #[error("invalid JSON{}: {kind}", offset.map(|offset| format!(" at byte {offset}")).unwrap_or_default())]
    Syntax {
        /// What simd-json found wrong.
        kind: SyntaxError,
        /// The byte offset simd-json reports, when it reports one.
        offset: Option<usize>,
    },
    /// A field holds a JSON value of the wrong type (e.g. a string where an object belongs).
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the OTLP/JSON mapping allows here.
        expected: Expected,
        /// What the request has.
        found: JsonType,
    },
    /// A trace or span id whose hex text has the wrong length.
    #[error("id must be {expected} hex digits, found {found} characters")]
    InvalidIdLength {
        /// 32 for trace ids, 16 for span ids.
        expected: usize,
        /// Characters in the request.
        found: usize,
    },
    /// A trace or span id that is not hexadecimal.
    #[error("id is not hexadecimal: character {position} is not a hex digit")]
    InvalidHexDigit {
        /// Character position (from zero) of the first bad digit.
        position: usize,
    },
    /// A span or link without a trace id or span id (absent, `null` or `""`). The OTLP protos call
    /// both required, and spanpipe's index needs them to route and sample.
    #[error("required {expected}-hex-digit id is missing or empty")]
    MissingId {
        /// 32 for trace ids, 16 for span ids.
        expected: usize,
    },
    /// An integer field whose value is not an integer of its protobuf type.
    #[error("invalid {ty} value: {problem}")]
    InvalidInteger {
        /// The protobuf type (`int64`, `fixed64`, `uint32`, `fixed32`, `enum`).
        ty: &'static str,
        /// What is wrong with it.
        problem: IntegerProblem,
    },
    /// A `doubleValue` string that is not a number, `"NaN"`, `"Infinity"` or `"-Infinity"`.
    #[error("invalid double: expected a number or a string such as \"2.5\", \"NaN\", \"Infinity\" or \"-Infinity\"")]
    InvalidNumber,
    /// An enum given by a name that the enum does not have.
    #[error("unknown {enum_type} name {name:?}")]
    UnknownEnumName {
        /// `SpanKind` or `StatusCode`.
        enum_type: &'static str,
        /// The name in the request (cut to 64 characters).
        name: String,
    },
    /// A `bytesValue` that is not base64 (standard or URL-safe, padded or not).
    #[error("invalid base64{}", offset.map(|offset| format!(" at character {offset}")).unwrap_or_default())]
    InvalidBase64 {
        /// Position of the first offending character, when there is one.
        offset: Option<usize>,
    },
    /// Attribute values nested deeper than [`spanpipe_core::MAX_VALUE_DEPTH`], or JSON nested
    /// deeper than the parser allows. Refused so that a hostile body cannot exhaust the stack.
    #[error("values nested deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The decoded spans could not be indexed (only for requests beyond the batch size limit).
    #[error("decoded request cannot be indexed: {0}")]
    Index(ScanError),
}

/// What simd-json found wrong with the JSON text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxError {
    /// The text ends in the middle of a value or string.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// Something follows the top-level value.
    #[error("trailing data after the JSON value")]
    TrailingData,
    /// The text is not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A string holds an invalid escape sequence.
    #[error("invalid string escape")]
    InvalidEscape,
    /// A malformed number.
    #[error("invalid number")]
    InvalidNumber,
    /// An integer literal that does not fit in 64 bits.
    #[error("integer literal does not fit in 64 bits")]
    NumberTooLarge,
    /// The body is larger than the parser can address (4 GiB).
    #[error("body too large")]
    TooLarge,
    /// Any other structural fault (a missing comma, colon or bracket, a bare word, …).
    #[error("malformed JSON")]
    Malformed,
}

/// The JSON value types, as found in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonType {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        })
    }
}

/// What the OTLP/JSON mapping allows where a [`JsonErrorKind::WrongType`] was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// A message: a JSON object (or `null`).
    Object,
    /// A repeated field: a JSON array (or `null`).
    Array,
    /// A string (or `null`).
    String,
    /// `true` or `false` (or `null`).
    Bool,
    /// An integer: a JSON number or a decimal string (or `null`).
    Integer,
    /// A double: a JSON number or a string (or `null`).
    Number,
    /// An enum: an integer or the value's name (or `null`).
    Enum,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Object => "an object",
            Self::Array => "an array",
            Self::String => "a string",
            Self::Bool => "true or false",
            Self::Integer => "an integer (a JSON number or a decimal string)",
            Self::Number => "a number (a JSON number or a string)",
            Self::Enum => "an enum (an integer or a name such as \"SPAN_KIND_SERVER\")",
        })
    }
}
