//! OTLP/gRPC and OTLP/HTTP answers, request by request, against a real receiver on loopback.

mod common;

use spanpipe_transports::grpc_status::{RetryInfo, RpcStatus as Status};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use spanpipe_codecs::Codec as _;

const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");

fn status_of(reply: &Reply) -> Status {
    Status::decode(reply.body.clone()).expect("body is a google.rpc.Status")
}

/// The gRPC response message, after its 5-byte prefix.
fn grpc_response(reply: &Reply) -> ExportTraceServiceResponse {
    assert_eq!(reply.body[0], 0, "response is not compressed");
    let length = u32::from_be_bytes(reply.body[1..5].try_into().unwrap()) as usize;
    assert_eq!(reply.body.len(), 5 + length);
    ExportTraceServiceResponse::decode(&reply.body[5..]).unwrap()
}

#[test]
fn http_protobuf_request_is_delivered_and_answered_in_protobuf() {
    let server = TestServer::start(SinkMode::Accept);
    let body = request(50);
    let reply = http1(server.http, "POST", "/v1/traces", &[PROTOBUF], body.clone());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(ExportTraceServiceResponse::decode(reply.body.clone()).unwrap(), ExportTraceServiceResponse::default());
    assert_eq!(server.received.lock().unwrap()[0].bytes(), &body, "the body became the batch unchanged");
    let (_, http) = server.finish();
    assert_eq!((http.requests_accepted, http.spans_accepted, http.bytes_accepted), (1, 50, body.len() as u64));
}

#[test]
fn http_json_request_is_answered_in_json() {
    let server = TestServer::start(SinkMode::Accept);
    let batch = spanpipe_core::SpanBatch::decode(request(20)).unwrap();
    let json = spanpipe_codecs::OtlpJson.encode(&batch).unwrap();
    let reply = http1(server.http, "POST", "/v1/traces", &[JSON], json);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.body, "{}");
    assert_eq!(server.spans_received(), 20);
}

#[test]
fn http_msgpack_requests_are_answered_in_msgpack() {
    const MSGPACK: (&str, &str) = ("content-type", "application/msgpack");
    let server = TestServer::start(SinkMode::RejectSpans(2));
    let batch = spanpipe_core::SpanBatch::decode(request(20)).unwrap();
    let body = spanpipe_msgpack::OtlpMsgpack.encode(&batch).unwrap();
    let reply = http1(server.http, "POST", "/v1/traces", &[MSGPACK], body.clone());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/msgpack"));
    let answer = spanpipe_msgpack::ExportResponse::decode(&reply.body).expect("an msgpack ExportTraceServiceResponse");
    assert_eq!(answer.partial_success.map(|partial| partial.rejected_spans), Some(2));
    assert_eq!(server.received.lock().unwrap()[0].bytes(), batch.bytes(), "msgpack decoded to the same batch");

    let garbage = http1(server.http, "POST", "/v1/traces", &[MSGPACK], Bytes::from_static(&[0x81, 0xa1]));
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.header("content-type"), Some("application/msgpack"));
    let status = spanpipe_msgpack::Status::decode(&garbage.body).expect("an msgpack google.rpc.Status");
    assert_eq!(status.code, 3, "INVALID_ARGUMENT: {}", status.message);

    let full = TestServer::start(SinkMode::Full);
    let refused = http1(full.http, "POST", "/v1/traces", &[MSGPACK], body);
    assert_eq!(refused.status, 429);
    let status = spanpipe_msgpack::Status::decode(&refused.body).expect("an msgpack google.rpc.Status");
    assert_eq!(status.code, 8, "RESOURCE_EXHAUSTED");
    let detail = &status.details[0];
    assert_eq!(detail.type_url, "type.googleapis.com/google.rpc.RetryInfo");
    let retry = RetryInfo::decode(detail.value.as_slice()).expect("the detail is a RetryInfo");
    assert!(retry.retry_delay.as_ref().is_some_and(|delay| delay.seconds > 0 || delay.nanos > 0), "{retry:?}");
}

#[test]
fn http_bodies_in_gzip_zstd_and_deflate_are_decompressed() {
    let server = TestServer::start(SinkMode::Accept);
    let body = request(30);
    let deflate = {
        use std::io::Write as _;
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&body).unwrap();
        Bytes::from(encoder.finish().unwrap())
    };
    for (encoding, compressed) in [("gzip", gzip(&body)), ("zstd", zstd(&body)), ("deflate", deflate)] {
        let reply = http1(server.http, "POST", "/v1/traces", &[PROTOBUF, ("content-encoding", encoding)], compressed);
        assert_eq!(reply.status, 200, "{encoding}");
    }
    assert_eq!(server.spans_received(), 90);
    assert!(server.received.lock().unwrap().iter().all(|batch| batch.bytes() == &body));
}

#[test]
fn http_keepalive_connection_serves_requests_one_after_another() {
    let server = TestServer::start(SinkMode::Accept);
    let requests = (0..5).map(|_| ("POST", "/v1/traces", vec![PROTOBUF], request(10))).collect();
    let replies = http1_keepalive(server.http, requests);
    assert!(replies.iter().all(|reply| reply.status == 200));
    let (_, http) = server.finish();
    assert_eq!(http.connections_opened, 1);
    assert_eq!(http.requests_accepted, 5);
}

#[test]
fn h2c_with_prior_knowledge_is_served_on_the_http_port() {
    let server = TestServer::start(SinkMode::Accept);
    let requests = (0..4).map(|_| ("POST", "/v1/traces", vec![PROTOBUF], request(25))).collect();
    let replies = http2(server.http, requests);
    assert!(replies
        .iter()
        .all(|reply| reply.status == 200 && reply.header("content-type") == Some("application/x-protobuf")));
    assert_eq!(server.spans_received(), 100);
}

#[test]
fn empty_requests_succeed_without_reaching_the_pipeline() {
    let server = TestServer::start(SinkMode::Accept);
    assert_eq!(http1(server.http, "POST", "/v1/traces", &[PROTOBUF], Bytes::new()).status, 200);
    assert_eq!(http1(server.http, "POST", "/v1/traces", &[JSON], Bytes::from_static(b"{}")).status, 200);
    let reply = grpc(server.grpc, EXPORT_PATH, &[], grpc_frame(false, b""));
    assert_eq!(reply.grpc_status(), Some(0));
    assert_eq!(grpc_response(&reply), ExportTraceServiceResponse::default());
    assert_eq!(server.spans_received(), 0);
    let (grpc_stats, http_stats) = server.finish();
    assert_eq!((grpc_stats.requests_empty, http_stats.requests_empty), (1, 2));
}

#[test]
fn grpc_export_accepts_identity_gzip_and_zstd_messages() {
    let server = TestServer::start(SinkMode::Accept);
    let message = request(40);
    let calls = [
        (vec![], grpc_frame(false, &message)),
        (vec![("grpc-encoding", "gzip")], grpc_frame(true, &gzip(&message))),
        (vec![("grpc-encoding", "zstd")], grpc_frame(true, &zstd(&message))),
        // The flag decides: an uncompressed message is fine whatever the header says.
        (vec![("grpc-encoding", "gzip")], grpc_frame(false, &message)),
    ];
    for (headers, framed) in calls {
        let reply = grpc(server.grpc, EXPORT_PATH, &headers, framed);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/grpc"));
        assert_eq!(reply.grpc_status(), Some(0), "{headers:?}: {reply:?}");
        assert_eq!(grpc_response(&reply), ExportTraceServiceResponse::default());
    }
    assert_eq!(server.spans_received(), 160);
    assert!(server.received.lock().unwrap().iter().all(|batch| batch.bytes() == &message));
}

#[test]
fn rejected_spans_are_reported_as_partial_success() {
    let server = TestServer::start(SinkMode::RejectSpans(3));
    let reply = grpc(server.grpc, EXPORT_PATH, &[], grpc_frame(false, &request(10)));
    let partial = grpc_response(&reply).partial_success.expect("partial_success is set");
    assert_eq!((partial.rejected_spans, partial.error_message.as_str()), (3, "spans refused by a test processor"));

    let reply = http1(server.http, "POST", "/v1/traces", &[PROTOBUF], request(10));
    let partial = ExportTraceServiceResponse::decode(reply.body.clone()).unwrap().partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 3);

    let batch = spanpipe_core::SpanBatch::decode(request(10)).unwrap();
    let reply = http1(server.http, "POST", "/v1/traces", &[JSON], spanpipe_codecs::OtlpJson.encode(&batch).unwrap());
    let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(json["partialSuccess"]["rejectedSpans"], "3");
    let (grpc_stats, _) = server.finish();
    assert_eq!((grpc_stats.spans_accepted, grpc_stats.spans_rejected), (7, 3));
}

#[test]
fn malformed_and_truncated_protobuf_is_answered_400_and_invalid_argument() {
    let server = TestServer::start(SinkMode::Accept);
    let valid = request(5);
    let truncated = valid.slice(..valid.len() - 7);
    for body in [Bytes::from_static(b"\x0a\xff\xff\xff\xff\x0f garbage"), truncated.clone()] {
        let reply = http1(server.http, "POST", "/v1/traces", &[PROTOBUF], body);
        assert_eq!(reply.status, 400);
        assert_eq!(reply.header("content-type"), Some("application/x-protobuf"));
        let status = status_of(&reply);
        assert!(status.message.contains("invalid OTLP protobuf payload"), "{}", status.message);
    }
    let reply = http1(server.http, "POST", "/v1/traces", &[JSON], Bytes::from_static(b"{\"resourceSpans\": [}"));
    assert_eq!(reply.status, 400);
    let status: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert!(status["message"].as_str().unwrap().contains("OTLP/JSON"), "{status}");

    let reply = grpc(server.grpc, EXPORT_PATH, &[], grpc_frame(false, &truncated));
    assert_eq!(reply.grpc_status(), Some(3));
    assert!(reply.header("grpc-message").unwrap().contains("invalid OTLP protobuf payload"));

    // The length prefix promises more than the stream carries.
    let mut short = grpc_frame(false, &valid).to_vec();
    short.truncate(short.len() - 10);
    let reply = grpc(server.grpc, EXPORT_PATH, &[], Bytes::from(short));
    assert_eq!(reply.grpc_status(), Some(3));
    assert!(reply.header("grpc-message").unwrap().contains("truncated"));

    // Two messages in a unary call.
    let mut two = grpc_frame(false, &valid).to_vec();
    two.extend_from_slice(&grpc_frame(false, &valid));
    assert_eq!(grpc(server.grpc, EXPORT_PATH, &[], Bytes::from(two)).grpc_status(), Some(3));
    assert_eq!(server.spans_received(), 0);
    let (grpc_stats, http_stats) = server.finish();
    assert_eq!((grpc_stats.requests_malformed, http_stats.requests_malformed), (3, 3));
}

#[test]
fn a_body_that_claims_gzip_but_is_not_is_malformed() {
    let server = TestServer::start(SinkMode::Accept);
    let plain = request(5);
    let reply = http1(server.http, "POST", "/v1/traces", &[PROTOBUF, ("content-encoding", "gzip")], plain.clone());
    assert_eq!(reply.status, 400);
    assert!(status_of(&reply).message.contains("not valid gzip data"), "{:?}", status_of(&reply));
    let reply = grpc(server.grpc, EXPORT_PATH, &[("grpc-encoding", "gzip")], grpc_frame(true, &plain));
    assert_eq!(reply.grpc_status(), Some(3));
    // Compressed flag with identity encoding is a protocol error too.
    let reply = grpc(server.grpc, EXPORT_PATH, &[], grpc_frame(true, &gzip(&plain)));
    assert_eq!(reply.grpc_status(), Some(3));
}

#[test]
fn oversized_requests_are_answered_413_and_resource_exhausted() {
    let server = TestServer::start(SinkMode::Accept);
    let over = Bytes::from(vec![0u8; (1 << 20) + 1]);
    // Declared too large: refused before the body is read, and the connection is closed.
    let reply = http1(server.http, "POST", "/v1/traces", &[PROTOBUF], over.clone());
    assert_eq!(reply.status, 413);
    assert_eq!(reply.header("connection"), Some("close"));
    // Chunked, so only reading finds out.
    let mut chunked = b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for chunk in over.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_exchange(server.http, &chunked, Duration::from_secs(5));
    assert!(answer.starts_with(b"HTTP/1.1 413"), "{}", String::from_utf8_lossy(&answer[..answer.len().min(200)]));

    let reply = grpc(server.grpc, EXPORT_PATH, &[], grpc_frame(false, &over));
    assert_eq!(reply.grpc_status(), Some(8));
    assert!(reply.header("grpc-message").unwrap().contains("larger than max"));
    assert!(reply.header("grpc-status-details-bin").is_none(), "too large is not retryable");
    let (grpc_stats, http_stats) = server.finish();
    assert_eq!((grpc_stats.requests_too_large, http_stats.requests_too_large), (1, 2));
}

#[test]
fn zip_bombs_stop_at_the_size_limit() {
    let server = TestServer::start(SinkMode::Accept);
    // 64 MiB of zeros in a few tens of KB, against a 1 MiB limit.
    let zeros = vec![0u8; 64 << 20];
    for (encoding, bomb) in [("gzip", gzip(&zeros)), ("zstd", zstd(&zeros))] {
        assert!(bomb.len() < 1 << 20);
        let reply = http1(server.http, "POST", "/v1/traces", &[PROTOBUF, ("content-encoding", encoding)], bomb.clone());
        assert_eq!(reply.status, 413, "{encoding}");
        let reply = grpc(server.grpc, EXPORT_PATH, &[("grpc-encoding", encoding)], grpc_frame(true, &bomb));
        assert_eq!(reply.grpc_status(), Some(8), "{encoding}");
    }
}

#[test]
fn unsupported_content_types_and_encodings_are_refused() {
    let server = TestServer::start(SinkMode::Accept);
    let reply = http1(server.http, "POST", "/v1/traces", &[("content-type", "text/plain")], request(1));
    assert_eq!(reply.status, 415);
    assert!(String::from_utf8_lossy(&reply.body).contains("application/x-protobuf"), "lists what is supported");
    let reply = http1(server.http, "POST", "/v1/traces", &[PROTOBUF, ("content-encoding", "br")], request(1));
    assert_eq!(reply.status, 415);
    assert!(status_of(&reply).message.contains("unsupported Content-Encoding `br`"));
    let reply = grpc(server.grpc, EXPORT_PATH, &[("grpc-encoding", "snappy")], grpc_frame(true, &request(1)));
    assert_eq!(reply.grpc_status(), Some(12));
    assert!(reply.header("grpc-accept-encoding").unwrap().contains("gzip"));
    let replies = http2(
        server.grpc,
        vec![("POST", EXPORT_PATH, vec![("content-type", "application/json")], grpc_frame(false, &request(1)))],
    );
    assert_eq!(replies[0].status, 415);
    let (grpc_stats, http_stats) = server.finish();
    assert_eq!((grpc_stats.requests_unsupported_media_type, http_stats.requests_unsupported_media_type), (2, 2));
}

#[test]
fn wrong_paths_and_methods_are_refused() {
    let server = TestServer::start(SinkMode::Accept);
    assert_eq!(http1(server.http, "POST", "/v1/metrics", &[PROTOBUF], request(1)).status, 404);
    let reply = http1(server.http, "GET", "/v1/traces", &[], Bytes::new());
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply =
        grpc(server.grpc, "/opentelemetry.proto.collector.trace.v1.TraceService/Nope", &[], grpc_frame(false, b""));
    assert_eq!(reply.grpc_status(), Some(12));
    let reply = grpc(
        server.grpc,
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        &[],
        grpc_frame(false, b""),
    );
    assert_eq!(reply.grpc_status(), Some(12));
    assert!(reply.header("grpc-message").unwrap().contains("unknown service"));
    let (grpc_stats, http_stats) = server.finish();
    assert_eq!(
        (grpc_stats.requests_not_found, http_stats.requests_not_found, http_stats.requests_method_not_allowed),
        (2, 1, 1)
    );
}

#[test]
fn traces_url_path_is_configurable() {
    let mut config = test_config();
    config.protocols.http.as_mut().unwrap().traces_url_path = "custom/traces".into();
    let server = TestServer::start_with(config, SinkMode::Accept);
    assert_eq!(http1(server.http, "POST", "/custom/traces", &[PROTOBUF], request(2)).status, 200);
    assert_eq!(http1(server.http, "POST", "/v1/traces", &[PROTOBUF], request(2)).status, 404);
}

#[test]
fn a_full_pipeline_answers_429_and_resource_exhausted_with_retry_info() {
    let server = TestServer::start(SinkMode::Full);
    let reply = http1(server.http, "POST", "/v1/traces", &[PROTOBUF], request(10));
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("3"), "2.5 s rounds up");
    let status = status_of(&reply);
    assert_eq!((status.code, status.message.as_str()), (8, "memory limit reached"));

    let reply = http1(server.http, "POST", "/v1/traces", &[JSON], Bytes::from_static(b"{\"resourceSpans\":[]}"));
    assert_eq!(reply.status, 429);
    let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(json["details"][0]["retryDelay"], "2.500000000s");

    let reply = grpc(server.grpc, EXPORT_PATH, &[], grpc_frame(false, &request(10)));
    assert_eq!(reply.grpc_status(), Some(8));
    let details = reply.header("grpc-status-details-bin").expect("status details");
    let details = base64::engine::general_purpose::STANDARD_NO_PAD.decode(details).unwrap();
    let status = Status::decode(&details[..]).unwrap();
    assert_eq!(status.code, 8);
    assert_eq!(status.details[0].type_url, "type.googleapis.com/google.rpc.RetryInfo");
    let delay = RetryInfo::decode(&status.details[0].value[..]).unwrap().retry_delay.unwrap();
    assert_eq!((delay.seconds, delay.nanos), (2, 500_000_000));
    assert_eq!(server.spans_received(), 0);
    let (grpc_stats, http_stats) = server.finish();
    assert_eq!((grpc_stats.requests_refused, http_stats.requests_refused), (1, 2));
}

#[test]
fn response_headers_are_added_to_every_answer_without_replacing_the_servers_own() {
    let mut config = test_config();
    let http = config.protocols.http.as_mut().expect("test_config serves HTTP");
    http.response_headers = [("Strict-Transport-Security", "max-age=63072000"), ("Content-Type", "text/html")]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let server = TestServer::start_with(config, SinkMode::Accept);
    let replies = [
        http1(server.http, "POST", "/v1/traces", &[PROTOBUF], request(2)),
        http1(server.http, "POST", "/v1/traces", &[("content-type", "text/plain")], request(1)),
        http1(server.http, "GET", "/v1/traces", &[], Bytes::new()),
        http1(server.http, "POST", "/v1/logs", &[PROTOBUF], request(1)),
    ];
    let statuses: Vec<u16> = replies.iter().map(|reply| reply.status.as_u16()).collect();
    assert_eq!(statuses, [200, 415, 405, 404]);
    for reply in &replies {
        assert_eq!(reply.header("strict-transport-security"), Some("max-age=63072000"), "{reply:?}");
        assert_ne!(reply.header("content-type"), Some("text/html"), "the server's own is kept: {reply:?}");
    }
    assert_eq!(replies[0].header("content-type"), Some("application/x-protobuf"));
    // Over h2c too.
    let h2 = http2(server.http, vec![("POST", "/v1/traces", vec![PROTOBUF], request(1))]).pop().unwrap();
    assert_eq!((h2.status.as_u16(), h2.header("strict-transport-security")), (200, Some("max-age=63072000")));
    assert_eq!(server.spans_received(), 3);
}
