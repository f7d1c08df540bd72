//! Encodes spans straight into the canonical form, with no intermediate tree of owned structs.
//!
//! Decoders of other protocols (OTLP/JSON, Zipkin, Jaeger) and the span generator write through
//! this. Nesting is expressed with closures: each message writer opens its length-delimited frame,
//! hands itself to the closure, and closes the frame when the closure returns, so a length prefix
//! can never be left unwritten. A closure may return anything, including a `Result`, which lets a
//! decoder stop at the first bad field with `?` and drop the half-written buffer.
//!
//! Length prefixes: a message's length is known only after its body is written. Each frame
//! reserves the number of prefix bytes its message usually needs (one for attributes, two for a
//! span, three for a `ScopeSpans`); when the body turns out shorter or longer, the body is moved by
//! the difference. Typical payloads need no move at all, and the output is the minimal encoding
//! that protobuf encoders such as prost produce.
//!
//! Fields are written in the order the caller sets them; callers that want protobuf's canonical
//! order (prost's byte-for-byte output) set them in field-number order. Default values are written
//! if the caller sets them; decoders skip them to keep the encoding as small as prost's.

use std::ops::Range;

use bytes::Bytes;

use crate::batch::{
    field, service_name_of_key_value, BatchIndex, ByteRange, ResourceEntry, ScopeEntry, SpanBatch, SpanEntry,
    MAX_VALUE_DEPTH,
};
use crate::error::ScanError;
use crate::wire::{
    len_field_size, put_len_field, put_len_header, put_tag, put_varint, varint_len, write_varint_into, WireType,
};

/// An open length-delimited field: where its length prefix goes and how many bytes were reserved.
#[derive(Clone, Copy, Debug)]
struct Frame {
    len_at: usize,
    reserved: usize,
}

fn open(buf: &mut Vec<u8>, number: u32, reserved: usize) -> Frame {
    put_tag(buf, number, WireType::Len);
    let len_at = buf.len();
    debug_assert!(reserved <= 3, "frames reserve at most three bytes");
    // At most three bytes are reserved: a fixed-size copy and a shorter length, rather than
    // `resize`'s byte loop.
    buf.extend_from_slice(&[0; 3]);
    buf.truncate(len_at + reserved);
    Frame { len_at, reserved }
}

/// Where a closed frame's payload ended up, and by how many bytes it moved to get there (the
/// length prefix needed minus the bytes reserved): offsets recorded inside it move by as much.
struct Closed {
    payload: Range<usize>,
    moved: i64,
}

/// Closes `frame`: writes its length prefix into the bytes reserved for it, moving the body when
/// the prefix needs more or fewer. Inlined for the usual case of a prefix that fits exactly (a
/// one-byte length for an event, a status or an attribute value); the move is out of line.
#[inline]
fn close(buf: &mut Vec<u8>, frame: Frame) -> Closed {
    let body_start = frame.len_at + frame.reserved;
    let body_len = buf.len() - body_start;
    // The commonest case, tested first without computing the varint's length (measured: 0.4% of
    // a one-span Zipkin decode on its own).
    if frame.reserved == 1 && body_len < 0x80 {
        buf[frame.len_at] = body_len as u8;
        return Closed { payload: body_start..buf.len(), moved: 0 };
    }
    let needed = varint_len(body_len as u64);
    if needed == frame.reserved {
        write_varint_into(&mut buf[frame.len_at..body_start], body_len as u64);
        return Closed { payload: body_start..buf.len(), moved: 0 };
    }
    close_moving(buf, frame, body_len, needed)
}

/// [`close`] when the length prefix needs more or fewer bytes than were reserved.
#[inline(never)]
fn close_moving(buf: &mut Vec<u8>, frame: Frame, body_len: usize, needed: usize) -> Closed {
    let body_start = frame.len_at + frame.reserved;
    if needed > frame.reserved {
        let grow = needed - frame.reserved;
        let old_len = buf.len();
        buf.resize(old_len + grow, 0);
        buf.copy_within(body_start..old_len, body_start + grow);
    } else if needed < frame.reserved {
        buf.copy_within(body_start.., frame.len_at + needed);
        buf.truncate(frame.len_at + needed + body_len);
    }
    write_varint_into(&mut buf[frame.len_at..frame.len_at + needed], body_len as u64);
    Closed { payload: frame.len_at + needed..buf.len(), moved: needed as i64 - frame.reserved as i64 }
}

/// Opens a frame, lets `body` write into it, closes it.
fn nested<R>(buf: &mut Vec<u8>, number: u32, reserved: usize, body: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let frame = open(buf, number, reserved);
    let result = body(buf);
    close(buf, frame);
    result
}

fn put_string(buf: &mut Vec<u8>, number: u32, value: &str) {
    put_len_field(buf, number, value.as_bytes());
}

fn put_varint_field(buf: &mut Vec<u8>, number: u32, value: u64) {
    put_tag(buf, number, WireType::Varint);
    put_varint(buf, value);
}

fn put_fixed64(buf: &mut Vec<u8>, number: u32, value: u64) {
    put_tag(buf, number, WireType::I64);
    buf.extend_from_slice(&value.to_le_bytes());
}

fn put_fixed32(buf: &mut Vec<u8>, number: u32, value: u32) {
    put_tag(buf, number, WireType::I32);
    buf.extend_from_slice(&value.to_le_bytes());
}

/// Writes a batch of spans. Start here.
///
/// ```
/// use spanpipe_core::{BatchWriter, Attributes};
///
/// let mut writer = BatchWriter::new();
/// writer.resource_spans(|rs| {
///     rs.resource(|r| r.str_attribute("service.name", "checkout"));
///     rs.scope_spans(|ss| {
///         ss.span(|s| {
///             s.trace_id(&[1; 16]).span_id(&[2; 8]).name("GET /cart").kind(2);
///             s.start_time_unix_nano(1_700_000_000_000_000_000).end_time_unix_nano(1_700_000_000_000_500_000);
///             s.int_attribute("http.response.status_code", 200);
///         });
///     });
/// });
/// let batch = writer.finish().unwrap();
/// assert_eq!(batch.len(), 1);
/// assert_eq!(batch.span(0).unwrap().service_name(), Some("checkout"));
/// ```
#[derive(Debug, Default)]
pub struct BatchWriter {
    buf: Vec<u8>,
    written: Written,
}

/// What the writers learn while writing: the batch's index, and what [`BatchWriter::finish`] must
/// still check. Everything a writer method writes is well-formed by construction except what the
/// flags record.
///
/// Why the index is recorded here: the writer knows the offset of every resource, scope and span
/// it writes, so it records the index entries as it goes and `finish` need not scan the bytes
/// again (a sixth of a one-span request's decoding). The entries are exactly those the scan would
/// build; when something was written that the writer does not index itself (see `unindexed`),
/// `finish` scans instead.
#[derive(Debug, Default)]
pub struct Written {
    /// Whether encoded messages were copied in verbatim ([`ResourceSpansWriter::encoded_resource`],
    /// [`ScopeSpansWriter::encoded_span`]): their strings never passed through a `&str`, so
    /// `finish` must check them like any request from outside.
    verbatim: bool,
    /// Whether any attribute value is an array or a key-value list: those can nest past
    /// [`crate::MAX_VALUE_DEPTH`], so a scan must walk the attributes to enforce the limit.
    nested_values: bool,
    /// Whether something was written that the recorded index does not stand for and the scan
    /// refuses or decides by rules the writer does not repeat: a repeated `resource` or `scope`, a
    /// span or link without a trace or span id, values nested too deep. `finish` then scans, which
    /// reports the fault exactly.
    unindexed: bool,
    /// The index of what was written, with offsets as they are now: when a frame closes and its
    /// body moves, the entries recorded inside move with it.
    index: BatchIndex,
    /// The span being written; pushed to the index when its frame closes.
    span: SpanEntry,
    span_has_trace_id: bool,
    span_has_span_id: bool,
    link_has_trace_id: bool,
    link_has_span_id: bool,
    /// How many array and key-value list values enclose the value being written.
    value_depth: usize,
    /// Bytes reserved for the length prefix of each `ResourceSpans` and `ScopeSpans` frame.
    group_reserve: GroupReserve,
}

/// How many bytes a `ResourceSpans` or `ScopeSpans` length prefix is given when its frame opens:
/// what a group of the size the caller expects needs, so that closing the frame rarely has to
/// move its body (two moves of the whole body in a one-span request otherwise). Without an
/// expected size, three bytes: bodies up to 2 MiB.
#[derive(Debug, Clone, Copy)]
struct GroupReserve(usize);

impl Default for GroupReserve {
    fn default() -> Self {
        Self(3)
    }
}

impl GroupReserve {
    /// For a batch of about `bytes` bytes: its groups are at most that large, and in the usual
    /// batch (one resource and scope) about that large.
    fn for_batch_of(bytes: usize) -> Self {
        Self(varint_len(bytes as u64).clamp(2, 3))
    }
}

/// The key whose string value on a resource the index keeps.
const SERVICE_NAME: &str = "service.name";

impl Written {
    /// A resource's `service.name`: only the first one counts, as in the scan.
    fn resource_service_name(&mut self, value: ByteRange) {
        if let Some(resource) = self.index.resources.last_mut() {
            resource.service_name.get_or_insert(value);
        }
    }

    fn resource_spans_closed(&mut self, first_span: usize, closed: &Closed) {
        let scopes_end = self.index.scopes.len() as u32;
        let resource = self.index.resources.last_mut().expect("pushed when the frame opened");
        resource.scopes.end = scopes_end;
        if closed.moved != 0 {
            let moved = closed.moved;
            for range in [&mut resource.resource_field, &mut resource.resource, &mut resource.schema_url_field] {
                *range = range.shifted(moved);
            }
            resource.service_name = resource.service_name.map(|name| name.shifted(moved));
            let first_scope = resource.scopes.start as usize;
            for scope in &mut self.index.scopes[first_scope..] {
                shift_scope(scope, moved);
            }
            for span in &mut self.index.spans[first_span..] {
                shift_span(span, moved);
            }
        }
    }

    fn scope_spans_closed(&mut self, scope_position: usize, closed: &Closed) {
        let spans_end = self.index.spans.len() as u32;
        let scope = &mut self.index.scopes[scope_position];
        scope.spans.end = spans_end;
        if closed.moved != 0 {
            shift_scope(scope, closed.moved);
            let first_span = scope.spans.start as usize;
            for span in &mut self.index.spans[first_span..] {
                shift_span(span, closed.moved);
            }
        }
    }

    fn span_closed(&mut self, closed: &Closed) {
        let mut span = std::mem::take(&mut self.span);
        span.body = ByteRange::new(closed.payload.clone());
        span.name = span.name.shifted(closed.moved);
        if !(self.span_has_trace_id && self.span_has_span_id) {
            self.unindexed = true;
        }
        self.index.spans.push(span);
    }
}

fn shift_scope(scope: &mut ScopeEntry, moved: i64) {
    for range in [&mut scope.scope_field, &mut scope.scope, &mut scope.schema_url_field] {
        *range = range.shifted(moved);
    }
}

fn shift_span(span: &mut SpanEntry, moved: i64) {
    span.body = span.body.shifted(moved);
    span.name = span.name.shifted(moved);
}

impl BatchWriter {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `bytes` bytes of encoding.
    #[must_use]
    pub fn with_capacity(bytes: usize) -> Self {
        // Room in the index too: one resource and scope, as most requests have, and a span per
        // 512 bytes (spans are rarely smaller, and callers' estimates are rarely tight).
        let index = BatchIndex {
            resources: Vec::with_capacity(1),
            scopes: Vec::with_capacity(1),
            spans: Vec::with_capacity((bytes / 512).max(1)),
        };
        let group_reserve = GroupReserve::for_batch_of(bytes);
        Self { buf: Vec::with_capacity(bytes), written: Written { index, group_reserve, ..Written::default() } }
    }

    /// Appends one `ResourceSpans`.
    pub fn resource_spans<R>(&mut self, body: impl FnOnce(&mut ResourceSpansWriter<'_>) -> R) -> R {
        let index = &mut self.written.index;
        let first_scope = index.scopes.len() as u32;
        let first_span = index.spans.len();
        index.resources.push(ResourceEntry { scopes: first_scope..first_scope, ..ResourceEntry::default() });
        let frame = open(&mut self.buf, field::REQUEST_RESOURCE_SPANS, self.written.group_reserve.0);
        let result = body(&mut ResourceSpansWriter { buf: &mut self.buf, written: &mut self.written });
        let closed = close(&mut self.buf, frame);
        self.written.resource_spans_closed(first_span, &closed);
        result
    }

    /// Bytes written so far.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// The batch of what was written, with the index recorded while writing. An empty writer
    /// gives an empty batch.
    ///
    /// Strings set through the writer's methods came in as `&str` and need no check, and what the
    /// methods write is well-formed by construction, so the bytes are not scanned again: the
    /// index is the one the writer recorded, which is the one a scan gives. Only when messages
    /// were copied in encoded (validated in full, UTF-8 included) or something was written that
    /// the scan refuses (below) are the bytes scanned.
    ///
    /// # Errors
    /// Only if the caller wrote something the index refuses: a span without a trace or span id,
    /// attribute values nested deeper than [`crate::MAX_VALUE_DEPTH`], or an encoded message that
    /// is not valid.
    pub fn finish(self) -> Result<SpanBatch, ScanError> {
        let bytes = Bytes::from(self.buf);
        if self.written.verbatim {
            SpanBatch::scanned(bytes)
        } else if self.written.unindexed || bytes.len() > u32::MAX as usize {
            SpanBatch::scanned_from_writer(bytes, self.written.nested_values)
        } else {
            Ok(SpanBatch::indexed_by_writer(bytes, self.written.index))
        }
    }
}

/// Writes one `ResourceSpans`.
#[derive(Debug)]
pub struct ResourceSpansWriter<'a> {
    buf: &'a mut Vec<u8>,
    written: &'a mut Written,
}

impl ResourceSpansWriter<'_> {
    /// The entry of the `ResourceSpans` being written.
    fn entry(&mut self) -> &mut ResourceEntry {
        self.written.index.resources.last_mut().expect("pushed when the frame opened")
    }

    /// Writes the `resource`. Call at most once.
    pub fn resource<R>(&mut self, body: impl FnOnce(&mut ResourceWriter<'_>) -> R) -> R {
        let field_start = self.buf.len();
        let frame = open(self.buf, field::RESOURCE_SPANS_RESOURCE, 2);
        let result = body(&mut ResourceWriter { buf: self.buf, written: self.written });
        let closed = close(self.buf, frame);
        let entry = self.entry();
        if entry.resource_field.is_empty() {
            entry.resource_field = ByteRange::new(field_start..closed.payload.end);
            entry.resource = ByteRange::new(closed.payload);
            entry.service_name = entry.service_name.map(|name| name.shifted(closed.moved));
        } else {
            self.written.unindexed = true;
        }
        result
    }

    /// Appends one `ScopeSpans`.
    pub fn scope_spans<R>(&mut self, body: impl FnOnce(&mut ScopeSpansWriter<'_>) -> R) -> R {
        let index = &mut self.written.index;
        let scope_position = index.scopes.len();
        let resource = (index.resources.len() - 1) as u32;
        let first_span = index.spans.len() as u32;
        index.scopes.push(ScopeEntry { resource, spans: first_span..first_span, ..ScopeEntry::default() });
        let frame = open(self.buf, field::RESOURCE_SPANS_SCOPE_SPANS, self.written.group_reserve.0);
        let result = body(&mut ScopeSpansWriter { buf: self.buf, written: self.written });
        let closed = close(self.buf, frame);
        self.written.scope_spans_closed(scope_position, &closed);
        result
    }

    /// Sets `schema_url`.
    pub fn schema_url(&mut self, url: &str) -> &mut Self {
        let field_start = self.buf.len();
        put_string(self.buf, field::RESOURCE_SPANS_SCHEMA_URL, url);
        let field_end = self.buf.len();
        self.entry().schema_url_field = ByteRange::new(field_start..field_end);
        self
    }

    /// Copies an already encoded `Resource` message ([`BatchWriter::finish`] validates it).
    pub fn encoded_resource(&mut self, resource: &[u8]) -> &mut Self {
        self.written.verbatim = true;
        put_len_field(self.buf, field::RESOURCE_SPANS_RESOURCE, resource);
        self
    }
}

/// Writes a `Resource`.
#[derive(Debug)]
pub struct ResourceWriter<'a> {
    buf: &'a mut Vec<u8>,
    written: &'a mut Written,
}

impl ResourceWriter<'_> {
    /// Sets `dropped_attributes_count`.
    pub fn dropped_attributes_count(&mut self, count: u32) -> &mut Self {
        put_varint_field(self.buf, field::RESOURCE_DROPPED_ATTRIBUTES_COUNT, u64::from(count));
        self
    }

    /// Appends one `EntityRef`.
    pub fn entity_ref<R>(&mut self, body: impl FnOnce(&mut EntityRefWriter<'_>) -> R) -> R {
        nested(self.buf, field::RESOURCE_ENTITY_REFS, 1, |buf| body(&mut EntityRefWriter { buf }))
    }
}

/// Writes one `EntityRef` of a resource.
#[derive(Debug)]
pub struct EntityRefWriter<'a> {
    buf: &'a mut Vec<u8>,
}

impl EntityRefWriter<'_> {
    /// Sets `schema_url`.
    pub fn schema_url(&mut self, url: &str) -> &mut Self {
        put_string(self.buf, field::ENTITY_REF_SCHEMA_URL, url);
        self
    }

    /// Sets `type`.
    pub fn entity_type(&mut self, entity_type: &str) -> &mut Self {
        put_string(self.buf, field::ENTITY_REF_TYPE, entity_type);
        self
    }

    /// Appends one of `id_keys`.
    pub fn id_key(&mut self, key: &str) -> &mut Self {
        put_string(self.buf, field::ENTITY_REF_ID_KEYS, key);
        self
    }

    /// Appends one of `description_keys`.
    pub fn description_key(&mut self, key: &str) -> &mut Self {
        put_string(self.buf, field::ENTITY_REF_DESCRIPTION_KEYS, key);
        self
    }
}

/// Writes one `ScopeSpans`.
#[derive(Debug)]
pub struct ScopeSpansWriter<'a> {
    buf: &'a mut Vec<u8>,
    written: &'a mut Written,
}

impl ScopeSpansWriter<'_> {
    /// The entry of the `ScopeSpans` being written.
    fn entry(&mut self) -> &mut ScopeEntry {
        self.written.index.scopes.last_mut().expect("pushed when the frame opened")
    }

    /// Writes the `scope`. Call at most once.
    pub fn scope<R>(&mut self, body: impl FnOnce(&mut ScopeWriter<'_>) -> R) -> R {
        let field_start = self.buf.len();
        let frame = open(self.buf, field::SCOPE_SPANS_SCOPE, 1);
        let result = body(&mut ScopeWriter { buf: self.buf, written: self.written });
        let closed = close(self.buf, frame);
        let entry = self.entry();
        if entry.scope_field.is_empty() {
            entry.scope_field = ByteRange::new(field_start..closed.payload.end);
            entry.scope = ByteRange::new(closed.payload);
        } else {
            self.written.unindexed = true;
        }
        result
    }

    /// Appends one span.
    pub fn span<R>(&mut self, body: impl FnOnce(&mut SpanWriter<'_>) -> R) -> R {
        let written = &mut *self.written;
        let scope = (written.index.scopes.len() - 1) as u32;
        let resource = (written.index.resources.len() - 1) as u32;
        written.span = SpanEntry { scope, resource, ..SpanEntry::default() };
        written.span_has_trace_id = false;
        written.span_has_span_id = false;
        let frame = open(self.buf, field::SCOPE_SPANS_SPANS, 2);
        let result = body(&mut SpanWriter { buf: self.buf, written });
        let closed = close(self.buf, frame);
        written.span_closed(&closed);
        result
    }

    /// Appends one span that is already encoded (a `Span` message without tag or length);
    /// [`BatchWriter::finish`] validates it.
    pub fn encoded_span(&mut self, span: &[u8]) -> &mut Self {
        self.written.verbatim = true;
        put_len_field(self.buf, field::SCOPE_SPANS_SPANS, span);
        self
    }

    /// Sets `schema_url`.
    pub fn schema_url(&mut self, url: &str) -> &mut Self {
        let field_start = self.buf.len();
        put_string(self.buf, field::SCOPE_SPANS_SCHEMA_URL, url);
        let field_end = self.buf.len();
        self.entry().schema_url_field = ByteRange::new(field_start..field_end);
        self
    }
}

/// Writes an `InstrumentationScope`.
#[derive(Debug)]
pub struct ScopeWriter<'a> {
    buf: &'a mut Vec<u8>,
    written: &'a mut Written,
}

impl ScopeWriter<'_> {
    /// Sets `name`.
    pub fn name(&mut self, name: &str) -> &mut Self {
        put_string(self.buf, field::SCOPE_NAME, name);
        self
    }

    /// Sets `version`.
    pub fn version(&mut self, version: &str) -> &mut Self {
        put_string(self.buf, field::SCOPE_VERSION, version);
        self
    }

    /// Sets `dropped_attributes_count`.
    pub fn dropped_attributes_count(&mut self, count: u32) -> &mut Self {
        put_varint_field(self.buf, field::SCOPE_DROPPED_ATTRIBUTES_COUNT, u64::from(count));
        self
    }
}

/// Writes one `Span`.
#[derive(Debug)]
pub struct SpanWriter<'a> {
    buf: &'a mut Vec<u8>,
    written: &'a mut Written,
}

impl SpanWriter<'_> {
    /// Sets `trace_id`.
    pub fn trace_id(&mut self, id: &[u8; 16]) -> &mut Self {
        put_len_field(self.buf, field::SPAN_TRACE_ID, id);
        self.written.span.trace_id = *id;
        self.written.span_has_trace_id = true;
        self
    }

    /// Sets `span_id`.
    pub fn span_id(&mut self, id: &[u8; 8]) -> &mut Self {
        put_len_field(self.buf, field::SPAN_SPAN_ID, id);
        self.written.span.span_id = *id;
        self.written.span_has_span_id = true;
        self
    }

    /// Sets `trace_state`.
    pub fn trace_state(&mut self, state: &str) -> &mut Self {
        put_string(self.buf, field::SPAN_TRACE_STATE, state);
        self
    }

    /// Sets `parent_span_id`.
    pub fn parent_span_id(&mut self, id: &[u8; 8]) -> &mut Self {
        put_len_field(self.buf, field::SPAN_PARENT_SPAN_ID, id);
        self.written.span.parent_span_id = *id;
        self.written.span.has_parent = true;
        self
    }

    /// Sets `name`.
    pub fn name(&mut self, name: &str) -> &mut Self {
        put_string(self.buf, field::SPAN_NAME, name);
        let end = self.buf.len();
        self.written.span.name = ByteRange::new(end - name.len()..end);
        self
    }

    /// Sets `kind` (the `SpanKind` enum value).
    pub fn kind(&mut self, kind: i32) -> &mut Self {
        // Negative enum values are sign-extended to ten bytes, as protobuf encodes int32.
        put_varint_field(self.buf, field::SPAN_KIND, i64::from(kind) as u64);
        self.written.span.kind = kind;
        self
    }

    /// Sets `start_time_unix_nano`.
    pub fn start_time_unix_nano(&mut self, nanos: u64) -> &mut Self {
        put_fixed64(self.buf, field::SPAN_START_TIME, nanos);
        self.written.span.start_time_unix_nano = nanos;
        self
    }

    /// Sets `end_time_unix_nano`.
    pub fn end_time_unix_nano(&mut self, nanos: u64) -> &mut Self {
        put_fixed64(self.buf, field::SPAN_END_TIME, nanos);
        self.written.span.end_time_unix_nano = nanos;
        self
    }

    /// Sets `dropped_attributes_count`.
    pub fn dropped_attributes_count(&mut self, count: u32) -> &mut Self {
        put_varint_field(self.buf, field::SPAN_DROPPED_ATTRIBUTES_COUNT, u64::from(count));
        self
    }

    /// Appends one event.
    pub fn event<R>(&mut self, body: impl FnOnce(&mut EventWriter<'_>) -> R) -> R {
        let written = &mut *self.written;
        nested(self.buf, field::SPAN_EVENTS, 1, |buf| body(&mut EventWriter { buf, written }))
    }

    /// Sets `dropped_events_count`.
    pub fn dropped_events_count(&mut self, count: u32) -> &mut Self {
        put_varint_field(self.buf, field::SPAN_DROPPED_EVENTS_COUNT, u64::from(count));
        self
    }

    /// Appends one link.
    pub fn link<R>(&mut self, body: impl FnOnce(&mut LinkWriter<'_>) -> R) -> R {
        let written = &mut *self.written;
        written.link_has_trace_id = false;
        written.link_has_span_id = false;
        let result =
            nested(self.buf, field::SPAN_LINKS, 1, |buf| body(&mut LinkWriter { buf, written: &mut *written }));
        if !(written.link_has_trace_id && written.link_has_span_id) {
            written.unindexed = true;
        }
        result
    }

    /// Sets `dropped_links_count`.
    pub fn dropped_links_count(&mut self, count: u32) -> &mut Self {
        put_varint_field(self.buf, field::SPAN_DROPPED_LINKS_COUNT, u64::from(count));
        self
    }

    /// Sets `status`; an empty message and a zero code are left out, as prost does (and so a zero
    /// code keeps an earlier status's code, as repeated messages merge).
    pub fn status(&mut self, code: i32, message: &str) -> &mut Self {
        if code != 0 {
            self.written.span.status_code = code;
        }
        nested(self.buf, field::SPAN_STATUS, 1, |buf| {
            if !message.is_empty() {
                put_string(buf, field::STATUS_MESSAGE, message);
            }
            if code != 0 {
                put_varint_field(buf, field::STATUS_CODE, i64::from(code) as u64);
            }
        });
        self
    }

    /// Sets `flags`.
    pub fn flags(&mut self, flags: u32) -> &mut Self {
        put_fixed32(self.buf, field::SPAN_FLAGS, flags);
        self.written.span.flags = flags;
        self
    }
}

/// Writes one `Span.Event`.
#[derive(Debug)]
pub struct EventWriter<'a> {
    buf: &'a mut Vec<u8>,
    written: &'a mut Written,
}

impl EventWriter<'_> {
    /// Sets `time_unix_nano`.
    pub fn time_unix_nano(&mut self, nanos: u64) -> &mut Self {
        put_fixed64(self.buf, field::EVENT_TIME, nanos);
        self
    }

    /// Sets `name`.
    pub fn name(&mut self, name: &str) -> &mut Self {
        put_string(self.buf, field::EVENT_NAME, name);
        self
    }

    /// Sets `dropped_attributes_count`.
    pub fn dropped_attributes_count(&mut self, count: u32) -> &mut Self {
        put_varint_field(self.buf, field::EVENT_DROPPED_ATTRIBUTES_COUNT, u64::from(count));
        self
    }
}

/// Writes one `Span.Link`.
#[derive(Debug)]
pub struct LinkWriter<'a> {
    buf: &'a mut Vec<u8>,
    written: &'a mut Written,
}

impl LinkWriter<'_> {
    /// Sets `trace_id`.
    pub fn trace_id(&mut self, id: &[u8; 16]) -> &mut Self {
        put_len_field(self.buf, field::LINK_TRACE_ID, id);
        self.written.link_has_trace_id = true;
        self
    }

    /// Sets `span_id`.
    pub fn span_id(&mut self, id: &[u8; 8]) -> &mut Self {
        put_len_field(self.buf, field::LINK_SPAN_ID, id);
        self.written.link_has_span_id = true;
        self
    }

    /// Sets `trace_state`.
    pub fn trace_state(&mut self, state: &str) -> &mut Self {
        put_string(self.buf, field::LINK_TRACE_STATE, state);
        self
    }

    /// Sets `dropped_attributes_count`.
    pub fn dropped_attributes_count(&mut self, count: u32) -> &mut Self {
        put_varint_field(self.buf, field::LINK_DROPPED_ATTRIBUTES_COUNT, u64::from(count));
        self
    }

    /// Sets `flags`.
    pub fn flags(&mut self, flags: u32) -> &mut Self {
        put_fixed32(self.buf, field::LINK_FLAGS, flags);
        self
    }
}

/// Writes one `AnyValue`. Set exactly one value; setting none leaves the value empty.
#[derive(Debug)]
pub struct ValueWriter<'a> {
    buf: &'a mut Vec<u8>,
    written: &'a mut Written,
}

impl ValueWriter<'_> {
    /// A `string_value`.
    pub fn string(&mut self, value: &str) {
        put_string(self.buf, field::ANY_STRING, value);
    }

    /// A `bool_value`.
    pub fn bool(&mut self, value: bool) {
        put_varint_field(self.buf, field::ANY_BOOL, u64::from(value));
    }

    /// An `int_value`.
    pub fn int(&mut self, value: i64) {
        put_varint_field(self.buf, field::ANY_INT, value as u64);
    }

    /// A `double_value`.
    pub fn double(&mut self, value: f64) {
        put_fixed64(self.buf, field::ANY_DOUBLE, value.to_bits());
    }

    /// A `bytes_value`.
    pub fn bytes(&mut self, value: &[u8]) {
        put_len_field(self.buf, field::ANY_BYTES, value);
    }

    /// An `array_value`; `body` appends its elements.
    pub fn array<R>(&mut self, body: impl FnOnce(&mut ArrayWriter<'_>) -> R) -> R {
        self.nesting(|written, buf| nested(buf, field::ANY_ARRAY, 1, |buf| body(&mut ArrayWriter { buf, written })))
    }

    /// A `kvlist_value`; `body` appends its entries with the [`Attributes`] methods.
    pub fn kvlist<R>(&mut self, body: impl FnOnce(&mut KeyValueListWriter<'_>) -> R) -> R {
        self.nesting(|written, buf| {
            nested(buf, field::ANY_KVLIST, 1, |buf| body(&mut KeyValueListWriter { buf, written }))
        })
    }

    /// Writes an array or key-value list one level deeper, noting when the level is one the scan
    /// refuses (the first array or list of an attribute is level 1).
    fn nesting<R>(&mut self, write: impl FnOnce(&mut Written, &mut Vec<u8>) -> R) -> R {
        let written = &mut *self.written;
        written.nested_values = true;
        written.value_depth += 1;
        if written.value_depth >= MAX_VALUE_DEPTH {
            written.unindexed = true;
        }
        let result = write(&mut *written, self.buf);
        written.value_depth -= 1;
        result
    }
}

/// Writes the elements of an `ArrayValue`.
#[derive(Debug)]
pub struct ArrayWriter<'a> {
    buf: &'a mut Vec<u8>,
    written: &'a mut Written,
}

impl ArrayWriter<'_> {
    /// Appends one element.
    pub fn value<R>(&mut self, body: impl FnOnce(&mut ValueWriter<'_>) -> R) -> R {
        let written = &mut *self.written;
        nested(self.buf, field::LIST_VALUES, 1, |buf| body(&mut ValueWriter { buf, written }))
    }
}

/// Writes the entries of a `KeyValueList`.
#[derive(Debug)]
pub struct KeyValueListWriter<'a> {
    buf: &'a mut Vec<u8>,
    written: &'a mut Written,
}

/// Everything that holds a list of `KeyValue`s: resources, scopes, spans, events, links and
/// key-value lists. One implementation of attribute writing serves them all; each only says
/// which field number its attributes have.
pub trait Attributes {
    /// Whether these are a resource's attributes, of which the index keeps `service.name`.
    #[doc(hidden)]
    const OF_RESOURCE: bool = false;

    /// The buffer and the field number of this message's `KeyValue` list.
    #[doc(hidden)]
    fn attribute_target(&mut self) -> (&mut Vec<u8>, u32, &mut Written);

    /// Appends an attribute whose value `body` writes.
    fn attribute<R>(&mut self, key: &str, body: impl FnOnce(&mut ValueWriter<'_>) -> R) -> R {
        let (buf, number, written) = self.attribute_target();
        let frame = open(buf, number, 1);
        put_key(buf, key);
        let result =
            nested(buf, field::KEY_VALUE_VALUE, 1, |buf| body(&mut ValueWriter { buf, written: &mut *written }));
        let closed = close(buf, frame);
        if Self::OF_RESOURCE && key == SERVICE_NAME {
            // The value may be anything `body` wrote; the scan's own rules say what it yields.
            match service_name_of_key_value(buf, closed.payload) {
                Ok(Some(value)) => written.resource_service_name(value),
                Ok(None) => {}
                Err(_) => written.unindexed = true,
            }
        }
        result
    }

    /// Appends an attribute that has a key and no value message at all.
    fn attribute_without_value(&mut self, key: &str) {
        let (buf, number, _) = self.attribute_target();
        nested(buf, number, 1, |buf| put_key(buf, key));
    }

    /// Appends a string attribute.
    fn str_attribute(&mut self, key: &str, value: &str) {
        let (buf, number, written) = self.attribute_target();
        // The usual attribute (a field number under 16, key and value under 122 bytes together)
        // has one-byte tags and lengths throughout: its four headers go out as two blocks of
        // four bytes around the key, with no length to compute. The bytes are
        // `put_scalar_attribute`'s, which writes every other attribute.
        let (key_len, value_len) = (key.len(), value.len());
        if number < 16 && key_len != 0 && key_len + value_len < 0x80 - 6 {
            let any_value_len = 2 + value_len;
            let key_value_len = 2 + key_len + 2 + any_value_len;
            buf.reserve(2 + key_value_len);
            buf.extend_from_slice(&[
                short_len_tag(number),
                key_value_len as u8,
                short_len_tag(field::KEY_VALUE_KEY),
                key_len as u8,
            ]);
            buf.extend_from_slice(key.as_bytes());
            buf.extend_from_slice(&[
                short_len_tag(field::KEY_VALUE_VALUE),
                any_value_len as u8,
                short_len_tag(field::ANY_STRING),
                value_len as u8,
            ]);
            buf.extend_from_slice(value.as_bytes());
        } else {
            put_scalar_attribute(buf, number, key, len_field_size(value_len), |buf| {
                put_string(buf, field::ANY_STRING, value);
            });
        }
        if Self::OF_RESOURCE && key == SERVICE_NAME {
            let end = buf.len();
            written.resource_service_name(ByteRange::new(end - value.len()..end));
        }
    }

    /// Appends an integer attribute.
    fn int_attribute(&mut self, key: &str, value: i64) {
        let (buf, number, _) = self.attribute_target();
        put_scalar_attribute(buf, number, key, 1 + varint_len(value as u64), |buf| {
            put_varint_field(buf, field::ANY_INT, value as u64);
        });
    }

    /// Appends a boolean attribute.
    fn bool_attribute(&mut self, key: &str, value: bool) {
        let (buf, number, _) = self.attribute_target();
        put_scalar_attribute(buf, number, key, 2, |buf| put_varint_field(buf, field::ANY_BOOL, u64::from(value)));
    }

    /// Appends a floating-point attribute.
    fn double_attribute(&mut self, key: &str, value: f64) {
        let (buf, number, _) = self.attribute_target();
        put_scalar_attribute(buf, number, key, 9, |buf| put_fixed64(buf, field::ANY_DOUBLE, value.to_bits()));
    }

    /// Appends a bytes attribute.
    fn bytes_attribute(&mut self, key: &str, value: &[u8]) {
        let (buf, number, _) = self.attribute_target();
        put_scalar_attribute(buf, number, key, len_field_size(value.len()), |buf| {
            put_len_field(buf, field::ANY_BYTES, value);
        });
    }
}

/// Appends a `KeyValue` whose `AnyValue` holds one scalar field of `value_size` bytes (its
/// one-byte tag included), written by `put_value`. Every length is known before anything is
/// written, so no frame is reserved and nothing is moved: the bytes are those [`nested`] frames
/// would give, without their bookkeeping, which is most of the cost of a short attribute.
#[inline]
fn put_scalar_attribute(
    buf: &mut Vec<u8>,
    number: u32,
    key: &str,
    value_size: usize,
    put_value: impl FnOnce(&mut Vec<u8>),
) {
    let key_size = if key.is_empty() { 0 } else { len_field_size(key.len()) };
    let key_value_len = key_size + len_field_size(value_size);
    // The usual attribute (a field number under 16, key and value under 128 bytes together) has
    // one-byte tags and lengths: its room is reserved once and its headers written as blocks.
    if number < 16 && key_value_len < 0x80 && !key.is_empty() {
        buf.reserve(2 + key_value_len);
        buf.extend_from_slice(&[short_len_tag(number), key_value_len as u8]);
        buf.extend_from_slice(&[short_len_tag(field::KEY_VALUE_KEY), key.len() as u8]);
        buf.extend_from_slice(key.as_bytes());
        buf.extend_from_slice(&[short_len_tag(field::KEY_VALUE_VALUE), value_size as u8]);
        put_value(buf);
        return;
    }
    put_len_header(buf, number, key_value_len);
    put_key(buf, key);
    put_len_header(buf, field::KEY_VALUE_VALUE, value_size);
    put_value(buf);
}

/// The one-byte tag of length-delimited field `number` (under 16).
const fn short_len_tag(number: u32) -> u8 {
    ((number << 3) | WireType::Len.bits() as u32) as u8
}

/// An empty key is proto3's default and left out, as every protobuf encoder does.
fn put_key(buf: &mut Vec<u8>, key: &str) {
    if !key.is_empty() {
        put_string(buf, field::KEY_VALUE_KEY, key);
    }
}

macro_rules! attributes_at {
    ($($writer:ident => $number:expr),* $(,)?) => {$(
        impl Attributes for $writer<'_> {
            fn attribute_target(&mut self) -> (&mut Vec<u8>, u32, &mut Written) {
                (self.buf, $number, self.written)
            }
        }
    )*};
}

/// Writes `Span.attributes` fields (field 9: tag, length, `KeyValue`) into a caller's buffer,
/// outside any span.
///
/// Why: a plugin that rewrites a span's attributes hands the host the new run of attribute fields
/// alone (`ProcessorOutput::replace_attributes` in the plugin ABI), which the host splices into
/// the span in place of the old ones. This writes that run with the same [`Attributes`] methods,
/// and so the same bytes, as a [`SpanWriter`] writes inside a span. Nothing here is checked: the
/// receiving side validates the run before using it.
#[derive(Debug)]
pub struct SpanAttributesWriter<'a> {
    buf: &'a mut Vec<u8>,
    written: Written,
}

impl<'a> SpanAttributesWriter<'a> {
    /// A writer that appends to `buf`.
    #[must_use]
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Self { buf, written: Written::default() }
    }
}

impl Attributes for ResourceWriter<'_> {
    const OF_RESOURCE: bool = true;

    fn attribute_target(&mut self) -> (&mut Vec<u8>, u32, &mut Written) {
        (self.buf, field::RESOURCE_ATTRIBUTES, self.written)
    }
}

attributes_at! {
    ScopeWriter => field::SCOPE_ATTRIBUTES,
    SpanWriter => field::SPAN_ATTRIBUTES,
    EventWriter => field::EVENT_ATTRIBUTES,
    LinkWriter => field::LINK_ATTRIBUTES,
    KeyValueListWriter => field::LIST_VALUES,
}

impl Attributes for SpanAttributesWriter<'_> {
    fn attribute_target(&mut self) -> (&mut Vec<u8>, u32, &mut Written) {
        (self.buf, field::SPAN_ATTRIBUTES, &mut self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_moves_body_when_reservation_is_too_small_or_too_large() {
        for (reserved, body_len) in [(1, 0), (1, 127), (1, 128), (1, 20_000), (3, 5), (2, 300), (3, 3_000_000)] {
            let mut buf = vec![0xAA];
            let frame = open(&mut buf, 1, reserved);
            buf.extend(std::iter::repeat_n(7u8, body_len));
            close(&mut buf, frame);
            let mut expected = vec![0xAA];
            put_len_field(&mut expected, 1, &vec![7u8; body_len]);
            assert_eq!(buf, expected, "reserved {reserved}, body {body_len}");
        }
    }

    /// Attributes of a span, an event and a link, every value type, one key-value list `depth`
    /// levels deep when `depth` is not 0.
    fn batch_with_attributes(depth: usize) -> Result<SpanBatch, ScanError> {
        fn deep(v: &mut ValueWriter<'_>, depth: usize) {
            if depth == 0 {
                v.string("leaf");
            } else {
                v.kvlist(|l| l.attribute("inner", |v| deep(v, depth - 1)));
            }
        }
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.resource(|r| r.str_attribute("service.name", "checkout"));
            rs.scope_spans(|ss| {
                ss.span(|s| {
                    s.trace_id(&[1; 16]).span_id(&[2; 8]).name("GET /cart");
                    s.str_attribute("s", "v");
                    s.int_attribute("i", -1);
                    s.bool_attribute("b", true);
                    s.double_attribute("d", 0.5);
                    s.bytes_attribute("y", b"\xff");
                    s.attribute("generic", |v| v.string("framed"));
                    s.attribute_without_value("none");
                    if depth > 0 {
                        s.attribute("deep", |v| deep(v, depth));
                    }
                    s.event(|e| {
                        e.name("e").str_attribute("k", "v");
                    });
                    s.link(|l| {
                        l.trace_id(&[3; 16]).span_id(&[4; 8]).int_attribute("n", 7);
                    });
                });
            });
        });
        writer.finish()
    }

    /// The writer's scan steps over attributes it vouches for, and walks them when a nested
    /// value was written: values too deep are refused as from outside, and either way the index
    /// is the one a full scan of the same bytes gives.
    #[test]
    fn finish_trusts_scalar_attributes_and_checks_nested_ones() {
        for depth in [0, 3, crate::MAX_VALUE_DEPTH - 2, crate::MAX_VALUE_DEPTH - 1] {
            let batch = batch_with_attributes(depth).expect("within the depth limit");
            let scanned = SpanBatch::decode(batch.bytes().clone()).expect("the writer's output scans");
            assert_eq!(batch.index(), scanned.index(), "depth {depth}");
        }
        let error = batch_with_attributes(crate::MAX_VALUE_DEPTH).expect_err("too deep");
        assert_eq!(error.kind, crate::ScanErrorKind::TooDeep { limit: crate::MAX_VALUE_DEPTH });
    }

    /// The index the writer records is the one a scan of its bytes builds, also when frames close
    /// with a length prefix other than the one reserved (and their bodies, with every offset
    /// recorded inside, move), and whichever way `service.name` was written.
    #[test]
    fn recorded_index_is_the_scanned_index_whatever_moves() {
        // Below 128, around 16 KiB and past it: one-, two- and three-byte length prefixes.
        for len in [0, 1, 127, 128, 16_300, 16_400, 20_000] {
            let long = "x".repeat(len);
            let mut writer = BatchWriter::new();
            for resource in 0..2 {
                writer.resource_spans(|rs| {
                    rs.resource(|r| {
                        r.int_attribute("service.name", 1);
                        r.str_attribute("padding", &long);
                        if resource == 0 {
                            r.str_attribute("service.name", "first");
                        } else {
                            r.attribute("service.name", |v| v.kvlist(|l| l.str_attribute("service.name", "inner")));
                            r.attribute("service.name", |v| v.string(&long));
                        }
                        r.str_attribute("service.name", "second");
                    });
                    for scope in 0..2 {
                        rs.scope_spans(|ss| {
                            if scope == 1 {
                                ss.scope(|s| {
                                    s.name(&long).version("1");
                                });
                            }
                            for span in 0..3 {
                                ss.span(|s| {
                                    s.trace_id(&[1; 16]).span_id(&[span; 8]).name(&long).kind(-1);
                                    if span > 0 {
                                        s.parent_span_id(&[span - 1; 8]);
                                    }
                                    s.start_time_unix_nano(5).end_time_unix_nano(6).flags(0x301);
                                    s.str_attribute("a", &long);
                                    s.status(2, "bad").status(0, &long);
                                });
                            }
                            ss.schema_url("s1").schema_url(&long);
                        });
                    }
                    rs.schema_url(&long);
                });
            }
            let batch = writer.finish().expect("a valid batch");
            let scanned = SpanBatch::decode(batch.bytes().clone()).expect("the writer's output scans");
            assert_eq!(batch.index(), scanned.index(), "length {len}");
            assert_eq!(batch.span(0).unwrap().service_name(), Some("first"));
            assert_eq!(batch.span(6).unwrap().service_name(), Some(long.as_str()));
        }
    }

    /// What the scan refuses, the writer leaves to the scan: `finish` reports the same fault a
    /// scan of the same bytes does.
    #[test]
    fn finish_refuses_what_the_scan_refuses() {
        fn span_without_trace_id(ss: &mut ScopeSpansWriter<'_>) {
            ss.span(|s| {
                s.span_id(&[2; 8]);
            });
        }
        fn link_without_trace_id(ss: &mut ScopeSpansWriter<'_>) {
            ss.span(|s| {
                s.trace_id(&[1; 16]).span_id(&[2; 8]);
                s.link(|l| {
                    l.span_id(&[3; 8]);
                });
            });
        }
        fn scope_twice(ss: &mut ScopeSpansWriter<'_>) {
            for name in ["a", "b"] {
                ss.scope(|s| {
                    s.name(name);
                });
            }
        }
        fn resource_twice(rs: &mut ResourceSpansWriter<'_>) {
            for name in ["a", "b"] {
                rs.resource(|r| r.str_attribute("service.name", name));
            }
        }
        let in_scope: [fn(&mut ScopeSpansWriter<'_>); 3] = [span_without_trace_id, link_without_trace_id, scope_twice];
        let mut writers: Vec<BatchWriter> = in_scope
            .into_iter()
            .map(|write| {
                let mut writer = BatchWriter::new();
                writer.resource_spans(|rs| rs.scope_spans(write));
                writer
            })
            .collect();
        let mut writer = BatchWriter::new();
        writer.resource_spans(resource_twice);
        writers.push(writer);
        for (case, writer) in writers.into_iter().enumerate() {
            let scanned = SpanBatch::scanned(Bytes::from(writer.buf.clone())).expect_err("the scan refuses it");
            assert_eq!(writer.finish().expect_err("refused"), scanned, "case {case}");
        }
    }

    /// The scalar attribute methods compute their lengths up front; they must give exactly the
    /// bytes of the framed path ([`Attributes::attribute`]), at every varint length boundary.
    #[test]
    fn scalar_attributes_match_the_framed_encoding() {
        fn framed(body: impl FnOnce(&mut SpanWriter<'_>)) -> Vec<u8> {
            let mut buf = Vec::new();
            body(&mut SpanWriter { buf: &mut buf, written: &mut Written::default() });
            buf
        }
        // 121 and 122 bytes of key and value together straddle the one-byte-header form.
        let lengths = [0, 1, 21, 22, 100, 115, 116, 117, 120, 121, 122, 127, 128, 200, 16_370, 16_400, 20_000];
        for key_len in lengths {
            let key = "k".repeat(key_len);
            for value_len in lengths {
                let value = "v".repeat(value_len);
                assert_eq!(
                    framed(|s| s.str_attribute(&key, &value)),
                    framed(|s| s.attribute(&key, |v| v.string(&value))),
                    "string, key {key_len}, value {value_len}"
                );
                assert_eq!(
                    framed(|s| s.bytes_attribute(&key, value.as_bytes())),
                    framed(|s| s.attribute(&key, |v| v.bytes(value.as_bytes()))),
                    "bytes, key {key_len}, value {value_len}"
                );
            }
            for int in [0, 1, 127, 128, -1, i64::MIN, i64::MAX] {
                assert_eq!(
                    framed(|s| s.int_attribute(&key, int)),
                    framed(|s| s.attribute(&key, |v| v.int(int))),
                    "int {int}, key {key_len}"
                );
            }
            for bool in [false, true] {
                assert_eq!(framed(|s| s.bool_attribute(&key, bool)), framed(|s| s.attribute(&key, |v| v.bool(bool))));
            }
            assert_eq!(framed(|s| s.double_attribute(&key, 2.5)), framed(|s| s.attribute(&key, |v| v.double(2.5))));
        }
    }
    /// A run of attributes written alone is byte for byte what a span writer writes for them.
    #[test]
    fn span_attributes_writer_writes_what_a_span_writer_writes() {
        let mut alone = vec![0xEE];
        let mut run = SpanAttributesWriter::new(&mut alone);
        run.str_attribute("user.email", "***");
        run.int_attribute("n", -3);
        run.attribute("list", |v| v.array(|a| a.value(|v| v.bool(true))));
        let mut in_span = Vec::new();
        let mut span = SpanWriter { buf: &mut in_span, written: &mut Written::default() };
        span.str_attribute("user.email", "***");
        span.int_attribute("n", -3);
        span.attribute("list", |v| v.array(|a| a.value(|v| v.bool(true))));
        assert_eq!(alone[0], 0xEE, "appends, never overwrites");
        assert_eq!(alone[1..], in_span[..]);
        assert_eq!(alone[1], (field::SPAN_ATTRIBUTES << 3 | 2) as u8);
    }
}
