//! # spanpipe-jaeger
//!
//! Jaeger in and out of spanpipe's canonical batch: the agent's Thrift UDP datagrams
//! (`Agent.emitBatch` in the compact protocol on port 6831, in the binary protocol on 6832), the
//! collector's Thrift HTTP body (`POST /api/traces`, a binary-protocol `Batch`), and the
//! collector's gRPC message (`CollectorService/PostSpans` on port 14250, a `PostSpansRequest` of
//! Jaeger's protobuf model, model.proto).
//!
//! | codec | name | carries |
//! |---|---|---|
//! | [`JaegerProto`] | `jaeger_proto` | one protobuf `PostSpansRequest` |
//! | [`JaegerAgentCompact`] | `jaeger_agent_compact` | one compact-protocol `emitBatch` message |
//! | [`JaegerAgentBinary`] | `jaeger_agent_binary` | one binary-protocol `emitBatch` message |
//! | [`JaegerThriftHttp`] | `jaeger_thrift` (`application/x-thrift`, `application/vnd.apache.thrift.binary`) | one binary-protocol `Batch` |
//!
//! ## Why a hand-written reader
//!
//! Generated Thrift code decodes into a tree of owned structs (a `String` per tag key and value,
//! a `Vec` per list), which the mapping would then walk and throw away. Here a zero-copy reader
//! ([`thrift`]) reads every value of the input once (each string checked for UTF-8 once) into
//! flat records of borrowed slices, picking out the tags that carry OTLP fields on the same
//! walk; the records are then written straight into the canonical OTLP protobuf through
//! [`spanpipe_core::BatchWriter`], the picked-out tags skipped by the mark they were given
//! rather than looked up again. The records' vectors are reused across requests on a thread, so
//! decoding allocates little besides its output. The mapping is written once, generic over the
//! protocol ([`thrift::ProtocolReader`]), and monomorphised, so the compact and binary paths
//! share every line of it. Encoding is the same, from the batch's views through
//! [`thrift::ProtocolWriter`].
//!
//! The protobuf model is read with spanpipe's bounds-checked wire reader
//! ([`spanpipe_core::wire`]) into the same records and written by the same code, so it maps
//! exactly as Thrift does; its encoder shares the Thrift encoder's model pieces (a resource's
//! process, a span's tags, references and logs) and differs only in how it writes them.
//!
//! ## Robustness
//!
//! The reader never panics and never reads out of bounds: every length and element count is
//! checked against the bytes that remain (an element takes at least one byte, eight for a
//! double in the compact protocol), so a 60-byte datagram cannot make it reserve room for a
//! billion spans; values nested deeper than [`MAX_DEPTH`] are refused; errors are
//! [`DecodeError`]s with the byte offset and what is wrong. Fields are read by id in any order,
//! unknown fields and known ids with an unexpected type are skipped as Thrift's generated
//! readers skip them, and bytes after the message are refused.
//!
//! ## Jaeger → OTLP
//!
//! As the Collector's `jaegerthrift_to_traces.go` and `jaegerproto_to_traces.go` map it:
//!
//! | Jaeger Thrift | OTLP |
//! |---|---|
//! | `Batch.process` | one `ResourceSpans` per message or body |
//! | `Process.serviceName` | resource attribute `service.name` (first; left out when empty or `OTLPResourceNoServiceName`, and when a process tag is named `service.name`: that tag counts, as in the Collector, which puts `serviceName` in its map of attributes before the tags) |
//! | `Process.tags` | resource attributes, typed; `hostname` → `host.name` and `jaeger.version` → `opencensus.exporterversion` = `Jaeger-<version>`, each unless the target key is there |
//! | `Span.traceIdHigh`, `traceIdLow` | `trace_id`, 16 bytes big-endian: high then low (high 0 for 64-bit ids) |
//! | `Span.spanId` | `span_id`, 8 bytes big-endian |
//! | `Span.parentSpanId` | `parent_span_id` when non-zero; when zero, the first `CHILD_OF` reference into the same trace, else the first `FOLLOWS_FROM` one; none for 0 |
//! | `Span.operationName` | `name` |
//! | `Span.references` | links, each with attribute `opentracing.ref_type` = `child_of` or `follows_from`, except `CHILD_OF` references to the parent |
//! | `Span.flags` | bit 0 (sampled) → W3C sampled flag in `flags` |
//! | `Span.startTime`, `duration` (µs) | `start_time_unix_nano` = start × 1000, `end_time_unix_nano` = (start + duration) × 1000 |
//! | `Span.tags` (STRING, DOUBLE, BOOL, LONG, BINARY) | attributes of the same type (string, double, bool, int, bytes), in order, less the tags below |
//! | tag `span.kind` | `kind`: `client`, `server`, `producer`, `consumer`, `internal`; anything else unspecified |
//! | tag `error` = `true` (BOOL) | status ERROR; message from `otel.status_description`, else the value of `http.status_message` |
//! | tag `otel.status_code` (`OK`/`ERROR`, any case) | status code, unless `error` = `true` decided it; message from `otel.status_description` |
//! | tag `http.status_code` (LONG or decimal STRING) | only without the two above: 4xx → ERROR for clients and unset for servers, 100–398 unset, else ERROR (the Collector's rule; the tag stays an attribute) |
//! | tag `w3c.tracestate` | `trace_state` |
//! | tags `otel.scope.name`, `otel.scope.version` (or the deprecated `otel.library.name`, `otel.library.version`) | the span's `InstrumentationScope`; spans of one scope share one `ScopeSpans` |
//! | tags `otel.dropped_attributes_count`, `otel.dropped_events_count`, `otel.dropped_links_count` (LONG or decimal STRING, in `u32` range) | the span's dropped counts |
//! | `Span.logs` | events: `timestamp` µs → ns, fields → attributes |
//! | log field `event` | the event's name |
//! | log field `otel.event.dropped_attributes_count` | the event's `dropped_attributes_count` |
//! | `Span.incomplete` | ignored |
//!
//! A tag that became an OTLP field is not also kept as an attribute (the Collector removes it);
//! `error` = `false`, and `otel.status_description` when no status came from `error` or
//! `otel.status_code`, stay attributes, as in the Collector.
//!
//! A key given twice in one list (process tags, span tags, log fields; Jaeger clients that keep
//! tags in a list, jaeger-client-node's `setTag` for one, send such spans) counts by its last
//! value, as in the Collector's maps: OTLP wants the keys of an attribute list unique. The
//! surviving attribute sits where its last tag stood. For the tags that become OTLP fields the
//! last one counts as well, and all of them are removed. (See `spanpipe_codecs::repeated_keys`
//! for how this costs next to nothing for lists whose keys do not repeat.)
//!
//! ### What is accepted (leniencies)
//!
//! Real clients are not tidy; everything here has one meaning only:
//! - `parentSpanId` 0 with a `CHILD_OF` (or only a `FOLLOWS_FROM`) reference: the reference names
//!   the parent (Jaeger's own model does the same); a `parentSpanId` with no reference is fine.
//! - `traceIdHigh` 0 or absent: a 64-bit trace id, left-padded with zeros to 128 bits.
//! - Required fields absent that have a neutral value read as that value: `traceIdHigh`,
//!   `parentSpanId`, `flags`, `startTime`, `duration` (0), `operationName` (empty),
//!   `Process.serviceName` (no `service.name`), `Batch.process` (an empty resource),
//!   `Batch.spans` (no spans), `Log.fields` and `SpanRef.traceIdHigh`. Those without which the
//!   data means nothing are refused with [`DecodeErrorKind::MissingField`]: `Span.traceIdLow`,
//!   `Span.spanId`, `Tag.key`, `Tag.vType`, `Log.timestamp`, `SpanRef.refType`,
//!   `SpanRef.traceIdLow`, `SpanRef.spanId`, and the `batch` argument of `emitBatch`.
//! - A span with every field at its default is dropped, as the Collector drops it.
//! - Message type CALL (1) as well as ONEWAY (4) for `emitBatch`; any sequence id; binary
//!   messages with strict (versioned) and old non-strict headers.
//! - A tag of an unknown `vType` becomes the string attribute `<Unknown Jaeger TagType N>`
//!   (the Collector does the same, with Go's quoting of N).
//! - Any `refType` other than `CHILD_OF` (0) is taken as `FOLLOWS_FROM`, as the Collector does.
//! - `otel.library.name` / `otel.library.version` beside `otel.scope.name` / `otel.scope.version`
//!   with the same values (what the OpenTelemetry SDKs' Jaeger exporters write, for older
//!   backends) are consumed too; the Collector keeps them as attributes, which only repeats the
//!   scope. With different values they stay attributes.
//! - A log without an `event` field gets an unnamed event: the OpenTelemetry Python SDK's
//!   exporter writes the event name under `message`, which other clients use for free text, so
//!   `message` stays an attribute (as in the Collector) rather than being guessed to be a name.
//! - Integer overflow in µs → ns (a time past the year 2554) wraps, as the Collector's
//!   `uint64(µs) * 1000` does.
//!
//! ### The protobuf model
//!
//! The same mapping, with what model.proto does differently:
//! - Ids are bytes: `trace_id` exactly 16 (high then low), `span_id` exactly 8, as Jaeger's model
//!   reads them; another length is refused ([`DecodeErrorKind::IdLength`]). Proto3 has no
//!   presence, so an absent id is zero.
//! - `start_time` and `duration` are `google.protobuf.Timestamp` and `Duration`: nanoseconds kept
//!   exactly, and values outside the types' documented ranges refused
//!   ([`DecodeErrorKind::TimeOutOfRange`]), as the Collector's unmarshalling refuses them.
//!   `Log.timestamp` likewise.
//! - `KeyValue.v_type` numbers its types otherwise than Thrift (STRING 0, BOOL 1, INT64 2,
//!   FLOAT64 3, BINARY 4); the attributes are the same.
//! - A span may carry its own `process`, used instead of the batch's. Spans are grouped into one
//!   `ResourceSpans` per distinct process, in order of first appearance: per distinct resource,
//!   so processes that differ as sent but make the same resource (one repeats a tag key, gives
//!   `hostname` for `host.name`, or orders its tags otherwise around a renamed one) are one;
//!   spans without a process of their own take the batch's, and spans with neither
//!   go to a resource without attributes. A batch's process with no span is not written. The
//!   Collector groups by Go pointer in map order, which gives the same resources for what
//!   Jaeger's agent sends (every span repeating the batch's process) but no stable order.
//! - Repeated fields may interleave on the wire (tags, logs, a process): each keeps its own.
//!   A singular message field given twice (`batch`, `process`, a time) is the merge of the two,
//!   as protobuf says.
//! - `Span.process_id` and `Span.warnings` are read past, as the Collector ignores them.
//!
//! Not carried: Jaeger's debug (2) and firehose (8) flags, which OTLP has no field for.
//!
//! ## OTLP → Jaeger
//!
//! As the specification (`trace/sdk_exporters/jaeger.md`) and the Collector's
//! `traces_to_jaegerproto.go` map it; a Jaeger `Batch` has one `Process`, so each resource is
//! its own `Batch`:
//!
//! | OTLP | Jaeger Thrift (the protobuf model likewise, with the differences after the table) |
//! |---|---|
//! | resource `service.name` | `Process.serviceName`; `OTLPResourceNoServiceName` when absent (the Collector's value) |
//! | other resource attributes | `Process.tags` |
//! | `trace_id` | `traceIdHigh` = first 8 bytes, `traceIdLow` = last 8, big-endian, as `i64` |
//! | `span_id`, `parent_span_id` | `spanId`, `parentSpanId` (0 for a root span) |
//! | `parent_span_id` | also the first reference, `CHILD_OF` |
//! | links | further references: `FOLLOWS_FROM`, or `CHILD_OF` when the link's `opentracing.ref_type` is `child_of`; other link attributes are not carried |
//! | `name` | `operationName` |
//! | `flags` | bit 0 (sampled) → `flags` 1 |
//! | `start_time_unix_nano`, `end_time_unix_nano` | `startTime` = start / 1000, `duration` = (end − start) / 1000, truncated to µs |
//! | scope name, version | tags `otel.scope.name`, `otel.scope.version` (first, when not empty) |
//! | attributes | tags: string → STRING, int → LONG, double → DOUBLE, bool → BOOL, bytes → BINARY, array and key-value list → STRING holding their JSON, empty → STRING `""` |
//! | `kind` | tag `span.kind` (`server`, `client`, `producer`, `consumer`); none for INTERNAL (the specification says not to add one) and unspecified |
//! | status OK / ERROR | tag `otel.status_code` = `OK` / `ERROR`; ERROR also adds `error` = `true`; the message, if any, tag `otel.status_description`. Nothing for UNSET (not even its message) |
//! | `trace_state` | tag `w3c.tracestate` |
//! | dropped attribute / event / link counts | tags `otel.dropped_attributes_count`, `otel.dropped_events_count`, `otel.dropped_links_count` (LONG) when not zero |
//! | events | `logs`: time / 1000; field `event` = the name unless an attribute is named `event` (the specification's precedence); the attributes; `otel.event.dropped_attributes_count` when not zero |
//!
//! So Jaeger → OTLP → Jaeger keeps a span as it was, except for what OTLP cannot hold (debug
//! and firehose flags, `incomplete`, the tags renamed on the way in) and the normal form of the
//! references: the parent comes first as `CHILD_OF`.
//!
//! In the protobuf model ([`encode_post_spans`]): ids as their bytes; times as a `Timestamp` and
//! a `Duration` with their nanoseconds; the parent only as the first reference (the model has no
//! parent field); and one request for the whole batch: the first resource's process is the
//! batch's, and the spans of every other resource carry their own process.
//!
//! ## Datagrams
//!
//! [`Codec::encode`] returns one body, so the agent codecs encode a batch of exactly one
//! resource (otherwise [`EncodeError::SeveralResources`]). Senders use
//! [`encode_per_resource`] (one message per resource) or [`split_into_datagrams`], which packs
//! spans into messages no larger than a given size (at most [`MAX_DATAGRAM_SIZE`] for UDP), as
//! Jaeger clients do.

mod decode;
mod encode;
mod error;
mod json;
mod keys;
pub mod thrift;

use bytes::Bytes;
use spanpipe_codecs::{Codec, CodecError};
use spanpipe_core::SpanBatch;

pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use thrift::MAX_DEPTH;

use thrift::{BinaryReader, BinaryWriter, CompactReader, CompactWriter};

/// The largest datagram Jaeger clients send to the agent (their `UDPPacketMaxLength` is 65,000).
pub const MAX_DATAGRAM_SIZE: usize = 65_000;

/// The service name the Collector gives a process whose resource has no `service.name`; read
/// back as "no service name".
pub const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

/// A Thrift protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `TCompactProtocol` (the agent's port 6831).
    Compact,
    /// `TBinaryProtocol` (the agent's port 6832 and the collector's HTTP endpoint).
    Binary,
}

/// Decodes one `Agent.emitBatch` message (a UDP datagram) into a batch.
///
/// # Errors
/// [`DecodeError`] with the byte offset and what is wrong.
pub fn decode_agent(protocol: Protocol, message: &[u8]) -> Result<SpanBatch, DecodeError> {
    match protocol {
        Protocol::Compact => decode::agent_message(CompactReader::new(message)),
        Protocol::Binary => decode::agent_message(BinaryReader::new(message)),
    }
}

/// Decodes one bare `Batch` struct (the collector's `POST /api/traces` body uses
/// [`Protocol::Binary`]).
///
/// # Errors
/// [`DecodeError`] with the byte offset and what is wrong.
pub fn decode_batch(protocol: Protocol, body: &[u8]) -> Result<SpanBatch, DecodeError> {
    match protocol {
        Protocol::Compact => decode::batch_body(CompactReader::new(body)),
        Protocol::Binary => decode::batch_body(BinaryReader::new(body)),
    }
}

/// Decodes one `jaeger.api_v2.PostSpansRequest` (the body of the Jaeger collector's gRPC
/// `CollectorService/PostSpans`, port 14250) into a batch: one resource per distinct process.
///
/// # Errors
/// [`DecodeError`] with the byte offset and what is wrong.
pub fn decode_post_spans(body: &[u8]) -> Result<SpanBatch, DecodeError> {
    decode::proto::post_spans_request(body)
}

/// Decodes one bare `jaeger.api_v2.Batch` message.
///
/// # Errors
/// [`DecodeError`] with the byte offset and what is wrong.
pub fn decode_proto_batch(body: &[u8]) -> Result<SpanBatch, DecodeError> {
    decode::proto::batch_message(body)
}

/// Encodes a batch as one `jaeger.api_v2.PostSpansRequest`: the first resource's process is the
/// batch's, the spans of other resources carry their own.
#[must_use]
pub fn encode_post_spans(batch: &SpanBatch) -> Vec<u8> {
    encode::proto::post_spans_request(batch)
}

fn encode_resource(
    protocol: Protocol,
    resource: &spanpipe_core::ResourceView<'_>,
    message: bool,
) -> Result<Vec<u8>, EncodeError> {
    match protocol {
        Protocol::Compact => encode::resource::<CompactWriter>(resource, message),
        Protocol::Binary => encode::resource::<BinaryWriter>(resource, message),
    }
}

/// Encodes a batch of exactly one resource as one `Agent.emitBatch` message.
///
/// # Errors
/// [`EncodeError::SeveralResources`] or [`EncodeError::NoResource`].
pub fn encode_agent(protocol: Protocol, batch: &SpanBatch) -> Result<Vec<u8>, EncodeError> {
    encode_resource(protocol, &encode::single_resource(batch)?, true)
}

/// Encodes a batch of exactly one resource as one bare `Batch` struct.
///
/// # Errors
/// [`EncodeError::SeveralResources`] or [`EncodeError::NoResource`].
pub fn encode_batch(protocol: Protocol, batch: &SpanBatch) -> Result<Vec<u8>, EncodeError> {
    encode_resource(protocol, &encode::single_resource(batch)?, false)
}

/// One `Agent.emitBatch` message per resource of the batch (a resource without spans gives a
/// message with an empty span list), with no size limit.
///
/// # Errors
/// [`EncodeError::ListTooLong`] only, for lists past Thrift's `i32` sizes.
pub fn encode_per_resource(protocol: Protocol, batch: &SpanBatch) -> Result<Vec<Bytes>, EncodeError> {
    batch.resources().map(|resource| encode_resource(protocol, &resource, true).map(Bytes::from)).collect()
}

/// `Agent.emitBatch` messages of at most `max_size` bytes each, packed as Jaeger clients pack
/// UDP datagrams: one process per message, spans in order, a new message when the next span
/// would not fit. Resources without spans send nothing.
///
/// # Errors
/// [`EncodeError::SpanTooLarge`] when one span alone does not fit.
pub fn split_into_datagrams(protocol: Protocol, batch: &SpanBatch, max_size: usize) -> Result<Vec<Bytes>, EncodeError> {
    let datagrams = match protocol {
        Protocol::Compact => encode::datagrams::<CompactWriter>(batch, max_size)?,
        Protocol::Binary => encode::datagrams::<BinaryWriter>(batch, max_size)?,
    };
    Ok(datagrams.into_iter().map(Bytes::from).collect())
}

/// The three codecs' decoding: decode, then refuse an empty result.
fn decode_with(
    codec: &str,
    body: &[u8],
    decode: impl FnOnce(&[u8]) -> Result<SpanBatch, DecodeError>,
) -> Result<SpanBatch, CodecError> {
    CodecError::unless_empty(decode(body).map_err(|error| CodecError::other(codec, error))?)
}

macro_rules! jaeger_codec {
    ($(#[$doc:meta])* $codec:ident, $name:literal, [$($content_type:literal),*], $decode:expr, $encode:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $codec;

        impl $codec {
            /// The name config files use.
            pub const NAME: &'static str = $name;
            /// The media types it answers to.
            pub const CONTENT_TYPES: &'static [&'static str] = &[$($content_type),*];
        }

        impl Codec for $codec {
            fn name(&self) -> &str {
                Self::NAME
            }

            fn content_types(&self) -> &[&str] {
                Self::CONTENT_TYPES
            }

            fn decode(&self, body: Bytes) -> Result<SpanBatch, CodecError> {
                decode_with(Self::NAME, &body, $decode)
            }

            fn encode(&self, batch: &SpanBatch) -> Result<Bytes, CodecError> {
                $encode(batch).map(Bytes::from).map_err(|error| CodecError::other(Self::NAME, error))
            }
        }
    };
}

jaeger_codec!(
    /// `jaeger_agent_compact`: one `Agent.emitBatch` message in the compact protocol, as sent to
    /// the agent's UDP port 6831. No media type: datagrams have no headers.
    JaegerAgentCompact,
    "jaeger_agent_compact",
    [],
    |body| decode_agent(Protocol::Compact, body),
    |batch| encode_agent(Protocol::Compact, batch)
);

jaeger_codec!(
    /// `jaeger_agent_binary`: one `Agent.emitBatch` message in the binary protocol, as sent to
    /// the agent's UDP port 6832.
    JaegerAgentBinary,
    "jaeger_agent_binary",
    [],
    |body| decode_agent(Protocol::Binary, body),
    |batch| encode_agent(Protocol::Binary, batch)
);

jaeger_codec!(
    /// `jaeger_proto`: one `jaeger.api_v2.PostSpansRequest`, the message of the collector's gRPC
    /// `CollectorService/PostSpans` (port 14250). No media type: gRPC names the method by path.
    JaegerProto,
    "jaeger_proto",
    [],
    decode_post_spans,
    |batch| Ok::<_, EncodeError>(encode_post_spans(batch))
);

jaeger_codec!(
    /// `jaeger_thrift`: the collector's `POST /api/traces` body, one binary-protocol `Batch`.
    JaegerThriftHttp,
    "jaeger_thrift",
    ["application/x-thrift", "application/vnd.apache.thrift.binary"],
    |body| decode_batch(Protocol::Binary, body),
    |batch| encode_batch(Protocol::Binary, batch)
);
