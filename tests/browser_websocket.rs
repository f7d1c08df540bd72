//! A real browser against the WebSocket receiver: Debian's Chromium, headless, driven by
//! tests/native_clients/browser_websocket.js through playwright-core (both installed by
//! `tools/test`), runs the protocol the way a web page would, with the browser's own WebSocket.
//!
//! What it shows: the browser's masked frames, its text (OTLP/JSON) and binary (8-byte sequence
//! number and OTLP protobuf) messages are read and answered one acknowledgement each, with the
//! sequence number the page chose; a request whose JSON is cut short gets an error
//! acknowledgement and the connection stays open; the browser answers the server's pings by
//! itself, so a connection left idle for many ping intervals is not closed for a missing pong;
//! the page's normal close ends the session cleanly; every accepted span arrives once.

mod common;

use std::ffi::OsString;

use base64::Engine as _;
use bytes::Bytes;
use common::sdk::{require_chromium, run_node_client};
use common::{free_address, span_id_counts, wait_until, SpanIds, Spanpipe, DELIVERY_TIMEOUT};
use serde::Deserialize;
use spanpipe_core::SpanBatch;

/// What the page reports.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageReport {
    acks: Vec<serde_json::Value>,
    close_code: u16,
    close_was_clean: bool,
    closed_early: bool,
    user_agent: String,
}

/// How often the server pings: the page stays idle for [`IDLE_MS`], many times this.
const PING_INTERVAL_MS: u64 = 100;

/// How long the page keeps the connection idle between its requests.
const IDLE_MS: u64 = 1_500;

#[test]
fn chromium_sends_text_and_binary_messages_and_keeps_the_connection_alive() {
    require_chromium();

    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = dir.path().join("received.jsonl");
    let address = free_address();
    // A pong must come within 500 ms of each ping, ten times a second: an idle page that did not
    // answer would be closed with 1008 long before it sends again.
    let components = format!(
        "receivers:\n  websocket: {{endpoint: \"{address}\", ping_interval: {PING_INTERVAL_MS}ms, pong_timeout: 500ms}}\n\
         exporters:\n  file: {{path: \"{}\", flush_interval: 50ms}}\n",
        output.display()
    );
    let mut collector =
        Spanpipe::start(dir.path(), "websocket", &components, "traces: {receivers: [websocket], exporters: [file]}");

    // Two requests with ids the test chose: one sent as OTLP/JSON text (twice: seq 1 and 4), one
    // as protobuf in a binary message (seq 2).
    let mut ids = SpanIds::default();
    let (json_request, json_ids) = ids.request(1, 7);
    let (binary_request, binary_ids) = ids.request(1, 8);
    let batch = SpanBatch::decode(Bytes::from(json_request)).expect("the testkit's request is valid");
    let mut json = Vec::new();
    spanpipe_codecs::otlp_json::encode(&batch, &mut json);
    let json = String::from_utf8(json).expect("OTLP/JSON is UTF-8");

    let arguments: Vec<OsString> = vec![
        format!("ws://{address}/v1/traces/ws").into(),
        json.into(),
        base64::engine::general_purpose::STANDARD.encode(&binary_request).into(),
        IDLE_MS.to_string().into(),
    ];
    let report: PageReport = run_node_client("browser_websocket.js", &["playwright-core"], &arguments);
    let what = format!("{} over {IDLE_MS} ms idle", report.user_agent);

    let seqs: Vec<u64> = report.acks.iter().map(|ack| ack["seq"].as_u64().expect("every ack has its seq")).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "{what}: one acknowledgement a message, in order: {:?}", report.acks);
    for ack in [&report.acks[0], &report.acks[1], &report.acks[3]] {
        assert_eq!((ack["accepted"].as_u64(), ack["rejected"].as_u64()), (Some(1), Some(0)), "{what}: {ack}");
    }
    assert_eq!(report.acks[2]["error"]["code"], "INVALID_ARGUMENT", "{what}: {}", report.acks[2]);
    assert!(
        !report.closed_early && report.close_code == 1000 && report.close_was_clean,
        "{what}: the page closed normally, not the server (code {}, clean {}, early {})",
        report.close_code,
        report.close_was_clean,
        report.closed_early
    );

    // The JSON request was accepted twice (seq 1 and 4): its span arrives twice, as sent.
    let sent: Vec<u64> = json_ids.iter().chain(&binary_ids).copied().collect();
    wait_until("both requests' spans in the file", DELIVERY_TIMEOUT, || {
        span_id_counts(&output).values().sum::<usize>() >= 3
    });
    let counts = span_id_counts(&output);
    assert_eq!(counts.get(&json_ids[0]), Some(&2), "the text request, sent twice: {counts:?}");
    assert_eq!(counts.get(&binary_ids[0]), Some(&1), "the binary request: {counts:?}");
    assert_eq!(counts.len(), sent.len(), "nothing else arrived: {counts:?}");
    collector.stop_cleanly();
}
