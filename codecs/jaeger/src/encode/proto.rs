//! Canonical batch → Jaeger's protobuf model (`jaeger.api_v2`): a `PostSpansRequest` for the
//! collector's gRPC `CollectorService/PostSpans`, with the same mapping as Thrift (the model
//! pieces of [`super`]), written as model.proto lays it out (see `decode::proto` for the schema).
//!
//! A `Batch` names one process, but each span may name its own: the first resource's process is
//! the batch's, and the spans of every later resource carry theirs, so one request holds the whole
//! batch (Jaeger's collector and spanpipe's decoder both read a span's own process first).

use spanpipe_core::wire::{put_len_field, put_len_header, put_tag, put_varint, varint_len};
use spanpipe_core::{ResourceView, SpanBatch, SpanView, WireType};

use super::{log_fields, process, references, span_tags, TagOut};

/// The whole batch as one `PostSpansRequest`. A batch without resources gives an empty request.
pub(crate) fn post_spans_request(batch: &SpanBatch) -> Vec<u8> {
    let mut spans = Vec::with_capacity(batch.bytes().len() + batch.bytes().len() / 2);
    let mut scratch = Scratch::default();
    let mut batch_process = None;
    for (index, resource) in batch.resources().enumerate() {
        let process = encode_process(&resource, &mut scratch);
        let own_process = if index == 0 { None } else { Some(process.as_slice()) };
        for span in resource.scopes().flat_map(|scope| scope.spans()) {
            scratch.span.clear();
            write_span(&mut scratch, &span, own_process);
            put_len_field(&mut spans, 1, &scratch.span);
        }
        if index == 0 {
            batch_process = Some(process);
        }
    }
    let mut message = spans;
    if let Some(process) = batch_process {
        put_len_field(&mut message, 2, &process);
    }
    let mut request = Vec::with_capacity(message.len() + 8);
    if batch.resources().len() > 0 {
        put_len_field(&mut request, 1, &message);
    }
    request
}

/// Buffers reused from span to span.
#[derive(Default)]
struct Scratch<'a> {
    span: Vec<u8>,
    message: Vec<u8>,
    log: Vec<u8>,
    tags: Vec<(&'a str, TagOut<'a>)>,
    fields: Vec<(&'a str, TagOut<'a>)>,
}

fn encode_process(resource: &ResourceView<'_>, scratch: &mut Scratch<'_>) -> Vec<u8> {
    let (service, tags) = process(resource);
    let mut out = Vec::new();
    put_len_field(&mut out, 1, service.as_bytes());
    for (key, value) in &tags {
        key_value(&mut out, 2, key, value, &mut scratch.message);
    }
    out
}

/// A `KeyValue` as field `field` of `out`; `buf` is scratch space.
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &TagOut<'_>, buf: &mut Vec<u8>) {
    buf.clear();
    put_len_field(buf, 1, key.as_bytes());
    let varint = |buf: &mut Vec<u8>, field: u32, value: u64| {
        if value != 0 {
            put_tag(buf, field, WireType::Varint);
            put_varint(buf, value);
        }
    };
    match value {
        TagOut::Str(text) => {
            if !text.is_empty() {
                put_len_field(buf, 3, text.as_bytes());
            }
        }
        TagOut::Bool(b) => {
            varint(buf, 2, 1);
            varint(buf, 4, u64::from(*b));
        }
        TagOut::Long(l) => {
            varint(buf, 2, 2);
            varint(buf, 5, *l as u64);
        }
        TagOut::Double(d) => {
            varint(buf, 2, 3);
            // Written unless all bits are zero, so that -0.0 keeps its sign.
            if d.to_bits() != 0 {
                put_tag(buf, 6, WireType::I64);
                buf.extend_from_slice(&d.to_le_bytes());
            }
        }
        TagOut::Binary(bytes) => {
            varint(buf, 2, 4);
            if !bytes.is_empty() {
                put_len_field(buf, 7, bytes);
            }
        }
    }
    put_len_field(out, field, buf);
}

/// A `Timestamp` or `Duration` of `nanos` ns as field `field` (seconds and nanos of one sign).
fn seconds_and_nanos(out: &mut Vec<u8>, field: u32, nanos: i128) {
    let (seconds, rest) = ((nanos / 1_000_000_000) as i64, (nanos % 1_000_000_000) as i32);
    // An int32 is sign-extended to 64 bits on the wire.
    let (seconds, rest) = (seconds as u64, i64::from(rest) as u64);
    // Each present part is a one-byte tag and its varint; written straight after the length.
    let part = |value: u64| if value == 0 { 0 } else { 1 + varint_len(value) };
    put_len_header(out, field, part(seconds) + part(rest));
    for (number, value) in [(1, seconds), (2, rest)] {
        if value != 0 {
            put_tag(out, number, WireType::Varint);
            put_varint(out, value);
        }
    }
}

fn write_span<'a>(scratch: &mut Scratch<'a>, span: &SpanView<'a>, own_process: Option<&[u8]>) {
    let out = &mut scratch.span;
    put_len_field(out, 1, span.trace_id());
    put_len_field(out, 2, span.span_id());
    if !span.name().is_empty() {
        put_len_field(out, 3, span.name().as_bytes());
    }
    for (child_of, trace_id, span_id) in references(span) {
        scratch.message.clear();
        put_len_field(&mut scratch.message, 1, &trace_id);
        put_len_field(&mut scratch.message, 2, &span_id);
        if !child_of {
            put_tag(&mut scratch.message, 3, WireType::Varint);
            put_varint(&mut scratch.message, 1);
        }
        put_len_field(out, 4, &scratch.message);
    }
    let sampled = span.flags() & 1;
    if sampled != 0 {
        put_tag(out, 5, WireType::Varint);
        put_varint(out, u64::from(sampled));
    }
    let start = span.start_time_unix_nano();
    seconds_and_nanos(out, 6, i128::from(start));
    seconds_and_nanos(out, 7, i128::from(span.end_time_unix_nano().wrapping_sub(start) as i64));
    span_tags(span, &span.scope(), &mut scratch.tags);
    for (key, value) in &scratch.tags {
        key_value(out, 8, key, value, &mut scratch.message);
    }
    for event in span.events() {
        log_fields(&event, &mut scratch.fields);
        scratch.log.clear();
        seconds_and_nanos(&mut scratch.log, 1, i128::from(event.time_unix_nano));
        for (key, value) in &scratch.fields {
            key_value(&mut scratch.log, 2, key, value, &mut scratch.message);
        }
        put_len_field(out, 9, &scratch.log);
    }
    if let Some(process) = own_process {
        put_len_field(out, 10, process);
    }
}
