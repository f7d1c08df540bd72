//! The canonical in-pipeline form of spans: OTLP protobuf bytes plus an index built by one scan.
//!
//! Why this shape: decoding OTLP into owned structs costs an allocation per string, attribute and
//! event, and most stages of a pipeline look at a handful of fields (ids, times, status, service)
//! before passing the bytes on unchanged. So the batch keeps the request bytes (`Bytes`, shared,
//! never copied) and a flat index of what routing, sampling and batching need, with every other
//! field read lazily from the span's own bytes when somebody asks for it.
//!
//! The scan that builds the index is also the validator: it walks every message down to nested
//! attribute values, checks wire types, lengths, varints, UTF-8 and id lengths, and refuses the
//! payload with a [`ScanError`] naming the byte offset and field. Because a batch can only be made
//! by that scan (or by re-framing spans of batches that passed it), the lazy views never meet
//! malformed bytes and stay infallible.

use std::ops::Range;

use bytes::Bytes;

use crate::error::{ScanError, ScanErrorKind};
use crate::wire::{decode_varint, Field, FieldValue, Reader, WireType};

/// How deep attribute values may nest arrays and key-value lists. Real instrumentation stays far
/// below; the limit only exists so a hostile request cannot exhaust the stack.
pub const MAX_VALUE_DEPTH: usize = 32;

/// Field numbers of the OTLP trace protos (opentelemetry-proto, `trace/v1`, `common/v1`,
/// `resource/v1`, `collector/trace/v1`). One place for all of them: the scan, the views, the writer
/// and re-framing use these names.
pub(crate) mod field {
    pub const REQUEST_RESOURCE_SPANS: u32 = 1;

    pub const RESOURCE_SPANS_RESOURCE: u32 = 1;
    pub const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;
    pub const RESOURCE_SPANS_SCHEMA_URL: u32 = 3;

    pub const RESOURCE_ATTRIBUTES: u32 = 1;
    pub const RESOURCE_DROPPED_ATTRIBUTES_COUNT: u32 = 2;
    pub const RESOURCE_ENTITY_REFS: u32 = 3;

    pub const SCOPE_SPANS_SCOPE: u32 = 1;
    pub const SCOPE_SPANS_SPANS: u32 = 2;
    pub const SCOPE_SPANS_SCHEMA_URL: u32 = 3;

    pub const SCOPE_NAME: u32 = 1;
    pub const SCOPE_VERSION: u32 = 2;
    pub const SCOPE_ATTRIBUTES: u32 = 3;
    pub const SCOPE_DROPPED_ATTRIBUTES_COUNT: u32 = 4;

    pub const SPAN_TRACE_ID: u32 = 1;
    pub const SPAN_SPAN_ID: u32 = 2;
    pub const SPAN_TRACE_STATE: u32 = 3;
    pub const SPAN_PARENT_SPAN_ID: u32 = 4;
    pub const SPAN_NAME: u32 = 5;
    pub const SPAN_KIND: u32 = 6;
    pub const SPAN_START_TIME: u32 = 7;
    pub const SPAN_END_TIME: u32 = 8;
    pub const SPAN_ATTRIBUTES: u32 = 9;
    pub const SPAN_DROPPED_ATTRIBUTES_COUNT: u32 = 10;
    pub const SPAN_EVENTS: u32 = 11;
    pub const SPAN_DROPPED_EVENTS_COUNT: u32 = 12;
    pub const SPAN_LINKS: u32 = 13;
    pub const SPAN_DROPPED_LINKS_COUNT: u32 = 14;
    pub const SPAN_STATUS: u32 = 15;
    pub const SPAN_FLAGS: u32 = 16;

    pub const EVENT_TIME: u32 = 1;
    pub const EVENT_NAME: u32 = 2;
    pub const EVENT_ATTRIBUTES: u32 = 3;
    pub const EVENT_DROPPED_ATTRIBUTES_COUNT: u32 = 4;

    pub const LINK_TRACE_ID: u32 = 1;
    pub const LINK_SPAN_ID: u32 = 2;
    pub const LINK_TRACE_STATE: u32 = 3;
    pub const LINK_ATTRIBUTES: u32 = 4;
    pub const LINK_DROPPED_ATTRIBUTES_COUNT: u32 = 5;
    pub const LINK_FLAGS: u32 = 6;

    pub const STATUS_MESSAGE: u32 = 2;
    pub const STATUS_CODE: u32 = 3;

    pub const KEY_VALUE_KEY: u32 = 1;
    pub const KEY_VALUE_VALUE: u32 = 2;
    pub const KEY_VALUE_KEY_STRINDEX: u32 = 3;

    pub const ANY_STRING: u32 = 1;
    pub const ANY_BOOL: u32 = 2;
    pub const ANY_INT: u32 = 3;
    pub const ANY_DOUBLE: u32 = 4;
    pub const ANY_ARRAY: u32 = 5;
    pub const ANY_KVLIST: u32 = 6;
    pub const ANY_BYTES: u32 = 7;
    pub const ANY_STRING_STRINDEX: u32 = 8;

    /// `ArrayValue.values` and `KeyValueList.values` are both field 1.
    pub const LIST_VALUES: u32 = 1;

    pub const ENTITY_REF_SCHEMA_URL: u32 = 1;
    pub const ENTITY_REF_TYPE: u32 = 2;
    pub const ENTITY_REF_ID_KEYS: u32 = 3;
    pub const ENTITY_REF_DESCRIPTION_KEYS: u32 = 4;
}

/// A byte range inside a batch's buffer, stored as two `u32`s to keep index entries small.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl ByteRange {
    pub(crate) fn new(range: Range<usize>) -> Self {
        // The scan refuses buffers over u32::MAX bytes, so every offset fits.
        Self { start: range.start as u32, end: range.end as u32 }
    }

    /// As a `usize` range for slicing.
    #[must_use]
    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether the range is empty.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The range moved by `delta` bytes. `0..0` stands for "field absent" (no field of a batch can
    /// start at byte 0, which holds the first `resource_spans` tag) and stays as it is.
    pub(crate) fn shifted(self, delta: i64) -> Self {
        if self == Self::default() {
            return self;
        }
        Self { start: (i64::from(self.start) + delta) as u32, end: (i64::from(self.end) + delta) as u32 }
    }
}

/// One `ResourceSpans` of the batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceEntry {
    /// The whole `resource` field (tag, length and payload); empty when the request has none.
    pub(crate) resource_field: ByteRange,
    /// The `Resource` message payload inside `resource_field`.
    pub(crate) resource: ByteRange,
    /// The whole `schema_url` field; empty when absent.
    pub(crate) schema_url_field: ByteRange,
    /// The string value of the first `service.name` resource attribute.
    pub(crate) service_name: Option<ByteRange>,
    /// Positions of this resource's scopes in [`BatchIndex::scopes`].
    pub(crate) scopes: Range<u32>,
}

/// One `ScopeSpans` of the batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeEntry {
    /// Index of the owning [`ResourceEntry`].
    pub(crate) resource: u32,
    /// The whole `scope` field; empty when absent.
    pub(crate) scope_field: ByteRange,
    /// The `InstrumentationScope` payload inside `scope_field`.
    pub(crate) scope: ByteRange,
    /// The whole `schema_url` field; empty when absent.
    pub(crate) schema_url_field: ByteRange,
    /// Positions of this scope's spans in [`BatchIndex::spans`].
    pub(crate) spans: Range<u32>,
}

/// What the index knows about one span without touching its bytes again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanEntry {
    /// The `Span` message payload.
    pub(crate) body: ByteRange,
    /// Index of the owning [`ScopeEntry`].
    pub(crate) scope: u32,
    /// Index of the owning [`ResourceEntry`] (also reachable through the scope; kept for speed).
    pub(crate) resource: u32,
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    /// All zero when the span is a root (`parent_span_id` absent or empty).
    pub(crate) parent_span_id: [u8; 8],
    pub(crate) has_parent: bool,
    pub(crate) name: ByteRange,
    pub(crate) kind: i32,
    pub(crate) status_code: i32,
    pub(crate) start_time_unix_nano: u64,
    pub(crate) end_time_unix_nano: u64,
    pub(crate) flags: u32,
}

/// The index of a batch: flat vectors, one entry per resource, scope and span, in wire order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchIndex {
    pub(crate) resources: Vec<ResourceEntry>,
    pub(crate) scopes: Vec<ScopeEntry>,
    pub(crate) spans: Vec<SpanEntry>,
}

impl BatchIndex {
    fn with_capacity_for(len: usize) -> Self {
        // A span is rarely under 64 bytes on the wire; reserving for that avoids regrowing the
        // vector during the scan of typical requests without over-reserving for big ones.
        Self { resources: Vec::new(), scopes: Vec::new(), spans: Vec::with_capacity((len / 256).max(1)) }
    }
}

/// A batch of spans: the OTLP `ExportTraceServiceRequest` / `TracesData` encoding (the two are the
/// same on the wire) and its index.
#[derive(Clone, Debug, Default)]
pub struct SpanBatch {
    pub(crate) bytes: Bytes,
    pub(crate) index: BatchIndex,
}

impl SpanBatch {
    /// Indexes an OTLP protobuf request. The bytes are kept as they are, never copied.
    ///
    /// # Errors
    /// A [`ScanError`] for any structural fault, and [`ScanErrorKind::Empty`] for a request that
    /// holds no spans.
    pub fn decode(bytes: Bytes) -> Result<Self, ScanError> {
        let batch = Self::scanned(bytes)?;
        if batch.index.spans.is_empty() {
            return Err(ScanError::new(ScanErrorKind::Empty, 0, "ExportTraceServiceRequest"));
        }
        Ok(batch)
    }

    /// Indexes bytes that may legitimately hold no spans, validating everything.
    pub(crate) fn scanned(bytes: Bytes) -> Result<Self, ScanError> {
        let index = scan(&bytes, Checks::Validate)?;
        Ok(Self { bytes, index })
    }

    /// Indexes what the [`crate::BatchWriter`] wrote. Its strings came in as `&str`, so they are
    /// UTF-8 by construction and are not checked again. Unless `nested_values` says an array or
    /// key-value list was written (which may nest too deep), its span, event and link attributes
    /// are well-formed by construction too and are stepped over; everything else is checked.
    pub(crate) fn scanned_from_writer(bytes: Bytes, nested_values: bool) -> Result<Self, ScanError> {
        let checks = if nested_values { Checks::KnownUtf8 } else { Checks::KnownUtf8FlatAttributes };
        let index = scan(&bytes, checks)?;
        Ok(Self { bytes, index })
    }

    /// A batch whose index the [`crate::BatchWriter`] recorded while writing `bytes`: the index a
    /// scan of `bytes` would build, without the scan.
    pub(crate) fn indexed_by_writer(bytes: Bytes, index: BatchIndex) -> Self {
        Self { bytes, index }
    }

    /// A batch with no spans.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// The OTLP protobuf encoding of the whole batch, ready to send.
    #[must_use]
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Gives up the index and returns the encoded bytes.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Number of spans.
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.spans.len()
    }

    /// Whether the batch holds no spans.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.spans.is_empty()
    }

    /// Size of the encoding in bytes.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// The index. Opaque, but comparable: a batch made by re-framing has the same index as one
    /// made by scanning the same bytes.
    #[must_use]
    pub fn index(&self) -> &BatchIndex {
        &self.index
    }

    /// Number of `ResourceSpans` entries.
    #[must_use]
    pub fn resource_count(&self) -> usize {
        self.index.resources.len()
    }

    /// Number of `ScopeSpans` entries.
    #[must_use]
    pub fn scope_count(&self) -> usize {
        self.index.scopes.len()
    }
}

/// What the scan must check beyond the structure: everything for bytes from outside, less for the writer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Checks {
    /// Bytes from outside: check every string.
    Validate,
    /// Bytes the writer produced from `&str`: UTF-8 by construction. (Were that ever wrong, the
    /// views would read such a string as empty; they never assume UTF-8 unchecked.)
    KnownUtf8,
    /// As [`Checks::KnownUtf8`], and every attribute a scalar written by the writer: span, event
    /// and link attributes hold nothing the index needs and nothing the scan could refuse, so
    /// they are not walked. (Resource attributes still are: the index keeps `service.name`.)
    KnownUtf8FlatAttributes,
}

/// Builds the index of `data` in one pass, validating everything on the way.
///
/// The scanner is compiled once per kind of check (a const parameter), so that the checks bytes
/// from outside need cost no branch for the ones they skip, and the other way round.
pub(crate) fn scan(data: &[u8], checks: Checks) -> Result<BatchIndex, ScanError> {
    match checks {
        Checks::Validate => scan_with::<VALIDATE>(data),
        Checks::KnownUtf8 => scan_with::<KNOWN_UTF8>(data),
        Checks::KnownUtf8FlatAttributes => scan_with::<KNOWN_UTF8_FLAT_ATTRIBUTES>(data),
    }
}

/// What the scan would take from the `KeyValue` at `body` of `data` if it were a resource
/// attribute: the range of its string value when its key is `service.name`. The writer asks this of
/// resource attributes whose value it wrote through the general [`crate::Attributes::attribute`]
/// path, so that it need not repeat the scan's rules for merging repeated values.
pub(crate) fn service_name_of_key_value(data: &[u8], body: Range<usize>) -> Result<Option<ByteRange>, ScanError> {
    let scanner = Scanner::<KNOWN_UTF8> { data, index: BatchIndex::default() };
    Ok(scanner.key_value(body, 0)?.service_name)
}

const VALIDATE: u8 = 0;
const KNOWN_UTF8: u8 = 1;
const KNOWN_UTF8_FLAT_ATTRIBUTES: u8 = 2;

fn scan_with<const CHECKS: u8>(data: &[u8]) -> Result<BatchIndex, ScanError> {
    if data.len() > u32::MAX as usize {
        return Err(ScanError::new(ScanErrorKind::TooLarge(data.len()), 0, "ExportTraceServiceRequest"));
    }
    let mut scanner = Scanner::<CHECKS> { data, index: BatchIndex::with_capacity_for(data.len()) };
    scanner.request()?;
    Ok(scanner.index)
}

struct Scanner<'a, const CHECKS: u8> {
    data: &'a [u8],
    index: BatchIndex,
}

/// Reads the next field of `reader`, naming `message` in any error.
#[inline]
fn next(reader: &mut Reader<'_>, message: &'static str) -> Result<Option<Field>, ScanError> {
    reader.next_field().map_err(|fault| ScanError::from_wire(fault, message))
}

/// UTF-8 validation with a fast path for ASCII, which nearly every telemetry string is: the ASCII
/// check reads a word at a time, where the general validator's setup alone costs more than a
/// short key.
#[inline]
fn is_utf8(bytes: &[u8]) -> bool {
    bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()
}

/// A required id that never appeared is an id of length zero, reported at the message start.
fn missing_id(present: bool, expected: usize, message_start: usize, name: &'static str) -> Result<(), ScanError> {
    if present {
        return Ok(());
    }
    Err(ScanError::new(ScanErrorKind::InvalidIdLength { expected, found: 0 }, message_start, name))
}

#[inline]
fn wrong_type(field: &Field, expected: WireType, name: &'static str) -> ScanError {
    ScanError::new(ScanErrorKind::WrongWireType { expected, found: field.value.wire_type() }, field.start, name)
}

#[inline]
fn len_payload(field: &Field, name: &'static str) -> Result<Range<usize>, ScanError> {
    match &field.value {
        FieldValue::Len(range) => Ok(range.clone()),
        _ => Err(wrong_type(field, WireType::Len, name)),
    }
}

#[inline]
fn varint(field: &Field, name: &'static str) -> Result<u64, ScanError> {
    match field.value {
        FieldValue::Varint(value) => Ok(value),
        _ => Err(wrong_type(field, WireType::Varint, name)),
    }
}

#[inline]
fn fixed64(field: &Field, name: &'static str) -> Result<u64, ScanError> {
    match field.value {
        FieldValue::I64(value) => Ok(value),
        _ => Err(wrong_type(field, WireType::I64, name)),
    }
}

#[inline]
fn fixed32(field: &Field, name: &'static str) -> Result<u32, ScanError> {
    match field.value {
        FieldValue::I32(value) => Ok(value),
        _ => Err(wrong_type(field, WireType::I32, name)),
    }
}

impl<const CHECKS: u8> Scanner<'_, CHECKS> {
    #[inline]
    fn string(&self, field: &Field, name: &'static str) -> Result<Range<usize>, ScanError> {
        let range = len_payload(field, name)?;
        if CHECKS == VALIDATE && !is_utf8(&self.data[range.clone()]) {
            return Err(ScanError::new(ScanErrorKind::InvalidUtf8, range.start, name));
        }
        Ok(range)
    }

    #[inline]
    fn id<const N: usize>(&self, field: &Field, name: &'static str) -> Result<[u8; N], ScanError> {
        let range = len_payload(field, name)?;
        self.data[range.clone()].try_into().map_err(|_| {
            ScanError::new(ScanErrorKind::InvalidIdLength { expected: N, found: range.len() }, field.start, name)
        })
    }

    fn request(&mut self) -> Result<(), ScanError> {
        let mut reader = Reader::new(self.data, 0..self.data.len());
        while let Some(field) = next(&mut reader, "ExportTraceServiceRequest")? {
            if field.number == field::REQUEST_RESOURCE_SPANS {
                let body = len_payload(&field, "ExportTraceServiceRequest.resource_spans")?;
                self.resource_spans(body)?;
            }
        }
        Ok(())
    }

    fn resource_spans(&mut self, body: Range<usize>) -> Result<(), ScanError> {
        const MESSAGE: &str = "ResourceSpans";
        let resource_index = self.index.resources.len() as u32;
        self.index.resources.push(ResourceEntry::default());
        let mut entry = ResourceEntry::default();
        let first_scope = self.index.scopes.len() as u32;
        let mut reader = Reader::new(self.data, body);
        while let Some(field) = next(&mut reader, MESSAGE)? {
            match field.number {
                field::RESOURCE_SPANS_RESOURCE => {
                    let payload = len_payload(&field, "ResourceSpans.resource")?;
                    if !entry.resource_field.is_empty() {
                        return Err(ScanError::new(
                            ScanErrorKind::DuplicateField,
                            field.start,
                            "ResourceSpans.resource",
                        ));
                    }
                    entry.resource_field = ByteRange::new(field.start..payload.end);
                    entry.resource = ByteRange::new(payload.clone());
                    entry.service_name = self.resource(payload)?;
                }
                field::RESOURCE_SPANS_SCOPE_SPANS => {
                    let payload = len_payload(&field, "ResourceSpans.scope_spans")?;
                    self.scope_spans(payload, resource_index)?;
                }
                field::RESOURCE_SPANS_SCHEMA_URL => {
                    let payload = self.string(&field, "ResourceSpans.schema_url")?;
                    entry.schema_url_field = ByteRange::new(field.start..payload.end);
                }
                _ => {}
            }
        }
        entry.scopes = first_scope..self.index.scopes.len() as u32;
        self.index.resources[resource_index as usize] = entry;
        Ok(())
    }

    /// Validates a `Resource` and returns the range of its `service.name` string, if any.
    fn resource(&self, body: Range<usize>) -> Result<Option<ByteRange>, ScanError> {
        let mut service_name = None;
        let mut reader = Reader::new(self.data, body);
        while let Some(field) = next(&mut reader, "Resource")? {
            match field.number {
                field::RESOURCE_ATTRIBUTES => {
                    let payload = len_payload(&field, "Resource.attributes")?;
                    let found = self.key_value(payload, 0)?;
                    if service_name.is_none() {
                        service_name = found.service_name;
                    }
                }
                field::RESOURCE_DROPPED_ATTRIBUTES_COUNT => {
                    varint(&field, "Resource.dropped_attributes_count")?;
                }
                field::RESOURCE_ENTITY_REFS => {
                    let payload = len_payload(&field, "Resource.entity_refs")?;
                    self.entity_ref(payload)?;
                }
                _ => {}
            }
        }
        Ok(service_name)
    }

    fn entity_ref(&self, body: Range<usize>) -> Result<(), ScanError> {
        let mut reader = Reader::new(self.data, body);
        while let Some(field) = next(&mut reader, "EntityRef")? {
            match field.number {
                field::ENTITY_REF_SCHEMA_URL
                | field::ENTITY_REF_TYPE
                | field::ENTITY_REF_ID_KEYS
                | field::ENTITY_REF_DESCRIPTION_KEYS => {
                    self.string(&field, "EntityRef")?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn scope_spans(&mut self, body: Range<usize>, resource: u32) -> Result<(), ScanError> {
        let scope_index = self.index.scopes.len() as u32;
        self.index.scopes.push(ScopeEntry { resource, ..ScopeEntry::default() });
        let mut entry = ScopeEntry { resource, ..ScopeEntry::default() };
        let first_span = self.index.spans.len() as u32;
        let mut reader = Reader::new(self.data, body);
        while let Some(field) = next(&mut reader, "ScopeSpans")? {
            match field.number {
                field::SCOPE_SPANS_SCOPE => {
                    let payload = len_payload(&field, "ScopeSpans.scope")?;
                    if !entry.scope_field.is_empty() {
                        return Err(ScanError::new(ScanErrorKind::DuplicateField, field.start, "ScopeSpans.scope"));
                    }
                    entry.scope_field = ByteRange::new(field.start..payload.end);
                    entry.scope = ByteRange::new(payload.clone());
                    self.instrumentation_scope(payload)?;
                }
                field::SCOPE_SPANS_SPANS => {
                    let payload = len_payload(&field, "ScopeSpans.spans")?;
                    let span = self.span(payload, scope_index, resource)?;
                    self.index.spans.push(span);
                }
                field::SCOPE_SPANS_SCHEMA_URL => {
                    let payload = self.string(&field, "ScopeSpans.schema_url")?;
                    entry.schema_url_field = ByteRange::new(field.start..payload.end);
                }
                _ => {}
            }
        }
        entry.spans = first_span..self.index.spans.len() as u32;
        self.index.scopes[scope_index as usize] = entry;
        Ok(())
    }

    fn instrumentation_scope(&self, body: Range<usize>) -> Result<(), ScanError> {
        let mut reader = Reader::new(self.data, body);
        while let Some(field) = next(&mut reader, "InstrumentationScope")? {
            match field.number {
                field::SCOPE_NAME => {
                    self.string(&field, "InstrumentationScope.name")?;
                }
                field::SCOPE_VERSION => {
                    self.string(&field, "InstrumentationScope.version")?;
                }
                field::SCOPE_ATTRIBUTES => {
                    let payload = len_payload(&field, "InstrumentationScope.attributes")?;
                    self.key_value(payload, 0)?;
                }
                field::SCOPE_DROPPED_ATTRIBUTES_COUNT => {
                    varint(&field, "InstrumentationScope.dropped_attributes_count")?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    #[inline]
    fn span(&self, body: Range<usize>, scope: u32, resource: u32) -> Result<SpanEntry, ScanError> {
        let mut entry = SpanEntry { body: ByteRange::new(body.clone()), scope, resource, ..SpanEntry::default() };
        let mut has_trace_id = false;
        let mut has_span_id = false;
        let mut reader = Reader::new(self.data, body.clone());
        loop {
            if self.span_field_canonical(&mut reader, &mut entry, &mut has_trace_id, &mut has_span_id)? {
                continue;
            }
            let Some(field) = next(&mut reader, "Span")? else { break };
            match field.number {
                field::SPAN_TRACE_ID => {
                    entry.trace_id = self.id(&field, "Span.trace_id")?;
                    has_trace_id = true;
                }
                field::SPAN_SPAN_ID => {
                    entry.span_id = self.id(&field, "Span.span_id")?;
                    has_span_id = true;
                }
                field::SPAN_TRACE_STATE => {
                    self.string(&field, "Span.trace_state")?;
                }
                field::SPAN_PARENT_SPAN_ID => {
                    let payload = len_payload(&field, "Span.parent_span_id")?;
                    // An empty parent id is how proto3 says "root span".
                    if payload.is_empty() {
                        entry.has_parent = false;
                        entry.parent_span_id = [0; 8];
                    } else {
                        entry.parent_span_id = self.id(&field, "Span.parent_span_id")?;
                        entry.has_parent = true;
                    }
                }
                field::SPAN_NAME => entry.name = ByteRange::new(self.string(&field, "Span.name")?),
                field::SPAN_KIND => entry.kind = varint(&field, "Span.kind")? as i32,
                field::SPAN_START_TIME => entry.start_time_unix_nano = fixed64(&field, "Span.start_time_unix_nano")?,
                field::SPAN_END_TIME => entry.end_time_unix_nano = fixed64(&field, "Span.end_time_unix_nano")?,
                field::SPAN_ATTRIBUTES => {
                    let payload = len_payload(&field, "Span.attributes")?;
                    self.attribute(payload)?;
                }
                field::SPAN_DROPPED_ATTRIBUTES_COUNT => {
                    varint(&field, "Span.dropped_attributes_count")?;
                }
                field::SPAN_EVENTS => {
                    let payload = len_payload(&field, "Span.events")?;
                    self.event(payload)?;
                }
                field::SPAN_DROPPED_EVENTS_COUNT => {
                    varint(&field, "Span.dropped_events_count")?;
                }
                field::SPAN_LINKS => {
                    let payload = len_payload(&field, "Span.links")?;
                    self.link(payload)?;
                }
                field::SPAN_DROPPED_LINKS_COUNT => {
                    varint(&field, "Span.dropped_links_count")?;
                }
                field::SPAN_STATUS => {
                    let payload = len_payload(&field, "Span.status")?;
                    // A repeated singular message merges: a later status without a code keeps
                    // the earlier code, as in every protobuf decoder.
                    if let Some(code) = self.status(payload)? {
                        entry.status_code = code;
                    }
                }
                field::SPAN_FLAGS => entry.flags = fixed32(&field, "Span.flags")?,
                _ => {}
            }
        }
        missing_id(has_trace_id, 16, body.start, "Span.trace_id")?;
        missing_id(has_span_id, 8, body.start, "Span.span_id")?;
        Ok(entry)
    }

    /// Validates a `Status`; returns its code if the message sets one.
    /// Reads one span field in the layout every encoder writes, recognised by its tag byte: ids of
    /// the right length, short names and attributes, fixed-width times and flags. Returns whether
    /// it did; anything else (and anything invalid) is left to the general path, which reports
    /// faults exactly.
    #[inline(always)]
    fn span_field_canonical(
        &self,
        reader: &mut Reader<'_>,
        entry: &mut SpanEntry,
        has_trace_id: &mut bool,
        has_span_id: &mut bool,
    ) -> Result<bool, ScanError> {
        let at = reader.position();
        let used = match reader.rest() {
            [0x0a, 16, id @ ..] if id.len() >= 16 => {
                entry.trace_id.copy_from_slice(&id[..16]);
                *has_trace_id = true;
                18
            }
            [0x12, 8, id @ ..] if id.len() >= 8 => {
                entry.span_id.copy_from_slice(&id[..8]);
                *has_span_id = true;
                10
            }
            [0x22, 8, id @ ..] if id.len() >= 8 => {
                entry.parent_span_id.copy_from_slice(&id[..8]);
                entry.has_parent = true;
                10
            }
            [0x2a, len, name @ ..] if *len < 0x80 && name.len() >= usize::from(*len) => {
                let len = usize::from(*len);
                if CHECKS == VALIDATE && !is_utf8(&name[..len]) {
                    return Ok(false);
                }
                entry.name = ByteRange::new(at + 2..at + 2 + len);
                2 + len
            }
            [0x30, kind, ..] if *kind < 0x80 => {
                entry.kind = i32::from(*kind);
                2
            }
            [tag @ (0x39 | 0x41), time @ ..] if time.len() >= 8 => {
                let mut nanos = [0; 8];
                nanos.copy_from_slice(&time[..8]);
                if *tag == 0x39 {
                    entry.start_time_unix_nano = u64::from_le_bytes(nanos);
                } else {
                    entry.end_time_unix_nano = u64::from_le_bytes(nanos);
                }
                9
            }
            [0x4a, len, attribute @ ..] if *len < 0x80 && attribute.len() >= usize::from(*len) => {
                let len = usize::from(*len);
                self.attribute(at + 2..at + 2 + len)?;
                2 + len
            }
            [0x85, 0x01, flags @ ..] if flags.len() >= 4 => {
                let mut bytes = [0; 4];
                bytes.copy_from_slice(&flags[..4]);
                entry.flags = u32::from_le_bytes(bytes);
                6
            }
            _ => return Ok(false),
        };
        reader.advance(used);
        Ok(true)
    }

    fn status(&self, body: Range<usize>) -> Result<Option<i32>, ScanError> {
        let mut code = None;
        let mut reader = Reader::new(self.data, body);
        while let Some(field) = next(&mut reader, "Status")? {
            match field.number {
                field::STATUS_MESSAGE => {
                    self.string(&field, "Status.message")?;
                }
                field::STATUS_CODE => code = Some(varint(&field, "Status.code")? as i32),
                _ => {}
            }
        }
        Ok(code)
    }

    fn event(&self, body: Range<usize>) -> Result<(), ScanError> {
        let mut reader = Reader::new(self.data, body);
        while let Some(field) = next(&mut reader, "Span.Event")? {
            match field.number {
                field::EVENT_TIME => {
                    fixed64(&field, "Span.Event.time_unix_nano")?;
                }
                field::EVENT_NAME => {
                    self.string(&field, "Span.Event.name")?;
                }
                field::EVENT_ATTRIBUTES => {
                    let payload = len_payload(&field, "Span.Event.attributes")?;
                    self.attribute(payload)?;
                }
                field::EVENT_DROPPED_ATTRIBUTES_COUNT => {
                    varint(&field, "Span.Event.dropped_attributes_count")?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Validates a `Span.Link`. Its trace and span ids are required, as the span's own are: a link
    /// without them points nowhere, and a zero id would be invented on the way out.
    fn link(&self, body: Range<usize>) -> Result<(), ScanError> {
        let (mut has_trace_id, mut has_span_id) = (false, false);
        let mut reader = Reader::new(self.data, body.clone());
        while let Some(field) = next(&mut reader, "Span.Link")? {
            match field.number {
                field::LINK_TRACE_ID => {
                    self.id::<16>(&field, "Span.Link.trace_id")?;
                    has_trace_id = true;
                }
                field::LINK_SPAN_ID => {
                    self.id::<8>(&field, "Span.Link.span_id")?;
                    has_span_id = true;
                }
                field::LINK_TRACE_STATE => {
                    self.string(&field, "Span.Link.trace_state")?;
                }
                field::LINK_ATTRIBUTES => {
                    let payload = len_payload(&field, "Span.Link.attributes")?;
                    self.attribute(payload)?;
                }
                field::LINK_DROPPED_ATTRIBUTES_COUNT => {
                    varint(&field, "Span.Link.dropped_attributes_count")?;
                }
                field::LINK_FLAGS => {
                    fixed32(&field, "Span.Link.flags")?;
                }
                _ => {}
            }
        }
        missing_id(has_trace_id, 16, body.start, "Span.Link.trace_id")?;
        missing_id(has_span_id, 8, body.start, "Span.Link.span_id")
    }

    /// Validates a span's, event's or link's attribute, unless the writer vouches for it.
    #[inline(always)]
    fn attribute(&self, body: Range<usize>) -> Result<(), ScanError> {
        if CHECKS != KNOWN_UTF8_FLAT_ATTRIBUTES {
            self.key_value(body, 0)?;
        }
        Ok(())
    }

    /// Validates a `KeyValue`; reports whether it is `service.name` with a string value.
    #[inline]
    fn key_value(&self, body: Range<usize>, depth: usize) -> Result<KeyValueFacts, ScanError> {
        if let Some(facts) = self.key_value_canonical(&body) {
            return Ok(facts);
        }
        self.key_value_general(body, depth)
    }

    /// The layout every protobuf encoder writes for a short attribute with a scalar value,
    /// recognised by its tag bytes: `0a <key len> <key> 12 <value len> <AnyValue>`, lengths under
    /// 128. `None` means "not that layout (or not valid)": the general path then decides, and
    /// reports any fault exactly. Attributes are most of a span's fields, so this path decides
    /// most of the scan's cost.
    #[inline(always)]
    fn key_value_canonical(&self, body: &Range<usize>) -> Option<KeyValueFacts> {
        let bytes = self.data.get(body.clone())?;
        let (&[0x0a, key_len], rest) = bytes.split_first_chunk::<2>()? else { return None };
        if key_len >= 0x80 {
            return None;
        }
        let (key, rest) = rest.split_at_checked(usize::from(key_len))?;
        let (&[0x12, value_len], value) = rest.split_first_chunk::<2>()? else { return None };
        if usize::from(value_len) != value.len() || CHECKS == VALIDATE && !is_utf8(key) {
            return None;
        }
        let value_start = body.end - value.len();
        let member = self.any_value_canonical(value, value_start)?;
        let is_service_name = key == b"service.name";
        let service_name = match member {
            OneofMember::String(range) if is_service_name => Some(ByteRange::new(range)),
            _ => None,
        };
        Some(KeyValueFacts { service_name })
    }

    /// An `AnyValue` holding one scalar in canonical layout, starting at absolute `start`.
    #[inline(always)]
    fn any_value_canonical(&self, value: &[u8], start: usize) -> Option<OneofMember> {
        match value {
            [] => Some(OneofMember::Unset),
            // string_value / bytes_value with a one-byte length.
            [tag @ (0x0a | 0x3a), len, payload @ ..] if *len < 0x80 && usize::from(*len) == payload.len() => {
                if *tag == 0x3a {
                    return Some(OneofMember::Other);
                }
                if CHECKS == VALIDATE && !is_utf8(payload) {
                    return None;
                }
                Some(OneofMember::String(start + 2..start + value.len()))
            }
            // bool_value
            [0x10, flag] if *flag < 0x80 => Some(OneofMember::Other),
            // int_value: a varint that ends exactly at the end of the message.
            [0x18, varint @ ..] => match decode_varint(varint) {
                Ok((_, used)) if used == varint.len() => Some(OneofMember::Other),
                _ => None,
            },
            // double_value
            [0x21, _, _, _, _, _, _, _, _] => Some(OneofMember::Other),
            _ => None,
        }
    }

    /// Validates a `KeyValue` in any layout protobuf allows.
    fn key_value_general(&self, body: Range<usize>, depth: usize) -> Result<KeyValueFacts, ScanError> {
        let mut key = 0..0;
        let mut string_value = None;
        let mut reader = Reader::new(self.data, body);
        while let Some(field) = next(&mut reader, "KeyValue")? {
            match field.number {
                field::KEY_VALUE_KEY => key = self.string(&field, "KeyValue.key")?,
                field::KEY_VALUE_VALUE => {
                    let payload = len_payload(&field, "KeyValue.value")?;
                    // A repeated `value` merges: one that sets no member keeps the earlier value.
                    match self.any_value(payload, depth)? {
                        OneofMember::String(range) => string_value = Some(range),
                        OneofMember::Other => string_value = None,
                        OneofMember::Unset => {}
                    }
                }
                field::KEY_VALUE_KEY_STRINDEX => {
                    varint(&field, "KeyValue.key_strindex")?;
                }
                _ => {}
            }
        }
        let is_service_name = &self.data[key] == b"service.name";
        Ok(KeyValueFacts { service_name: string_value.filter(|_| is_service_name).map(ByteRange::new) })
    }

    /// Validates an `AnyValue`; says which member of its oneof is set, with a string's range.
    fn any_value(&self, body: Range<usize>, depth: usize) -> Result<OneofMember, ScanError> {
        let mut member = OneofMember::Unset;
        let mut reader = Reader::new(self.data, body);
        while let Some(field) = next(&mut reader, "AnyValue")? {
            // A oneof: the last member on the wire wins, as in every protobuf decoder.
            match field.number {
                field::ANY_STRING => {
                    member = OneofMember::String(self.string(&field, "AnyValue.string_value")?);
                    continue;
                }
                field::ANY_BOOL => {
                    varint(&field, "AnyValue.bool_value")?;
                }
                field::ANY_INT => {
                    varint(&field, "AnyValue.int_value")?;
                }
                field::ANY_DOUBLE => {
                    fixed64(&field, "AnyValue.double_value")?;
                }
                field::ANY_ARRAY | field::ANY_KVLIST => {
                    let name =
                        if field.number == field::ANY_ARRAY { "AnyValue.array_value" } else { "AnyValue.kvlist_value" };
                    let payload = len_payload(&field, name)?;
                    if depth + 1 >= MAX_VALUE_DEPTH {
                        let kind = ScanErrorKind::TooDeep { limit: MAX_VALUE_DEPTH };
                        return Err(ScanError::new(kind, field.start, name));
                    }
                    self.value_list(payload, field.number == field::ANY_ARRAY, depth + 1)?;
                }
                field::ANY_BYTES => {
                    len_payload(&field, "AnyValue.bytes_value")?;
                }
                field::ANY_STRING_STRINDEX => {
                    varint(&field, "AnyValue.string_value_strindex")?;
                }
                _ => continue,
            }
            member = OneofMember::Other;
        }
        Ok(member)
    }

    /// Validates an `ArrayValue` (`is_array`) or a `KeyValueList`.
    fn value_list(&self, body: Range<usize>, is_array: bool, depth: usize) -> Result<(), ScanError> {
        let message = if is_array { "ArrayValue" } else { "KeyValueList" };
        let mut reader = Reader::new(self.data, body);
        while let Some(field) = next(&mut reader, message)? {
            if field.number == field::LIST_VALUES {
                let payload = len_payload(&field, if is_array { "ArrayValue.values" } else { "KeyValueList.values" })?;
                if is_array {
                    self.any_value(payload, depth)?;
                } else {
                    self.key_value(payload, depth)?;
                }
            }
        }
        Ok(())
    }
}

/// Which member of an `AnyValue`'s oneof the message sets.
enum OneofMember {
    Unset,
    String(Range<usize>),
    Other,
}

struct KeyValueFacts {
    service_name: Option<ByteRange>,
}
