//! Real OpenTelemetry SDK clients through two spanpipes: every field arrives intact.
//!
//! The OpenTelemetry Python SDK (tests/otel_sdk/send_spans.py, run from the venv that
//! `tools/test` creates) sends a known set of spans with its OTLP/gRPC and its OTLP/HTTP
//! exporters to spanpipe A. A has two receivers, each feeding its own pipeline: one batches and
//! forwards with the `otlp` (gRPC) exporter, the other with the `otlphttp` exporter (zstd). Both
//! end at spanpipe B, whose `file` exporter writes OTLP/JSON lines. Four routes in all, every SDK
//! exporter through every spanpipe exporter:
//!
//! ```text
//! SDK gRPC ─┐                                      ┌─► B gRPC ─┐
//! SDK HTTP ─┴► A otlp/via_grpc ─► batch ─► otlp ───┘           ├─► file (OTLP/JSON lines)
//! SDK gRPC ─┐                                      ┌─► B HTTP ─┘
//! SDK HTTP ─┴► A otlp/via_http ─► batch ─► otlphttp┘
//! ```
//!
//! The script prints what the SDK sent (read from the requests its OTLP encoder built, ids in
//! hex); the test reads B's file with opentelemetry-proto's serde types and compares each span,
//! with its resource and scope, to that description: ids, parent, trace state, flags, name,
//! kind, times, attributes (typed, in order), events, links, status, resource attributes and
//! schema URL, scope name, version, attributes and schema URL.
//!
//! A second test sends the same set over TLS — the SDK's gRPC exporter with
//! `ssl_channel_credentials`, its HTTP exporter with `certificate_file` — to a receiver that has
//! a certificate, and checks it the same way.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::sdk::{hex, pairs, run_client, venv_python, Value};
use common::{free_address, read_export_requests, wait_until, Spanpipe, DELIVERY_TIMEOUT};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde::Deserialize;
use spanpipe_testkit::tls::TestCa;

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRecord {
    name: String,
    time_unix_nano: u64,
    attributes: Vec<(String, Value)>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkRecord {
    trace_id: String,
    span_id: String,
    trace_state: String,
    flags: u32,
    attributes: Vec<(String, Value)>,
}

/// A span with its resource and scope: what the script prints for each exported span, and what
/// the test builds from each span in B's file.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpanRecord {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    trace_state: String,
    flags: u32,
    name: String,
    kind: i32,
    start_time_unix_nano: u64,
    end_time_unix_nano: u64,
    attributes: Vec<(String, Value)>,
    events: Vec<EventRecord>,
    links: Vec<LinkRecord>,
    status_code: i32,
    status_message: String,
    resource_attributes: Vec<(String, Value)>,
    resource_schema_url: String,
    scope_name: String,
    scope_version: String,
    scope_schema_url: String,
    scope_attributes: Vec<(String, Value)>,
}

impl SpanRecord {
    fn received(resource_spans: &ResourceSpans, scope_spans: &ScopeSpans, span: &Span) -> Self {
        let resource = resource_spans.resource.clone().unwrap_or_default();
        let scope = scope_spans.scope.clone().unwrap_or_default();
        let status = span.status.clone().unwrap_or_default();
        Self {
            trace_id: hex(&span.trace_id),
            span_id: hex(&span.span_id),
            parent_span_id: hex(&span.parent_span_id),
            trace_state: span.trace_state.clone(),
            flags: span.flags,
            name: span.name.clone(),
            kind: span.kind,
            start_time_unix_nano: span.start_time_unix_nano,
            end_time_unix_nano: span.end_time_unix_nano,
            attributes: pairs(&span.attributes),
            events: span
                .events
                .iter()
                .map(|event| EventRecord {
                    name: event.name.clone(),
                    time_unix_nano: event.time_unix_nano,
                    attributes: pairs(&event.attributes),
                })
                .collect(),
            links: span
                .links
                .iter()
                .map(|link| LinkRecord {
                    trace_id: hex(&link.trace_id),
                    span_id: hex(&link.span_id),
                    trace_state: link.trace_state.clone(),
                    flags: link.flags,
                    attributes: pairs(&link.attributes),
                })
                .collect(),
            status_code: status.code,
            status_message: status.message,
            resource_attributes: pairs(&resource.attributes),
            resource_schema_url: resource_spans.schema_url.clone(),
            scope_name: scope.name,
            scope_version: scope.version,
            scope_schema_url: scope_spans.schema_url.clone(),
            scope_attributes: pairs(&scope.attributes),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetReport {
    target: String,
    spans: Vec<SpanRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    targets: Vec<TargetReport>,
}

/// Runs the script against `targets` (over TLS trusting `ca_file`, if given) and returns what it
/// reports having exported.
fn send_with_python_sdk(python: &Path, targets: &[String], ca_file: Option<&Path>) -> Report {
    let mut arguments: Vec<OsString> = Vec::new();
    for target in targets {
        arguments.extend(["--target".into(), target.into()]);
    }
    if let Some(ca_file) = ca_file {
        arguments.extend(["--ca-file".into(), ca_file.into()]);
    }
    run_client(python, "send_spans.py", &arguments)
}

/// Every span in B's file, by span id; ids seen more than once are collected separately.
fn received_spans(path: &Path) -> (BTreeMap<String, SpanRecord>, Vec<String>) {
    let mut spans = BTreeMap::new();
    let mut repeated = Vec::new();
    for request in read_export_requests(path) {
        for resource_spans in &request.resource_spans {
            for scope_spans in &resource_spans.scope_spans {
                for span in &scope_spans.spans {
                    let record = SpanRecord::received(resource_spans, scope_spans, span);
                    if let Some(previous) = spans.insert(record.span_id.clone(), record) {
                        repeated.push(previous.span_id);
                    }
                }
            }
        }
    }
    (spans, repeated)
}

#[test]
fn python_sdk_spans_cross_two_spanpipes_over_every_exporter_intact() {
    let python = venv_python(".venv", "tests/otel_sdk/requirements.txt");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = dir.path().join("received.jsonl");
    let (b_grpc, b_http) = (free_address(), free_address());
    let mut b = start_file_receiver(dir.path(), "b", (b_grpc, b_http), "", &output);

    let (via_grpc_grpc, via_grpc_http, via_http_grpc, via_http_http) =
        (free_address(), free_address(), free_address(), free_address());
    let mut a = Spanpipe::start(
        dir.path(),
        "a",
        &format!(
            r#"
receivers:
  otlp/via_grpc:
    protocols:
      grpc: {{endpoint: "{via_grpc_grpc}"}}
      http: {{endpoint: "{via_grpc_http}"}}
  otlp/via_http:
    protocols:
      grpc: {{endpoint: "{via_http_grpc}"}}
      http: {{endpoint: "{via_http_http}"}}
processors:
  batch:
    timeout: 100ms
exporters:
  otlp:
    endpoint: "{b_grpc}"
    tls: {{insecure: true}}
  otlphttp:
    endpoint: "http://{b_http}"
    compression: zstd
"#
        ),
        "traces/grpc: {receivers: [otlp/via_grpc], processors: [batch], exporters: [otlp]}
         traces/http: {receivers: [otlp/via_http], processors: [batch], exporters: [otlphttp]}",
    );

    let targets = [
        format!("grpc={via_grpc_grpc}"),
        format!("http=http://{via_grpc_http}/v1/traces"),
        format!("grpc={via_http_grpc}"),
        format!("http=http://{via_http_http}/v1/traces"),
    ];
    let report = send_with_python_sdk(&python, &targets, None);
    let expected = exported_spans(&report, targets.len());
    wait_for_every_span(&expected, &output);
    // Each half of the load left A through the exporter of its pipeline.
    let spans_via = |exporter: &str| a.metric("spanpipe_exporter_sent_spans_total", &[("exporter", exporter)]);
    wait_until("A's exporter counters to be published", Duration::from_secs(10), || {
        spans_via("otlp") == 16.0 && spans_via("otlphttp") == 16.0
    });
    a.stop_cleanly();
    b.stop_cleanly();
    assert_arrived_intact(&expected, &output);
}

#[test]
fn python_sdk_spans_reach_a_tls_receiver_intact() {
    let python = venv_python(".venv", "tests/otel_sdk/requirements.txt");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca = TestCa::new(dir.path(), "root");
    let certificate = ca.issue("receiver", &["localhost", "127.0.0.1"]);
    let output = dir.path().join("received.jsonl");
    let (grpc, http) = (free_address(), free_address());
    let tls = format!(
        ", tls: {{cert_file: \"{}\", key_file: \"{}\"}}",
        certificate.cert_file.display(),
        certificate.key_file.display()
    );
    let mut receiver = start_file_receiver(dir.path(), "receiver", (grpc, http), &tls, &output);
    let targets =
        [format!("grpc=localhost:{}", grpc.port()), format!("http=https://localhost:{}/v1/traces", http.port())];
    let report = send_with_python_sdk(&python, &targets, Some(&ca.ca_file()));
    let expected = exported_spans(&report, targets.len());
    wait_for_every_span(&expected, &output);
    wait_until("the receiver's counters to be published", Duration::from_secs(10), || {
        receiver.metric("spanpipe_receiver_accepted_spans_total", &[]) == expected.len() as f64
    });
    assert_eq!(receiver.metric("spanpipe_receiver_tls_handshake_failures_total", &[]), 0.0);
    receiver.stop_cleanly();
    assert_arrived_intact(&expected, &output);
}

/// A spanpipe whose OTLP receivers (gRPC and HTTP on `addresses`, each with the extra keys
/// `receiver_keys`, e.g. a `tls` block) write every span to the file `output`.
fn start_file_receiver(
    dir: &Path,
    name: &str,
    (grpc, http): (SocketAddr, SocketAddr),
    receiver_keys: &str,
    output: &Path,
) -> Spanpipe {
    let components = format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "{grpc}"{receiver_keys}}}
      http: {{endpoint: "{http}"{receiver_keys}}}
exporters:
  file:
    path: "{output}"
    flush_interval: 50ms
"#,
        output = output.display()
    );
    Spanpipe::start(dir, name, &components, "traces: {receivers: [otlp], exporters: [file]}")
}

/// What the script reports it exported, by span id; eight spans per target, no id twice.
fn exported_spans(report: &Report, targets: usize) -> BTreeMap<String, &SpanRecord> {
    assert_eq!(report.targets.len(), targets, "the client reports every target");
    let mut expected = BTreeMap::new();
    for target in &report.targets {
        assert_eq!(target.spans.len(), 8, "{}: the script exports eight spans per target", target.target);
        for span in &target.spans {
            assert!(!expected.contains_key(&span.span_id), "the SDK repeated span id {}", span.span_id);
        }
        expected.extend(target.spans.iter().map(|span| (span.span_id.clone(), span)));
    }
    expected
}

fn wait_for_every_span(expected: &BTreeMap<String, &SpanRecord>, output: &Path) {
    wait_until("every span the SDK exported to arrive in the file", DELIVERY_TIMEOUT, || {
        let (received, _) = received_spans(output);
        expected.keys().all(|id| received.contains_key(id))
    });
}

/// The file holds exactly the spans the SDK exported, each once and field for field as sent.
fn assert_arrived_intact(expected: &BTreeMap<String, &SpanRecord>, output: &Path) {
    let (received, repeated) = received_spans(output);
    assert!(repeated.is_empty(), "spans written more than once: {repeated:?}");
    let unexpected: Vec<&String> = received.keys().filter(|id| !expected.contains_key(*id)).collect();
    assert!(unexpected.is_empty(), "the file holds spans nobody sent: {unexpected:?}");
    for (id, sent) in expected {
        let arrived = &received[id];
        assert_eq!(arrived, *sent, "span {id} ({}) differs from what the SDK exported", sent.name);
    }
    let kinds: std::collections::BTreeSet<i32> = received.values().map(|span| span.kind).collect();
    assert_eq!(kinds, (1..=5).collect(), "every OTLP span kind went through");
}
