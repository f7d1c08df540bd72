//! spanpipe → spanpipe over TLS, configured as a Collector user would: B's receiver has a
//! certificate (`tls: {cert_file, key_file}`), and A's exporter names only B's endpoint and the
//! CA that signed it — the `otlp` exporter uses TLS by default, `otlphttp` for an `https://`
//! URL. The load is OTLP/HTTP posted to A in plaintext with span ids the test chooses; B's file
//! must hold every span exactly once, and neither side may count a failed handshake.
//!
//! Also what an operator sees for a `tls` block that cannot work: `validate` refuses its keys by
//! path (pure: it reads no file), `run` refuses certificate files it cannot use before binding
//! anything, naming the key and the file.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    assert_delivered_exactly_once, free_address, holds_all, post_until_accepted, wait_until, SpanIds, Spanpipe,
    DELIVERY_TIMEOUT, SPANPIPE,
};
use spanpipe_testkit::tls::TestCa;

/// Spans per request and requests posted to A.
const SPANS_PER_REQUEST: usize = 25;
const REQUESTS: u64 = 12;

/// Sends load through A's `exporter` (its config section given) to B over TLS and checks B got
/// everything once.
fn delivers_every_span_over_tls(exporter: &str, exporter_config: impl FnOnce(&str, &str, &Path) -> String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca = TestCa::new(dir.path(), "root");
    let certificate = ca.issue("b", &["localhost", "127.0.0.1"]);
    let output = dir.path().join("b.jsonl");
    let (b_grpc, b_http) = (free_address(), free_address());
    let tls = format!(
        "tls: {{cert_file: \"{}\", key_file: \"{}\"}}",
        certificate.cert_file.display(),
        certificate.key_file.display()
    );
    let mut b = Spanpipe::start(
        dir.path(),
        "b",
        &format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc: {{endpoint: \"{b_grpc}\", {tls}}}\n      \
             http: {{endpoint: \"{b_http}\", {tls}}}\n\
             exporters:\n  file:\n    path: \"{}\"\n    flush_interval: 20ms\n",
            output.display()
        ),
        "traces: {receivers: [otlp], exporters: [file]}",
    );

    let load = free_address();
    let grpc_endpoint = format!("localhost:{}", b_grpc.port());
    let http_endpoint = format!("https://localhost:{}", b_http.port());
    let mut a = Spanpipe::start(
        dir.path(),
        "a",
        &format!(
            "receivers:\n  otlp:\n    protocols:\n      http: {{endpoint: \"{load}\"}}\n\
             processors:\n  batch:\n    send_batch_size: 100\n    timeout: 50ms\n{}",
            exporter_config(&grpc_endpoint, &http_endpoint, &ca.ca_file())
        ),
        &format!("traces: {{receivers: [otlp], processors: [batch], exporters: [{exporter}]}}"),
    );

    let mut ids = SpanIds::default();
    let mut sent = Vec::new();
    for request in 0..REQUESTS {
        let (body, request_ids) = ids.request(SPANS_PER_REQUEST, request);
        post_until_accepted(load, &body, Duration::from_secs(30));
        sent.extend(request_ids);
    }
    wait_until("B to hold every span sent", DELIVERY_TIMEOUT, || holds_all(&output, &sent));
    let exporter_label = [("exporter", exporter)];
    wait_until("A's and B's counters to be published", Duration::from_secs(10), || {
        a.metric("spanpipe_exporter_sent_spans_total", &exporter_label) == sent.len() as f64
            && b.metric("spanpipe_receiver_accepted_spans_total", &[]) == sent.len() as f64
    });
    assert_eq!(a.metric("spanpipe_exporter_tls_handshake_failures_total", &exporter_label), 0.0);
    assert_eq!(b.metric("spanpipe_receiver_tls_handshake_failures_total", &[]), 0.0);
    a.stop_cleanly();
    b.stop_cleanly();
    assert_delivered_exactly_once(&output, &sent);
}

#[test]
fn otlp_exporter_uses_tls_by_default_with_only_an_endpoint_and_a_ca_file() {
    delivers_every_span_over_tls("otlp", |grpc, _, ca| {
        format!("exporters:\n  otlp:\n    endpoint: \"{grpc}\"\n    tls:\n      ca_file: \"{}\"\n", ca.display())
    });
}

#[test]
fn otlphttp_exporter_uses_tls_for_an_https_endpoint() {
    delivers_every_span_over_tls("otlphttp", |_, http, ca| {
        format!("exporters:\n  otlphttp:\n    endpoint: \"{http}\"\n    tls:\n      ca_file: \"{}\"\n", ca.display())
    });
}

#[test]
fn validate_refuses_tls_keys_by_path_and_run_names_the_file_it_cannot_use() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca = TestCa::new(dir.path(), "root");
    let certificate = ca.issue("server", &["localhost"]);
    let config = |receiver_tls: &str, exporter_tls: &str| {
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc: {{endpoint: \"{}\", tls: {receiver_tls}}}\n\
             exporters:\n  otlp:\n    endpoint: \"localhost:4317\"\n    tls: {exporter_tls}\n\
             service:\n  telemetry:\n    metrics:\n      address: \"{}\"\n  pipelines:\n    \
             traces: {{receivers: [otlp], exporters: [otlp]}}\n",
            free_address(),
            free_address()
        )
    };
    let run = |command: &str, file: &str, text: String| {
        std::fs::write(dir.path().join(file), text).expect("writing the config");
        let output = Command::new(SPANPIPE)
            .args([command, "--config", file])
            .current_dir(dir.path())
            .output()
            .expect("spanpipe");
        assert_eq!(output.status.code(), Some(1), "`{command}` of {file} should fail");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };

    let malformed = config(
        &format!("{{cert_file: \"{}\", max_version: \"1.1\"}}", certificate.cert_file.display()),
        "{cert_pem: \"x\", key_file: \"k.pem\", curve_preferences: [P521]}",
    );
    let stderr = run("validate", "malformed.yaml", malformed);
    for path in [
        "receivers.otlp.protocols.grpc.tls.key_file",
        "receivers.otlp.protocols.grpc.tls.max_version",
        "exporters.otlp.tls.curve_preferences[0]",
    ] {
        assert!(stderr.lines().any(|line| line.trim_start().starts_with(path)), "`{path}` not reported:\n{stderr}");
    }

    let missing_certificate = config(
        &format!("{{cert_file: \"missing-cert.pem\", key_file: \"{}\"}}", certificate.key_file.display()),
        &format!("{{ca_file: \"{}\"}}", ca.ca_file().display()),
    );
    let stderr = run("run", "missing-certificate.yaml", missing_certificate);
    assert!(
        stderr.contains("receivers.otlp: protocols.grpc.tls.cert_file: cannot read `missing-cert.pem`"),
        "{stderr}"
    );
    let missing_ca = config(
        &format!(
            "{{cert_file: \"{}\", key_file: \"{}\"}}",
            certificate.cert_file.display(),
            certificate.key_file.display()
        ),
        "{ca_file: \"missing-ca.pem\"}",
    );
    let stderr = run("run", "missing-ca.yaml", missing_ca);
    assert!(stderr.contains("exporters.otlp: exporter `otlp`: tls.ca_file: cannot read `missing-ca.pem`"), "{stderr}");
}
