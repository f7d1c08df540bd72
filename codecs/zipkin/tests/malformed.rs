//! The malformed-input table: every kind of bad body gives a typed error that names the place,
//! and no input — truncated at any byte, of the wrong types, with bad hex or bad wire types —
//! makes a decoder panic.

use spanpipe_core::wire::{put_len_field, put_tag, put_varint};
use spanpipe_core::WireType;
use spanpipe_zipkin::{decode_json, decode_proto, decode_v1_json, DecodeOptions, Location, Problem, ZipkinError};

/// A JSON decoder of either version.
type JsonDecoder = fn(&mut Vec<u8>, DecodeOptions) -> Result<spanpipe_core::SpanBatch, ZipkinError>;

fn json_error(body: &str) -> ZipkinError {
    decode_json(&mut body.as_bytes().to_vec(), DecodeOptions::default()).expect_err(body)
}

fn v1_error(body: &str) -> ZipkinError {
    decode_v1_json(&mut body.as_bytes().to_vec(), DecodeOptions::default()).expect_err(body)
}

type Matches = fn(&Problem) -> bool;

/// Each body must fail at its path with a matching problem.
fn check_table(decode: fn(&str) -> ZipkinError, table: &[(&str, &str, Matches)]) {
    for (body, path, matches) in table {
        let error = decode(body);
        assert_eq!(error.location, at(path), "{body}: {error}");
        assert!(matches(&error.problem), "{body}: unexpected {error}");
    }
}

fn at(path: &str) -> Location {
    Location::Json(path.to_owned())
}

#[test]
fn json_errors_name_the_path_and_the_problem() {
    let table: &[(&str, &str, Matches)] = &[
        (r#"{}"#, "$", |p| matches!(p, Problem::WrongType { expected: "an array of spans", found: "an object" })),
        (r#"[1]"#, "$[0]", |p| matches!(p, Problem::WrongType { found: "a number", .. })),
        (r#"[{"id":"1"}]"#, "$[0].traceId", |p| matches!(p, Problem::Missing)),
        (r#"[{"traceId":"1"}]"#, "$[0].id", |p| matches!(p, Problem::Missing)),
        (r#"[{"traceId":"xyz","id":"1"}]"#, "$[0].traceId", |p| {
            matches!(p, Problem::InvalidHexId { max_digits: 32, .. })
        }),
        (r#"[{"traceId":"0123456789abcdef0123456789abcdef0","id":"1"}]"#, "$[0].traceId", |p| {
            matches!(p, Problem::InvalidHexId { .. })
        }),
        (r#"[{"traceId":"1","id":"12345678901234567"}]"#, "$[0].id", |p| {
            matches!(p, Problem::InvalidHexId { max_digits: 16, .. })
        }),
        (r#"[{"traceId":"1","id":"1","parentId":"g"}]"#, "$[0].parentId", |p| {
            matches!(p, Problem::InvalidHexId { .. })
        }),
        (r#"[{"traceId":"00","id":"1"}]"#, "$[0].traceId", |p| matches!(p, Problem::ZeroId)),
        (r#"[{"traceId":"1","id":"0000000000000000"}]"#, "$[0].id", |p| matches!(p, Problem::ZeroId)),
        (r#"[{"traceId":1,"id":"1"}]"#, "$[0].traceId", |p| {
            matches!(p, Problem::WrongType { expected: "a string", .. })
        }),
        (r#"[{"traceId":"1","id":"1","timestamp":-5}]"#, "$[0].timestamp", |p| matches!(p, Problem::Number(..))),
        (r#"[{"traceId":"1","id":"1","timestamp":1.5}]"#, "$[0].timestamp", |p| matches!(p, Problem::Number(..))),
        (r#"[{"traceId":"1","id":"1","duration":"5"}]"#, "$[0].duration", |p| matches!(p, Problem::WrongType { .. })),
        (r#"[{"traceId":"1","id":"1","timestamp":18446744073709551615}]"#, "$[0].duration", |p| {
            matches!(p, Problem::TimestampOverflow(_))
        }),
        (r#"[{"traceId":"1","id":"1","tags":{"a":1}}]"#, "$[0].tags.a", |p| matches!(p, Problem::WrongType { .. })),
        (r#"[{"traceId":"1","id":"1","tags":{"http.url":true}}]"#, "$[0].tags[\"http.url\"]", |p| {
            matches!(p, Problem::WrongType { found: "a boolean", .. })
        }),
        (r#"[{"traceId":"1","id":"1","tags":[]}]"#, "$[0].tags", |p| matches!(p, Problem::WrongType { .. })),
        (r#"[{"traceId":"1","id":"1","annotations":[{"value":"x"}]}]"#, "$[0].annotations[0].timestamp", |p| {
            matches!(p, Problem::Missing)
        }),
        (r#"[{"traceId":"1","id":"1","annotations":[{"timestamp":1}]}]"#, "$[0].annotations[0].value", |p| {
            matches!(p, Problem::Missing)
        }),
        (r#"[{"traceId":"1","id":"1","annotations":[{"timestamp":1,"value":2}]}]"#, "$[0].annotations[0].value", |p| {
            matches!(p, Problem::WrongType { .. })
        }),
        (r#"[{"traceId":"1","id":"1","annotations":{}}]"#, "$[0].annotations", |p| {
            matches!(p, Problem::WrongType { .. })
        }),
        (r#"[{"traceId":"1","id":"1","localEndpoint":{"ipv4":"1.2.3"}}]"#, "$[0].localEndpoint.ipv4", |p| {
            matches!(p, Problem::InvalidAddress { family: "IPv4", .. })
        }),
        (r#"[{"traceId":"1","id":"1","localEndpoint":{"ipv6":"1.2.3.4"}}]"#, "$[0].localEndpoint.ipv6", |p| {
            matches!(p, Problem::InvalidAddress { family: "IPv6", .. })
        }),
        (r#"[{"traceId":"1","id":"1","remoteEndpoint":{"port":70000}}]"#, "$[0].remoteEndpoint.port", |p| {
            matches!(p, Problem::Number(..))
        }),
        (r#"[{"traceId":"1","id":"1","remoteEndpoint":"x"}]"#, "$[0].remoteEndpoint", |p| {
            matches!(p, Problem::WrongType { .. })
        }),
        (r#"[{"traceId":"1","id":"1","debug":"yes"}]"#, "$[0].debug", |p| matches!(p, Problem::WrongType { .. })),
        (r#"[{"traceId":"1","id":"1"},{"traceId":"1","id":"1","shared":1}]"#, "$[1].shared", |p| {
            matches!(p, Problem::WrongType { .. })
        }),
    ];
    check_table(json_error, table);
}

#[test]
fn v1_json_errors_name_the_path_and_the_problem() {
    let table: &[(&str, &str, Matches)] = &[
        (r#"{"traceId":"1","id":"1"}"#, "$", |p| matches!(p, Problem::WrongType { expected: "an array of spans", .. })),
        (r#"["span"]"#, "$[0]", |p| matches!(p, Problem::WrongType { expected: "a span object", .. })),
        (r#"[{"id":"1"}]"#, "$[0].traceId", |p| matches!(p, Problem::Missing)),
        (r#"[{"traceId":"1"}]"#, "$[0].id", |p| matches!(p, Problem::Missing)),
        (r#"[{"traceId":"0","id":"1"}]"#, "$[0].traceId", |p| matches!(p, Problem::ZeroId)),
        (r#"[{"traceId":"0","traceIdHigh":"0","id":"1"}]"#, "$[0].traceId", |p| matches!(p, Problem::ZeroId)),
        (r#"[{"traceId":"1","id":"0"}]"#, "$[0].id", |p| matches!(p, Problem::ZeroId)),
        (r#"[{"traceId":"1","id":"1","traceIdHigh":"12345678901234567"}]"#, "$[0].traceIdHigh", |p| {
            matches!(p, Problem::InvalidHexId { max_digits: 16, .. })
        }),
        (
            r#"[{"traceId":"10000000000000000000000000000001","traceIdHigh":"2","id":"1"}]"#,
            "$[0].traceIdHigh",
            |p| matches!(p, Problem::TraceIdHighMismatch { trace_id_high } if trace_id_high == "2"),
        ),
        (r#"[{"traceId":"1","id":"1","parentId":7}]"#, "$[0].parentId", |p| {
            matches!(p, Problem::WrongType { expected: "a string", found: "a number" })
        }),
        (r#"[{"traceId":"1","id":"1","name":["x"]}]"#, "$[0].name", |p| matches!(p, Problem::WrongType { .. })),
        (r#"[{"traceId":"1","id":"1","timestamp":-1}]"#, "$[0].timestamp", |p| matches!(p, Problem::Number(..))),
        (r#"[{"traceId":"1","id":"1","duration":0.5}]"#, "$[0].duration", |p| matches!(p, Problem::Number(..))),
        (r#"[{"traceId":"1","id":"1","timestamp":18446744073709551615}]"#, "$[0].duration", |p| {
            matches!(p, Problem::TimestampOverflow(_))
        }),
        (r#"[{"traceId":"1","id":"1","debug":1}]"#, "$[0].debug", |p| matches!(p, Problem::WrongType { .. })),
        (r#"[{"traceId":"1","id":"1","annotations":{}}]"#, "$[0].annotations", |p| {
            matches!(p, Problem::WrongType { expected: "an array of annotations", .. })
        }),
        (r#"[{"traceId":"1","id":"1","annotations":[null]}]"#, "$[0].annotations[0]", |p| {
            matches!(p, Problem::WrongType { expected: "an annotation object", found: "null" })
        }),
        (r#"[{"traceId":"1","id":"1","annotations":[{"value":"cs"}]}]"#, "$[0].annotations[0].timestamp", |p| {
            matches!(p, Problem::Missing)
        }),
        (r#"[{"traceId":"1","id":"1","annotations":[{"timestamp":1}]}]"#, "$[0].annotations[0].value", |p| {
            matches!(p, Problem::Missing)
        }),
        (
            r#"[{"traceId":"1","id":"1","annotations":[{"timestamp":18446744073709551615,"value":"x"}]}]"#,
            "$[0].annotations[0].timestamp",
            |p| matches!(p, Problem::TimestampOverflow(_)),
        ),
        (
            r#"[{"traceId":"1","id":"1","annotations":[{"timestamp":1,"value":"cs","endpoint":{"ipv4":"::1"}}]}]"#,
            "$[0].annotations[0].endpoint.ipv4",
            |p| matches!(p, Problem::InvalidAddress { family: "IPv4", .. }),
        ),
        (
            r#"[{"traceId":"1","id":"1","annotations":[{"timestamp":1,"value":"cs","endpoint":"web"}]}]"#,
            "$[0].annotations[0].endpoint",
            |p| matches!(p, Problem::WrongType { expected: "an endpoint object", .. }),
        ),
        (r#"[{"traceId":"1","id":"1","binaryAnnotations":{"k":"v"}}]"#, "$[0].binaryAnnotations", |p| {
            matches!(p, Problem::WrongType { expected: "an array of binary annotations", .. })
        }),
        (r#"[{"traceId":"1","id":"1","binaryAnnotations":[1]}]"#, "$[0].binaryAnnotations[0]", |p| {
            matches!(p, Problem::WrongType { expected: "a binary annotation object", .. })
        }),
        (r#"[{"traceId":"1","id":"1","binaryAnnotations":[{"value":"v"}]}]"#, "$[0].binaryAnnotations[0].key", |p| {
            matches!(p, Problem::Missing)
        }),
        (
            r#"[{"traceId":"1","id":"1","binaryAnnotations":[{"key":3,"value":"v"}]}]"#,
            "$[0].binaryAnnotations[0].key",
            |p| matches!(p, Problem::WrongType { expected: "a string", .. }),
        ),
        (
            r#"[{"traceId":"1","id":"1","binaryAnnotations":[{"key":"k","value":{"a":1}}]}]"#,
            "$[0].binaryAnnotations[0].value",
            |p| matches!(p, Problem::WrongType { expected: "a string, boolean or number", found: "an object" }),
        ),
        (
            r#"[{"traceId":"1","id":"1","binaryAnnotations":[{"key":"sa","value":true,"endpoint":{"port":65536}}]}]"#,
            "$[0].binaryAnnotations[0].endpoint.port",
            |p| matches!(p, Problem::Number(..)),
        ),
        (r#"[{"traceId":"1","id":"1"},{"traceId":"1","id":"x"}]"#, "$[1].id", |p| {
            matches!(p, Problem::InvalidHexId { .. })
        }),
    ];
    check_table(v1_error, table);
}

#[test]
fn json_syntax_errors_are_reported_for_the_body() {
    for decode in [json_error, v1_error] {
        for body in ["", "[", r#"[{"traceId":"1""#, "[}", "nul"] {
            let error = decode(body);
            assert!(matches!(error.problem, Problem::Syntax(_)), "{body}: {error}");
            assert_eq!(error.location, Location::Body);
        }
    }
}

const VALID_JSON: &str = include_str!("vectors/full.canonical.zipkin.json");
const VALID_V1_JSON: &str = include_str!("vectors/v1_shared.v1.zipkin.json");
const VALID_PROTO: &[u8] = include_bytes!("vectors/full.proto.zipkin.pb");

fn assert_every_prefix_is_an_error(valid: &str, decode: JsonDecoder) {
    for end in 0..valid.len() {
        let prefix = &valid.as_bytes()[..end];
        let result = decode(&mut prefix.to_vec(), DecodeOptions::default());
        // A prefix that ends in trailing whitespace after the closing bracket would be valid; the
        // vectors end with `]\n`, so only the full text and the text without its newline are.
        if end >= valid.trim_end().len() {
            assert!(result.is_ok(), "prefix of {end} bytes");
        } else {
            assert!(result.is_err(), "prefix of {end} bytes was accepted");
        }
    }
}

#[test]
fn json_truncated_at_every_byte_is_an_error() {
    assert_every_prefix_is_an_error(VALID_JSON, decode_json);
}

#[test]
fn v1_json_truncated_at_every_byte_is_an_error() {
    assert_every_prefix_is_an_error(VALID_V1_JSON, decode_v1_json);
}

#[test]
fn protobuf_truncated_at_every_byte_is_an_error() {
    assert!(decode_proto(&[], DecodeOptions::default()).is_ok_and(|batch| batch.is_empty()));
    for end in 1..VALID_PROTO.len() {
        let error = decode_proto(&VALID_PROTO[..end], DecodeOptions::default()).expect_err("a truncated span");
        assert!(matches!(error.location, Location::Byte(offset) if offset <= end), "{end}: {error}");
    }
    assert!(decode_proto(VALID_PROTO, DecodeOptions::default()).is_ok());
}

fn span_body(fields: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    put_len_field(&mut body, 1, fields);
    body
}

/// trace id 1 (8 bytes) and span id 1, the fields every valid span needs.
fn ids() -> Vec<u8> {
    let mut fields = Vec::new();
    put_len_field(&mut fields, 1, &[0, 0, 0, 0, 0, 0, 0, 1]);
    put_len_field(&mut fields, 3, &[0, 0, 0, 0, 0, 0, 0, 1]);
    fields
}

fn with_ids(extra: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut fields = ids();
    extra(&mut fields);
    span_body(&fields)
}

fn endpoint_with(field: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    with_ids(|span| {
        let mut endpoint = Vec::new();
        field(&mut endpoint);
        put_len_field(span, 8, &endpoint);
    })
}

#[test]
fn protobuf_errors_name_the_offset_and_the_problem() {
    let table: Vec<(&str, Vec<u8>, usize, Matches)> = vec![
        ("spans as a varint", vec![0x08, 0x01], 0, |p| {
            matches!(
                p,
                Problem::WireType { field: "ListOfSpans.spans", found: WireType::Varint, expected: WireType::Len }
            )
        }),
        ("group wire type", vec![0x0b], 0, |p| matches!(p, Problem::Wire(_))),
        ("length past the end", vec![0x0a, 0x05, 0x00], 1, |p| matches!(p, Problem::Wire(_))),
        ("varint overflow", [&[0x0a][..], &[0xff; 11]].concat(), 1, |p| matches!(p, Problem::Wire(_))),
        ("no ids", span_body(&[]), 0, |p| matches!(p, Problem::Missing)),
        ("five-byte trace id", span_body(&[0x0a, 5, 1, 2, 3, 4, 5]), 2, |p| {
            matches!(p, Problem::IdLength { expected: "8 or 16", found: 5 })
        }),
        (
            "zero trace id",
            span_body(&[&[0x0a, 8][..], &[0; 8], &[0x1a, 8], &[0, 0, 0, 0, 0, 0, 0, 1]].concat()),
            2,
            |p| matches!(p, Problem::ZeroId),
        ),
        ("seven-byte parent id", with_ids(|s| put_len_field(s, 2, &[1; 7])), 22, |p| {
            matches!(p, Problem::IdLength { expected: "0 or 8", found: 7 })
        }),
        ("timestamp as a varint", with_ids(|s| s.extend_from_slice(&[0x30, 0x01])), 22, |p| {
            matches!(p, Problem::WireType { field: "Span.timestamp", expected: WireType::I64, .. })
        }),
        ("name not UTF-8", with_ids(|s| put_len_field(s, 5, &[0xff, 0xfe])), 22, |p| matches!(p, Problem::InvalidUtf8)),
        (
            "three-byte IPv4",
            endpoint_with(|e| put_len_field(e, 2, &[1, 2, 3])),
            24,
            |p| matches!(p, Problem::InvalidAddress { family: "IPv4", value } if value == "010203"),
        ),
        (
            "negative port",
            endpoint_with(|e| {
                put_tag(e, 4, WireType::Varint);
                put_varint(e, u64::MAX);
            }),
            24,
            |p| matches!(p, Problem::Number(..)),
        ),
        ("tag value as a varint", with_ids(|s| put_len_field(s, 11, &[0x10, 0x01])), 24, |p| {
            matches!(p, Problem::WireType { field: "Span.tags.value", .. })
        }),
        (
            "annotation timestamp overflow",
            with_ids(|s| {
                let mut annotation = vec![0x09];
                annotation.extend_from_slice(&u64::MAX.to_le_bytes());
                put_len_field(s, 10, &annotation);
            }),
            22,
            |p| matches!(p, Problem::TimestampOverflow(_)),
        ),
    ];
    for (what, body, offset, matches) in table {
        let error = decode_proto(&body, DecodeOptions::default()).expect_err(what);
        assert_eq!(error.location, Location::Byte(offset), "{what}: {error}");
        assert!(matches(&error.problem), "{what}: unexpected {error}");
    }
}

#[test]
fn codec_errors_carry_the_codec_name_and_the_message() {
    use spanpipe_codecs::{Codec, CodecError};
    let error =
        spanpipe_zipkin::ZipkinV2Json::default().decode(bytes::Bytes::from_static(b"[{\"id\":\"1\"}]")).unwrap_err();
    match error {
        CodecError::Other { codec, message } => {
            assert_eq!(codec, "zipkin_json");
            assert_eq!(message, "required field is missing at `$[0].traceId`");
        }
        other => panic!("unexpected {other:?}"),
    }
    let empty = spanpipe_zipkin::ZipkinV2Proto::default().decode(bytes::Bytes::new()).unwrap_err();
    assert!(empty.is_empty_request());
    let empty = spanpipe_zipkin::ZipkinV2Json::default().decode(bytes::Bytes::from_static(b"[]")).unwrap_err();
    assert!(empty.is_empty_request());
}

#[test]
fn v1_codec_decodes_and_refuses_to_encode_with_a_clear_error() {
    use spanpipe_codecs::{Codec, CodecError};
    use spanpipe_zipkin::{ReceiveOnly, ZipkinV1Json};
    let codec = ZipkinV1Json::default();
    assert_eq!((codec.name(), codec.content_types()), ("zipkin_v1_json", &["application/json"][..]));
    let batch = codec.decode(bytes::Bytes::from_static(br#"[{"traceId":"1","id":"2"}]"#)).unwrap();
    match codec.encode(&batch).unwrap_err() {
        CodecError::Other { codec, message } => {
            assert_eq!(codec, "zipkin_v1_json");
            assert_eq!(message, ReceiveOnly.to_string());
            assert!(message.contains("receive-only") && message.contains("zipkin_json"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    match codec.decode(bytes::Bytes::from_static(b"[{\"traceId\":\"1\"}]")).unwrap_err() {
        CodecError::Other { codec, message } => {
            assert_eq!(codec, "zipkin_v1_json");
            assert_eq!(message, "required field is missing at `$[0].id`");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(codec.decode(bytes::Bytes::from_static(b"[]")).unwrap_err().is_empty_request());
    assert!(ZipkinV1Json::new(DecodeOptions { parse_string_tags: true }).options().parse_string_tags);
}
