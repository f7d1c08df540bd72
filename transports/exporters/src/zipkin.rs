//! The `zipkin` exporter: Zipkin v2 spans (`POST` to the configured URL, usually
//! `http://zipkin:9411/api/v2/spans`) as JSON or as `zipkin.proto3.ListOfSpans`, with the
//! OpenTelemetry Collector zipkin exporter's keys and defaults.
//!
//! It is the `otlphttp` exporter's engine with another body: the same queue, sender tasks,
//! keep-alive connection pool, TLS, compression, retries, failover and counters (the private
//! `network` module), and a [`Protocol`] that differs only in how a batch becomes a body (the
//! `spanpipe_zipkin` encoders, which map OTLP to Zipkin as the specification says), its
//! `Content-Type`, its URL (the `endpoint` as written: the Collector appends no path) and how an
//! answer is read.
//!
//! ## Answers
//!
//! Zipkin answers `202 Accepted` with an empty body; any 2xx is success, and there is no partial
//! success to read. `5xx`, `408 Request Timeout` and `429 Too Many Requests` are retried as
//! `retry_on_failure` says, at least as late as a `Retry-After` header asks (seconds or an HTTP
//! date), as are connection failures and timeouts. Every other answer — the remaining `4xx`, and
//! `3xx` since redirects are not followed — drops the batch and counts it as rejected.
//!
//! The Collector's zipkin exporter retries every non-2xx answer instead. A `400` from Zipkin means
//! it could not decode the body; the same bytes would be refused again for up to
//! `retry_on_failure.max_elapsed_time` (five minutes by default), holding a sender the whole time.
//! This exporter reads statuses the way HTTP defines them and the Collector's own `otlphttp`
//! exporter does: a client error is final unless it says "later".

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::{ComponentConfig, FieldError, GoDuration};
use spanpipe_core::SpanBatch;

use crate::client::{ChunkedBody, ClientResponse, Endpoint, PoolSettings};
use crate::http1_pool;
use crate::http_post::HttpPost;
use crate::network::{EncodeError, ExportError, Outcome, Payload, Protocol};
use crate::otlp_http::{parse_http_endpoint, response_body, retry_after};
use crate::settings::{
    client_blocks, listed_endpoints, parse_keyed_endpoints, ClientBlocks, Compression, CompressionParams,
    FailoverConfig, NetworkExporterConfig, QueueConfig, RetryConfig, TlsClientConfig,
};

/// The Zipkin server's spans API, for docs and examples: the Collector takes the whole URL from
/// `endpoint`.
pub const ZIPKIN_SPANS_PATH: &str = "/api/v2/spans";

/// How much of an error body is kept for the log.
const ERROR_TEXT_CHARS: usize = 256;

/// Body format of the `zipkin` exporter, as the Collector's `format` key spells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ZipkinFormat {
    /// Zipkin v2 JSON, a JSON array of spans (`application/json`).
    #[default]
    Json,
    /// Zipkin v2 protobuf, `zipkin.proto3.ListOfSpans` (`application/x-protobuf`).
    Proto,
}

impl ZipkinFormat {
    /// The `Content-Type` of request bodies, the one zipkin-go's serializers declare.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Proto => "application/x-protobuf",
        }
    }

    /// A list without spans, the failover probe: `[]` in JSON, no bytes in protobuf.
    fn empty_list(self) -> &'static [u8] {
        match self {
            Self::Json => b"[]",
            Self::Proto => b"",
        }
    }
}

/// Config of the `zipkin` exporter: the Collector's keys (its `confighttp` client keys as the
/// `otlphttp` exporter has them, `format`, `default_service_name`, `sending_queue`,
/// `retry_on_failure`), plus spanpipe's `endpoints` and `failover`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ZipkinExporterConfig {
    /// The URL spans are posted to, as it is (`http://zipkin:9411/api/v2/spans`); `https://`
    /// URLs use TLS. Required unless `endpoints` is set. Defaults to empty.
    pub endpoint: String,
    /// spanpipe's failover list of URLs, instead of `endpoint`: the first is the primary, the
    /// others are used in order while it fails (see `failover`). Defaults to empty.
    pub endpoints: Vec<String>,
    /// When to fail over between `endpoints` and probe the primary (with an empty span list).
    /// Defaults to the block's own defaults.
    pub failover: FailoverConfig,
    /// Body format: `json` or `proto`. Defaults to json.
    pub format: ZipkinFormat,
    /// The `localEndpoint.serviceName` of spans whose resource has no `service.name`. Defaults to
    /// `<missing service name>`.
    pub default_service_name: String,
    /// TLS settings for `https://` URLs, the Collector's `configtls` client keys (`http://` URLs
    /// are plaintext whatever they say). Defaults to the block's own defaults.
    pub tls: TlsClientConfig,
    /// Compression of request bodies: `gzip`, `zstd` or `none` (Zipkin servers read gzip).
    /// Defaults to none, as the Collector's HTTP client.
    pub compression: Compression,
    /// Level of the compression. Defaults to the block's own defaults.
    pub compression_params: CompressionParams,
    /// Headers added to every request; `headers:` left empty is none. Defaults to none.
    #[serde(deserialize_with = "spanpipe_config::default_when_null")]
    pub headers: BTreeMap<String, String>,
    /// Time limit of one request. Defaults to 5s.
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

impl Default for ZipkinExporterConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            endpoints: Vec::new(),
            failover: FailoverConfig::default(),
            format: ZipkinFormat::Json,
            default_service_name: spanpipe_zipkin::DEFAULT_SERVICE_NAME.to_owned(),
            tls: TlsClientConfig::default(),
            compression: Compression::None,
            compression_params: CompressionParams::default(),
            headers: BTreeMap::new(),
            timeout: GoDuration::from_secs(5),
            idle_conn_timeout: GoDuration::from_secs(90),
            max_idle_conns: 100,
            disable_keep_alives: false,
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
        }
    }
}

impl NetworkExporterConfig for ZipkinExporterConfig {
    /// The URLs as written: the Collector appends no path to a Zipkin `endpoint`.
    fn parsed_endpoints(&self) -> Result<Vec<Endpoint>, Vec<FieldError>> {
        let mut errors = Vec::new();
        let keyed: Vec<(String, &str)> = if self.endpoints.is_empty() {
            if self.endpoint.is_empty() {
                errors.push(FieldError::new(
                    "endpoint",
                    format!("must be set to the Zipkin spans URL, such as `http://zipkin:9411{ZIPKIN_SPANS_PATH}`"),
                ));
                Vec::new()
            } else {
                vec![("endpoint".to_owned(), self.endpoint.as_str())]
            }
        } else {
            if !self.endpoint.is_empty() {
                errors.push(FieldError::new("endpoints", "set either `endpoints` or `endpoint`, not both"));
            }
            listed_endpoints(&self.endpoints).collect()
        };
        parse_keyed_endpoints(keyed, |text| parse_http_endpoint(text, false), errors)
    }

    fn client_blocks(&self) -> ClientBlocks<'_> {
        client_blocks!(self)
    }

    fn pool(&self) -> PoolSettings {
        http1_pool(self.timeout.0, self.idle_conn_timeout.0, self.max_idle_conns, self.disable_keep_alives)
    }
}

impl ComponentConfig for ZipkinExporterConfig {
    fn validate(&self) -> Vec<FieldError> {
        self.network_errors()
    }
}

/// The Zipkin side of the `zipkin` exporter.
#[derive(Debug)]
pub(crate) struct ZipkinProtocol {
    format: ZipkinFormat,
    default_service_name: String,
    post: HttpPost,
    probe: Payload,
}

impl ZipkinProtocol {
    pub(crate) fn new(config: &ZipkinExporterConfig) -> Result<Self, EncodeError> {
        let post = HttpPost::new(
            config.format.content_type(),
            config.compression,
            config.compression_params.level,
            &config.headers,
        );
        let probe = post.payload(Bytes::from_static(config.format.empty_list()))?;
        Ok(Self { format: config.format, default_service_name: config.default_service_name.clone(), post, probe })
    }
}

impl Protocol for ZipkinProtocol {
    fn encode(&self, batch: &SpanBatch) -> Result<Payload, EncodeError> {
        // Zipkin JSON repeats keys and writes ids in hex: about twice the OTLP protobuf size.
        let body = match self.format {
            ZipkinFormat::Json => {
                let mut out = String::with_capacity(batch.bytes().len() * 2);
                spanpipe_zipkin::encode_json(batch, &self.default_service_name, &mut out);
                Bytes::from(out.into_bytes())
            }
            ZipkinFormat::Proto => {
                let mut out = Vec::with_capacity(batch.bytes().len());
                spanpipe_zipkin::encode_proto(batch, &self.default_service_name, &mut out);
                Bytes::from(out)
            }
        };
        self.post.payload(body)
    }

    fn probe_payload(&self) -> Payload {
        self.probe.clone()
    }

    fn request(&self, payload: &Payload) -> http::Request<ChunkedBody> {
        self.post.request(payload)
    }

    fn outcome(&self, endpoint: &Endpoint, response: ClientResponse) -> Outcome {
        read_zipkin_outcome(endpoint, &response, SystemTime::now())
    }
}

/// Whether an answer with this status says "try again later": server errors, `408` and `429`.
fn is_retryable(status: u16) -> bool {
    status >= 500 || matches!(status, 408 | 429)
}

/// The start of an error body as text: Zipkin servers answer errors in plain text.
fn error_text(response: &ClientResponse) -> String {
    let body = response_body(response).unwrap_or_default();
    String::from_utf8_lossy(&body).trim().chars().take(ERROR_TEXT_CHARS).collect()
}

fn read_zipkin_outcome(endpoint: &Endpoint, response: &ClientResponse, now: SystemTime) -> Outcome {
    if response.status.is_success() {
        return Outcome::Delivered { rejected_spans: 0, message: String::new() };
    }
    let status = response.status.as_u16();
    let error = ExportError::Http { endpoint: endpoint.label.clone(), status, message: error_text(response) };
    if is_retryable(status) {
        Outcome::Retryable { error, server_delay: retry_after(&response.headers, now) }
    } else {
        Outcome::Permanent { error }
    }
}

#[cfg(test)]
mod tests {
    use http::header::CONTENT_TYPE;
    use std::time::Duration;

    use spanpipe_codecs::Codec as _;

    use super::*;

    fn endpoint() -> Endpoint {
        parse_http_endpoint("http://127.0.0.1:9411/api/v2/spans", false).unwrap()
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &'static str) -> ClientResponse {
        ClientResponse::for_test(status, headers, None, body)
    }

    fn outcome(status: u16, headers: &[(&str, &str)]) -> Outcome {
        read_zipkin_outcome(&endpoint(), &response(status, headers, "Cannot decode spans"), SystemTime::now())
    }

    #[test]
    fn the_endpoint_is_used_as_written() {
        let config = |endpoint: &str| ZipkinExporterConfig { endpoint: endpoint.to_owned(), ..Default::default() };
        let parsed = config("http://zipkin:9411/api/v2/spans").parsed_endpoints().unwrap();
        assert_eq!((parsed[0].path.as_str(), parsed[0].port), (ZIPKIN_SPANS_PATH, 9411));
        let bare = config("https://zipkin").parsed_endpoints().unwrap();
        assert_eq!((bare[0].path.as_str(), bare[0].port, bare[0].https), ("/", 443, true));
    }

    #[test]
    fn defaults_are_the_collectors() {
        let config = ZipkinExporterConfig::default();
        assert_eq!(config.format, ZipkinFormat::Json);
        assert_eq!(config.default_service_name, "<missing service name>");
        assert_eq!((config.timeout.0, config.compression), (Duration::from_secs(5), Compression::None));
        assert_eq!((config.idle_conn_timeout.0, config.max_idle_conns), (Duration::from_secs(90), 100));
        assert_eq!((config.sending_queue, config.retry_on_failure), (QueueConfig::default(), RetryConfig::default()));
    }

    #[test]
    fn validation_names_the_keys_to_change() {
        let paths = |config: ZipkinExporterConfig| -> Vec<String> {
            config.validate().into_iter().map(|error| error.path).collect()
        };
        assert_eq!(paths(ZipkinExporterConfig::default()), ["endpoint"]);
        assert_eq!(paths(ZipkinExporterConfig { endpoint: "zipkin:9411".into(), ..Default::default() }), ["endpoint"]);
        assert_eq!(
            paths(ZipkinExporterConfig {
                endpoint: "http://a:9411/api/v2/spans".into(),
                endpoints: vec!["http://b:9411/api/v2/spans".into(), "udp://c".into()],
                timeout: GoDuration::from_secs(0),
                ..Default::default()
            }),
            ["endpoints", "endpoints[1]", "timeout"]
        );
        assert!(paths(ZipkinExporterConfig { endpoint: "http://a:9411/api/v2/spans".into(), ..Default::default() })
            .is_empty());
    }

    #[test]
    fn any_2xx_is_success() {
        for status in [200, 201, 202, 204] {
            assert!(matches!(outcome(status, &[]), Outcome::Delivered { rejected_spans: 0, .. }), "{status}");
        }
    }

    #[test]
    fn server_errors_timeouts_and_throttling_are_retried_other_answers_are_final() {
        for status in [500, 502, 503, 504, 408, 429] {
            assert!(matches!(outcome(status, &[]), Outcome::Retryable { server_delay: None, .. }), "{status}");
        }
        for status in [301, 307, 400, 401, 403, 404, 413, 415] {
            let Outcome::Permanent { error: ExportError::Http { status: got, message, .. } } = outcome(status, &[])
            else {
                panic!("{status} should be permanent");
            };
            assert_eq!((got, message.as_str()), (status, "Cannot decode spans"));
        }
    }

    #[test]
    fn retry_after_sets_the_least_wait() {
        let Outcome::Retryable { server_delay, .. } = outcome(429, &[("retry-after", "3")]) else {
            panic!("429 is retryable");
        };
        assert_eq!(server_delay, Some(Duration::from_secs(3)));
    }

    #[test]
    fn bodies_are_the_zipkin_codecs_and_probes_are_empty_lists() {
        let batch = SpanBatch::decode(Bytes::from(spanpipe_testkit::realistic::encoded(4, 7))).unwrap();
        for format in [ZipkinFormat::Json, ZipkinFormat::Proto] {
            let config = ZipkinExporterConfig { format, default_service_name: "fallback".into(), ..Default::default() };
            let protocol = ZipkinProtocol::new(&config).unwrap();
            let payload = protocol.encode(&batch).unwrap();
            let (decoded, expected) = match format {
                ZipkinFormat::Json => {
                    let codec = spanpipe_zipkin::ZipkinV2Json::default().with_default_service_name("fallback");
                    (codec.decode(payload.body.clone()).unwrap(), codec.encode(&batch).unwrap())
                }
                ZipkinFormat::Proto => {
                    let codec = spanpipe_zipkin::ZipkinV2Proto::default().with_default_service_name("fallback");
                    (codec.decode(payload.body.clone()).unwrap(), codec.encode(&batch).unwrap())
                }
            };
            assert_eq!(payload.body, expected, "{format:?}: the codec's own encoding");
            assert_eq!(decoded.len(), batch.len());
            assert_eq!(protocol.request(&payload).headers()[CONTENT_TYPE], format.content_type());
            assert_eq!(protocol.probe_payload().body.as_ref(), format.empty_list());
        }
    }
}
