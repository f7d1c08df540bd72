//! Builds new batches from chosen spans of existing ones by copying byte slices and writing new
//! length prefixes — filtering, splitting and merging never decode or re-encode a span.
//!
//! The output groups consecutive chosen spans under their `ResourceSpans` and `ScopeSpans`. Two
//! neighbouring spans share a group when they come from the same resource (or scope) of the same
//! batch, or from resources whose encoded bytes are identical, which is what merging many small
//! requests from one service produces; the merged request then carries that resource once.
//! Sizes are computed in a first pass so the output is written once into an exactly sized buffer,
//! and the new index is the old index entries shifted by how far each slice moved.
//!
//! What is copied: each span's bytes verbatim (unknown fields included), each resource's and
//! scope's `resource`/`scope` and `schema_url` fields verbatim. Unknown fields directly inside a
//! `ResourceSpans` or `ScopeSpans` are not carried over.

use std::ops::Range;

use crate::batch::{field, BatchIndex, ByteRange, ResourceEntry, ScopeEntry, SpanBatch, SpanEntry};
use crate::buffers::BATCH_BUFFERS;
use crate::view::SpanView;
use crate::wire::{len_field_size, put_tag, put_varint, WireType};

/// Collects chosen spans, then frames them into one new batch.
#[derive(Debug, Default)]
pub struct Reframer<'a> {
    picks: Vec<Pick<'a>>,
    size: SizeTail,
}

/// The encoded size of the picks so far, kept up to date on every push so that size-bounded
/// splitting costs O(1) per span: only the last resource and scope group are still open.
#[derive(Clone, Copy, Debug, Default)]
struct SizeTail {
    /// Bytes of the `resource_spans` fields already closed.
    closed: usize,
    /// Body of the open `ResourceSpans`, without its open `ScopeSpans`.
    resource_body: usize,
    /// Body of the open `ScopeSpans`.
    scope_body: usize,
    open: bool,
}

impl SizeTail {
    fn total(self) -> usize {
        if self.open {
            self.closed + len_field_size(self.resource_body + len_field_size(self.scope_body))
        } else {
            self.closed
        }
    }

    fn after(mut self, previous: Option<Pick<'_>>, pick: Pick<'_>) -> Self {
        let new_resource = previous.is_none_or(|prev| !same_resource(prev, pick));
        let new_scope = new_resource || previous.is_none_or(|prev| !same_scope(prev, pick));
        let scope = scope_entry(pick);
        let scope_fixed = scope.scope_field.len() + scope.schema_url_field.len();
        if new_resource {
            self.closed = self.total();
            let resource = resource_entry(pick);
            self.resource_body = resource.resource_field.len() + resource.schema_url_field.len();
            self.scope_body = scope_fixed;
            self.open = true;
        } else if new_scope {
            self.resource_body += len_field_size(self.scope_body);
            self.scope_body = scope_fixed;
        }
        self.scope_body += len_field_size(pick.entry().body.len());
        self
    }
}

#[derive(Clone, Copy, Debug)]
struct Pick<'a> {
    batch: &'a SpanBatch,
    span: u32,
}

impl<'a> Pick<'a> {
    fn entry(&self) -> &'a SpanEntry {
        &self.batch.index.spans[self.span as usize]
    }
}

/// A run of picks that goes under one `ScopeSpans`.
#[derive(Debug)]
struct ScopeGroup {
    picks: Range<usize>,
    body_len: usize,
}

/// A run of scope groups that goes under one `ResourceSpans`.
#[derive(Debug)]
struct ResourceGroup {
    scopes: Range<usize>,
    body_len: usize,
}

fn slice(batch: &SpanBatch, range: ByteRange) -> &[u8] {
    &batch.bytes[range.range()]
}

fn same_resource(a: Pick<'_>, b: Pick<'_>) -> bool {
    let (ra, rb) = (a.entry().resource, b.entry().resource);
    if std::ptr::eq(a.batch, b.batch) && ra == rb {
        return true;
    }
    let (ea, eb) = (&a.batch.index.resources[ra as usize], &b.batch.index.resources[rb as usize]);
    slice(a.batch, ea.resource_field) == slice(b.batch, eb.resource_field)
        && slice(a.batch, ea.schema_url_field) == slice(b.batch, eb.schema_url_field)
}

fn same_scope(a: Pick<'_>, b: Pick<'_>) -> bool {
    let (sa, sb) = (a.entry().scope, b.entry().scope);
    if std::ptr::eq(a.batch, b.batch) && sa == sb {
        return true;
    }
    let (ea, eb) = (&a.batch.index.scopes[sa as usize], &b.batch.index.scopes[sb as usize]);
    slice(a.batch, ea.scope_field) == slice(b.batch, eb.scope_field)
        && slice(a.batch, ea.schema_url_field) == slice(b.batch, eb.schema_url_field)
}

fn resource_entry<'a>(pick: Pick<'a>) -> &'a ResourceEntry {
    &pick.batch.index.resources[pick.entry().resource as usize]
}

fn scope_entry<'a>(pick: Pick<'a>) -> &'a ScopeEntry {
    &pick.batch.index.scopes[pick.entry().scope as usize]
}

impl<'a> Reframer<'a> {
    /// An empty reframer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty reframer with room for `spans` picks.
    #[must_use]
    pub fn with_capacity(spans: usize) -> Self {
        Self { picks: Vec::with_capacity(spans), size: SizeTail::default() }
    }

    /// Chooses the span at `position` of `batch`. Out-of-range positions are ignored.
    pub fn push(&mut self, batch: &'a SpanBatch, position: usize) {
        if position < batch.len() {
            self.push_pick(Pick { batch, span: position as u32 });
        }
    }

    fn push_pick(&mut self, pick: Pick<'a>) {
        self.size = self.size.after(self.picks.last().copied(), pick);
        self.picks.push(pick);
    }

    /// Encoded size of the batch if the span at `position` of `batch` were pushed next.
    fn encoded_len_with(&self, batch: &'a SpanBatch, position: usize) -> usize {
        self.size.after(self.picks.last().copied(), Pick { batch, span: position as u32 }).total()
    }

    /// Chooses every span of `batch`.
    pub fn push_all(&mut self, batch: &'a SpanBatch) {
        self.picks.reserve(batch.len());
        for span in 0..batch.len() as u32 {
            self.push_pick(Pick { batch, span });
        }
    }

    /// Number of spans chosen so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.picks.len()
    }

    /// Whether nothing was chosen.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.picks.is_empty()
    }

    /// Groups the picks and computes every message length.
    fn plan(&self) -> (Vec<ResourceGroup>, Vec<ScopeGroup>, usize) {
        let mut resources: Vec<ResourceGroup> = Vec::new();
        let mut scopes: Vec<ScopeGroup> = Vec::new();
        for (i, &pick) in self.picks.iter().enumerate() {
            let span_size = len_field_size(pick.entry().body.len());
            let previous = i.checked_sub(1).map(|p| self.picks[p]);
            let new_resource = previous.is_none_or(|prev| !same_resource(prev, pick));
            let new_scope = new_resource || previous.is_none_or(|prev| !same_scope(prev, pick));
            if new_resource {
                let entry = resource_entry(pick);
                let fixed = entry.resource_field.len() + entry.schema_url_field.len();
                resources.push(ResourceGroup { scopes: scopes.len()..scopes.len(), body_len: fixed });
            }
            if new_scope {
                let entry = scope_entry(pick);
                let fixed = entry.scope_field.len() + entry.schema_url_field.len();
                scopes.push(ScopeGroup { picks: i..i, body_len: fixed });
                if let Some(resource) = resources.last_mut() {
                    resource.scopes.end = scopes.len();
                }
            }
            if let Some(scope) = scopes.last_mut() {
                scope.picks.end = i + 1;
                scope.body_len += span_size;
            }
        }
        let mut total = 0;
        for resource in &mut resources {
            resource.body_len +=
                scopes[resource.scopes.clone()].iter().map(|s| len_field_size(s.body_len)).sum::<usize>();
            total += len_field_size(resource.body_len);
        }
        (resources, scopes, total)
    }

    /// Exact size in bytes of the batch [`Reframer::finish`] would build now.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        self.size.total()
    }

    /// Frames the chosen spans into a new batch.
    #[must_use]
    pub fn finish(self) -> SpanBatch {
        let (resource_groups, scope_groups, total) = self.plan();
        debug_assert_eq!(total, self.size.total());
        let mut out = BATCH_BUFFERS.take(total);
        let mut index = BatchIndex {
            resources: Vec::with_capacity(resource_groups.len()),
            scopes: Vec::with_capacity(scope_groups.len()),
            spans: Vec::with_capacity(self.picks.len()),
        };
        for resource_group in &resource_groups {
            let first = self.picks[scope_groups[resource_group.scopes.start].picks.start];
            let source = resource_entry(first);
            let resource_position = index.resources.len() as u32;
            put_tag(&mut out, field::REQUEST_RESOURCE_SPANS, WireType::Len);
            put_varint(&mut out, resource_group.body_len as u64);
            let first_scope = index.scopes.len() as u32;
            let mut entry = ResourceEntry {
                scopes: first_scope..first_scope + resource_group.scopes.len() as u32,
                ..ResourceEntry::default()
            };
            if !source.resource_field.is_empty() {
                let delta = out.len() as i64 - i64::from(source.resource_field.start);
                out.extend_from_slice(slice(first.batch, source.resource_field));
                entry.resource_field = source.resource_field.shifted(delta);
                entry.resource = source.resource.shifted(delta);
                entry.service_name = source.service_name.map(|name| name.shifted(delta));
            }
            for scope_group in &scope_groups[resource_group.scopes.clone()] {
                let first = self.picks[scope_group.picks.start];
                let source = scope_entry(first);
                let scope_position = index.scopes.len() as u32;
                put_tag(&mut out, field::RESOURCE_SPANS_SCOPE_SPANS, WireType::Len);
                put_varint(&mut out, scope_group.body_len as u64);
                let first_span = index.spans.len() as u32;
                let spans = first_span..first_span + scope_group.picks.len() as u32;
                let mut scope = ScopeEntry { resource: resource_position, spans, ..ScopeEntry::default() };
                if !source.scope_field.is_empty() {
                    let delta = out.len() as i64 - i64::from(source.scope_field.start);
                    out.extend_from_slice(slice(first.batch, source.scope_field));
                    scope.scope_field = source.scope_field.shifted(delta);
                    scope.scope = source.scope.shifted(delta);
                }
                for pick in &self.picks[scope_group.picks.clone()] {
                    let span = pick.entry();
                    put_tag(&mut out, field::SCOPE_SPANS_SPANS, WireType::Len);
                    put_varint(&mut out, span.body.len() as u64);
                    let delta = out.len() as i64 - i64::from(span.body.start);
                    out.extend_from_slice(slice(pick.batch, span.body));
                    index.spans.push(SpanEntry {
                        body: span.body.shifted(delta),
                        name: span.name.shifted(delta),
                        scope: scope_position,
                        resource: resource_position,
                        ..span.clone()
                    });
                }
                if !source.schema_url_field.is_empty() {
                    let delta = out.len() as i64 - i64::from(source.schema_url_field.start);
                    out.extend_from_slice(slice(first.batch, source.schema_url_field));
                    scope.schema_url_field = source.schema_url_field.shifted(delta);
                }
                index.scopes.push(scope);
            }
            if !source.schema_url_field.is_empty() {
                let delta = out.len() as i64 - i64::from(source.schema_url_field.start);
                out.extend_from_slice(slice(first.batch, source.schema_url_field));
                entry.schema_url_field = source.schema_url_field.shifted(delta);
            }
            index.resources.push(entry);
        }
        debug_assert_eq!(out.len(), total);
        SpanBatch { bytes: BATCH_BUFFERS.freeze(out), index }
    }
}

impl SpanBatch {
    /// A new batch with the spans for which `keep` returns true, in their order.
    #[must_use]
    pub fn filter(&self, mut keep: impl FnMut(&SpanView<'_>) -> bool) -> SpanBatch {
        let mut reframer = Reframer::with_capacity(self.len());
        for span in self.spans() {
            if keep(&span) {
                reframer.push(self, span.position());
            }
        }
        reframer.finish()
    }

    /// Splits into batches of at most `max_spans` spans and, where a single span allows it, at
    /// most `max_bytes` encoded bytes. A span larger than `max_bytes` on its own travels alone.
    /// Zero means "no limit" for either bound.
    #[must_use]
    pub fn split(&self, max_spans: usize, max_bytes: usize) -> Vec<SpanBatch> {
        let max_spans = if max_spans == 0 { usize::MAX } else { max_spans };
        let max_bytes = if max_bytes == 0 { usize::MAX } else { max_bytes };
        if self.len() <= max_spans && self.encoded_len() <= max_bytes {
            return vec![self.clone()];
        }
        let mut parts = Vec::new();
        let mut current = Reframer::new();
        for position in 0..self.len() {
            let over = current.len() + 1 > max_spans || current.encoded_len_with(self, position) > max_bytes;
            if over && !current.is_empty() {
                parts.push(std::mem::take(&mut current).finish());
            }
            current.push(self, position);
        }
        if !current.is_empty() {
            parts.push(current.finish());
        }
        parts
    }

    /// One batch holding every span of `batches`, in order.
    #[must_use]
    pub fn merge(batches: &[SpanBatch]) -> SpanBatch {
        let mut reframer = Reframer::with_capacity(batches.iter().map(SpanBatch::len).sum());
        for batch in batches {
            reframer.push_all(batch);
        }
        reframer.finish()
    }
}
