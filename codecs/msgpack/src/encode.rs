//! Canonical batch → MessagePack, written straight from the batch's borrowed views with
//! `rmp::encode` into one buffer.
//!
//! Keys follow protobuf field-number order, so decoding our output writes the fields in the order
//! prost does and gives back the batch's bytes exactly. Every value takes the smallest
//! MessagePack form that holds it (what msgpack encoders such as Python's `msgpack` write), except
//! doubles, which are always float 64 so that no value changes.
//!
//! Map and array headers: the number of entries is known only after they are written (defaults
//! are left out, attribute lists are iterators), so a container reserves the one header byte its
//! fix form needs and, when it holds more than 15 entries, widens the header in place — a move of
//! its body by two or four bytes. Lists whose length the views know (resources, scopes, spans)
//! get their header up front.

use std::convert::Infallible;

use rmp::encode::{ByteBuf, ValueWriteError};
use spanpipe_core::{
    AnyValueView, EntityRefView, EventView, KeyValueView, KeyValues, LinkView, ResourceView, ScopeView, SpanBatch,
    SpanView,
};

/// Appends the MessagePack encoding of `batch` to `out`.
///
/// Decoding the output with [`crate::decode`] gives back a batch with the same bytes, and
/// encoding that again gives the same MessagePack.
pub fn encode(batch: &SpanBatch, out: &mut Vec<u8>) {
    let mut buf = ByteBuf::from_vec(std::mem::take(out));
    // MessagePack carries keys where protobuf carries field numbers: a little larger.
    buf.as_mut_vec().reserve(batch.encoded_len().saturating_mul(5) / 4 + 16);
    let mut request = Map::open(&mut buf);
    let resources = batch.resources();
    if resources.len() > 0 {
        let out = request.key("resourceSpans");
        array_len(out, resources.len());
        for resource in resources {
            resource_spans(out, &resource);
        }
    }
    request.close();
    *out = buf.into_vec();
}

/// Writing to a `ByteBuf` cannot fail (its error type is `Infallible`); this says so to the
/// compiler without a panic path.
pub(crate) trait Infallibly<T> {
    fn infallibly(self) -> T;
}

impl<T> Infallibly<T> for Result<T, ValueWriteError<Infallible>> {
    #[inline]
    fn infallibly(self) -> T {
        match self {
            Ok(value) => value,
            Err(ValueWriteError::InvalidMarkerWrite(never) | ValueWriteError::InvalidDataWrite(never)) => {
                match never {}
            }
        }
    }
}

impl<T> Infallibly<T> for Result<T, Infallible> {
    #[inline]
    fn infallibly(self) -> T {
        match self {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }
}

/// The header of an array of `len` elements (lengths beyond `u32` cannot occur: a batch is at
/// most 4 GiB and every element takes at least one byte).
fn array_len(out: &mut ByteBuf, len: usize) {
    rmp::encode::write_array_len(out, u32::try_from(len).unwrap_or(u32::MAX)).infallibly();
}

/// A map or array whose header is written when it is closed, once its length is known.
pub(crate) struct Container<'a> {
    out: &'a mut ByteBuf,
    header_at: usize,
    len: u32,
    write_header: fn(&mut ByteBuf, u32) -> Result<rmp::Marker, ValueWriteError<Infallible>>,
}

/// A map: keys are fixed field names.
pub(crate) struct Map<'a>(Container<'a>);

impl<'a> Container<'a> {
    fn open(
        out: &'a mut ByteBuf,
        write_header: fn(&mut ByteBuf, u32) -> Result<rmp::Marker, ValueWriteError<Infallible>>,
    ) -> Self {
        let header_at = out.as_slice().len();
        // The fix form's one byte; `close` widens it when needed.
        out.as_mut_vec().push(0);
        Self { out, header_at, len: 0, write_header }
    }

    /// Counts one more entry and hands out the buffer to write it.
    #[inline]
    fn entry(&mut self) -> &mut ByteBuf {
        self.len += 1;
        self.out
    }

    /// Writes the header at the end of the buffer with `rmp`, then moves it to its place: into
    /// the reserved byte for the fix form, or spliced in for the wider ones.
    fn close(self) {
        let end = self.out.as_slice().len();
        (self.write_header)(self.out, self.len).infallibly();
        let vec = self.out.as_mut_vec();
        let mut header = [0u8; 5];
        let header_len = vec.len() - end;
        header[..header_len].copy_from_slice(&vec[end..]);
        vec.truncate(end);
        match &header[..header_len] {
            [fix] => {
                if let Some(byte) = vec.get_mut(self.header_at) {
                    *byte = *fix;
                }
            }
            wide => {
                vec.splice(self.header_at..=self.header_at, wide.iter().copied());
            }
        }
    }
}

impl<'a> Map<'a> {
    pub(crate) fn open(out: &'a mut ByteBuf) -> Self {
        Self(Container::open(out, rmp::encode::write_map_len))
    }

    /// Starts an entry: writes the key and hands out the buffer for the value.
    #[inline]
    pub(crate) fn key(&mut self, key: &str) -> &mut ByteBuf {
        let out = self.0.entry();
        rmp::encode::write_str(out, key).infallibly();
        out
    }

    #[inline]
    pub(crate) fn str(&mut self, key: &str, value: &str) {
        let out = self.key(key);
        rmp::encode::write_str(out, value).infallibly();
    }

    /// A string field, left out when empty (the proto3 default).
    #[inline]
    pub(crate) fn non_empty_str(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.str(key, value);
        }
    }

    /// An unsigned field (counts, flags, times), left out when zero.
    #[inline]
    pub(crate) fn non_zero_uint(&mut self, key: &str, value: u64) {
        if value != 0 {
            let out = self.key(key);
            rmp::encode::write_uint(out, value).infallibly();
        }
    }

    /// A signed field (enums, `int64`), left out when zero.
    #[inline]
    pub(crate) fn non_zero_sint(&mut self, key: &str, value: i64) {
        if value != 0 {
            self.sint(key, value);
        }
    }

    #[inline]
    pub(crate) fn sint(&mut self, key: &str, value: i64) {
        let out = self.key(key);
        rmp::encode::write_sint(out, value).infallibly();
    }

    #[inline]
    pub(crate) fn bin(&mut self, key: &str, value: &[u8]) {
        let out = self.key(key);
        rmp::encode::write_bin(out, value).infallibly();
    }

    /// A repeated `KeyValue` field, left out when there are none.
    fn attributes(&mut self, key: &str, attributes: KeyValues<'_>) {
        self.list(key, attributes, |out, attribute| key_value(out, &attribute));
    }

    /// A repeated field, left out when empty; `write` writes one element.
    fn list<T>(&mut self, key: &str, items: impl Iterator<Item = T>, mut write: impl FnMut(&mut ByteBuf, T)) {
        let mut items = items.peekable();
        if items.peek().is_none() {
            return;
        }
        let mut array = Container::open(self.key(key), rmp::encode::write_array_len);
        for item in items {
            write(array.entry(), item);
        }
        array.close();
    }

    pub(crate) fn close(self) {
        self.0.close();
    }
}

fn resource_spans(out: &mut ByteBuf, resource: &ResourceView<'_>) {
    let mut o = Map::open(out);
    if resource.is_present() {
        let mut r = Map::open(o.key("resource"));
        r.attributes("attributes", resource.attributes());
        r.non_zero_uint("droppedAttributesCount", resource.dropped_attributes_count().into());
        r.list("entityRefs", resource.entity_refs(), |out, entity_ref| self::entity_ref(out, &entity_ref));
        r.close();
    }
    let scopes = resource.scopes();
    if scopes.len() > 0 {
        let out = o.key("scopeSpans");
        array_len(out, scopes.len());
        for scope in scopes {
            scope_spans(out, &scope);
        }
    }
    o.non_empty_str("schemaUrl", resource.schema_url());
    o.close();
}

fn entity_ref(out: &mut ByteBuf, entity_ref: &EntityRefView<'_>) {
    let mut o = Map::open(out);
    o.non_empty_str("schemaUrl", entity_ref.schema_url);
    o.non_empty_str("type", entity_ref.entity_type);
    let string = |out: &mut ByteBuf, text: &str| rmp::encode::write_str(out, text).infallibly();
    o.list("idKeys", entity_ref.id_keys(), string);
    o.list("descriptionKeys", entity_ref.description_keys(), string);
    o.close();
}

fn scope_spans(out: &mut ByteBuf, scope: &ScopeView<'_>) {
    let mut o = Map::open(out);
    if scope.is_present() {
        let mut s = Map::open(o.key("scope"));
        s.non_empty_str("name", scope.name());
        s.non_empty_str("version", scope.version());
        s.attributes("attributes", scope.attributes());
        s.non_zero_uint("droppedAttributesCount", scope.dropped_attributes_count().into());
        s.close();
    }
    let spans = scope.spans();
    if spans.len() > 0 {
        let out = o.key("spans");
        array_len(out, spans.len());
        for span in spans {
            self::span(out, &span);
        }
    }
    o.non_empty_str("schemaUrl", scope.schema_url());
    o.close();
}

fn span(out: &mut ByteBuf, span: &SpanView<'_>) {
    // One walk over the span's bytes for every field the index does not hold.
    let details = span.details();
    let mut o = Map::open(out);
    // Ids are always written: the index guarantees them, and receivers require them.
    o.bin("traceId", span.trace_id());
    o.bin("spanId", span.span_id());
    o.non_empty_str("traceState", details.trace_state);
    if let Some(parent) = span.parent_span_id() {
        o.bin("parentSpanId", parent);
    }
    o.non_empty_str("name", span.name());
    o.non_zero_sint("kind", span.kind().as_i32().into());
    o.non_zero_uint("startTimeUnixNano", span.start_time_unix_nano());
    o.non_zero_uint("endTimeUnixNano", span.end_time_unix_nano());
    o.attributes("attributes", details.attributes());
    o.non_zero_uint("droppedAttributesCount", details.dropped_attributes_count.into());
    o.list("events", details.events(), |out, event| self::event(out, &event));
    o.non_zero_uint("droppedEventsCount", details.dropped_events_count.into());
    o.list("links", details.links(), |out, link| self::link(out, &link));
    o.non_zero_uint("droppedLinksCount", details.dropped_links_count.into());
    if let Some(status) = details.status {
        let mut s = Map::open(o.key("status"));
        s.non_empty_str("message", status.message);
        s.non_zero_sint("code", status.code.as_i32().into());
        s.close();
    }
    o.non_zero_uint("flags", span.flags().into());
    o.close();
}

fn event(out: &mut ByteBuf, event: &EventView<'_>) {
    let mut o = Map::open(out);
    o.non_zero_uint("timeUnixNano", event.time_unix_nano);
    o.non_empty_str("name", event.name);
    o.attributes("attributes", event.attributes());
    o.non_zero_uint("droppedAttributesCount", event.dropped_attributes_count.into());
    o.close();
}

/// A link. Its ids are always written (the index guarantees them, as for spans).
fn link(out: &mut ByteBuf, link: &LinkView<'_>) {
    let mut o = Map::open(out);
    o.bin("traceId", &link.trace_id);
    o.bin("spanId", &link.span_id);
    o.non_empty_str("traceState", link.trace_state);
    o.attributes("attributes", link.attributes());
    o.non_zero_uint("droppedAttributesCount", link.dropped_attributes_count.into());
    o.non_zero_uint("flags", link.flags.into());
    o.close();
}

fn key_value(out: &mut ByteBuf, attribute: &KeyValueView<'_>) {
    let mut o = Map::open(out);
    o.non_empty_str("key", attribute.key);
    // An absent value message and an empty one differ on the wire: only the second is written.
    if attribute.has_value {
        any_value(o.key("value"), &attribute.value);
    }
    o.close();
}

/// An `AnyValue`. Its content is written even when it is a default (`""`, `0`, `false`, an empty
/// array), because which member of the oneof is set is information.
fn any_value(out: &mut ByteBuf, value: &AnyValueView<'_>) {
    let mut o = Map::open(out);
    match value {
        AnyValueView::Empty => {}
        AnyValueView::String(text) => o.str("stringValue", text),
        AnyValueView::Bool(flag) => rmp::encode::write_bool(o.key("boolValue"), *flag).infallibly(),
        AnyValueView::Int(int) => o.sint("intValue", *int),
        AnyValueView::Double(double) => rmp::encode::write_f64(o.key("doubleValue"), *double).infallibly(),
        AnyValueView::Bytes(bytes) => o.bin("bytesValue", bytes),
        AnyValueView::Array(values) => {
            let mut a = Map::open(o.key("arrayValue"));
            a.list("values", values.clone(), |out, element| any_value(out, &element));
            a.close();
        }
        AnyValueView::KvList(entries) => {
            let mut l = Map::open(o.key("kvlistValue"));
            l.attributes("values", entries.clone());
            l.close();
        }
    }
    o.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_widen_their_header_past_fifteen_entries() {
        for (len, header) in
            [(0usize, vec![0x90]), (15, vec![0x9f]), (16, vec![0xdc, 0, 16]), (70_000, vec![0xdd, 0, 1, 0x11, 0x70])]
        {
            let mut out = ByteBuf::from_vec(vec![0xaa]);
            let mut array = Container::open(&mut out, rmp::encode::write_array_len);
            for _ in 0..len {
                rmp::encode::write_nil(array.entry()).infallibly();
            }
            array.close();
            let bytes = out.into_vec();
            let mut expected = vec![0xaa];
            expected.extend_from_slice(&header);
            expected.extend(std::iter::repeat_n(0xc0, len));
            assert_eq!(bytes, expected, "{len} entries");
        }
    }
}
