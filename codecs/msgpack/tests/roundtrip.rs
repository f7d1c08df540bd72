//! Round-trip properties of the MessagePack codec over adversarial requests
//! (`spanpipe_testkit::strategies::request`): awkward Unicode, extreme integers, infinities,
//! unknown enum values, absent and empty messages, nested attribute values.
//!
//! - protobuf → batch → MessagePack → batch gives back every span byte for byte (and the whole
//!   batch: keys in field-number order make the writer reproduce prost's encoding);
//! - our MessagePack is a fixed point: encode(decode(encode(x))) == encode(x);
//! - damaged MessagePack never panics the decoder and is refused by the decoder itself, never by
//!   the index behind the writer.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use proptest::prelude::*;
use prost::Message;
use spanpipe_core::SpanBatch;
use spanpipe_msgpack::MsgpackErrorKind;
use spanpipe_testkit::{realistic, strategies};

fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum()
}

/// Requests with at least one span: the index refuses the others as empty.
fn request_with_spans() -> impl Strategy<Value = ExportTraceServiceRequest> {
    strategies::request().prop_filter("a request without spans is refused as empty", |r| span_count(r) > 0)
}

fn batch_of(request: &ExportTraceServiceRequest) -> SpanBatch {
    SpanBatch::decode(Bytes::from(request.encode_to_vec())).expect("prost output is a valid batch")
}

fn encode(batch: &SpanBatch) -> Vec<u8> {
    let mut out = Vec::new();
    spanpipe_msgpack::encode(batch, &mut out);
    out
}

fn assert_same_spans(decoded: &SpanBatch, original: &SpanBatch) -> Result<(), TestCaseError> {
    prop_assert_eq!(decoded.len(), original.len());
    for (ours, theirs) in decoded.spans().zip(original.spans()) {
        prop_assert_eq!(ours.encoded(), theirs.encoded(), "span {}", theirs.position());
        prop_assert_eq!(ours.resource_position(), theirs.resource_position());
        prop_assert_eq!(ours.scope_position(), theirs.scope_position());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn protobuf_to_msgpack_to_protobuf_keeps_every_span(request in request_with_spans()) {
        let batch = batch_of(&request);
        let body = encode(&batch);
        let decoded = spanpipe_msgpack::decode(&body).map_err(|error| TestCaseError::fail(error.to_string()))?;
        assert_same_spans(&decoded, &batch)?;
        prop_assert_eq!(ExportTraceServiceRequest::decode(decoded.bytes().clone()).unwrap(), request);
        prop_assert_eq!(decoded.bytes(), batch.bytes());
    }

    #[test]
    fn our_msgpack_is_a_fixed_point(request in request_with_spans()) {
        let body = encode(&batch_of(&request));
        let again = encode(&spanpipe_msgpack::decode(&body).unwrap());
        prop_assert_eq!(again, body);
    }

    #[test]
    fn damaged_msgpack_never_panics_and_is_refused_by_the_decoder(
        request in request_with_spans(),
        cut in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut edited = encode(&batch_of(&request));
        let at = cut.index(edited.len());
        edited[at] = byte;
        let truncated = edited[..at].to_vec();
        for body in [edited, truncated] {
            if let Err(error) = spanpipe_msgpack::decode(&body) {
                prop_assert!(!matches!(error.kind(), MsgpackErrorKind::Index(_)), "{}", error);
                prop_assert!(error.offset() <= body.len(), "{}", error);
            }
        }
    }
}

#[test]
fn realistic_payloads_round_trip() {
    for spans in [1, 10, 500] {
        let batch = SpanBatch::decode(Bytes::from(realistic::encoded(spans, 7))).unwrap();
        let body = encode(&batch);
        let decoded = spanpipe_msgpack::decode(&body).unwrap();
        assert_eq!(decoded.bytes(), batch.bytes(), "{spans} spans");
    }
}

/// NaN doubles keep their sign and payload bits: float 64 carries every bit, unlike OTLP/JSON,
/// which spells every NaN `"NaN"`.
#[test]
fn nan_with_sign_and_payload_survives() {
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    let odd_nan = f64::from_bits(0xffff_fffe_c006_f1e5);
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        attributes: vec![KeyValue {
            key: "nan".into(),
            value: Some(AnyValue { value: Some(Value::DoubleValue(odd_nan)) }),
            ..KeyValue::default()
        }],
        ..Span::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: vec![span], ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    };
    let batch = batch_of(&request);
    let decoded = spanpipe_msgpack::decode(&encode(&batch)).unwrap();
    assert_eq!(decoded.bytes(), batch.bytes());
}
