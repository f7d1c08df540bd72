//! Hand-built expected decodings of the OTLP/JSON test vectors in `tests/vectors/`.
//!
//! Every valid vector file is named `<group>.<variant>.json` (variant `canonical` or
//! `alternative`); every file of a group must decode to exactly `expected(group)`.
//! The rules these values follow are listed in `tests/vectors/README.md`. In short:
//! ids are raw bytes (hex decoded, any case); an absent or `null` field is the proto3 default
//! (empty `Vec`, `0`, `""`, `None` for message fields); a message field that is present, even
//! as `{}`, is `Some(..)`; an attribute whose value object is `{}` has
//! `value: Some(AnyValue { value: None })`.
//!
//! Include it from another test file with `mod vectors_expected;`.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span::{Event, Link},
    ResourceSpans, ScopeSpans, Span, Status,
};

/// The names of the valid vector groups, i.e. the accepted arguments of [`expected`].
pub const GROUPS: &[&str] = &["spec_example", "all_value_types", "multi_resource"];

/// The exact request every `<name>.*.json` vector must decode to.
///
/// Panics for a name that is not in [`GROUPS`].
pub fn expected(name: &str) -> ExportTraceServiceRequest {
    match name {
        "spec_example" => spec_example(),
        "all_value_types" => all_value_types(),
        "multi_resource" => multi_resource(),
        other => panic!("no expected decoding for vector group {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// helpers

/// Decodes a hex id (either case). Panics on malformed input: the literals below are fixed.
fn id(hex: &str) -> Vec<u8> {
    fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("bad hex digit {:?}", c as char),
        }
    }
    let b = hex.as_bytes();
    assert_eq!(b.len() % 2, 0, "odd-length hex literal {hex:?}");
    b.chunks(2).map(|p| (nibble(p[0]) << 4) | nibble(p[1])).collect()
}

fn any(value: Value) -> AnyValue {
    AnyValue { value: Some(value) }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.to_owned())
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(any(value)), ..Default::default() }
}

/// An attribute whose JSON value object is `{}`: present, but with no oneof member set.
fn kv_empty(key: &str) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: None }), ..Default::default() }
}

fn array(values: Vec<Value>) -> Value {
    Value::ArrayValue(ArrayValue { values: values.into_iter().map(any).collect() })
}

fn kvlist(values: Vec<KeyValue>) -> Value {
    Value::KvlistValue(KeyValueList { values })
}

fn resource(attributes: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource { attributes, ..Default::default() })
}

fn scope(name: &str, version: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope { name: name.to_owned(), version: version.to_owned(), ..Default::default() })
}

// ---------------------------------------------------------------------------------------------
// spec_example: examples/trace.json of open-telemetry/opentelemetry-proto

fn spec_example() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(vec![kv("service.name", s("my.service"))]),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "my.library".to_owned(),
                    version: "1.0.0".to_owned(),
                    attributes: vec![kv("my.scope.attribute", s("some scope attribute"))],
                    dropped_attributes_count: 0,
                }),
                spans: vec![Span {
                    trace_id: id("5B8EFFF798038103D269B633813FC60C"),
                    span_id: id("EEE19B7EC3C1B174"),
                    parent_span_id: id("EEE19B7EC3C1B173"),
                    name: "I'm a server span".to_owned(),
                    start_time_unix_nano: 1_544_712_660_000_000_000,
                    end_time_unix_nano: 1_544_712_661_000_000_000,
                    kind: 2,
                    attributes: vec![kv("my.span.attr", s("some value"))],
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

// ---------------------------------------------------------------------------------------------
// all_value_types: one span using every AnyValue variant and every Span/Event/Link/Status field

fn all_value_types() -> ExportTraceServiceRequest {
    let attributes = vec![
        kv("str", s("héllo wörld ✓ 🚀 \"quoted\" back\\slash\ttab")),
        kv("str.empty", s("")),
        kv("bool.true", Value::BoolValue(true)),
        kv("bool.false", Value::BoolValue(false)),
        kv("int.big", Value::IntValue(9_007_199_254_740_993)),
        kv("int.neg", Value::IntValue(-42)),
        kv("int.max", Value::IntValue(i64::MAX)),
        kv("int.min", Value::IntValue(i64::MIN)),
        kv("double", Value::DoubleValue(2.5)),
        kv("double.thousand", Value::DoubleValue(1000.0)),
        kv("double.small", Value::DoubleValue(-1.25e-10)),
        kv("double.pinf", Value::DoubleValue(f64::INFINITY)),
        kv("double.ninf", Value::DoubleValue(f64::NEG_INFINITY)),
        // "+/+/AAE=" (standard) == "-_-_AAE" (URL-safe, unpadded)
        kv("bytes", Value::BytesValue(vec![0xfb, 0xff, 0xbf, 0x00, 0x01])),
        // "+Pn6+/z9/v9oaQ==" (standard) == "+Pn6+/z9/v9oaQ" (standard, unpadded)
        kv("bytes.long", Value::BytesValue(vec![0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, b'h', b'i'])),
        kv("bytes.empty", Value::BytesValue(Vec::new())),
        kv(
            "array",
            array(vec![
                s("a"),
                Value::IntValue(1),
                Value::DoubleValue(1.5),
                Value::BoolValue(false),
                array(vec![s("nested"), array(vec![])]),
                kvlist(vec![kv("k", s("v"))]),
            ]),
        ),
        kv(
            "kvlist",
            kvlist(vec![
                kv("inner.str", s("x")),
                kv("inner.kv", kvlist(vec![kv("deep", Value::IntValue(-1))])),
                kv("inner.arr", array(vec![Value::BoolValue(true)])),
                kv_empty("inner.empty"),
            ]),
        ),
        kv_empty("empty"),
    ];

    let span = Span {
        trace_id: id("0af7651916cd43dd8448eb211c80319c"),
        span_id: id("b7ad6b7169203331"),
        trace_state: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".to_owned(),
        parent_span_id: id("00f067aa0ba902b7"),
        flags: 769,
        name: "all value types".to_owned(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_123_456_789,
        end_time_unix_nano: 1_700_000_001_987_654_321,
        attributes,
        dropped_attributes_count: 3,
        events: vec![
            Event {
                time_unix_nano: 1_700_000_000_500_000_000,
                name: "exception".to_owned(),
                attributes: vec![kv("exception.type", s("E")), kv("exception.escaped", Value::BoolValue(false))],
                dropped_attributes_count: 1,
            },
            Event { time_unix_nano: 1_700_000_000_600_000_000, name: "no attrs".to_owned(), ..Default::default() },
        ],
        dropped_events_count: 4,
        links: vec![
            Link {
                trace_id: id("4bf92f3577b34da6a3ce929d0e0e4736"),
                span_id: id("00f067aa0ba902b7"),
                trace_state: "congo=ucfJifl5GOE".to_owned(),
                attributes: vec![kv("link.kind", s("follows_from"))],
                dropped_attributes_count: 5,
                flags: 257,
            },
            Link {
                trace_id: id("0af7651916cd43dd8448eb211c80319c"),
                span_id: id("53995c3f42cd8ad8"),
                ..Default::default()
            },
        ],
        dropped_links_count: 6,
        status: Some(Status { message: "boom".to_owned(), code: 2 }),
    };

    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s("all-value-types"))],
                dropped_attributes_count: 1,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "spanpipe.vectors".to_owned(),
                    version: "0.1.0".to_owned(),
                    attributes: vec![kv("scope.kind", s("test"))],
                    dropped_attributes_count: 2,
                }),
                spans: vec![span],
                schema_url: "https://opentelemetry.io/schemas/1.27.0".to_owned(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
        }],
    }
}

// ---------------------------------------------------------------------------------------------
// multi_resource: 2 resources x 2 scopes x 2 spans; the second resource has no service.name

fn multi_resource() -> ExportTraceServiceRequest {
    let frontend = ResourceSpans {
        resource: resource(vec![kv("service.name", s("frontend")), kv("host.name", s("web-1"))]),
        scope_spans: vec![
            ScopeSpans {
                scope: scope("io.opentelemetry.http", "1.2.3"),
                spans: vec![
                    Span {
                        trace_id: id("5b8efff798038103d269b633813fc60c"),
                        span_id: id("0000000000000001"),
                        name: "GET /".to_owned(),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_000,
                        end_time_unix_nano: 1_700_000_000_250_000_000,
                        attributes: vec![
                            kv("http.request.method", s("GET")),
                            kv("http.response.status_code", Value::IntValue(200)),
                        ],
                        // `"status": {}` is present, so Some(default).
                        status: Some(Status::default()),
                        ..Default::default()
                    },
                    Span {
                        trace_id: id("5b8efff798038103d269b633813fc60c"),
                        span_id: id("0000000000000002"),
                        parent_span_id: id("0000000000000001"),
                        name: "SELECT users".to_owned(),
                        kind: 3,
                        start_time_unix_nano: 1_700_000_000_010_000_000,
                        end_time_unix_nano: 1_700_000_000_200_000_000,
                        status: Some(Status { message: String::new(), code: 1 }),
                        ..Default::default()
                    },
                ],
                schema_url: String::new(),
            },
            ScopeSpans {
                scope: scope("custom", ""),
                spans: vec![
                    Span {
                        trace_id: id("a3ce929d0e0e47364bf92f3577b34da6"),
                        span_id: id("a000000000000001"),
                        name: "work".to_owned(),
                        kind: 1,
                        start_time_unix_nano: 1_700_000_001_000_000_000,
                        end_time_unix_nano: 1_700_000_001_000_000_001,
                        // no "status" key (or `null`): None.
                        status: None,
                        ..Default::default()
                    },
                    Span {
                        trace_id: id("a3ce929d0e0e47364bf92f3577b34da6"),
                        span_id: id("a000000000000002"),
                        parent_span_id: id("a000000000000001"),
                        name: "publish".to_owned(),
                        kind: 4,
                        start_time_unix_nano: 1_700_000_001_000_000_001,
                        end_time_unix_nano: 1_700_000_001_500_000_000,
                        status: Some(Status { message: "partially delivered".to_owned(), code: 0 }),
                        ..Default::default()
                    },
                ],
                schema_url: String::new(),
            },
        ],
        schema_url: String::new(),
    };

    let worker = ResourceSpans {
        resource: resource(vec![kv("k8s.pod.name", s("worker-7f9c")), kv("k8s.namespace.name", s("jobs"))]),
        scope_spans: vec![
            ScopeSpans {
                scope: scope("worker", "2.0.0"),
                spans: vec![
                    Span {
                        trace_id: id("ffffffffffffffffffffffffffffffff"),
                        span_id: id("ffffffffffffffff"),
                        name: "consume".to_owned(),
                        kind: 5,
                        start_time_unix_nano: u64::MAX,
                        end_time_unix_nano: u64::MAX,
                        ..Default::default()
                    },
                    Span {
                        trace_id: id("00000000000000000000000000000001"),
                        span_id: id("0123456789abcdef"),
                        name: "unspecified kind".to_owned(),
                        kind: 0,
                        start_time_unix_nano: 1,
                        end_time_unix_nano: 2,
                        ..Default::default()
                    },
                ],
                schema_url: "https://opentelemetry.io/schemas/1.21.0".to_owned(),
            },
            ScopeSpans {
                // no "scope" key (or `null`): None.
                scope: None,
                spans: vec![
                    Span {
                        trace_id: id("00000000000000000000000000000001"),
                        span_id: id("fedcba9876543210"),
                        parent_span_id: id("0123456789abcdef"),
                        name: "no scope".to_owned(),
                        kind: 1,
                        start_time_unix_nano: 3,
                        end_time_unix_nano: 4,
                        ..Default::default()
                    },
                    Span {
                        trace_id: id("00000000000000000000000000000001"),
                        span_id: id("1000000000000000"),
                        kind: 1,
                        ..Default::default()
                    },
                ],
                schema_url: String::new(),
            },
        ],
        schema_url: "https://opentelemetry.io/schemas/1.21.0".to_owned(),
    };

    ExportTraceServiceRequest { resource_spans: vec![frontend, worker] }
}
