//! Helpers shared by the integration tests: building batches from prost messages and reading
//! batches back with prost, so every assertion is made against an independent decoder.

#![allow(dead_code)]

use std::time::Instant;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use spanpipe_core::SpanBatch;
use spanpipe_processors::{Output, Processor, Route};

/// Indexes a prost request (which must hold spans).
pub fn batch_of(request: &ExportTraceServiceRequest) -> SpanBatch {
    SpanBatch::decode(Bytes::from(request.encode_to_vec())).expect("prost encodes valid requests")
}

/// Decodes a batch with prost.
pub fn decode(batch: &SpanBatch) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(batch.bytes().clone()).expect("batches are valid protobuf")
}

/// Every span of a request, in order.
pub fn spans(request: &ExportTraceServiceRequest) -> Vec<Span> {
    request
        .resource_spans
        .iter()
        .flat_map(|resource| resource.scope_spans.iter().flat_map(|scope| scope.spans.iter().cloned()))
        .collect()
}

/// A span with where it sits: its resource, the resource's schema URL, its scope and the scope's
/// schema URL.
pub type SpanInContext = (Option<Resource>, String, Option<InstrumentationScope>, String, Span);

/// Every span of a request with its resource and scope (without their spans).
pub fn spans_in_context(request: &ExportTraceServiceRequest) -> Vec<SpanInContext> {
    let mut out = Vec::new();
    for resource in &request.resource_spans {
        for scope in &resource.scope_spans {
            for span in &scope.spans {
                out.push((
                    resource.resource.clone(),
                    resource.schema_url.clone(),
                    scope.scope.clone(),
                    scope.schema_url.clone(),
                    span.clone(),
                ));
            }
        }
    }
    out
}

pub fn string_value(text: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(Value::StringValue(text.to_owned())) })
}

pub fn key_value(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
}

pub fn string_attribute(key: &str, text: &str) -> KeyValue {
    key_value(key, Value::StringValue(text.to_owned()))
}

/// A span with the given ids and nothing else.
pub fn span(trace_id: [u8; 16], span_id: u64) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_be_bytes().to_vec(),
        name: format!("span-{span_id}"),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_001_000_000,
        ..Span::default()
    }
}

pub fn with_status(mut span: Span, code: StatusCode) -> Span {
    span.status = Some(Status { message: String::new(), code: code as i32 });
    span
}

/// One resource with `service.name`, one scope, these spans.
pub fn request_of(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attribute("service.name", service)],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "test".into(), ..InstrumentationScope::default() }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// A trace id whose hex is `hex` (32 digits).
pub fn trace_id(hex: &str) -> [u8; 16] {
    let bytes = hex::decode(hex).expect("hex trace id");
    bytes.try_into().expect("16 bytes")
}

/// Runs one batch through a processor and returns what it emitted, with routes.
pub fn run(processor: &mut impl Processor, batch: SpanBatch) -> Vec<(Route, SpanBatch)> {
    let mut out = Output::new();
    processor.process(batch, Instant::now(), &mut out);
    out.drain().map(|routed| (routed.route, routed.batch)).collect()
}

/// Runs one batch and returns the emitted spans, decoded by prost, in order.
pub fn run_spans(processor: &mut impl Processor, batch: SpanBatch) -> Vec<Span> {
    run(processor, batch).iter().flat_map(|(_, batch)| spans(&decode(batch))).collect()
}

/// A small deterministic generator (SplitMix64), so statistical tests are repeatable.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn trace_id(&mut self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        id[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        id
    }
}
