//! Canonical batch → Jaeger Thrift, written once for both protocols from the batch's views.
//!
//! A Jaeger `Batch` has one `Process`, so each OTLP resource becomes its own `Batch`. Spans and
//! processes are encoded independently of what surrounds them (a struct restarts the compact
//! protocol's field-id deltas), which lets the datagram splitter encode each span once and
//! then pack the encoded spans into datagrams.

use std::borrow::Cow;

use spanpipe_core::{AnyValueView, EventView, ResourceView, ScopeView, SpanBatch, SpanView, StatusCode};

use crate::error::EncodeError;
use crate::thrift::{MessageType, ProtocolWriter, TType};
use crate::{keys, NO_SERVICE_NAME};

pub(crate) mod proto;

/// A tag about to be written.
#[derive(Clone, Debug)]
pub(crate) enum TagOut<'a> {
    Str(Cow<'a, str>),
    Double(f64),
    Bool(bool),
    Long(i64),
    Binary(&'a [u8]),
}

impl<'a> TagOut<'a> {
    /// An OTLP attribute value as a Jaeger tag value: arrays and key-value lists become their
    /// JSON text, as the specification asks; an empty value the empty string.
    fn of(value: AnyValueView<'a>) -> Self {
        match value {
            AnyValueView::String(s) => Self::Str(Cow::Borrowed(s)),
            AnyValueView::Bool(b) => Self::Bool(b),
            AnyValueView::Int(i) => Self::Long(i),
            AnyValueView::Double(d) => Self::Double(d),
            AnyValueView::Bytes(b) => Self::Binary(b),
            AnyValueView::Empty => Self::Str(Cow::Borrowed("")),
            nested @ (AnyValueView::Array(_) | AnyValueView::KvList(_)) => {
                let mut json = String::new();
                crate::json::value(&mut json, nested);
                Self::Str(Cow::Owned(json))
            }
        }
    }
}

fn write_tag<W: ProtocolWriter>(w: &mut W, key: &str, value: &TagOut<'_>) {
    w.struct_begin();
    w.field_binary(1, key.as_bytes());
    match value {
        TagOut::Str(s) => {
            w.field_i32(2, 0);
            w.field_binary(3, s.as_bytes());
        }
        TagOut::Double(d) => {
            w.field_i32(2, 1);
            w.field_double(4, *d);
        }
        TagOut::Bool(b) => {
            w.field_i32(2, 2);
            w.field_bool(5, *b);
        }
        TagOut::Long(l) => {
            w.field_i32(2, 3);
            w.field_i64(6, *l);
        }
        TagOut::Binary(b) => {
            w.field_i32(2, 4);
            w.field_binary(7, b);
        }
    }
    w.struct_end();
}

fn list_len(count: usize, what: &'static str) -> Result<u32, EncodeError> {
    u32::try_from(count).ok().filter(|c| *c <= i32::MAX as u32).ok_or(EncodeError::ListTooLong { what, count })
}

fn write_tags<W: ProtocolWriter>(w: &mut W, id: i16, tags: &[(&str, TagOut<'_>)]) -> Result<(), EncodeError> {
    w.field_list(id, TType::Struct, list_len(tags.len(), "a tag list")?);
    for (key, value) in tags {
        write_tag(w, key, value);
    }
    Ok(())
}

/// A resource as a Jaeger process: `service.name` → the service name (the Collector's
/// `OTLPResourceNoServiceName` when there is none), the other attributes → tags.
pub(crate) fn process<'a>(resource: &ResourceView<'a>) -> (&'a str, Vec<(&'a str, TagOut<'a>)>) {
    let service = resource.service_name();
    let tags = resource
        .attributes()
        .filter(|kv| !(kv.key == keys::SERVICE_NAME && service.is_some()))
        .map(|kv| (kv.key, TagOut::of(kv.value)))
        .collect();
    (service.unwrap_or(NO_SERVICE_NAME), tags)
}

/// `Process` struct of a resource (see [`process`]).
pub(crate) fn write_process<W: ProtocolWriter>(w: &mut W, resource: &ResourceView<'_>) -> Result<(), EncodeError> {
    let (service, tags) = process(resource);
    w.struct_begin();
    w.field_binary(1, service.as_bytes());
    if !tags.is_empty() {
        write_tags(w, 2, &tags)?;
    }
    w.struct_end();
    Ok(())
}

fn id64(bytes: &[u8]) -> i64 {
    let mut id = [0; 8];
    id.copy_from_slice(&bytes[..8]);
    i64::from_be_bytes(id)
}

/// A span's references: the parent first as `CHILD_OF`, then every link (`FOLLOWS_FROM` unless
/// its `opentracing.ref_type` attribute says `child_of`). Each is `(child_of, trace id, span id)`.
pub(crate) fn references<'a>(span: &SpanView<'a>) -> impl Iterator<Item = (bool, [u8; 16], [u8; 8])> + 'a {
    let parent = span.parent_span_id().map(|parent| (true, *span.trace_id(), *parent));
    parent.into_iter().chain(span.links().map(|link| {
        let child_of = link.attributes().get(keys::REF_TYPE).and_then(|v| v.as_str()) == Some(keys::CHILD_OF);
        (child_of, link.trace_id, link.span_id)
    }))
}

/// An event's fields as a Jaeger log's: its name as `event` (unless an attribute of that name
/// says otherwise: the specification gives the attribute precedence), its attributes, and its
/// dropped count.
pub(crate) fn log_fields<'a>(event: &EventView<'a>, fields: &mut Vec<(&'a str, TagOut<'a>)>) {
    fields.clear();
    if !event.name.is_empty() && event.attributes().get(keys::EVENT).is_none() {
        fields.push((keys::EVENT, TagOut::Str(Cow::Borrowed(event.name))));
    }
    fields.extend(event.attributes().map(|kv| (kv.key, TagOut::of(kv.value))));
    if event.dropped_attributes_count != 0 {
        fields.push((keys::EVENT_DROPPED_ATTRIBUTES, TagOut::Long(i64::from(event.dropped_attributes_count))));
    }
}

/// The tags of a span, in the Collector's order: scope, attributes, then the OTLP fields that
/// Jaeger carries as tags. A tag made from an OTLP field replaces an attribute of the same key
/// (the specification lets the `error` tag "override any previous value"; the others follow),
/// so that decoding finds one meaning for each key.
pub(crate) fn span_tags<'a>(span: &SpanView<'a>, scope: &ScopeView<'a>, tags: &mut Vec<(&'a str, TagOut<'a>)>) {
    let details = span.details();
    tags.clear();
    if !scope.name().is_empty() {
        tags.push((keys::SCOPE_NAME, TagOut::Str(Cow::Borrowed(scope.name()))));
        if !scope.version().is_empty() {
            tags.push((keys::SCOPE_VERSION, TagOut::Str(Cow::Borrowed(scope.version()))));
        }
    }
    let scope_tags = tags.len();
    let kind = match span.kind().as_i32() {
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        // INTERNAL: the specification says not to add a tag; others have no Jaeger name.
        _ => "",
    };
    if !kind.is_empty() {
        tags.push((keys::SPAN_KIND, TagOut::Str(Cow::Borrowed(kind))));
    }
    let code = match span.status_code() {
        StatusCode::Ok => "OK",
        StatusCode::Error => "ERROR",
        StatusCode::Unset | StatusCode::Other(_) => "",
    };
    if !code.is_empty() {
        tags.push((keys::STATUS_CODE, TagOut::Str(Cow::Borrowed(code))));
        if span.status_code() == StatusCode::Error {
            tags.push((keys::ERROR, TagOut::Bool(true)));
        }
        let message = details.status.map(|s| s.message).unwrap_or_default();
        if !message.is_empty() {
            tags.push((keys::STATUS_DESCRIPTION, TagOut::Str(Cow::Borrowed(message))));
        }
    }
    if !details.trace_state.is_empty() {
        tags.push((keys::TRACE_STATE, TagOut::Str(Cow::Borrowed(details.trace_state))));
    }
    for (key, count) in [
        (keys::DROPPED_ATTRIBUTES, details.dropped_attributes_count),
        (keys::DROPPED_EVENTS, details.dropped_events_count),
        (keys::DROPPED_LINKS, details.dropped_links_count),
    ] {
        if count != 0 {
            tags.push((key, TagOut::Long(i64::from(count))));
        }
    }
    // The attributes go between the scope's tags and the field tags, less those replaced.
    let fields = tags.split_off(scope_tags);
    let replaced = |key: &str| fields.iter().chain(tags.iter()).any(|(k, _)| *k == key);
    let attributes: Vec<_> =
        details.attributes().filter(|kv| !replaced(kv.key)).map(|kv| (kv.key, TagOut::of(kv.value))).collect();
    tags.extend(attributes);
    tags.extend(fields);
}

/// One `Span` struct. `tags` is scratch space reused across spans.
fn write_span<'a, W: ProtocolWriter>(
    w: &mut W,
    span: &SpanView<'a>,
    tags: &mut Vec<(&'a str, TagOut<'a>)>,
) -> Result<(), EncodeError> {
    let trace_high = id64(&span.trace_id()[..8]);
    let trace_low = id64(&span.trace_id()[8..]);
    let parent = span.parent_span_id().map_or(0, |p| id64(p));
    let start = span.start_time_unix_nano();
    w.struct_begin();
    w.field_i64(1, trace_low);
    w.field_i64(2, trace_high);
    w.field_i64(3, id64(span.span_id()));
    w.field_i64(4, parent);
    w.field_binary(5, span.name().as_bytes());

    let links = span.links().count() + usize::from(span.parent_span_id().is_some());
    if links > 0 {
        w.field_list(6, TType::Struct, list_len(links, "the references")?);
        for (child_of, trace_id, span_id) in references(span) {
            w.struct_begin();
            w.field_i32(1, i32::from(!child_of));
            w.field_i64(2, id64(&trace_id[8..]));
            w.field_i64(3, id64(&trace_id[..8]));
            w.field_i64(4, id64(&span_id));
            w.struct_end();
        }
    }
    w.field_i32(7, (span.flags() & 1) as i32);
    w.field_i64(8, (start / 1000) as i64);
    w.field_i64(9, span.end_time_unix_nano().wrapping_sub(start) as i64 / 1000);

    span_tags(span, &span.scope(), tags);
    if !tags.is_empty() {
        write_tags(w, 10, tags)?;
    }
    let events = span.events().count();
    if events > 0 {
        w.field_list(11, TType::Struct, list_len(events, "the logs")?);
        for event in span.events() {
            log_fields(&event, tags);
            w.struct_begin();
            w.field_i64(1, (event.time_unix_nano / 1000) as i64);
            write_tags(w, 2, tags)?;
            w.struct_end();
        }
    }
    w.struct_end();
    Ok(())
}

/// Writes the message or struct around a batch's process and spans.
pub(crate) fn frame<W: ProtocolWriter>(
    w: &mut W,
    message: bool,
    process: impl FnOnce(&mut W) -> Result<(), EncodeError>,
    span_count: usize,
    spans: impl FnOnce(&mut W) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    if message {
        w.message_begin("emitBatch", MessageType::Oneway, 0);
        w.struct_begin();
        w.field_header(1, TType::Struct);
    }
    w.struct_begin();
    w.field_header(1, TType::Struct);
    process(w)?;
    w.field_list(2, TType::Struct, list_len(span_count, "the spans")?);
    spans(w)?;
    w.struct_end();
    if message {
        w.struct_end();
    }
    Ok(())
}

/// One `Batch` (bare, or inside an `emitBatch` message when `message`) for one resource.
pub(crate) fn resource<W: ProtocolWriter>(resource: &ResourceView<'_>, message: bool) -> Result<Vec<u8>, EncodeError> {
    let count: usize = resource.scopes().map(|s| s.spans().len()).sum();
    let mut w = W::with_buf(Vec::with_capacity(256 + count * 256));
    let mut tags = Vec::new();
    frame(
        &mut w,
        message,
        |w| write_process(w, resource),
        count,
        |w| resource.scopes().flat_map(|scope| scope.spans()).try_for_each(|span| write_span(w, &span, &mut tags)),
    )?;
    Ok(w.into_buf())
}

/// The only resource of `batch`, or why there is not exactly one.
pub(crate) fn single_resource(batch: &SpanBatch) -> Result<ResourceView<'_>, EncodeError> {
    let mut resources = batch.resources();
    match (resources.next(), resources.len()) {
        (Some(resource), 0) => Ok(resource),
        (None, _) => Err(EncodeError::NoResource),
        (Some(_), more) => Err(EncodeError::SeveralResources { resources: more + 1 }),
    }
}

/// Writes bytes that are already encoded, as a [`frame`] part.
fn raw<W: ProtocolWriter>(bytes: &[u8]) -> impl FnOnce(&mut W) -> Result<(), EncodeError> + '_ {
    move |w| {
        w.raw(bytes);
        Ok(())
    }
}

/// `emitBatch` messages of at most `limit` bytes, as Jaeger clients pack spans into UDP
/// datagrams: per resource, spans in order, a new datagram when the next span would not fit.
pub(crate) fn datagrams<W: ProtocolWriter>(batch: &SpanBatch, limit: usize) -> Result<Vec<Vec<u8>>, EncodeError> {
    let mut out = Vec::new();
    let mut tags = Vec::new();
    for resource in batch.resources() {
        let mut process = W::with_buf(Vec::new());
        write_process(&mut process, &resource)?;
        let process = process.into_buf();
        let mut empty = W::with_buf(Vec::new());
        frame(&mut empty, true, raw(&process), 0, raw(&[]))?;
        let base = empty.into_buf().len() - W::list_header_len(0);

        // The encoded spans of the datagram being filled, and how many there are.
        let mut spans: Vec<u8> = Vec::new();
        let mut count = 0;
        let flush = |spans: &mut Vec<u8>, count: &mut usize, out: &mut Vec<Vec<u8>>| -> Result<(), EncodeError> {
            if *count == 0 {
                return Ok(());
            }
            let mut w = W::with_buf(Vec::with_capacity(base + 6 + spans.len()));
            frame(&mut w, true, raw(&process), *count, raw(spans))?;
            out.push(w.into_buf());
            spans.clear();
            *count = 0;
            Ok(())
        };
        for span in resource.scopes().flat_map(|scope| scope.spans()) {
            let mut w = W::with_buf(Vec::new());
            write_span(&mut w, &span, &mut tags)?;
            let encoded = w.into_buf();
            let size_with = |count: usize, bytes: usize| base + W::list_header_len(count as u32) + bytes;
            if size_with(count + 1, spans.len() + encoded.len()) > limit {
                flush(&mut spans, &mut count, &mut out)?;
                let alone = size_with(1, encoded.len());
                if alone > limit {
                    return Err(EncodeError::SpanTooLarge { span: span.position(), size: alone, limit });
                }
            }
            spans.extend_from_slice(&encoded);
            count += 1;
        }
        flush(&mut spans, &mut count, &mut out)?;
    }
    Ok(out)
}
