//! The HTTP server of every HTTP receiver: one listener serves a table of routes, each a path
//! with the codecs it chooses from by `Content-Type` and the way it answers.
//!
//! OTLP/HTTP (`POST /v1/traces`, protobuf or JSON, over HTTP/1.1 or h2c) answers as the OTLP
//! specification says: 200 with an `ExportTraceServiceResponse`, failures as a `google.rpc.Status`,
//! both in the request's format. Zipkin's and Jaeger's collectors answer `202 Accepted` with an
//! empty body and failures as plain text, so their clients see what they would from the servers
//! they were written for. Everything else — bounded body reads, decompression, admission,
//! status codes for each failure, and with a `cors` section the preflights and the marking of
//! answers for web pages ([`crate::cors`]) — is the same code for all of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{
    HeaderValue, ALLOW, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ORIGIN, RETRY_AFTER,
};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use spanpipe_codecs::{Codec, CodecRegistry};

use super::body::{BodyReader, ResponseBody};
use super::proto::{self, GrpcCode};
use super::sink::{Accepted, Refusal, SpanSink};
use super::{Failure, Server};
use crate::compression::{self, DecompressError, Encoding};
use crate::cors::CorsPolicy;

/// Settings of an HTTP listener.
pub(crate) struct HttpSettings {
    /// The paths served; any other is answered 404.
    pub(crate) routes: Vec<Route>,
    /// The message of a 404 (which paths are served).
    pub(crate) not_found: String,
    pub(crate) max_body_size: usize,
    pub(crate) encodings: Vec<Encoding>,
    /// Which web origins may send requests; `None` when CORS is off.
    pub(crate) cors: Option<CorsPolicy>,
    /// `response_headers`: added to every answer that does not have them already.
    pub(crate) response_headers: http::HeaderMap,
}

/// One path an HTTP listener serves (always `POST`).
pub(crate) struct Route {
    pub(crate) path: String,
    pub(crate) codecs: RouteCodecs,
    pub(crate) style: AnswerStyle,
}

/// How a route answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AnswerStyle {
    /// OTLP/HTTP: `200` with an `ExportTraceServiceResponse` (with `partial_success` when the
    /// pipeline rejected spans), failures as a `google.rpc.Status`, both in the request's format.
    Otlp,
    /// Zipkin's and Jaeger's collectors: `202 Accepted` with an empty body (they have no way to
    /// report a partial success; rejected spans are counted), failures as plain text.
    Accepted,
}

/// How a route chooses the codec for a request's `Content-Type`.
pub(crate) enum RouteCodecs {
    /// Any codec of the registry that answers to the content type (OTLP/HTTP, where the
    /// registry decides which formats the port speaks).
    Registry(CodecRegistry),
    /// A fixed table: the formats of one protocol endpoint.
    Table(MediaTable),
}

/// The media types of a route, each with its codec.
pub(crate) struct MediaTable {
    /// Media types (lower case, without parameters) and the codec each selects.
    pub(crate) accepted: Vec<(&'static str, Arc<dyn Codec>)>,
    /// The codec for a request without `Content-Type`, when the protocol's own server has one.
    pub(crate) when_missing: Option<Arc<dyn Codec>>,
    /// Media types the protocol defines that spanpipe does not decode, each refused with 415
    /// and its own message.
    pub(crate) refused: Vec<(&'static str, &'static str)>,
}

impl MediaTable {
    /// The codec for `content_type` (`None` when the header is absent), or the 415's message.
    fn select(&self, path: &str, content_type: Option<&str>) -> Result<Arc<dyn Codec>, String> {
        let media_type =
            content_type.map(|value| value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        let Some(media_type) = media_type.filter(|media_type| !media_type.is_empty()) else {
            return self
                .when_missing
                .clone()
                .ok_or_else(|| format!("415 {path} requires a Content-Type: {}", self.listed()));
        };
        if let Some((_, codec)) = self.accepted.iter().find(|(accepted, _)| *accepted == media_type) {
            return Ok(Arc::clone(codec));
        }
        if let Some((_, why)) = self.refused.iter().find(|(refused, _)| *refused == media_type) {
            return Err(format!("415 {why}"));
        }
        Err(format!("415 unsupported Content-Type `{media_type}`: {path} takes {}", self.listed()))
    }

    fn listed(&self) -> String {
        self.accepted.iter().map(|(media_type, _)| *media_type).collect::<Vec<_>>().join(", ")
    }
}

/// The form of response bodies, following the request's content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
    /// spanpipe's MessagePack form of OTLP (`spanpipe-msgpack`).
    Msgpack,
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

pub(super) async fn handle<S: SpanSink>(
    server: &Server<S>,
    settings: &HttpSettings,
    request: Request<Incoming>,
    deadline: Option<Instant>,
) -> Response<ResponseBody> {
    let mut response = answer_with_cors(server, settings, request, deadline).await;
    if !settings.response_headers.is_empty() {
        let headers = response.headers_mut();
        for (name, value) in &settings.response_headers {
            if !headers.contains_key(name) {
                headers.insert(name, value.clone());
            }
        }
    }
    response
}

/// The answer to `request`, with CORS's preflight and marks when the listener has a policy.
async fn answer_with_cors<S: SpanSink>(
    server: &Server<S>,
    settings: &HttpSettings,
    request: Request<Incoming>,
    deadline: Option<Instant>,
) -> Response<ResponseBody> {
    let http1 = request.version() < Version::HTTP_2;
    let has_body = !hyper::body::Body::is_end_stream(request.body());
    let Some(cors) = &settings.cors else {
        return answer(server, settings, request, deadline, http1, has_body).await;
    };
    let served = settings.routes.iter().any(|route| route.path == request.uri().path());
    if served && CorsPolicy::is_preflight(request.method(), request.headers()) {
        let mut response = Response::new(ResponseBody::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        *response.headers_mut() = cors.preflight_headers(request.headers());
        // A preflight's body, if a client sent one, is not read: close rather than parse it.
        if http1 && has_body {
            response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        }
        return response;
    }
    // Only the headers CORS reads are kept: the request itself goes to the route.
    let cross_origin: http::HeaderMap =
        request.headers().get_all(ORIGIN).iter().map(|origin| (ORIGIN, origin.clone())).collect();
    let mut response = answer(server, settings, request, deadline, http1, has_body).await;
    cors.mark_response(&cross_origin, response.headers_mut());
    response
}

/// The answer to a request for a route (or for a path or method no route takes).
async fn answer<S: SpanSink>(
    server: &Server<S>,
    settings: &HttpSettings,
    request: Request<Incoming>,
    deadline: Option<Instant>,
    http1: bool,
    has_body: bool,
) -> Response<ResponseBody> {
    match export(server, settings, request, deadline).await {
        Ok((AnswerStyle::Otlp, format, media_type, outcome)) => success(format, media_type, &outcome),
        Ok((AnswerStyle::Accepted, ..)) => accepted(),
        Err(rejection) => {
            server.intake.stats.record(rejection.failure.event());
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
) -> Result<(AnswerStyle, Format, HeaderValue, Accepted), Rejection> {
    let Some(route) = settings.routes.iter().find(|route| route.path == request.uri().path()) else {
        return Err(Rejection::before_body(Failure::NotFound(settings.not_found.clone()), Format::Text));
    };
    if request.method() != Method::POST {
        return Err(Rejection::before_body(Failure::MethodNotAllowed, Format::Text));
    }
    let headers = request.headers();
    let content_type = headers.get(CONTENT_TYPE).cloned().unwrap_or(HeaderValue::from_static(""));
    let content_type_text = content_type.to_str().unwrap_or_default();
    let unsupported = |message| Rejection::before_body(Failure::UnsupportedMediaType(message), Format::Text);
    let (codec, format) = match &route.codecs {
        RouteCodecs::Registry(registry) => {
            let codec =
                registry.by_content_type(content_type_text).map_err(|error| unsupported(format!("415 {error}")))?;
            let format = if codec.name() == spanpipe_msgpack::OtlpMsgpack::NAME {
                Format::Msgpack
            } else if codec.name() == spanpipe_codecs::OtlpJson::NAME || content_type_text.contains("json") {
                Format::Json
            } else {
                Format::Protobuf
            };
            (codec, format)
        }
        RouteCodecs::Table(table) => {
            let header = headers.get(CONTENT_TYPE).map(|value| value.to_str().unwrap_or("(not text)"));
            (table.select(&route.path, header).map_err(unsupported)?, Format::Text)
        }
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
            server
                .intake
                .admit(len as usize, deadline)
                .await
                .map_err(|failure| Rejection::before_body(failure, format))?,
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
        None => server.intake.admit(wire_len, deadline).await.map_err(read)?,
    };
    let payload = compression::decompress(encoding, body, max).map_err(|error| {
        read(match error {
            DecompressError::TooLarge { limit } => {
                Failure::TooLarge(format!("decompressed request body exceeds the limit of {limit} bytes"))
            }
            corrupt @ DecompressError::Corrupt { .. } => Failure::Malformed(corrupt.to_string()),
        })
    })?;
    let outcome = server.intake.deliver(codec.as_ref(), payload, wire_len, admission).map_err(read)?;
    Ok((route.style, format, content_type, outcome))
}

fn success(format: Format, media_type: HeaderValue, outcome: &Accepted) -> Response<ResponseBody> {
    let body = match format {
        Format::Json => proto::export_response_json(outcome),
        Format::Msgpack => proto::export_response_msgpack(outcome),
        Format::Protobuf | Format::Text => proto::export_response_proto(outcome),
    };
    let mut response = Response::new(ResponseBody::full(body));
    // The response uses the request's content type, as the specification requires.
    response.headers_mut().insert(CONTENT_TYPE, media_type);
    response
}

/// What Zipkin's and Jaeger's collectors answer a request they took.
fn accepted() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
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
        Format::Msgpack => ("application/msgpack", proto::status_msgpack(code, &message, retry_after)),
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
