//! The batch a plugin is lent: safe, zero-copy views over [`abi::BatchRef`].
//!
//! The host lends the batch's OTLP bytes and a table of per-span facts ([`abi::SpanRef`]) it read
//! while indexing them. Everything the table holds (ids, name, kind, status, times) is read from
//! it; everything else (attributes, the resource's and the scope's fields) is read on demand from
//! the bytes with spanpipe-core's views, so nothing is decoded that the plugin does not ask for.
//!
//! The host promises the bytes passed its validating scan. Should a range in the table be out of
//! bounds anyway, it reads as empty: a view never panics and never reads outside the bytes.

use spanpipe_core::wire::Fields;
use spanpipe_core::{
    AnyValueView, EncodedResourceView, EncodedScopeView, EncodedSpanView, KeyValueView, KeyValues, SpanBatch, SpanKind,
    StatusCode,
};

use crate::abi;

/// `Span.attributes`: the field a replacement run of attributes is made of.
const SPAN_ATTRIBUTES_FIELD: u32 = 9;

/// A batch lent to a plugin for one call.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    bytes: &'a [u8],
    spans: &'a [abi::SpanRef],
}

impl<'a> Batch<'a> {
    /// A batch over `bytes` (an encoded `ExportTraceServiceRequest`) and its span table. Safe to
    /// call with any table: ranges that do not fit `bytes` read as empty. Plugin code gets its
    /// batches from the SDK; this is for tests, with [`span_refs`] making the table.
    #[must_use]
    pub fn new(bytes: &'a [u8], spans: &'a [abi::SpanRef]) -> Self {
        Self { bytes, spans }
    }

    /// The batch the host lent.
    ///
    /// # Safety
    /// `batch.bytes` must point at `batch.bytes.len` readable bytes and `batch.spans` at
    /// `batch.span_count` `SpanRef`s (either may dangle when its length is 0), both valid and
    /// unchanged for `'a`.
    #[must_use]
    pub unsafe fn from_raw(batch: &'a abi::BatchRef) -> Self {
        // SAFETY: the caller vouches for both pointers and lengths.
        let bytes = unsafe { raw_slice(batch.bytes.ptr, batch.bytes.len) };
        // SAFETY: as above.
        let spans = unsafe { raw_slice(batch.spans, batch.span_count) };
        Self { bytes, spans }
    }

    /// The whole encoded request.
    #[must_use]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of spans.
    #[must_use]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the batch holds no spans.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The span at `position` in wire order.
    #[must_use]
    pub fn span(&self, position: usize) -> Option<Span<'a>> {
        self.spans.get(position).map(|entry| Span { bytes: self.bytes, entry, position })
    }

    /// All spans in wire order.
    pub fn spans(&self) -> impl ExactSizeIterator<Item = Span<'a>> + 'a {
        let bytes = self.bytes;
        self.spans.iter().enumerate().map(move |(position, entry)| Span { bytes, entry, position })
    }
}

/// A slice from an ABI pointer and length; a zero length never touches the pointer (which the ABI
/// lets dangle or be null).
///
/// # Safety
/// When `len` is not 0, `ptr` must point at `len` valid `T`s that stay unchanged for `'a`.
pub(crate) unsafe fn raw_slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if len == 0 || ptr.is_null() {
        return &[];
    }
    // SAFETY: the caller vouches for `len` valid `T`s at a non-null `ptr`.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// Bytes `start..end` of `bytes`, empty when the range does not fit.
fn slice(bytes: &[u8], start: u32, end: u32) -> &[u8] {
    bytes.get(start as usize..end as usize).unwrap_or_default()
}

/// One span of a [`Batch`].
#[derive(Clone, Copy, Debug)]
pub struct Span<'a> {
    bytes: &'a [u8],
    entry: &'a abi::SpanRef,
    position: usize,
}

impl<'a> Span<'a> {
    /// Position in the batch: what [`crate::Decisions`] takes to name this span.
    #[must_use]
    pub fn position(&self) -> usize {
        self.position
    }

    /// The 16-byte trace id.
    #[must_use]
    pub fn trace_id(&self) -> &'a [u8; 16] {
        &self.entry.trace_id
    }

    /// The 8-byte span id.
    #[must_use]
    pub fn span_id(&self) -> &'a [u8; 8] {
        &self.entry.span_id
    }

    /// The parent's span id; `None` for a root span.
    #[must_use]
    pub fn parent_span_id(&self) -> Option<&'a [u8; 8]> {
        (self.entry.has_parent != 0).then_some(&self.entry.parent_span_id)
    }

    /// The span name (empty if the host's bytes were not UTF-8, which its scan never lets by).
    #[must_use]
    pub fn name(&self) -> &'a str {
        std::str::from_utf8(slice(self.bytes, self.entry.name_start, self.entry.name_end)).unwrap_or_default()
    }

    /// The span kind.
    #[must_use]
    pub fn kind(&self) -> SpanKind {
        SpanKind::from_i32(self.entry.kind)
    }

    /// The status code.
    #[must_use]
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_i32(self.entry.status_code)
    }

    /// Start time, nanoseconds since the Unix epoch.
    #[must_use]
    pub fn start_time_unix_nano(&self) -> u64 {
        self.entry.start_time_unix_nano
    }

    /// End time, nanoseconds since the Unix epoch.
    #[must_use]
    pub fn end_time_unix_nano(&self) -> u64 {
        self.entry.end_time_unix_nano
    }

    /// Duration in nanoseconds (zero if the end precedes the start).
    #[must_use]
    pub fn duration_nanos(&self) -> u64 {
        self.entry.end_time_unix_nano.saturating_sub(self.entry.start_time_unix_nano)
    }

    /// W3C trace flags and the OTLP "has remote parent" bits.
    #[must_use]
    pub fn flags(&self) -> u32 {
        self.entry.flags
    }

    /// The encoded `Span` message, without its tag and length.
    #[must_use]
    pub fn encoded(&self) -> &'a [u8] {
        slice(self.bytes, self.entry.body_start, self.entry.body_end)
    }

    /// The span's attributes, in wire order.
    #[must_use]
    pub fn attributes(&self) -> KeyValues<'a> {
        EncodedSpanView::new(self.encoded()).attributes()
    }

    /// The value of the first attribute with this key.
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<AnyValueView<'a>> {
        self.attributes().get(key)
    }

    /// The span's attributes with the bytes of each one's whole field, in wire order: what a
    /// processor that rewrites some attributes copies the others from, unchanged
    /// ([`crate::AttributeRun::copy`]).
    pub fn attribute_fields(&self) -> impl Iterator<Item = EncodedAttribute<'a>> + 'a {
        let span = self.encoded();
        Fields::new(span).filter(|field| field.number == SPAN_ATTRIBUTES_FIELD).filter_map(move |field| {
            let field = &span[field.whole];
            // The whole field is itself a `Span` message holding just this attribute.
            let key_value = EncodedSpanView::new(field).attributes().next()?;
            Some(EncodedAttribute { key_value, field })
        })
    }

    /// The span's resource (empty when the request carried none).
    #[must_use]
    pub fn resource(&self) -> EncodedResourceView<'a> {
        EncodedResourceView::new(slice(self.bytes, self.entry.resource_start, self.entry.resource_end))
    }

    /// The span's instrumentation scope (empty when the request carried none).
    #[must_use]
    pub fn scope(&self) -> EncodedScopeView<'a> {
        EncodedScopeView::new(slice(self.bytes, self.entry.scope_start, self.entry.scope_end))
    }
}

/// One attribute of a span and its encoding, as [`Span::attribute_fields`] yields it.
#[derive(Clone, Debug)]
pub struct EncodedAttribute<'a> {
    /// The attribute, read.
    pub key_value: KeyValueView<'a>,
    /// The whole `Span.attributes` field: tag, length and `KeyValue`.
    pub field: &'a [u8],
}

/// The span table the host lends with `batch`'s bytes: one [`abi::SpanRef`] per span, in wire
/// order. For tests of plugins (build a [`Batch`] with [`Batch::new`]) and for hosts.
#[must_use]
pub fn span_refs(batch: &SpanBatch) -> Vec<abi::SpanRef> {
    batch.spans().map(|span| span_ref(&span)).collect()
}

/// What the host's index knows about one span, as the ABI lends it.
#[must_use]
pub fn span_ref(span: &spanpipe_core::SpanView<'_>) -> abi::SpanRef {
    let body = span.byte_range();
    let resource = span.resource().byte_range();
    let scope = span.scope().byte_range();
    let name = span.name_range();
    abi::SpanRef {
        body_start: body.start,
        body_end: body.end,
        resource_start: resource.start,
        resource_end: resource.end,
        scope_start: scope.start,
        scope_end: scope.end,
        name_start: name.start,
        name_end: name.end,
        trace_id: *span.trace_id(),
        span_id: *span.span_id(),
        parent_span_id: span.parent_span_id().copied().unwrap_or_default(),
        kind: span.kind().as_i32(),
        status_code: span.status_code().as_i32(),
        start_time_unix_nano: span.start_time_unix_nano(),
        end_time_unix_nano: span.end_time_unix_nano(),
        flags: span.flags(),
        has_parent: u32::from(span.parent_span_id().is_some()),
    }
}

#[cfg(test)]
mod tests {
    use spanpipe_core::{Attributes, BatchWriter};

    use super::*;

    pub(crate) fn two_span_batch() -> SpanBatch {
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.resource(|r| r.str_attribute("service.name", "checkout"));
            rs.scope_spans(|ss| {
                ss.scope(|s| {
                    s.name("io.acme").version("2.0");
                });
                ss.span(|s| {
                    s.trace_id(&[1; 16]).span_id(&[2; 8]).name("root").kind(2);
                    s.start_time_unix_nano(10).end_time_unix_nano(25).status(2, "boom");
                    s.str_attribute("user.email", "a@b.c");
                    s.int_attribute("n", 7);
                });
                ss.span(|s| {
                    s.trace_id(&[1; 16]).span_id(&[3; 8]).parent_span_id(&[2; 8]).name("child");
                });
            });
        });
        writer.finish().expect("valid batch")
    }

    #[test]
    fn reads_every_field_of_the_lent_table_and_bytes() {
        let batch = two_span_batch();
        let refs = span_refs(&batch);
        let lent = Batch::new(batch.bytes(), &refs);
        assert_eq!(lent.len(), 2);
        let root = lent.span(0).expect("first span");
        assert_eq!((root.name(), root.kind(), root.status_code()), ("root", SpanKind::Server, StatusCode::Error));
        assert_eq!((root.trace_id(), root.span_id(), root.parent_span_id()), (&[1; 16], &[2; 8], None));
        assert_eq!((root.start_time_unix_nano(), root.end_time_unix_nano(), root.duration_nanos()), (10, 25, 15));
        assert_eq!(root.attribute("user.email").and_then(|v| v.as_str()), Some("a@b.c"));
        assert_eq!(root.resource().service_name(), Some("checkout"));
        assert_eq!((root.scope().name(), root.scope().version()), ("io.acme", "2.0"));
        let child = lent.span(1).expect("second span");
        assert_eq!((child.name(), child.parent_span_id(), child.position()), ("child", Some(&[2; 8]), 1));
        assert_eq!(child.attributes().count(), 0);
        assert!(lent.span(2).is_none());
    }

    #[test]
    fn attribute_fields_are_the_whole_encoded_fields() {
        let batch = two_span_batch();
        let refs = span_refs(&batch);
        let lent = Batch::new(batch.bytes(), &refs);
        let root = lent.span(0).expect("first span");
        let fields: Vec<_> = root.attribute_fields().collect();
        assert_eq!(fields.iter().map(|f| f.key_value.key).collect::<Vec<_>>(), ["user.email", "n"]);
        let mut expected = Vec::new();
        spanpipe_core::SpanAttributesWriter::new(&mut expected).str_attribute("user.email", "a@b.c");
        assert_eq!(fields[0].field, expected);
    }

    #[test]
    fn ranges_out_of_bounds_read_as_empty() {
        let batch = two_span_batch();
        let mut refs = span_refs(&batch);
        refs[0].body_end = u32::MAX;
        refs[0].name_start = 5;
        refs[0].name_end = 1;
        refs[0].resource_start = u32::MAX - 1;
        let lent = Batch::new(batch.bytes(), &refs);
        let span = lent.span(0).expect("first span");
        assert_eq!((span.name(), span.encoded().len(), span.attributes().count()), ("", 0, 0));
        assert_eq!(span.resource().service_name(), None);
    }
}
