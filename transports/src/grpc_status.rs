//! The few response messages a client reads, declared with prost's derive: the OTLP export
//! response (`partial_success`), `google.rpc.Status` (gRPC `grpc-status-details-bin` and OTLP/HTTP
//! error bodies) and `google.rpc.RetryInfo`. The exporters decode servers' answers with them, and
//! tests decode the receivers' answers with them (the receivers encode theirs by hand, so the two
//! sides check each other). Requests need no types: a batch already is the protobuf encoding of
//! an `ExportTraceServiceRequest`.

use std::time::Duration;

/// gRPC status code names, by number (`grpc/doc/statuscodes.md`).
pub const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The name of gRPC status `code`, or `UNRECOGNIZED` for a number gRPC does not define.
#[must_use]
pub fn code_name(code: i32) -> &'static str {
    usize::try_from(code).ok().and_then(|code| CODE_NAMES.get(code)).copied().unwrap_or("UNRECOGNIZED")
}

/// `opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTraceServiceResponse {
    /// Set when the server accepted only part of the request.
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportTracePartialSuccess>,
}

/// `opentelemetry.proto.collector.trace.v1.ExportTracePartialSuccess`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTracePartialSuccess {
    /// Spans the server rejected.
    #[prost(int64, tag = "1")]
    pub rejected_spans: i64,
    /// Why, in the server's words.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// A developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Typed details, e.g. `RetryInfo`.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    /// `type.googleapis.com/<full message name>`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    /// How long the client should wait before retrying.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds on top, same sign as `seconds`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

impl RpcStatus {
    /// The delay a `RetryInfo` detail asks for, if the status carries one. Negative delays read
    /// as zero.
    #[must_use]
    pub fn retry_delay(&self) -> Option<Duration> {
        use prost::Message;
        self.details.iter().filter(|detail| detail.type_url == RETRY_INFO_TYPE_URL).find_map(|detail| {
            let delay = RetryInfo::decode(detail.value.as_slice()).ok()?.retry_delay?;
            let seconds = u64::try_from(delay.seconds).unwrap_or(0);
            let nanos = u32::try_from(delay.nanos).unwrap_or(0).min(999_999_999);
            Some(Duration::new(seconds, nanos))
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn reads_the_retry_delay_among_other_details() {
        let retry = RetryInfo { retry_delay: Some(ProtoDuration { seconds: 2, nanos: 500_000_000 }) };
        let status = RpcStatus {
            code: 8,
            message: "slow down".into(),
            details: vec![
                ProtoAny { type_url: "type.googleapis.com/google.rpc.DebugInfo".into(), value: vec![1, 2, 3] },
                ProtoAny { type_url: RETRY_INFO_TYPE_URL.into(), value: retry.encode_to_vec() },
            ],
        };
        let decoded = RpcStatus::decode(status.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.retry_delay(), Some(Duration::from_millis(2_500)));
    }

    #[test]
    fn a_status_without_retry_info_has_no_delay() {
        assert_eq!(RpcStatus { code: 14, message: String::new(), details: Vec::new() }.retry_delay(), None);
    }
}
