//! gRPC receivers: one unary method over HTTP/2, described by a [`GrpcMethod`]: OTLP's
//! `TraceService/Export` ([`OTLP_EXPORT`]) or Jaeger's `CollectorService/PostSpans`
//! ([`JAEGER_POST_SPANS`]). Everything but the path and the answer's message is gRPC's and shared.
//!
//! A request is one length-prefixed message (a compressed flag and a 4-byte big-endian length)
//! compressed as `grpc-encoding` says when the flag is set. The answer is either a response
//! message followed by `grpc-status: 0` in the trailers, or a "trailers-only" response whose
//! headers carry `grpc-status`, `grpc-message` and, for retryable refusals,
//! `grpc-status-details-bin` with a `google.rpc.Status` holding `RetryInfo`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use spanpipe_codecs::Codec;

use super::body::{BodyReader, ResponseBody};
use super::proto::{self, GrpcCode};
use super::sink::{Accepted, Refusal, SpanSink};
use super::stats::ReceiverEvent;
use super::{Failure, Server};
use crate::compression::{self, DecompressError, Encoding};

const ACCEPT_ENCODING: &str = "gzip,zstd,deflate";

/// The one unary method a gRPC listener serves.
#[derive(Debug)]
pub(crate) struct GrpcMethod {
    /// The fully qualified service name (`package.Service`).
    pub(crate) service: &'static str,
    /// The method's name.
    pub(crate) method: &'static str,
    /// The response message for an accepted request, encoded.
    pub(crate) response: fn(&Accepted) -> Bytes,
}

impl GrpcMethod {
    /// Whether `path` is `/service/method`.
    fn serves(&self, path: &str) -> bool {
        path.strip_prefix('/')
            .and_then(|path| path.strip_prefix(self.service))
            .and_then(|path| path.strip_prefix('/'))
            .is_some_and(|method| method == self.method)
    }
}

/// OTLP's `opentelemetry.proto.collector.trace.v1.TraceService/Export`, answered with an
/// `ExportTraceServiceResponse` (with `partial_success` when spans were rejected).
pub(crate) const OTLP_EXPORT: GrpcMethod = GrpcMethod {
    service: "opentelemetry.proto.collector.trace.v1.TraceService",
    method: "Export",
    response: proto::export_response_proto,
};

/// Jaeger's `jaeger.api_v2.CollectorService/PostSpans`, answered with the empty
/// `PostSpansResponse` (Jaeger's API has no partial success: rejected spans are counted only).
pub(crate) const JAEGER_POST_SPANS: GrpcMethod =
    GrpcMethod { service: "jaeger.api_v2.CollectorService", method: "PostSpans", response: |_| Bytes::new() };

/// Settings of the gRPC server.
pub(crate) struct GrpcSettings {
    pub(crate) max_message_size: usize,
    pub(crate) codec: Arc<dyn Codec>,
    pub(crate) method: &'static GrpcMethod,
}

pub(crate) async fn handle<S: SpanSink>(
    server: &Server<S>,
    settings: &GrpcSettings,
    request: Request<Incoming>,
    deadline: Option<Instant>,
) -> Response<ResponseBody> {
    if request.method() != Method::POST {
        server.intake.stats.record(ReceiverEvent::MethodNotAllowed);
        return plain_http(StatusCode::METHOD_NOT_ALLOWED, "gRPC requests must be POST");
    }
    let content_type = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !matches!(content_type, "application/grpc" | "application/grpc+proto") {
        server.intake.stats.record(ReceiverEvent::UnsupportedMediaType);
        return plain_http(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "OTLP/gRPC takes content-type application/grpc or application/grpc+proto",
        );
    }
    // The client's own deadline, when earlier, bounds the read too: past it nobody waits for
    // the answer.
    let deadline = match (deadline, client_deadline(request.headers(), Instant::now())) {
        (Some(ours), Some(theirs)) => Some(ours.min(theirs)),
        (ours, theirs) => ours.or(theirs),
    };
    match export(server, settings, request, deadline).await {
        Ok(outcome) => success(settings.method, &outcome),
        Err(failure) => {
            server.intake.stats.record(failure.event());
            failure_response(failure)
        }
    }
}

async fn export<S: SpanSink>(
    server: &Server<S>,
    settings: &GrpcSettings,
    request: Request<Incoming>,
    deadline: Option<Instant>,
) -> Result<Accepted, Failure> {
    let path = request.uri().path();
    let served = settings.method;
    if !served.serves(path) {
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let (name, asked) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        return Err(Failure::NotFound(if name == served.service {
            format!("unknown method {asked} for service {name}")
        } else {
            format!("unknown service {name}")
        }));
    }
    let encoding_name = request.headers().get("grpc-encoding").and_then(|v| v.to_str().ok()).unwrap_or("identity");
    let Some(encoding) = Encoding::from_name(encoding_name) else {
        return Err(Failure::UnsupportedMediaType(format!(
            "grpc: Decompressor is not installed for grpc-encoding \"{encoding_name}\""
        )));
    };
    let max = settings.max_message_size;
    let read_timeout = server.read_timeout;
    let body_failure = |error| Failure::from_body_error(error, max.saturating_add(5), read_timeout);
    let mut body = BodyReader::new(request.into_body(), max.saturating_add(5), deadline);

    body.fill(5).await.map_err(body_failure)?;
    let Some(&[flag, a, b, c, d]) = body.buffered().get(..5) else {
        return Err(Failure::Malformed("request carries no complete gRPC message".into()));
    };
    let declared = u32::from_be_bytes([a, b, c, d]) as usize;
    if flag > 1 {
        return Err(Failure::Malformed(format!("invalid gRPC compressed flag {flag}")));
    }
    if declared > max {
        return Err(Failure::TooLarge(format!("grpc: received message larger than max ({declared} vs. {max})")));
    }
    let admission = server.intake.admit(declared, deadline).await?;
    body.fill(5 + declared).await.map_err(body_failure)?;
    if body.buffered().len() < 5 + declared {
        return Err(Failure::Malformed(format!(
            "gRPC message truncated: {declared} bytes declared, {} received",
            body.buffered().len() - 5
        )));
    }
    if !body.ended() {
        // A unary call ends with its message; anything further is a second message.
        body.fill(5 + declared + 1).await.map_err(body_failure)?;
    }
    if body.buffered().len() > 5 + declared {
        return Err(Failure::Malformed(format!("unary {} request carries more than one message", served.method)));
    }
    let message = body.into_bytes().slice(5..5 + declared);
    let payload = match (flag, encoding) {
        (0, _) => message,
        (_, Encoding::Identity) => {
            return Err(Failure::Malformed("gRPC message is flagged compressed but grpc-encoding is identity".into()));
        }
        (_, encoding) => compression::decompress(encoding, message, max).map_err(|error| match error {
            DecompressError::TooLarge { .. } => {
                Failure::TooLarge(format!("grpc: received message after decompression larger than max ({max})"))
            }
            corrupt @ DecompressError::Corrupt { .. } => Failure::Malformed(format!("grpc: {corrupt}")),
        })?,
    };
    server.intake.deliver(settings.codec.as_ref(), payload, 5 + declared, admission)
}

/// The deadline a `grpc-timeout` header sets (up to 8 digits and a unit: `H`, `M`, `S`, `m`,
/// `u`, `n`), if the client sent a valid one.
fn client_deadline(headers: &HeaderMap, now: Instant) -> Option<Instant> {
    let (&unit, digits) = headers.get("grpc-timeout")?.as_bytes().split_last()?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let timeout = match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    };
    now.checked_add(timeout)
}

fn grpc_headers(builder: http::response::Builder) -> http::response::Builder {
    builder
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/grpc")
        .header("grpc-accept-encoding", ACCEPT_ENCODING)
}

fn success(method: &GrpcMethod, outcome: &Accepted) -> Response<ResponseBody> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let message = proto::grpc_frame(&(method.response)(outcome));
    grpc_headers(Response::builder())
        .body(ResponseBody::with_trailers(message, trailers))
        .unwrap_or_else(|_| internal_error())
}

fn failure_response(failure: Failure) -> Response<ResponseBody> {
    let (code, message, retry_after) = match failure {
        Failure::Malformed(message) | Failure::Broken(message) => (GrpcCode::InvalidArgument, message, None),
        Failure::TooLarge(message) => (GrpcCode::ResourceExhausted, message, None),
        Failure::UnsupportedMediaType(message) | Failure::NotFound(message) => (GrpcCode::Unimplemented, message, None),
        Failure::MethodNotAllowed => (GrpcCode::Unimplemented, "gRPC requests must be POST".into(), None),
        Failure::TimedOut(message) => (GrpcCode::DeadlineExceeded, message, None),
        Failure::Refused(refusal) => {
            let code = match refusal {
                Refusal::Exhausted { .. } => GrpcCode::ResourceExhausted,
                Refusal::Unavailable { .. } => GrpcCode::Unavailable,
                Refusal::Permanent { .. } => GrpcCode::InvalidArgument,
            };
            (code, refusal.reason().to_owned(), refusal.retry_after())
        }
    };
    trailers_only(code, &message, retry_after)
}

/// A response whose headers end the stream and carry the status.
fn trailers_only(code: GrpcCode, message: &str, retry_after: Option<Duration>) -> Response<ResponseBody> {
    let mut builder = grpc_headers(Response::builder()).header("grpc-status", (code as u8).to_string());
    if !message.is_empty() {
        builder = builder.header("grpc-message", proto::percent_encode_grpc_message(message));
    }
    if retry_after.is_some() {
        let details = proto::status_proto(code, message, retry_after);
        builder =
            builder.header("grpc-status-details-bin", base64::engine::general_purpose::STANDARD_NO_PAD.encode(details));
    }
    builder.body(ResponseBody::empty()).unwrap_or_else(|_| internal_error())
}

fn plain_http(status: StatusCode, message: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(Bytes::from_static(message.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Only reachable if a header value built above were invalid, which percent-encoding and
/// base64 rule out; answered as gRPC INTERNAL rather than a panic.
fn internal_error() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from_static("13"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_serves_its_one_method_path() {
        assert!(OTLP_EXPORT.serves("/opentelemetry.proto.collector.trace.v1.TraceService/Export"));
        assert!(JAEGER_POST_SPANS.serves("/jaeger.api_v2.CollectorService/PostSpans"));
        for other in [
            "/jaeger.api_v2.CollectorService/Export",
            "/jaeger.api_v2.CollectorService/PostSpans/",
            "/jaeger.api_v2.CollectorServiceX/PostSpans",
            "jaeger.api_v2.CollectorService/PostSpans",
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            "/",
        ] {
            assert!(!JAEGER_POST_SPANS.serves(other), "{other}");
        }
    }

    #[test]
    fn grpc_timeout_headers_become_deadlines() {
        let now = Instant::now();
        let deadline = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", HeaderValue::from_static(value));
            client_deadline(&headers, now).map(|at| at - now)
        };
        assert_eq!(deadline("10S"), Some(Duration::from_secs(10)));
        assert_eq!(deadline("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(deadline("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(deadline("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for invalid in ["", "S", "123456789S", "10s", "-1S", "1.5S"] {
            assert_eq!(deadline(invalid), None, "{invalid}");
        }
        assert_eq!(client_deadline(&HeaderMap::new(), now), None);
    }
}
