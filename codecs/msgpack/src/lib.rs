//! # spanpipe-msgpack
//!
//! OTLP as MessagePack: the data model of OTLP/JSON — the same messages, the same lowerCamelCase
//! keys, the same nesting — encoded as MessagePack instead of JSON text. It is meant for the hop
//! from an agent to a gateway, where both ends are spanpipe (or anything that speaks this
//! mapping) and bytes on the wire and CPU per span matter more than readability.
//!
//! Why this shape: keeping the OTLP/JSON model means any MessagePack library can produce a
//! request from the OTLP/JSON documentation (a Python dict written as the JSON example reads,
//! with ids as bytes), and nothing new needs to be learned. Why not just OTLP/JSON: MessagePack
//! carries ids, times and bytes in binary (a trace id is 18 bytes instead of 34, a timestamp 9
//! instead of 21, no base64), needs no escaping, and decodes without a tokenizer. Why not
//! protobuf: where a sender has no protobuf toolchain but has MessagePack (scripting runtimes,
//! embedded agents), this is the compact option.
//!
//! ## The mapping
//!
//! Every message is a map with str keys; every repeated field is an array. Keys are written in
//! protobuf field-number order, proto3 default scalars are left out, and messages and list
//! entries that exist are kept even when empty (`"resource": {}`, `"status": {}`, `"value": {}`),
//! exactly as the OTLP/JSON encoder does.
//!
//! | OTLP field (protobuf type) | written as | also accepted on decode |
//! |---|---|---|
//! | messages (`resourceSpans[]`, `resource`, `scope`, `spans[]`, `status`, …) | map, lowerCamelCase str keys | snake_case keys (`trace_id`), mixed freely; keys in any order; unknown keys skipped; nil = absent |
//! | repeated fields (`attributes`, `events`, `links`, `values`, …) | array | nil = empty |
//! | `traceId`, `spanId`, `parentSpanId`, link ids (`bytes`) | bin 16 / bin 8 | hex str (32 / 16 digits, either case); empty bin or str = absent (refused for the trace and span id of spans and links, required by the index) |
//! | `kind`, `status.code` (enums) | int | the enum value's name as str (`"SPAN_KIND_SERVER"`); unknown numbers kept, unknown names refused |
//! | `startTimeUnixNano`, `endTimeUnixNano`, `timeUnixNano` (`fixed64`) | uint, smallest form (a real time needs uint 64) | any int form; decimal str |
//! | `intValue` (`int64`) | int, smallest form | decimal str (`"-42"`) |
//! | counts and `flags` (`uint32`, `fixed32`) | uint, smallest form | any int form in range; decimal str |
//! | `doubleValue` (`double`) | float 64, always (every bit kept, NaN payloads included) | float 32 (widened exactly); int (converted, as a JSON number would be); str `"NaN"`, `"Infinity"`, `"-Infinity"` or a decimal number |
//! | `bytesValue` (`bytes`) | bin | base64 str (standard or URL-safe, padded or not) |
//! | `stringValue`, names, keys, `traceState`, `schemaUrl` (`string`) | str | — (str must be UTF-8) |
//! | `boolValue` (`bool`) | true / false | — |
//!
//! Each leniency in the third column is one the OTLP/JSON specification (or the protobuf JSON
//! mapping it follows) grants JSON senders, kept here because its meaning cannot be mistaken: a
//! str where an id belongs can only be hex, a str where an integer belongs only decimal. Integers
//! with a sign, fraction or exponent in a str (`"+1"`, `"1e3"`) are refused, as are ints out of
//! their field's range.
//!
//! Deliberately strict, where JSON is lenient: a singular message (`resource`, `scope`) or a
//! second member of an `AnyValue`'s oneof given twice in one map is refused
//! ([`MsgpackErrorKind::DuplicateKey`]) rather than "last wins", because the decoder writes as
//! it reads and will not guess. Ext values (including the timestamp extension) are accepted only
//! where they are skipped (under unknown keys). Trailing bytes after the top-level map are
//! refused.
//!
//! ## Decoding and encoding
//!
//! [`decode`] reads the body once with `rmp::decode` (markers and lengths; strings and bins are
//! borrowed, never copied) and writes the canonical protobuf batch as it goes through
//! [`spanpipe_core::BatchWriter`]: no tree, no serde. Unknown values are skipped without
//! recursion, attribute values nest at most [`spanpipe_core::MAX_VALUE_DEPTH`] levels, and
//! declared lengths are never trusted for allocation, so no body can exhaust the stack or the
//! heap. Errors ([`MsgpackError`]) carry the field path
//! (`resourceSpans[0].scopeSpans[1].spans[3].traceId`) and the byte offset. Which key is which
//! field, and how each is written, is `spanpipe_codecs::otlp_map`, shared with the OTLP/JSON
//! decoder; this crate supplies the cursor it reads with, and its own rules for the top-level
//! messages, repeated singular messages and `KeyValue`s.
//!
//! [`encode`] writes from the batch's borrowed views with `rmp::encode`. Because keys follow
//! field-number order, protobuf → batch → MessagePack → batch gives back the batch's bytes
//! exactly, and MessagePack → batch → MessagePack of our own output is a fixed point.
//!
//! The answers of an OTLP/HTTP exchange have MessagePack forms too ([`ExportResponse`],
//! [`Status`]), so a receiver can answer a MessagePack client in MessagePack and an exporter can
//! read the answer.

mod decode;
mod encode;
mod error;
mod reader;
mod response;

use bytes::Bytes;
use spanpipe_codecs::{Codec, CodecError};
use spanpipe_core::SpanBatch;

pub use decode::decode;
pub use encode::encode;
pub use error::{Expected, Family, FieldPath, IntegerProblem, MsgpackError, MsgpackErrorKind, PathSegment};
pub use response::{ExportResponse, PartialSuccess, Status, StatusDetail};

/// The `msgpack` codec: `application/msgpack` bodies holding an OTLP `ExportTraceServiceRequest`
/// in the mapping above.
///
/// Stateless; one instance serves every core.
#[derive(Clone, Copy, Debug, Default)]
pub struct OtlpMsgpack;

impl OtlpMsgpack {
    /// The name config files use.
    pub const NAME: &'static str = "msgpack";
    /// `application/msgpack`, and the two other spellings MessagePack clients
    /// still send. The first is what the exporter writes.
    pub const CONTENT_TYPES: &'static [&'static str] =
        &["application/msgpack", "application/x-msgpack", "application/vnd.msgpack"];
}

impl Codec for OtlpMsgpack {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn content_types(&self) -> &[&str] {
        Self::CONTENT_TYPES
    }

    fn decode(&self, body: Bytes) -> Result<SpanBatch, CodecError> {
        CodecError::unless_empty(decode(&body).map_err(|error| CodecError::other(Self::NAME, error))?)
    }

    fn encode(&self, batch: &SpanBatch) -> Result<Bytes, CodecError> {
        let mut out = Vec::new();
        encode(batch, &mut out);
        Ok(Bytes::from(out))
    }
}
