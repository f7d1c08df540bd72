//! OTLP protobuf: the canonical form itself.

use bytes::Bytes;
use spanpipe_core::SpanBatch;

use crate::{Codec, CodecError};

/// The `otlp_proto` codec: `application/x-protobuf` bodies of `ExportTraceServiceRequest`.
///
/// Decoding is the index scan over the body, which is kept as is; encoding returns the batch's own
/// bytes (a reference count, not a copy).
#[derive(Clone, Copy, Debug, Default)]
pub struct OtlpProto;

impl OtlpProto {
    /// The name config files use.
    pub const NAME: &'static str = "otlp_proto";
    /// The media types OTLP/HTTP uses for protobuf bodies.
    pub const CONTENT_TYPES: &'static [&'static str] = &["application/x-protobuf", "application/protobuf"];
}

impl Codec for OtlpProto {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn content_types(&self) -> &[&str] {
        Self::CONTENT_TYPES
    }

    fn decode(&self, body: Bytes) -> Result<SpanBatch, CodecError> {
        Ok(SpanBatch::decode(body)?)
    }

    fn encode(&self, batch: &SpanBatch) -> Result<Bytes, CodecError> {
        Ok(batch.bytes().clone())
    }
}
