//! Jaeger's protobuf model (`jaeger.api_v2`, model.proto) as prost would generate it, and the
//! same spans as Apache Thrift's generated `jaeger::Batch` holds them turned into a
//! `PostSpansRequest`: shared by the protobuf tests and the benchmark (whose baseline is prost
//! decoding into these structs). Its users declare the generated `jaeger` module at their root.

use crate::jaeger;

#[derive(Clone, PartialEq, prost::Message)]
pub struct PostSpansRequest {
    #[prost(message, optional, tag = "1")]
    pub batch: Option<Batch>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct Batch {
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<Span>,
    #[prost(message, optional, tag = "2")]
    pub process: Option<Process>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(string, tag = "3")]
    pub operation_name: String,
    #[prost(message, repeated, tag = "4")]
    pub references: Vec<SpanRef>,
    #[prost(uint32, tag = "5")]
    pub flags: u32,
    #[prost(message, optional, tag = "6")]
    pub start_time: Option<Timestamp>,
    #[prost(message, optional, tag = "7")]
    pub duration: Option<Timestamp>,
    #[prost(message, repeated, tag = "8")]
    pub tags: Vec<KeyValue>,
    #[prost(message, repeated, tag = "9")]
    pub logs: Vec<Log>,
    #[prost(message, optional, tag = "10")]
    pub process: Option<Process>,
    #[prost(string, tag = "11")]
    pub process_id: String,
    #[prost(string, repeated, tag = "12")]
    pub warnings: Vec<String>,
}
/// `google.protobuf.Timestamp` and `Duration` have the same fields.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct SpanRef {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(int32, tag = "3")]
    pub ref_type: i32,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct Process {
    #[prost(string, tag = "1")]
    pub service_name: String,
    #[prost(message, repeated, tag = "2")]
    pub tags: Vec<KeyValue>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct Log {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(message, repeated, tag = "2")]
    pub fields: Vec<KeyValue>,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(int32, tag = "2")]
    pub v_type: i32,
    #[prost(string, tag = "3")]
    pub v_str: String,
    #[prost(bool, tag = "4")]
    pub v_bool: bool,
    #[prost(int64, tag = "5")]
    pub v_int64: i64,
    #[prost(double, tag = "6")]
    pub v_float64: f64,
    #[prost(bytes = "vec", tag = "7")]
    pub v_binary: Vec<u8>,
}

pub fn micros(us: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds: us.div_euclid(1_000_000), nanos: (us.rem_euclid(1_000_000) * 1000) as i32 })
}

pub fn trace_id(high: i64, low: i64) -> Vec<u8> {
    [high.to_be_bytes(), low.to_be_bytes()].concat()
}

pub fn key_value(tag: &jaeger::Tag) -> KeyValue {
    let mut kv = KeyValue { key: tag.key.clone(), ..Default::default() };
    match tag.v_type {
        jaeger::TagType::STRING => kv.v_str = tag.v_str.clone().unwrap_or_default(),
        jaeger::TagType::DOUBLE => {
            kv.v_type = 3;
            kv.v_float64 = tag.v_double.map_or(0.0, |d| d.0);
        }
        jaeger::TagType::BOOL => {
            kv.v_type = 1;
            kv.v_bool = tag.v_bool.unwrap_or_default();
        }
        jaeger::TagType::LONG => {
            kv.v_type = 2;
            kv.v_int64 = tag.v_long.unwrap_or_default();
        }
        jaeger::TagType::BINARY => {
            kv.v_type = 4;
            kv.v_binary = tag.v_binary.clone().unwrap_or_default();
        }
        other => kv.v_type = other.0,
    }
    kv
}

pub fn process(process: &jaeger::Process) -> Process {
    Process { service_name: process.service_name.clone(), tags: process.tags.iter().flatten().map(key_value).collect() }
}

/// Where the protobuf batch carries the Thrift batch's process.
#[derive(Clone, Copy, Debug)]
pub enum Placement {
    /// In `Batch.process` only (as Jaeger's model batches are usually built).
    Batch,
    /// In every span's `process` (and not the batch's).
    EverySpan,
    /// In both (as Jaeger's agent forwards a Thrift batch).
    Both,
}

/// The Thrift batch as model.proto's `PostSpansRequest`.
pub fn post_spans(batch: &jaeger::Batch, placement: Placement) -> PostSpansRequest {
    let own_process = matches!(placement, Placement::EverySpan | Placement::Both).then(|| process(&batch.process));
    let spans = batch
        .spans
        .iter()
        .map(|span| Span {
            trace_id: trace_id(span.trace_id_high, span.trace_id_low),
            span_id: span.span_id.to_be_bytes().to_vec(),
            operation_name: span.operation_name.clone(),
            references: span
                .references
                .iter()
                .flatten()
                .map(|r| SpanRef {
                    trace_id: trace_id(r.trace_id_high, r.trace_id_low),
                    span_id: r.span_id.to_be_bytes().to_vec(),
                    ref_type: r.ref_type.0,
                })
                .collect(),
            flags: span.flags as u32,
            start_time: micros(span.start_time),
            duration: micros(span.duration),
            tags: span.tags.iter().flatten().map(key_value).collect(),
            logs: span
                .logs
                .iter()
                .flatten()
                .map(|log| Log { timestamp: micros(log.timestamp), fields: log.fields.iter().map(key_value).collect() })
                .collect(),
            process: own_process.clone(),
            ..Default::default()
        })
        .collect();
    let batch_process = matches!(placement, Placement::Batch | Placement::Both).then(|| process(&batch.process));
    PostSpansRequest { batch: Some(Batch { spans, process: batch_process }) }
}

/// The batch with every `-0.0` tag made `0.0`: proto3 encoders (prost, gogoproto) leave a double
/// equal to zero out, so `-0.0` cannot cross protobuf and arrives as `0.0`.
pub fn without_negative_zero(mut batch: jaeger::Batch) -> jaeger::Batch {
    let fix = |tags: &mut Vec<jaeger::Tag>| {
        for tag in tags {
            if let Some(value) = &mut tag.v_double {
                if value.0 == 0.0 {
                    value.0 = 0.0;
                }
            }
        }
    };
    batch.process.tags.iter_mut().for_each(fix);
    for span in &mut batch.spans {
        span.tags.iter_mut().for_each(fix);
        span.logs.iter_mut().flatten().for_each(|log| fix(&mut log.fields));
    }
    batch
}
