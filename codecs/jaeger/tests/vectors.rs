//! Thrift written by Apache Thrift's Python library (`tests/vectors/generate.py`) decodes to the
//! OTLP written by hand in `tests/vectors/*.otlp.json`, compared as protobuf messages.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use spanpipe_codecs::{otlp_json, Codec};
use spanpipe_core::SpanBatch;
use spanpipe_jaeger::{JaegerAgentBinary, JaegerAgentCompact, JaegerThriftHttp};

fn vector(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn request(batch: &SpanBatch) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(batch.bytes().clone()).expect("a batch is valid OTLP")
}

fn expected(name: &str) -> ExportTraceServiceRequest {
    let mut json = vector(name);
    request(&otlp_json::decode(&mut json).expect("expected OTLP/JSON is valid"))
}

fn check(codec: &dyn Codec, input: &str, output: &str) {
    let batch = codec.decode(Bytes::from(vector(input))).unwrap_or_else(|e| panic!("{input}: {e}"));
    assert_eq!(request(&batch), expected(output), "{input} decodes to {output}");

    // And back: what the codec encodes decodes to the same spans.
    let encoded = codec.encode(&batch).unwrap_or_else(|e| panic!("{input}: {e}"));
    let again = codec.decode(encoded).unwrap_or_else(|e| panic!("{input} re-encoded: {e}"));
    assert_eq!(request(&again), request(&batch), "{input} survives encode + decode");
}

#[test]
fn compact_full_datagram_from_apache_thrift() {
    check(&JaegerAgentCompact, "agent_compact_full.bin", "agent_full.otlp.json");
}

#[test]
fn binary_full_datagram_from_apache_thrift() {
    check(&JaegerAgentBinary, "agent_binary_full.bin", "agent_full.otlp.json");
}

#[test]
fn compact_minimal_datagram_with_64_bit_ids_and_parent_as_reference() {
    check(&JaegerAgentCompact, "agent_compact_minimal.bin", "agent_minimal.otlp.json");
}

#[test]
fn binary_minimal_datagram_strict_header() {
    check(&JaegerAgentBinary, "agent_binary_minimal.bin", "agent_minimal.otlp.json");
}

#[test]
fn binary_minimal_datagram_non_strict_header_and_call_type() {
    check(&JaegerAgentBinary, "agent_binary_minimal_non_strict_call.bin", "agent_minimal.otlp.json");
}

#[test]
fn http_body_with_library_tags_http_status_and_dropped_counts() {
    check(&JaegerThriftHttp, "http_binary.bin", "http_binary.otlp.json");
}

/// Keys given twice in the process's tags, the span's tags and a log's fields: the last value of
/// each counts (the Collector reads them into maps), and the process's `service.name` tag counts
/// over its `serviceName`.
#[test]
fn compact_datagram_with_tag_keys_given_twice() {
    check(&JaegerAgentCompact, "agent_compact_repeated_keys.bin", "agent_repeated_keys.otlp.json");
}

#[test]
fn protocols_do_not_accept_each_other() {
    assert!(JaegerAgentBinary.decode(Bytes::from(vector("agent_compact_full.bin"))).is_err());
    assert!(JaegerAgentCompact.decode(Bytes::from(vector("agent_binary_full.bin"))).is_err());
    assert!(JaegerThriftHttp.decode(Bytes::from(vector("agent_binary_full.bin"))).is_err());
}
