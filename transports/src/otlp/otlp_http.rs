//! OTLP/HTTP: `POST /v1/traces` with protobuf or JSON bodies, over HTTP/1.1 or h2c.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use spanpipe_codecs::CodecRegistry;

use super::body::{BodyReader, ResponseBody};
use super::proto::{self, GrpcCode};
use super::sink::{Accepted, Refusal, SpanSink};
use super::{Failure, Server};
use crate::compression::{self, DecompressError, Encoding};

/// Settings of the HTTP server.
pub(crate) struct HttpSettings {
    pub(crate) traces_path: String,
    pub(crate) max_body_size: usize,
    pub(crate) codecs: CodecRegistry,
    pub(crate) encodings: Vec<Encoding>,
}

/// The form of response bodies, following the request's content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
    /// Before the request's format is known (wrong path, method or content type).
    Text,
}

/// A failed request and whether its body was left unread (an HTTP/1 connection must then close).
struct Rejection {
    failure: Failure,
    format: Format,
    body_unread: bool,
}

impl Rejection {
    fn before_body(failure: Failure, format: Format) -> Self {
        Self { failure, format, body_unread: true }
    }
}

pub(crate) async fn handle<S: SpanSink>(
    server: &Server<S>,
    settings: &HttpSettings,
    request: Request<Incoming>,
    deadline: Option<Instant>,
) -> Response<ResponseBody> {
    let http1 = request.version() < Version::HTTP_2;
    let has_body = !hyper::body::Body::is_end_stream(request.body());
    match export(server, settings, request, deadline).await {
        Ok((format, media_type, outcome)) => success(format, media_type, &outcome),
        Err(rejection) => {
            server.stats.record(rejection.failure.event());
            let close = http1 && has_body && rejection.body_unread;
            failure_response(rejection.failure, rejection.format, close)
        }
    }
}

async fn export<S: SpanSink>(
    server: &Server<S>,
    settings: &HttpSettings,
    request: Request<Incoming>,
    deadline: Option<Instant>,
) -> Result<(Format, HeaderValue, Accepted), Rejection> {
    if request.uri().path() != settings.traces_path {
        let message = format!("404 page not found: traces are received at {}", settings.traces_path);
        return Err(Rejection::before_body(Failure::NotFound(message), Format::Text));
    }
    if request.method() != Method::POST {
        return Err(Rejection::before_body(Failure::MethodNotAllowed, Format::Text));
    }
    let headers = request.headers();
    let content_type = headers.get(CONTENT_TYPE).cloned().unwrap_or(HeaderValue::from_static(""));
    let content_type_text = content_type.to_str().unwrap_or_default();
    let codec = settings
        .codecs
        .by_content_type(content_type_text)
        .map_err(|error| Rejection::before_body(Failure::UnsupportedMediaType(format!("415 {error}")), Format::Text))?;
    let format = if codec.name() == spanpipe_codecs::OtlpJson::NAME || content_type_text.contains("json") {
        Format::Json
    } else {
        Format::Protobuf
    };
    let encoding_name = headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let encoding = Encoding::from_name(encoding_name).filter(|e| settings.encodings.contains(e)).ok_or_else(|| {
        let message = format!("unsupported Content-Encoding `{encoding_name}`");
        Rejection::before_body(Failure::UnsupportedMediaType(message), format)
    })?;
    let max = settings.max_body_size;
    let declared_len = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|len| len > max as u64) {
        let message = format!("request body of {} bytes exceeds the limit of {max} bytes", declared_len.unwrap_or(0));
        return Err(Rejection::before_body(Failure::TooLarge(message), format));
    }
    // Admit before reading when the size is known; otherwise after (the read is bounded anyway).
    let early_admission = match declared_len {
        Some(len) => Some(
            server.admit(len as usize, deadline).await.map_err(|failure| Rejection::before_body(failure, format))?,
        ),
        None => None,
    };
    let read_timeout = server.read_timeout;
    let body = BodyReader::new(request.into_body(), max, deadline).read_to_end().await.map_err(|error| Rejection {
        failure: Failure::from_body_error(error, max, read_timeout),
        format,
        body_unread: true,
    })?;
    let read = |failure| Rejection { failure, format, body_unread: false };
    let wire_len = body.len();
    let admission = match early_admission {
        Some(admission) => admission,
        None => server.admit(wire_len, deadline).await.map_err(read)?,
    };
    let payload = compression::decompress(encoding, body, max).map_err(|error| {
        read(match error {
            DecompressError::TooLarge { limit } => {
                Failure::TooLarge(format!("decompressed request body exceeds the limit of {limit} bytes"))
            }
            corrupt @ DecompressError::Corrupt { .. } => Failure::Malformed(corrupt.to_string()),
        })
    })?;
    let outcome = server.deliver(codec.as_ref(), payload, wire_len, admission).map_err(read)?;
    Ok((format, content_type, outcome))
}

fn success(format: Format, media_type: HeaderValue, outcome: &Accepted) -> Response<ResponseBody> {
    let body = match format {
        Format::Json => proto::export_response_json(outcome),
        Format::Protobuf | Format::Text => proto::export_response_proto(outcome),
    };
    let mut response = Response::new(ResponseBody::full(body));
    // The response uses the request's content type, as the specification requires.
    response.headers_mut().insert(CONTENT_TYPE, media_type);
    response
}

fn failure_response(failure: Failure, format: Format, close: bool) -> Response<ResponseBody> {
    let (status, code, message, retry_after) = match failure {
        Failure::Malformed(message) | Failure::Broken(message) => {
            (StatusCode::BAD_REQUEST, GrpcCode::InvalidArgument, message, None)
        }
        Failure::TooLarge(message) => (StatusCode::PAYLOAD_TOO_LARGE, GrpcCode::ResourceExhausted, message, None),
        Failure::UnsupportedMediaType(message) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, GrpcCode::Unimplemented, message, None)
        }
        Failure::NotFound(message) => (StatusCode::NOT_FOUND, GrpcCode::Unimplemented, message, None),
        Failure::MethodNotAllowed => (
            StatusCode::METHOD_NOT_ALLOWED,
            GrpcCode::Unimplemented,
            "405 method not allowed, supported: [POST]".to_owned(),
            None,
        ),
        Failure::TimedOut(message) => (StatusCode::REQUEST_TIMEOUT, GrpcCode::DeadlineExceeded, message, None),
        Failure::Refused(refusal) => {
            let (status, code) = match refusal {
                Refusal::Exhausted { .. } => (StatusCode::TOO_MANY_REQUESTS, GrpcCode::ResourceExhausted),
                Refusal::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, GrpcCode::Unavailable),
                Refusal::Permanent { .. } => (StatusCode::BAD_REQUEST, GrpcCode::InvalidArgument),
            };
            (status, code, refusal.reason().to_owned(), refusal.retry_after())
        }
    };
    let (media_type, body) = match format {
        Format::Protobuf => ("application/x-protobuf", proto::status_proto(code, &message, retry_after)),
        Format::Json => ("application/json", proto::status_json(code, &message, retry_after)),
        Format::Text => ("text/plain; charset=utf-8", Bytes::from(message)),
    };
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(ALLOW, HeaderValue::from_static("POST"));
    }
    if let Some(delay) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds(delay)));
    }
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// `Retry-After` takes whole seconds; round up so the client never comes back early.
fn retry_after_seconds(delay: Duration) -> u64 {
    delay.as_secs() + u64::from(delay.subsec_nanos() > 0)
}
