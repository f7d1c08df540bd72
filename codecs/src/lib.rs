//! # spanpipe-codecs
//!
//! Turns request bodies into [`SpanBatch`]es and batches back into bodies. One trait, [`Codec`],
//! a few implementations, and a [`CodecRegistry`] that receivers and exporters ask by codec name
//! (from config) or by HTTP `Content-Type` (from a request).
//!
//! Built in:
//! - [`OtlpProto`] (`otlp_proto`, `application/x-protobuf`): the canonical form itself, so
//!   decoding is the index scan and encoding hands out the batch's own bytes.
//! - [`OtlpJson`] (`otlp_json`, `application/json`): OTLP/JSON as the OTLP specification defines
//!   it, decoded with simd-json straight into the canonical form through the span writer.
//!
//! Why a trait object registry and not only an enum: codecs loaded at run time (plugins) must be
//! able to join, and the registry is consulted once per request, not per span, so one dynamic call
//! per request costs nothing measurable next to the decoding itself. A registry is cheap to clone
//! (codecs are shared behind `Arc`), so every data-plane core keeps its own copy and a new one is
//! swapped in when a plugin registers a codec.

pub mod digest;
pub mod field_path;
pub mod hex_id;
pub mod json_tape;
pub mod otlp_json;
pub mod otlp_map;
mod otlp_proto;
mod registry;
pub mod repeated_keys;

use bytes::Bytes;
use spanpipe_core::{ScanError, SpanBatch};

pub use otlp_json::{JsonError, OtlpJson};
pub use otlp_proto::OtlpProto;
pub use registry::{CodecRegistry, DynamicCodecs, RegistryError};

/// Why a body could not be decoded or a batch could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The body is not a valid OTLP protobuf request.
    #[error("invalid OTLP protobuf payload: {0}")]
    Protobuf(#[from] ScanError),
    /// The body is not a valid OTLP/JSON request.
    #[error("invalid OTLP/JSON payload: {0}")]
    Json(#[from] JsonError),
    /// The body holds no spans. Receivers answer this with success and zero spans accepted.
    #[error("request contains no spans")]
    Empty,
    /// A codec from outside this crate (Zipkin, Jaeger, MessagePack, a plugin) failed; the
    /// message is its own. [`CodecError::other`] builds it from the codec's error.
    #[error("codec `{codec}` failed: {message}")]
    Other {
        /// Name of the codec.
        codec: String,
        /// What it said.
        message: String,
    },
}

impl CodecError {
    /// A codec's own error, named by the codec, as the text it displays: the registry's callers
    /// (receivers) only report it.
    pub fn other(codec: &str, error: impl std::fmt::Display) -> Self {
        Self::Other { codec: codec.to_owned(), message: error.to_string() }
    }

    /// `batch`, or [`CodecError::Empty`] when it holds no spans, as every codec answers a
    /// well-formed request without spans (receivers answer that with success and pass nothing
    /// on).
    ///
    /// # Errors
    /// [`CodecError::Empty`] for a batch without spans.
    pub fn unless_empty(batch: SpanBatch) -> Result<SpanBatch, Self> {
        if batch.is_empty() {
            Err(Self::Empty)
        } else {
            Ok(batch)
        }
    }

    /// Whether the request was well-formed but simply held no spans.
    #[must_use]
    pub fn is_empty_request(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Protobuf(error) => error.kind == spanpipe_core::ScanErrorKind::Empty,
            _ => false,
        }
    }
}

/// A wire format for spans.
///
/// Implementations are stateless or internally synchronised: one instance serves every core.
pub trait Codec: Send + Sync + std::fmt::Debug {
    /// The name config files use for this codec (e.g. `otlp_json`).
    fn name(&self) -> &str;

    /// The media types (lower case, without parameters) this codec answers to.
    fn content_types(&self) -> &[&str];

    /// Decodes a request body into a batch.
    ///
    /// # Errors
    /// [`CodecError`] describing what is wrong and where; nothing of the body is kept.
    fn decode(&self, body: Bytes) -> Result<SpanBatch, CodecError>;

    /// Encodes a batch into a request body.
    ///
    /// # Errors
    /// [`CodecError`] if the batch cannot be expressed in this format.
    fn encode(&self, batch: &SpanBatch) -> Result<Bytes, CodecError>;
}
