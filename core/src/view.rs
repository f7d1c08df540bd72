//! Borrowed views over a batch: indexed fields come from the index, everything else is read on
//! demand from the span's own bytes.
//!
//! The views never allocate and never fail. They may assume well-formed bytes because a
//! [`SpanBatch`] is only ever built by the validating scan or from slices of batches that passed
//! it; should that assumption ever break, iteration stops early instead of panicking.

use std::ops::Range;

use crate::batch::{field, ByteRange, ResourceEntry, ScopeEntry, SpanBatch, SpanEntry};
use crate::wire::{decode_varint, FieldValue, Reader};

/// OTLP `Span.SpanKind`. Unknown values are kept, not rejected: a newer client may send them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// `SPAN_KIND_UNSPECIFIED` (0).
    Unspecified,
    /// `SPAN_KIND_INTERNAL` (1).
    Internal,
    /// `SPAN_KIND_SERVER` (2).
    Server,
    /// `SPAN_KIND_CLIENT` (3).
    Client,
    /// `SPAN_KIND_PRODUCER` (4).
    Producer,
    /// `SPAN_KIND_CONSUMER` (5).
    Consumer,
    /// A value this version does not know.
    Other(i32),
}

impl SpanKind {
    /// From the protobuf enum value.
    #[must_use]
    pub fn from_i32(value: i32) -> Self {
        match value {
            0 => Self::Unspecified,
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            other => Self::Other(other),
        }
    }

    /// The protobuf enum value.
    #[must_use]
    pub fn as_i32(self) -> i32 {
        match self {
            Self::Unspecified => 0,
            Self::Internal => 1,
            Self::Server => 2,
            Self::Client => 3,
            Self::Producer => 4,
            Self::Consumer => 5,
            Self::Other(other) => other,
        }
    }
}

/// OTLP `Status.StatusCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// `STATUS_CODE_UNSET` (0).
    Unset,
    /// `STATUS_CODE_OK` (1).
    Ok,
    /// `STATUS_CODE_ERROR` (2).
    Error,
    /// A value this version does not know.
    Other(i32),
}

impl StatusCode {
    /// From the protobuf enum value.
    #[must_use]
    pub fn from_i32(value: i32) -> Self {
        match value {
            0 => Self::Unset,
            1 => Self::Ok,
            2 => Self::Error,
            other => Self::Other(other),
        }
    }

    /// The protobuf enum value.
    #[must_use]
    pub fn as_i32(self) -> i32 {
        match self {
            Self::Unset => 0,
            Self::Ok => 1,
            Self::Error => 2,
            Self::Other(other) => other,
        }
    }
}

/// Reads a validated string. The scan checked UTF-8 for every string field the views read, so
/// this only fails if that invariant is broken, in which case the string reads as empty.
fn str_at(data: &[u8], range: Range<usize>) -> &str {
    let bytes = data.get(range).unwrap_or_default();
    debug_assert!(std::str::from_utf8(bytes).is_ok(), "view read a string the scan did not validate");
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// The fields of one message, filtered to one field number.
#[derive(Clone, Debug)]
struct FieldsNumbered<'a> {
    reader: Reader<'a>,
    number: u32,
}

impl<'a> FieldsNumbered<'a> {
    fn new(data: &'a [u8], body: Range<usize>, number: u32) -> Self {
        Self { reader: Reader::new(data, body), number }
    }
}

impl Iterator for FieldsNumbered<'_> {
    type Item = FieldValue;

    fn next(&mut self) -> Option<FieldValue> {
        loop {
            let field = self.reader.next_field().ok()??;
            if field.number == self.number {
                return Some(field.value);
            }
        }
    }
}

/// The last occurrence of a field in a message (protobuf's rule for singular fields).
fn last_field(data: &[u8], body: Range<usize>, number: u32) -> Option<FieldValue> {
    FieldsNumbered::new(data, body, number).last()
}

fn last_string(data: &[u8], body: Range<usize>, number: u32) -> &str {
    match last_field(data, body, number) {
        Some(FieldValue::Len(range)) => str_at(data, range),
        _ => "",
    }
}

fn last_varint(data: &[u8], body: Range<usize>, number: u32) -> u64 {
    match last_field(data, body, number) {
        Some(FieldValue::Varint(value)) => value,
        _ => 0,
    }
}

fn last_len(data: &[u8], body: Range<usize>, number: u32) -> Option<Range<usize>> {
    match last_field(data, body, number) {
        Some(FieldValue::Len(range)) => Some(range),
        _ => None,
    }
}

/// One span of a batch.
#[derive(Clone, Copy, Debug)]
pub struct SpanView<'a> {
    batch: &'a SpanBatch,
    entry: &'a SpanEntry,
    position: usize,
}

impl SpanBatch {
    /// The span at `position` in wire order, if there is one.
    #[must_use]
    pub fn span(&self, position: usize) -> Option<SpanView<'_>> {
        self.index.spans.get(position).map(|entry| SpanView { batch: self, entry, position })
    }

    /// All spans in wire order.
    pub fn spans(&self) -> impl ExactSizeIterator<Item = SpanView<'_>> + '_ {
        self.index.spans.iter().enumerate().map(move |(position, entry)| SpanView { batch: self, entry, position })
    }

    /// The resource at `position`, if there is one.
    #[must_use]
    pub fn resource(&self, position: usize) -> Option<ResourceView<'_>> {
        self.index.resources.get(position).map(|entry| ResourceView { batch: self, data: &self.bytes, entry })
    }

    /// All resources in wire order (including resources without spans).
    pub fn resources(&self) -> impl ExactSizeIterator<Item = ResourceView<'_>> + '_ {
        self.index.resources.iter().map(move |entry| ResourceView { batch: self, data: &self.bytes, entry })
    }

    /// The scope at `position`, if there is one.
    #[must_use]
    pub fn scope(&self, position: usize) -> Option<ScopeView<'_>> {
        self.index.scopes.get(position).map(|entry| ScopeView { batch: self, entry })
    }
}

impl<'a> SpanView<'a> {
    fn data(&self) -> &'a [u8] {
        &self.batch.bytes
    }

    fn body(&self) -> Range<usize> {
        self.entry.body.range()
    }

    /// Position of this span in its batch.
    #[must_use]
    pub fn position(&self) -> usize {
        self.position
    }

    /// The span's encoded `Span` message, without tag or length prefix.
    #[must_use]
    pub fn encoded(&self) -> &'a [u8] {
        &self.data()[self.body()]
    }

    /// Byte range of the encoded span inside the batch.
    #[must_use]
    pub fn byte_range(&self) -> ByteRange {
        self.entry.body
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
        self.entry.has_parent.then_some(&self.entry.parent_span_id)
    }

    /// The span name.
    #[must_use]
    pub fn name(&self) -> &'a str {
        str_at(self.data(), self.entry.name.range())
    }

    /// Byte range of the name's text inside the batch (`0..0` when the span has none), for code
    /// that hands the batch's bytes on by offset, such as the plugin ABI's span table.
    #[must_use]
    pub fn name_range(&self) -> ByteRange {
        self.entry.name
    }

    /// The span kind.
    #[must_use]
    pub fn kind(&self) -> SpanKind {
        SpanKind::from_i32(self.entry.kind)
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

    /// The status code.
    #[must_use]
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_i32(self.entry.status_code)
    }

    /// W3C trace flags and the OTLP "has remote parent" bits.
    #[must_use]
    pub fn flags(&self) -> u32 {
        self.entry.flags
    }

    /// The `service.name` of the span's resource.
    #[must_use]
    pub fn service_name(&self) -> Option<&'a str> {
        self.resource().service_name()
    }

    /// The resource the span belongs to.
    #[must_use]
    pub fn resource(&self) -> ResourceView<'a> {
        let entry = &self.batch.index.resources[self.entry.resource as usize];
        ResourceView { batch: self.batch, data: self.data(), entry }
    }

    /// The instrumentation scope the span belongs to.
    #[must_use]
    pub fn scope(&self) -> ScopeView<'a> {
        ScopeView { batch: self.batch, entry: &self.batch.index.scopes[self.entry.scope as usize] }
    }

    /// Index of the span's resource in the batch.
    #[must_use]
    pub fn resource_position(&self) -> usize {
        self.entry.resource as usize
    }

    /// Index of the span's scope in the batch.
    #[must_use]
    pub fn scope_position(&self) -> usize {
        self.entry.scope as usize
    }

    /// The W3C `tracestate` header value.
    #[must_use]
    pub fn trace_state(&self) -> &'a str {
        last_string(self.data(), self.body(), field::SPAN_TRACE_STATE)
    }

    /// The span's attributes, in wire order.
    #[must_use]
    pub fn attributes(&self) -> KeyValues<'a> {
        KeyValues::new(self.data(), self.body(), field::SPAN_ATTRIBUTES)
    }

    /// How many attributes the client dropped.
    #[must_use]
    pub fn dropped_attributes_count(&self) -> u32 {
        last_varint(self.data(), self.body(), field::SPAN_DROPPED_ATTRIBUTES_COUNT) as u32
    }

    /// The span's events, in wire order.
    #[must_use]
    pub fn events(&self) -> Events<'a> {
        Events { data: self.data(), fields: FieldsNumbered::new(self.data(), self.body(), field::SPAN_EVENTS) }
    }

    /// How many events the client dropped.
    #[must_use]
    pub fn dropped_events_count(&self) -> u32 {
        last_varint(self.data(), self.body(), field::SPAN_DROPPED_EVENTS_COUNT) as u32
    }

    /// The span's links, in wire order.
    #[must_use]
    pub fn links(&self) -> Links<'a> {
        Links { data: self.data(), fields: FieldsNumbered::new(self.data(), self.body(), field::SPAN_LINKS) }
    }

    /// How many links the client dropped.
    #[must_use]
    pub fn dropped_links_count(&self) -> u32 {
        last_varint(self.data(), self.body(), field::SPAN_DROPPED_LINKS_COUNT) as u32
    }

    /// Whether the span carries a `status` message at all (as opposed to an implicit unset one).
    #[must_use]
    pub fn has_status(&self) -> bool {
        last_len(self.data(), self.body(), field::SPAN_STATUS).is_some()
    }

    /// The status message. Should a request carry `status` twice, the messages merge as protobuf
    /// says: the last `message` set in any of them wins.
    #[must_use]
    pub fn status_message(&self) -> &'a str {
        let data = self.data();
        FieldsNumbered::new(data, self.body(), field::SPAN_STATUS)
            .filter_map(|status| match status {
                FieldValue::Len(range) => last_field(data, range, field::STATUS_MESSAGE),
                _ => None,
            })
            .last()
            .map_or("", |message| match message {
                FieldValue::Len(range) => str_at(data, range),
                _ => "",
            })
    }

    /// Every field of the span that the index does not hold, read in one walk over the span's
    /// bytes: trace state, dropped counts, status, and where its attributes, events and links lie.
    ///
    /// Each of the single-field accessors ([`Self::trace_state`], [`Self::dropped_events_count`],
    /// …) walks the whole span; code that needs several of them, such as an encoder writing the
    /// whole span, asks once here instead. The values are the same as those accessors give,
    /// with protobuf's rules: the last occurrence of a scalar field wins, and repeated `status`
    /// messages merge (the last `message` set in any of them wins; the code is the index's).
    #[must_use]
    pub fn details(&self) -> SpanDetails<'a> {
        let data = self.data();
        let mut details = SpanDetails {
            data,
            trace_state: "",
            dropped_attributes_count: 0,
            dropped_events_count: 0,
            dropped_links_count: 0,
            status: None,
            attributes: ByteRange::default(),
            events: ByteRange::default(),
            links: ByteRange::default(),
        };
        let mut has_status = false;
        let mut message = "";
        let mut reader = Reader::new(data, self.body());
        while let Ok(Some(field)) = reader.next_field() {
            match field.number {
                field::SPAN_ATTRIBUTES => cover(&mut details.attributes, field.start, &field.value),
                field::SPAN_EVENTS => cover(&mut details.events, field.start, &field.value),
                field::SPAN_LINKS => cover(&mut details.links, field.start, &field.value),
                field::SPAN_TRACE_STATE => details.trace_state = string_value(data, field.value),
                field::SPAN_DROPPED_ATTRIBUTES_COUNT => details.dropped_attributes_count = u32_value(field.value),
                field::SPAN_DROPPED_EVENTS_COUNT => details.dropped_events_count = u32_value(field.value),
                field::SPAN_DROPPED_LINKS_COUNT => details.dropped_links_count = u32_value(field.value),
                field::SPAN_STATUS => match field.value {
                    FieldValue::Len(status) => {
                        has_status = true;
                        if let Some(last) = last_field(data, status, field::STATUS_MESSAGE) {
                            message = string_value(data, last);
                        }
                    }
                    _ => has_status = false,
                },
                _ => {}
            }
        }
        details.status = has_status.then(|| SpanStatus { code: self.status_code(), message });
        details
    }
}

/// A string field's value; a field of another wire type (which the scan never lets through) reads
/// as the empty string, as the single-field accessors read it.
fn string_value(data: &[u8], value: FieldValue) -> &str {
    match value {
        FieldValue::Len(range) => str_at(data, range),
        _ => "",
    }
}

/// A `uint32` field's value, truncated as protobuf truncates; another wire type reads as zero.
fn u32_value(value: FieldValue) -> u32 {
    match value {
        FieldValue::Varint(value) => value as u32,
        _ => 0,
    }
}

/// Grows `stretch`, the bytes that hold every occurrence so far of a repeated message field, to
/// take in one more: the field whose tag starts at `start` and whose value is `value`. An empty
/// range means "none yet" (a field takes at least its tag byte).
fn cover(stretch: &mut ByteRange, start: usize, value: &FieldValue) {
    let FieldValue::Len(payload) = value else { return };
    if stretch.is_empty() {
        *stretch = ByteRange::new(start..payload.end);
    } else {
        stretch.end = payload.end as u32;
    }
}

/// A span's `status`, as [`SpanDetails`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanStatus<'a> {
    /// The status code (the index's, with protobuf's merge of repeated statuses).
    pub code: StatusCode,
    /// The status message.
    pub message: &'a str,
}

/// The fields of a span that the index does not hold, from one walk over its bytes
/// ([`SpanView::details`]).
///
/// Besides the scalars, it knows the stretch of the span's bytes from its first attribute to its
/// last (likewise for events and links), so iterating them from here skips the rest of the span.
/// Encoders write fields in field-number order, so each stretch usually holds nothing else.
#[derive(Clone, Copy, Debug)]
pub struct SpanDetails<'a> {
    data: &'a [u8],
    /// The W3C `tracestate` header value (`""` when absent).
    pub trace_state: &'a str,
    /// How many attributes the client dropped.
    pub dropped_attributes_count: u32,
    /// How many events the client dropped.
    pub dropped_events_count: u32,
    /// How many links the client dropped.
    pub dropped_links_count: u32,
    /// The status, `None` when the span carries no `status` message (an implicit unset one).
    pub status: Option<SpanStatus<'a>>,
    /// From the first `attributes` field (tag included) to the end of the last; `0..0` for none.
    attributes: ByteRange,
    events: ByteRange,
    links: ByteRange,
}

impl<'a> SpanDetails<'a> {
    /// The span's attributes, in wire order (as [`SpanView::attributes`]).
    #[must_use]
    pub fn attributes(&self) -> KeyValues<'a> {
        KeyValues::new(self.data, self.attributes.range(), field::SPAN_ATTRIBUTES)
    }

    /// The span's events, in wire order (as [`SpanView::events`]).
    #[must_use]
    pub fn events(&self) -> Events<'a> {
        Events { data: self.data, fields: FieldsNumbered::new(self.data, self.events.range(), field::SPAN_EVENTS) }
    }

    /// The span's links, in wire order (as [`SpanView::links`]).
    #[must_use]
    pub fn links(&self) -> Links<'a> {
        Links { data: self.data, fields: FieldsNumbered::new(self.data, self.links.range(), field::SPAN_LINKS) }
    }
}

/// The resource of one `ResourceSpans`.
#[derive(Clone, Copy, Debug)]
pub struct ResourceView<'a> {
    batch: &'a SpanBatch,
    data: &'a [u8],
    entry: &'a ResourceEntry,
}

impl<'a> ResourceView<'a> {
    /// The scopes of this `ResourceSpans`, in wire order (including scopes without spans).
    pub fn scopes(&self) -> impl ExactSizeIterator<Item = ScopeView<'a>> + 'a {
        let batch = self.batch;
        let range = self.entry.scopes.start as usize..self.entry.scopes.end as usize;
        batch.index.scopes[range].iter().map(move |entry| ScopeView { batch, entry })
    }

    /// Whether the request carried a `resource` message (proto3 lets it be absent).
    #[must_use]
    pub fn is_present(&self) -> bool {
        !self.entry.resource_field.is_empty()
    }

    /// The first `service.name` attribute with a string value.
    #[must_use]
    pub fn service_name(&self) -> Option<&'a str> {
        self.entry.service_name.map(|range| str_at(self.data, range.range()))
    }

    /// Resource attributes.
    #[must_use]
    pub fn attributes(&self) -> KeyValues<'a> {
        KeyValues::new(self.data, self.entry.resource.range(), field::RESOURCE_ATTRIBUTES)
    }

    /// How many resource attributes the client dropped.
    #[must_use]
    pub fn dropped_attributes_count(&self) -> u32 {
        last_varint(self.data, self.entry.resource.range(), field::RESOURCE_DROPPED_ATTRIBUTES_COUNT) as u32
    }

    /// The `ResourceSpans.schema_url`.
    #[must_use]
    pub fn schema_url(&self) -> &'a str {
        last_string(self.data, self.entry.schema_url_field.range(), field::RESOURCE_SPANS_SCHEMA_URL)
    }

    /// The resource's entity references (`Resource.entity_refs`).
    #[must_use]
    pub fn entity_refs(&self) -> EntityRefs<'a> {
        EntityRefs {
            data: self.data,
            fields: FieldsNumbered::new(self.data, self.entry.resource.range(), field::RESOURCE_ENTITY_REFS),
        }
    }

    /// The encoded `Resource` message.
    #[must_use]
    pub fn encoded(&self) -> &'a [u8] {
        &self.data[self.entry.resource.range()]
    }

    /// Byte range of the encoded `Resource` message inside the batch (`0..0` when the request
    /// has none), for code that hands the batch's bytes on by offset.
    #[must_use]
    pub fn byte_range(&self) -> ByteRange {
        self.entry.resource
    }
}

/// The instrumentation scope of one `ScopeSpans`.
#[derive(Clone, Copy, Debug)]
pub struct ScopeView<'a> {
    batch: &'a SpanBatch,
    entry: &'a ScopeEntry,
}

impl<'a> ScopeView<'a> {
    fn data(&self) -> &'a [u8] {
        &self.batch.bytes
    }

    /// The spans of this `ScopeSpans`, in wire order.
    pub fn spans(&self) -> impl ExactSizeIterator<Item = SpanView<'a>> + 'a {
        let batch = self.batch;
        let range = self.entry.spans.start as usize..self.entry.spans.end as usize;
        let first = range.start;
        batch.index.spans[range].iter().enumerate().map(move |(i, entry)| SpanView {
            batch,
            entry,
            position: first + i,
        })
    }

    /// Whether the request carried a `scope` message.
    #[must_use]
    pub fn is_present(&self) -> bool {
        !self.entry.scope_field.is_empty()
    }

    /// Byte range of the encoded `InstrumentationScope` message inside the batch (`0..0` when
    /// the request has none), for code that hands the batch's bytes on by offset.
    #[must_use]
    pub fn byte_range(&self) -> ByteRange {
        self.entry.scope
    }

    /// Scope name.
    #[must_use]
    pub fn name(&self) -> &'a str {
        last_string(self.data(), self.entry.scope.range(), field::SCOPE_NAME)
    }

    /// Scope version.
    #[must_use]
    pub fn version(&self) -> &'a str {
        last_string(self.data(), self.entry.scope.range(), field::SCOPE_VERSION)
    }

    /// Scope attributes.
    #[must_use]
    pub fn attributes(&self) -> KeyValues<'a> {
        KeyValues::new(self.data(), self.entry.scope.range(), field::SCOPE_ATTRIBUTES)
    }

    /// How many scope attributes the client dropped.
    #[must_use]
    pub fn dropped_attributes_count(&self) -> u32 {
        last_varint(self.data(), self.entry.scope.range(), field::SCOPE_DROPPED_ATTRIBUTES_COUNT) as u32
    }

    /// The `ScopeSpans.schema_url`.
    #[must_use]
    pub fn schema_url(&self) -> &'a str {
        last_string(self.data(), self.entry.schema_url_field.range(), field::SCOPE_SPANS_SCHEMA_URL)
    }

    /// The resource this scope belongs to.
    #[must_use]
    pub fn resource(&self) -> ResourceView<'a> {
        let entry = &self.batch.index.resources[self.entry.resource as usize];
        ResourceView { batch: self.batch, data: self.data(), entry }
    }

    /// Index of the scope's resource in the batch.
    #[must_use]
    pub fn resource_position(&self) -> usize {
        self.entry.resource as usize
    }
}

/// An attribute value, borrowed from the batch.
#[derive(Clone, Debug)]
pub enum AnyValueView<'a> {
    /// No value set (an empty `AnyValue`, or a `KeyValue` without one).
    Empty,
    /// `string_value`.
    String(&'a str),
    /// `bool_value`.
    Bool(bool),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bytes_value`.
    Bytes(&'a [u8]),
    /// `array_value`.
    Array(ArrayValues<'a>),
    /// `kvlist_value`.
    KvList(KeyValues<'a>),
}

impl<'a> AnyValueView<'a> {
    fn read(data: &'a [u8], body: Range<usize>) -> Self {
        if let Some(value) = Self::read_canonical(data, &body) {
            return value;
        }
        Self::read_general(data, body)
    }

    /// An `AnyValue` that holds nothing or exactly one scalar member with a one-byte tag (and a
    /// one-byte length for strings and bytes), as every protobuf encoder writes a scalar; `None`
    /// for any other layout, which [`Self::read_general`] reads (with the same result for these).
    #[inline(always)]
    fn read_canonical(data: &'a [u8], body: &Range<usize>) -> Option<Self> {
        const STRING: u8 = (field::ANY_STRING as u8) << 3 | 2;
        const BOOL: u8 = (field::ANY_BOOL as u8) << 3;
        const INT: u8 = (field::ANY_INT as u8) << 3;
        const DOUBLE: u8 = (field::ANY_DOUBLE as u8) << 3 | 1;
        const BYTES: u8 = (field::ANY_BYTES as u8) << 3 | 2;
        let payload = body.start + 2..body.end;
        Some(match *data.get(body.clone())? {
            [] => Self::Empty,
            [STRING, len, ref rest @ ..] if len < 0x80 && usize::from(len) == rest.len() => {
                Self::String(str_at(data, payload))
            }
            [BYTES, len, ref rest @ ..] if len < 0x80 && usize::from(len) == rest.len() => Self::Bytes(rest),
            [BOOL, flag] if flag < 0x80 => Self::Bool(flag != 0),
            [INT, ref varint @ ..] => match decode_varint(varint) {
                Ok((int, used)) if used == varint.len() => Self::Int(int as i64),
                _ => return None,
            },
            [DOUBLE, a, b, c, d, e, f, g, h] => Self::Double(f64::from_le_bytes([a, b, c, d, e, f, g, h])),
            _ => return None,
        })
    }

    /// An `AnyValue` in any layout protobuf allows.
    fn read_general(data: &'a [u8], body: Range<usize>) -> Self {
        let mut value = Self::Empty;
        let mut reader = Reader::new(data, body);
        // A oneof: the last member on the wire wins.
        while let Ok(Some(field)) = reader.next_field() {
            value = match (field.number, field.value) {
                (field::ANY_STRING, FieldValue::Len(range)) => Self::String(str_at(data, range)),
                (field::ANY_BOOL, FieldValue::Varint(v)) => Self::Bool(v != 0),
                (field::ANY_INT, FieldValue::Varint(v)) => Self::Int(v as i64),
                (field::ANY_DOUBLE, FieldValue::I64(v)) => Self::Double(f64::from_bits(v)),
                (field::ANY_BYTES, FieldValue::Len(range)) => Self::Bytes(&data[range]),
                (field::ANY_ARRAY, FieldValue::Len(range)) => {
                    Self::Array(ArrayValues { data, fields: FieldsNumbered::new(data, range, field::LIST_VALUES) })
                }
                (field::ANY_KVLIST, FieldValue::Len(range)) => {
                    Self::KvList(KeyValues::new(data, range, field::LIST_VALUES))
                }
                // The development-only string table index is not a value this pipeline resolves.
                (field::ANY_STRING_STRINDEX, FieldValue::Varint(_)) => Self::Empty,
                _ => continue,
            };
        }
        value
    }

    /// The string, if this is a string value.
    #[must_use]
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

/// One attribute.
#[derive(Clone, Debug)]
pub struct KeyValueView<'a> {
    /// The attribute key.
    pub key: &'a str,
    /// The attribute value.
    pub value: AnyValueView<'a>,
    /// Whether the `KeyValue` carried a `value` message at all (absent and empty differ on the
    /// wire, and encoders that round-trip must keep the difference).
    pub has_value: bool,
}

/// Iterator over the `KeyValue`s of a message field (attributes, or a key-value list's entries).
#[derive(Clone, Debug)]
pub struct KeyValues<'a> {
    data: &'a [u8],
    fields: FieldsNumbered<'a>,
}

impl<'a> KeyValues<'a> {
    fn new(data: &'a [u8], body: Range<usize>, number: u32) -> Self {
        Self { data, fields: FieldsNumbered::new(data, body, number) }
    }

    /// The value of the first attribute with this key.
    #[must_use]
    pub fn get(self, key: &str) -> Option<AnyValueView<'a>> {
        self.into_iter().find(|kv| kv.key == key).map(|kv| kv.value)
    }
}

impl<'a> Iterator for KeyValues<'a> {
    type Item = KeyValueView<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let FieldValue::Len(body) = self.fields.next()? else { return None };
        Some(KeyValueView::read_canonical(self.data, &body).unwrap_or_else(|| KeyValueView::read(self.data, body)))
    }
}

impl<'a> KeyValueView<'a> {
    /// The layout every protobuf encoder writes for an attribute with a short key and value:
    /// `0a <key length> <key> 12 <value length> <AnyValue>`, both lengths under 128, the value
    /// ending the message. Reads it without the general field loop; `None` for any other layout,
    /// which [`Self::read`] then reads (with the same result for this one).
    #[inline(always)]
    fn read_canonical(data: &'a [u8], body: &Range<usize>) -> Option<Self> {
        let bytes = data.get(body.clone())?;
        let (&[0x0a, key_len], rest) = bytes.split_first_chunk::<2>()? else { return None };
        let key_len = usize::from(key_len);
        let (&[0x12, value_len], value) = rest.get(key_len..)?.split_first_chunk::<2>()? else { return None };
        if key_len >= 0x80 || value_len >= 0x80 || usize::from(value_len) != value.len() {
            return None;
        }
        let key_start = body.start + 2;
        Some(Self {
            key: str_at(data, key_start..key_start + key_len),
            value: AnyValueView::read(data, body.end - value.len()..body.end),
            has_value: true,
        })
    }

    /// A `KeyValue` in any layout protobuf allows.
    fn read(data: &'a [u8], body: Range<usize>) -> Self {
        let mut view = KeyValueView { key: "", value: AnyValueView::Empty, has_value: false };
        let mut reader = Reader::new(data, body);
        while let Ok(Some(field)) = reader.next_field() {
            match (field.number, field.value) {
                (field::KEY_VALUE_KEY, FieldValue::Len(range)) => view.key = str_at(data, range),
                (field::KEY_VALUE_VALUE, FieldValue::Len(range)) => {
                    // A repeated `value` merges: one that sets no member keeps the earlier value.
                    view.has_value = true;
                    let value = AnyValueView::read(data, range);
                    if !matches!(value, AnyValueView::Empty) {
                        view.value = value;
                    }
                }
                _ => {}
            }
        }
        view
    }
}

/// Iterator over the values of an `ArrayValue`.
#[derive(Clone, Debug)]
pub struct ArrayValues<'a> {
    data: &'a [u8],
    fields: FieldsNumbered<'a>,
}

impl<'a> Iterator for ArrayValues<'a> {
    type Item = AnyValueView<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let FieldValue::Len(body) = self.fields.next()? else { return None };
        Some(AnyValueView::read(self.data, body))
    }
}

/// One span event.
#[derive(Clone, Debug)]
pub struct EventView<'a> {
    data: &'a [u8],
    body: Range<usize>,
    /// Event time, nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// Event name.
    pub name: &'a str,
    /// How many event attributes the client dropped.
    pub dropped_attributes_count: u32,
}

impl<'a> EventView<'a> {
    /// Event attributes.
    #[must_use]
    pub fn attributes(&self) -> KeyValues<'a> {
        KeyValues::new(self.data, self.body.clone(), field::EVENT_ATTRIBUTES)
    }
}

/// Iterator over a span's events.
#[derive(Clone, Debug)]
pub struct Events<'a> {
    data: &'a [u8],
    fields: FieldsNumbered<'a>,
}

impl<'a> Iterator for Events<'a> {
    type Item = EventView<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let FieldValue::Len(body) = self.fields.next()? else { return None };
        let mut event =
            EventView { data: self.data, body: body.clone(), time_unix_nano: 0, name: "", dropped_attributes_count: 0 };
        let mut reader = Reader::new(self.data, body);
        while let Ok(Some(field)) = reader.next_field() {
            match (field.number, field.value) {
                (field::EVENT_TIME, FieldValue::I64(v)) => event.time_unix_nano = v,
                (field::EVENT_NAME, FieldValue::Len(range)) => event.name = str_at(self.data, range),
                (field::EVENT_DROPPED_ATTRIBUTES_COUNT, FieldValue::Varint(v)) => {
                    event.dropped_attributes_count = v as u32
                }
                _ => {}
            }
        }
        Some(event)
    }
}

/// One span link.
#[derive(Clone, Debug)]
pub struct LinkView<'a> {
    data: &'a [u8],
    body: Range<usize>,
    /// The linked span's trace id.
    pub trace_id: [u8; 16],
    /// The linked span's id.
    pub span_id: [u8; 8],
    /// The linked span's `tracestate`.
    pub trace_state: &'a str,
    /// How many link attributes the client dropped.
    pub dropped_attributes_count: u32,
    /// W3C trace flags of the linked span context.
    pub flags: u32,
}

impl<'a> LinkView<'a> {
    /// Link attributes.
    #[must_use]
    pub fn attributes(&self) -> KeyValues<'a> {
        KeyValues::new(self.data, self.body.clone(), field::LINK_ATTRIBUTES)
    }
}

/// Iterator over a span's links.
#[derive(Clone, Debug)]
pub struct Links<'a> {
    data: &'a [u8],
    fields: FieldsNumbered<'a>,
}

impl<'a> Iterator for Links<'a> {
    type Item = LinkView<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let FieldValue::Len(body) = self.fields.next()? else { return None };
        let mut link = LinkView {
            data: self.data,
            body: body.clone(),
            trace_id: [0; 16],
            span_id: [0; 8],
            trace_state: "",
            dropped_attributes_count: 0,
            flags: 0,
        };
        let mut reader = Reader::new(self.data, body);
        while let Ok(Some(field)) = reader.next_field() {
            match (field.number, field.value) {
                (field::LINK_TRACE_ID, FieldValue::Len(range)) => {
                    link.trace_id = self.data[range].try_into().unwrap_or_default();
                }
                (field::LINK_SPAN_ID, FieldValue::Len(range)) => {
                    link.span_id = self.data[range].try_into().unwrap_or_default();
                }
                (field::LINK_TRACE_STATE, FieldValue::Len(range)) => link.trace_state = str_at(self.data, range),
                (field::LINK_DROPPED_ATTRIBUTES_COUNT, FieldValue::Varint(v)) => {
                    link.dropped_attributes_count = v as u32
                }
                (field::LINK_FLAGS, FieldValue::I32(v)) => link.flags = v,
                _ => {}
            }
        }
        Some(link)
    }
}

/// One `EntityRef` of a resource.
#[derive(Clone, Debug)]
pub struct EntityRefView<'a> {
    data: &'a [u8],
    body: Range<usize>,
    /// The entity's schema URL.
    pub schema_url: &'a str,
    /// The entity type (`type` in the proto).
    pub entity_type: &'a str,
}

impl<'a> EntityRefView<'a> {
    /// Attribute keys that identify the entity.
    #[must_use]
    pub fn id_keys(&self) -> Strings<'a> {
        Strings {
            data: self.data,
            fields: FieldsNumbered::new(self.data, self.body.clone(), field::ENTITY_REF_ID_KEYS),
        }
    }

    /// Attribute keys that describe the entity.
    #[must_use]
    pub fn description_keys(&self) -> Strings<'a> {
        let fields = FieldsNumbered::new(self.data, self.body.clone(), field::ENTITY_REF_DESCRIPTION_KEYS);
        Strings { data: self.data, fields }
    }
}

/// Iterator over a resource's entity references.
#[derive(Clone, Debug)]
pub struct EntityRefs<'a> {
    data: &'a [u8],
    fields: FieldsNumbered<'a>,
}

impl<'a> Iterator for EntityRefs<'a> {
    type Item = EntityRefView<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let FieldValue::Len(body) = self.fields.next()? else { return None };
        Some(EntityRefView {
            data: self.data,
            schema_url: last_string(self.data, body.clone(), field::ENTITY_REF_SCHEMA_URL),
            entity_type: last_string(self.data, body.clone(), field::ENTITY_REF_TYPE),
            body,
        })
    }
}

/// Iterator over a repeated string field.
#[derive(Clone, Debug)]
pub struct Strings<'a> {
    data: &'a [u8],
    fields: FieldsNumbered<'a>,
}

impl<'a> Iterator for Strings<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<Self::Item> {
        let FieldValue::Len(range) = self.fields.next()? else { return None };
        Some(str_at(self.data, range))
    }
}

impl<'a> ScopeView<'a> {
    /// The encoded `InstrumentationScope` message (empty when the request has none), as
    /// [`ResourceView::encoded`] gives the resource's.
    #[must_use]
    pub fn encoded(&self) -> &'a [u8] {
        &self.data()[self.entry.scope.range()]
    }
}

// Views over one encoded message lent without its batch.
//
// A plugin loaded at run time receives a batch as its bytes plus a per-span table of byte ranges
// (the plugin ABI), not as a `SpanBatch`: it has a span's, resource's or scope's message but no
// index to build a `SpanView` from. These read the same fields the batch views read, with the
// same code, straight from the message's bytes. They share the views' contract: the bytes must
// come from a batch that passed the scan; anything else reads as less (iteration stops early,
// strings read as empty), never out of bounds.

/// An encoded `Span` message (without its tag and length), read without its batch.
#[derive(Clone, Copy, Debug)]
pub struct EncodedSpanView<'a> {
    bytes: &'a [u8],
}

impl<'a> EncodedSpanView<'a> {
    /// A view over the `Span` message `bytes`.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The span's attributes, in wire order (as [`SpanView::attributes`]).
    #[must_use]
    pub fn attributes(&self) -> KeyValues<'a> {
        KeyValues::new(self.bytes, 0..self.bytes.len(), field::SPAN_ATTRIBUTES)
    }

    /// The W3C `tracestate` header value (as [`SpanView::trace_state`]).
    #[must_use]
    pub fn trace_state(&self) -> &'a str {
        last_string(self.bytes, 0..self.bytes.len(), field::SPAN_TRACE_STATE)
    }
}

/// An encoded `Resource` message, read without its batch.
#[derive(Clone, Copy, Debug)]
pub struct EncodedResourceView<'a> {
    bytes: &'a [u8],
}

impl<'a> EncodedResourceView<'a> {
    /// A view over the `Resource` message `bytes` (empty for a request without one).
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Resource attributes (as [`ResourceView::attributes`]).
    #[must_use]
    pub fn attributes(&self) -> KeyValues<'a> {
        KeyValues::new(self.bytes, 0..self.bytes.len(), field::RESOURCE_ATTRIBUTES)
    }

    /// The first `service.name` attribute with a string value (as
    /// [`ResourceView::service_name`], which the index answers without this walk).
    #[must_use]
    pub fn service_name(&self) -> Option<&'a str> {
        self.attributes().filter(|kv| kv.key == "service.name").find_map(|kv| kv.value.as_str())
    }
}

/// An encoded `InstrumentationScope` message, read without its batch.
#[derive(Clone, Copy, Debug)]
pub struct EncodedScopeView<'a> {
    bytes: &'a [u8],
}

impl<'a> EncodedScopeView<'a> {
    /// A view over the `InstrumentationScope` message `bytes` (empty for a request without one).
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Scope name (as [`ScopeView::name`]).
    #[must_use]
    pub fn name(&self) -> &'a str {
        last_string(self.bytes, 0..self.bytes.len(), field::SCOPE_NAME)
    }

    /// Scope version (as [`ScopeView::version`]).
    #[must_use]
    pub fn version(&self) -> &'a str {
        last_string(self.bytes, 0..self.bytes.len(), field::SCOPE_VERSION)
    }

    /// Scope attributes (as [`ScopeView::attributes`]).
    #[must_use]
    pub fn attributes(&self) -> KeyValues<'a> {
        KeyValues::new(self.bytes, 0..self.bytes.len(), field::SCOPE_ATTRIBUTES)
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        AnyValueView, Attributes, BatchWriter, EncodedResourceView, EncodedScopeView, EncodedSpanView, KeyValueView,
    };

    /// Attributes as text, arrays by their elements (an array view's `Debug` shows its buffer).
    fn attributes_text<'a>(attributes: impl Iterator<Item = KeyValueView<'a>>) -> Vec<String> {
        attributes
            .map(|kv| match kv.value {
                AnyValueView::Array(values) => format!("{}={:?}", kv.key, values.collect::<Vec<_>>()),
                value => format!("{}={value:?}", kv.key),
            })
            .collect()
    }

    /// The views over messages lent without their batch read what the batch views read, from the
    /// byte ranges the batch views report.
    #[test]
    fn encoded_views_read_what_the_batch_views_read() {
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.resource(|r| {
                r.int_attribute("host.cpus", 8);
                r.str_attribute("service.name", "checkout");
            });
            rs.scope_spans(|ss| {
                ss.scope(|s| {
                    s.name("io.acme.http").version("1.2.3").bool_attribute("scope.flag", true);
                });
                ss.span(|s| {
                    s.trace_id(&[1; 16]).span_id(&[2; 8]).trace_state("k=v").name("GET /cart");
                    s.str_attribute("user.email", "a@b.c");
                    s.attribute("list", |v| v.array(|a| a.value(|v| v.int(1))));
                });
            });
        });
        let batch = writer.finish().expect("valid");
        let bytes = batch.bytes();
        let span = batch.span(0).expect("one span");

        let encoded_span = EncodedSpanView::new(&bytes[span.byte_range().range()]);
        assert_eq!(attributes_text(encoded_span.attributes()), attributes_text(span.attributes()));
        assert_eq!(attributes_text(encoded_span.attributes()), ["user.email=String(\"a@b.c\")", "list=[Int(1)]"]);
        assert_eq!(encoded_span.trace_state(), "k=v");
        assert_eq!(&bytes[span.name_range().range()], b"GET /cart");

        let resource = span.resource();
        assert_eq!(resource.encoded(), &bytes[resource.byte_range().range()]);
        let encoded_resource = EncodedResourceView::new(resource.encoded());
        assert_eq!(attributes_text(encoded_resource.attributes()), attributes_text(resource.attributes()));
        assert_eq!(encoded_resource.service_name(), Some("checkout"));

        let scope = span.scope();
        assert_eq!(scope.encoded(), &bytes[scope.byte_range().range()]);
        let encoded_scope = EncodedScopeView::new(scope.encoded());
        assert_eq!((encoded_scope.name(), encoded_scope.version()), ("io.acme.http", "1.2.3"));
        assert_eq!(attributes_text(encoded_scope.attributes()), ["scope.flag=Bool(true)"]);
    }

    /// An absent resource or scope is lent as no bytes: everything reads as empty.
    #[test]
    fn encoded_views_of_absent_messages_read_empty() {
        assert_eq!(EncodedResourceView::new(&[]).attributes().count(), 0);
        assert_eq!(EncodedResourceView::new(&[]).service_name(), None);
        assert_eq!(EncodedScopeView::new(&[]).name(), "");
        assert_eq!(EncodedSpanView::new(&[]).attributes().count(), 0);
    }
}
