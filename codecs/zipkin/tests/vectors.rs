//! The committed test vectors in `tests/vectors/` (see its README): every Zipkin form of a case
//! decodes to the case's expected OTLP, and every OTLP encoding case gives its expected Zipkin.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use spanpipe_codecs::Codec;
use spanpipe_zipkin::{DecodeOptions, ZipkinV1Json, ZipkinV2Json, ZipkinV2Proto};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// `<case>.<form>.zipkin.<json|pb>` files, with their case.
fn zipkin_vectors() -> Vec<(String, PathBuf)> {
    let mut found: Vec<_> = fs::read_dir(vectors())
        .expect("vectors directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            let stem = name.strip_suffix(".zipkin.json").or_else(|| name.strip_suffix(".zipkin.pb"))?;
            let (case, _form) = stem.split_once('.')?;
            Some((case.to_owned(), path))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn every_zipkin_form_decodes_to_its_expected_otlp() {
    let found = zipkin_vectors();
    assert!(found.len() >= 19, "expected the committed vectors, found {}", found.len());
    for (case, path) in found {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let options = DecodeOptions { parse_string_tags: name.contains(".parse_string_tags.") };
        let body = Bytes::from(fs::read(&path).unwrap());
        let batch = if name.ends_with(".pb") {
            ZipkinV2Proto::new(options).decode(body)
        } else if name.contains(".v1.") {
            ZipkinV1Json::new(options).decode(body)
        } else {
            ZipkinV2Json::new(options).decode(body)
        }
        .unwrap_or_else(|error| panic!("{name}: {error}"));
        let expected = fs::read_to_string(vectors().join(format!("{case}.otlp.json"))).unwrap();
        assert_eq!(common::request(&batch), common::request_from_otlp_json(&expected), "{name}");
    }
}

/// The v1 cases (see the README), including the body the OpenTelemetry Python SDK's Zipkin v1
/// exporter sent, and v1 forms of v2 cases, which must map exactly as their v2 forms do.
#[test]
fn v1_vectors_cover_the_converter_cases() {
    let v1: Vec<String> = zipkin_vectors()
        .into_iter()
        .filter(|(_, path)| path.to_string_lossy().contains(".v1."))
        .map(|(case, _)| case)
        .collect();
    for case in ["python_sdk", "v1_shared", "v1_sides", "v1_addresses", "v1_ids", "v1_binary_values", "full"] {
        assert!(v1.iter().any(|c| c == case), "{case} has no v1 vector");
    }
}

#[test]
fn protobuf_vectors_exist_for_the_cases_that_cover_every_field() {
    // Cases whose point is JSON text (tag strings, annotation JSON, grouping) share the mapping
    // code with protobuf; `full` and `minimal` cover every protobuf field and both id widths.
    for case in ["full", "minimal"] {
        let has_proto =
            zipkin_vectors().iter().any(|(c, path)| c == case && path.extension().is_some_and(|e| e == "pb"));
        assert!(has_proto, "{case} has no protobuf vector");
    }
}

/// `encode_<case>.otlp.json` → `encode_<case>.zipkin.json`, compared as JSON values; the
/// protobuf encoding of the same batch must decode to what the JSON encoding decodes to.
#[test]
fn every_otlp_case_encodes_to_its_expected_zipkin() {
    let mut cases = 0;
    for entry in fs::read_dir(vectors()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(case) = name.strip_suffix(".otlp.json").filter(|case| case.starts_with("encode_")) else { continue };
        cases += 1;
        let otlp = fs::read(&path).unwrap();
        let batch = spanpipe_codecs::otlp_json::decode(&mut otlp.clone()).unwrap();
        let json_codec = ZipkinV2Json::default();
        let encoded = json_codec.encode(&batch).unwrap();
        let actual: serde_json::Value = serde_json::from_slice(&encoded).expect("the encoder writes JSON");
        let expected: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(vectors().join(format!("{case}.zipkin.json"))).unwrap()).unwrap();
        assert_eq!(actual, expected, "{case}: got {}", String::from_utf8_lossy(&encoded));

        let proto_codec = ZipkinV2Proto::default();
        let from_proto = proto_codec.decode(proto_codec.encode(&batch).unwrap()).unwrap();
        let from_json = json_codec.decode(encoded).unwrap();
        assert_eq!(common::request(&from_proto), common::request(&from_json), "{case}: protobuf and JSON differ");
    }
    assert!(cases >= 2, "expected the committed encoding vectors");
}

#[test]
fn default_service_name_is_a_parameter_of_the_encoder() {
    let otlp = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000001","spanId":"0000000000000002"}]}]}]}"#;
    let batch = spanpipe_codecs::otlp_json::decode(&mut otlp.to_vec()).unwrap();
    let codec = ZipkinV2Json::default().with_default_service_name("unknown_service");
    let encoded = codec.encode(&batch).unwrap();
    assert_eq!(&encoded[..], br#"[{"traceId":"0000000000000001","id":"0000000000000002","localEndpoint":{"serviceName":"unknown_service"}}]"#);
    assert_eq!(ZipkinV2Json::default().default_service_name(), "<missing service name>");
}
