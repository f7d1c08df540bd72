//! The OTLP/JSON decoder against the committed test vectors in `tests/vectors/`.
//!
//! Every valid file `<group>.<variant>.json` must decode to exactly `vectors_expected::expected`
//! of its group (compared as opentelemetry-proto structs after prost-decoding the batch), and our
//! canonical encoding of it must decode back to the same. Every file in `vectors/invalid/` must be
//! refused with the kind of error its name states (see `vectors/README.md`).

mod vectors_expected;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use spanpipe_codecs::otlp_json::{self, Expected, IntegerProblem, JsonErrorKind, JsonType};
use spanpipe_codecs::{Codec, CodecError, JsonError, OtlpJson};
use spanpipe_core::SpanBatch;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// `*.json` files directly in `dir`, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|name| name.to_str()).unwrap()
}

fn to_request(batch: &SpanBatch) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(batch.bytes().clone()).expect("a batch is valid protobuf")
}

fn decode_file(path: &Path) -> Result<SpanBatch, JsonError> {
    let mut body = std::fs::read(path).unwrap();
    otlp_json::decode(&mut body)
}

#[test]
fn every_valid_vector_decodes_to_its_expected_request() {
    let mut groups_seen = BTreeSet::new();
    for path in json_files(&vectors_dir()) {
        let name = file_name(&path);
        let group = name.split('.').next().unwrap();
        assert!(
            vectors_expected::GROUPS.contains(&group),
            "{name}: group {group:?} has no expected decoding in vectors_expected.rs"
        );
        groups_seen.insert(group.to_owned());
        let expected = vectors_expected::expected(group);

        let batch = decode_file(&path).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(to_request(&batch), expected, "{name}: decoded request differs");

        // Through the codec, from a shared (copied) and from a unique (in place) buffer.
        let body = Bytes::from(std::fs::read(&path).unwrap());
        let shared = body.clone();
        let from_shared = OtlpJson.decode(body).unwrap_or_else(|error| panic!("{name}: {error}"));
        drop(shared);
        assert_eq!(to_request(&from_shared), expected, "{name}: codec (shared buffer)");
        let from_unique = OtlpJson.decode(Bytes::from(std::fs::read(&path).unwrap())).unwrap();
        assert_eq!(to_request(&from_unique), expected, "{name}: codec (unique buffer)");

        // Our canonical encoding of it decodes to the same request, and is a fixed point.
        let mut json = Vec::new();
        otlp_json::encode(&batch, &mut json);
        let reencoded = otlp_json::decode(&mut json.clone()).unwrap_or_else(|error| {
            panic!("{name}: our encoding is refused: {error}\n{}", String::from_utf8_lossy(&json))
        });
        assert_eq!(to_request(&reencoded), expected, "{name}: after encode → decode");
        let mut again = Vec::new();
        otlp_json::encode(&reencoded, &mut again);
        assert_eq!(String::from_utf8_lossy(&again), String::from_utf8_lossy(&json), "{name}: not a fixed point");
        serde_json::from_slice::<serde_json::Value>(&json)
            .unwrap_or_else(|error| panic!("{name}: invalid JSON: {error}"));
    }
    let all: BTreeSet<String> = vectors_expected::GROUPS.iter().map(|group| (*group).to_owned()).collect();
    assert_eq!(groups_seen, all, "every group in vectors_expected.rs has vector files");
}

/// The error each invalid vector must produce, by the reason `vectors/README.md` states for it.
/// Files not listed here are only required to be refused.
fn expected_kind(file: &str) -> Option<fn(&JsonErrorKind) -> bool> {
    Some(match file {
        "trace_id_15_bytes.json" => |k| matches!(k, JsonErrorKind::InvalidIdLength { expected: 32, found: 30 }),
        "trace_id_non_hex.json" => |k| matches!(k, JsonErrorKind::InvalidHexDigit { .. }),
        "span_id_7_bytes.json" => |k| matches!(k, JsonErrorKind::InvalidIdLength { expected: 16, found: 14 }),
        "trace_id_missing.json" | "trace_id_empty_string.json" => {
            |k| matches!(k, JsonErrorKind::MissingId { expected: 32 })
        }
        "span_id_missing.json" => |k| matches!(k, JsonErrorKind::MissingId { expected: 16 }),
        "truncated_json.json" | "trailing_garbage.json" => |k| matches!(k, JsonErrorKind::Syntax { .. }),
        "resource_is_string.json" => {
            |k| matches!(k, JsonErrorKind::WrongType { expected: Expected::Object, found: JsonType::String })
        }
        "top_level_array.json" => {
            |k| matches!(k, JsonErrorKind::WrongType { expected: Expected::Object, found: JsonType::Array })
        }
        "int_value_not_a_number.json" => {
            |k| matches!(k, JsonErrorKind::InvalidInteger { ty: "int64", problem: IntegerProblem::NotAnInteger })
        }
        "int_value_out_of_range_string.json" | "int_value_out_of_range_number.json" => {
            |k| matches!(k, JsonErrorKind::InvalidInteger { ty: "int64", problem: IntegerProblem::OutOfRange })
        }
        "start_time_negative.json" => {
            |k| matches!(k, JsonErrorKind::InvalidInteger { ty: "fixed64", problem: IntegerProblem::OutOfRange })
        }
        "kind_unknown_enum_name.json" => {
            |k| matches!(k, JsonErrorKind::UnknownEnumName { enum_type: "SpanKind", name } if name == "SPAN_KIND_BOGUS")
        }
        "bytes_value_invalid_base64.json" => |k| matches!(k, JsonErrorKind::InvalidBase64 { .. }),
        _ => return None,
    })
}

/// The last key of the JSON path each invalid vector's error must name.
fn expected_last_key(file: &str) -> Option<&'static str> {
    Some(match file {
        "trace_id_15_bytes.json" | "trace_id_non_hex.json" | "trace_id_missing.json" | "trace_id_empty_string.json" => {
            "traceId"
        }
        "span_id_7_bytes.json" | "span_id_missing.json" => "spanId",
        "resource_is_string.json" => "resource",
        "int_value_not_a_number.json" | "int_value_out_of_range_string.json" | "int_value_out_of_range_number.json" => {
            "intValue"
        }
        "start_time_negative.json" => "startTimeUnixNano",
        "kind_unknown_enum_name.json" => "kind",
        "bytes_value_invalid_base64.json" => "bytesValue",
        _ => return None,
    })
}

#[test]
fn every_invalid_vector_is_refused_with_its_stated_reason() {
    let files = json_files(&vectors_dir().join("invalid"));
    assert!(!files.is_empty(), "no invalid vectors found");
    for path in files {
        let name = file_name(&path);
        let error = match decode_file(&path) {
            Ok(batch) => panic!("{name}: accepted, decoded to {:?}", to_request(&batch)),
            Err(error) => error,
        };
        if let Some(matches) = expected_kind(name) {
            assert!(matches(error.kind()), "{name}: wrong error kind {:?} ({error})", error.kind());
        }
        if let Some(key) = expected_last_key(name) {
            let path = error.path().to_string();
            assert!(path.starts_with("resourceSpans[0]"), "{name}: path {path:?}");
            assert!(path.ends_with(key), "{name}: path {path:?} does not end in {key}");
        }
        // The codec reports the same failure as a JSON error, never as "empty".
        let codec_error = OtlpJson.decode(Bytes::from(std::fs::read(&path).unwrap())).unwrap_err();
        assert!(matches!(codec_error, CodecError::Json(_)), "{name}: {codec_error:?}");
    }
}

#[test]
fn error_messages_name_the_fault_and_the_path() {
    let path = vectors_dir().join("invalid/trace_id_15_bytes.json");
    let message = decode_file(&path).unwrap_err().to_string();
    assert_eq!(
        message,
        "id must be 32 hex digits, found 30 characters at `resourceSpans[0].scopeSpans[0].spans[0].traceId`"
    );
    let path = vectors_dir().join("invalid/truncated_json.json");
    let message = decode_file(&path).unwrap_err().to_string();
    assert!(message.starts_with("invalid JSON"), "{message}");
}

#[test]
fn a_request_without_spans_is_empty_for_the_codec_but_not_for_decode() {
    for body in [&b"{}"[..], br#"{"resourceSpans":[]}"#, br#"{"resourceSpans":[{"scopeSpans":[{}]}]}"#] {
        let batch = otlp_json::decode(&mut body.to_vec()).unwrap();
        assert!(batch.is_empty());
        let error = OtlpJson.decode(Bytes::copy_from_slice(body)).unwrap_err();
        assert!(error.is_empty_request(), "{error:?}");
    }
}
