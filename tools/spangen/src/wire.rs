//! What goes on the wire for each protocol, and how the receiver reads it back.
//!
//! Requests are rendered from OTLP templates patched in place ([`crate::template`]). OTLP
//! protobuf and OTLP/JSON bodies are sent as rendered (gRPC, OTLP/HTTP, WebSocket). Every other
//! protocol gets its messages from the protocol's own encoder in spanpipe's codec crates, fed the
//! rendered batch: the patched protobuf is copied into a `Bytes` and indexed
//! ([`SpanBatch::decode`]: one scan, no per-field allocation), then encoded. Patching the foreign
//! encodings in place was considered and left out: Zipkin JSON writes ids as variable-width hex
//! (16 or 32 digits by the trace id's high half) and times in microseconds of variable width,
//! Jaeger's compact protocol writes times as zigzag varints, and a UDP datagram's packing depends
//! on the encoded sizes — none has the fixed-width fields that make OTLP patchable. The cost is
//! one encode per request; the crate docs give the rates this allows.
//!
//! The same encoder, followed by the protocol's decoder ([`Wire::decode`]), also gives
//! `--verify` the *expected form* of each template span: what the protocol's mapping can carry
//! (Zipkin has no links and makes every attribute a string; Jaeger has no INTERNAL kind), which
//! is what the collector's receiver writes into the pipeline. The check then compares arrivals
//! with that form, so "altered" still means altered, on one path for every protocol.

use bytes::Bytes;
use spanpipe_core::{Reframer, ScanError, SpanBatch};

/// How a request's spans are written, and read back by the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// OTLP protobuf, sent as rendered.
    OtlpProtobuf,
    /// OTLP/JSON, sent as rendered.
    OtlpJson,
    /// OTLP as MessagePack (`spanpipe_msgpack`).
    Msgpack,
    /// Zipkin v2 JSON: one array of spans per request.
    ZipkinJson,
    /// Zipkin v2 protobuf (`ListOfSpans`): one per request.
    ZipkinProto,
    /// Jaeger agent `emitBatch` datagrams in the compact protocol: one process each, at most
    /// [`spanpipe_jaeger::MAX_DATAGRAM_SIZE`] bytes.
    JaegerCompact,
    /// The same in the binary protocol.
    JaegerBinary,
    /// Jaeger collector bodies: one binary-protocol `Batch` per resource.
    JaegerHttp,
    /// Jaeger collector gRPC messages: one protobuf `PostSpansRequest` per request, each span of
    /// a resource after the first carrying its process.
    JaegerProto,
}

/// Why a request could not be put on the wire or read back (a bug in spangen or a codec: the
/// input is spangen's own).
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The rendered OTLP protobuf did not index.
    #[error("the rendered OTLP request does not index: {0}")]
    Scan(#[from] ScanError),
    /// The protocol's encoder refused the batch.
    #[error("encoding a request as {wire}: {message}")]
    Encode {
        /// The protocol.
        wire: &'static str,
        /// What the encoder said.
        message: String,
    },
    /// The protocol's decoder refused a message spangen encoded.
    #[error("reading back a {wire} message: {message}")]
    Decode {
        /// The protocol.
        wire: &'static str,
        /// What the decoder said.
        message: String,
    },
}

/// The messages of one request, in one buffer: a protocol may need several (one datagram or
/// Jaeger body per process). Reused from request to request, so sending allocates nothing once
/// the buffers have grown.
#[derive(Debug, Default)]
pub struct Messages {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    text: String,
}

impl Messages {
    /// No messages.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn push(&mut self, message: &[u8]) {
        self.bytes.extend_from_slice(message);
        self.ends.push(self.bytes.len());
    }

    /// Closes a message written directly at the end of `bytes`.
    fn close(&mut self) {
        self.ends.push(self.bytes.len());
    }

    /// The messages, in sending order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.ends.iter().scan(0, |start, &end| {
            let message = &self.bytes[*start..end];
            *start = end;
            Some(message)
        })
    }

    /// Number of messages.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

impl Wire {
    /// The name used in error messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::OtlpProtobuf => "OTLP protobuf",
            Self::OtlpJson => "OTLP/JSON",
            Self::Msgpack => "OTLP MessagePack",
            Self::ZipkinJson => "Zipkin v2 JSON",
            Self::ZipkinProto => "Zipkin v2 protobuf",
            Self::JaegerCompact => "Jaeger compact Thrift",
            Self::JaegerBinary => "Jaeger binary Thrift",
            Self::JaegerHttp => "Jaeger Thrift HTTP",
            Self::JaegerProto => "Jaeger protobuf",
        }
    }

    /// The encoding of the templates: OTLP/JSON for [`Wire::OtlpJson`], protobuf for the rest
    /// (sent as it is, or the input of the protocol's encoder).
    #[must_use]
    pub fn template_format(self) -> crate::template::BodyFormat {
        match self {
            Self::OtlpJson => crate::template::BodyFormat::Json,
            _ => crate::template::BodyFormat::Protobuf,
        }
    }

    /// Turns one rendered request body (in [`Wire::template_format`]) into the messages the
    /// protocol sends, replacing what `out` held.
    ///
    /// # Errors
    /// [`WireError`] only on a bug: the body is spangen's own.
    pub fn encode(self, rendered: &[u8], out: &mut Messages) -> Result<(), WireError> {
        out.clear();
        let indexed = || SpanBatch::decode(Bytes::copy_from_slice(rendered));
        let encode_error = |message: String| WireError::Encode { wire: self.name(), message };
        match self {
            Self::OtlpProtobuf | Self::OtlpJson => out.push(rendered),
            Self::Msgpack => {
                spanpipe_msgpack::encode(&indexed()?, &mut out.bytes);
                out.close();
            }
            Self::ZipkinJson => {
                out.text.clear();
                spanpipe_zipkin::encode_json(&indexed()?, spanpipe_zipkin::DEFAULT_SERVICE_NAME, &mut out.text);
                out.bytes.extend_from_slice(out.text.as_bytes());
                out.close();
            }
            Self::ZipkinProto => {
                spanpipe_zipkin::encode_proto(&indexed()?, spanpipe_zipkin::DEFAULT_SERVICE_NAME, &mut out.bytes);
                out.close();
            }
            Self::JaegerCompact | Self::JaegerBinary => {
                let protocol = if self == Self::JaegerCompact {
                    spanpipe_jaeger::Protocol::Compact
                } else {
                    spanpipe_jaeger::Protocol::Binary
                };
                let datagrams =
                    spanpipe_jaeger::split_into_datagrams(protocol, &indexed()?, spanpipe_jaeger::MAX_DATAGRAM_SIZE)
                        .map_err(|error| encode_error(error.to_string()))?;
                for datagram in &datagrams {
                    out.push(datagram);
                }
            }
            Self::JaegerProto => out.push(&spanpipe_jaeger::encode_post_spans(&indexed()?)),
            Self::JaegerHttp => {
                for resource in per_resource(&indexed()?) {
                    let body = spanpipe_jaeger::encode_batch(spanpipe_jaeger::Protocol::Binary, &resource)
                        .map_err(|error| encode_error(error.to_string()))?;
                    out.push(&body);
                }
            }
        }
        Ok(())
    }

    /// Reads one message as the protocol's receiver reads it (Zipkin with the receiver's default
    /// options: tags stay strings).
    ///
    /// # Errors
    /// [`WireError::Decode`] when the message does not decode.
    pub fn decode(self, message: &[u8]) -> Result<SpanBatch, WireError> {
        let decode_error = |message: String| WireError::Decode { wire: self.name(), message };
        let options = spanpipe_zipkin::DecodeOptions::default();
        match self {
            Self::OtlpProtobuf => Ok(SpanBatch::decode(Bytes::copy_from_slice(message))?),
            Self::OtlpJson => spanpipe_codecs::otlp_json::decode(&mut message.to_vec())
                .map_err(|error| decode_error(error.to_string())),
            Self::Msgpack => spanpipe_msgpack::decode(message).map_err(|error| decode_error(error.to_string())),
            Self::ZipkinJson => spanpipe_zipkin::decode_json(&mut message.to_vec(), options)
                .map_err(|error| decode_error(error.to_string())),
            Self::ZipkinProto => {
                spanpipe_zipkin::decode_proto(message, options).map_err(|error| decode_error(error.to_string()))
            }
            Self::JaegerCompact => spanpipe_jaeger::decode_agent(spanpipe_jaeger::Protocol::Compact, message)
                .map_err(|error| decode_error(error.to_string())),
            Self::JaegerBinary => spanpipe_jaeger::decode_agent(spanpipe_jaeger::Protocol::Binary, message)
                .map_err(|error| decode_error(error.to_string())),
            Self::JaegerHttp => spanpipe_jaeger::decode_batch(spanpipe_jaeger::Protocol::Binary, message)
                .map_err(|error| decode_error(error.to_string())),
            Self::JaegerProto => {
                spanpipe_jaeger::decode_post_spans(message).map_err(|error| decode_error(error.to_string()))
            }
        }
    }

    /// What the receiver makes of a rendered body: its messages, each decoded.
    ///
    /// # Errors
    /// [`WireError`] when a message cannot be encoded or read back.
    pub fn round_trip(self, rendered: &[u8]) -> Result<Vec<SpanBatch>, WireError> {
        let mut messages = Messages::new();
        self.encode(rendered, &mut messages)?;
        messages.iter().map(|message| self.decode(message)).collect()
    }
}

/// One batch per `ResourceSpans` of `batch` that has spans (a Jaeger `Batch` has one process).
fn per_resource(batch: &SpanBatch) -> Vec<SpanBatch> {
    let mut parts = Vec::new();
    let mut current = Reframer::new();
    let mut resource = None;
    for span in batch.spans() {
        if resource.is_some_and(|resource| resource != span.resource_position()) {
            parts.push(std::mem::take(&mut current).finish());
        }
        resource = Some(span.resource_position());
        current.push(batch, span.position());
    }
    if !current.is_empty() {
        parts.push(current.finish());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IdScheme;
    use crate::profile::{Profile, ProfileName};
    use crate::template::{RequestIds, Template};

    const TIME: u64 = 1_750_000_000_000_000_000;

    fn rendered(wire: Wire, spans: u32) -> (Vec<u8>, SpanBatch) {
        let template = Template::build(&Profile::preset(ProfileName::HttpService), 3, spans, wire).expect("a template");
        let mut body = Vec::new();
        template
            .render(&IdScheme::new(8), RequestIds { span_base: 500, trace_base: 500, time_nanos: TIME }, &mut body)
            .expect("renders");
        let otlp = match wire.template_format() {
            crate::template::BodyFormat::Protobuf => SpanBatch::decode(Bytes::from(body.clone())).expect("indexes"),
            crate::template::BodyFormat::Json => {
                spanpipe_codecs::otlp_json::decode(&mut body.clone()).expect("OTLP/JSON decodes")
            }
        };
        (body, otlp)
    }

    fn span_ids(batches: &[SpanBatch]) -> Vec<[u8; 8]> {
        batches.iter().flat_map(|batch| batch.spans().map(|span| *span.span_id())).collect()
    }

    /// Every protocol's messages carry every span of the request, with its ids, once.
    #[test]
    fn every_protocol_carries_every_span_of_the_request() {
        for wire in [
            Wire::OtlpProtobuf,
            Wire::OtlpJson,
            Wire::Msgpack,
            Wire::ZipkinJson,
            Wire::ZipkinProto,
            Wire::JaegerCompact,
            Wire::JaegerBinary,
            Wire::JaegerHttp,
            Wire::JaegerProto,
        ] {
            let (body, otlp) = rendered(wire, 100);
            let decoded = wire.round_trip(&body).unwrap_or_else(|error| panic!("{wire:?}: {error}"));
            let mut sent = span_ids(std::slice::from_ref(&otlp));
            let mut arrived = span_ids(&decoded);
            sent.sort_unstable();
            arrived.sort_unstable();
            assert_eq!(arrived, sent, "{wire:?}");
            for batch in &decoded {
                for span in batch.spans() {
                    let original = otlp.spans().find(|o| o.span_id() == span.span_id()).expect("sent");
                    assert_eq!(span.trace_id(), original.trace_id(), "{wire:?}");
                    assert_eq!(span.parent_span_id(), original.parent_span_id(), "{wire:?}");
                    assert_eq!(span.name(), original.name(), "{wire:?}");
                    assert_eq!(span.service_name(), original.service_name(), "{wire:?}");
                    // Microsecond protocols truncate; none moves a time by a microsecond or more.
                    assert!(original.start_time_unix_nano() - span.start_time_unix_nano() < 1_000, "{wire:?}");
                }
            }
        }
    }

    #[test]
    fn jaeger_sends_one_message_per_process() {
        let (body, otlp) = rendered(Wire::JaegerHttp, 100);
        let mut messages = Messages::new();
        Wire::JaegerHttp.encode(&body, &mut messages).unwrap();
        assert_eq!(messages.len(), otlp.resource_count());
        for message in messages.iter() {
            assert_eq!(Wire::JaegerHttp.decode(message).unwrap().resource_count(), 1);
        }
        Wire::JaegerCompact.encode(&body, &mut messages).unwrap();
        assert!(messages.len() >= otlp.resource_count());
        assert!(messages.iter().all(|datagram| datagram.len() <= spanpipe_jaeger::MAX_DATAGRAM_SIZE));
    }

    #[test]
    fn large_requests_are_split_into_datagrams_that_fit() {
        let (body, otlp) = rendered(Wire::JaegerBinary, 2_000);
        let mut messages = Messages::new();
        Wire::JaegerBinary.encode(&body, &mut messages).unwrap();
        assert!(messages.len() > otlp.resource_count(), "{} datagrams", messages.len());
        assert!(messages.iter().all(|datagram| datagram.len() <= spanpipe_jaeger::MAX_DATAGRAM_SIZE));
        let spans: usize = messages.iter().map(|datagram| Wire::JaegerBinary.decode(datagram).unwrap().len()).sum();
        assert_eq!(spans, 2_000);
    }

    #[test]
    fn otlp_bodies_go_out_as_rendered() {
        for wire in [Wire::OtlpProtobuf, Wire::OtlpJson] {
            let (body, _) = rendered(wire, 20);
            let mut messages = Messages::new();
            wire.encode(&body, &mut messages).unwrap();
            assert_eq!(messages.iter().collect::<Vec<_>>(), vec![body.as_slice()]);
        }
    }

    #[test]
    fn zipkin_and_msgpack_bodies_are_one_message_in_their_format() {
        let (body, _) = rendered(Wire::ZipkinJson, 20);
        let mut messages = Messages::new();
        Wire::ZipkinJson.encode(&body, &mut messages).unwrap();
        let json: serde_json::Value = serde_json::from_slice(messages.iter().next().unwrap()).expect("JSON");
        assert_eq!(json.as_array().map(Vec::len), Some(20));
        Wire::Msgpack.encode(&body, &mut messages).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(Wire::Msgpack.decode(messages.iter().next().unwrap()).unwrap().len(), 20);
    }
}
