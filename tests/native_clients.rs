//! Native Zipkin and Jaeger clients through spanpipe: the tracers that services predating
//! OpenTelemetry still run, whose traffic is not the OpenTelemetry exporters' (those are
//! tests/legacy_protocols.rs).
//!
//! Two client scripts in tests/native_clients/ send one span set each and print every span as the
//! client recorded it (`tools/test` installs their clients):
//! - send.js (Node.js, modules from `npm ci`): zipkin-js 0.22 (`zipkin`, `zipkin-transport-http`)
//!   as Zipkin v2 and v1 JSON, and Uber's jaeger-client 3.19 to the agent port — binary Thrift
//!   over UDP, the only encoding its Thrift library writes, every field of every tag set, defaults
//!   included — and to the collector's HTTP endpoint;
//! - send_py.py (the venv .venv-native): Yelp's py_zipkin 1.2.8 as Zipkin v2 JSON, protobuf and v1
//!   JSON (64-bit trace ids), and Uber's jaeger-client 4.8 for Python, compact Thrift over UDP
//!   (integer tags as LONG).
//!
//! Each span arrives through spanpipe once, mapped as the OpenTelemetry specification (and the
//! Collector) says:
//! - Zipkin: the local endpoint's service is the resource's `service.name`, its address and port
//!   `net.host.ip` / `net.host.port`; the remote endpoint gives `peer.service`, `net.peer.ip` and
//!   `net.peer.port`; tags are string attributes but `error`, which sets the status (code 2, its
//!   value the message); annotations are events; v1's core annotations give the kind and times
//!   as v2 states them; trace ids left-padded to 128 bits;
//! - Jaeger: 64-bit trace ids left-padded; the `span.kind` tag is the kind and `error=true` the
//!   status, both consumed; other tags keep their Thrift type; a log's `event` field names its
//!   event and the other fields are its attributes, a log without one is an unnamed event; a
//!   FOLLOWS_FROM reference is a link marked `opentracing.ref_type`; the sampled flag; the
//!   process's tags are resource attributes, with `hostname` as `host.name` and `jaeger.version` as
//!   `opencensus.exporterversion` (`Jaeger-` and the version), as the Collector renames them.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use common::sdk::{
    arrived_spans, collector_into_file, hex, pairs, run_node_client, run_script, venv_python, Arrived, LinkSummary,
    Value,
};
use common::{free_address, free_udp_address, wait_until, Spanpipe, DELIVERY_TIMEOUT};
use serde::Deserialize;

/// What send.js and send_py.py print: per target, the spans as its client recorded them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    targets: Vec<TargetReport>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetReport {
    target: String,
    /// The Jaeger tracer's service name ("" for Zipkin, whose spans name their service).
    service: String,
    /// The Jaeger tracer's process tags (none for Zipkin).
    process_tags: Vec<(String, Value)>,
    spans: Vec<Recorded>,
}

/// A span as its client recorded it. Both forms refuse unknown fields, so each record is read as
/// the one it is.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Recorded {
    Zipkin(ZipkinRecord),
    Jaeger(JaegerRecord),
}

impl Recorded {
    fn span_id(&self) -> &str {
        match self {
            Self::Zipkin(span) => &span.id,
            Self::Jaeger(span) => &span.span_id,
        }
    }
}

impl TargetReport {
    fn zipkin_spans(&self) -> Vec<&ZipkinRecord> {
        let spans = self.spans.iter().map(|span| match span {
            Recorded::Zipkin(span) => span,
            Recorded::Jaeger(_) => panic!("{}: a Jaeger span from a Zipkin client", self.target),
        });
        spans.collect()
    }

    fn jaeger_spans(&self) -> Vec<&JaegerRecord> {
        let spans = self.spans.iter().map(|span| match span {
            Recorded::Jaeger(span) => span,
            Recorded::Zipkin(_) => panic!("{}: a Zipkin span from a Jaeger client", self.target),
        });
        spans.collect()
    }
}

/// A span as the Zipkin client holds it: the client's own Zipkin v2 JSON of the span, whichever
/// encoding it sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ZipkinRecord {
    trace_id: String,
    #[serde(default)]
    parent_id: String,
    id: String,
    name: String,
    kind: String,
    timestamp: u64,
    duration: u64,
    local_endpoint: ZipkinEndpoint,
    remote_endpoint: Option<ZipkinEndpoint>,
    #[serde(default)]
    annotations: Vec<ZipkinAnnotation>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ZipkinEndpoint {
    service_name: String,
    ipv4: Option<String>,
    port: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZipkinAnnotation {
    timestamp: u64,
    value: String,
}

/// A span as jaeger-client holds it, printed by the scripts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JaegerRecord {
    /// 16 hex digits: the clients make 64-bit trace ids.
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    start_us: u64,
    duration_us: u64,
    tags: Vec<(String, Value)>,
    logs: Vec<JaegerLog>,
    references: Vec<JaegerReference>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JaegerLog {
    timestamp_us: u64,
    fields: Vec<(String, Value)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JaegerReference {
    #[serde(rename = "type")]
    kind: String,
    trace_id: String,
    span_id: String,
}

fn string(text: &str) -> Value {
    Value::String(text.to_owned())
}

/// An arrived span's attributes by key (a repeated key would be a difference: it counts twice in
/// the length checked beside this).
fn attribute_map(arrived: &Arrived) -> BTreeMap<String, Value> {
    pairs(&arrived.span.attributes).into_iter().collect()
}

fn check_zipkin_span(sent: &ZipkinRecord, arrived: &Arrived) {
    let what = format!("Zipkin span {} ({})", sent.id, sent.name);
    let span = &arrived.span;
    assert_eq!(hex(&span.trace_id), format!("{:0>32}", sent.trace_id), "{what}: trace id, 128 bits");
    assert_eq!(hex(&span.parent_span_id), sent.parent_id, "{what}: parent");
    assert_eq!(span.name, sent.name, "{what}: name");
    let kind = match sent.kind.as_str() {
        "SERVER" => 2,
        "CLIENT" => 3,
        other => panic!("{what}: the span set has no {other} span"),
    };
    assert_eq!(span.kind, kind, "{what}: kind");
    assert_eq!(span.start_time_unix_nano, sent.timestamp * 1_000, "{what}: start");
    assert_eq!(span.end_time_unix_nano, (sent.timestamp + sent.duration) * 1_000, "{what}: end");
    assert_eq!(
        arrived.resource_attributes,
        [("service.name".to_owned(), string(&sent.local_endpoint.service_name))],
        "{what}: resource"
    );
    assert_eq!((arrived.scope_name.as_str(), arrived.scope_version.as_str()), ("", ""), "{what}: scope");

    let status = span.status.clone().unwrap_or_default();
    let (code, message) = sent.tags.get("error").map_or((0, ""), |message| (2, message.as_str()));
    assert_eq!((status.code, status.message.as_str()), (code, message), "{what}: status");

    let mut expected: BTreeMap<String, Value> =
        sent.tags.iter().filter(|(key, _)| *key != "error").map(|(key, value)| (key.clone(), string(value))).collect();
    let mut endpoint = |endpoint: &ZipkinEndpoint, service: Option<&str>, ip: &str, port: &str| {
        if let Some(service) = service {
            expected.insert(service.to_owned(), string(&endpoint.service_name));
        }
        if let Some(address) = &endpoint.ipv4 {
            expected.insert(ip.to_owned(), string(address));
        }
        if let Some(number) = endpoint.port {
            expected.insert(port.to_owned(), Value::Int(number.into()));
        }
    };
    endpoint(&sent.local_endpoint, None, "net.host.ip", "net.host.port");
    if let Some(remote) = &sent.remote_endpoint {
        endpoint(remote, Some("peer.service"), "net.peer.ip", "net.peer.port");
    }
    assert_eq!(span.attributes.len(), expected.len(), "{what}: attributes {:?}", span.attributes);
    assert_eq!(attribute_map(arrived), expected, "{what}: attributes");

    let events: Vec<(u64, &str, usize)> =
        span.events.iter().map(|event| (event.time_unix_nano, event.name.as_str(), event.attributes.len())).collect();
    let sent_events: Vec<(u64, &str, usize)> = sent
        .annotations
        .iter()
        .map(|annotation| (annotation.timestamp * 1_000, annotation.value.as_str(), 0))
        .collect();
    assert_eq!(events, sent_events, "{what}: events");
    assert!(span.links.is_empty(), "{what}: Zipkin has no links");
    assert_eq!(span.flags, 0, "{what}: flags");
}

fn check_jaeger_span(sent: &JaegerRecord, service: &str, process_tags: &[(String, Value)], arrived: &Arrived) {
    let what = format!("Jaeger span {} ({})", sent.span_id, sent.name);
    let span = &arrived.span;
    let padded = |id: &str| format!("{id:0>32}");
    assert_eq!(hex(&span.trace_id), padded(&sent.trace_id), "{what}: trace id, left-padded to 128 bits");
    assert_eq!(hex(&span.parent_span_id), sent.parent_span_id, "{what}: parent");
    assert_eq!(span.name, sent.name, "{what}: name");
    assert_eq!(span.start_time_unix_nano, sent.start_us * 1_000, "{what}: start");
    assert_eq!(span.end_time_unix_nano, (sent.start_us + sent.duration_us) * 1_000, "{what}: end");
    assert_eq!(span.flags, 1, "{what}: the sampled flag");

    let mut expected_resource = vec![("service.name".to_owned(), string(service))];
    for (key, value) in process_tags {
        expected_resource.push(match (key.as_str(), value) {
            ("hostname", value) => ("host.name".to_owned(), value.clone()),
            ("jaeger.version", Value::String(version)) => {
                ("opencensus.exporterversion".to_owned(), string(&format!("Jaeger-{version}")))
            }
            _ => (key.clone(), value.clone()),
        });
    }
    let mut resource = arrived.resource_attributes.clone();
    resource.sort_by(|a, b| a.0.cmp(&b.0));
    expected_resource.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(resource, expected_resource, "{what}: resource");
    assert_eq!((arrived.scope_name.as_str(), arrived.scope_version.as_str()), ("", ""), "{what}: scope");

    let tag = |key: &str| sent.tags.iter().find(|(name, _)| name == key).map(|(_, value)| value);
    let kind = match tag("span.kind") {
        None => 0,
        Some(Value::String(kind)) if kind == "server" => 2,
        Some(Value::String(kind)) if kind == "client" => 3,
        Some(other) => panic!("{what}: the span set has no span.kind {other:?}"),
    };
    assert_eq!(span.kind, kind, "{what}: kind from the span.kind tag");
    // `error=true` decides the status; without it (and without `otel.status_code`, which these
    // clients do not send) an integer `http.status_code` does, by the Collector's rule: 4xx is an
    // error for clients only, 100–398 is unset, anything else an error.
    let http_status = match tag("http.status_code") {
        Some(Value::Int(code)) => Some(*code),
        Some(Value::String(text)) => text.parse().ok(),
        _ => None,
    };
    let code = match (tag("error"), http_status) {
        (Some(Value::Bool(true)), _) => 2,
        (_, Some(400..=499)) if kind == 2 => 0,
        (_, Some(100..=398) | None) => 0,
        (_, Some(_)) => 2,
    };
    let status = span.status.clone().unwrap_or_default();
    assert_eq!((status.code, status.message.as_str()), (code, ""), "{what}: status");
    let expected: BTreeMap<String, Value> =
        sent.tags.iter().filter(|(key, _)| key != "span.kind" && key != "error").cloned().collect();
    assert_eq!(span.attributes.len(), expected.len(), "{what}: attributes {:?}", span.attributes);
    assert_eq!(attribute_map(arrived), expected, "{what}: attributes, typed");

    assert_eq!(span.events.len(), sent.logs.len(), "{what}: events");
    for (event, log) in span.events.iter().zip(&sent.logs) {
        assert_eq!(event.time_unix_nano, log.timestamp_us * 1_000, "{what}: event time");
        let name = log.fields.iter().find_map(|(key, value)| match value {
            Value::String(name) if key == "event" => Some(name.as_str()),
            _ => None,
        });
        assert_eq!(event.name, name.unwrap_or(""), "{what}: event name from the `event` field");
        let fields: BTreeMap<String, Value> =
            log.fields.iter().filter(|(key, _)| name.is_none() || key != "event").cloned().collect();
        let attributes: BTreeMap<String, Value> = pairs(&event.attributes).into_iter().collect();
        assert_eq!(attributes, fields, "{what}: event attributes");
    }

    let links: Vec<LinkSummary> =
        span.links.iter().map(|link| (hex(&link.trace_id), hex(&link.span_id), pairs(&link.attributes))).collect();
    let expected_links: Vec<_> = sent
        .references
        .iter()
        .map(|reference| {
            assert_eq!(reference.kind, "follows_from", "{what}: the span set's references follow from");
            let marked = vec![("opentracing.ref_type".to_owned(), string("follows_from"))];
            (padded(&reference.trace_id), reference.span_id.clone(), marked)
        })
        .collect();
    assert_eq!(links, expected_links, "{what}: links");
}

/// The client scripts, each with what `tools/test` installs for it.
#[derive(Clone, Copy, Debug)]
enum Client {
    /// send.js: zipkin-js and jaeger-client for Node.js.
    Node,
    /// send_py.py: py_zipkin and jaeger-client for Python.
    Python,
}

impl Client {
    /// Runs the script against `targets` and reads its report.
    fn send(self, targets: &[String]) -> Report {
        let arguments: Vec<OsString> =
            targets.iter().flat_map(|target| [OsString::from("--target"), OsString::from(target)]).collect();
        match self {
            Self::Node => run_node_client("send.js", &["zipkin", "jaeger-client"], &arguments),
            Self::Python => {
                let python = venv_python(".venv-native", "tests/native_clients/requirements.txt");
                let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/native_clients/send_py.py");
                run_script(python.as_os_str(), &script, &arguments)
            }
        }
    }
}

/// Has `client` send to `targets` and checks that every span it recorded arrived once in
/// `output`, mapped as its protocol says; returns the report for checks of the span set itself.
fn send_and_check(client: Client, targets: &[String], collector: &mut Spanpipe, output: &Path) -> Report {
    let report = client.send(targets);
    assert_eq!(report.targets.len(), targets.len(), "the client reports every target");
    let expected: usize = report.targets.iter().map(|target| target.spans.len()).sum();
    wait_until("every recorded span to arrive in the file", DELIVERY_TIMEOUT, || {
        arrived_spans(output).values().map(Vec::len).sum::<usize>() >= expected
    });
    let arrived = arrived_spans(output);
    for (target, report) in targets.iter().zip(&report.targets) {
        assert_eq!(&report.target, target);
        for sent in &report.spans {
            let id = sent.span_id();
            let copies = arrived.get(id).map_or(0, Vec::len);
            assert_eq!(copies, 1, "{target}: span {id} arrived {copies} times");
            let arrived = &arrived[id][0];
            match sent {
                Recorded::Zipkin(sent) => check_zipkin_span(sent, arrived),
                Recorded::Jaeger(sent) => check_jaeger_span(sent, &report.service, &report.process_tags, arrived),
            }
        }
    }
    assert_eq!(arrived.values().map(Vec::len).sum::<usize>(), expected, "nothing but what was sent arrived");
    collector.stop_cleanly();
    report
}

/// Checks that the Zipkin span set exercised every part of the mapping checked span by span: a
/// remote endpoint, an `error` tag, an annotation, a local address, for every target.
fn assert_zipkin_span_set_covers_the_mapping(report: &Report) {
    for target in &report.targets {
        let spans = target.zipkin_spans();
        assert_eq!(spans.len(), 2, "{}: a server and a client span", target.target);
        assert!(spans.iter().any(|span| span.remote_endpoint.is_some()), "{}: a remote endpoint", target.target);
        assert!(spans.iter().any(|span| span.tags.contains_key("error")), "{}: an error tag", target.target);
        assert!(spans.iter().any(|span| !span.annotations.is_empty()), "{}: an annotation", target.target);
        assert!(spans.iter().any(|span| span.local_endpoint.ipv4.is_some()), "{}: a local address", target.target);
    }
}

/// Checks that the Jaeger span set exercised every part of the mapping checked span by span: both
/// kinds, an error, a non-string tag and `false`, a log with an `event` field and one without, a
/// FOLLOWS_FROM reference, and the process tags the collector renames.
fn assert_jaeger_span_set_covers_the_mapping(report: &Report) {
    for target in &report.targets {
        let spans = target.jaeger_spans();
        let tags: Vec<&(String, Value)> = spans.iter().flat_map(|span| &span.tags).collect();
        let has_tag = |key: &str, value: &Value| tags.iter().any(|(name, tag)| name == key && tag == value);
        assert!(has_tag("span.kind", &string("server")) && has_tag("span.kind", &string("client")), "{tags:?}");
        assert!(has_tag("error", &Value::Bool(true)), "{tags:?}");
        assert!(tags.iter().any(|(_, value)| matches!(value, Value::Double(_) | Value::Int(_))), "{tags:?}");
        assert!(tags.iter().any(|(_, value)| matches!(value, Value::Bool(false))), "{tags:?}");
        let logs: Vec<&JaegerLog> = spans.iter().flat_map(|span| &span.logs).collect();
        assert!(logs.iter().any(|log| log.fields.iter().any(|(key, _)| key == "event")), "{logs:?}");
        assert!(logs.iter().any(|log| log.fields.iter().all(|(key, _)| key != "event")), "{logs:?}");
        assert!(spans.iter().any(|span| !span.references.is_empty()), "{}: a reference", target.target);
        let process: Vec<&str> = target.process_tags.iter().map(|(key, _)| key.as_str()).collect();
        assert!(process.contains(&"hostname") && process.contains(&"jaeger.version"), "{process:?}");
    }
}

/// A collector with a `zipkin` receiver, and the targets of `kinds` on it.
fn zipkin_collector(dir: &Path, kinds: &[(&str, &str)]) -> (Spanpipe, PathBuf, Vec<String>) {
    let address = free_address();
    let (collector, output) = collector_into_file(dir, "zipkin", &format!("{{endpoint: \"{address}\"}}"));
    let targets = kinds.iter().map(|(kind, path)| format!("{kind}=http://{address}{path}")).collect();
    (collector, output, targets)
}

/// `client` sends to a collector's `zipkin` receiver in each of `kinds` (a target kind and its URL
/// path); every span is checked, and the span set's coverage.
fn check_zipkin_client(client: Client, kinds: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut collector, output, targets) = zipkin_collector(dir.path(), kinds);
    let report = send_and_check(client, &targets, &mut collector, &output);
    assert_zipkin_span_set_covers_the_mapping(&report);
}

#[test]
fn zipkin_js_sends_v2_and_v1_json() {
    check_zipkin_client(Client::Node, &[("zipkin-v2", "/api/v2/spans"), ("zipkin-v1", "/api/v1/spans")]);
}

#[test]
fn py_zipkin_sends_v2_json_v2_protobuf_and_v1_json() {
    let kinds = [("zipkin-v2", "/api/v2/spans"), ("zipkin-proto", "/api/v2/spans"), ("zipkin-v1", "/api/v1/spans")];
    check_zipkin_client(Client::Python, &kinds);
}

#[test]
fn jaeger_client_node_sends_binary_thrift_to_the_agent_and_to_the_collector() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (http, binary) = (free_address(), free_udp_address());
    let settings =
        format!("{{protocols: {{thrift_http: {{endpoint: \"{http}\"}}, thrift_binary: {{endpoint: \"{binary}\"}}}}}}");
    let (mut collector, output) = collector_into_file(dir.path(), "jaeger", &settings);
    let targets = [format!("jaeger-agent={binary}"), format!("jaeger-collector=http://{http}/api/traces")];
    let report = send_and_check(Client::Node, &targets, &mut collector, &output);
    assert_jaeger_span_set_covers_the_mapping(&report);
}

#[test]
fn jaeger_client_python_sends_compact_thrift_to_the_agent() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let compact = free_udp_address();
    let settings = format!("{{protocols: {{thrift_compact: {{endpoint: \"{compact}\"}}}}}}");
    let (mut collector, output) = collector_into_file(dir.path(), "jaeger", &settings);
    let report = send_and_check(Client::Python, &[format!("jaeger-agent={compact}")], &mut collector, &output);
    assert_jaeger_span_set_covers_the_mapping(&report);
}
