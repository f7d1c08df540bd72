//! The `otlp` receiver's configuration, key for key as the OpenTelemetry Collector's.
//!
//! A Collector config that sets only keys spanpipe implements loads unchanged and means the
//! same. Keys the Collector has that spanpipe does not implement (`auth`, `middlewares`, …) are
//! accepted by the parser so that validation can refuse them by name with a reason, instead of a
//! bare "unknown field". Where spanpipe's default differs from the Collector's `otlp` receiver,
//! the field's documentation says so and why.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use spanpipe_config::{ComponentConfig, FieldError, GoDuration};

use crate::cors::CorsConfig;
use crate::tls::TlsServerConfig;

/// Configuration of the `otlp` receiver: which protocols to serve and how.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtlpReceiverConfig {
    /// The protocols to serve; at least one of `grpc` and `http` must be present. A protocol is
    /// served when its section is present, even empty (`grpc:`), with its defaults. Defaults to
    /// neither (which validation refuses, as the Collector does).
    #[serde(default)]
    pub protocols: Protocols,
}

/// The protocol sections of the `otlp` receiver.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Protocols {
    /// OTLP/gRPC (`TraceService/Export` over HTTP/2). Served when present. Defaults to absent.
    #[serde(
        default,
        deserialize_with = "spanpipe_config::enabled_when_present",
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc: Option<GrpcServerConfig>,
    /// OTLP/HTTP (`POST /v1/traces` over HTTP/1.1 and h2c). Served when present. Defaults to
    /// absent.
    #[serde(
        default,
        deserialize_with = "spanpipe_config::enabled_when_present",
        skip_serializing_if = "Option::is_none"
    )]
    pub http: Option<HttpServerConfig>,
}

/// A key the OpenTelemetry Collector has and spanpipe does not implement. Any value parses, so
/// that validation can name the key and say why it is refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotImplemented;

impl<'de> Deserialize<'de> for NotImplemented {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Self)
    }
}

impl Serialize for NotImplemented {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl JsonSchema for NotImplemented {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NotImplemented".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A Collector key spanpipe does not implement; validation refuses it."
        })
    }
}

/// Settings of the OTLP/gRPC server (the Collector's `configgrpc.ServerConfig`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcServerConfig {
    /// Address to listen on, `host:port`; the host is an IP address, `localhost` (127.0.0.1) or
    /// empty (all interfaces). The Collector's current default (older Collectors listened on
    /// `0.0.0.0:4317`). Defaults to `localhost:4317`.
    pub endpoint: String,
    /// Network to listen on: `tcp`, `tcp4` or `tcp6` (the address decides the family). Defaults
    /// to `tcp`.
    pub transport: String,
    /// Largest request message accepted, in MiB, after decompression; 0 means gRPC's default of
    /// 4. Larger messages are answered `RESOURCE_EXHAUSTED`. Defaults to 4.
    pub max_recv_msg_size_mib: u64,
    /// Most concurrent requests (HTTP/2 streams) per connection; 0 means spanpipe's bound of 100.
    /// The Collector's 0 means unlimited; spanpipe bounds it because every open stream can hold
    /// a request of up to `max_recv_msg_size_mib` in memory. Defaults to 0 (100 streams).
    pub max_concurrent_streams: u32,
    /// Receive buffer per connection, in bytes: how much one `recv` can take from the kernel.
    /// Defaults to 524288 (512 KiB).
    pub read_buffer_size: usize,
    /// HTTP/2 keep-alive and connection lifetime. Defaults to the gRPC defaults below.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<GrpcKeepaliveConfig>,
    /// Most time from a connection's first byte (or the end of its previous request) to a
    /// complete request header block; the connection is closed when it runs out. spanpipe's
    /// addition (gRPC servers in Go bound this with their connection timeout). 0 disables.
    /// Defaults to "1m".
    pub read_header_timeout: GoDuration,
    /// Most time to receive a whole request, headers and message; the request is answered
    /// `DEADLINE_EXCEEDED` when it runs out, so a client sending one byte a second cannot hold
    /// a stream. spanpipe's addition. 0 disables. Defaults to "1m".
    pub read_timeout: GoDuration,
    /// Not implemented: responses are a few bytes written straight to the socket.
    /// Refused when present. Defaults to absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_buffer_size: Option<NotImplemented>,
    /// TLS: when present the port speaks TLS only, offering `h2` by ALPN (gRPC clients require
    /// it), with this certificate and, with `client_ca_file`, mutual TLS. The handshake must
    /// complete within `read_header_timeout` (or `read_timeout` when that is 0; unbounded when
    /// both are). Defaults to absent (plaintext).
    #[serde(
        default,
        deserialize_with = "spanpipe_config::enabled_when_present",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls: Option<TlsServerConfig>,
    /// Not implemented: authenticator extensions do not exist in spanpipe.
    /// Refused when present. Defaults to absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<NotImplemented>,
    /// Propagating request metadata to the pipeline is not implemented: `true` is refused,
    /// `false` accepted. Defaults to false.
    pub include_metadata: bool,
    /// Not implemented: middleware extensions do not exist in spanpipe.
    /// Refused when present. Defaults to absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middlewares: Option<NotImplemented>,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        Self {
            endpoint: "localhost:4317".to_owned(),
            transport: "tcp".to_owned(),
            max_recv_msg_size_mib: 4,
            max_concurrent_streams: 0,
            read_buffer_size: 512 * 1024,
            keepalive: None,
            read_header_timeout: GoDuration::from_secs(60),
            read_timeout: GoDuration::from_secs(60),
            write_buffer_size: None,
            tls: None,
            auth: None,
            include_metadata: false,
            middlewares: None,
        }
    }
}

/// gRPC keep-alive settings (the Collector's `configgrpc.KeepaliveServerConfig`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcKeepaliveConfig {
    /// Pings and connection lifetime. Defaults to gRPC's defaults (see the fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_parameters: Option<GrpcKeepaliveServerParameters>,
    /// Not implemented: the HTTP/2 stack answers every ping and cannot police their rate.
    /// Refused when present. Defaults to absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforcement_policy: Option<NotImplemented>,
}

/// gRPC's `keepalive.ServerParameters`; zero or absent means gRPC's default for each.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcKeepaliveServerParameters {
    /// Close a connection (gracefully, with GOAWAY) after it has had no request in flight this
    /// long. gRPC's default is infinity; spanpipe's is "5m", so that idle connections do not
    /// accumulate on a core forever. Defaults to "5m".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connection_idle: Option<GoDuration>,
    /// Close a connection gracefully once it is this old, so that clients rebalance across
    /// cores and instances. Defaults to infinity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connection_age: Option<GoDuration>,
    /// After `max_connection_age`, how long in-flight requests may take before the connection
    /// is closed outright. Defaults to infinity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connection_age_grace: Option<GoDuration>,
    /// Ping the client after this long without activity to check the connection is alive.
    /// Defaults to "2h".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<GoDuration>,
    /// Close the connection when a ping is not answered within this time. Defaults to "20s".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
}

/// Settings of the OTLP/HTTP server (the Collector's `confighttp.ServerConfig` plus the OTLP
/// receiver's URL paths).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    /// Address to listen on, `host:port`; the host is an IP address, `localhost` (127.0.0.1) or
    /// empty (all interfaces). The Collector's current default. Defaults to `localhost:4318`.
    pub endpoint: String,
    /// URL path that receives traces; a leading `/` is added when missing. Defaults to
    /// `/v1/traces`.
    pub traces_url_path: String,
    /// Largest request body accepted, in bytes, both as received and after decompression;
    /// larger requests are answered 413. Defaults to 20971520 (20 MiB).
    pub max_request_body_size: u64,
    /// Content encodings accepted (`""`/`identity` for none, `gzip`, `zstd`, `zlib`,
    /// `deflate`); requests in others are answered 415. The Collector's default also lists
    /// `snappy`, which spanpipe does not decode and refuses here. Defaults to
    /// `["", "gzip", "zstd", "zlib", "deflate"]`.
    pub compression_algorithms: Vec<String>,
    /// Most time from a connection's first byte (or the end of its previous request) to a
    /// complete request header block; the connection is closed when it runs out. 0 disables.
    /// The Collector's `otlp` receiver leaves this unlimited for backward compatibility;
    /// spanpipe uses confighttp's own default so a slow client cannot hold a connection.
    /// Defaults to "1m".
    pub read_header_timeout: GoDuration,
    /// Most time to receive a whole request, headers and body; the request is answered 408 when
    /// it runs out, so one byte a second cannot hold a connection. 0 disables. The Collector's
    /// default is unlimited; spanpipe bounds it. Defaults to "1m".
    pub read_timeout: GoDuration,
    /// Most time a response may wait for the client to read it; the connection is closed when
    /// it runs out. 0 disables. confighttp's default (the Collector's `otlp` receiver disables
    /// it). Defaults to "30s".
    pub write_timeout: GoDuration,
    /// Close a keep-alive connection after it has waited this long for the next request. The
    /// older spelling of `keepalive.idle_timeout`; setting both is an error. 0 disables.
    /// confighttp's default (the Collector's `otlp` receiver disables it). Defaults to "1m".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<GoDuration>,
    /// The older spelling of `keepalive.enabled`; setting both is an error. Defaults to true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alives_enabled: Option<bool>,
    /// HTTP keep-alive. Defaults to enabled with a "1m" idle timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<HttpKeepaliveConfig>,
    /// TLS: when present the port speaks TLS only (HTTP/1.1 and HTTP/2, offered by ALPN), with
    /// this certificate and, with `client_ca_file`, mutual TLS. The handshake must complete
    /// within `read_header_timeout` (or `read_timeout` when that is 0; unbounded when both are).
    /// Defaults to absent (plaintext).
    #[serde(
        default,
        deserialize_with = "spanpipe_config::enabled_when_present",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls: Option<TlsServerConfig>,
    /// Cross-origin resource sharing, so web pages served from other origins can send spans
    /// (see [`crate::cors`]): on when `allowed_origins` lists an origin; absent, `null` or
    /// without origins, off. Defaults to absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsConfig>,
    /// Not implemented: authenticator extensions do not exist in spanpipe.
    /// Refused when present. Defaults to absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<NotImplemented>,
    /// Propagating request metadata to the pipeline is not implemented: `true` is refused,
    /// `false` accepted. Defaults to false.
    pub include_metadata: bool,
    /// Headers added to every response of the listener (`name: value`), preflights and
    /// failures included; a header the response already has (its `Content-Type`, CORS's) is
    /// kept as it is, as in the Collector. Headers that frame the HTTP message
    /// (`Content-Length`, `Transfer-Encoding`, `Connection`, …) are refused. Defaults to none.
    #[serde(deserialize_with = "spanpipe_config::default_when_null", skip_serializing_if = "BTreeMap::is_empty")]
    pub response_headers: BTreeMap<String, String>,
    /// Not implemented: middleware extensions do not exist in spanpipe.
    /// Refused when present. Defaults to absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middlewares: Option<NotImplemented>,
    /// Not implemented: spanpipe receives traces only.
    /// Refused when present. Defaults to absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_url_path: Option<NotImplemented>,
    /// Not implemented: spanpipe receives traces only.
    /// Refused when present. Defaults to absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs_url_path: Option<NotImplemented>,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        Self {
            endpoint: "localhost:4318".to_owned(),
            traces_url_path: "/v1/traces".to_owned(),
            max_request_body_size: 20 * 1024 * 1024,
            compression_algorithms: ["", "gzip", "zstd", "zlib", "deflate"].map(str::to_owned).to_vec(),
            read_header_timeout: GoDuration::from_secs(60),
            read_timeout: GoDuration::from_secs(60),
            write_timeout: GoDuration::from_secs(30),
            idle_timeout: None,
            keep_alives_enabled: None,
            keepalive: None,
            tls: None,
            cors: None,
            auth: None,
            include_metadata: false,
            response_headers: BTreeMap::new(),
            middlewares: None,
            metrics_url_path: None,
            logs_url_path: None,
        }
    }
}

/// HTTP keep-alive settings (the Collector's `confighttp.KeepaliveServerConfig`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpKeepaliveConfig {
    /// Keep connections open between requests; `false` closes each after its response.
    /// Defaults to true.
    pub enabled: bool,
    /// Close a connection after it has waited this long for the next request. 0 disables.
    /// Defaults to "1m".
    pub idle_timeout: GoDuration,
}

impl Default for HttpKeepaliveConfig {
    fn default() -> Self {
        Self { enabled: true, idle_timeout: GoDuration::from_secs(60) }
    }
}

/// Headers that say how an HTTP message is framed or its connection kept: the server sets them,
/// and one set by `response_headers` would break the exchange.
const FRAMING_HEADERS: [&str; 8] =
    ["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "proxy-connection"];

/// Content encodings the HTTP receiver can decode, by their `compression_algorithms` name.
pub(crate) const HTTP_ENCODINGS: &[&str] = &["", "identity", "gzip", "zstd", "zlib", "deflate"];

/// Turns an `endpoint` into an address without touching the network: the host must be an IP
/// literal, `localhost` (127.0.0.1, as Go's listener picks) or empty (all interfaces).
pub(crate) fn parse_endpoint(endpoint: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = endpoint.parse::<SocketAddr>() {
        return Ok(address);
    }
    let Some((host, port)) = endpoint.rsplit_once(':') else {
        return Err(format!("`{endpoint}` is not `host:port`"));
    };
    let port: u16 = port.parse().map_err(|_| format!("`{port}` in `{endpoint}` is not a port number"))?;
    let ip = match host {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        other => other.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| {
            format!("host `{other}` in `{endpoint}` must be an IP address, `localhost` or empty (all interfaces)")
        })?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// A leading `/` added when missing, as the Collector does.
pub(crate) fn sanitized_url_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

fn refuse_include_metadata(errors: &mut Vec<FieldError>, include_metadata: bool) {
    if include_metadata {
        errors.push(FieldError::new(
            "include_metadata",
            "`include_metadata: true` is not supported by spanpipe: request metadata is not propagated; remove it",
        ));
    }
}

fn validate_tls(errors: &mut Vec<FieldError>, tls: Option<&TlsServerConfig>) {
    if let Some(tls) = tls {
        errors.extend(prefixed("tls", tls.validate()));
    }
}

fn not_implemented(errors: &mut Vec<FieldError>, path: &str, value: Option<&NotImplemented>, why: &str) {
    if value.is_some() {
        errors.push(FieldError::new(path, format!("`{path}` is not supported by spanpipe: {why}; remove it")));
    }
}

impl GrpcServerConfig {
    /// Largest accepted message, in bytes.
    pub(crate) fn max_message_size(&self) -> usize {
        let mib = if self.max_recv_msg_size_mib == 0 { 4 } else { self.max_recv_msg_size_mib };
        usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }

    /// The concurrent stream bound in force.
    pub(crate) fn concurrent_streams(&self) -> u32 {
        if self.max_concurrent_streams == 0 {
            100
        } else {
            self.max_concurrent_streams
        }
    }

    fn server_parameter(
        &self,
        pick: impl Fn(&GrpcKeepaliveServerParameters) -> Option<GoDuration>,
    ) -> Option<Duration> {
        self.keepalive.as_ref()?.server_parameters.as_ref().and_then(pick).map(Duration::from).filter(|d| !d.is_zero())
    }

    /// `max_connection_idle` in force (spanpipe's default: 5 minutes).
    pub(crate) fn max_connection_idle(&self) -> Duration {
        self.server_parameter(|p| p.max_connection_idle).unwrap_or(Duration::from_secs(300))
    }

    /// `max_connection_age`, if any.
    pub(crate) fn max_connection_age(&self) -> Option<Duration> {
        self.server_parameter(|p| p.max_connection_age)
    }

    /// `max_connection_age_grace`, if any.
    pub(crate) fn max_connection_age_grace(&self) -> Option<Duration> {
        self.server_parameter(|p| p.max_connection_age_grace)
    }

    /// Keep-alive ping interval (gRPC's default: 2 hours).
    pub(crate) fn keepalive_time(&self) -> Duration {
        self.server_parameter(|p| p.time).unwrap_or(Duration::from_secs(2 * 3600))
    }

    /// Keep-alive ping timeout (gRPC's default: 20 seconds).
    pub(crate) fn keepalive_timeout(&self) -> Duration {
        self.server_parameter(|p| p.timeout).unwrap_or(Duration::from_secs(20))
    }

    pub(crate) fn validate_into(&self, errors: &mut Vec<FieldError>) {
        if let Err(message) = parse_endpoint(&self.endpoint) {
            errors.push(FieldError::new("endpoint", message));
        }
        let family_matches = |address: SocketAddr| match self.transport.as_str() {
            "tcp4" => address.is_ipv4(),
            "tcp6" => address.is_ipv6(),
            _ => true,
        };
        if !matches!(self.transport.as_str(), "tcp" | "tcp4" | "tcp6") {
            errors.push(FieldError::new(
                "transport",
                format!("transport `{}` is not supported: use `tcp`, `tcp4` or `tcp6`", self.transport),
            ));
        } else if parse_endpoint(&self.endpoint).is_ok_and(|address| !family_matches(address)) {
            errors.push(FieldError::new(
                "transport",
                format!("transport `{}` does not match the address family of `{}`", self.transport, self.endpoint),
            ));
        }
        if self.max_recv_msg_size_mib > 4096 {
            errors.push(FieldError::new(
                "max_recv_msg_size_mib",
                format!("{} MiB exceeds the 4096 MiB a span batch can address", self.max_recv_msg_size_mib),
            ));
        }
        if self.read_buffer_size > 64 * 1024 * 1024 {
            errors.push(FieldError::new("read_buffer_size", "at most 67108864 (64 MiB) per connection"));
        }
        not_implemented(
            errors,
            "write_buffer_size",
            self.write_buffer_size.as_ref(),
            "responses are written straight to the socket",
        );
        validate_tls(errors, self.tls.as_ref());
        not_implemented(errors, "auth", self.auth.as_ref(), "authenticator extensions do not exist in spanpipe");
        refuse_include_metadata(errors, self.include_metadata);
        not_implemented(
            errors,
            "middlewares",
            self.middlewares.as_ref(),
            "middleware extensions do not exist in spanpipe",
        );
        if let Some(keepalive) = &self.keepalive {
            not_implemented(
                errors,
                "keepalive.enforcement_policy",
                keepalive.enforcement_policy.as_ref(),
                "the HTTP/2 stack answers every ping and cannot police their rate",
            );
        }
    }
}

impl HttpServerConfig {
    /// Largest accepted body, in bytes (before and after decompression).
    pub(crate) fn max_body_size(&self) -> usize {
        usize::try_from(self.max_request_body_size).unwrap_or(usize::MAX)
    }

    /// Whether connections are kept open between requests.
    pub(crate) fn keep_alive_enabled(&self) -> bool {
        self.keepalive.as_ref().map_or(self.keep_alives_enabled.unwrap_or(true), |k| k.enabled)
    }

    /// The idle timeout in force, from either spelling; `None` when disabled.
    pub(crate) fn idle_timeout_in_force(&self) -> Option<Duration> {
        let configured = match (&self.keepalive, self.idle_timeout) {
            (Some(keepalive), _) => keepalive.idle_timeout,
            (None, Some(legacy)) => legacy,
            (None, None) => GoDuration::from_secs(60),
        };
        Some(configured.0).filter(|d| !d.is_zero())
    }

    /// What is valid but does nothing as written, paths relative to the section (as
    /// [`Self::validate_into`]'s): a `cors` section that lists `allowed_headers` but no
    /// `allowed_origins`, which the Collector also logs as a warning.
    pub(crate) fn warnings(&self) -> Vec<FieldError> {
        if !self.cors.as_ref().is_some_and(CorsConfig::has_headers_without_origins) {
            return Vec::new();
        }
        vec![FieldError::new(
            "cors",
            "lists allowed_headers but no allowed_origins, so CORS stays off; add the origins of the pages that send",
        )]
    }

    pub(crate) fn validate_into(&self, errors: &mut Vec<FieldError>) {
        if let Err(message) = parse_endpoint(&self.endpoint) {
            errors.push(FieldError::new("endpoint", message));
        }
        let path = sanitized_url_path(&self.traces_url_path);
        if path.contains(['?', '#', ' ']) {
            errors.push(FieldError::new("traces_url_path", format!("`{path}` must be a plain URL path")));
        }
        if self.max_request_body_size == 0 {
            errors.push(FieldError::new("max_request_body_size", "must be greater than 0"));
        }
        if self.max_request_body_size > u64::from(u32::MAX) {
            errors.push(FieldError::new(
                "max_request_body_size",
                format!("{} exceeds the 4 GiB a span batch can address", self.max_request_body_size),
            ));
        }
        for (index, algorithm) in self.compression_algorithms.iter().enumerate() {
            if !HTTP_ENCODINGS.contains(&algorithm.as_str()) {
                errors.push(FieldError::new(
                    format!("compression_algorithms[{index}]"),
                    format!(
                        "`{algorithm}` is not supported: spanpipe decodes {}",
                        HTTP_ENCODINGS.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        if self.keepalive.is_some() && self.idle_timeout.is_some() {
            errors.push(FieldError::new(
                "idle_timeout",
                "set `keepalive.idle_timeout` or its older spelling `idle_timeout`, not both",
            ));
        }
        if self.keepalive.is_some() && self.keep_alives_enabled.is_some() {
            errors.push(FieldError::new(
                "keep_alives_enabled",
                "set `keepalive.enabled` or its older spelling `keep_alives_enabled`, not both",
            ));
        }
        validate_tls(errors, self.tls.as_ref());
        if let Some(cors) = &self.cors {
            let mut own = Vec::new();
            cors.validate_into(&mut own);
            errors.extend(prefixed("cors", own));
        }
        not_implemented(errors, "auth", self.auth.as_ref(), "authenticator extensions do not exist in spanpipe");
        refuse_include_metadata(errors, self.include_metadata);
        crate::config_headers::validate("response_headers", &self.response_headers, errors);
        for name in self.response_headers.keys() {
            if FRAMING_HEADERS.iter().any(|framing| framing.eq_ignore_ascii_case(name)) {
                errors.push(FieldError::new(
                    format!("response_headers.{name}"),
                    "frames the HTTP message, which only the server may set; remove it",
                ));
            }
        }
        not_implemented(
            errors,
            "middlewares",
            self.middlewares.as_ref(),
            "middleware extensions do not exist in spanpipe",
        );
        not_implemented(errors, "metrics_url_path", self.metrics_url_path.as_ref(), "spanpipe receives traces only");
        not_implemented(errors, "logs_url_path", self.logs_url_path.as_ref(), "spanpipe receives traces only");
    }
}

pub(crate) fn prefixed(prefix: &str, errors: Vec<FieldError>) -> impl Iterator<Item = FieldError> + '_ {
    errors.into_iter().map(move |error| FieldError::new(format!("{prefix}.{}", error.path), error.message))
}

impl OtlpReceiverConfig {
    /// Binds `address` instead of the configured endpoint of `protocol`'s listener (the runtime's
    /// other cores bind the ports the first one got). Returns whether the receiver has that
    /// listener.
    pub fn set_endpoint(&mut self, protocol: super::Protocol, address: SocketAddr) -> bool {
        let endpoint = match protocol {
            super::Protocol::Grpc => self.protocols.grpc.as_mut().map(|grpc| &mut grpc.endpoint),
            super::Protocol::Http => self.protocols.http.as_mut().map(|http| &mut http.endpoint),
            _ => None,
        };
        endpoint.map(|endpoint| *endpoint = address.to_string()).is_some()
    }
}

impl ComponentConfig for OtlpReceiverConfig {
    fn warnings(&self) -> Vec<FieldError> {
        self.protocols
            .http
            .as_ref()
            .map(|http| prefixed("protocols.http", http.warnings()).collect())
            .unwrap_or_default()
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.protocols.grpc.is_none() && self.protocols.http.is_none() {
            errors.push(FieldError::new(
                "protocols",
                "must specify at least one protocol when using the OTLP receiver: add `grpc:` and/or `http:`",
            ));
        }
        if let Some(grpc) = &self.protocols.grpc {
            let mut own = Vec::new();
            grpc.validate_into(&mut own);
            errors.extend(prefixed("protocols.grpc", own));
        }
        if let Some(http) = &self.protocols.http {
            let mut own = Vec::new();
            http.validate_into(&mut own);
            errors.extend(prefixed("protocols.http", own));
        }
        if let (Some(grpc), Some(http)) = (&self.protocols.grpc, &self.protocols.http) {
            if let (Ok(a), Ok(b)) = (parse_endpoint(&grpc.endpoint), parse_endpoint(&http.endpoint)) {
                if a == b && a.port() != 0 {
                    errors.push(FieldError::new(
                        "protocols.http.endpoint",
                        format!("{b} is also `protocols.grpc.endpoint`; give each protocol its own port"),
                    ));
                }
            }
        }
        errors
    }

    fn listen_addresses(&self) -> Vec<(String, SocketAddr)> {
        let grpc = self.protocols.grpc.as_ref().map(|c| ("protocols.grpc.endpoint", &c.endpoint));
        let http = self.protocols.http.as_ref().map(|c| ("protocols.http.endpoint", &c.endpoint));
        [grpc, http]
            .into_iter()
            .flatten()
            .filter_map(|(path, endpoint)| parse_endpoint(endpoint).ok().map(|address| (path.to_owned(), address)))
            .collect()
    }
}
