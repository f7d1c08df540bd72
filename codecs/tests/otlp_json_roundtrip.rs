//! Round-trip properties of the OTLP/JSON codec over adversarial requests
//! (`spanpipe_testkit::strategies::request`): awkward Unicode, extreme integers, infinities,
//! unknown enum values, absent and empty messages, nested attribute values.
//!
//! - protobuf → batch → our JSON → batch → protobuf gives back the original request;
//! - our JSON is a fixed point: encode(decode(encode(x))) == encode(x), byte for byte;
//! - our JSON is valid JSON (serde_json accepts it).
//!
//! Speed is measured by the criterion suite (`benches/benches/codecs.rs`), not here.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use proptest::prelude::*;
use prost::Message;
use spanpipe_codecs::otlp_json::{self, JsonErrorKind};
use spanpipe_core::SpanBatch;
use spanpipe_testkit::{realistic, strategies};

fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum()
}

/// Requests with at least one span: the index refuses the others as empty (those are covered by
/// the vectors and unit tests, and empty resources and scopes still occur among other spans).
fn request_with_spans() -> impl Strategy<Value = ExportTraceServiceRequest> {
    strategies::request().prop_filter("a request without spans is refused as empty", |r| span_count(r) > 0)
}

fn to_request(batch: &SpanBatch) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(batch.bytes().clone()).expect("a batch is valid protobuf")
}

fn encode(batch: &SpanBatch) -> Vec<u8> {
    let mut json = Vec::new();
    otlp_json::encode(batch, &mut json);
    json
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn protobuf_to_json_to_protobuf_keeps_the_request(request in request_with_spans()) {
        let batch = SpanBatch::decode(Bytes::from(request.encode_to_vec())).unwrap();
        let json = encode(&batch);
        let decoded = otlp_json::decode(&mut json.clone()).map_err(|error| {
            TestCaseError::fail(format!("{error}\n{}", String::from_utf8_lossy(&json)))
        })?;
        prop_assert_eq!(decoded.len(), batch.len());
        prop_assert_eq!(to_request(&decoded), request);
    }

    #[test]
    fn our_json_is_a_fixed_point(request in request_with_spans()) {
        let batch = SpanBatch::decode(Bytes::from(request.encode_to_vec())).unwrap();
        let json = encode(&batch);
        let again = encode(&otlp_json::decode(&mut json.clone()).unwrap());
        prop_assert_eq!(String::from_utf8_lossy(&again), String::from_utf8_lossy(&json));
    }

    #[test]
    fn our_json_is_valid_json(request in request_with_spans()) {
        let batch = SpanBatch::decode(Bytes::from(request.encode_to_vec())).unwrap();
        let json = encode(&batch);
        let parsed = serde_json::from_slice::<serde_json::Value>(&json);
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, String::from_utf8_lossy(&json));
    }

    /// Edited and truncated JSON never panics the decoder, and whatever it refuses it refuses
    /// itself, naming the JSON path: the index behind the writer never has to (its errors carry
    /// protobuf offsets that mean nothing to a JSON sender).
    #[test]
    fn decoding_damaged_json_never_panics_and_reports_json_faults(
        request in request_with_spans(),
        cut in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let batch = SpanBatch::decode(Bytes::from(request.encode_to_vec())).unwrap();
        let mut json = encode(&batch);
        let at = cut.index(json.len());
        json[at] = byte;
        let edited = otlp_json::decode(&mut json.clone());
        json.truncate(at);
        let truncated = otlp_json::decode(&mut json);
        for result in [edited, truncated] {
            if let Err(error) = result {
                prop_assert!(!matches!(error.kind(), JsonErrorKind::Index(_)), "{}", error);
            }
        }
    }
}

#[test]
fn realistic_payloads_round_trip() {
    for spans in [1, 10, 500] {
        let request = realistic::request(spans, 7);
        let batch = SpanBatch::decode(Bytes::from(request.encode_to_vec())).unwrap();
        let json = encode(&batch);
        let decoded = otlp_json::decode(&mut json.clone()).unwrap();
        assert_eq!(to_request(&decoded), request);
        // opentelemetry-proto's serde (what the serde_json path reads) understands our output too.
        // Not compared for equality: serde_json without its `float_roundtrip` feature parses some
        // doubles one ulp off (22.82341482270512 → 22.823414822705118).
        let via_serde: ExportTraceServiceRequest = serde_json::from_slice(&json).unwrap();
        assert_eq!(span_count(&via_serde), spans);
    }
}

/// Regression (fuzzing, `fuzz/corpus/otlp_proto/regression_nan_with_payload.pb`): a NaN
/// `double_value` with its sign bit and payload bits set. The protobuf JSON mapping spells every
/// NaN `"NaN"`, so those bits cannot survive OTLP/JSON: the value must come back as the canonical
/// quiet NaN, at any nesting, with everything around it unchanged, and the JSON must be a fixed
/// point. This is the one loss besides the string-table fields that the round-trip checks allow.
#[test]
fn nan_with_sign_and_payload_round_trips_as_the_canonical_nan() {
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, ArrayValue, KeyValue};

    let odd_nan = f64::from_bits(0xffff_fffe_c006_f1e5);
    assert!(odd_nan.is_nan() && odd_nan.to_bits() != f64::NAN.to_bits());
    let double = |value: f64| AnyValue { value: Some(Value::DoubleValue(value)) };
    let with_values = |top: f64, nested: f64| {
        let mut request = realistic::request(1, 3);
        let span = &mut request.resource_spans[0].scope_spans[0].spans[0];
        span.attributes.push(KeyValue { key: "queue_ms".to_owned(), value: Some(double(top)), key_strindex: 0 });
        let array = Value::ArrayValue(ArrayValue { values: vec![double(1.5), double(nested)] });
        span.attributes.push(KeyValue {
            key: "samples".to_owned(),
            value: Some(AnyValue { value: Some(array) }),
            key_strindex: 0,
        });
        request
    };

    let batch = SpanBatch::decode(Bytes::from(with_values(odd_nan, -odd_nan).encode_to_vec())).unwrap();
    let json = encode(&batch);
    let text = String::from_utf8_lossy(&json);
    assert!(text.contains(r#""key":"queue_ms","value":{"doubleValue":"NaN"}"#), "{text}");
    assert!(text.contains(r#"{"doubleValue":1.5},{"doubleValue":"NaN"}"#), "{text}");

    let decoded = otlp_json::decode(&mut json.clone()).unwrap();
    let expected = with_values(f64::NAN, f64::NAN);
    // prost's re-encoding compares the doubles by their bits, so this checks the canonical NaN.
    assert_eq!(to_request(&decoded).encode_to_vec(), expected.encode_to_vec());
    assert_eq!(String::from_utf8_lossy(&encode(&decoded)), text);
}
