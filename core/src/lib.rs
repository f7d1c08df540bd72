//! # spanpipe-core
//!
//! The canonical in-pipeline form of spans and the pieces every stage of spanpipe shares.
//!
//! A [`SpanBatch`] is the OTLP protobuf encoding of an `ExportTraceServiceRequest` (which is also
//! the encoding of `TracesData`) held as [`bytes::Bytes`], plus a compact index built by one
//! validating pass over the wire format: per span its byte range, resource and scope, ids, name,
//! kind, times, status code and flags, and per resource its `service.name`. Nothing is allocated
//! per field. Everything else — attributes, events, links, status message, trace state — is read
//! lazily from the span's bytes through borrowed views ([`SpanView`], [`KeyValues`], …).
//!
//! Why OTLP bytes and not structs: OTLP is what most spans arrive as and what most backends take,
//! so keeping its encoding means an OTLP request is indexed, never decoded into a tree and never
//! re-encoded on the way out. Dropping, splitting and merging spans ([`Reframer`],
//! [`SpanBatch::filter`], [`SpanBatch::split`], [`SpanBatch::merge`]) copy byte slices and write
//! new length prefixes. Other protocols are decoded once, straight into this form, by the
//! [`BatchWriter`].
//!
//! Safety of the views rests on one invariant: a batch's bytes have passed the scan. The only ways
//! to make a batch — [`SpanBatch::decode`], [`BatchWriter::finish`] and re-framing batches that
//! already exist — keep it.

mod batch;
pub mod buffers;
mod error;
mod reframe;
mod view;
pub mod wire;
mod writer;

pub use batch::{BatchIndex, ByteRange, SpanBatch, MAX_VALUE_DEPTH};
pub use error::{ScanError, ScanErrorKind};
pub use reframe::Reframer;
pub use view::{
    AnyValueView, ArrayValues, EncodedResourceView, EncodedScopeView, EncodedSpanView, EntityRefView, EntityRefs,
    EventView, Events, KeyValueView, KeyValues, LinkView, Links, ResourceView, ScopeView, SpanDetails, SpanKind,
    SpanStatus, SpanView, StatusCode, Strings,
};
pub use wire::WireType;
pub use writer::{
    ArrayWriter, Attributes, BatchWriter, EntityRefWriter, EventWriter, KeyValueListWriter, LinkWriter,
    ResourceSpansWriter, ResourceWriter, ScopeSpansWriter, ScopeWriter, SpanAttributesWriter, SpanWriter, ValueWriter,
};
