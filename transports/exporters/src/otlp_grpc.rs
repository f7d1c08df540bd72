//! The `otlp` exporter: OTLP over gRPC (unary `TraceService/Export` over HTTP/2), with the
//! OpenTelemetry Collector's keys and defaults — TLS included: connections use TLS (ALPN `h2`)
//! unless `tls.insecure` is true, whatever the endpoint's scheme, and an `https://` endpoint uses
//! TLS even then, exactly as the Collector's `configgrpc` decides.
//!
//! The request body is the batch's own protobuf bytes behind the 5-byte gRPC frame header, sent
//! as two chunks in one vectored write when uncompressed. The answer is read as gRPC and the OTLP
//! specification say: `grpc-status` in the trailers (or in the headers of a trailers-only
//! answer), `grpc-message` percent-decoded, `RetryInfo` from `grpc-status-details-bin`, and
//! `partial_success` from the response message. Retryable are the codes the OTLP specification
//! lists — `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`, `UNAVAILABLE`, `DATA_LOSS`
//! — and `RESOURCE_EXHAUSTED` only when the server sent a `RetryInfo`; every other code is
//! permanent, exactly as the Collector's `otlp` exporter decides.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, TE, USER_AGENT};
use http::{HeaderMap, Method, Request, StatusCode};
use prost::Message as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::{ComponentConfig, FieldError, GoDuration};
use spanpipe_core::SpanBatch;

use crate::client::{
    secure_endpoints, ChunkedBody, ClientResponse, Endpoint, HttpVersion, PoolSettings, TlsRule, MAX_RESPONSE_BYTES,
};
use crate::compression::{compress, decompress};
use crate::connect_options;
use crate::network::{EncodeError, ExportError, Outcome, Payload, Protocol};
use crate::settings::{
    client_blocks, listed_endpoints, parse_keyed_endpoints, ClientBlocks, Compression, CompressionParams,
    FailoverConfig, KeepaliveConfig, NetworkExporterConfig, QueueConfig, RetryConfig, TlsClientConfig,
};
use spanpipe_transports::grpc_status::{ExportTraceServiceResponse, RpcStatus};
use spanpipe_transports::tls::{TlsError, ALPN_H2};

/// The method every OTLP/gRPC trace export calls.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Config of the `otlp` exporter.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpExporterConfig {
    /// `host:port` (or `http://host:port`, `https://host:port`) of the gRPC server. The scheme
    /// does not turn TLS off: `tls.insecure` does. Required unless `endpoints` is set. Defaults
    /// to empty.
    pub endpoint: String,
    /// spanpipe's failover list, instead of `endpoint`: the first is the primary, the others
    /// are used in order while it fails (see `failover`). Defaults to empty.
    pub endpoints: Vec<String>,
    /// When to fail over between `endpoints` and probe the primary. Defaults to the block's own
    /// defaults.
    pub failover: FailoverConfig,
    /// TLS settings, the Collector's `configtls` client keys: TLS with the system's CAs unless
    /// `insecure: true`. Applies to every entry of `endpoints`. Defaults to the block's own
    /// defaults.
    pub tls: TlsClientConfig,
    /// Compression of request messages: `gzip`, `zstd` or `none`. Defaults to gzip.
    pub compression: Compression,
    /// Level of the compression (spanpipe's addition for gRPC). Defaults to the block's own
    /// defaults.
    pub compression_params: CompressionParams,
    /// Metadata (headers) added to every request; `headers:` left empty is none. Defaults to none.
    #[serde(deserialize_with = "spanpipe_config::default_when_null")]
    pub headers: BTreeMap<String, String>,
    /// HTTP/2 keep-alive PINGs. Defaults to the block's own defaults.
    pub keepalive: KeepaliveConfig,
    /// Time limit of one export request, also sent as `grpc-timeout`. Defaults to 5s.
    pub timeout: GoDuration,
    /// Retries with exponential backoff. Defaults to the block's own defaults.
    pub retry_on_failure: RetryConfig,
    /// The bounded queue in front of the senders. Defaults to the block's own defaults.
    pub sending_queue: QueueConfig,
}

impl Default for OtlpExporterConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            endpoints: Vec::new(),
            failover: FailoverConfig::default(),
            tls: TlsClientConfig::default(),
            compression: Compression::Gzip,
            compression_params: CompressionParams::default(),
            headers: BTreeMap::new(),
            keepalive: KeepaliveConfig::default(),
            timeout: GoDuration::from_secs(5),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
        }
    }
}

impl NetworkExporterConfig for OtlpExporterConfig {
    fn parsed_endpoints(&self) -> Result<Vec<Endpoint>, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !self.endpoint.is_empty() && !self.endpoints.is_empty() {
            errors.push(FieldError::new("endpoints", "set either `endpoint` or `endpoints`, not both"));
        }
        let keyed: Vec<(String, &str)> = if self.endpoints.is_empty() {
            vec![("endpoint".to_owned(), self.endpoint.as_str())]
        } else {
            listed_endpoints(&self.endpoints).collect()
        };
        parse_keyed_endpoints(keyed, parse_grpc_endpoint, errors)
    }

    fn client_blocks(&self) -> ClientBlocks<'_> {
        client_blocks!(self)
    }

    /// HTTP/2: one multiplexed connection per core and endpoint, pinged as `keepalive` says.
    fn pool(&self) -> PoolSettings {
        PoolSettings {
            version: HttpVersion::Http2,
            connect: connect_options(self.timeout.0),
            keepalive: Some(self.keepalive.clone()),
            idle_timeout: Duration::MAX,
            max_idle: 0,
            reuse: true,
        }
    }

    /// gRPC's rule (`configgrpc`): TLS unless the `tls` block is `insecure`, whatever the
    /// scheme, and ALPN offers HTTP/2 only.
    fn secured_endpoints(&self, endpoints: Vec<Endpoint>) -> Result<Vec<Endpoint>, TlsError> {
        let mut endpoints = secure_endpoints(endpoints, &self.tls, TlsRule::UnlessInsecure, &[ALPN_H2])?;
        // grpc-go sends the name the certificate is checked against as the `:authority`.
        if self.tls.enables_tls() && !self.tls.server_name_override.is_empty() {
            let name = &self.tls.server_name_override;
            let authority = name.parse::<http::uri::Authority>().or_else(|_| format!("[{name}]").parse());
            if let Ok(authority) = authority {
                for endpoint in endpoints.iter_mut().filter(|endpoint| endpoint.tls.is_some()) {
                    endpoint.authority = authority.clone();
                }
            }
        }
        Ok(endpoints)
    }
}

impl ComponentConfig for OtlpExporterConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = self.network_errors();
        self.keepalive.validate(&mut errors);
        errors
    }
}

/// Parses a gRPC target as the Collector accepts it: `host:port`, optionally after `http://` or
/// `https://`.
fn parse_grpc_endpoint(text: &str) -> Result<Endpoint, String> {
    if text.is_empty() {
        return Err("must be set to the gRPC server's `host:port`".to_owned());
    }
    let https = text.starts_with("https://");
    let address = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://")).unwrap_or(text);
    let address = address.trim_end_matches('/');
    if address.contains("://") || address.starts_with("unix:") || address.starts_with("dns:") {
        return Err(format!("`{text}`: only `host:port` targets over TCP are supported"));
    }
    let authority: http::uri::Authority =
        address.parse().map_err(|error| format!("`{text}` is not a valid `host:port`: {error}"))?;
    let port = authority.port_u16().ok_or_else(|| format!("`{text}` needs a port, e.g. `{address}:4317`"))?;
    Ok(Endpoint {
        label: text.to_owned(),
        host: authority.host().trim_start_matches('[').trim_end_matches(']').to_owned(),
        port,
        authority,
        path: http::uri::PathAndQuery::from_static(EXPORT_PATH),
        https,
        tls: None,
    })
}

/// Formats `grpc-timeout` as gRPC's HTTP/2 mapping allows: at most 8 digits and a unit.
fn grpc_timeout(timeout: Duration) -> HeaderValue {
    let millis = timeout.as_millis();
    let text =
        if millis < 100_000_000 { format!("{millis}m") } else { format!("{}S", timeout.as_secs().min(99_999_999)) };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("99999999S"))
}

/// The gRPC side of the `otlp` exporter.
#[derive(Debug)]
pub(crate) struct GrpcProtocol {
    compression: Compression,
    level: i32,
    headers: HeaderMap,
}

impl GrpcProtocol {
    pub(crate) fn new(config: &OtlpExporterConfig) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        headers.insert(USER_AGENT, HeaderValue::from_static(crate::USER_AGENT));
        headers.insert(HeaderName::from_static("grpc-timeout"), grpc_timeout(config.timeout.0));
        if let Some(name) = config.compression.encoding_name() {
            headers.insert(HeaderName::from_static("grpc-encoding"), HeaderValue::from_static(name));
        }
        headers.extend(spanpipe_transports::config_headers::header_map(&config.headers));
        Self { compression: config.compression, level: config.compression_params.level, headers }
    }
}

fn frame_header(compressed: bool, len: usize) -> Result<Bytes, EncodeError> {
    let len = u32::try_from(len).map_err(|_| EncodeError::TooLarge(len))?;
    let mut header = BytesMut::with_capacity(5);
    header.put_u8(u8::from(compressed));
    header.put_u32(len);
    Ok(header.freeze())
}

impl Protocol for GrpcProtocol {
    fn encode(&self, batch: &SpanBatch) -> Result<Payload, EncodeError> {
        let body = match self.compression {
            Compression::None => batch.bytes().clone(),
            compression => compress(compression, self.level, batch.bytes())?,
        };
        let prefix = frame_header(self.compression != Compression::None, body.len())?;
        Ok(Payload { prefix: Some(prefix), body })
    }

    fn probe_payload(&self) -> Payload {
        Payload { prefix: Some(Bytes::from_static(&[0, 0, 0, 0, 0])), body: Bytes::new() }
    }

    fn request(&self, payload: &Payload) -> Request<ChunkedBody> {
        let mut request = Request::new(payload.to_body());
        *request.method_mut() = Method::POST;
        *request.headers_mut() = self.headers.clone();
        request
    }

    fn outcome(&self, endpoint: &Endpoint, response: ClientResponse) -> Outcome {
        read_grpc_outcome(endpoint, response)
    }
}

const OK: i32 = 0;
const UNKNOWN: i32 = 2;
const PERMISSION_DENIED: i32 = 7;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNIMPLEMENTED: i32 = 12;
const INTERNAL: i32 = 13;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

/// The gRPC code a non-200 HTTP status stands for (gRPC's "HTTP to gRPC status code mapping").
fn code_for_http_status(status: StatusCode) -> i32 {
    match status.as_u16() {
        400 => INTERNAL,
        401 => UNAUTHENTICATED,
        403 => PERMISSION_DENIED,
        404 => UNIMPLEMENTED,
        429 | 502 | 503 | 504 => UNAVAILABLE,
        _ => UNKNOWN,
    }
}

/// Whether the OTLP specification allows retrying `code` (given whether a `RetryInfo` came).
fn is_retryable(code: i32, has_retry_info: bool) -> bool {
    match code {
        // CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS
        1 | 4 | 10 | 11 | 14 | 15 => true,
        RESOURCE_EXHAUSTED => has_retry_info,
        _ => false,
    }
}

/// Decodes `grpc-message`'s percent-encoding; invalid escapes are kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn header_str<'a>(maps: [Option<&'a HeaderMap>; 2], name: &str) -> Option<&'a str> {
    maps.into_iter().flatten().find_map(|map| map.get(name)).and_then(|value| value.to_str().ok())
}

/// Reads the one message of a unary gRPC response body.
fn response_message(body: &[u8], headers: &HeaderMap) -> Result<Vec<u8>, String> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let [flag, a, b, c, d, message @ ..] = body else {
        return Err(format!("a gRPC frame needs 5 header bytes, got {}", body.len()));
    };
    let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
    let message = message.get(..len).ok_or_else(|| format!("frame announces {len} bytes, {} came", message.len()))?;
    if *flag == 0 {
        return Ok(message.to_vec());
    }
    let compression = match headers.get("grpc-encoding").and_then(|value| value.to_str().ok()) {
        Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        other => return Err(format!("compressed response with unsupported grpc-encoding {other:?}")),
    };
    decompress(compression, message, MAX_RESPONSE_BYTES).map_err(|error| error.to_string())
}

fn read_grpc_outcome(endpoint: &Endpoint, response: ClientResponse) -> Outcome {
    let label = || endpoint.label.clone();
    let maps = [response.trailers.as_ref(), Some(&response.headers)];
    let (code, message) = if response.status != StatusCode::OK {
        let code = code_for_http_status(response.status);
        (code, format!("HTTP status {}", response.status))
    } else {
        match header_str(maps, "grpc-status").map(str::parse::<i32>) {
            Some(Ok(code)) => (code, header_str(maps, "grpc-message").map(percent_decode).unwrap_or_default()),
            Some(Err(_)) => (UNKNOWN, "unparseable grpc-status".to_owned()),
            // gRPC reads a stream that ended without a status as INTERNAL.
            None => (INTERNAL, "the server sent no grpc-status".to_owned()),
        }
    };
    if code == OK {
        return match response_message(&response.body, &response.headers)
            .and_then(|message| ExportTraceServiceResponse::decode(message.as_slice()).map_err(|e| e.to_string()))
        {
            Ok(answer) => {
                let partial = answer.partial_success.unwrap_or_default();
                Outcome::Delivered {
                    rejected_spans: u64::try_from(partial.rejected_spans).unwrap_or(0),
                    message: partial.error_message,
                }
            }
            // The server said OK; what it sent beside cannot change that the spans arrived.
            Err(reason) => {
                tracing::debug!(endpoint = %endpoint, %reason, "ignoring an unreadable OK response message");
                Outcome::Delivered { rejected_spans: 0, message: String::new() }
            }
        };
    }
    let details = header_str(maps, "grpc-status-details-bin")
        .and_then(|text| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim_end_matches('=')).ok())
        .and_then(|bytes| RpcStatus::decode(bytes.as_slice()).ok());
    let server_delay = details.as_ref().and_then(RpcStatus::retry_delay);
    let error =
        ExportError::Grpc { endpoint: label(), code, name: spanpipe_transports::grpc_status::code_name(code), message };
    if is_retryable(code, server_delay.is_some()) {
        Outcome::Retryable { error, server_delay }
    } else {
        Outcome::Permanent { error }
    }
}

#[cfg(test)]
mod tests {
    use spanpipe_transports::grpc_status::{ExportTracePartialSuccess, ProtoAny, ProtoDuration, RetryInfo};

    use super::*;

    fn endpoint() -> Endpoint {
        parse_grpc_endpoint("127.0.0.1:4317").unwrap()
    }

    fn response(
        status: u16,
        headers: &[(&str, &str)],
        trailers: Option<&[(&str, &str)]>,
        body: Bytes,
    ) -> ClientResponse {
        ClientResponse::for_test(status, headers, trailers, body)
    }

    fn framed(message: &[u8]) -> Bytes {
        let mut body = frame_header(false, message.len()).unwrap().to_vec();
        body.extend_from_slice(message);
        Bytes::from(body)
    }

    #[test]
    fn parses_the_endpoint_forms_the_collector_accepts() {
        let plain = parse_grpc_endpoint("collector:4317").unwrap();
        assert_eq!((plain.host.as_str(), plain.port), ("collector", 4317));
        let with_scheme = parse_grpc_endpoint("http://127.0.0.1:4317/").unwrap();
        assert_eq!(with_scheme.absolute_uri().to_string(), format!("http://127.0.0.1:4317{EXPORT_PATH}"));
        assert!(!with_scheme.https);
        let ipv6 = parse_grpc_endpoint("[::1]:4317").unwrap();
        assert_eq!(ipv6.host, "::1");
        let https = parse_grpc_endpoint("https://collector.example:443").unwrap();
        assert_eq!((https.host.as_str(), https.port, https.https), ("collector.example", 443, true));
        for bad in ["", "collector", "https://collector", "unix:///tmp/socket", "dns:///collector:4317"] {
            assert!(parse_grpc_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_keys_to_change() {
        let config = OtlpExporterConfig { endpoint: "collector".into(), ..OtlpExporterConfig::default() };
        let paths: Vec<_> = config.validate().into_iter().map(|error| error.path).collect();
        assert_eq!(paths, ["endpoint"]);

        let both = OtlpExporterConfig {
            endpoint: "a:1".into(),
            endpoints: vec!["b:2".into(), "c".into()],
            tls: TlsClientConfig { insecure: true, ..TlsClientConfig::default() },
            ..OtlpExporterConfig::default()
        };
        let paths: Vec<_> = both.validate().into_iter().map(|error| error.path).collect();
        assert_eq!(paths, ["endpoints", "endpoints[1]"]);

        let bad_tls = OtlpExporterConfig {
            endpoint: "collector:4317".into(),
            tls: TlsClientConfig {
                cert_file: "client.pem".into(),
                server_name_override: "not a name".into(),
                ..TlsClientConfig::default()
            },
            ..OtlpExporterConfig::default()
        };
        let paths: Vec<_> = bad_tls.validate().into_iter().map(|error| error.path).collect();
        assert_eq!(paths, ["tls.key_file", "tls.server_name_override"]);

        // TLS by default, as in the Collector: nothing to add to an endpoint.
        for good in [
            OtlpExporterConfig { endpoint: "collector:4317".into(), ..OtlpExporterConfig::default() },
            OtlpExporterConfig {
                endpoint: "collector:4317".into(),
                tls: TlsClientConfig { insecure: true, ..TlsClientConfig::default() },
                ..OtlpExporterConfig::default()
            },
        ] {
            assert_eq!(good.validate(), []);
        }
    }

    #[test]
    fn frames_the_batch_with_the_compressed_flag_and_length() {
        let batch = SpanBatch::decode(Bytes::from(spanpipe_testkit::realistic::encoded(3, 1))).unwrap();
        let config = OtlpExporterConfig { compression: Compression::None, ..OtlpExporterConfig::default() };
        let payload = GrpcProtocol::new(&config).encode(&batch).unwrap();
        let prefix = payload.prefix.clone().unwrap();
        assert_eq!(prefix[0], 0);
        assert_eq!(u32::from_be_bytes(prefix[1..5].try_into().unwrap()) as usize, batch.encoded_len());
        assert_eq!(&payload.body, batch.bytes(), "uncompressed bodies share the batch's bytes");

        let gzip = GrpcProtocol::new(&OtlpExporterConfig::default()).encode(&batch).unwrap();
        assert_eq!(gzip.prefix.unwrap()[0], 1);
        assert_eq!(decompress(Compression::Gzip, &gzip.body, 1 << 20).unwrap(), batch.bytes().to_vec());
    }

    #[test]
    fn ok_with_partial_success_reports_rejected_spans() {
        let answer = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 2, error_message: "bad ids".into() }),
        };
        let outcome = read_grpc_outcome(
            &endpoint(),
            response(200, &[], Some(&[("grpc-status", "0")]), framed(&answer.encode_to_vec())),
        );
        assert!(
            matches!(outcome, Outcome::Delivered { rejected_spans: 2, ref message } if message == "bad ids"),
            "{outcome:?}"
        );
    }

    #[test]
    fn classifies_codes_as_the_otlp_specification_says() {
        let cases = [
            ("14", true),
            ("4", true),
            ("1", true),
            ("10", true),
            ("11", true),
            ("15", true),
            ("3", false),
            ("8", false),
            ("7", false),
            ("13", false),
            ("2", false),
        ];
        for (code, retryable) in cases {
            let outcome = read_grpc_outcome(&endpoint(), response(200, &[("grpc-status", code)], None, Bytes::new()));
            assert_eq!(matches!(outcome, Outcome::Retryable { .. }), retryable, "code {code}: {outcome:?}");
            assert_eq!(matches!(outcome, Outcome::Permanent { .. }), !retryable, "code {code}");
        }
    }

    #[test]
    fn resource_exhausted_with_retry_info_is_retried_after_the_delay() {
        let retry = RetryInfo { retry_delay: Some(ProtoDuration { seconds: 1, nanos: 0 }) };
        let status = RpcStatus {
            code: RESOURCE_EXHAUSTED,
            message: "busy".into(),
            details: vec![ProtoAny {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: retry.encode_to_vec(),
            }],
        };
        let details = base64::engine::general_purpose::STANDARD_NO_PAD.encode(status.encode_to_vec());
        let outcome = read_grpc_outcome(
            &endpoint(),
            response(
                200,
                &[],
                Some(&[("grpc-status", "8"), ("grpc-message", "busy%20now"), ("grpc-status-details-bin", &details)]),
                Bytes::new(),
            ),
        );
        match outcome {
            Outcome::Retryable { server_delay, error: ExportError::Grpc { message, .. } } => {
                assert_eq!(server_delay, Some(Duration::from_secs(1)));
                assert_eq!(message, "busy now");
            }
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn http_statuses_map_to_grpc_codes() {
        let unavailable = read_grpc_outcome(&endpoint(), response(503, &[], None, Bytes::new()));
        assert!(matches!(unavailable, Outcome::Retryable { .. }));
        let not_found = read_grpc_outcome(&endpoint(), response(404, &[], None, Bytes::new()));
        assert!(matches!(not_found, Outcome::Permanent { error: ExportError::Grpc { code: UNIMPLEMENTED, .. } }));
    }

    #[test]
    fn a_missing_status_is_internal() {
        let outcome = read_grpc_outcome(&endpoint(), response(200, &[], Some(&[]), Bytes::new()));
        assert!(matches!(outcome, Outcome::Permanent { error: ExportError::Grpc { code: INTERNAL, .. } }));
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%20b%zz%2"), "a b%zz%2");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
    }

    #[test]
    fn grpc_timeout_fits_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_secs(5)), "5000m");
        assert_eq!(grpc_timeout(Duration::from_secs(1_000_000)), "1000000S");
    }
}
