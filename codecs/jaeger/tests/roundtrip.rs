//! Jaeger → OTLP → Jaeger, both protocols, against Apache Thrift's generated code on both
//! ends: arbitrary batches are written by Apache Thrift, decoded by spanpipe into the canonical
//! batch, encoded by spanpipe, and read back by Apache Thrift — and must come back unchanged.
//! The batches are generated in the normal form the mapping keeps (see `model`).

#[allow(clippy::all, clippy::pedantic, rust_2018_idioms, missing_debug_implementations, dead_code)]
#[path = "../benches/thrift_gen/agent.rs"]
mod agent;
mod apache;
#[allow(clippy::all, clippy::pedantic, rust_2018_idioms, missing_debug_implementations, dead_code)]
#[path = "../benches/thrift_gen/jaeger.rs"]
mod jaeger;
mod model;

use jaeger::{Log, SpanRef, SpanRefType, Tag, TagType};
use model::{batch, long_tag, normal_form, string_tag};
use proptest::prelude::*;
use spanpipe_jaeger::{decode_agent, encode_agent, encode_per_resource, split_into_datagrams, Protocol};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn jaeger_to_otlp_to_jaeger_keeps_the_batch(batch in batch()) {
        for protocol in [Protocol::Compact, Protocol::Binary] {
            let message = apache::emit_batch(protocol, &batch);
            let otlp = decode_agent(protocol, &message).expect("spanpipe reads Apache Thrift's message");
            let again = encode_agent(protocol, &otlp).expect("one resource encodes");
            let back = apache::read_emit_batch(protocol, &again).expect("Apache Thrift reads spanpipe's message");
            prop_assert_eq!(&back, &normal_form(batch.clone()), "{:?}", protocol);
        }
    }

    #[test]
    fn datagrams_respect_the_size_limit_and_keep_every_span(batch in batch(), limit in 600usize..4_000) {
        for protocol in [Protocol::Compact, Protocol::Binary] {
            let otlp = decode_agent(protocol, &apache::emit_batch(protocol, &batch)).unwrap();
            let datagrams = match split_into_datagrams(protocol, &otlp, limit) {
                Ok(datagrams) => datagrams,
                Err(spanpipe_jaeger::EncodeError::SpanTooLarge { size, limit: l, .. }) => {
                    prop_assert!(size > l);
                    continue;
                }
                Err(other) => panic!("{other}"),
            };
            let process = normal_form(batch.clone()).process;
            let mut spans = Vec::new();
            for datagram in &datagrams {
                prop_assert!(datagram.len() <= limit, "{} > {}", datagram.len(), limit);
                let part = apache::read_emit_batch(protocol, datagram).expect("each datagram is a message");
                prop_assert_eq!(&part.process, &process);
                spans.extend(part.spans);
            }
            let whole = apache::read_emit_batch(protocol, &encode_agent(protocol, &otlp).unwrap()).unwrap();
            prop_assert_eq!(spans, whole.spans);
        }
    }
}

#[test]
fn per_resource_messages_and_the_several_resources_error() {
    use spanpipe_core::{Attributes, BatchWriter, SpanBatch};
    let mut writer = BatchWriter::new();
    for service in ["a", "b"] {
        writer.resource_spans(|rs| {
            rs.resource(|r| r.str_attribute("service.name", service));
            rs.scope_spans(|ss| {
                ss.span(|s| {
                    s.trace_id(&[1; 16]).span_id(&[2; 8]).name(service);
                })
            });
        });
    }
    let batch: SpanBatch = writer.finish().unwrap();
    assert_eq!(
        encode_agent(Protocol::Compact, &batch),
        Err(spanpipe_jaeger::EncodeError::SeveralResources { resources: 2 })
    );
    let messages = encode_per_resource(Protocol::Binary, &batch).unwrap();
    let services: Vec<String> =
        messages.iter().map(|m| apache::read_emit_batch(Protocol::Binary, m).unwrap().process.service_name).collect();
    assert_eq!(services, ["a", "b"]);
    let datagrams = split_into_datagrams(Protocol::Compact, &batch, spanpipe_jaeger::MAX_DATAGRAM_SIZE).unwrap();
    assert_eq!(datagrams.len(), 2, "one datagram per process");
}

/// OTLP → Jaeger as the specification's table says, read back by Apache Thrift.
#[test]
fn otlp_to_jaeger_follows_the_specification() {
    use spanpipe_core::{Attributes, BatchWriter};
    let mut writer = BatchWriter::new();
    writer.resource_spans(|rs| {
        rs.resource(|r| r.int_attribute("pid", 7));
        rs.scope_spans(|ss| {
            ss.scope(|s| {
                s.name("lib").version("2");
            });
            ss.span(|s| {
                s.trace_id(&[0xff; 16]).span_id(&[0, 0, 0, 0, 0, 0, 0, 9]).name("internal op").kind(1);
                s.start_time_unix_nano(1_999).end_time_unix_nano(5_001);
                s.attribute("list", |v| {
                    v.array(|a| {
                        a.value(|v| v.int(1));
                        a.value(|v| v.string("x"));
                    })
                });
                s.attribute("raw", |v| v.bytes(b"\x01\x02"));
                s.event(|e| {
                    e.time_unix_nano(3_000).name("ignored");
                    e.str_attribute("event", "wins");
                });
                s.link(|l| {
                    l.trace_id(&[1; 16]).span_id(&[2; 8]);
                    l.str_attribute("opentracing.ref_type", "child_of");
                });
                s.link(|l| {
                    l.trace_id(&[3; 16]).span_id(&[4; 8]);
                });
                s.status(0, "message of an unset status");
            });
        });
    });
    let batch = writer.finish().unwrap();
    for protocol in [Protocol::Compact, Protocol::Binary] {
        let back = apache::read_emit_batch(protocol, &encode_agent(protocol, &batch).unwrap()).unwrap();
        assert_eq!(back.process.service_name, spanpipe_jaeger::NO_SERVICE_NAME);
        assert_eq!(back.process.tags, Some(vec![long_tag("pid", 7)]));
        let span = &back.spans[0];
        assert_eq!((span.trace_id_high, span.trace_id_low, span.span_id, span.parent_span_id), (-1, -1, 9, 0));
        assert_eq!((span.start_time, span.duration), (1, 3), "truncated to microseconds");
        assert_eq!(
            span.tags,
            Some(vec![
                string_tag("otel.scope.name", "lib"),
                string_tag("otel.scope.version", "2"),
                string_tag("list", r#"[1,"x"]"#),
                Tag::new("raw".to_owned(), TagType::BINARY, None, None, None, None, vec![1, 2]),
            ]),
            "no span.kind for INTERNAL, nothing for an UNSET status"
        );
        assert_eq!(span.logs, Some(vec![Log::new(3, vec![string_tag("event", "wins")])]));
        assert_eq!(
            span.references,
            Some(vec![
                SpanRef::new(
                    SpanRefType::CHILD_OF,
                    0x0101_0101_0101_0101,
                    0x0101_0101_0101_0101,
                    0x0202_0202_0202_0202
                ),
                SpanRef::new(
                    SpanRefType::FOLLOWS_FROM,
                    0x0303_0303_0303_0303,
                    0x0303_0303_0303_0303,
                    0x0404_0404_0404_0404
                ),
            ])
        );
    }
}
