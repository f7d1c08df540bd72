//! # spanpipe-zipkin
//!
//! Zipkin spans to and from spanpipe's canonical batch, as [`spanpipe_codecs::Codec`]s:
//!
//! | codec | name | media types | body |
//! |---|---|---|---|
//! | [`ZipkinV2Json`] | `zipkin_json` | `application/json` | a JSON array of Zipkin v2 spans |
//! | [`ZipkinV2Proto`] | `zipkin_proto` | `application/x-protobuf`, `application/protobuf` | `zipkin.proto3.ListOfSpans` |
//! | [`ZipkinV1Json`] | `zipkin_v1_json` | `application/json` | a JSON array of Zipkin v1 spans (decode only) |
//!
//! Their media types are OTLP's too, so they do not join the shared content-type registry: the
//! Zipkin receiver holds them per route (`/api/v2/spans`, `/api/v1/spans`), and the Zipkin exporter
//! holds the one its config names. v1 is receive-only: old tracers still post it, but every Zipkin
//! server and the Collector take v2, so nothing needs spanpipe to write it; asking
//! [`ZipkinV1Json`] to encode answers [`ReceiveOnly`], which names the v2 codecs to use instead.
//!
//! ## Design
//!
//! Decoding writes OTLP protobuf straight through [`spanpipe_core::BatchWriter`]; there is no
//! tree of owned Zipkin structs. Each decoder makes one validating pass that parses the few fixed
//! fields of every span (ids, kind, name, times, endpoints) and leaves tags and annotations where
//! they lie in the body — simd-json's tape for JSON, byte ranges for protobuf. The spans are then
//! grouped (one `ResourceSpans` per resource — local service and resource tags —, one
//! `ScopeSpans` per instrumentation scope, each in order of first appearance) and written by one
//! mapping shared by both formats, which re-reads tags and annotations from the body. Grouping
//! needs every span's resource before the first `ResourceSpans` is written, hence the two passes;
//! the first costs a few dozen bytes per span and no allocation per field.
//!
//! Encoding reads the batch's lazy views and hands each span's Zipkin fields to a sink (JSON text
//! or protobuf); again one mapping serves both formats.
//!
//! ## Zipkin → OTLP
//!
//! | Zipkin v2 | OTLP | notes |
//! |---|---|---|
//! | `traceId` | `trace_id` | 16 or 32 hex digits; shorter ids are left-padded with zeros (a 64-bit id becomes the low half) |
//! | `id` | `span_id` | 16 hex digits, left-padded when shorter |
//! | `parentId` | `parent_span_id` | left out when absent, `""`, all zeros, or equal to `id` (the Collector's rule) |
//! | `name` | `name` | |
//! | `kind` | `kind` | `CLIENT`, `SERVER`, `PRODUCER`, `CONSUMER`; none → `UNSPECIFIED`, or `INTERNAL` with tag `span.kind=internal` (the tag is then consumed) |
//! | `timestamp` (µs) | `start_time_unix_nano` | ×1000. Absent (or 0): start 0 and attribute `otel.zipkin.absentField.startTime=true` (the Collector's marker). A tag of that name is not kept: the marker is written from the span's own `timestamp`, and a tag claiming it on a span that has one would make the encoder drop the timestamp |
//! | `duration` (µs) | `end_time_unix_nano` | start + duration ×1000 |
//! | `localEndpoint.serviceName` | resource `service.name` | absent or `""`: the `service.name` tag if there is one, else no `service.name` (and no resource at all without resource tags) |
//! | tags named as resource attributes of the semantic conventions ([`is_resource_attribute`]: `host.name`, `telemetry.sdk.*`, `k8s.*`, …) | resource attributes (strings, in body order, after `service.name`) | spans of one service whose resource tags differ (or come in another order) get a `ResourceSpans` each; a `service.name` tag that names another service than the endpoint stays a span attribute |
//! | `localEndpoint.ipv4` / `ipv6` | attribute `net.host.ip` | IPv6 wins when both are set (the Collector writes both, the second overwriting) |
//! | `localEndpoint.port` | attribute `net.host.port` (int) | when > 0 |
//! | `remoteEndpoint.serviceName` | attribute `peer.service` | unless a `peer.service` tag exists (the specification) |
//! | `remoteEndpoint.ipv4` / `ipv6` | attribute `net.peer.ip` | as the local endpoint |
//! | `remoteEndpoint.port` | attribute `net.peer.port` (int) | when > 0 |
//! | `annotations[]` | `events[]` | `timestamp` ×1000; `value` is the name, or see below |
//! | `tags` | attributes | strings; with `parse_string_tags`, int, then double, then bool when the value parses (Go's `ParseInt`, `ParseFloat`, `ParseBool`) |
//! | tag `otel.status_code` | `status.code` | `OK`/`ERROR`/`UNSET`, pdata's `Ok`/`Error`/`Unset`, or `STATUS_CODE_*`; an unknown value stays an attribute |
//! | tag `otel.status_description` | `status.message` | only together with a known `otel.status_code` |
//! | tag `error` | `status.code = ERROR` | any value but `false`; a value other than `true`/`""` is also the message when no description was given. `error=false` stays an attribute |
//! | tags `otel.scope.name`, `otel.scope.version` (or `otel.library.name`, `otel.library.version`) | `ScopeSpans.scope` | the `otel.scope.*` names win over `otel.library.*` |
//! | tags `otel.dropped_attributes_count`, `otel.dropped_events_count`, `otel.dropped_links_count` | the dropped counts | when the value is a `u32`, else they stay attributes |
//! | tag `w3c.tracestate` | `trace_state` | |
//! | `debug`, `shared` | — | validated as booleans and dropped, as the Collector does: OTLP has no field for either |
//!
//! An endpoint field wins over a tag of the same attribute name (`net.host.ip`, `net.host.port`,
//! `net.peer.ip`, `net.peer.port`), as in the Collector; for `peer.service` the tag wins, as the
//! specification says.
//!
//! Annotations with attributes: `"name":{"key":value,…}` (the specification's form, which the
//! encoder writes), `{"name":{"key":value,…}}` (what the OpenTelemetry Python SDK's Zipkin
//! exporters send) and `name|{"key":value,…}|dropped` (the Collector's form) become an event with
//! that name and those attributes (JSON integers → int, other numbers → double, strings, booleans,
//! `null` → empty, arrays and objects nested). Any other value — including one of these forms that
//! does not parse — is the event name as it stands (the Collector fails the whole request instead).
//!
//! Leniencies, each what a real client or the Collector's zipkin-go accepts:
//! - ids of either case and of fewer digits than 16/32 (zipkin-go parses with `ParseUint` after a
//!   length check, so `"1"` is a valid id);
//! - `null` for any span field or endpoint field means absent, and `null` array elements are
//!   skipped (Go decodes both to zero values);
//! - `parentId: ""` is a root span;
//! - unknown keys are ignored; an unknown `kind` string is unspecified (zipkin-go keeps any string);
//! - protobuf: an unknown `Kind` number is unspecified (proto3 enums are open), empty `ipv4`/`ipv6`
//!   bytes are absent, unknown fields are skipped, and an endpoint given twice is the merge of
//!   the two (protobuf's rule for a singular message field).
//! - a tag key given twice in one span (a JSON object repeating a key, two protobuf map entries)
//!   counts by its last value, as in zipkin-go's map and so in the Collector (OTLP wants the keys
//!   of an attribute list unique): one attribute, where the last entry stood; of the tags that
//!   become OTLP fields (`error`, `otel.status_code`, `span.kind`, …) and of the resource tags,
//!   likewise the last counts. The same holds for the keys of an annotation's attributes.
//!
//! Refused, with the JSON path or byte offset: a body that is not a JSON array; non-string tag
//! values (zipkin-go's `map[string]string` refuses them too); missing or all-zero `traceId`/`id`;
//! ids with non-hex characters or too many digits (protobuf: ids of other than 8/16 bytes);
//! negative, fractional or out-of-range numbers; ports above 65535; addresses that do not parse
//! (protobuf: not 4/16 bytes); times that overflow 64-bit nanoseconds; annotations without
//! `timestamp` or `value`; protobuf fields of the wrong wire type, truncated or malformed framing,
//! strings that are not UTF-8.
//!
//! Resource tags: clients whose protocol has no resource send its attributes as span tags (the
//! OpenTelemetry SDKs' Zipkin exporters repeat every resource attribute, `service.name` too, on
//! every span; so does this crate's encoder), and decoding puts the ones the semantic conventions
//! (1.6.1, the version the Collector reads them by) name resource attributes back on the resource.
//! Other resource attributes cannot be told from span attributes and stay on the span.
//!
//! Where this differs from the Collector (v0.14x): it takes the resource tags of the first span
//! of each service and drops the resource tags of every later span of that service, so a later
//! span with other values (another host) loses them; here spans whose resource tags differ get
//! resources of their own, so no span loses one. Its `service.name` tag overrides
//! `localEndpoint.serviceName` in the resource; here the endpoint's wins and a contradicting tag
//! stays on the span. Its `otlp.link.N` tags (an OpenCensus-era link encoding) stay attributes. Recent Collectors can
//! switch the endpoint attributes to `network.local.address`, `network.peer.address` and
//! `service.peer.name` by feature gate; this crate writes the names the specification's Zipkin
//! page and the Collector's long-standing default use.
//!
//! ## Zipkin v1 → v2 → OTLP
//!
//! A v1 span is not a v2 span with other field names: it records both sides of an RPC in one span
//! (the client's `cs`/`cr` annotations and the server's `sr`/`ss`, each with its own endpoint),
//! kinds and times are implied by those "core" annotations, and remote endpoints are binary
//! annotations. The decoder converts each v1 span as zipkin's own `V1SpanConverter` does into one
//! or more v2 spans, then maps those with the v2 mapping above — the same code, so v1 and v2 of the
//! same spans give byte-identical batches (the benchmark and a property test check this).
//!
//! | Zipkin v1 | v2 span(s) | notes |
//! |---|---|---|
//! | `traceId`, `traceIdHigh` | `traceId` | `traceIdHigh` (up to 16 hex digits) is the high half when `traceId` has at most 16 digits; beside a 128-bit `traceId` it must repeat its high half |
//! | `id`, `parentId`, `name` | the same, on every span made from the v1 span | |
//! | annotation endpoints, binary annotation endpoints | `localEndpoint`, and which span an entry belongs to | entries go to the span whose local service name is their endpoint's; the first span takes the first endpoint seen; entries without an endpoint go to the first span; a new service name makes a new span |
//! | `cs`, `cr` / `sr`, `ss` / `ms` / `mr` | kind `CLIENT` / `SERVER` / `PRODUCER` / `CONSUMER` of their endpoint's span | core annotations need an endpoint; without one they are plain events |
//! | `cs`+`sr` in one span (shared span) | two spans, `CLIENT` and `SERVER` (zipkin marks the server `shared`, which OTLP does not keep) | also when both sides have the same service (loopback); the server side starts at `sr` and lasts until `ss`; the client side takes the span's own `timestamp`/`duration` when it has both, else `cs` to `cr` |
//! | `cs`+`cr`, `sr`+`ss`, `ms`(+`ws`), `wr`+`mr`, `mr` | `timestamp`, `duration` | the span's own when it has both, else from the annotations |
//! | a lone `cs` or `sr` | `timestamp` of its side | the first span then takes the v1 span's own `timestamp`/`duration` when set; a lone `cr`/`ss` is an event, unless it falls exactly at `timestamp + duration`, when the begin annotation is implied at `timestamp` |
//! | `ws`, `wr` without `ms`/`mr` | events | |
//! | other annotations | events (`annotations`) | in time order, as zipkin sorts them |
//! | binary annotation `sa` (`true`, with endpoint) | `remoteEndpoint` of the client side | |
//! | binary annotation `ca` (`true`, with endpoint) | `remoteEndpoint` of the server side | unless equal to the server's endpoint; its service name is dropped when it is the server's (Finagle) |
//! | binary annotation `ma` (`true`, with endpoint) | `remoteEndpoint` of the producer and consumer sides | |
//! | `sa`/`ca` without `cs`/`cr`/`sr`/`ss` | `sa` alone: the remote endpoint of the first span, kind unchanged; `ca` alone: the first span becomes `SERVER` with that remote; both: the span of `ca`'s service (the first, if it has no endpoint yet) gets `sa` as its remote | |
//! | other binary annotations | tags (then attributes, typed with `parse_string_tags` as for v2) | string values as they are, booleans as `"true"`/`"false"`, numbers as decimal text (integers exactly, other numbers as Go formats them); `lc` with an empty value only marks the local endpoint |
//! | `debug` | — | validated as a boolean and dropped, as for v2 |
//!
//! Leniencies beyond the v2 ones (ids, `null` as absent, unknown keys, `parentId: ""`): binary
//! annotation values that are booleans or numbers (some clients send them; zipkin keeps only
//! strings and drops the rest, losing data); the `type` field (`"I32"`, `"BYTES"`, …, written by
//! zipkin 1.x) is ignored, the value's JSON type decides; an endpoint object with no field set is
//! absent (zipkin reads it as none); a binary annotation without `value` (or `null`) is dropped, as
//! are `false` and endpoint-less `ca`/`sa`/`ma`; a duration that would be negative (`ss` before
//! `sr`, clock skew) is absent, as zipkin clamps it.
//!
//! Refused, with the JSON path: what v2 refuses for the same fields; annotations that are not
//! objects or lack `timestamp`/`value`; binary annotations without a string `key` or with an array
//! or object `value`; a `traceIdHigh` that contradicts a 128-bit `traceId`.
//!
//! Where this differs from zipkin's converter: the `shared` flag has no OTLP field and is dropped
//! (as for v2); a side's tags stay in body order, and of a key the body repeats the last value
//! counts where it stands (zipkin's span keeps the last value, sorted by key), as the v2 decoder
//! does; service names are compared and kept as sent (zipkin lower-cases them; the v2 decoder and
//! the Collector do not).
//! The Collector's own v1 JSON translator is simpler (one OTLP span per v1 span, kind from the
//! first core annotation, binary annotations as attributes whatever their key, `unknown-service`
//! for spans without a core annotation endpoint); a shared span mapped that way mixes two
//! services' tags in one span, so this crate follows zipkin.
//!
//! ## OTLP → Zipkin
//!
//! | OTLP | Zipkin v2 | notes |
//! |---|---|---|
//! | `trace_id` | `traceId` | 16 hex digits when the high half is zero (as zipkin-go writes), else 32 |
//! | `span_id`, `parent_span_id` | `id`, `parentId` | lower-case hex; no `parentId` for a root |
//! | `name` | `name` | left out when empty |
//! | `kind` | `kind` | `SERVER`, `CLIENT`, `PRODUCER`, `CONSUMER`; `INTERNAL` has none and gets tag `span.kind=internal` (the Collector) |
//! | `start_time_unix_nano` | `timestamp` | ÷1000, truncated; left out when 0 or when attribute `otel.zipkin.absentField.startTime=true` (which is then dropped) |
//! | end − start | `duration` | ÷1000, truncated; left out when 0 |
//! | resource `service.name` | `localEndpoint.serviceName` | the encoder's default service name when missing (the Collector exporter's `default_service_name`, `<missing service name>` by default) |
//! | attributes `net.host.ip`, `net.host.port` | `localEndpoint.ipv4`/`ipv6`, `port` | when they parse as an address / a port (int or decimal string); then not repeated as tags |
//! | attribute `peer.service` | `remoteEndpoint.serviceName` | any kind; then not repeated as a tag |
//! | `server.address`, `net.peer.name`, `network.peer.address`, `server.socket.domain`, `server.socket.address`, `net.sock.peer.name`, `net.sock.peer.addr`, `peer.hostname`, `peer.address`, `db.name` | `remoteEndpoint.serviceName` | the specification's ranking, for `CLIENT`/`PRODUCER` spans without `peer.service`; these stay tags too |
//! | attributes `net.peer.ip`, `net.peer.port` | `remoteEndpoint.ipv4`/`ipv6`, `port` | as the local endpoint |
//! | attributes | `tags` | strings as they are; bools `true`/`false`; ints in decimal; doubles as Go's `FormatFloat(v, 'f', -1, 64)` (`NaN`, `+Inf`, `-Inf`); bytes in standard base64; arrays and maps as JSON; an attribute without a value as `""` |
//! | resource attributes but `service.name` | `tags` | unless the span has an attribute of the same name (the span's wins) |
//! | scope name, version | tags `otel.scope.name`, `otel.scope.version` | when not empty |
//! | `status` `OK` | tag `otel.status_code=OK` | |
//! | `status` `ERROR` | tags `otel.status_code=ERROR`, `error=<message>` | `error` is `""` without a message (the specification); a message `true` or `false`, which `error` cannot carry (a bare flag, no error), is also written as `otel.status_description` |
//! | `status` `UNSET` | — | an attribute `error` of `false`/`"false"` is dropped on spans that are not in error (the specification) |
//! | dropped counts | tags `otel.dropped_*_count` | when not zero |
//! | `trace_state` | tag `w3c.tracestate` | when not empty |
//! | `events[]` | `annotations[]` | ÷1000; the name alone, or `"name":{…}` with the attributes as a JSON object (the specification's form) |
//! | `links`, `flags`, event dropped counts, schema URLs, entity refs | — | Zipkin has no place for them (the specification leaves links "TBD") |
//!
//! A tag the mapping generates (scope, status, dropped counts, trace state, `span.kind`) wins over
//! an attribute of the same name. Round trips: Zipkin → OTLP → Zipkin keeps every field but
//! `debug` and `shared`; OTLP → Zipkin → OTLP keeps what Zipkin can hold (string attributes, or
//! typed ones with `parse_string_tags`; status; events and their attributes; scope; trace state;
//! kinds but `UNSPECIFIED` with a `span.kind` attribute), which the crate's property tests check.

mod encode;
mod error;
mod json_decode;
mod json_text;
mod keys;
mod proto_decode;
mod to_otlp;
mod v1_json;

use bytes::Bytes;
use spanpipe_codecs::json_tape::{self, JsonBuffer};
use spanpipe_codecs::{Codec, CodecError};
use spanpipe_core::SpanBatch;

pub use error::{Location, Problem, ReceiveOnly, ZipkinError};
pub use json_decode::decode_json;
pub use keys::is_resource_attribute;
pub use proto_decode::decode_proto;
pub use v1_json::decode_v1_json;

/// How Zipkin spans are decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The Collector zipkin receiver's `parse_string_tags`: a tag whose string value parses as an
    /// integer, a double or a boolean (tried in that order) becomes an attribute of that type.
    /// Defaults to `false`: every tag is a string attribute.
    pub parse_string_tags: bool,
}

/// The Collector zipkin exporter's `default_service_name`: the `localEndpoint.serviceName` of
/// spans whose resource has no `service.name`.
pub const DEFAULT_SERVICE_NAME: &str = "<missing service name>";

/// Encodes `batch` as Zipkin v2 JSON into `out` (appended), with `default_service_name` for spans
/// whose resource has none.
pub fn encode_json(batch: &SpanBatch, default_service_name: &str, out: &mut String) {
    let mut sink = encode::JsonSink::new(std::mem::take(out));
    encode::encode_spans(batch, default_service_name, &mut sink);
    *out = sink.finish();
}

/// Encodes `batch` as a `zipkin.proto3.ListOfSpans` into `out` (appended).
pub fn encode_proto(batch: &SpanBatch, default_service_name: &str, out: &mut Vec<u8>) {
    let mut sink = encode::ProtoSink::new(std::mem::take(out));
    encode::encode_spans(batch, default_service_name, &mut sink);
    *out = sink.finish();
}

/// Decodes a JSON body in place when its buffer is not shared (the usual case for a request body
/// read off the network); otherwise decodes a copy, since simd-json rewrites its input.
fn decode_json_body(
    codec: &str,
    body: Bytes,
    decode: impl FnOnce(&mut dyn JsonBuffer) -> Result<SpanBatch, ZipkinError>,
) -> Result<SpanBatch, CodecError> {
    let decoded = json_tape::with_body_buffer(body, decode);
    CodecError::unless_empty(decoded.map_err(|error| CodecError::other(codec, error))?)
}

macro_rules! zipkin_codec {
    ($(#[$doc:meta])* $name:ident, $codec_name:literal, $content_types:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            options: DecodeOptions,
            default_service_name: String,
        }

        impl $name {
            /// The name config files use.
            pub const NAME: &'static str = $codec_name;
            /// The media types this codec answers to.
            pub const CONTENT_TYPES: &'static [&'static str] = $content_types;

            /// A codec that decodes with `options` and encodes with [`DEFAULT_SERVICE_NAME`].
            #[must_use]
            pub fn new(options: DecodeOptions) -> Self {
                Self { options, default_service_name: DEFAULT_SERVICE_NAME.to_owned() }
            }

            /// Sets the service name encoded for spans whose resource has no `service.name`.
            #[must_use]
            pub fn with_default_service_name(mut self, name: impl Into<String>) -> Self {
                self.default_service_name = name.into();
                self
            }

            /// The decode options.
            #[must_use]
            pub fn options(&self) -> DecodeOptions {
                self.options
            }

            /// The service name encoded for spans whose resource has none.
            #[must_use]
            pub fn default_service_name(&self) -> &str {
                &self.default_service_name
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new(DecodeOptions::default())
            }
        }
    };
}

zipkin_codec!(
    /// The `zipkin_json` codec: Zipkin v2 JSON (a JSON array of spans), decoded with simd-json.
    ZipkinV2Json,
    "zipkin_json",
    &["application/json"]
);

zipkin_codec!(
    /// The `zipkin_proto` codec: Zipkin v2 protobuf, `zipkin.proto3.ListOfSpans`.
    ZipkinV2Proto,
    "zipkin_proto",
    &["application/x-protobuf", "application/protobuf"]
);

impl Codec for ZipkinV2Json {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn content_types(&self) -> &[&str] {
        Self::CONTENT_TYPES
    }

    fn decode(&self, body: Bytes) -> Result<SpanBatch, CodecError> {
        decode_json_body(Self::NAME, body, |json| decode_json(json, self.options))
    }

    fn encode(&self, batch: &SpanBatch) -> Result<Bytes, CodecError> {
        let mut out = String::new();
        encode_json(batch, &self.default_service_name, &mut out);
        Ok(Bytes::from(out.into_bytes()))
    }
}

impl Codec for ZipkinV2Proto {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn content_types(&self) -> &[&str] {
        Self::CONTENT_TYPES
    }

    fn decode(&self, body: Bytes) -> Result<SpanBatch, CodecError> {
        CodecError::unless_empty(
            decode_proto(&body, self.options).map_err(|error| CodecError::other(Self::NAME, error))?,
        )
    }

    fn encode(&self, batch: &SpanBatch) -> Result<Bytes, CodecError> {
        let mut out = Vec::new();
        encode_proto(batch, &self.default_service_name, &mut out);
        Ok(Bytes::from(out))
    }
}

/// The `zipkin_v1_json` codec: Zipkin v1 JSON (a JSON array of v1 spans, what old clients post to
/// `/api/v1/spans`), converted as zipkin's `V1SpanConverter` does and mapped to OTLP like v2.
/// Receive-only: [`Codec::encode`] answers [`ReceiveOnly`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZipkinV1Json {
    options: DecodeOptions,
}

impl ZipkinV1Json {
    /// The name config files use.
    pub const NAME: &'static str = "zipkin_v1_json";
    /// The media types this codec answers to.
    pub const CONTENT_TYPES: &'static [&'static str] = &["application/json"];

    /// A codec that decodes with `options`.
    #[must_use]
    pub fn new(options: DecodeOptions) -> Self {
        Self { options }
    }

    /// The decode options.
    #[must_use]
    pub fn options(&self) -> DecodeOptions {
        self.options
    }
}

impl Codec for ZipkinV1Json {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn content_types(&self) -> &[&str] {
        Self::CONTENT_TYPES
    }

    fn decode(&self, body: Bytes) -> Result<SpanBatch, CodecError> {
        decode_json_body(Self::NAME, body, |json| decode_v1_json(json, self.options))
    }

    /// Always [`ReceiveOnly`]: exporters speak Zipkin v2.
    fn encode(&self, _batch: &SpanBatch) -> Result<Bytes, CodecError> {
        Err(CodecError::other(Self::NAME, ReceiveOnly))
    }
}
