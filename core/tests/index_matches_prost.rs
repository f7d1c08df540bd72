//! The index and the lazy views against prost, the reference decoder, on arbitrary requests; and
//! the span writer against prost's encoder, byte for byte.

mod support;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use proptest::prelude::*;
use prost::Message;
use spanpipe_core::{ScanErrorKind, SpanBatch, SpanStatus, StatusCode};
use spanpipe_testkit::{realistic, strategies};

fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum()
}

/// `service.name` as the index defines it: the first attribute with that key and a string value.
fn service_name(resource: Option<&opentelemetry_proto::tonic::resource::v1::Resource>) -> Option<String> {
    resource?.attributes.iter().find_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) if kv.key == "service.name" => Some(s.clone()),
        _ => None,
    })
}

fn check_index(request: &ExportTraceServiceRequest) -> Result<(), TestCaseError> {
    let bytes = Bytes::from(request.encode_to_vec());
    let batch = match SpanBatch::decode(bytes) {
        Err(error) if span_count(request) == 0 => {
            prop_assert_eq!(error.kind, ScanErrorKind::Empty);
            return Ok(());
        }
        other => other.map_err(|e| TestCaseError::fail(format!("valid request refused: {e}")))?,
    };
    prop_assert_eq!(batch.len(), span_count(request));
    prop_assert_eq!(batch.resource_count(), request.resource_spans.len());

    let mut position = 0;
    for (r, rs) in request.resource_spans.iter().enumerate() {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let view = batch.span(position).expect("span exists");
                prop_assert_eq!(&view.trace_id()[..], &span.trace_id[..]);
                prop_assert_eq!(&view.span_id()[..], &span.span_id[..]);
                prop_assert_eq!(
                    view.parent_span_id().map(|p| p.to_vec()).unwrap_or_default(),
                    span.parent_span_id.clone()
                );
                prop_assert_eq!(view.name(), span.name.as_str());
                prop_assert_eq!(view.kind().as_i32(), span.kind);
                prop_assert_eq!(view.start_time_unix_nano(), span.start_time_unix_nano);
                prop_assert_eq!(view.end_time_unix_nano(), span.end_time_unix_nano);
                prop_assert_eq!(view.status_code().as_i32(), span.status.as_ref().map_or(0, |s| s.code));
                prop_assert_eq!(view.flags(), span.flags);
                prop_assert_eq!(view.resource_position(), r);
                prop_assert_eq!(view.service_name().map(str::to_owned), service_name(rs.resource.as_ref()));
                // Every lazily read field, compared span by span.
                prop_assert_eq!(&support::span_to_prost(&view), span);
                prop_assert_eq!(&support::span_details_to_prost(&view), span);
                position += 1;
            }
        }
    }
    // And the whole structure, read through the views only.
    prop_assert_eq!(&support::batch_to_prost(&batch), request);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn index_and_views_equal_prost_decoding(request in strategies::request()) {
        check_index(&request)?;
    }

    #[test]
    fn writer_output_is_byte_identical_to_prost(request in strategies::request()) {
        let batch = support::write_with_writer(&request);
        prop_assert_eq!(batch.bytes().as_ref(), &request.encode_to_vec()[..]);
        prop_assert_eq!(batch.len(), span_count(&request));
        // The writer's scan trusts what the writer vouches for; the index is the full scan's.
        if !batch.is_empty() {
            let scanned = SpanBatch::decode(batch.bytes().clone()).expect("the writer's output scans");
            prop_assert_eq!(batch.index(), scanned.index());
        }
    }
}

#[test]
fn realistic_payloads_index_like_prost() {
    for spans in [1, 100, 1000] {
        let request = realistic::request(spans, 7);
        check_index(&request).expect("realistic payload indexes like prost");
    }
}

#[test]
fn writer_matches_prost_on_realistic_payloads() {
    let request = realistic::request(300, 3);
    let batch = support::write_with_writer(&request);
    assert_eq!(batch.bytes().as_ref(), &request.encode_to_vec()[..]);
    assert_eq!(batch.index(), SpanBatch::decode(batch.bytes().clone()).unwrap().index());
}

/// A length-delimited protobuf field: tag, varint length, payload (field numbers below 16).
fn len_field(field: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![field << 3 | 2];
    let mut len = payload.len();
    while len >= 0x80 {
        out.push(len as u8 | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    [out, payload.to_vec()].concat()
}

/// Protobuf merges a singular message field that appears twice; prost does, so must we.
#[test]
fn repeated_status_and_attribute_value_merge_like_prost() {
    let ids = [len_field(1, &[1; 16]), len_field(2, &[2; 8])].concat();
    // status {message: "first", code: 2} then status {message: "second"} then status {}.
    let status_a = len_field(15, &[len_field(2, b"first"), vec![3 << 3, 2]].concat());
    let status_b = len_field(15, &len_field(2, b"second"));
    let status_c = len_field(15, &[]);
    // service.name = "svc", then a second `value` that sets nothing.
    let service = [len_field(1, b"service.name"), len_field(2, &len_field(1, b"svc")), len_field(2, &[])].concat();
    let resource = len_field(1, &len_field(1, &service));
    let span = [ids, status_a, status_b, status_c].concat();
    let bytes = len_field(1, &[resource, len_field(2, &len_field(2, &span))].concat());

    let expected = ExportTraceServiceRequest::decode(&bytes[..]).unwrap();
    let batch = SpanBatch::decode(Bytes::from(bytes)).unwrap();
    let view = batch.span(0).unwrap();
    assert_eq!(view.status_code().as_i32(), 2);
    assert_eq!(view.status_message(), "second");
    assert_eq!(view.details().status, Some(SpanStatus { code: StatusCode::Error, message: "second" }));
    assert_eq!(view.service_name(), Some("svc"));
    assert_eq!(support::batch_to_prost(&batch), expected);
}

/// `SpanView::details` reads in one walk what the single-field accessors read one walk each, with
/// the same protobuf rules, whatever the field order: repeated scalars (last wins), repeated
/// statuses (merged), and attributes, events and links interleaved with each other and with other
/// fields (the stretches details keeps for them then hold foreign fields, which must be skipped).
#[test]
fn span_details_read_interleaved_and_repeated_fields_like_the_accessors_and_prost() {
    fn varint_field(field: u8, value: u8) -> Vec<u8> {
        vec![field << 3, value]
    }
    let attribute =
        |key: &[u8], value: &[u8]| len_field(9, &[len_field(1, key), len_field(2, &len_field(1, value))].concat());
    let event = |name: &[u8]| len_field(11, &len_field(2, name));
    let link = |flags: u8| {
        len_field(13, &[len_field(1, &[3; 16]), len_field(2, &[4; 8]), vec![6 << 3 | 5, flags, 0, 0, 0]].concat())
    };
    let span = [
        attribute(b"a", b"1"),
        len_field(1, &[1; 16]),
        varint_field(10, 7),
        event(b"e1"),
        len_field(3, b"state=1"),
        link(1),
        attribute(b"b", b"2"),
        len_field(15, &[len_field(2, b"first"), varint_field(3, 2)].concat()),
        varint_field(12, 5),
        len_field(2, &[2; 8]),
        event(b"e2"),
        varint_field(14, 9),
        len_field(15, &varint_field(3, 1)),
        link(2),
        len_field(3, b"state=2"),
        varint_field(10, 3),
        attribute(b"c", b"3"),
        len_field(5, b"name"),
    ]
    .concat();
    let bytes = len_field(1, &len_field(2, &len_field(2, &span)));
    let expected = ExportTraceServiceRequest::decode(&bytes[..]).unwrap();
    let batch = SpanBatch::decode(Bytes::from(bytes)).unwrap();
    let view = batch.span(0).unwrap();
    let details = view.details();

    assert_eq!(details.trace_state, "state=2");
    assert_eq!(details.trace_state, view.trace_state());
    assert_eq!(
        (details.dropped_attributes_count, details.dropped_events_count, details.dropped_links_count),
        (3, 5, 9)
    );
    assert_eq!(details.status, Some(SpanStatus { code: StatusCode::Ok, message: "first" }));
    assert_eq!(details.attributes().map(|kv| kv.key).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(details.events().map(|e| e.name).collect::<Vec<_>>(), ["e1", "e2"]);
    assert_eq!(details.links().map(|l| l.flags).collect::<Vec<_>>(), [1, 2]);
    let prost_span = &expected.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(&support::span_details_to_prost(&view), prost_span);
    assert_eq!(&support::span_to_prost(&view), prost_span);

    // A span with none of these fields has empty stretches and no status.
    let bytes = len_field(1, &len_field(2, &len_field(2, &[len_field(1, &[1; 16]), len_field(2, &[2; 8])].concat())));
    let batch = SpanBatch::decode(Bytes::from(bytes)).unwrap();
    let details = batch.span(0).unwrap().details();
    assert_eq!((details.attributes().count(), details.events().count(), details.links().count()), (0, 0, 0));
    assert_eq!((details.trace_state, details.status), ("", None));
}

/// The views read the layout encoders write for a scalar attribute (`key`, then a `value` holding
/// one member) without their general field loop. Every near miss of that layout must still read
/// as prost reads it: members repeated or mixed (the last wins), non-minimal or ten-byte varints,
/// a bool that is neither 0 nor 1, the value before the key, a second `value`, trailing unknown
/// fields, lengths of 128 and more, an empty value. (The string-table index, which the views do not
/// resolve, is left out.)
#[test]
fn attribute_layouts_off_the_fast_path_read_like_prost() {
    let long = "x".repeat(200);
    let values: Vec<Vec<u8>> = vec![
        vec![],
        len_field(1, b""),
        len_field(1, long.as_bytes()),
        len_field(7, &[0xff; 130]),
        vec![2 << 3, 2],
        vec![2 << 3, 0x81, 0x00],
        vec![3 << 3, 0x81, 0x80, 0x00],
        [vec![3 << 3], vec![0xff; 9], vec![0x01]].concat(),
        [vec![4 << 3 | 1], 1.5f64.to_le_bytes().to_vec()].concat(),
        [len_field(1, b"first"), vec![3 << 3, 5]].concat(),
        [vec![3 << 3, 5], len_field(1, b"last")].concat(),
        [len_field(1, b"s"), vec![15 << 3, 1]].concat(),
    ];
    let mut attributes = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let key = format!("k{i}");
        attributes.push(len_field(9, &[len_field(1, key.as_bytes()), len_field(2, value)].concat()));
        attributes.push(len_field(9, &[len_field(2, value), len_field(1, key.as_bytes())].concat()));
        attributes.push(len_field(9, &[len_field(1, key.as_bytes()), len_field(2, value), vec![15 << 3, 1]].concat()));
        attributes.push(len_field(9, &[len_field(1, long.as_bytes()), len_field(2, value)].concat()));
        attributes.push(len_field(
            9,
            &[len_field(1, key.as_bytes()), len_field(2, &len_field(1, b"a")), len_field(2, value)].concat(),
        ));
    }
    let span = [len_field(1, &[1; 16]), len_field(2, &[2; 8]), attributes.concat()].concat();
    let bytes = len_field(1, &len_field(2, &len_field(2, &span)));
    let expected = ExportTraceServiceRequest::decode(&bytes[..]).unwrap();
    let batch = SpanBatch::decode(Bytes::from(bytes)).unwrap();
    assert_eq!(support::batch_to_prost(&batch), expected);
}
