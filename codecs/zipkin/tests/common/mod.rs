//! Helpers shared by the integration tests: batches as prost messages, for comparisons with
//! readable diffs.

#![allow(dead_code)] // Each test file uses its own subset.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use proptest::prelude::*;
use prost::Message;
use serde_json::{json, Value};
use spanpipe_core::SpanBatch;

/// A batch as the reference decoder reads it.
pub fn request(batch: &SpanBatch) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(batch.bytes().clone()).expect("prost reads every batch")
}

/// An OTLP/JSON document as a prost request, through spanpipe's OTLP/JSON codec.
pub fn request_from_otlp_json(json: &str) -> ExportTraceServiceRequest {
    let batch = spanpipe_codecs::otlp_json::decode(&mut json.as_bytes().to_vec()).expect("valid OTLP/JSON");
    request(&batch)
}

/// A Zipkin endpoint on the test side (generated, then written as JSON or protobuf).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Endpoint {
    pub service: String,
    pub ipv4: Option<[u8; 4]>,
    pub ipv6: Option<[u8; 16]>,
    pub port: u16,
}

/// Any endpoint: a service name or none, an IPv4 or IPv6 address or none, any port.
pub fn endpoint() -> impl Strategy<Value = Endpoint> {
    (
        "[a-z-]{0,8}",
        prop_oneof![
            Just((None, None)),
            any::<[u8; 4]>().prop_map(|v4| (Some(v4), None)),
            any::<[u8; 16]>().prop_map(|v6| (None, Some(v6)))
        ],
        any::<u16>(),
    )
        .prop_map(|(service, (ipv4, ipv6), port)| Endpoint { service, ipv4, ipv6, port })
}

/// An endpoint as Zipkin JSON (v1 and v2 share the form), absent fields left out.
pub fn endpoint_json(endpoint: &Endpoint) -> Value {
    let mut object = serde_json::Map::new();
    if !endpoint.service.is_empty() {
        object.insert("serviceName".into(), json!(endpoint.service));
    }
    if let Some(v4) = endpoint.ipv4 {
        object.insert("ipv4".into(), json!(std::net::Ipv4Addr::from(v4).to_string()));
    }
    if let Some(v6) = endpoint.ipv6 {
        object.insert("ipv6".into(), json!(std::net::Ipv6Addr::from(v6).to_string()));
    }
    if endpoint.port != 0 {
        object.insert("port".into(), json!(endpoint.port));
    }
    Value::Object(object)
}
