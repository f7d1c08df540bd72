//! spangen's protocols beyond OTLP/gRPC and OTLP/HTTP against the real collector: Zipkin JSON
//! and protobuf, Jaeger compact and binary Thrift over UDP, Thrift over HTTP and protobuf over
//! gRPC, OTLP over
//! WebSocket (binary messages, and text messages over TLS) and OTLP/HTTP with MessagePack bodies.
//! For each, `--verify` finds every acknowledged span (for UDP: every sent span) in the file
//! exporter's output exactly once, in the form the protocol's mapping carries it.
//!
//! One collector serves every protocol, each through its own receiver, pipeline and file, so a
//! protocol's check sees only its own spans and the collector starts once.

mod common;

use std::path::{Path, PathBuf};

use clap::Parser as _;
use common::{free_address, free_udp_address, Spanpipe};

/// How each protocol reaches the collector.
struct Case {
    /// `--protocol`, and the receiver's and file's name.
    name: &'static str,
    /// The rest of spangen's command line (endpoint and protocol settings).
    flags: String,
    /// The file its pipeline writes.
    file: PathBuf,
}

/// Starts one collector with a receiver, pipeline and file exporter per case, and returns it
/// with the cases.
fn collector_for_every_protocol(dir: &Path) -> (Spanpipe, Vec<Case>) {
    let ca = spanpipe_testkit::tls::TestCa::new(dir, "root");
    let certificate = ca.issue("collector", &["localhost"]);
    let (zipkin_json, zipkin_proto, jaeger_http, websocket, websocket_tls, msgpack) =
        (free_address(), free_address(), free_address(), free_address(), free_address(), free_address());
    let (jaeger_compact, jaeger_binary) = (free_udp_address(), free_udp_address());
    let jaeger_grpc = free_address();
    let tls_port = websocket_tls.port();
    let mut cases = vec![
        ("zipkin-json", "zipkin/json", format!("{{endpoint: \"{zipkin_json}\"}}"), format!("--endpoint {zipkin_json}")),
        (
            "zipkin-proto",
            "zipkin/proto",
            format!("{{endpoint: \"{zipkin_proto}\"}}"),
            format!("--endpoint http://{zipkin_proto}/api/v2/spans"),
        ),
        (
            "jaeger-compact",
            "jaeger/compact",
            format!("{{protocols: {{thrift_compact: {{endpoint: \"{jaeger_compact}\"}}}}}}"),
            // UDP has no flow control: a rate the debug-built collector keeps up with.
            format!("--endpoint {jaeger_compact} --rate 5000"),
        ),
        (
            "jaeger-binary",
            "jaeger/binary",
            format!("{{protocols: {{thrift_binary: {{endpoint: \"{jaeger_binary}\"}}}}}}"),
            format!("--endpoint {jaeger_binary} --rate 5000"),
        ),
        (
            "jaeger-http",
            "jaeger/http",
            format!("{{protocols: {{thrift_http: {{endpoint: \"{jaeger_http}\"}}}}}}"),
            format!("--endpoint {jaeger_http}"),
        ),
        (
            "jaeger-grpc",
            "jaeger/grpc",
            format!("{{protocols: {{grpc: {{endpoint: \"{jaeger_grpc}\"}}}}}}"),
            format!("--endpoint {jaeger_grpc}"),
        ),
        (
            "websocket",
            "websocket/binary",
            format!("{{endpoint: \"{websocket}\"}}"),
            format!("--endpoint ws://{websocket} --connections 2 --in-flight 8"),
        ),
        (
            "websocket",
            "websocket/text",
            format!(
                "{{endpoint: \"{websocket_tls}\", tls: {{cert_file: \"{}\", key_file: \"{}\"}}}}",
                certificate.cert_file.display(),
                certificate.key_file.display()
            ),
            format!("--endpoint wss://localhost:{tls_port} --ca-file {} --encoding json", ca.ca_file().display()),
        ),
        (
            "http-msgpack",
            "otlp/msgpack",
            format!("{{protocols: {{http: {{endpoint: \"{msgpack}\"}}}}}}"),
            format!("--endpoint {msgpack}"),
        ),
    ];
    let (mut receivers, mut exporters, mut pipelines) = (String::new(), String::new(), String::new());
    let cases = cases
        .drain(..)
        .map(|(protocol, receiver, settings, flags)| {
            let pipeline = receiver.replace('/', "_");
            let file = dir.join(format!("{pipeline}.jsonl"));
            receivers.push_str(&format!("  {receiver}: {settings}\n"));
            exporters
                .push_str(&format!("  file/{pipeline}:\n    path: \"{}\"\n    flush_interval: 20ms\n", file.display()));
            pipelines
                .push_str(&format!("traces/{pipeline}: {{receivers: [{receiver}], exporters: [file/{pipeline}]}}\n"));
            Case { name: protocol, flags: format!("--protocol {protocol} {flags}"), file }
        })
        .collect();
    let components = format!("receivers:\n{receivers}exporters:\n{exporters}");
    (Spanpipe::start(dir, "collector", &components, &pipelines), cases)
}

fn spangen(line: &str) -> spangen::Finished {
    let args = spangen::Args::try_parse_from(std::iter::once("spangen").chain(line.split_whitespace()))
        .unwrap_or_else(|error| panic!("`spangen {line}`: {error}"));
    spangen::run(&args).unwrap_or_else(|error| panic!("`spangen {line}`: {error}"))
}

/// Zipkin carries attributes as strings: checked against the OTLP form of the same requests, the
/// spans with attributes of other types count as altered. So the exact result above comes from
/// comparing with the protocol's own form, not from a check that sees nothing. The spans whose
/// attributes are all strings do match the OTLP form: their resource attributes (`service.version`,
/// `host.name`), sent as span tags, went back to the resource.
fn assert_otlp_form_would_differ(finished: &spangen::Finished, file: &Path) {
    let profile = spangen::profile::Profile::preset(spangen::profile::ProfileName::HttpService);
    let total = finished.acknowledged.requests() * finished.plan.span_stride();
    let otlp_plan = spangen::plan::Plan::new(&profile, 1, 100, 16, Some(total), spangen::wire::Wire::OtlpProtobuf)
        .expect("the same requests, planned for OTLP");
    let report = spangen::verify::verify(file, &otlp_plan, &finished.acknowledged).expect("the file reads");
    assert_eq!(report.missing, 0, "{report:#?}");
    assert!(report.altered > 0 && report.altered < total, "{report:#?}");
}

#[test]
fn verify_finds_every_span_exactly_once_for_every_protocol() {
    const SPANS: u64 = 3_000;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut collector, cases) = collector_for_every_protocol(dir.path());
    for case in &cases {
        // `--max` unless the case paces itself (UDP).
        let pace = if case.flags.contains("--rate") { "" } else { "--max" };
        let finished = spangen(&format!(
            "{} {pace} --count {SPANS} --max-retries 10 --no-progress --verify {} --verify-timeout 30s",
            case.flags,
            case.file.display()
        ));
        let report = &finished.report;
        let text = report.text();
        assert_eq!(report.counts.spans_sent, SPANS, "{}:\n{text}", case.flags);
        assert_eq!(report.counts.spans_accepted, SPANS, "{}:\n{text}", case.flags);
        assert!(!report.has_request_errors(), "{}:\n{text}", case.flags);
        assert!(report.counts.messages_sent >= report.counts.requests_sent, "{}:\n{text}", case.flags);
        let verify = report.verify.as_ref().expect("--verify reports");
        assert!(verify.is_exact(), "{}:\n{text}", case.flags);
        assert_eq!((verify.expected, verify.found), (SPANS, SPANS), "{}:\n{text}", case.flags);
        let answer = match case.name {
            "jaeger-compact" | "jaeger-binary" => "udp sent",
            "jaeger-grpc" => "grpc OK",
            "websocket" => "websocket accepted",
            "http-msgpack" => "http 200",
            _ => "http 202",
        };
        assert_eq!(report.statuses.keys().collect::<Vec<_>>(), vec![answer], "{}:\n{text}", case.flags);
        if case.name == "zipkin-json" {
            assert_otlp_form_would_differ(&finished, &case.file);
        }
    }
    collector.stop_cleanly();
}
