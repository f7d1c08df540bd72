//! Real Zipkin and Jaeger clients through spanpipe: every span arrives with the fields the
//! OpenTelemetry specification's mapping of its protocol says.
//!
//! The OpenTelemetry Python SDK (tests/otel_sdk/send_legacy.py, run from the venvs `tools/test`
//! creates) sends the span set of tests/otel_sdk/spanset.py — two services, every span kind,
//! attributes of every type, events with attributes, links, each status — through its own
//! exporters: Zipkin v2 JSON, Zipkin protobuf and Zipkin v1 JSON (opentelemetry-exporter-zipkin
//! 1.45), Jaeger Thrift in agent mode (compact Thrift over UDP) and collector mode (binary
//! Thrift over HTTP) (opentelemetry-exporter-jaeger-thrift 1.21), and Jaeger protobuf over gRPC
//! (opentelemetry-exporter-jaeger-proto-grpc 1.21). spanpipe's `zipkin` and
//! `jaeger` receivers write everything to a `file` exporter, and the test compares each span the
//! SDK exported with what arrived, field by field, under these rules:
//!
//! - ids, parent and name exactly; times as the exporters round them to microseconds, and over
//!   gRPC as that exporter computes its nanosecond timestamps (through a float of seconds);
//! - resource: `service.name` (Zipkin carries the service as `localEndpoint.serviceName`, Jaeger
//!   as the process's service name); both exporters send the other resource attributes as span
//!   tags, which arrive as span attributes, but for Zipkin those named like resource semantic
//!   conventions (`telemetry.sdk.*`, `service.version`, …), which go back to the resource;
//! - scope name and version from the `otel.scope.*` tags, which are consumed like
//!   `otel.library.*`, `otel.status_*`, `error` and `span.kind`;
//! - status code and message from `otel.status_code` / `otel.status_description` or `error`;
//! - Zipkin: tags are strings, so every non-string attribute arrives as the exporter's text of it
//!   (compared by meaning: the text read back as a number, boolean or JSON array); events from
//!   annotations with their typed attributes; no links (Zipkin has none); INTERNAL has no Zipkin
//!   kind and arrives unspecified, and the v1 exporter writes no kind at all;
//! - Jaeger: tags typed (arrays as the exporter's text); logs become events, and since this
//!   exporter writes the event name under `message` rather than the specification's `event`
//!   field, the name arrives as a `message` attribute of an unnamed event (as the Collector reads
//!   it); links from FOLLOWS_FROM references, marked `opentracing.ref_type`; the sampled flag.
//!   The gRPC exporter also gives every span a process holding the resource's attributes as
//!   tags, so over gRPC they arrive on the resource as well (typed, arrays as text), one resource
//!   per service.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use common::sdk::{
    arrived_spans, collector_into_file, hex, pairs, run_client, venv_python, Arrived, LinkSummary, Value,
};
use common::{free_address, free_udp_address, wait_until, Spanpipe, DELIVERY_TIMEOUT};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SdkEvent {
    name: String,
    time_unix_nano: u64,
    attributes: Vec<(String, Value)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SdkLink {
    trace_id: String,
    span_id: String,
    /// A Jaeger reference has no attributes: they are not expected to arrive.
    #[serde(rename = "attributes")]
    _attributes: Vec<(String, Value)>,
}

/// A span as the SDK recorded it, printed by send_legacy.py.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SdkSpan {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    trace_state: String,
    name: String,
    kind: i32,
    start_time_unix_nano: u64,
    end_time_unix_nano: u64,
    attributes: Vec<(String, Value)>,
    events: Vec<SdkEvent>,
    links: Vec<SdkLink>,
    status_code: i32,
    status_message: String,
    resource_attributes: Vec<(String, Value)>,
    scope_name: String,
    scope_version: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetReport {
    target: String,
    spans: Vec<SdkSpan>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    targets: Vec<TargetReport>,
}

/// The protocols the exporters speak, each with its mapping's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    ZipkinV2,
    ZipkinV1,
    /// Thrift, to the agent or the collector.
    Jaeger,
    /// Protobuf over gRPC, to the collector.
    JaegerGrpc,
}

impl Protocol {
    fn is_jaeger(self) -> bool {
        matches!(self, Self::Jaeger | Self::JaegerGrpc)
    }

    /// A time as it arrives: in whole microseconds, but over gRPC as that exporter writes a
    /// `Timestamp`: through a float of seconds (`nsec / 1e9`, then `int()` of the seconds and of
    /// the fraction times 1e9), which keeps the nanoseconds only to within a few hundred.
    fn time(self, nanos: u64) -> u64 {
        if self == Self::JaegerGrpc {
            let in_seconds = nanos as f64 / 1e9;
            let seconds = in_seconds.trunc();
            seconds as u64 * 1_000_000_000 + ((in_seconds - seconds) * 1e9) as u64
        } else {
            microseconds(nanos) * 1_000
        }
    }

    /// The end time as it arrives: start plus duration, the duration rounded as the times are;
    /// over gRPC the duration is the difference of the two timestamps, so the end is its own.
    fn end_time(self, start: u64, end: u64) -> u64 {
        if self == Self::JaegerGrpc {
            self.time(end)
        } else {
            self.time(start) + self.time(end - start)
        }
    }
}

/// Nanoseconds as the exporters send them: rounded to the nearest microsecond.
fn microseconds(nanos: u64) -> u64 {
    (nanos + 500) / 1_000
}

/// Whether `text`, the exporter's text form of `sent`, means `sent`.
fn text_means(text: &str, sent: &Value) -> bool {
    fn json_means(json: &serde_json::Value, sent: &Value) -> bool {
        match (json, sent) {
            (serde_json::Value::String(text), value) => text_means(text, value),
            (serde_json::Value::Bool(flag), Value::Bool(value)) => flag == value,
            (serde_json::Value::Number(number), Value::Int(value)) => number.as_i64() == Some(*value),
            (serde_json::Value::Number(number), Value::Double(value)) => number.as_f64() == Some(*value),
            (serde_json::Value::Array(items), Value::Array(values)) => {
                items.len() == values.len() && items.iter().zip(values).all(|(item, value)| json_means(item, value))
            }
            _ => false,
        }
    }
    match sent {
        Value::String(value) => text == value,
        _ => serde_json::from_str(text).is_ok_and(|json| json_means(&json, sent)),
    }
}

/// Checks one arrived span against what the SDK recorded, under `protocol`'s mapping.
fn check_span(protocol: Protocol, service: &str, sent: &SdkSpan, arrived: &Arrived) {
    let what = format!("{protocol:?} span {} ({})", sent.span_id, sent.name);
    let span = &arrived.span;
    assert_eq!(hex(&span.trace_id), sent.trace_id, "{what}: trace id");
    assert_eq!(hex(&span.parent_span_id), sent.parent_span_id, "{what}: parent");
    assert_eq!(span.name, sent.name, "{what}: name");
    let (start, end) = (sent.start_time_unix_nano, sent.end_time_unix_nano);
    assert_eq!(span.start_time_unix_nano, protocol.time(start), "{what}: start");
    assert_eq!(span.end_time_unix_nano, protocol.end_time(start, end), "{what}: end");
    // Every exporter sends the resource's attributes as span tags. Zipkin decoding moves those
    // named like resource semantic conventions back to the resource (the Collector's rule); the
    // rest, and all of them for Jaeger, stay span attributes. Jaeger's Thrift exporter gives the
    // process only the service name; its gRPC exporter gives it the resource's attributes too.
    let to_resource = |key: &str| !protocol.is_jaeger() && spanpipe_zipkin::is_resource_attribute(key);
    let mut resource: BTreeMap<String, Value> = arrived.resource_attributes.iter().cloned().collect();
    assert_eq!(resource.remove("service.name"), Some(Value::String(service.to_owned())), "{what}: service");
    let sent_resource: Vec<&(String, Value)> = sent
        .resource_attributes
        .iter()
        .filter(|(key, _)| key != "service.name" && (to_resource(key) || protocol == Protocol::JaegerGrpc))
        .collect();
    assert_eq!(resource.len(), sent_resource.len(), "{what}: resource {resource:?}");
    for (key, value) in sent_resource {
        let got = resource.get(key).unwrap_or_else(|| panic!("{what}: resource attribute `{key}` is missing"));
        check_value(protocol, &what, key, value, got);
    }
    assert_eq!(
        (arrived.scope_name.as_str(), arrived.scope_version.as_str()),
        (&*sent.scope_name, &*sent.scope_version)
    );
    let status = span.status.clone().unwrap_or_default();
    assert_eq!((status.code, status.message.as_str()), (sent.status_code, &*sent.status_message), "{what}: status");
    let internal = 1;
    let kind = match protocol {
        Protocol::ZipkinV1 => 0,
        Protocol::ZipkinV2 if sent.kind == internal => 0,
        Protocol::ZipkinV2 | Protocol::Jaeger | Protocol::JaegerGrpc => sent.kind,
    };
    assert_eq!(span.kind, kind, "{what}: kind");

    // Span tags hold the span's attributes and then the resource's (the service name too, which
    // both protocols also carry on their own): all but those that went to the resource.
    let expected: Vec<&(String, Value)> =
        sent.attributes.iter().chain(sent.resource_attributes.iter().filter(|(key, _)| !to_resource(key))).collect();
    let received: BTreeMap<String, Value> = pairs(&span.attributes).into_iter().collect();
    assert_eq!(received.len(), expected.len(), "{what}: attributes {received:?}");
    for (key, value) in expected {
        let got = received.get(key).unwrap_or_else(|| panic!("{what}: attribute `{key}` is missing: {received:?}"));
        check_value(protocol, &what, key, value, got);
    }

    assert_eq!(span.events.len(), sent.events.len(), "{what}: events");
    for (event, sent_event) in span.events.iter().zip(&sent.events) {
        assert_eq!(event.time_unix_nano, protocol.time(sent_event.time_unix_nano), "{what}: event time");
        let mut attributes: BTreeMap<String, Value> = pairs(&event.attributes).into_iter().collect();
        if protocol.is_jaeger() {
            assert_eq!(event.name, "", "{what}: the exporter writes no `event` field");
            let name = attributes.remove("message");
            assert_eq!(name, Some(Value::String(sent_event.name.clone())), "{what}: event name under `message`");
        } else {
            assert_eq!(event.name, sent_event.name, "{what}: event name");
        }
        let sent_attributes: BTreeMap<String, Value> =
            sent_event.attributes.iter().map(|(key, value)| (key.clone(), value.clone())).collect();
        assert_eq!(attributes, sent_attributes, "{what}: event `{}` attributes", sent_event.name);
    }

    match protocol {
        Protocol::ZipkinV2 | Protocol::ZipkinV1 => {
            assert!(span.links.is_empty(), "{what}: Zipkin has no links");
            assert_eq!(span.flags, 0, "{what}: flags");
        }
        Protocol::Jaeger | Protocol::JaegerGrpc => {
            let links: Vec<LinkSummary> = span
                .links
                .iter()
                .map(|link| (hex(&link.trace_id), hex(&link.span_id), pairs(&link.attributes)))
                .collect();
            let follows_from = vec![("opentracing.ref_type".to_owned(), Value::String("follows_from".to_owned()))];
            let expected: Vec<_> = sent
                .links
                .iter()
                .map(|link| (link.trace_id.clone(), link.span_id.clone(), follows_from.clone()))
                .collect();
            assert_eq!(links, expected, "{what}: links");
            assert_eq!(span.flags, 1, "{what}: the sampled flag");
        }
    }
    // Neither exporter sends the W3C trace state.
    assert!(span.trace_state.is_empty(), "{what}: trace state {:?} (sent {:?})", span.trace_state, sent.trace_state);
}

/// Checks an attribute value that arrived (`got`) against the one sent: Zipkin tags are the
/// exporter's text of the value; Jaeger tags are typed, but arrays are sent as their text.
fn check_value(protocol: Protocol, what: &str, key: &str, sent: &Value, got: &Value) {
    match (protocol.is_jaeger(), sent, got) {
        (false, _, Value::String(text)) => {
            assert!(text_means(text, sent), "{what}: `{key}` arrived as {text:?}, sent {sent:?}");
        }
        (true, Value::Array(_), got) => {
            assert!(matches!(got, Value::String(_)), "{what}: the exporter sends `{key}` as text, got {got:?}")
        }
        (true, sent, got) => assert_eq!(got, sent, "{what}: `{key}`"),
        (false, _, got) => panic!("{what}: `{key}` arrived as {got:?}, Zipkin tags are strings"),
    }
}

/// Sends with send_legacy.py from `venv` to `targets` and checks that every exported span
/// arrived once in `output`, under the mapping of the protocol of its target.
fn send_and_check(venv: (&str, &str), targets: &[(Protocol, String)], collector: &mut Spanpipe, output: &Path) {
    let python = venv_python(venv.0, venv.1);
    let mut arguments: Vec<OsString> = Vec::new();
    for (_, target) in targets {
        arguments.extend(["--target".into(), target.into()]);
    }
    let report: Report = run_client(&python, "send_legacy.py", &arguments);
    assert_eq!(report.targets.len(), targets.len(), "the client reports every target");
    let expected: usize = report.targets.iter().map(|target| target.spans.len()).sum();
    wait_until("every exported span to arrive in the file", DELIVERY_TIMEOUT, || {
        arrived_spans(output).values().map(Vec::len).sum::<usize>() >= expected
    });
    let arrived = arrived_spans(output);
    for ((protocol, target), report) in targets.iter().zip(&report.targets) {
        assert_eq!(&report.target, target);
        assert_eq!(report.spans.len(), 8, "{target}: the span set has eight spans");
        for sent in &report.spans {
            let copies = arrived.get(&sent.span_id).map_or(0, Vec::len);
            assert_eq!(copies, 1, "{target}: span {} ({}) arrived {copies} times", sent.span_id, sent.name);
            let service = sent
                .resource_attributes
                .iter()
                .find_map(|(key, value)| match value {
                    Value::String(name) if key == "service.name" => Some(name.as_str()),
                    _ => None,
                })
                .expect("the SDK's resource names the service");
            check_span(*protocol, service, sent, &arrived[&sent.span_id][0]);
        }
    }
    assert_eq!(arrived.values().map(Vec::len).sum::<usize>(), expected, "nothing but what was sent arrived");
    collector.stop_cleanly();
}

#[test]
fn python_sdk_zipkin_exporters_v2_json_v2_proto_and_v1_json() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let address = free_address();
    let (mut collector, output) = collector_into_file(dir.path(), "zipkin", &format!("{{endpoint: \"{address}\"}}"));
    let targets = [
        (Protocol::ZipkinV2, format!("zipkin-json=http://{address}/api/v2/spans")),
        (Protocol::ZipkinV2, format!("zipkin-proto=http://{address}/api/v2/spans")),
        (Protocol::ZipkinV1, format!("zipkin-v1-json=http://{address}/api/v1/spans")),
    ];
    send_and_check((".venv-zipkin", "tests/otel_sdk/requirements-zipkin.txt"), &targets, &mut collector, &output);
}

#[test]
fn python_sdk_jaeger_exporters_thrift_to_the_agent_and_the_collector_and_protobuf_over_grpc() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (grpc, http, compact) = (free_address(), free_address(), free_udp_address());
    let settings = format!(
        "{{protocols: {{grpc: {{endpoint: \"{grpc}\"}}, thrift_http: {{endpoint: \"{http}\"}}, \
         thrift_compact: {{endpoint: \"{compact}\"}}}}}}"
    );
    let (mut collector, output) = collector_into_file(dir.path(), "jaeger", &settings);
    let targets = [
        (Protocol::Jaeger, format!("jaeger-agent={compact}")),
        (Protocol::Jaeger, format!("jaeger-collector=http://{http}/api/traces")),
        (Protocol::JaegerGrpc, format!("jaeger-grpc={grpc}")),
    ];
    send_and_check((".venv-jaeger", "tests/otel_sdk/requirements-jaeger.txt"), &targets, &mut collector, &output);
}
