//! The `otlphttp` exporter: OTLP over HTTP (`POST {endpoint}/v1/traces`), protobuf or JSON
//! bodies — or spanpipe's MessagePack mapping of OTLP (`spanpipe_msgpack`) for compact hops to
//! another spanpipe — with the OpenTelemetry Collector's keys and defaults. `http://` URLs are plaintext
//! HTTP/1.1; `https://` URLs use TLS with the `tls` block and HTTP/2 when the server selects it
//! by ALPN, else HTTP/1.1 — as Go's HTTP client, and so the Collector, does.
//!
//! Retryable answers are those the OTLP specification lists — 429, 502, 503 and 504 — and a
//! `Retry-After` header on them (seconds or an HTTP date) is honoured as the least wait; every
//! other non-2xx answer is permanent. A 2xx answer may carry `partial_success`, read from a
//! protobuf, JSON or MessagePack body as its `Content-Type` says (whatever the request's
//! encoding was); error bodies are read as `google.rpc.Status` for the log message, likewise.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, Method, Request};
use prost::Message as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_codecs::Codec as _;
use spanpipe_config::{ComponentConfig, FieldError, GoDuration};
use spanpipe_core::SpanBatch;

use crate::client::{ChunkedBody, ClientResponse, Endpoint, PoolSettings, MAX_RESPONSE_BYTES};
use crate::compression::{compress, decompress};
use crate::http1_pool;
use crate::network::{EncodeError, ExportError, Outcome, Payload, Protocol};
use crate::settings::{
    client_blocks, listed_endpoints, parse_keyed_endpoints, ClientBlocks, Compression, CompressionParams,
    FailoverConfig, NetworkExporterConfig, QueueConfig, RetryConfig, TlsClientConfig,
};
use spanpipe_transports::grpc_status::{ExportTraceServiceResponse, RpcStatus};

/// The path the OTLP specification gives trace exports.
pub const TRACES_PATH: &str = "/v1/traces";

/// Body encoding of the `otlphttp` exporter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpEncoding {
    /// `application/x-protobuf`.
    #[default]
    Proto,
    /// `application/json` (OTLP/JSON).
    Json,
    /// `application/msgpack`: the OTLP/JSON data model as MessagePack (spanpipe's `msgpack`
    /// codec; not a Collector value, for hops between spanpipe instances).
    Msgpack,
}

impl HttpEncoding {
    /// The `Content-Type` of request bodies.
    fn content_type(self) -> &'static str {
        match self {
            Self::Proto => "application/x-protobuf",
            Self::Json => "application/json",
            Self::Msgpack => spanpipe_msgpack::OtlpMsgpack::CONTENT_TYPES[0],
        }
    }
}

/// Config of the `otlphttp` exporter.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpHttpExporterConfig {
    /// Base URL (`http://host:port` or `https://host:port`); traces go to its `/v1/traces`.
    /// Required unless `traces_endpoint` or `endpoints` is set. Defaults to empty.
    pub endpoint: String,
    /// Full URL for traces, used instead of `endpoint`. Defaults to empty.
    pub traces_endpoint: String,
    /// spanpipe's failover list of base URLs, instead of `endpoint`: the first is the primary,
    /// the others are used in order while it fails (see `failover`). Defaults to empty.
    pub endpoints: Vec<String>,
    /// When to fail over between `endpoints` and probe the primary. Defaults to the block's own
    /// defaults.
    pub failover: FailoverConfig,
    /// TLS settings for `https://` URLs, the Collector's `configtls` client keys (`http://` URLs
    /// are plaintext whatever they say). Applies to every entry of `endpoints`. Defaults to the
    /// block's own defaults.
    pub tls: TlsClientConfig,
    /// Body encoding: `proto`, `json` (the Collector's values) or `msgpack` (spanpipe's
    /// MessagePack form of OTLP, `application/msgpack`, for a spanpipe receiver). Defaults to
    /// proto.
    pub encoding: HttpEncoding,
    /// Compression of request bodies: `gzip`, `zstd` or `none`. Defaults to gzip.
    pub compression: Compression,
    /// Level of the compression. Defaults to the block's own defaults.
    pub compression_params: CompressionParams,
    /// Headers added to every request; `headers:` left empty is none. Defaults to none.
    #[serde(deserialize_with = "spanpipe_config::default_when_null")]
    pub headers: BTreeMap<String, String>,
    /// Time limit of one request. Defaults to 30s.
    pub timeout: GoDuration,
    /// How long an idle connection is kept for reuse. Defaults to 90s.
    pub idle_conn_timeout: GoDuration,
    /// Idle connections kept for reuse (per core). Defaults to 100.
    pub max_idle_conns: usize,
    /// Open a new connection for every request. Defaults to false.
    pub disable_keep_alives: bool,
    /// Retries with exponential backoff. Defaults to the block's own defaults.
    pub retry_on_failure: RetryConfig,
    /// The bounded queue in front of the senders. Defaults to the block's own defaults.
    pub sending_queue: QueueConfig,
}

impl Default for OtlpHttpExporterConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            traces_endpoint: String::new(),
            endpoints: Vec::new(),
            failover: FailoverConfig::default(),
            tls: TlsClientConfig::default(),
            encoding: HttpEncoding::Proto,
            compression: Compression::Gzip,
            compression_params: CompressionParams::default(),
            headers: BTreeMap::new(),
            timeout: GoDuration::from_secs(30),
            idle_conn_timeout: GoDuration::from_secs(90),
            max_idle_conns: 100,
            disable_keep_alives: false,
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
        }
    }
}

impl NetworkExporterConfig for OtlpHttpExporterConfig {
    /// The trace URLs: `endpoints` (each a base URL, as `endpoint`), `traces_endpoint` as written,
    /// or `endpoint` with `/v1/traces` appended.
    fn parsed_endpoints(&self) -> Result<Vec<Endpoint>, Vec<FieldError>> {
        let mut errors = Vec::new();
        let keyed: Vec<(String, (&str, bool))> = if !self.endpoints.is_empty() {
            if !self.endpoint.is_empty() || !self.traces_endpoint.is_empty() {
                errors.push(FieldError::new(
                    "endpoints",
                    "set either `endpoints` or `endpoint`/`traces_endpoint`, not both",
                ));
            }
            listed_endpoints(&self.endpoints).map(|(path, text)| (path, (text, true))).collect()
        } else if !self.traces_endpoint.is_empty() {
            vec![("traces_endpoint".to_owned(), (self.traces_endpoint.as_str(), false))]
        } else if !self.endpoint.is_empty() {
            vec![("endpoint".to_owned(), (self.endpoint.as_str(), true))]
        } else {
            errors.push(FieldError::new("endpoint", "either `endpoint` or `traces_endpoint` must be set"));
            Vec::new()
        };
        parse_keyed_endpoints(keyed, |(text, append_traces_path)| parse_http_endpoint(text, append_traces_path), errors)
    }

    fn client_blocks(&self) -> ClientBlocks<'_> {
        client_blocks!(self)
    }

    fn pool(&self) -> PoolSettings {
        http1_pool(self.timeout.0, self.idle_conn_timeout.0, self.max_idle_conns, self.disable_keep_alives)
    }
}

impl ComponentConfig for OtlpHttpExporterConfig {
    fn validate(&self) -> Vec<FieldError> {
        self.network_errors()
    }
}

/// Parses an `http://` or `https://` URL; `append_traces_path` adds `/v1/traces` to a base URL
/// as the Collector composes it.
pub(crate) fn parse_http_endpoint(text: &str, append_traces_path: bool) -> Result<Endpoint, String> {
    let uri: http::Uri = text.parse().map_err(|error| format!("`{text}` is not a valid URL: {error}"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("`{text}` must be an `http://` or `https://` URL")),
    };
    let authority = uri.authority().cloned().ok_or_else(|| format!("`{text}` has no host"))?;
    let base = uri.path_and_query().map_or("", |path| path.as_str());
    let path = if append_traces_path {
        format!("{}{TRACES_PATH}", base.trim_end_matches('/'))
    } else if base.is_empty() {
        "/".to_owned()
    } else {
        base.to_owned()
    };
    Ok(Endpoint {
        label: text.to_owned(),
        host: authority.host().trim_start_matches('[').trim_end_matches(']').to_owned(),
        port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
        path: path.parse().map_err(|error| format!("`{text}` gives an invalid path: {error}"))?,
        authority,
        https,
        tls: None,
    })
}

/// The HTTP side of the `otlphttp` exporter.
#[derive(Debug)]
pub(crate) struct HttpProtocol {
    encoding: HttpEncoding,
    compression: Compression,
    level: i32,
    headers: HeaderMap,
    probe: Payload,
}

impl HttpProtocol {
    pub(crate) fn new(config: &OtlpHttpExporterConfig) -> Result<Self, EncodeError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(config.encoding.content_type()));
        headers.insert(USER_AGENT, HeaderValue::from_static(crate::USER_AGENT));
        if let Some(name) = config.compression.encoding_name() {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(name));
        }
        headers.extend(spanpipe_transports::config_headers::header_map(&config.headers));
        let mut protocol = Self {
            encoding: config.encoding,
            compression: config.compression,
            level: config.compression_params.level,
            headers,
            probe: Payload::default(),
        };
        // An export request without spans: no bytes in protobuf, `{}` in JSON, an empty map
        // (fixmap 0) in MessagePack.
        let empty: &'static [u8] = match config.encoding {
            HttpEncoding::Proto => b"",
            HttpEncoding::Json => b"{}",
            HttpEncoding::Msgpack => &[0x80],
        };
        protocol.probe = protocol.compressed(Bytes::from_static(empty))?;
        Ok(protocol)
    }

    fn compressed(&self, body: Bytes) -> Result<Payload, EncodeError> {
        let body = match self.compression {
            Compression::None => body,
            compression => compress(compression, self.level, &body)?,
        };
        Ok(Payload { prefix: None, body })
    }
}

impl Protocol for HttpProtocol {
    fn encode(&self, batch: &SpanBatch) -> Result<Payload, EncodeError> {
        let body = match self.encoding {
            HttpEncoding::Proto => batch.bytes().clone(),
            HttpEncoding::Json => spanpipe_codecs::OtlpJson.encode(batch)?,
            HttpEncoding::Msgpack => spanpipe_msgpack::OtlpMsgpack.encode(batch)?,
        };
        self.compressed(body)
    }

    fn probe_payload(&self) -> Payload {
        self.probe.clone()
    }

    fn request(&self, payload: &Payload) -> Request<ChunkedBody> {
        let mut request = Request::new(payload.to_body());
        *request.method_mut() = Method::POST;
        *request.headers_mut() = self.headers.clone();
        request
    }

    fn outcome(&self, endpoint: &Endpoint, response: ClientResponse) -> Outcome {
        read_http_outcome(endpoint, &response, SystemTime::now())
    }
}

/// Whether the OTLP specification allows retrying an answer with this status.
fn is_retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// `Retry-After` as seconds or as an HTTP date (relative to `now`).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// How an answer's body is encoded, by its `Content-Type`: a server answers in the request's
/// format as a rule, but an error from a proxy or an older server may come in another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyFormat {
    Protobuf,
    Json,
    Msgpack,
}

fn body_format(headers: &HeaderMap) -> BodyFormat {
    let media_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media_type == "application/json" {
        BodyFormat::Json
    } else if spanpipe_msgpack::OtlpMsgpack::CONTENT_TYPES.contains(&media_type.as_str()) {
        BodyFormat::Msgpack
    } else {
        BodyFormat::Protobuf
    }
}

/// The response body, decompressed if the server compressed it.
pub(crate) fn response_body(response: &ClientResponse) -> Result<Vec<u8>, String> {
    let encoding = response.headers.get(CONTENT_ENCODING).and_then(|value| value.to_str().ok());
    let compression = match encoding.map(str::to_ascii_lowercase).as_deref() {
        None | Some("identity") => return Ok(response.body.to_vec()),
        Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        Some(other) => return Err(format!("unsupported Content-Encoding {other:?}")),
    };
    decompress(compression, &response.body, MAX_RESPONSE_BYTES).map_err(|error| error.to_string())
}

/// `partialSuccess` of an OTLP/JSON answer; 64-bit integers may come as strings or numbers.
fn json_partial_success(body: &[u8]) -> Result<(u64, String), String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|error| error.to_string())?;
    let Some(partial) = value.get("partialSuccess").or_else(|| value.get("partial_success")) else {
        return Ok((0, String::new()));
    };
    let field = |camel: &str, snake: &str| partial.get(camel).or_else(|| partial.get(snake)).cloned();
    let rejected = match field("rejectedSpans", "rejected_spans") {
        Some(serde_json::Value::String(text)) => text.parse().map_err(|_| format!("rejectedSpans {text:?}"))?,
        Some(serde_json::Value::Number(number)) => number.as_u64().unwrap_or(0),
        _ => 0,
    };
    let message = match field("errorMessage", "error_message") {
        Some(serde_json::Value::String(text)) => text,
        _ => String::new(),
    };
    Ok((rejected, message))
}

/// The rejected count (a negative one, which no server should send, counts as none) and message
/// of a `partial_success`, if the answer has one.
fn rejected(partial: Option<(i64, String)>) -> (u64, String) {
    let (count, message) = partial.unwrap_or_default();
    (u64::try_from(count).unwrap_or(0), message)
}

/// The message of an error body: a `google.rpc.Status` in the body's encoding, else the text.
fn error_message(response: &ClientResponse) -> String {
    let Ok(body) = response_body(response) else {
        return String::new();
    };
    let message = match body_format(&response.headers) {
        BodyFormat::Json => serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| value.get("message").and_then(|message| message.as_str().map(str::to_owned))),
        BodyFormat::Msgpack => spanpipe_msgpack::Status::decode(&body).ok().map(|status| status.message),
        BodyFormat::Protobuf => RpcStatus::decode(body.as_slice()).ok().map(|status| status.message),
    };
    if let Some(message) = message.filter(|message| !message.is_empty()) {
        return message;
    }
    let text = String::from_utf8_lossy(&body);
    text.chars().take(256).collect()
}

fn read_http_outcome(endpoint: &Endpoint, response: &ClientResponse, now: SystemTime) -> Outcome {
    let status = response.status.as_u16();
    if response.status.is_success() {
        let partial = response_body(response).and_then(|body| {
            if body.is_empty() {
                return Ok((0, String::new()));
            }
            match body_format(&response.headers) {
                BodyFormat::Json => json_partial_success(&body),
                BodyFormat::Msgpack => spanpipe_msgpack::ExportResponse::decode(&body)
                    .map(|answer| rejected(answer.partial_success.map(|p| (p.rejected_spans, p.error_message))))
                    .map_err(|error| error.to_string()),
                BodyFormat::Protobuf => ExportTraceServiceResponse::decode(body.as_slice())
                    .map(|answer| rejected(answer.partial_success.map(|p| (p.rejected_spans, p.error_message))))
                    .map_err(|error| error.to_string()),
            }
        });
        return match partial {
            Ok((rejected_spans, message)) => Outcome::Delivered { rejected_spans, message },
            // The status says the spans arrived; an unreadable body cannot change that.
            Err(reason) => {
                tracing::debug!(endpoint = %endpoint, %reason, "ignoring an unreadable success body");
                Outcome::Delivered { rejected_spans: 0, message: String::new() }
            }
        };
    }
    let error = ExportError::Http { endpoint: endpoint.label.clone(), status, message: error_message(response) };
    if is_retryable(status) {
        Outcome::Retryable { error, server_delay: retry_after(&response.headers, now) }
    } else {
        Outcome::Permanent { error }
    }
}

#[cfg(test)]
mod tests {

    use spanpipe_transports::grpc_status::ExportTracePartialSuccess;

    use super::*;

    fn endpoint() -> Endpoint {
        parse_http_endpoint("http://127.0.0.1:4318", true).unwrap()
    }

    fn response(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> ClientResponse {
        ClientResponse::for_test(status, headers, None, body)
    }

    #[test]
    fn composes_the_traces_url_as_the_collector_does() {
        assert_eq!(parse_http_endpoint("http://host:4318", true).unwrap().path, "/v1/traces");
        assert_eq!(parse_http_endpoint("http://host:4318/", true).unwrap().path, "/v1/traces");
        assert_eq!(parse_http_endpoint("http://host:4318/otlp/", true).unwrap().path, "/otlp/v1/traces");
        assert_eq!(parse_http_endpoint("http://host/custom/path", false).unwrap().path, "/custom/path");
        assert_eq!(parse_http_endpoint("http://host", true).unwrap().port, 80);
        let https = parse_http_endpoint("https://host", true).unwrap();
        assert_eq!((https.port, https.https), (443, true));
        assert!(parse_http_endpoint("host:4318", true).is_err());
        assert!(parse_http_endpoint("ftp://host:4318", true).is_err());
    }

    #[test]
    fn validation_names_the_keys_to_change() {
        let paths = |config: OtlpHttpExporterConfig| -> Vec<String> {
            config.validate().into_iter().map(|error| error.path).collect()
        };
        assert_eq!(paths(OtlpHttpExporterConfig::default()), ["endpoint"]);
        assert_eq!(
            paths(OtlpHttpExporterConfig { traces_endpoint: "grpc://x/v1/traces".into(), ..Default::default() }),
            ["traces_endpoint"]
        );
        assert_eq!(
            paths(OtlpHttpExporterConfig {
                traces_endpoint: "https://x/v1/traces".into(),
                tls: TlsClientConfig { min_version: "1.4".into(), ..TlsClientConfig::default() },
                ..Default::default()
            }),
            ["tls.min_version"]
        );
        assert_eq!(
            paths(OtlpHttpExporterConfig {
                endpoint: "http://a:4318".into(),
                endpoints: vec!["http://b:4318".into()],
                ..Default::default()
            }),
            ["endpoints"]
        );
        assert!(paths(OtlpHttpExporterConfig { endpoint: "http://a:4318".into(), ..Default::default() }).is_empty());
        let empty_headers: OtlpHttpExporterConfig =
            serde_json::from_value(serde_json::json!({ "endpoint": "http://a:4318", "headers": null })).unwrap();
        assert!(empty_headers.headers.is_empty() && paths(empty_headers).is_empty(), "`headers:` left empty");
    }

    #[test]
    fn retryable_statuses_are_exactly_the_specifications() {
        for status in [400, 401, 403, 404, 405, 413, 415, 500, 501] {
            let outcome = read_http_outcome(&endpoint(), &response(status, &[], ""), SystemTime::now());
            assert!(matches!(outcome, Outcome::Permanent { .. }), "{status}");
        }
        for status in [429, 502, 503, 504] {
            let outcome = read_http_outcome(&endpoint(), &response(status, &[], ""), SystemTime::now());
            assert!(matches!(outcome, Outcome::Retryable { server_delay: None, .. }), "{status}");
        }
    }

    #[test]
    fn honours_retry_after_in_seconds_and_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let seconds = read_http_outcome(&endpoint(), &response(429, &[("retry-after", "7")], ""), now);
        assert!(
            matches!(seconds, Outcome::Retryable { server_delay: Some(delay), .. } if delay == Duration::from_secs(7))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let dated = read_http_outcome(&endpoint(), &response(503, &[("retry-after", &date)], ""), now);
        assert!(
            matches!(dated, Outcome::Retryable { server_delay: Some(delay), .. } if delay == Duration::from_secs(30))
        );
    }

    #[test]
    fn reads_partial_success_from_protobuf_and_json() {
        let answer = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 4, error_message: "too old".into() }),
        };
        let proto = read_http_outcome(
            &endpoint(),
            &response(200, &[("content-type", "application/x-protobuf")], answer.encode_to_vec()),
            SystemTime::now(),
        );
        assert!(matches!(proto, Outcome::Delivered { rejected_spans: 4, ref message } if message == "too old"));
        let json = read_http_outcome(
            &endpoint(),
            &response(
                200,
                &[("content-type", "application/json")],
                r#"{"partialSuccess":{"rejectedSpans":"5","errorMessage":"dup"}}"#,
            ),
            SystemTime::now(),
        );
        assert!(matches!(json, Outcome::Delivered { rejected_spans: 5, ref message } if message == "dup"));
        let empty = read_http_outcome(&endpoint(), &response(200, &[], ""), SystemTime::now());
        assert!(matches!(empty, Outcome::Delivered { rejected_spans: 0, .. }));
    }

    #[test]
    fn reads_partial_success_and_error_messages_from_msgpack() {
        let answer = spanpipe_msgpack::ExportResponse {
            partial_success: Some(spanpipe_msgpack::PartialSuccess {
                rejected_spans: 6,
                error_message: "clock skew".into(),
            }),
        };
        let partial = read_http_outcome(
            &endpoint(),
            &response(200, &[("content-type", "application/msgpack")], answer.encode()),
            SystemTime::now(),
        );
        assert!(matches!(partial, Outcome::Delivered { rejected_spans: 6, ref message } if message == "clock skew"));
        let status = spanpipe_msgpack::Status { code: 3, message: "span has no trace id".into(), details: Vec::new() };
        let outcome = read_http_outcome(
            &endpoint(),
            &response(400, &[("content-type", "application/x-msgpack; charset=binary")], status.encode()),
            SystemTime::now(),
        );
        assert!(
            matches!(outcome, Outcome::Permanent { error: ExportError::Http { status: 400, ref message, .. } } if message == "span has no trace id"),
            "{outcome:?}"
        );
    }

    #[test]
    fn msgpack_encoding_writes_the_msgpack_codec_and_probes_with_an_empty_map() {
        let batch = SpanBatch::decode(Bytes::from(spanpipe_testkit::realistic::encoded(3, 9))).unwrap();
        let config = OtlpHttpExporterConfig {
            encoding: HttpEncoding::Msgpack,
            compression: Compression::None,
            ..OtlpHttpExporterConfig::default()
        };
        let protocol = HttpProtocol::new(&config).unwrap();
        let payload = protocol.encode(&batch).unwrap();
        assert_eq!(spanpipe_msgpack::decode(&payload.body).unwrap().bytes(), batch.bytes());
        assert_eq!(protocol.probe_payload().body.as_ref(), [0x80]);
        assert!(spanpipe_msgpack::decode(&protocol.probe_payload().body).unwrap().is_empty());
        assert_eq!(protocol.request(&payload).headers()[CONTENT_TYPE], "application/msgpack");
    }

    #[test]
    fn error_messages_come_from_the_status_body() {
        let status = RpcStatus { code: 3, message: "span has no trace id".into(), details: Vec::new() };
        let outcome = read_http_outcome(
            &endpoint(),
            &response(400, &[("content-type", "application/x-protobuf")], status.encode_to_vec()),
            SystemTime::now(),
        );
        assert!(
            matches!(outcome, Outcome::Permanent { error: ExportError::Http { status: 400, ref message, .. } } if message == "span has no trace id"),
            "{outcome:?}"
        );
    }

    #[test]
    fn json_encoding_writes_otlp_json() {
        let batch = SpanBatch::decode(Bytes::from(spanpipe_testkit::realistic::encoded(2, 9))).unwrap();
        let config = OtlpHttpExporterConfig {
            encoding: HttpEncoding::Json,
            compression: Compression::None,
            ..OtlpHttpExporterConfig::default()
        };
        let payload = HttpProtocol::new(&config).unwrap().encode(&batch).unwrap();
        let decoded = spanpipe_codecs::OtlpJson.decode(payload.body).unwrap();
        // Field order may differ from the input's; the messages are equal.
        type Request = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        assert_eq!(
            Request::decode(decoded.bytes().as_ref()).unwrap(),
            Request::decode(batch.bytes().as_ref()).unwrap()
        );
    }
}
