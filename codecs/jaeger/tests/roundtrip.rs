//! Jaeger → OTLP → Jaeger, both protocols, against Apache Thrift's generated code on both
//! ends: arbitrary batches are written by Apache Thrift, decoded by spanpipe into the canonical
//! batch, encoded by spanpipe, and read back by Apache Thrift — and must come back unchanged.
//! The batches are generated in the normal form the mapping keeps (the crate docs' "OTLP →
//! Jaeger" table): the parent first among the references as `CHILD_OF`, special tags after the
//! others in the encoder's order, no `internal` span kind.

#[allow(clippy::all, clippy::pedantic, rust_2018_idioms, missing_debug_implementations, dead_code)]
#[path = "../benches/thrift_gen/agent.rs"]
mod agent;
mod apache;
#[allow(clippy::all, clippy::pedantic, rust_2018_idioms, missing_debug_implementations, dead_code)]
#[path = "../benches/thrift_gen/jaeger.rs"]
mod jaeger;

use jaeger::{Batch, Log, Process, Span, SpanRef, SpanRefType, Tag, TagType};
use proptest::prelude::*;
use spanpipe_jaeger::{decode_agent, encode_agent, encode_per_resource, split_into_datagrams, Protocol};
use thrift::OrderedFloat;

/// A tag's type and its value fields, as the generated `Tag` holds them.
type TagValue = (TagType, Option<String>, Option<f64>, Option<bool>, Option<i64>, Option<Vec<u8>>);

fn tag_value() -> impl Strategy<Value = TagValue> {
    prop_oneof![
        ".{0,12}".prop_map(|s| (TagType::STRING, Some(s), None, None, None, None)),
        any::<f64>().prop_map(|d| (TagType::DOUBLE, None, Some(d), None, None, None)),
        any::<bool>().prop_map(|b| (TagType::BOOL, None, None, Some(b), None, None)),
        any::<i64>().prop_map(|l| (TagType::LONG, None, None, None, Some(l), None)),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| (TagType::BINARY, None, None, None, None, Some(b))),
    ]
}

/// Tags whose keys start with `prefix`, which no special key does.
fn tags(prefix: &'static str, max: usize) -> impl Strategy<Value = Vec<Tag>> {
    proptest::collection::vec(("[a-z.]{0,6}", tag_value()), 0..max).prop_map(move |tags| {
        tags.into_iter()
            .map(|(key, (v_type, v_str, v_double, v_bool, v_long, v_binary))| Tag {
                key: format!("{prefix}{key}"),
                v_type,
                v_str,
                v_double: v_double.map(OrderedFloat),
                v_bool,
                v_long,
                v_binary,
            })
            .collect()
    })
}

fn string_tag(key: &str, value: &str) -> Tag {
    Tag::new(key.to_owned(), TagType::STRING, value.to_owned(), None, None, None, None)
}

fn long_tag(key: &str, value: i64) -> Tag {
    Tag::new(key.to_owned(), TagType::LONG, None, None, None, value, None)
}

fn non_empty<T>(list: Vec<T>) -> Option<Vec<T>> {
    (!list.is_empty()).then_some(list)
}

fn log() -> impl Strategy<Value = Log> {
    (0..10_000_000_000_000_000i64, proptest::option::of(".{1,8}"), tags("f", 3), 0..3u32).prop_map(
        |(timestamp, event, user, dropped)| {
            let mut fields: Vec<Tag> = event.iter().map(|e| string_tag("event", e)).collect();
            fields.extend(user);
            if dropped > 0 {
                fields.push(long_tag("otel.event.dropped_attributes_count", i64::from(dropped)));
            }
            Log::new(timestamp, fields)
        },
    )
}

/// Special tags, in the order the encoder writes them around the user's tags.
#[derive(Clone, Debug)]
struct Specials {
    scope: Option<(String, Option<String>)>,
    kind: Option<&'static str>,
    status: Option<(bool, Option<String>)>,
    trace_state: Option<String>,
    dropped: [u32; 3],
}

fn specials() -> impl Strategy<Value = Specials> {
    (
        proptest::option::of(("[a-z.]{1,8}", proptest::option::of("[0-9.]{1,5}"))),
        proptest::option::of(prop_oneof![Just("server"), Just("client"), Just("producer"), Just("consumer")]),
        proptest::option::of((any::<bool>(), proptest::option::of(".{1,10}"))),
        proptest::option::of("[a-z]{1,4}=[a-z0-9]{1,4}"),
        [0..3u32, 0..3u32, 0..3u32],
    )
        .prop_map(|(scope, kind, status, trace_state, dropped)| Specials {
            scope,
            kind,
            status,
            trace_state,
            dropped,
        })
}

fn span() -> impl Strategy<Value = Span> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), prop_oneof![Just(0i64), any::<i64>()]),
        "[a-zA-Z /]{1,12}",
        proptest::collection::vec((any::<bool>(), any::<i64>(), any::<i64>(), any::<i64>()), 0..3),
        (0..2i32, 0..10_000_000_000_000_000i64, 0..1_000_000_000i64),
        (tags("t", 4), specials()),
        proptest::collection::vec(log(), 0..3),
    )
        .prop_map(
            |((high, low, span_id, parent), name, links, (flags, start, duration), (user, special), logs)| {
                let mut references = Vec::new();
                if parent != 0 {
                    references.push(SpanRef::new(SpanRefType::CHILD_OF, low, high, parent));
                }
                for (child_of, link_high, link_low, link_span) in links {
                    // Another trace, so that a root span's links do not name its parent; and never
                    // a CHILD_OF to the parent, which is the parent itself.
                    let link_low = if (link_high, link_low) == (high, low) { low.wrapping_add(1) } else { link_low };
                    let link_span = if child_of && link_span == parent { parent.wrapping_add(1) } else { link_span };
                    let kind = if child_of { SpanRefType::CHILD_OF } else { SpanRefType::FOLLOWS_FROM };
                    references.push(SpanRef::new(kind, link_low, link_high, link_span));
                }
                let mut tags = Vec::new();
                if let Some((name, version)) = &special.scope {
                    tags.push(string_tag("otel.scope.name", name));
                    tags.extend(version.iter().map(|v| string_tag("otel.scope.version", v)));
                }
                tags.extend(user);
                tags.extend(special.kind.map(|k| string_tag("span.kind", k)));
                if let Some((error, description)) = &special.status {
                    tags.push(string_tag("otel.status_code", if *error { "ERROR" } else { "OK" }));
                    if *error {
                        tags.push(Tag::new("error".to_owned(), TagType::BOOL, None, None, true, None, None));
                    }
                    tags.extend(description.iter().map(|d| string_tag("otel.status_description", d)));
                }
                tags.extend(special.trace_state.iter().map(|t| string_tag("w3c.tracestate", t)));
                let keys = ["otel.dropped_attributes_count", "otel.dropped_events_count", "otel.dropped_links_count"];
                for (key, count) in keys.into_iter().zip(special.dropped) {
                    if count > 0 {
                        tags.push(long_tag(key, i64::from(count)));
                    }
                }
                Span::new(
                    low,
                    high,
                    span_id,
                    parent,
                    name,
                    non_empty(references),
                    flags,
                    start,
                    duration,
                    non_empty(tags),
                    non_empty(logs),
                    None,
                )
            },
        )
}

fn batch() -> impl Strategy<Value = Batch> {
    ("[a-z-]{1,10}", tags("p", 3), proptest::collection::vec(span(), 1..5))
        .prop_map(|(service, tags, spans)| Batch::new(Process::new(service, non_empty(tags)), spans))
}

/// Spans come out grouped by scope, in the order each scope first appears.
fn grouped_by_scope(mut batch: Batch) -> Batch {
    let scope_of = |span: &Span| {
        span.tags.iter().flatten().find(|t| t.key == "otel.scope.name").map(|t| {
            let version = span.tags.iter().flatten().find(|t| t.key == "otel.scope.version");
            (t.v_str.clone(), version.and_then(|v| v.v_str.clone()))
        })
    };
    let mut order = Vec::new();
    for span in &batch.spans {
        let scope = scope_of(span);
        if !order.contains(&scope) {
            order.push(scope);
        }
    }
    let spans = std::mem::take(&mut batch.spans);
    batch.spans = order.iter().flat_map(|scope| spans.iter().filter(move |s| &scope_of(s) == scope).cloned()).collect();
    batch
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn jaeger_to_otlp_to_jaeger_keeps_the_batch(batch in batch()) {
        for protocol in [Protocol::Compact, Protocol::Binary] {
            let message = apache::emit_batch(protocol, &batch);
            let otlp = decode_agent(protocol, &message).expect("spanpipe reads Apache Thrift's message");
            let again = encode_agent(protocol, &otlp).expect("one resource encodes");
            let back = apache::read_emit_batch(protocol, &again).expect("Apache Thrift reads spanpipe's message");
            prop_assert_eq!(&back, &grouped_by_scope(batch.clone()), "{:?}", protocol);
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
            let mut spans = Vec::new();
            for datagram in &datagrams {
                prop_assert!(datagram.len() <= limit, "{} > {}", datagram.len(), limit);
                let part = apache::read_emit_batch(protocol, datagram).expect("each datagram is a message");
                prop_assert_eq!(&part.process, &batch.process);
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
