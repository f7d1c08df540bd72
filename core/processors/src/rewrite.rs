//! Building a new batch from an old one in which some spans are dropped and some are rewritten.
//!
//! Dropping alone is re-framing ([`SpanBatch::filter`]): span bytes are copied as slices. When a
//! processor must change what is inside a span (the `attributes` processor, or a sampler that
//! records its threshold in `tracestate`), only the changed spans get new bytes: [`write_span`]
//! copies every field of the span verbatim except the one being replaced. The batch is then
//! written with the core's [`BatchWriter`]: each resource copied as encoded, each span copied as
//! encoded (old or new bytes), and scopes written from their views (the writer has no way to copy
//! a scope as encoded; a scope's unknown fields are the only thing not carried over).
//! [`BatchWriter::finish`] scans the result, so the new batch is validated and indexed like any
//! request from outside.

use std::ops::Range;

use spanpipe_core::{
    AnyValueView, ArrayWriter, Attributes, BatchWriter, KeyValueListWriter, KeyValueView, ScanError, ScopeView,
    ScopeWriter, SpanBatch, ValueWriter,
};

use spanpipe_core::wire::{put_len_header, Fields};

/// `Span.trace_state`.
pub(crate) const SPAN_TRACE_STATE: u32 = 3;
/// `Span.attributes`.
pub(crate) const SPAN_ATTRIBUTES: u32 = 9;

/// What to replace in a span. `None` leaves the field as it is.
///
/// Public so that processors outside this crate (plugins, through `spanpipe-plugins`) rewrite
/// spans the same way the built-in ones do: one changed field, every other byte copied.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpanEdit<'e> {
    /// The new `trace_state`; empty removes it (as protobuf encoders leave empty strings out).
    pub trace_state: Option<&'e str>,
    /// The new attributes: a run of whole encoded `Span.attributes` fields (tag, length, `KeyValue`).
    pub attributes: Option<&'e [u8]>,
}

/// Writes the `Span` message `body` with the edits applied into `out`. Replaced fields go where the
/// first old occurrence was (or where field order puts them, when the span had none), every other
/// field is copied byte for byte in its original order.
pub(crate) fn write_span(body: &[u8], edit: SpanEdit<'_>, out: &mut Vec<u8>) {
    let mut trace_state_pending = edit.trace_state;
    let mut attributes_pending = edit.attributes;
    for field in Fields::new(body) {
        if field.number >= SPAN_TRACE_STATE {
            if let Some(state) = trace_state_pending.take() {
                put_trace_state(out, state);
            }
        }
        if field.number >= SPAN_ATTRIBUTES {
            if let Some(attributes) = attributes_pending.take() {
                out.extend_from_slice(attributes);
            }
        }
        let replaced = (field.number == SPAN_TRACE_STATE && edit.trace_state.is_some())
            || (field.number == SPAN_ATTRIBUTES && edit.attributes.is_some());
        if !replaced {
            out.extend_from_slice(&body[field.whole]);
        }
    }
    if let Some(state) = trace_state_pending {
        put_trace_state(out, state);
    }
    if let Some(attributes) = attributes_pending {
        out.extend_from_slice(attributes);
    }
}

fn put_trace_state(out: &mut Vec<u8>, state: &str) {
    if !state.is_empty() {
        put_len_header(out, SPAN_TRACE_STATE, state.len());
        out.extend_from_slice(state.as_bytes());
    }
}

/// What becomes of one span.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fate {
    Keep,
    Drop,
    /// New bytes, at this range of [`Rebuild::bodies`].
    Replace(Range<usize>),
}

/// Collects the fate of every span of a batch, in order, then builds the new batch.
///
/// Every span of the batch gets exactly one call ([`Rebuild::keep`], [`Rebuild::drop_span`] or
/// [`Rebuild::replace`]), in wire order; [`Rebuild::finish`] then re-frames (drops only) or
/// re-writes (any replacement) the batch.
#[derive(Debug, Default)]
pub struct Rebuild {
    fates: Vec<Fate>,
    bodies: Vec<u8>,
    dropped: usize,
    replaced: usize,
}

impl Rebuild {
    /// A rebuild for a batch of `spans` spans.
    #[must_use]
    pub fn with_capacity(spans: usize) -> Self {
        Self { fates: Vec::with_capacity(spans), ..Self::default() }
    }

    /// The next span goes on unchanged.
    pub fn keep(&mut self) {
        self.fates.push(Fate::Keep);
    }

    /// The next span is left out.
    pub fn drop_span(&mut self) {
        self.fates.push(Fate::Drop);
        self.dropped += 1;
    }

    /// The next span goes on as `body` with `edit` applied.
    pub fn replace(&mut self, body: &[u8], edit: SpanEdit<'_>) {
        let start = self.bodies.len();
        write_span(body, edit, &mut self.bodies);
        self.fates.push(Fate::Replace(start..self.bodies.len()));
        self.replaced += 1;
    }

    /// Spans left out so far.
    #[must_use]
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Spans given new bytes so far.
    #[must_use]
    pub fn replaced(&self) -> usize {
        self.replaced
    }

    /// The new batch. `batch` must be the one whose spans were decided, in order.
    ///
    /// # Errors
    /// Only if the rewritten bytes do not scan, which would be a bug in a processor; the caller
    /// counts it and drops the batch rather than pass on something it could not vouch for.
    pub fn finish(self, batch: &SpanBatch) -> Result<SpanBatch, ScanError> {
        debug_assert_eq!(self.fates.len(), batch.len(), "one fate per span");
        if self.replaced == 0 {
            if self.dropped == 0 {
                return Ok(batch.clone());
            }
            return Ok(batch.filter(|span| self.fates.get(span.position()) == Some(&Fate::Keep)));
        }
        let mut writer = BatchWriter::with_capacity(batch.encoded_len() + self.bodies.len());
        let fate = |position: usize| self.fates.get(position).unwrap_or(&Fate::Drop);
        for resource in batch.resources() {
            let keeps_any = |scope: &ScopeView<'_>| scope.spans().any(|span| *fate(span.position()) != Fate::Drop);
            if !resource.scopes().any(|scope| keeps_any(&scope)) {
                continue;
            }
            writer.resource_spans(|resource_spans| {
                if resource.is_present() {
                    resource_spans.encoded_resource(resource.encoded());
                }
                for scope in resource.scopes().filter(keeps_any) {
                    resource_spans.scope_spans(|scope_spans| {
                        if scope.is_present() {
                            scope_spans.scope(|writer| copy_scope(writer, &scope));
                        }
                        for span in scope.spans() {
                            match fate(span.position()) {
                                Fate::Keep => {
                                    scope_spans.encoded_span(span.encoded());
                                }
                                Fate::Replace(range) => {
                                    scope_spans.encoded_span(&self.bodies[range.clone()]);
                                }
                                Fate::Drop => {}
                            }
                        }
                        if !scope.schema_url().is_empty() {
                            scope_spans.schema_url(scope.schema_url());
                        }
                    });
                }
                if !resource.schema_url().is_empty() {
                    resource_spans.schema_url(resource.schema_url());
                }
            });
        }
        writer.finish()
    }
}

/// Writes an instrumentation scope from its view, leaving out defaults as protobuf encoders do.
fn copy_scope(writer: &mut ScopeWriter<'_>, scope: &ScopeView<'_>) {
    if !scope.name().is_empty() {
        writer.name(scope.name());
    }
    if !scope.version().is_empty() {
        writer.version(scope.version());
    }
    for attribute in scope.attributes() {
        copy_key_value(writer, &attribute);
    }
    if scope.dropped_attributes_count() != 0 {
        writer.dropped_attributes_count(scope.dropped_attributes_count());
    }
}

fn copy_key_value(writer: &mut impl Attributes, key_value: &KeyValueView<'_>) {
    if key_value.has_value {
        writer.attribute(key_value.key, |value| copy_value(value, &key_value.value));
    } else {
        writer.attribute_without_value(key_value.key);
    }
}

fn copy_value(writer: &mut ValueWriter<'_>, value: &AnyValueView<'_>) {
    match value {
        AnyValueView::Empty => {}
        AnyValueView::String(text) => writer.string(text),
        AnyValueView::Bool(flag) => writer.bool(*flag),
        AnyValueView::Int(number) => writer.int(*number),
        AnyValueView::Double(number) => writer.double(*number),
        AnyValueView::Bytes(bytes) => writer.bytes(bytes),
        AnyValueView::Array(values) => writer.array(|array: &mut ArrayWriter<'_>| {
            for element in values.clone() {
                array.value(|value| copy_value(value, &element));
            }
        }),
        AnyValueView::KvList(entries) => writer.kvlist(|list: &mut KeyValueListWriter<'_>| {
            for entry in entries.clone() {
                copy_key_value(list, &entry);
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spanpipe_core::wire::put_len_field;

    fn fields_of(body: &[u8]) -> Vec<(u32, Vec<u8>)> {
        Fields::new(body).map(|field| (field.number, body[field.whole].to_vec())).collect()
    }

    #[test]
    fn replaces_trace_state_in_place_and_keeps_other_fields_verbatim() {
        let mut body = Vec::new();
        put_len_field(&mut body, 1, &[1; 16]);
        put_len_field(&mut body, 2, &[2; 8]);
        put_len_field(&mut body, SPAN_TRACE_STATE, b"old=1");
        put_len_field(&mut body, 5, b"name");
        let mut out = Vec::new();
        write_span(&body, SpanEdit { trace_state: Some("ot=th:8"), attributes: None }, &mut out);
        let numbers: Vec<u32> = fields_of(&out).iter().map(|(number, _)| *number).collect();
        assert_eq!(numbers, vec![1, 2, 3, 5]);
        let mut expected_state = Vec::new();
        put_len_field(&mut expected_state, SPAN_TRACE_STATE, b"ot=th:8");
        assert_eq!(fields_of(&out)[2].1, expected_state);
    }

    #[test]
    fn inserts_missing_fields_where_field_order_puts_them() {
        let mut body = Vec::new();
        put_len_field(&mut body, 1, &[1; 16]);
        put_len_field(&mut body, 5, b"name");
        put_len_field(&mut body, 11, b"");
        let mut attributes = Vec::new();
        put_len_field(&mut attributes, SPAN_ATTRIBUTES, b"\x0a\x01k");
        let mut out = Vec::new();
        write_span(&body, SpanEdit { trace_state: Some("a=b"), attributes: Some(&attributes) }, &mut out);
        let numbers: Vec<u32> = fields_of(&out).iter().map(|(number, _)| *number).collect();
        assert_eq!(numbers, vec![1, 3, 5, 9, 11]);
    }

    #[test]
    fn empty_trace_state_removes_every_occurrence() {
        let mut body = Vec::new();
        put_len_field(&mut body, SPAN_TRACE_STATE, b"x=1");
        put_len_field(&mut body, 5, b"n");
        put_len_field(&mut body, SPAN_TRACE_STATE, b"y=2");
        let mut out = Vec::new();
        write_span(&body, SpanEdit { trace_state: Some(""), attributes: None }, &mut out);
        assert_eq!(fields_of(&out), vec![(5, vec![0x2a, 1, b'n'])]);
    }
}
