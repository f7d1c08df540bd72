//! OpenTelemetry's browser SDK sending spans to the OTLP/HTTP receiver from another origin, in a
//! real browser: Debian's Chromium, headless, driven by tests/native_clients/browser_cors.js
//! through playwright-core, with the web tracer and the OTLP/HTTP exporter from npm bundled by
//! esbuild (all installed by `tools/test`).
//!
//! What it shows: with `cors.allowed_origins` naming the page's origin, the browser's preflight
//! (for `content-type` and a configured `x-tenant` header, or for `content-type` alone) is
//! answered so that the browser sends the spans and lets the exporter read the answer; from an
//! origin the section does not allow, the browser refuses to send them, the exporter reports a
//! failure and nothing arrives. The `websocket` receiver's `allowed_origins` likewise lets the
//! allowed pages' WebSockets open and answers the other page's upgrade 403.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;

use common::sdk::{require_chromium, run_node_client};
use common::{free_address, span_id_counts, wait_until, Spanpipe, DELIVERY_TIMEOUT};
use serde::Deserialize;

/// What the script reports.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowserReport {
    pages: BTreeMap<String, PageReport>,
    user_agent: String,
}

/// One page's export: where it ran, the exporter's result, the spans it recorded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageReport {
    origin: String,
    /// The exporter's result code: 0 success, 1 failure.
    code: u8,
    error: Option<String>,
    span_ids: Vec<String>,
    /// Whether the page's WebSocket to the `websocket` receiver opened.
    websocket_opened: bool,
}

impl PageReport {
    fn ids(&self) -> Vec<u64> {
        self.span_ids.iter().map(|id| u64::from_str_radix(id, 16).expect("span ids are hex")).collect()
    }
}

#[test]
fn the_browser_sdk_exports_from_an_allowed_origin_and_is_refused_from_another() {
    require_chromium();

    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = dir.path().join("received.jsonl");
    let address = free_address();
    let websocket = free_address();
    // The pages are served from 127.0.0.1 on a port the script picks; `localhost` is another
    // origin, which the section does not allow.
    let components = format!(
        "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: \"{address}\"\n        cors:\n          \
         allowed_origins: [\"http://127.0.0.1:*\"]\n          allowed_headers: [x-tenant]\n          max_age: 60\n  \
         websocket: {{endpoint: \"{websocket}\", allowed_origins: [\"http://127.0.0.1:*\"]}}\n\
         exporters:\n  file: {{path: \"{}\", flush_interval: 50ms}}\n",
        output.display()
    );
    let mut collector =
        Spanpipe::start(dir.path(), "cors", &components, "traces: {receivers: [otlp, websocket], exporters: [file]}");

    let arguments: Vec<OsString> =
        vec![format!("http://{address}/v1/traces").into(), format!("ws://{websocket}/v1/traces/ws").into()];
    let packages =
        ["playwright-core", "esbuild", "@opentelemetry/sdk-trace-web", "@opentelemetry/exporter-trace-otlp-http"];
    let report: BrowserReport = run_node_client("browser_cors.js", &packages, &arguments);
    let page = |name: &str| report.pages.get(name).unwrap_or_else(|| panic!("no page {name}: {report:?}"));
    let (with_header, plain, refused) = (page("allowed_with_header"), page("allowed_plain"), page("refused_origin"));
    let what = &report.user_agent;
    for allowed in [with_header, plain] {
        assert_eq!((allowed.code, &allowed.error), (0, &None), "{what}: from {}: {allowed:?}", allowed.origin);
        assert_eq!(allowed.span_ids.len(), 2, "{allowed:?}");
        assert!(allowed.websocket_opened, "{what}: a WebSocket from {}: {allowed:?}", allowed.origin);
    }
    assert!(!refused.websocket_opened, "{what}: a WebSocket from {} is refused: {refused:?}", refused.origin);
    assert!(refused.origin.starts_with("http://localhost:"), "{refused:?}");
    assert_eq!(refused.code, 1, "{what}: the browser refuses to send from {}: {refused:?}", refused.origin);

    let sent: Vec<u64> = with_header.ids().into_iter().chain(plain.ids()).collect();
    wait_until("the allowed pages' spans in the file", DELIVERY_TIMEOUT, || {
        span_id_counts(&output).values().sum::<usize>() >= sent.len()
    });
    let counts = span_id_counts(&output);
    for id in &sent {
        assert_eq!(counts.get(id), Some(&1), "span {id:016x} of an allowed page, once: {counts:?}");
    }
    for id in refused.ids() {
        assert!(!counts.contains_key(&id), "span {id:016x} of the refused page arrived: {counts:?}");
    }
    assert_eq!(counts.len(), sent.len(), "nothing else arrived: {counts:?}");
    collector.stop_cleanly();
}
