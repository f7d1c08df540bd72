//! The `websocket` receiver's configuration.
//!
//! The OpenTelemetry Collector has no WebSocket receiver, so these keys are spanpipe's own. They
//! follow the Collector's `confighttp.ServerConfig` where it has the same notion (`endpoint`,
//! `tls`, `read_header_timeout`, `read_timeout`, `write_timeout`, the size limit) so that a
//! Collector user finds the familiar names, and add what a long-lived connection needs:
//! keep-alive pings and a bound on how long a message may wait for room in the pipeline.

use std::net::SocketAddr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::{ComponentConfig, FieldError, GoDuration};

use crate::cors::AllowedOrigins;
use crate::otlp::config::{parse_endpoint, sanitized_url_path};
use crate::tls::TlsServerConfig;

/// Configuration of the `websocket` receiver: one listener accepting WebSocket connections on
/// which clients send OTLP requests and receive a per-message acknowledgement.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketReceiverConfig {
    /// Address to listen on, `host:port`; the host is an IP address, `localhost` (127.0.0.1) or
    /// empty (all interfaces). OTLP has no WebSocket binding and so no registered port; 4319 is
    /// the next one after OTLP/gRPC's 4317 and OTLP/HTTP's 4318, so the three OTLP entry points
    /// sit side by side and none of them collides with another receiver's default. Defaults to
    /// `localhost:4319`.
    pub endpoint: String,
    /// URL path of the WebSocket endpoint; a leading `/` is added when missing. Requests for other
    /// paths are answered 404. Defaults to `/v1/traces/ws`.
    pub path: String,
    /// Largest message accepted, in bytes, sequence number included; a larger message closes
    /// the connection with code 1009 (Message Too Big). The OTLP/HTTP receiver's body limit.
    /// Defaults to 20971520 (20 MiB).
    pub max_message_size: u64,
    /// Most time from a connection's first byte to its complete upgrade request; the
    /// connection is closed when it runs out, and also when a connection sends nothing for this
    /// long before upgrading. confighttp's default. 0 disables. Defaults to "1m".
    pub read_header_timeout: GoDuration,
    /// Most time from the first byte of a message to its last, so that a client trickling one
    /// byte at a time cannot hold a message open; the connection is closed with code 1008 when
    /// it runs out. Time between messages is not counted. 0 disables. Defaults to "1m".
    pub read_timeout: GoDuration,
    /// Most time an acknowledgement, ping or close frame may wait for the client to read it; the
    /// connection is closed (without a close frame, the client is not reading) when it runs out.
    /// confighttp's default. 0 disables. Defaults to "30s".
    pub write_timeout: GoDuration,
    /// After this long without hearing from the client (no frame, and no message arriving), the
    /// server sends a ping. 0 disables pings (and with them the detection of vanished clients).
    /// Defaults to "30s".
    pub ping_interval: GoDuration,
    /// A client that sends nothing — no pong, no message — for this long after a ping is
    /// considered gone, and its connection is closed with code 1008. gRPC's keep-alive timeout.
    /// Defaults to "20s".
    pub pong_timeout: GoDuration,
    /// How long a message may wait for room when the pipeline is full and asks its callers to
    /// wait: meanwhile its acknowledgement is withheld and nothing more is read from the
    /// connection, so TCP flow control slows the client. Past this the connection is closed with
    /// code 1013 (Try Again Later), which clients treat as retryable. Must be more than 0.
    /// Defaults to "10s".
    pub max_backpressure_wait: GoDuration,
    /// TLS: when present the port speaks TLS only (`wss://`), offering `http/1.1` by ALPN, with
    /// this certificate and, with `client_ca_file`, mutual TLS. The handshake must complete
    /// within `read_header_timeout` (or `read_timeout` when that is 0). Defaults to absent
    /// (plaintext, `ws://`).
    #[serde(
        default,
        deserialize_with = "spanpipe_config::enabled_when_present",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls: Option<TlsServerConfig>,
    /// Web origins (`scheme://host[:port]`) whose pages may connect, matched against the `Origin`
    /// header a browser sends with its upgrade request, in the forms of the HTTP receivers'
    /// `cors.allowed_origins` (one `*` per entry for any characters, `*` alone for every origin;
    /// without regard to case). A page from another origin is answered 403. Browsers let any page
    /// open a WebSocket to any server, so this is the way to keep other sites' pages from sending
    /// spans through their visitors' browsers. Requests without `Origin` (clients that are not
    /// browsers) are always accepted. Defaults to empty: every origin.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
}

impl Default for WebSocketReceiverConfig {
    fn default() -> Self {
        Self {
            endpoint: "localhost:4319".to_owned(),
            path: "/v1/traces/ws".to_owned(),
            max_message_size: 20 * 1024 * 1024,
            read_header_timeout: GoDuration::from_secs(60),
            read_timeout: GoDuration::from_secs(60),
            write_timeout: GoDuration::from_secs(30),
            ping_interval: GoDuration::from_secs(30),
            pong_timeout: GoDuration::from_secs(20),
            max_backpressure_wait: GoDuration::from_secs(10),
            tls: None,
            allowed_origins: Vec::new(),
        }
    }
}

/// `Some` unless zero (disabled).
fn enabled(duration: GoDuration) -> Option<Duration> {
    Some(duration.0).filter(|d| !d.is_zero())
}

impl WebSocketReceiverConfig {
    /// The path served, with its leading `/`.
    pub(crate) fn served_path(&self) -> String {
        sanitized_url_path(&self.path)
    }

    /// The message size limit in force, in bytes.
    pub(crate) fn message_limit(&self) -> usize {
        usize::try_from(self.max_message_size).unwrap_or(usize::MAX)
    }

    pub(crate) fn handshake_timeout(&self) -> Option<Duration> {
        enabled(self.read_header_timeout).or_else(|| enabled(self.read_timeout))
    }

    pub(crate) fn session_limits(&self) -> super::session::SessionLimits {
        super::session::SessionLimits {
            read_timeout: enabled(self.read_timeout),
            write_timeout: enabled(self.write_timeout),
            ping_interval: enabled(self.ping_interval),
            pong_timeout: self.pong_timeout.0,
            max_backpressure_wait: self.max_backpressure_wait.0,
        }
    }
}

impl ComponentConfig for WebSocketReceiverConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(message) = parse_endpoint(&self.endpoint) {
            errors.push(FieldError::new("endpoint", message));
        }
        let path = self.served_path();
        if path.contains(['?', '#', ' ']) {
            errors.push(FieldError::new("path", format!("`{path}` must be a plain URL path")));
        }
        if self.max_message_size <= super::frame::SEQUENCE_LEN as u64 {
            errors.push(FieldError::new(
                "max_message_size",
                format!("must be more than {} bytes, the sequence number", super::frame::SEQUENCE_LEN),
            ));
        }
        if self.max_message_size > u64::from(u32::MAX) {
            errors.push(FieldError::new(
                "max_message_size",
                format!("{} exceeds the 4 GiB a span batch can address", self.max_message_size),
            ));
        }
        if enabled(self.ping_interval).is_some() && self.pong_timeout.0.is_zero() {
            errors.push(FieldError::new(
                "pong_timeout",
                "must be more than 0 while pings are on; set `ping_interval: 0` to turn pings off",
            ));
        }
        if self.max_backpressure_wait.0.is_zero() {
            errors.push(FieldError::new(
                "max_backpressure_wait",
                "must be more than 0: a message needs some time to wait for room in the pipeline",
            ));
        }
        AllowedOrigins::validate_into(&self.allowed_origins, "allowed_origins", &mut errors);
        if let Some(tls) = &self.tls {
            errors.extend(
                tls.validate().into_iter().map(|error| FieldError::new(format!("tls.{}", error.path), error.message)),
            );
        }
        errors
    }

    fn listen_addresses(&self) -> Vec<(String, SocketAddr)> {
        parse_endpoint(&self.endpoint).map(|address| vec![("endpoint".to_owned(), address)]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_listen_on_4319() {
        let config = WebSocketReceiverConfig::default();
        assert!(config.validate().is_empty());
        assert_eq!(config.listen_addresses(), vec![("endpoint".to_owned(), SocketAddr::from(([127, 0, 0, 1], 4319)))]);
        assert_eq!(config.served_path(), "/v1/traces/ws");
    }

    #[test]
    fn impossible_values_are_refused_by_key() {
        let config: WebSocketReceiverConfig = serde_json::from_value(serde_json::json!({
            "endpoint": "example.com:4319",
            "path": "ws?x",
            "max_message_size": 8,
            "pong_timeout": "0s",
            "max_backpressure_wait": "0s",
            "allowed_origins": ["https://ok.example", "https://*.*.example"],
        }))
        .unwrap();
        let keys: Vec<_> = config.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(
            keys,
            ["endpoint", "path", "max_message_size", "pong_timeout", "max_backpressure_wait", "allowed_origins[1]"]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let parsed = serde_json::from_value::<WebSocketReceiverConfig>(serde_json::json!({ "max_unacked": 3 }));
        assert!(parsed.unwrap_err().to_string().contains("unknown field `max_unacked`"));
    }
}
