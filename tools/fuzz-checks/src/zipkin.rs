//! What the Zipkin fuzz targets check (`zipkin_json`, `zipkin_proto`, `zipkin_v1_json`).
//!
//! For an accepted input (v1 inputs after their conversion to v2 spans): the batch's bytes pass the index scan again with the same index, the
//! lazy views read every field, every attribute list has unique keys, and encoding to Zipkin (JSON and protobuf) and decoding again
//! keeps every span with its indexed fields — except the resource's `service.name`, which the
//! encoder fills with its default when a span had none. One more round changes nothing: each
//! encoder's output is a fixed point.

use spanpipe_core::{SpanBatch, SpanView};
use spanpipe_zipkin::{
    decode_json, decode_proto, decode_v1_json, encode_json, encode_proto, DecodeOptions, ZipkinError,
    DEFAULT_SERVICE_NAME,
};

/// The indexed fields a Zipkin round trip keeps (all but the service name).
fn kept(span: &SpanView<'_>) -> impl PartialEq + std::fmt::Debug {
    (
        *span.trace_id(),
        *span.span_id(),
        span.parent_span_id().copied(),
        span.name().to_owned(),
        span.kind(),
        span.start_time_unix_nano(),
        span.end_time_unix_nano(),
        span.status_code(),
        span.service_name().map(str::to_owned).or_else(|| Some(DEFAULT_SERVICE_NAME.to_owned())),
    )
}

fn assert_kept(before: &SpanBatch, after: &SpanBatch, what: &str) {
    assert_eq!(before.len(), after.len(), "{what}: span count differs");
    let mut expected: Vec<_> = before.spans().map(|span| format!("{:?}", kept(&span))).collect();
    let mut actual: Vec<_> = after.spans().map(|span| format!("{:?}", kept(&span))).collect();
    // Re-decoding groups spans by service and scope, which may reorder them.
    expected.sort();
    actual.sort();
    assert_eq!(expected, actual, "{what}: spans differ");
}

fn check_accepted(batch: &SpanBatch, options: DecodeOptions) {
    super::check_written(batch);
    super::assert_unique_keys(batch);

    let mut json = String::new();
    encode_json(batch, DEFAULT_SERVICE_NAME, &mut json);
    let from_json = decode_json(&mut json.clone().into_bytes(), options).expect("our own Zipkin JSON decodes");
    assert_kept(batch, &from_json, "Zipkin -> batch -> Zipkin JSON -> batch");
    let mut json_again = String::new();
    encode_json(&from_json, DEFAULT_SERVICE_NAME, &mut json_again);
    let from_json_again = decode_json(&mut json_again.clone().into_bytes(), options).expect("decodes again");
    let mut json_third = String::new();
    encode_json(&from_json_again, DEFAULT_SERVICE_NAME, &mut json_third);
    assert_eq!(json_again, json_third, "Zipkin JSON encoding is not a fixed point");

    let mut proto = Vec::new();
    encode_proto(batch, DEFAULT_SERVICE_NAME, &mut proto);
    let from_proto = decode_proto(&proto, options).expect("our own Zipkin protobuf decodes");
    assert_kept(batch, &from_proto, "Zipkin -> batch -> Zipkin protobuf -> batch");
    assert_eq!(from_proto.bytes(), from_json.bytes(), "the JSON and protobuf encodings decode to different batches");
}

/// Decodes `data` as JSON with either option and checks what is accepted.
fn check_json(data: &[u8], decode: fn(&mut Vec<u8>, DecodeOptions) -> Result<SpanBatch, ZipkinError>) {
    for parse_string_tags in [false, true] {
        let options = DecodeOptions { parse_string_tags };
        if let Ok(batch) = decode(&mut data.to_vec(), options) {
            check_accepted(&batch, options);
        }
    }
}

/// The `zipkin_json` target: arbitrary bytes as a Zipkin v2 JSON body, with either option.
pub fn zipkin_json(data: &[u8]) {
    check_json(data, decode_json);
}

/// The `zipkin_v1_json` target: arbitrary bytes as a Zipkin v1 JSON body, with either option.
pub fn zipkin_v1_json(data: &[u8]) {
    check_json(data, decode_v1_json);
}

/// The `zipkin_proto` target: arbitrary bytes as a `zipkin.proto3.ListOfSpans`.
pub fn zipkin_proto(data: &[u8]) {
    for parse_string_tags in [false, true] {
        let options = DecodeOptions { parse_string_tags };
        if let Ok(batch) = decode_proto(data, options) {
            check_accepted(&batch, options);
        }
    }
}
