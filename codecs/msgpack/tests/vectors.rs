//! Committed vectors (`tests/vectors/`, written by Python's `msgpack` package through
//! `generate.py`, independent of this crate) against their expected OTLP, and a table of
//! malformed bodies with the error each must get.
//!
//! - `<name>.canonical.msgpack` decodes to the request of `<name>.expected.json` (read by the
//!   OTLP/JSON codec), and our encoder writes exactly Python's bytes back;
//! - `<name>.alternative.msgpack` (every documented leniency) decodes to the same request.

use std::path::PathBuf;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use spanpipe_codecs::{Codec, CodecError, OtlpJson};
use spanpipe_core::SpanBatch;
use spanpipe_msgpack::{Expected, Family, IntegerProblem, MsgpackErrorKind, OtlpMsgpack};

const VECTORS: &[&str] = &["spec_example", "all_value_types", "multi_resource"];

fn vector(file: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(file);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn request(batch: &SpanBatch) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(batch.bytes().clone()).unwrap()
}

fn expected(name: &str) -> ExportTraceServiceRequest {
    request(&OtlpJson.decode(Bytes::from(vector(&format!("{name}.expected.json")))).unwrap())
}

#[test]
fn canonical_vectors_decode_to_the_expected_request_and_encode_back_to_the_same_bytes() {
    for name in VECTORS {
        let body = vector(&format!("{name}.canonical.msgpack"));
        let batch = spanpipe_msgpack::decode(&body).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(request(&batch), expected(name), "{name}");
        let mut again = Vec::new();
        spanpipe_msgpack::encode(&batch, &mut again);
        assert_eq!(again, body, "{name}: our encoding differs from Python's");
    }
}

#[test]
fn alternative_vectors_decode_to_the_expected_request() {
    for name in VECTORS {
        let body = vector(&format!("{name}.alternative.msgpack"));
        let batch = spanpipe_msgpack::decode(&body).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(request(&batch), expected(name), "{name}");
    }
}

#[test]
fn the_codec_answers_to_its_content_types_and_refuses_empty_requests() {
    assert_eq!(OtlpMsgpack.name(), "msgpack");
    assert_eq!(
        OtlpMsgpack.content_types(),
        ["application/msgpack", "application/x-msgpack", "application/vnd.msgpack"]
    );
    assert!(matches!(OtlpMsgpack.decode(Bytes::from_static(&[0x80])), Err(CodecError::Empty)));
    let body = Bytes::from(vector("spec_example.canonical.msgpack"));
    let batch = OtlpMsgpack.decode(body.clone()).unwrap();
    assert_eq!(OtlpMsgpack.encode(&batch).unwrap(), body);
    let error = OtlpMsgpack.decode(Bytes::from_static(&[0x91])).unwrap_err();
    assert!(matches!(&error, CodecError::Other { codec, .. } if codec == "msgpack"), "{error}");
}

/// A MessagePack value, to build malformed bodies readably.
enum V {
    Nil,
    Int(i64),
    Uint(u64),
    F64(f64),
    Str(&'static str),
    Bin(&'static [u8]),
    Arr(Vec<V>),
    Map(Vec<(&'static str, V)>),
    /// Bytes written as they are (a broken or unusual encoding).
    Raw(&'static [u8]),
}

impl V {
    fn write(&self, out: &mut Vec<u8>) {
        use rmp::encode as e;
        match self {
            Self::Nil => e::write_nil(out).unwrap(),
            Self::Int(int) => drop(e::write_sint(out, *int).unwrap()),
            Self::Uint(int) => drop(e::write_uint(out, *int).unwrap()),
            Self::F64(double) => e::write_f64(out, *double).unwrap(),
            Self::Str(text) => e::write_str(out, text).unwrap(),
            Self::Bin(bytes) => e::write_bin(out, bytes).unwrap(),
            Self::Arr(items) => {
                e::write_array_len(out, items.len() as u32).unwrap();
                items.iter().for_each(|item| item.write(out));
            }
            Self::Map(entries) => {
                e::write_map_len(out, entries.len() as u32).unwrap();
                for (key, value) in entries {
                    e::write_str(out, key).unwrap();
                    value.write(out);
                }
            }
            Self::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
}

const TRACE_ID: &[u8] = &[1; 16];
const SPAN_ID: &[u8] = &[2; 8];

/// `{"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}`.
fn with_span(span: Vec<(&'static str, V)>) -> Vec<u8> {
    let body = V::Map(vec![(
        "resourceSpans",
        V::Arr(vec![V::Map(vec![("scopeSpans", V::Arr(vec![V::Map(vec![("spans", V::Arr(vec![V::Map(span)]))])]))])]),
    )]);
    let mut out = Vec::new();
    body.write(&mut out);
    out
}

/// A span with valid ids and the given extra fields.
fn span(extra: Vec<(&'static str, V)>) -> Vec<u8> {
    let mut fields = vec![("traceId", V::Bin(TRACE_ID)), ("spanId", V::Bin(SPAN_ID))];
    fields.extend(extra);
    with_span(fields)
}

/// A span with one attribute whose `value` map is `value`.
fn attribute(value: V) -> Vec<u8> {
    span(vec![("attributes", V::Arr(vec![V::Map(vec![("key", V::Str("k")), ("value", value)])]))])
}

const SPAN: &str = "resourceSpans[0].scopeSpans[0].spans[0]";

#[test]
fn malformed_bodies_are_refused_with_what_and_where() {
    let attr = |rest: &str| format!("{SPAN}.attributes[0].value{rest}");
    let cases: Vec<(&str, Vec<u8>, MsgpackErrorKind, String)> = vec![
        ("empty body", vec![], MsgpackErrorKind::UnexpectedEnd, String::new()),
        (
            "top level is an array",
            vec![0x90],
            MsgpackErrorKind::WrongType { expected: Expected::Map, found: Family::Array },
            String::new(),
        ),
        ("trailing bytes", vec![0x80, 0x00], MsgpackErrorKind::TrailingBytes, String::new()),
        ("reserved marker", vec![0x81, 0xa1, b'x', 0xc1], MsgpackErrorKind::ReservedMarker, String::new()),
        (
            "integer map key",
            vec![0x81, 0x01, 0x01],
            MsgpackErrorKind::NonStringKey { found: Family::Integer },
            String::new(),
        ),
        (
            "truncated span",
            with_span(vec![("traceId", V::Raw(&[0xc4, 0x10, 1, 2]))]),
            MsgpackErrorKind::UnexpectedEnd,
            format!("{SPAN}.traceId"),
        ),
        (
            "trace id of 15 bytes",
            with_span(vec![("traceId", V::Bin(&[1; 15]))]),
            MsgpackErrorKind::InvalidIdLength { expected: 16, found: 15 },
            format!("{SPAN}.traceId"),
        ),
        (
            "span id as non-hex string",
            with_span(vec![("traceId", V::Bin(TRACE_ID)), ("spanId", V::Str("00000000000000zz"))]),
            MsgpackErrorKind::InvalidHexDigit { position: 14 },
            format!("{SPAN}.spanId"),
        ),
        (
            "trace id as an integer",
            with_span(vec![("traceId", V::Int(7))]),
            MsgpackErrorKind::WrongType { expected: Expected::Id, found: Family::Integer },
            format!("{SPAN}.traceId"),
        ),
        (
            "span id nil (absent)",
            with_span(vec![("traceId", V::Bin(TRACE_ID)), ("spanId", V::Nil)]),
            MsgpackErrorKind::MissingId { expected: 8 },
            format!("{SPAN}.spanId"),
        ),
        (
            "trace id empty",
            with_span(vec![("traceId", V::Bin(&[])), ("spanId", V::Bin(SPAN_ID))]),
            MsgpackErrorKind::MissingId { expected: 16 },
            format!("{SPAN}.traceId"),
        ),
        (
            "negative start time",
            span(vec![("startTimeUnixNano", V::Int(-1))]),
            MsgpackErrorKind::InvalidInteger { ty: "fixed64", problem: IntegerProblem::OutOfRange },
            format!("{SPAN}.startTimeUnixNano"),
        ),
        (
            "time as a float",
            span(vec![("endTimeUnixNano", V::F64(1.5))]),
            MsgpackErrorKind::WrongType { expected: Expected::Integer, found: Family::Float },
            format!("{SPAN}.endTimeUnixNano"),
        ),
        (
            "count as an exponent string",
            span(vec![("droppedEventsCount", V::Str("1e3"))]),
            MsgpackErrorKind::InvalidInteger { ty: "uint32", problem: IntegerProblem::Fraction },
            format!("{SPAN}.droppedEventsCount"),
        ),
        (
            "count as a string that is no number",
            span(vec![("droppedLinksCount", V::Str("12x"))]),
            MsgpackErrorKind::InvalidInteger { ty: "uint32", problem: IntegerProblem::NotAnInteger },
            format!("{SPAN}.droppedLinksCount"),
        ),
        (
            "flags beyond 32 bits",
            span(vec![("flags", V::Uint(1 << 32))]),
            MsgpackErrorKind::InvalidInteger { ty: "fixed32", problem: IntegerProblem::OutOfRange },
            format!("{SPAN}.flags"),
        ),
        (
            "unknown kind name",
            span(vec![("kind", V::Str("SPAN_KIND_SERVERISH"))]),
            MsgpackErrorKind::UnknownEnumName { enum_type: "SpanKind", name: "SPAN_KIND_SERVERISH".into() },
            format!("{SPAN}.kind"),
        ),
        (
            "status code beyond int32",
            span(vec![("status", V::Map(vec![("code", V::Uint(1 << 40))]))]),
            MsgpackErrorKind::InvalidInteger { ty: "enum", problem: IntegerProblem::OutOfRange },
            format!("{SPAN}.status.code"),
        ),
        (
            "name as bin",
            span(vec![("name", V::Bin(b"GET"))]),
            MsgpackErrorKind::WrongType { expected: Expected::Str, found: Family::Bin },
            format!("{SPAN}.name"),
        ),
        (
            "name not UTF-8",
            span(vec![("name", V::Raw(&[0xa2, 0xc3, 0x28]))]),
            MsgpackErrorKind::InvalidUtf8,
            format!("{SPAN}.name"),
        ),
        (
            "events not an array",
            span(vec![("events", V::Map(vec![]))]),
            MsgpackErrorKind::WrongType { expected: Expected::Array, found: Family::Map },
            format!("{SPAN}.events"),
        ),
        (
            "link without span id",
            span(vec![("links", V::Arr(vec![V::Map(vec![("traceId", V::Bin(TRACE_ID))])]))]),
            MsgpackErrorKind::MissingId { expected: 8 },
            format!("{SPAN}.links[0].spanId"),
        ),
        (
            "intValue beyond int64",
            attribute(V::Map(vec![("intValue", V::Uint(u64::MAX))])),
            MsgpackErrorKind::InvalidInteger { ty: "int64", problem: IntegerProblem::OutOfRange },
            attr(".intValue"),
        ),
        (
            "doubleValue as a word",
            attribute(V::Map(vec![("doubleValue", V::Str("lots"))])),
            MsgpackErrorKind::InvalidNumber,
            attr(".doubleValue"),
        ),
        (
            "bytesValue not base64",
            attribute(V::Map(vec![("bytesValue", V::Str("*not base64*"))])),
            MsgpackErrorKind::InvalidBase64,
            attr(".bytesValue"),
        ),
        (
            "two members of one AnyValue",
            attribute(V::Map(vec![("stringValue", V::Str("a")), ("intValue", V::Int(1))])),
            MsgpackErrorKind::DuplicateKey { key: "intValue" },
            attr(".intValue"),
        ),
        (
            "resource given twice",
            {
                let body = V::Map(vec![(
                    "resourceSpans",
                    V::Arr(vec![V::Map(vec![("resource", V::Map(vec![])), ("resource", V::Map(vec![]))])]),
                )]);
                let mut out = Vec::new();
                body.write(&mut out);
                out
            },
            MsgpackErrorKind::DuplicateKey { key: "resource" },
            "resourceSpans[0].resource".into(),
        ),
        (
            "values nested too deep",
            attribute(nested_arrays(40)),
            MsgpackErrorKind::TooDeep { limit: spanpipe_core::MAX_VALUE_DEPTH },
            String::new(),
        ),
    ];
    for (name, body, kind, path) in cases {
        let error = match spanpipe_msgpack::decode(&body) {
            Ok(batch) => panic!("{name}: accepted as {} spans", batch.len()),
            Err(error) => error,
        };
        assert_eq!(error.kind(), &kind, "{name}: {error}");
        // The depth case's path is long and not the point; every other path is exact.
        if !matches!(kind, MsgpackErrorKind::TooDeep { .. }) {
            assert_eq!(error.path().to_string(), path, "{name}: {error}");
        }
        assert!(error.offset() <= body.len(), "{name}: offset {} of {}", error.offset(), body.len());
    }
}

/// An `AnyValue` holding arrays nested `levels` deep.
fn nested_arrays(levels: usize) -> V {
    (0..levels).fold(V::Map(vec![("intValue", V::Int(1))]), |inner, _| {
        V::Map(vec![("arrayValue", V::Map(vec![("values", V::Arr(vec![inner]))]))])
    })
}

#[test]
fn offsets_point_at_the_offending_value() {
    let body = span(vec![("name", V::Int(3))]);
    let error = spanpipe_msgpack::decode(&body).unwrap_err();
    assert_eq!(body.get(error.offset()), Some(&0x03), "{error}");
    assert_eq!(
        error.to_string(),
        format!("expected a string, found an integer at byte {} (`{SPAN}.name`)", error.offset())
    );
}
