//! Borrowed views over a batch: indexed fields come from the index, everything else is read on
//! demand from the span's own bytes.
//!
//! The views never allocate and never fail. They may assume well-formed bytes because a
//! [`SpanBatch`] is only ever built by the validating scan or from slices of batches that passed
//! it; should that assumption ever break, iteration stops early instead of panicking.

use std::ops::Range;

use crate::batch::{field, ByteRange, ResourceEntry, ScopeEntry, SpanBatch, SpanEntry};
use crate::wire::{FieldValue, Reader};

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
        let mut view = KeyValueView { key: "", value: AnyValueView::Empty, has_value: false };
        let mut reader = Reader::new(self.data, body);
        while let Ok(Some(field)) = reader.next_field() {
            match (field.number, field.value) {
                (field::KEY_VALUE_KEY, FieldValue::Len(range)) => view.key = str_at(self.data, range),
                (field::KEY_VALUE_VALUE, FieldValue::Len(range)) => {
                    // A repeated `value` merges: one that sets no member keeps the earlier value.
                    view.has_value = true;
                    let value = AnyValueView::read(self.data, range);
                    if !matches!(value, AnyValueView::Empty) {
                        view.value = value;
                    }
                }
                _ => {}
            }
        }
        Some(view)
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
