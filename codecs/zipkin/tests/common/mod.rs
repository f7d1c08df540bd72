//! Helpers shared by the integration tests: batches as prost messages, for comparisons with
//! readable diffs.

#![allow(dead_code)] // Each test file uses its own subset.

use std::collections::BTreeMap;

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

/// A span kind, as Zipkin v2 names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Client,
    Server,
    Producer,
    Consumer,
}

impl Kind {
    /// Every kind, in the order of `zipkin.proto3`'s `Kind` numbers (from 1).
    pub const ALL: [Self; 4] = [Self::Client, Self::Server, Self::Producer, Self::Consumer];

    /// The v2 JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Client => "CLIENT",
            Self::Server => "SERVER",
            Self::Producer => "PRODUCER",
            Self::Consumer => "CONSUMER",
        }
    }

    /// The `zipkin.proto3` enum number.
    pub fn number(self) -> u64 {
        Self::ALL.iter().position(|kind| *kind == self).expect("every kind is listed") as u64 + 1
    }
}

/// A kind or none.
pub fn kind() -> impl Strategy<Value = Option<Kind>> {
    proptest::option::of(proptest::sample::select(&Kind::ALL[..]))
}

/// A Zipkin v2 span on the test side (generated, then written as JSON or protobuf).
#[derive(Clone, Debug)]
pub struct ZipkinSpan {
    pub trace_id: u128,
    pub id: u64,
    pub parent_id: Option<u64>,
    pub kind: Option<Kind>,
    pub name: String,
    pub timestamp: Option<u64>,
    pub duration: u64,
    pub local: Option<Endpoint>,
    pub remote: Option<Endpoint>,
    pub annotations: Vec<(u64, String)>,
    pub tags: BTreeMap<String, String>,
    pub debug: bool,
    pub shared: bool,
}

/// Spans as a Zipkin v2 JSON document, absent fields left out.
pub fn v2_json(spans: &[ZipkinSpan]) -> Vec<u8> {
    let spans: Vec<Value> = spans
        .iter()
        .map(|span| {
            let mut object = serde_json::Map::new();
            object.insert("traceId".into(), json!(format!("{:032x}", span.trace_id)));
            object.insert("id".into(), json!(format!("{:016x}", span.id)));
            if let Some(parent) = span.parent_id {
                object.insert("parentId".into(), json!(format!("{parent:016x}")));
            }
            if let Some(kind) = span.kind {
                object.insert("kind".into(), json!(kind.name()));
            }
            object.insert("name".into(), json!(span.name));
            if let Some(timestamp) = span.timestamp {
                object.insert("timestamp".into(), json!(timestamp));
            }
            object.insert("duration".into(), json!(span.duration));
            if let Some(local) = &span.local {
                object.insert("localEndpoint".into(), endpoint_json(local));
            }
            if let Some(remote) = &span.remote {
                object.insert("remoteEndpoint".into(), endpoint_json(remote));
            }
            let annotations: Vec<Value> = span
                .annotations
                .iter()
                .map(|(timestamp, value)| json!({"timestamp": timestamp, "value": value}))
                .collect();
            object.insert("annotations".into(), Value::Array(annotations));
            object.insert("tags".into(), json!(span.tags));
            object.insert("debug".into(), json!(span.debug));
            object.insert("shared".into(), json!(span.shared));
            Value::Object(object)
        })
        .collect();
    serde_json::to_vec(&spans).expect("JSON values serialize")
}
