//! Unit tests of the OTLP/JSON pieces: escaping, hex, numbers, base64, and the decoding rules
//! that the committed vectors (`tests/json_vectors.rs`) do not pin.

use spanpipe_core::{AnyValueView, SpanBatch, SpanKind, StatusCode, MAX_VALUE_DEPTH};

use super::decode::{base64_into, decode_hex};
use super::encode::{write_base64, write_double, write_hex, write_str};
use super::*;
use crate::otlp_map::{parse_decimal, parse_double};

const TRACE: &str = "5b8efff798038103d269b633813fc60c";
const SPAN: &str = "eee19b7ec3c1b174";

/// A request with one span carrying valid ids and `extra` members (each with a leading comma).
fn one_span(extra: &str) -> Vec<u8> {
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{TRACE}","spanId":"{SPAN}"{extra}}}]}}]}}]}}"#
    )
    .into_bytes()
}

fn decode_span(extra: &str) -> Result<SpanBatch, JsonError> {
    decode(&mut one_span(extra))
}

/// The value of the span's only attribute, decoded from `{"key":"k","value":<value>}`.
fn attribute(value: &str) -> Result<SpanBatch, JsonError> {
    decode_span(&format!(r#","attributes":[{{"key":"k","value":{value}}}]"#))
}

fn first_attribute(batch: &SpanBatch) -> AnyValueView<'_> {
    batch.span(0).unwrap().attributes().next().unwrap().value
}

fn kind_of(result: Result<SpanBatch, JsonError>) -> JsonErrorKind {
    result.unwrap_err().kind().clone()
}

fn int_error(ty: &'static str, problem: IntegerProblem) -> JsonErrorKind {
    JsonErrorKind::InvalidInteger { ty, problem }
}

fn encoded(batch: &SpanBatch) -> String {
    let mut out = Vec::new();
    encode(batch, &mut out);
    String::from_utf8(out).unwrap()
}

// --- strings -------------------------------------------------------------------------------------

#[test]
fn escapes_quotes_backslashes_and_control_characters_only() {
    let mut out = Vec::new();
    write_str(&mut out, "a\"b\\c\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f} /\u{7f}é😀\u{2028}");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\"a\\\"b\\\\c\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f /\u{7f}é😀\u{2028}\""
    );
}

#[test]
fn escaped_strings_parse_back_to_the_same_text() {
    let text = "quote\" back\\ nul\u{0} tab\t esc\u{1b} ünïcödé 中 😀";
    let mut out = Vec::new();
    write_str(&mut out, text);
    assert_eq!(serde_json::from_slice::<String>(&out).unwrap(), text);
}

/// The word-at-a-time check that lets most strings be copied whole must find every byte that
/// needs escaping, at every position of a word and of the tail, next to any neighbour (the SWAR
/// tests borrow across bytes), and must never escape anything else.
#[test]
fn every_byte_is_escaped_exactly_when_json_requires_it_wherever_it_stands() {
    fn reference(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &byte in bytes {
            match byte {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x09 => out.extend_from_slice(b"\\t"),
                0x0A => out.extend_from_slice(b"\\n"),
                0x0C => out.extend_from_slice(b"\\f"),
                0x0D => out.extend_from_slice(b"\\r"),
                0x00..0x20 => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
                _ => out.push(byte),
            }
        }
        out.push(b'"');
        out
    }
    // Every ASCII byte (non-ASCII bytes are never escaped; a few UTF-8 characters stand in for
    // them) at every position of strings of 1 to 19 bytes, among neighbours of several kinds.
    let specials = ["\u{80}", "é", "😀", "\u{7f}"];
    for len in 1..20 {
        for position in 0..len {
            for neighbour in ["a", "\u{0}", "\u{1f}", "\u{21}", "\u{5b}", "\u{ff}", "\"", "\\"] {
                let mut chars: Vec<String> = vec![neighbour.to_owned(); len];
                for byte in 0u8..0x80 {
                    chars[position] = char::from(byte).to_string();
                    let text: String = chars.concat();
                    let mut out = Vec::new();
                    write_str(&mut out, &text);
                    assert_eq!(out, reference(text.as_bytes()), "{text:?}");
                }
                for special in specials {
                    chars[position] = special.to_owned();
                    let text: String = chars.concat();
                    let mut out = Vec::new();
                    write_str(&mut out, &text);
                    assert_eq!(out, reference(text.as_bytes()), "{text:?}");
                }
            }
        }
    }
}

#[test]
fn json_string_escapes_decode_like_raw_utf8() {
    let batch = attribute(r#"{"stringValue":"\u00e9\ud83d\ude80\u005c\/\n"}"#).unwrap();
    assert_eq!(first_attribute(&batch).as_str(), Some("é🚀\\/\n"));
}

// --- ids -----------------------------------------------------------------------------------------

#[test]
fn hex_ids_decode_in_any_case_and_encode_lower_case() {
    assert_eq!(decode_hex::<8>("00ff7FaB12cD9e0A"), Ok([0x00, 0xff, 0x7f, 0xab, 0x12, 0xcd, 0x9e, 0x0a]));
    let mut out = Vec::new();
    write_hex(&mut out, &[0x00, 0xff, 0x7f, 0xab]);
    assert_eq!(out, b"\"00ff7fab\"");
}

#[test]
fn rejects_ids_of_wrong_length_or_with_non_hex_digits() {
    assert_eq!(decode_hex::<8>("00ff"), Err(JsonErrorKind::InvalidIdLength { expected: 16, found: 4 }));
    assert_eq!(decode_hex::<8>("00ff7fab12cd9e0a00"), Err(JsonErrorKind::InvalidIdLength { expected: 16, found: 18 }));
    assert_eq!(decode_hex::<8>("00ff7fab12cd9e0g"), Err(JsonErrorKind::InvalidHexDigit { position: 15 }));
    assert_eq!(decode_hex::<8>("0x"), Err(JsonErrorKind::InvalidHexDigit { position: 1 }));
    // 16 bytes but 15 characters: the non-hex character is what is reported.
    assert_eq!(decode_hex::<8>("00ff7fab12cd9eé"), Err(JsonErrorKind::InvalidHexDigit { position: 14 }));
}

#[test]
fn rejects_span_with_empty_or_null_span_id_naming_the_path() {
    let mut body =
        format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{TRACE}","spanId":null}}]}}]}}]}}"#)
            .into_bytes();
    let error = decode(&mut body).unwrap_err();
    assert_eq!(error.kind(), &JsonErrorKind::MissingId { expected: 16 });
    assert_eq!(error.path().to_string(), "resourceSpans[0].scopeSpans[0].spans[0].spanId");
}

#[test]
fn empty_parent_span_id_is_a_root_span() {
    let batch = decode_span(r#","parentSpanId":"""#).unwrap();
    assert_eq!(batch.span(0).unwrap().parent_span_id(), None);
    let batch = decode_span(r#","parent_span_id":"EEE19B7EC3C1B173""#).unwrap();
    assert_eq!(batch.span(0).unwrap().parent_span_id(), Some(&[0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73]));
}

#[test]
fn rejects_link_without_ids() {
    let error = decode_span(&format!(r#","links":[{{}},{{"traceId":"{TRACE}"}}]"#)).unwrap_err();
    assert_eq!(error.kind(), &JsonErrorKind::MissingId { expected: 32 });
    assert_eq!(error.path().to_string(), "resourceSpans[0].scopeSpans[0].spans[0].links[0].traceId");
}

// --- integers ------------------------------------------------------------------------------------

#[test]
fn decimal_strings_parse_exactly_at_the_edges() {
    assert_eq!(parse_decimal("9223372036854775807"), Ok(i128::from(i64::MAX)));
    assert_eq!(parse_decimal("-9223372036854775808"), Ok(i128::from(i64::MIN)));
    assert_eq!(parse_decimal("18446744073709551615"), Ok(i128::from(u64::MAX)));
    assert_eq!(parse_decimal("0"), Ok(0));
    assert_eq!(parse_decimal("-0"), Ok(0));
    assert_eq!(parse_decimal("007"), Ok(7));
    assert_eq!(parse_decimal("18446744073709551616"), Err(IntegerProblem::OutOfRange));
    assert_eq!(parse_decimal("-18446744073709551616"), Err(IntegerProblem::OutOfRange));
    assert_eq!(parse_decimal("0018446744073709551615"), Ok(i128::from(u64::MAX)));
    assert_eq!(parse_decimal(&"9".repeat(60)), Err(IntegerProblem::OutOfRange));
}

#[test]
fn decimal_strings_refuse_fractions_exponents_signs_and_garbage() {
    assert_eq!(parse_decimal("1e3"), Err(IntegerProblem::Fraction));
    assert_eq!(parse_decimal("1.0"), Err(IntegerProblem::Fraction));
    assert_eq!(parse_decimal("-2.5E-3"), Err(IntegerProblem::Fraction));
    for garbage in ["", "-", "+1", " 1", "1 ", "12x", "0x10", "NaN", "--1"] {
        assert_eq!(parse_decimal(garbage), Err(IntegerProblem::NotAnInteger), "{garbage:?}");
    }
}

#[test]
fn int_value_takes_i64_extremes_as_numbers_and_strings() {
    for (json, expected) in [
        (r#"{"intValue":"9223372036854775807"}"#, i64::MAX),
        (r#"{"intValue":9223372036854775807}"#, i64::MAX),
        (r#"{"intValue":"-9223372036854775808"}"#, i64::MIN),
        (r#"{"intValue":-9223372036854775808}"#, i64::MIN),
        (r#"{"intValue":0}"#, 0),
        (r#"{"int_value":"-1"}"#, -1),
    ] {
        let batch = attribute(json).unwrap();
        assert!(matches!(first_attribute(&batch), AnyValueView::Int(v) if v == expected), "{json}");
        // An int 0 stays an int, it does not become an empty value.
        assert!(encoded(&batch).contains(&format!(r#"{{"intValue":"{expected}"}}"#)), "{json}");
    }
}

#[test]
fn int_value_refuses_out_of_range_and_exponent_forms() {
    let too_big = int_error("int64", IntegerProblem::OutOfRange);
    assert_eq!(kind_of(attribute(r#"{"intValue":9223372036854775808}"#)), too_big);
    assert_eq!(kind_of(attribute(r#"{"intValue":"-9223372036854775809"}"#)), too_big);
    let fraction = int_error("int64", IntegerProblem::Fraction);
    assert_eq!(kind_of(attribute(r#"{"intValue":1e3}"#)), fraction);
    assert_eq!(kind_of(attribute(r#"{"intValue":"1e3"}"#)), fraction);
    assert_eq!(kind_of(attribute(r#"{"intValue":1.0}"#)), fraction);
    let wrong = JsonErrorKind::WrongType { expected: Expected::Integer, found: JsonType::Bool };
    assert_eq!(kind_of(attribute(r#"{"intValue":true}"#)), wrong);
}

#[test]
fn integer_literal_beyond_u64_is_a_syntax_error() {
    // simd-json refuses integer literals past 64 bits while parsing, before any field sees them.
    let kind = kind_of(attribute(r#"{"intValue":18446744073709551616}"#));
    assert!(
        matches!(
            kind,
            JsonErrorKind::Syntax { kind: SyntaxError::InvalidNumber | SyntaxError::NumberTooLarge, offset: Some(_) }
        ),
        "{kind:?}"
    );
}

#[test]
fn times_take_u64_max_as_number_and_string_and_refuse_negatives() {
    let batch =
        decode_span(r#","startTimeUnixNano":18446744073709551615,"endTimeUnixNano":"18446744073709551615""#).unwrap();
    let span = batch.span(0).unwrap();
    assert_eq!((span.start_time_unix_nano(), span.end_time_unix_nano()), (u64::MAX, u64::MAX));
    assert!(encoded(&batch).contains(r#""startTimeUnixNano":"18446744073709551615""#));
    let negative = int_error("fixed64", IntegerProblem::OutOfRange);
    assert_eq!(kind_of(decode_span(r#","startTimeUnixNano":-1"#)), negative);
    assert_eq!(kind_of(decode_span(r#","endTimeUnixNano":"18446744073709551616""#)), negative);
}

#[test]
fn uint32_fields_take_strings_and_refuse_values_past_u32() {
    let batch = decode_span(r#","flags":"769","droppedAttributesCount":4294967295"#).unwrap();
    let span = batch.span(0).unwrap();
    assert_eq!((span.flags(), span.dropped_attributes_count()), (769, u32::MAX));
    assert!(encoded(&batch).contains(r#""flags":769"#));
    // `flags` is a `fixed32`, and the error names it so.
    assert_eq!(kind_of(decode_span(r#","flags":4294967296"#)), int_error("fixed32", IntegerProblem::OutOfRange));
    assert_eq!(kind_of(decode_span(r#","droppedEventsCount":-1"#)), int_error("uint32", IntegerProblem::OutOfRange));
}

// --- enums ---------------------------------------------------------------------------------------

#[test]
fn enums_take_names_and_numbers_and_keep_unknown_numbers() {
    let batch =
        decode_span(r#","kind":"SPAN_KIND_CONSUMER","status":{"code":"STATUS_CODE_ERROR","message":"m"}"#).unwrap();
    let span = batch.span(0).unwrap();
    assert_eq!((span.kind(), span.status_code(), span.status_message()), (SpanKind::Consumer, StatusCode::Error, "m"));
    let batch = decode_span(r#","kind":9,"status":{"code":-3}"#).unwrap();
    let span = batch.span(0).unwrap();
    assert_eq!((span.kind(), span.status_code()), (SpanKind::Other(9), StatusCode::Other(-3)));
    assert!(encoded(&batch).contains(r#""kind":9"#));
}

#[test]
fn rejects_unknown_enum_names_and_out_of_range_numbers() {
    let kind = kind_of(decode_span(r#","status":{"code":"STATUS_CODE_BROKEN"}"#));
    assert_eq!(kind, JsonErrorKind::UnknownEnumName { enum_type: "StatusCode", name: "STATUS_CODE_BROKEN".into() });
    // Names are case-sensitive, as in the protobuf JSON mapping, and numeric strings are not names.
    assert!(matches!(kind_of(decode_span(r#","kind":"span_kind_server""#)), JsonErrorKind::UnknownEnumName { .. }));
    assert!(matches!(kind_of(decode_span(r#","kind":"2""#)), JsonErrorKind::UnknownEnumName { .. }));
    assert_eq!(kind_of(decode_span(r#","kind":2147483648"#)), int_error("enum", IntegerProblem::OutOfRange));
}

// --- doubles -------------------------------------------------------------------------------------

#[test]
fn doubles_parse_from_numbers_and_strings_including_non_finite_names() {
    assert_eq!(parse_double("2.5"), Some(2.5));
    assert_eq!(parse_double("-0.000000000125"), Some(-1.25e-10));
    assert_eq!(parse_double("Infinity"), Some(f64::INFINITY));
    assert_eq!(parse_double("-Infinity"), Some(f64::NEG_INFINITY));
    assert!(parse_double("NaN").is_some_and(f64::is_nan));
    assert_eq!(parse_double("+Inf"), Some(f64::INFINITY));
    assert_eq!(parse_double("2.5x"), None);
    assert_eq!(parse_double(""), None);
    assert_eq!(kind_of(attribute(r#"{"doubleValue":"fast"}"#)), JsonErrorKind::InvalidNumber);
    let batch = attribute(r#"{"doubleValue":1000}"#).unwrap();
    assert!(matches!(first_attribute(&batch), AnyValueView::Double(v) if v == 1000.0));
}

#[test]
fn doubles_encode_shortest_and_non_finite_as_strings() {
    let write = |value: f64| {
        let mut out = Vec::new();
        write_double(&mut out, value);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(write(2.5), "2.5");
    assert_eq!(write(1000.0), "1000.0");
    assert_eq!(write(-1.25e-10), "-1.25e-10");
    assert_eq!(write(f64::NAN), "\"NaN\"");
    assert_eq!(write(f64::INFINITY), "\"Infinity\"");
    assert_eq!(write(f64::NEG_INFINITY), "\"-Infinity\"");
}

#[test]
fn negative_zero_and_extreme_doubles_round_trip_bit_for_bit() {
    for value in [-0.0, f64::MIN_POSITIVE, 5e-324, f64::MAX, f64::MIN, 0.1 + 0.2, 1e21, 123_456_789.125] {
        let mut json = Vec::new();
        write_double(&mut json, value);
        let body = format!(r#"{{"doubleValue":{}}}"#, String::from_utf8(json).unwrap());
        let batch = attribute(&body).unwrap();
        let AnyValueView::Double(decoded) = first_attribute(&batch) else { panic!("{body}") };
        assert_eq!(decoded.to_bits(), value.to_bits(), "{body}");
    }
}

// --- base64 --------------------------------------------------------------------------------------

#[test]
fn base64_encodes_standard_with_padding() {
    for (bytes, expected) in [
        (&b""[..], ""),
        (b"f", "Zg=="),
        (b"fo", "Zm8="),
        (b"foo", "Zm9v"),
        (&[0xfb, 0xff, 0xbf][..], "+/+/"),
        (&[0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x68, 0x69], "+Pn6+/z9/v9oaQ=="),
    ] {
        let mut out = Vec::new();
        write_base64(&mut out, bytes);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}

#[test]
fn base64_decodes_standard_and_url_safe_with_or_without_padding() {
    let expected = [0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x68, 0x69];
    for text in ["+Pn6+/z9/v9oaQ==", "+Pn6+/z9/v9oaQ", "-Pn6-_z9_v9oaQ==", "-Pn6-_z9_v9oaQ"] {
        let mut out = Vec::new();
        base64_into(text, &mut out).unwrap();
        assert_eq!(out, expected, "{text}");
    }
}

#[test]
fn rejects_invalid_base64_including_mixed_alphabets() {
    for text in ["not base64!", "+Pn6-_z9", "Zg=a", "Z"] {
        let error = base64_into(text, &mut Vec::new()).unwrap_err();
        assert!(matches!(error.kind(), JsonErrorKind::InvalidBase64 { .. }), "{text}: {error}");
    }
}

// --- structure -----------------------------------------------------------------------------------

#[test]
fn null_means_absent_and_empty_object_means_present() {
    let batch = decode_span(r#","status":null,"name":null,"attributes":null,"events":null,"kind":null"#).unwrap();
    let span = batch.span(0).unwrap();
    assert!(!span.has_status());
    assert_eq!(span.name(), "");
    let batch = decode_span(r#","status":{}"#).unwrap();
    assert!(batch.span(0).unwrap().has_status());
    assert!(encoded(&batch).contains(r#""status":{}"#));
}

#[test]
fn key_value_without_value_differs_from_empty_value() {
    let batch = decode_span(r#","attributes":[{"key":"none"},{"key":"null","value":null},{"value":{},"key":"empty"}]"#)
        .unwrap();
    let attributes: Vec<_> = batch.span(0).unwrap().attributes().map(|kv| (kv.key, kv.has_value)).collect();
    assert_eq!(attributes, [("none", false), ("null", false), ("empty", true)]);
    assert!(encoded(&batch).contains(r#""attributes":[{"key":"none"},{"key":"null"},{"key":"empty","value":{}}]"#));
}

#[test]
fn of_several_oneof_members_the_last_non_null_one_wins() {
    let batch = attribute(r#"{"stringValue":"a","intValue":"7","boolValue":null}"#).unwrap();
    assert!(matches!(first_attribute(&batch), AnyValueView::Int(7)));
}

#[test]
fn duplicate_resource_keys_keep_the_last() {
    let mut body =
        br#"{"resourceSpans":[{"resource":{"droppedAttributesCount":1},"resource":{"droppedAttributesCount":2}}]}"#
            .to_vec();
    let batch = decode(&mut body).unwrap();
    assert_eq!(batch.resource(0).unwrap().dropped_attributes_count(), 2);
}

#[test]
fn unknown_keys_are_skipped_whatever_they_hold() {
    let batch = decode_span(r#","x":{"spans":[{"traceId":"bad"}]},"y":[[[[null]]]],"z":"s","w":-1.5e300"#).unwrap();
    assert_eq!(batch.len(), 1);
}

#[test]
fn wrong_json_types_are_reported_with_their_path() {
    let error = decode_span(r#","events":[{"name":"e","attributes":{"key":"k"}}]"#).unwrap_err();
    assert_eq!(error.kind(), &JsonErrorKind::WrongType { expected: Expected::Array, found: JsonType::Object });
    assert_eq!(error.path().to_string(), "resourceSpans[0].scopeSpans[0].spans[0].events[0].attributes");
    assert_eq!(
        error.to_string(),
        "expected an array, found an object at `resourceSpans[0].scopeSpans[0].spans[0].events[0].attributes`"
    );
    let error = attribute(r#"{"arrayValue":{"values":[{"stringValue":"a"},null]}}"#).unwrap_err();
    assert_eq!(error.kind(), &JsonErrorKind::WrongType { expected: Expected::Object, found: JsonType::Null });
    assert_eq!(
        error.path().to_string(),
        "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.arrayValue.values[1]"
    );
}

/// `levels` arrays nested inside the attribute value, as `{"arrayValue":{"values":[ … ]}}`.
fn nested_arrays(levels: usize) -> String {
    let mut value = r#"{"stringValue":"leaf"}"#.to_owned();
    for _ in 0..levels {
        value = format!(r#"{{"arrayValue":{{"values":[{value}]}}}}"#);
    }
    value
}

#[test]
fn attribute_values_nest_up_to_the_index_limit_and_no_further() {
    let deepest = attribute(&nested_arrays(MAX_VALUE_DEPTH - 1)).unwrap();
    // What we accept, the index accepts, and we write it back.
    let mut json = encoded(&deepest).into_bytes();
    assert!(decode(&mut json).is_ok());
    let error = attribute(&nested_arrays(MAX_VALUE_DEPTH)).unwrap_err();
    assert_eq!(error.kind(), &JsonErrorKind::TooDeep { limit: MAX_VALUE_DEPTH });
    assert!(error.path().to_string().ends_with("arrayValue"), "{}", error.path());
}

#[test]
fn hostile_nesting_is_refused_without_overflowing_the_stack() {
    let deep_kvlist = (0..10_000).fold(String::from("{}"), |inner, _| {
        format!(r#"{{"kvlistValue":{{"values":[{{"key":"k","value":{inner}}}]}}}}"#)
    });
    assert!(matches!(kind_of(attribute(&deep_kvlist)), JsonErrorKind::TooDeep { .. }));
    let mut deep_unknown = one_span(&format!(r#","x":{}{}"#, "[".repeat(100_000), "]".repeat(100_000)));
    assert!(matches!(decode(&mut deep_unknown).unwrap_err().kind(), JsonErrorKind::TooDeep { .. }));
}

#[test]
fn syntax_errors_carry_a_byte_offset() {
    let kind = decode(&mut br#"{"resourceSpans":[}"#.to_vec()).unwrap_err().kind().clone();
    assert!(matches!(kind, JsonErrorKind::Syntax { offset: Some(_), .. }), "{kind:?}");
    assert!(matches!(decode(&mut Vec::new()).unwrap_err().kind(), JsonErrorKind::Syntax { .. }));
}

#[test]
fn entity_refs_round_trip() {
    let mut body = br#"{"resourceSpans":[{"resource":{"entity_refs":[{"type":"k8s.pod","idKeys":["k8s.pod.uid",""],
        "description_keys":["k8s.pod.name"],"schemaUrl":"s"},{}]},"scopeSpans":[{}]}]}"#
        .to_vec();
    let batch = decode(&mut body).unwrap();
    let json = encoded(&batch);
    assert_eq!(
        json,
        r#"{"resourceSpans":[{"resource":{"entityRefs":[{"schemaUrl":"s","type":"k8s.pod","idKeys":["k8s.pod.uid",""],"descriptionKeys":["k8s.pod.name"]},{}]},"scopeSpans":[{}]}]}"#
    );
}

#[test]
fn canonical_output_omits_defaults_and_keeps_empty_containers() {
    let mut body = format!(
        r#"{{"resourceSpans":[{{"resource":{{}},"scopeSpans":[{{"scope":{{"name":""}},"spans":[{{"traceId":"{}","spanId":"{SPAN}","kind":0,"flags":0,"name":"","traceState":"","droppedLinksCount":0,"attributes":[{{"key":"s","value":{{"stringValue":""}}}},{{"key":"a","value":{{"arrayValue":{{}}}}}},{{"key":"b","value":{{"boolValue":false}}}}]}}]}},{{}}]}},{{}}]}}"#,
        TRACE.to_uppercase()
    )
    .into_bytes();
    let batch = decode(&mut body).unwrap();
    assert_eq!(
        encoded(&batch),
        format!(
            r#"{{"resourceSpans":[{{"resource":{{}},"scopeSpans":[{{"scope":{{}},"spans":[{{"traceId":"{TRACE}","spanId":"{SPAN}","attributes":[{{"key":"s","value":{{"stringValue":""}}}},{{"key":"a","value":{{"arrayValue":{{}}}}}},{{"key":"b","value":{{"boolValue":false}}}}]}}]}},{{}}]}},{{}}]}}"#
        )
    );
}

#[test]
fn codec_refuses_empty_requests_and_encodes_to_bytes() {
    use crate::{Codec, CodecError};
    let error = OtlpJson.decode(bytes::Bytes::from_static(br#"{"resourceSpans":[{}]}"#)).unwrap_err();
    assert!(matches!(error, CodecError::Empty));
    let body = bytes::Bytes::from(one_span(r#","name":"n""#));
    let batch = OtlpJson.decode(body).unwrap();
    let json = OtlpJson.encode(&batch).unwrap();
    assert_eq!(json, encoded(&batch).as_bytes());
    assert_eq!((OtlpJson.name(), OtlpJson.content_types()), ("otlp_json", &["application/json"][..]));
}
