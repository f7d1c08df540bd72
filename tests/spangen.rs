//! spangen against the real collector: `--verify` finds exactly the acknowledged spans after
//! they pass through spanpipe's OTLP receivers and file exporter, for every protocol; it names
//! each kind of damage when the file is tampered with; and `--rate` holds its schedule.
//!
//! spangen runs as a library (`spangen::run` with parsed command-line arguments) in the test
//! process: a root-package test can start the `spanpipe` binary but cannot see another package's
//! binary, and the library is exactly what the `spangen` binary runs.

mod common;

use std::path::Path;

use clap::Parser as _;
use common::{free_address, Spanpipe};

/// A collector whose OTLP receivers write everything to `file`; returns it with its gRPC and
/// HTTP addresses.
fn collector_to_file(dir: &Path, file: &Path) -> (Spanpipe, String, String) {
    collector_to_file_with(dir, file, "")
}

/// The same, with `receiver_settings` (e.g. `, tls: {…}`) added to both receivers' settings.
fn collector_to_file_with(dir: &Path, file: &Path, receiver_settings: &str) -> (Spanpipe, String, String) {
    let (grpc, http) = (free_address(), free_address());
    let components = format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc: {{endpoint: \"{grpc}\"{receiver_settings}}}\n      \
         http: {{endpoint: \"{http}\"{receiver_settings}}}\n\
         exporters:\n  file:\n    path: \"{}\"\n    flush_interval: 20ms\n",
        file.display()
    );
    let collector = Spanpipe::start(dir, "collector", &components, "traces: {receivers: [otlp], exporters: [file]}");
    (collector, grpc.to_string(), http.to_string())
}

fn spangen(line: &str) -> spangen::Finished {
    let args = spangen::Args::try_parse_from(std::iter::once("spangen").chain(line.split_whitespace()))
        .unwrap_or_else(|error| panic!("`spangen {line}`: {error}"));
    spangen::run(&args).unwrap_or_else(|error| panic!("`spangen {line}`: {error}"))
}

#[track_caller]
fn assert_clean_run(finished: &spangen::Finished, spans: u64) {
    let report = &finished.report;
    assert_eq!(report.counts.spans_sent, spans, "{}", report.text());
    assert_eq!(report.counts.spans_accepted, spans, "{}", report.text());
    assert!(!report.has_request_errors(), "{}", report.text());
}

#[test]
fn verify_finds_every_acknowledged_span_exactly_once_for_each_protocol() {
    for protocol in ["grpc", "http-protobuf", "http-json"] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("spans.jsonl");
        let (mut collector, grpc, http) = collector_to_file(dir.path(), &file);
        let endpoint = if protocol == "grpc" { grpc } else { http };
        let finished = spangen(&format!(
            "--endpoint {endpoint} --protocol {protocol} --max --count 100000 --in-flight 8 --max-retries 10 --no-progress \
             --verify {} --verify-timeout 30s",
            file.display()
        ));
        assert_clean_run(&finished, 100_000);
        let verify = finished.report.verify.as_ref().expect("--verify reports");
        assert!(verify.is_exact(), "{protocol}:\n{}", finished.report.text());
        assert_eq!((verify.expected, verify.found), (100_000, 100_000), "{protocol}");
        collector.stop_cleanly();
    }
}

/// Edits the file exporter's output: deletes one span, duplicates another, renames a third and
/// changes an attribute of a fourth.
fn tamper(file: &Path) {
    let text = std::fs::read_to_string(file).expect("reading the exporter's file");
    let mut requests: Vec<serde_json::Value> =
        text.lines().map(|line| serde_json::from_str(line).expect("an OTLP/JSON line")).collect();
    let mut paths = Vec::new();
    for (line, request) in requests.iter().enumerate() {
        for (resource, resource_spans) in request["resourceSpans"].as_array().expect("resourceSpans").iter().enumerate()
        {
            for (scope, scope_spans) in resource_spans["scopeSpans"].as_array().expect("scopeSpans").iter().enumerate()
            {
                let count = scope_spans["spans"].as_array().expect("spans").len();
                paths.extend((0..count).map(|span| (line, resource, scope, span)));
            }
        }
    }
    assert!(paths.len() >= 4, "the file holds at least four spans");
    fn span_at(requests: &mut [serde_json::Value], path: (usize, usize, usize, usize)) -> &mut serde_json::Value {
        let (line, resource, scope, span) = path;
        &mut requests[line]["resourceSpans"][resource]["scopeSpans"][scope]["spans"][span]
    }
    span_at(&mut requests, paths[2])["name"] = "tampered".into();
    span_at(&mut requests, paths[3])["attributes"][0]["value"] = serde_json::json!({"stringValue": "tampered"});
    let copy = span_at(&mut requests, paths[1]).clone();
    let (line, resource, scope, _) = paths[1];
    requests[line]["resourceSpans"][resource]["scopeSpans"][scope]["spans"].as_array_mut().expect("spans").push(copy);
    // Removed last: removal shifts the positions after it, which no other edit uses any more.
    let (line, resource, scope, span) = paths[0];
    requests[line]["resourceSpans"][resource]["scopeSpans"][scope]["spans"].as_array_mut().expect("spans").remove(span);
    let edited: String = requests.iter().map(|request| format!("{request}\n")).collect();
    std::fs::write(file, edited).expect("writing the tampered file");
}

#[test]
fn verify_reports_missing_duplicated_and_altered_spans() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("spans.jsonl");
    let (mut collector, grpc, _) = collector_to_file(dir.path(), &file);
    let finished = spangen(&format!(
        "--endpoint {grpc} --max --count 2000 --no-progress --verify {} --verify-timeout 30s",
        file.display()
    ));
    assert_clean_run(&finished, 2_000);
    assert!(finished.report.verify.as_ref().is_some_and(spangen::verify::VerifyReport::is_exact));
    collector.stop_cleanly();

    tamper(&file);
    let report = spangen::verify::verify(&file, &finished.plan, &finished.acknowledged).expect("the file reads");
    assert_eq!(
        (report.expected, report.found, report.missing, report.duplicated, report.altered, report.unknown),
        (2_000, 2_000, 1, 1, 2, 0),
        "{report:#?}"
    );
    assert!(!report.is_exact());
    let described = report.examples.join("\n");
    for finding in ["missing", "duplicated", "altered", "tampered"] {
        assert!(described.contains(finding), "no `{finding}` among the examples:\n{described}");
    }
}

/// TLS (trusting a CA from `--ca-file`) and gzip/zstd bodies, one protocol each, still deliver
/// exactly the acknowledged spans.
#[test]
fn tls_and_compressed_requests_deliver_exactly() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca = spanpipe_testkit::tls::TestCa::new(dir.path(), "root");
    let certificate = ca.issue("collector", &["localhost"]);
    let tls = format!(
        ", tls: {{cert_file: \"{}\", key_file: \"{}\"}}",
        certificate.cert_file.display(),
        certificate.key_file.display()
    );
    for (protocol, compression) in [("grpc", "gzip"), ("http-protobuf", "zstd"), ("http-json", "gzip")] {
        let file = dir.path().join(format!("{protocol}.jsonl"));
        let (mut collector, grpc, http) = collector_to_file_with(dir.path(), &file, &tls);
        let address = if protocol == "grpc" { grpc } else { http };
        let port = address.rsplit(':').next().expect("host:port");
        let finished = spangen(&format!(
            "--endpoint https://localhost:{port} --ca-file {} --protocol {protocol} --compression {compression} \
             --max --count 2000 --no-progress --verify {} --verify-timeout 30s",
            ca.ca_file().display(),
            file.display()
        ));
        assert_clean_run(&finished, 2_000);
        assert!(
            finished.report.verify.as_ref().is_some_and(spangen::verify::VerifyReport::is_exact),
            "{protocol} with {compression}:\n{}",
            finished.report.text()
        );
        collector.stop_cleanly();
    }
}

#[test]
fn rate_control_holds_the_asked_rate_when_the_collector_keeps_up() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let grpc = free_address();
    let components = format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc: {{endpoint: \"{grpc}\"}}\nexporters:\n  blackhole:\n"
    );
    let mut collector =
        Spanpipe::start(dir.path(), "collector", &components, "traces: {receivers: [otlp], exporters: [blackhole]}");
    let finished = spangen(&format!("--endpoint {grpc} --rate 50000 --duration 3s --in-flight 16 --no-progress"));
    let report = &finished.report;
    assert!(!report.has_request_errors(), "{}", report.text());
    // The generator's own schedule accounting: spans sent over the sending phase. Not a speed
    // claim about spanpipe, which only has to answer 500 requests per second.
    let achieved = report.offered_spans_per_second;
    assert!((47_500.0..=52_500.0).contains(&achieved), "asked 50000 spans/s, sent {achieved:.0}:\n{}", report.text());
    assert!((142_500..=157_500).contains(&report.counts.spans_sent), "{}", report.text());
    collector.stop_cleanly();
}
