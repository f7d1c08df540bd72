//! Arbitrary Jaeger batches as Apache Thrift's generated structs hold them, in the normal form the
//! mapping keeps (the crate docs' "OTLP → Jaeger" table): the parent first among the references
//! as `CHILD_OF`, special tags after the others in the encoder's order, no `internal` span kind.
//! Shared by the tests that need them (`roundtrip`, `proto`); each declares the generated
//! `jaeger` module at its root, as `apache` explains.

use proptest::prelude::*;
use thrift::OrderedFloat;

use crate::jaeger::{Batch, Log, Process, Span, SpanRef, SpanRefType, Tag, TagType};

/// A tag's type and its value fields, as the generated `Tag` holds them.
pub type TagValue = (TagType, Option<String>, Option<f64>, Option<bool>, Option<i64>, Option<Vec<u8>>);

pub fn tag_value() -> impl Strategy<Value = TagValue> {
    prop_oneof![
        ".{0,12}".prop_map(|s| (TagType::STRING, Some(s), None, None, None, None)),
        any::<f64>().prop_map(|d| (TagType::DOUBLE, None, Some(d), None, None, None)),
        any::<bool>().prop_map(|b| (TagType::BOOL, None, None, Some(b), None, None)),
        any::<i64>().prop_map(|l| (TagType::LONG, None, None, None, Some(l), None)),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| (TagType::BINARY, None, None, None, None, Some(b))),
    ]
}

/// Tags whose keys start with `prefix`, which no special key does; short keys, so that some
/// repeat.
pub fn tags(prefix: &'static str, max: usize) -> impl Strategy<Value = Vec<Tag>> {
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

pub fn string_tag(key: &str, value: &str) -> Tag {
    Tag::new(key.to_owned(), TagType::STRING, value.to_owned(), None, None, None, None)
}

pub fn long_tag(key: &str, value: i64) -> Tag {
    Tag::new(key.to_owned(), TagType::LONG, None, None, None, value, None)
}

pub fn non_empty<T>(list: Vec<T>) -> Option<Vec<T>> {
    (!list.is_empty()).then_some(list)
}

pub fn log() -> impl Strategy<Value = Log> {
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
pub struct Specials {
    scope: Option<(String, Option<String>)>,
    kind: Option<&'static str>,
    status: Option<(bool, Option<String>)>,
    trace_state: Option<String>,
    dropped: [u32; 3],
}

pub fn specials() -> impl Strategy<Value = Specials> {
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

pub fn span() -> impl Strategy<Value = Span> {
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

pub fn batch() -> impl Strategy<Value = Batch> {
    ("[a-z-]{1,10}", tags("p", 3), proptest::collection::vec(span(), 1..5))
        .prop_map(|(service, tags, spans)| Batch::new(Process::new(service, non_empty(tags)), spans))
}

/// The batch as the mapping gives it back: of tags (or log fields) with the same key only the
/// last counts, where it stands (the Collector's maps keep the last value), and spans are
/// grouped by scope.
pub fn normal_form(mut batch: Batch) -> Batch {
    let process = &mut batch.process;
    process.tags = process.tags.take().map(last_of_each_key);
    for span in &mut batch.spans {
        span.tags = span.tags.take().map(last_of_each_key);
        for log in span.logs.iter_mut().flatten() {
            log.fields = last_of_each_key(std::mem::take(&mut log.fields));
        }
    }
    grouped_by_scope(batch)
}

/// The tags no later tag of the same key replaces, in order.
pub fn last_of_each_key(tags: Vec<Tag>) -> Vec<Tag> {
    (0..tags.len())
        .filter(|&i| !tags[i + 1..].iter().any(|later| later.key == tags[i].key))
        .map(|i| tags[i].clone())
        .collect()
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
