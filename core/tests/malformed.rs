//! The malformed-input table: every structural fault the scan must catch, each with the typed
//! error, the field and the byte offset it must report. Nothing here may panic.

use bytes::Bytes;
use spanpipe_core::{ScanError, ScanErrorKind, SpanBatch, WireType, MAX_VALUE_DEPTH};
use spanpipe_testkit::realistic;

// A tiny hand encoder, so each case states its bytes exactly.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}
fn tag(field: u32, wire: u8) -> Vec<u8> {
    varint(u64::from(field) << 3 | u64::from(wire))
}
fn len_field(field: u32, payload: &[u8]) -> Vec<u8> {
    [tag(field, 2), varint(payload.len() as u64), payload.to_vec()].concat()
}
fn valid_ids() -> Vec<u8> {
    [len_field(1, &[1; 16]), len_field(2, &[2; 8])].concat()
}
/// A request with one resource, one scope and the given span bodies.
fn request(spans: &[Vec<u8>]) -> Vec<u8> {
    let scope_spans: Vec<u8> = spans.iter().flat_map(|s| len_field(2, s)).collect();
    len_field(1, &len_field(2, &scope_spans))
}
/// Offset of a span body's first byte inside `request(&[span])`: three one-byte tags and three
/// one-byte lengths precede it while the payload stays under 128 bytes.
const SPAN_BODY_AT: usize = 6;

fn decode(bytes: Vec<u8>) -> Result<SpanBatch, ScanError> {
    SpanBatch::decode(Bytes::from(bytes))
}

fn expect_error(bytes: Vec<u8>, kind: ScanErrorKind, field: &str, offset: usize) {
    let error = decode(bytes).expect_err("malformed input must be refused");
    assert_eq!((error.kind.clone(), error.field, error.offset), (kind, field, offset), "{error}");
    // The message says what, where and in which field.
    let message = error.to_string();
    assert!(message.contains(field) && message.contains(&offset.to_string()), "{message}");
}

#[test]
fn valid_minimal_request_is_accepted() {
    let batch = decode(request(&[valid_ids()])).unwrap();
    assert_eq!(batch.len(), 1);
}

#[test]
fn rejects_empty_payload_and_requests_without_spans() {
    expect_error(vec![], ScanErrorKind::Empty, "ExportTraceServiceRequest", 0);
    expect_error(len_field(1, &[]), ScanErrorKind::Empty, "ExportTraceServiceRequest", 0);
    expect_error(len_field(1, &len_field(2, &[])), ScanErrorKind::Empty, "ExportTraceServiceRequest", 0);
}

#[test]
fn rejects_span_with_short_trace_id() {
    let span = [len_field(1, &[1; 15]), len_field(2, &[2; 8])].concat();
    expect_error(
        request(&[span]),
        ScanErrorKind::InvalidIdLength { expected: 16, found: 15 },
        "Span.trace_id",
        SPAN_BODY_AT,
    );
}

#[test]
fn rejects_wrong_length_span_and_parent_ids() {
    let span = [len_field(1, &[1; 16]), len_field(2, &[2; 7])].concat();
    expect_error(
        request(&[span]),
        ScanErrorKind::InvalidIdLength { expected: 8, found: 7 },
        "Span.span_id",
        SPAN_BODY_AT + 18,
    );
    let span = [valid_ids(), len_field(4, &[3; 9])].concat();
    expect_error(
        request(&[span]),
        ScanErrorKind::InvalidIdLength { expected: 8, found: 9 },
        "Span.parent_span_id",
        SPAN_BODY_AT + 28,
    );
}

#[test]
fn rejects_span_without_ids() {
    let span = len_field(2, &[2; 8]);
    expect_error(
        request(&[span]),
        ScanErrorKind::InvalidIdLength { expected: 16, found: 0 },
        "Span.trace_id",
        SPAN_BODY_AT,
    );
    let span = len_field(1, &[1; 16]);
    expect_error(
        request(&[span]),
        ScanErrorKind::InvalidIdLength { expected: 8, found: 0 },
        "Span.span_id",
        SPAN_BODY_AT,
    );
}

#[test]
fn rejects_link_with_short_trace_id() {
    let link = [len_field(1, &[1; 15]), len_field(2, &[2; 8])].concat();
    let span = [valid_ids(), len_field(13, &link)].concat();
    let at = SPAN_BODY_AT + 28 + 2;
    expect_error(
        request(&[span]),
        ScanErrorKind::InvalidIdLength { expected: 16, found: 15 },
        "Span.Link.trace_id",
        at,
    );
}

#[test]
fn rejects_link_without_ids() {
    let link = len_field(1, &[1; 16]);
    let span = [valid_ids(), len_field(13, &link)].concat();
    let at = SPAN_BODY_AT + 28 + 2;
    expect_error(request(&[span]), ScanErrorKind::InvalidIdLength { expected: 8, found: 0 }, "Span.Link.span_id", at);
    let link = len_field(2, &[2; 8]);
    let span = [valid_ids(), len_field(13, &link)].concat();
    expect_error(request(&[span]), ScanErrorKind::InvalidIdLength { expected: 16, found: 0 }, "Span.Link.trace_id", at);
}

#[test]
fn rejects_wrong_wire_types() {
    // trace_id as a varint.
    let span = [tag(1, 0), varint(5), len_field(2, &[2; 8])].concat();
    let kind = ScanErrorKind::WrongWireType { expected: WireType::Len, found: WireType::Varint };
    expect_error(request(&[span]), kind, "Span.trace_id", SPAN_BODY_AT);
    // start_time_unix_nano as fixed32 instead of fixed64.
    let span = [valid_ids(), tag(7, 5), vec![0; 4]].concat();
    let kind = ScanErrorKind::WrongWireType { expected: WireType::I64, found: WireType::I32 };
    expect_error(request(&[span]), kind, "Span.start_time_unix_nano", SPAN_BODY_AT + 28);
    // kind as length-delimited.
    let span = [valid_ids(), len_field(6, b"x")].concat();
    let kind = ScanErrorKind::WrongWireType { expected: WireType::Varint, found: WireType::Len };
    expect_error(request(&[span]), kind, "Span.kind", SPAN_BODY_AT + 28);
    // resource_spans as a varint at the top level.
    let kind = ScanErrorKind::WrongWireType { expected: WireType::Len, found: WireType::Varint };
    expect_error([tag(1, 0), varint(1)].concat(), kind, "ExportTraceServiceRequest.resource_spans", 0);
}

#[test]
fn rejects_nonexistent_and_group_wire_types_and_field_zero() {
    for wire in [3u8, 4, 6, 7] {
        let span = [valid_ids(), tag(20, wire)].concat();
        expect_error(request(&[span]), ScanErrorKind::UnsupportedWireType(wire), "Span", SPAN_BODY_AT + 28);
    }
    let span = [valid_ids(), vec![0x00]].concat();
    expect_error(request(&[span]), ScanErrorKind::InvalidTag, "Span", SPAN_BODY_AT + 28);
}

#[test]
fn rejects_overlong_varints() {
    let span = [valid_ids(), tag(6, 0), vec![0xff; 10], vec![0x01]].concat();
    expect_error(request(&[span]), ScanErrorKind::VarintOverflow, "Span", SPAN_BODY_AT + 29);
    // Ten bytes whose last one carries more than the 64th bit.
    let span = [valid_ids(), tag(6, 0), vec![0xff; 9], vec![0x02]].concat();
    expect_error(request(&[span]), ScanErrorKind::VarintOverflow, "Span", SPAN_BODY_AT + 29);
}

#[test]
fn rejects_lengths_past_the_end() {
    // A resource_spans claiming 100 bytes with 3 present.
    let bytes = [tag(1, 2), varint(100), vec![0; 3]].concat();
    expect_error(bytes, ScanErrorKind::LengthPastEnd { length: 100, remaining: 3 }, "ExportTraceServiceRequest", 1);
    // A name that runs past the end of its span but not past the end of the request: the
    // enclosing message bounds it, not the buffer.
    let span = [valid_ids(), tag(5, 2), varint(10), b"abc".to_vec()].concat();
    let mut bytes = request(&[span]);
    bytes.extend(len_field(9, b"trailing bytes after the request's message"));
    expect_error(bytes, ScanErrorKind::LengthPastEnd { length: 10, remaining: 3 }, "Span", SPAN_BODY_AT + 29);
}

#[test]
fn rejects_invalid_utf8_strings() {
    let span = [valid_ids(), len_field(5, &[b'o', b'k', 0xff, 0xfe])].concat();
    expect_error(request(&[span]), ScanErrorKind::InvalidUtf8, "Span.name", SPAN_BODY_AT + 30);
    let key_value = len_field(1, &[0xc3, 0x28]);
    let span = [valid_ids(), len_field(9, &key_value)].concat();
    expect_error(request(&[span]), ScanErrorKind::InvalidUtf8, "KeyValue.key", SPAN_BODY_AT + 32);
}

/// `BatchWriter::finish` skips the UTF-8 check for strings that came in as `&str`, but messages
/// copied in encoded (`encoded_span`, `encoded_resource`) never did: their strings must be checked
/// like those of any request, or a batch would hold strings the views take as validated.
#[test]
fn writer_validates_utf8_of_encoded_spans_and_resources() {
    use spanpipe_core::{Attributes, BatchWriter};

    let bad_span = [valid_ids(), len_field(5, &[b'o', b'k', 0xff])].concat();
    let mut writer = BatchWriter::new();
    writer.resource_spans(|rs| {
        rs.scope_spans(|ss| {
            ss.encoded_span(&bad_span);
        });
    });
    let error = writer.finish().expect_err("an encoded span with invalid UTF-8 must be refused");
    assert_eq!((error.kind.clone(), error.field), (ScanErrorKind::InvalidUtf8, "Span.name"), "{error}");

    let bad_resource = len_field(1, &len_field(1, &[0xc3, 0x28]));
    let mut writer = BatchWriter::new();
    writer.resource_spans(|rs| {
        rs.encoded_resource(&bad_resource);
        rs.scope_spans(|ss| {
            ss.span(|s| {
                s.trace_id(&[1; 16]).span_id(&[2; 8]).name("ok");
            });
        });
    });
    let error = writer.finish().expect_err("an encoded resource with invalid UTF-8 must be refused");
    assert_eq!((error.kind.clone(), error.field), (ScanErrorKind::InvalidUtf8, "KeyValue.key"), "{error}");

    // Valid encoded messages pass, beside strings written through the writer.
    let good_span = [valid_ids(), len_field(5, "né".as_bytes())].concat();
    let mut writer = BatchWriter::new();
    writer.resource_spans(|rs| {
        rs.resource(|r| r.str_attribute("service.name", "checkout"));
        rs.scope_spans(|ss| {
            ss.encoded_span(&good_span);
        });
    });
    let batch = writer.finish().unwrap();
    assert_eq!(batch.span(0).unwrap().name(), "né");
    assert_eq!(batch.span(0).unwrap().service_name(), Some("checkout"));
}

#[test]
fn rejects_attribute_values_nested_too_deep() {
    // AnyValue{array_value: ArrayValue{values: [AnyValue{array_value: ...}]}} nested past the limit.
    // The innermost AnyValue body: int_value (field 3, varint) = 1.
    let mut value = [tag(3, 0), varint(1)].concat();
    for _ in 0..MAX_VALUE_DEPTH + 2 {
        let array = len_field(1, &value);
        value = len_field(5, &array);
    }
    let key_value = [len_field(1, b"deep"), len_field(2, &value)].concat();
    let span = [valid_ids(), len_field(9, &key_value)].concat();
    let error = decode(request(&[span])).expect_err("too deep");
    assert_eq!(error.kind, ScanErrorKind::TooDeep { limit: MAX_VALUE_DEPTH });
    assert_eq!(error.field, "AnyValue.array_value");

    // Just inside the limit is fine.
    let mut value = [tag(3, 0), varint(1)].concat();
    for _ in 0..MAX_VALUE_DEPTH - 2 {
        value = len_field(5, &len_field(1, &value));
    }
    let key_value = [len_field(1, b"deep"), len_field(2, &value)].concat();
    let span = [valid_ids(), len_field(9, &key_value)].concat();
    decode(request(&[span])).expect("nesting within the limit is accepted");
}

#[test]
fn rejects_duplicate_resource_and_scope() {
    let resource = len_field(1, &[]);
    let spans = len_field(2, &len_field(2, &valid_ids()));
    let bytes = len_field(1, &[resource.clone(), resource, spans].concat());
    expect_error(bytes, ScanErrorKind::DuplicateField, "ResourceSpans.resource", 4);

    let scope = len_field(1, b"");
    let scope_spans = [scope.clone(), scope, len_field(2, &valid_ids())].concat();
    let bytes = len_field(1, &len_field(2, &scope_spans));
    expect_error(bytes, ScanErrorKind::DuplicateField, "ScopeSpans.scope", 6);
}

#[test]
fn truncation_at_every_byte_is_refused_or_is_a_shorter_valid_request() {
    let payload = realistic::encoded(4, 21);
    // Top-level field boundaries: a cut exactly there leaves a valid, shorter request.
    let mut boundaries = vec![0];
    let mut at = 0;
    while at < payload.len() {
        let (len, used) = {
            let mut value = 0u64;
            let mut i = 1;
            loop {
                let byte = payload[at + i];
                value |= u64::from(byte & 0x7f) << (7 * (i - 1));
                i += 1;
                if byte < 0x80 {
                    break (value as usize, i);
                }
            }
        };
        at += used + len;
        boundaries.push(at);
    }
    assert_eq!(*boundaries.last().unwrap(), payload.len());
    for cut in 0..payload.len() {
        match decode(payload[..cut].to_vec()) {
            Ok(batch) => {
                assert!(boundaries.contains(&cut), "cut at {cut} accepted although it splits a message");
                assert!(batch.len() < 4);
            }
            Err(error) => {
                assert!(error.offset <= cut, "offset {} beyond the {cut} bytes given", error.offset);
                if boundaries.contains(&cut) {
                    assert_eq!(error.kind, ScanErrorKind::Empty, "a cut at a boundary is only refused when empty");
                }
            }
        }
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let payload = realistic::encoded(3, 8);
    for at in 0..payload.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bytes = payload.clone();
            bytes[at] ^= flip;
            if let Ok(batch) = decode(bytes) {
                // Whatever is accepted must be fully readable.
                for span in batch.spans() {
                    let _ = (span.name(), span.attributes().count(), span.events().count(), span.links().count());
                }
            }
        }
    }
}
