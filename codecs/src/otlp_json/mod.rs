//! OTLP/JSON: the "JSON Protobuf Encoding" of the OTLP specification, decoded straight into the
//! canonical batch and encoded straight from it.
//!
//! # Decoding
//!
//! [`decode`] parses the body in place with simd-json into its *tape* — a flat array of nodes in
//! which every object and array records how many nodes it spans — and walks that tape once,
//! writing protobuf through [`spanpipe_core::BatchWriter`] as it goes. Why the tape and not
//! simd-json's `BorrowedValue` or serde: the tape is built without any allocation per node,
//! whereas `BorrowedValue` builds a hash map per object and a vector per array, and serde into
//! opentelemetry-proto structs allocates a `String` or `Vec` per field. Skipping an unknown key on
//! the tape is a slice split, so unknown fields cost nothing whatever they hold.
//!
//! What the decoder accepts (the OTLP specification and the protobuf JSON mapping, as the
//! OpenTelemetry Collector reads them; `tests/vectors/README.md` lists the rules with sources):
//! - lowerCamelCase keys and the original snake_case field names, mixed freely; unknown keys are
//!   ignored at every level; keys in any order; with duplicate keys the last one wins for singular
//!   messages and `oneof` members (other duplicates are all written, and readers take the last);
//! - `null` anywhere means "absent": the default scalar, an empty list, an unset message;
//!   a present message, even `{}`, is set (`"status":{}`, `"resource":{}`, `"value":{}`);
//! - ids as hex of either case; `""` is an absent id, which is fine for a parent (a root span),
//!   but refused for the `traceId` and `spanId` of spans and links, which the index requires;
//! - 64-bit integers as JSON numbers (parsed exactly, never through `f64`) or decimal strings;
//!   32-bit ones likewise; fractions and exponents (`1.0`, `"1e3"`) are refused for integers
//!   (see [`JsonErrorKind::InvalidInteger`]);
//! - enums as integers (unknown numbers are kept) or their names (unknown names are refused);
//! - doubles as numbers or strings, including `"NaN"`, `"Infinity"` and `"-Infinity"`;
//! - `bytesValue` in standard or URL-safe base64, padded or not;
//! - attribute values nested up to [`spanpipe_core::MAX_VALUE_DEPTH`]; deeper is an error, never
//!   a stack overflow (JSON nested beyond simd-json's limit of 1024 is refused by the parser).
//!
//! Not supported: the string-table fields (`keyStrindex`, `stringValueStrindex`) are ignored like
//! unknown keys; they index the string table of the profiles signal and mean nothing in a trace
//! request.
//!
//! # Encoding
//!
//! [`encode`] writes the canonical form straight into a `Vec<u8>` from the batch's borrowed
//! views, with no serde and no intermediate tree: lowerCamelCase keys in the order of the proto
//! definitions, no whitespace; lower-case hex ids (`parentSpanId` left out for a root span); enums
//! as integers; `int64`/`fixed64` values as decimal strings and 32-bit ones as numbers; doubles as
//! shortest round-trip numbers or `"NaN"`/`"Infinity"`/`"-Infinity"`; bytes as padded standard
//! base64; strings escaped per RFC 8259 (`"`, `\`, control characters; other UTF-8 as is).
//! Default scalars are left out, but messages and list entries that exist on the wire are kept
//! even when empty (`"resource":{}`, a `ScopeSpans` without spans, `"status":{}`, `"value":{}`),
//! and an `AnyValue`'s member is written even when it holds a default (`{"intValue":"0"}`).
//!
//! Round trips: protobuf → JSON → protobuf gives back an equal request, except for what the JSON
//! mapping cannot express: the string-table fields, and the sign and payload bits of a NaN double
//! (every NaN is written `"NaN"` and reads back as the canonical quiet NaN). JSON → batch → JSON of
//! our own output is a fixed point byte for byte.
//!
//! # Performance
//!
//! On realistic payloads (`spanpipe_testkit::realistic`, 10 to 1000 spans), decoding runs at
//! 1.8–2.2x the throughput of serde_json into opentelemetry-proto's serde structs, while doing
//! more: it validates, and it produces the indexed protobuf batch rather than a tree of structs.
//! Those figures were measured when [`spanpipe_core::BatchWriter::finish`] still re-scanned the
//! written bytes for the index (then roughly a third of the time); the writer now records the
//! index as it writes, which took a further 6.5% of instructions off (docs/PERFORMANCE.md). Encoding runs at about 1.3x the decoding rate.

mod decode;
mod encode;
mod error;
mod tape;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use spanpipe_core::SpanBatch;

pub use decode::decode;
pub use encode::encode;
pub use error::{Expected, FieldPath, IntegerProblem, JsonError, JsonErrorKind, JsonType, PathSegment, SyntaxError};

use crate::{json_tape, Codec, CodecError};

/// The `otlp_json` codec: `application/json` bodies holding an OTLP `ExportTraceServiceRequest`.
///
/// Stateless; one instance serves every core.
#[derive(Clone, Copy, Debug, Default)]
pub struct OtlpJson;

impl OtlpJson {
    /// The name config files use.
    pub const NAME: &'static str = "otlp_json";
    /// The media type OTLP/HTTP uses for JSON bodies.
    pub const CONTENT_TYPES: &'static [&'static str] = &["application/json"];
}

impl Codec for OtlpJson {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn content_types(&self) -> &[&str] {
        Self::CONTENT_TYPES
    }

    /// Decodes in place when the body's buffer is not shared (the usual case for a request body
    /// read off the network); otherwise decodes a copy, since simd-json rewrites its input.
    fn decode(&self, body: Bytes) -> Result<SpanBatch, CodecError> {
        CodecError::unless_empty(json_tape::with_body_buffer(body, |json| decode(json))?)
    }

    fn encode(&self, batch: &SpanBatch) -> Result<Bytes, CodecError> {
        let mut out = Vec::new();
        encode(batch, &mut out);
        Ok(Bytes::from(out))
    }
}
