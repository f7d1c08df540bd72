//! What the Jaeger fuzz targets check (`jaeger_compact`, `jaeger_binary`, `jaeger_proto`):
//! arbitrary bytes as one `Agent.emitBatch` datagram in the compact or the binary Thrift protocol,
//! or as one protobuf `PostSpansRequest`.
//!
//! For an accepted input: the batch's bytes pass the index scan again with the same index, the
//! lazy views read every field, every attribute list has unique keys, and encoding to Jaeger and decoding again keeps every span with
//! its ids, parent, name and µs-truncated times — except spans left with nothing but zeros,
//! which the decoder drops as the Collector does. After that first round the mapping is a fixed
//! point: encoding what the second decode gives yields the same bytes again.

use spanpipe_core::SpanView;
use spanpipe_jaeger::{decode_agent, encode_agent, Protocol};

/// What a Jaeger round trip keeps of a span: times as whole microseconds.
fn kept(span: &SpanView<'_>) -> impl PartialEq + std::fmt::Debug {
    let start_micros = span.start_time_unix_nano() / 1000;
    let duration_micros = span.end_time_unix_nano().wrapping_sub(span.start_time_unix_nano()) as i64 / 1000;
    (
        *span.trace_id(),
        *span.span_id(),
        span.parent_span_id().copied(),
        span.name().to_owned(),
        start_micros,
        duration_micros,
        span.flags() & 1,
    )
}

/// A span with zero ids, no parent, no name, zero times and flags: Jaeger cannot tell it from
/// an unset struct, and the decoder drops it.
fn all_zero(span: &SpanView<'_>) -> bool {
    *span.trace_id() == [0; 16]
        && *span.span_id() == [0; 8]
        && span.parent_span_id().is_none()
        && span.name().is_empty()
        && span.start_time_unix_nano() / 1000 == 0
        && span.end_time_unix_nano().wrapping_sub(span.start_time_unix_nano()) as i64 / 1000 == 0
        && span.flags() & 1 == 0
}

fn check(protocol: Protocol, data: &[u8]) {
    let Ok(batch) = decode_agent(protocol, data) else { return };
    super::check_written(&batch);
    super::assert_unique_keys(&batch);

    // The decoder writes one resource per message, so the agent encoding takes the batch whole.
    let encoded = encode_agent(protocol, &batch).expect("a decoded datagram re-encodes");
    let again = decode_agent(protocol, &encoded).expect("our own datagram decodes");
    let before: Vec<_> = batch.spans().filter(|s| !all_zero(s)).map(|s| kept(&s)).collect();
    let after: Vec<_> = again.spans().filter(|s| !all_zero(s)).map(|s| kept(&s)).collect();
    assert_eq!(before, after, "Jaeger -> batch -> Jaeger -> batch changes the spans");

    // The first round may still drop a span that became all zeros; from the second on, nothing
    // changes.
    let encoded_again = encode_agent(protocol, &again).expect("re-encodes");
    let third = decode_agent(protocol, &encoded_again).expect("decodes again");
    let encoded_third = encode_agent(protocol, &third).expect("re-encodes");
    assert_eq!(encoded_again, encoded_third, "Jaeger encoding is not a fixed point after one round");
}

/// The `jaeger_compact` target: arbitrary bytes as a compact-protocol datagram (port 6831).
pub fn jaeger_compact(data: &[u8]) {
    check(Protocol::Compact, data);
}

/// The `jaeger_binary` target: arbitrary bytes as a binary-protocol datagram (port 6832).
pub fn jaeger_binary(data: &[u8]) {
    check(Protocol::Binary, data);
}

/// The `jaeger_proto` target: arbitrary bytes as a `jaeger.api_v2.PostSpansRequest` (the gRPC
/// collector API, port 14250). Each resource of an accepted request (one per distinct process)
/// also crosses to Thrift and back keeping every span as the Thrift targets check it, and the
/// whole request through spanpipe's protobuf encoder and back.
pub fn jaeger_proto(data: &[u8]) {
    let Ok(batch) = spanpipe_jaeger::decode_post_spans(data) else { return };
    super::check_written(&batch);
    super::assert_unique_keys(&batch);
    let messages = spanpipe_jaeger::encode_per_resource(Protocol::Binary, &batch).expect("each resource encodes");
    assert_eq!(messages.len(), batch.resources().len(), "one Thrift batch per process");
    let before: Vec<_> = batch.spans().filter(|s| !all_zero(s)).map(|s| kept(&s)).collect();
    let mut after = Vec::new();
    for message in &messages {
        let again = decode_agent(Protocol::Binary, message).expect("our own datagram decodes");
        after.extend(again.spans().filter(|s| !all_zero(s)).map(|s| kept(&s)));
    }
    assert_eq!(before, after, "protobuf -> batch -> Thrift -> batch changes the spans");

    // And through spanpipe's own protobuf encoding: the spans are kept, and after one round the
    // mapping is a fixed point.
    let again = spanpipe_jaeger::decode_post_spans(&spanpipe_jaeger::encode_post_spans(&batch))
        .expect("our own request decodes");
    let through_proto: Vec<_> = again.spans().filter(|s| !all_zero(s)).map(|s| kept(&s)).collect();
    assert_eq!(before, through_proto, "protobuf -> batch -> protobuf -> batch changes the spans");
    let encoded = spanpipe_jaeger::encode_post_spans(&again);
    let third = spanpipe_jaeger::decode_post_spans(&encoded).expect("decodes again");
    assert_eq!(encoded, spanpipe_jaeger::encode_post_spans(&third), "protobuf encoding is not a fixed point");
}
