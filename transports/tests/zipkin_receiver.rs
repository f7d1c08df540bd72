//! The Zipkin listener on a real loopback socket: what reaches the pipeline, what each bad
//! request is answered, and that the listener keeps serving afterwards. The Zipkin codecs are
//! not this crate's: OTLP/JSON and OTLP protobuf stand in for them (this tests the transport).

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use spanpipe_codecs::{Codec, OtlpJson, OtlpProto};
use spanpipe_config::GoDuration;
use spanpipe_transports::otlp::HttpServerConfig;
use spanpipe_transports::zipkin::{ZipkinCodecs, ZipkinReceiver, ZipkinReceiverConfig};
use spanpipe_transports::Protocol;

const JSON: (&str, &str) = ("content-type", "application/json");
const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");

fn config() -> ZipkinReceiverConfig {
    let mut http =
        HttpServerConfig { endpoint: "127.0.0.1:0".into(), max_request_body_size: 64 * 1024, ..Default::default() };
    http.read_header_timeout = GoDuration::from_millis(1000);
    http.read_timeout = GoDuration::from_millis(1500);
    ZipkinReceiverConfig { http, parse_string_tags: false }
}

fn start_with(config: ZipkinReceiverConfig, mode: SinkMode) -> TestReceiver {
    let codecs = ZipkinCodecs {
        v2_json: Arc::new(OtlpJson) as Arc<dyn Codec>,
        v2_proto: Arc::new(OtlpProto),
        v1_json: Arc::new(OtlpJson),
    };
    TestReceiver::start(Box::new(move |sink| ZipkinReceiver::bind(&config, sink, &codecs)), mode)
}

fn start(mode: SinkMode) -> TestReceiver {
    start_with(config(), mode)
}

#[test]
fn v2_json_v2_protobuf_and_v1_json_reach_the_sink_and_are_answered_202_with_an_empty_body() {
    let server = start(SinkMode::Accept);
    let address = server.address(Protocol::Zipkin);
    let replies = [
        http1(address, "POST", "/api/v2/spans", &[JSON], json_request(3)),
        http1(
            address,
            "POST",
            "/api/v2/spans",
            &[("content-type", "application/json; charset=utf-8")],
            json_request(3),
        ),
        http1(address, "POST", "/api/v2/spans", &[PROTOBUF], request(3)),
        http1(address, "POST", "/api/v2/spans", &[("content-type", "application/protobuf")], request(3)),
        http1(address, "POST", "/api/v1/spans", &[JSON], json_request(3)),
    ];
    for reply in &replies {
        assert_eq!(reply.status, 202, "{reply:?}");
        assert!(reply.body.is_empty(), "{reply:?}");
    }
    assert_eq!(server.spans_received(), 15);
    let stats = server.finish_one(Protocol::Zipkin);
    assert_eq!((stats.requests_accepted, stats.spans_accepted), (5, 15));
}

#[test]
fn a_request_without_content_type_is_read_as_json_as_zipkins_server_does() {
    let server = start(SinkMode::Accept);
    let address = server.address(Protocol::Zipkin);
    assert_eq!(http1(address, "POST", "/api/v2/spans", &[], json_request(2)).status, 202);
    assert_eq!(http1(address, "POST", "/api/v1/spans", &[], json_request(2)).status, 202);
    assert_eq!(server.spans_received(), 4);
    let not_json = http1(address, "POST", "/api/v2/spans", &[], request(2));
    assert_eq!(not_json.status, 400, "protobuf without a content type is read as JSON and fails: {not_json:?}");
}

#[test]
fn gzip_bodies_are_decompressed() {
    let server = start(SinkMode::Accept);
    let address = server.address(Protocol::Zipkin);
    let reply = http1(address, "POST", "/api/v2/spans", &[JSON, ("content-encoding", "gzip")], gzip(&json_request(4)));
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(server.spans_received(), 4);
    let corrupt = http1(address, "POST", "/api/v2/spans", &[JSON, ("content-encoding", "gzip")], json_request(1));
    assert_eq!(corrupt.status, 400, "a body that is not gzip: {corrupt:?}");
}

#[test]
fn malformed_and_truncated_bodies_are_answered_400_in_plain_text_and_the_listener_keeps_serving() {
    let server = start(SinkMode::Accept);
    let address = server.address(Protocol::Zipkin);
    let whole = json_request(3);
    let truncated_json = whole.slice(..whole.len() / 2);
    let whole_proto = request(3);
    let truncated_proto = whole_proto.slice(..whole_proto.len() - 7);
    for (content_type, body) in
        [(JSON, Bytes::from_static(b"{\"not\": zipkin")), (JSON, truncated_json), (PROTOBUF, truncated_proto)]
    {
        let reply = http1(address, "POST", "/api/v2/spans", &[content_type], body);
        assert_eq!(reply.status, 400, "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(!reply.body.is_empty(), "the 400 says what is wrong");
    }
    assert_eq!(http1(address, "POST", "/api/v2/spans", &[JSON], json_request(1)).status, 202);
    let stats = server.finish_one(Protocol::Zipkin);
    assert_eq!((stats.requests_malformed, stats.requests_accepted), (3, 1));
}

#[test]
fn wrong_content_type_path_and_method_get_415_404_and_405() {
    let server = start(SinkMode::Accept);
    let address = server.address(Protocol::Zipkin);
    let text = http1(address, "POST", "/api/v2/spans", &[("content-type", "text/plain")], json_request(1));
    assert_eq!(text.status, 415);
    let message = String::from_utf8_lossy(&text.body).into_owned();
    assert!(message.contains("application/json") && message.contains("application/x-protobuf"), "{message}");
    let thrift = http1(address, "POST", "/api/v1/spans", &[("content-type", "application/x-thrift")], request(1));
    assert_eq!(thrift.status, 415);
    assert!(String::from_utf8_lossy(&thrift.body).contains("v1 Thrift is not supported"), "{thrift:?}");
    let missing = http1(address, "POST", "/api/v3/spans", &[JSON], json_request(1));
    assert_eq!(missing.status, 404);
    assert!(String::from_utf8_lossy(&missing.body).contains("/api/v2/spans"), "{missing:?}");
    let get = http1(address, "GET", "/api/v2/spans", &[], Bytes::new());
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST"));
    assert_eq!(http1(address, "POST", "/api/v2/spans", &[JSON], json_request(1)).status, 202);
    let stats = server.finish_one(Protocol::Zipkin);
    assert_eq!(stats.requests_unsupported_media_type, 2);
    assert_eq!((stats.requests_not_found, stats.requests_method_not_allowed), (1, 1));
}

#[test]
fn bodies_over_the_limit_as_sent_or_decompressed_are_answered_413() {
    let mut small = config();
    small.http.max_request_body_size = 4096;
    let server = start_with(small, SinkMode::Accept);
    let address = server.address(Protocol::Zipkin);
    let large = json_request(40);
    assert!(large.len() > 4096);
    assert_eq!(http1(address, "POST", "/api/v2/spans", &[JSON], large.clone()).status, 413);
    // JSON whitespace: 100 KB that gzip makes a few hundred bytes.
    let compressed = gzip(&vec![b' '; 100_000]);
    assert!(compressed.len() < 4096, "the compressed body fits, the decompressed one does not");
    let reply = http1(address, "POST", "/api/v2/spans", &[JSON, ("content-encoding", "gzip")], compressed);
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_eq!(http1(address, "POST", "/api/v2/spans", &[JSON], json_request(1)).status, 202);
    assert_eq!(server.finish_one(Protocol::Zipkin).requests_too_large, 2);
}

#[test]
fn a_full_or_unavailable_pipeline_is_answered_429_or_503_with_retry_after() {
    for (mode, status) in [(SinkMode::Full, 429), (SinkMode::Unavailable, 503)] {
        let server = start(mode);
        let reply = http1(server.address(Protocol::Zipkin), "POST", "/api/v2/spans", &[JSON], json_request(2));
        assert_eq!(reply.status, status);
        assert_eq!(reply.header("retry-after"), Some("3"), "2.5 s rounded up");
        assert_eq!(reply.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(server.spans_received(), 0);
        assert_eq!(server.finish_one(Protocol::Zipkin).requests_refused, 1);
    }
}

#[test]
fn a_body_trickled_past_the_read_timeout_is_answered_408_while_others_are_served() {
    let server = start(SinkMode::Accept);
    let address = server.address(Protocol::Zipkin);
    let slow = std::thread::spawn(move || {
        let head = b"POST /api/v2/spans HTTP/1.1\r\nhost: slow\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";
        trickle_bytes(address, head, &[b' '; 100], Duration::from_millis(200))
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(http1(address, "POST", "/api/v2/spans", &[JSON], json_request(1)).status, 202);
    let answer = slow.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(server.finish_one(Protocol::Zipkin).body_timeouts, 1);
}

#[test]
fn spans_the_pipeline_rejects_are_counted_and_the_client_still_gets_202() {
    let server = start(SinkMode::RejectSpans(2));
    let reply = http1(server.address(Protocol::Zipkin), "POST", "/api/v2/spans", &[JSON], json_request(5));
    assert_eq!(reply.status, 202, "Zipkin has no partial success: {reply:?}");
    let stats = server.finish_one(Protocol::Zipkin);
    assert_eq!((stats.spans_accepted, stats.spans_rejected), (3, 2));
}
