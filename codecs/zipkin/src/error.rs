//! Typed decode errors: what is wrong and where (a JSON path or a byte offset).

use std::fmt;

use spanpipe_core::wire::WireFault;
use spanpipe_core::{ScanError, WireType};

/// Where in the request body a problem was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A JSON path from the document root, e.g. `$[3].localEndpoint.ipv4` or `$[0].tags["http.url"]`.
    Json(String),
    /// A byte offset into a protobuf body.
    Byte(usize),
    /// The whole body (the batch as a whole, after the spans were read).
    Body,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(path) => write!(f, "`{path}`"),
            Self::Byte(offset) => write!(f, "byte {offset}"),
            Self::Body => f.write_str("the body"),
        }
    }
}

/// What is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The body is not JSON (simd-json's message; it names the character offset).
    #[error("malformed JSON: {0}")]
    Syntax(String),
    /// A JSON value has the wrong type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the Zipkin model wants here.
        expected: &'static str,
        /// What the document has.
        found: &'static str,
    },
    /// A field Zipkin requires is absent (`traceId`, `id`).
    #[error("required field is missing")]
    Missing,
    /// An id is not 1 to `max_digits` hexadecimal digits.
    #[error("invalid hex id {value:?}: expected 1 to {max_digits} hexadecimal digits")]
    InvalidHexId {
        /// The id as sent.
        value: String,
        /// 32 for trace ids, 16 for span ids.
        max_digits: usize,
    },
    /// A Zipkin v1 `traceIdHigh` that differs from the high half of a 128-bit `traceId` sent with it.
    #[error("traceIdHigh {trace_id_high:?} contradicts the high 64 bits of the 128-bit traceId")]
    TraceIdHighMismatch {
        /// The `traceIdHigh` as sent.
        trace_id_high: String,
    },
    /// A protobuf id has a length Zipkin does not define.
    #[error("id of {found} bytes: expected {expected}")]
    IdLength {
        /// The lengths allowed.
        expected: &'static str,
        /// The length sent.
        found: usize,
    },
    /// A trace or span id of all zeros, which Zipkin defines as invalid.
    #[error("id is zero")]
    ZeroId,
    /// A number that is not a non-negative integer in range (timestamps, durations, ports).
    #[error("{0} is not {1}")]
    Number(String, &'static str),
    /// A timestamp that overflows nanoseconds since the epoch in 64 bits.
    #[error("timestamp {0} µs overflows 64-bit nanoseconds")]
    TimestampOverflow(u64),
    /// An `ipv4`/`ipv6` that is not an address of that family.
    #[error("invalid {family} address {value:?}")]
    InvalidAddress {
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The value as sent (hex for protobuf bytes).
        value: String,
    },
    /// A protobuf field read with the wrong wire type.
    #[error("field {field} has wire type {found}, expected {expected}")]
    WireType {
        /// The field's name in zipkin.proto.
        field: &'static str,
        /// The wire type sent.
        found: WireType,
        /// The wire type the schema gives.
        expected: WireType,
    },
    /// A protobuf framing fault (truncated, bad varint, bad tag, length past the end).
    #[error("protobuf: {0}")]
    Wire(WireFault),
    /// A protobuf string that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// The batch built from the spans was refused by the index scan (more than 4 GiB, or
    /// attribute values nested too deep).
    #[error("the decoded batch is invalid: {0}")]
    Index(ScanError),
}

/// A Zipkin body that cannot be decoded: the problem and where it is.
#[derive(Debug, thiserror::Error)]
#[error("{problem} at {location}")]
pub struct ZipkinError {
    /// Where.
    pub location: Location,
    /// What.
    pub problem: Problem,
}

impl ZipkinError {
    pub(crate) fn at_byte(offset: usize, problem: Problem) -> Self {
        Self { location: Location::Byte(offset), problem }
    }

    pub(crate) fn wire((fault, offset): (WireFault, usize)) -> Self {
        Self::at_byte(offset, Problem::Wire(fault))
    }
}

/// What [`crate::ZipkinV1Json`] answers when asked to encode: Zipkin v1 is accepted from old
/// clients but never written, since every Zipkin server and the Collector take v2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "Zipkin v1 JSON is receive-only: spanpipe decodes it on `POST /api/v1/spans` but does not \
     write it; export with the `zipkin_json` or `zipkin_proto` codec (Zipkin v2) instead"
)]
pub struct ReceiveOnly;

/// A problem found at a place inside one span of a JSON document, before the path is known in
/// full: decoding functions return this, and the caller that knows the span's index turns it into a
/// [`ZipkinError`]. Building the path only on the error path keeps the happy path allocation free.
#[derive(Debug)]
pub(crate) struct JsonFault {
    /// Path segments from the span down, innermost last.
    pub(crate) path: Vec<Segment>,
    pub(crate) problem: Problem,
}

#[derive(Debug)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

impl JsonFault {
    pub(crate) fn new(problem: Problem) -> Self {
        Self { path: Vec::new(), problem }
    }

    /// Prefixes an object key (segments are pushed innermost first and reversed at the end).
    pub(crate) fn in_key(mut self, key: &str) -> Self {
        self.path.push(Segment::Key(key.to_owned()));
        self
    }

    pub(crate) fn in_index(mut self, index: usize) -> Self {
        self.path.push(Segment::Index(index));
        self
    }

    pub(crate) fn finish(self) -> ZipkinError {
        let mut path = String::from("$");
        for segment in self.path.iter().rev() {
            match segment {
                Segment::Index(i) => path.push_str(&format!("[{i}]")),
                Segment::Key(key) if key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                    path.push('.');
                    path.push_str(key);
                }
                Segment::Key(key) => path.push_str(&format!("[{key:?}]")),
            }
        }
        ZipkinError { location: Location::Json(path), problem: self.problem }
    }
}

/// Adds path context to results on the way up.
pub(crate) trait Context<T> {
    fn in_key(self, key: &str) -> Result<T, JsonFault>;
    fn in_index(self, index: usize) -> Result<T, JsonFault>;
}

impl<T> Context<T> for Result<T, JsonFault> {
    fn in_key(self, key: &str) -> Result<T, JsonFault> {
        self.map_err(|fault| fault.in_key(key))
    }

    fn in_index(self, index: usize) -> Result<T, JsonFault> {
        self.map_err(|fault| fault.in_index(index))
    }
}

impl From<Problem> for JsonFault {
    fn from(problem: Problem) -> Self {
        Self::new(problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_path_quotes_keys_that_are_not_identifiers() {
        let fault = JsonFault::new(Problem::Missing).in_key("http.url").in_key("tags").in_index(3);
        assert_eq!(fault.finish().location, Location::Json("$[3].tags[\"http.url\"]".into()));
    }
}
