//! The `jaeger` receiver: the Jaeger collector's HTTP endpoint and the Jaeger agent's UDP ports.
//!
//! - `protocols.thrift_http` (14268): `POST /api/traces` with a binary Thrift `Batch`, content
//!   type `application/x-thrift` or `application/vnd.apache.thrift.binary` (clients add
//!   `?format=jaeger.thrift`, which is ignored, as Jaeger's collector ignores it). Answered as
//!   Jaeger's collector does: `202 Accepted` with an empty body; 400 with a plain-text message for
//!   a body that cannot be decoded; 413, 415, 404, 405; 429 or 503 with `Retry-After`.
//! - `protocols.thrift_compact` (UDP 6831) and `protocols.thrift_binary` (UDP 6832): one
//!   `Agent.emitBatch` call per datagram, in compact or binary Thrift (see [`crate::udp`] for how
//!   the sockets are read and what is counted).
//! - `protocols.grpc` (14250): Jaeger's gRPC collector API, `jaeger.api_v2.CollectorService/
//!   PostSpans`, whose `PostSpansRequest` holds a protobuf `Batch` (model.proto); answered as any
//!   gRPC server answers, with the empty `PostSpansResponse` on success. The gRPC machinery
//!   (framing, compression, deadlines, keep-alive, TLS) is the OTLP receiver's.
//!
//! The codecs come from the caller (built from `spanpipe-jaeger`): this crate moves bytes.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use spanpipe_codecs::Codec;
use spanpipe_config::{ComponentConfig, FieldError};

use crate::confighttp;
use crate::otlp::config::{parse_endpoint, prefixed, GrpcServerConfig};
use crate::otlp::otlp_http::{AnswerStyle, MediaTable, Route, RouteCodecs};
use crate::otlp::{
    BoundReceiver, HttpServerConfig, Listener, ListenerKeys, Protocol, ReceiverError, SpanSink, JAEGER_POST_SPANS,
};
use crate::udp::{DatagramListener, DatagramSettings, DEFAULT_SOCKET_BUFFER_SIZE};

/// The Jaeger collector's span path.
pub const TRACES_PATH: &str = "/api/traces";
/// Where `grpc` listens unless its `endpoint` says otherwise.
pub const DEFAULT_GRPC_ENDPOINT: &str = "localhost:14250";
/// Where `thrift_http` listens unless its `endpoint` says otherwise.
pub const DEFAULT_THRIFT_HTTP_ENDPOINT: &str = "localhost:14268";
/// Where `thrift_binary` listens unless its `endpoint` says otherwise.
pub const DEFAULT_THRIFT_BINARY_ENDPOINT: &str = "localhost:6832";
/// Where `thrift_compact` listens unless its `endpoint` says otherwise.
pub const DEFAULT_THRIFT_COMPACT_ENDPOINT: &str = "localhost:6831";
/// The Collector's (and Jaeger agent's) largest datagram: 65,000 bytes.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 65_000;

/// Configuration of the `jaeger` receiver, key for key as the Collector's
/// (`receiver/jaegerreceiver`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JaegerReceiverConfig {
    /// The protocols to serve; at least one must be present. A protocol is served when its
    /// section is present, even empty (`thrift_compact:`), with its defaults. Defaults to none
    /// (which validation refuses, as the Collector does).
    #[serde(default)]
    pub protocols: JaegerProtocols,
}

/// The protocol sections of the `jaeger` receiver.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JaegerProtocols {
    /// The Jaeger collector's gRPC endpoint: `jaeger.api_v2.CollectorService/PostSpans` with
    /// protobuf batches (what Jaeger's agent sends). configgrpc's keys, as the OTLP receiver's
    /// `grpc`; `endpoint` defaults to `localhost:14250`. Served when present. Defaults to absent.
    #[serde(
        default,
        deserialize_with = "spanpipe_config::enabled_when_present",
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc: Option<JaegerGrpcConfig>,
    /// The Jaeger collector's HTTP endpoint: `POST /api/traces` with binary Thrift batches.
    /// confighttp's keys; `endpoint` defaults to `localhost:14268`. Served when present. Defaults
    /// to absent.
    #[serde(
        default,
        deserialize_with = "spanpipe_config::enabled_when_present",
        skip_serializing_if = "Option::is_none"
    )]
    pub thrift_http: Option<ThriftHttpConfig>,
    /// The Jaeger agent's binary Thrift UDP port. `endpoint` defaults to `localhost:6832`. Served
    /// when present. Defaults to absent.
    #[serde(
        default,
        deserialize_with = "spanpipe_config::enabled_when_present",
        skip_serializing_if = "Option::is_none"
    )]
    pub thrift_binary: Option<UdpServerConfig>,
    /// The Jaeger agent's compact Thrift UDP port (what Jaeger clients use by default).
    /// `endpoint` defaults to `localhost:6831`. Served when present. Defaults to absent.
    #[serde(
        default,
        deserialize_with = "spanpipe_config::enabled_when_present",
        skip_serializing_if = "Option::is_none"
    )]
    pub thrift_compact: Option<UdpServerConfig>,
}

/// `protocols.grpc`: the Collector's `configgrpc.ServerConfig`, read into [`GrpcServerConfig`]
/// (whose documentation gives every key's meaning and default), with `endpoint` defaulting to
/// `localhost:14250`.
#[derive(Clone, Debug, PartialEq)]
pub struct JaegerGrpcConfig(pub GrpcServerConfig);

impl Default for JaegerGrpcConfig {
    fn default() -> Self {
        Self(GrpcServerConfig { endpoint: DEFAULT_GRPC_ENDPOINT.to_owned(), ..GrpcServerConfig::default() })
    }
}

impl<'de> Deserialize<'de> for JaegerGrpcConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut section = confighttp::section(deserializer)?;
        section.entry("endpoint").or_insert_with(|| DEFAULT_GRPC_ENDPOINT.into());
        serde_json::from_value(serde_json::Value::Object(section)).map(Self).map_err(serde::de::Error::custom)
    }
}

impl Serialize for JaegerGrpcConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl JsonSchema for JaegerGrpcConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "JaegerGrpcConfig".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        confighttp::with_endpoint_default(GrpcServerConfig::json_schema(generator), DEFAULT_GRPC_ENDPOINT)
    }
}

/// `protocols.thrift_http`: the Collector's `confighttp.ServerConfig`, read into
/// [`HttpServerConfig`] (whose documentation gives every key's meaning and default) without the
/// OTLP receiver's URL path keys, and with `endpoint` defaulting to `localhost:14268`.
#[derive(Clone, Debug, PartialEq)]
pub struct ThriftHttpConfig(pub HttpServerConfig);

impl Default for ThriftHttpConfig {
    fn default() -> Self {
        Self(HttpServerConfig { endpoint: DEFAULT_THRIFT_HTTP_ENDPOINT.to_owned(), ..HttpServerConfig::default() })
    }
}

impl<'de> Deserialize<'de> for ThriftHttpConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let section = confighttp::section(deserializer)?;
        confighttp::from_section(section, DEFAULT_THRIFT_HTTP_ENDPOINT, &[]).map(Self).map_err(serde::de::Error::custom)
    }
}

impl Serialize for ThriftHttpConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        confighttp::to_section(&self.0).serialize(serializer)
    }
}

impl JsonSchema for ThriftHttpConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ThriftHttpConfig".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        confighttp::schema(generator, DEFAULT_THRIFT_HTTP_ENDPOINT, &[])
    }
}

/// A Jaeger agent UDP port (the Collector's `ProtocolUDP`: `endpoint` and `ServerConfigUDP`).
///
/// The Collector reads datagrams on one goroutine into a queue of `queue_size` that `workers`
/// goroutines drain. spanpipe has no such queue: every core has its own socket on the port
/// (`SO_REUSEPORT`) and decodes each datagram as it reads it, so the kernel's receive buffer
/// (`socket_buffer_size`) is the queue and the data-plane cores are the workers. `queue_size` and
/// `workers` are therefore accepted, so that Collector configs load, and have no effect; to
/// absorb bigger bursts, raise `socket_buffer_size`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UdpServerConfig {
    /// Address to listen on, `host:port`; the host is an IP address, `localhost` (127.0.0.1) or
    /// empty (all interfaces). Defaults to `localhost:6832` for `thrift_binary` and
    /// `localhost:6831` for `thrift_compact`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// No effect in spanpipe (there is no user-space queue: the socket's receive buffer holds
    /// what has not been read yet; see `socket_buffer_size`). Defaults to 1000.
    pub queue_size: u64,
    /// Largest datagram decoded, in bytes; larger ones are counted (`too_large`) and dropped.
    /// At most 65535. Defaults to 65000.
    pub max_packet_size: usize,
    /// No effect in spanpipe (every data-plane core reads its own socket on the port).
    /// Defaults to 10.
    pub workers: u64,
    /// The socket's receive buffer, in bytes: how much the kernel queues while the core is busy
    /// before it drops datagrams. 0 means spanpipe's default of 4194304 (4 MiB), enough for a
    /// burst of 20 back-to-back 64 KB datagrams with room to spare; the Collector's 0 means the
    /// system's default (usually 208 KiB, which such a burst overflows). Set with `SO_RCVBUFFORCE`
    /// when permitted, `SO_RCVBUF` (capped by the sysctl `net.core.rmem_max`) otherwise; a warning
    /// is logged when the kernel grants less. Defaults to 0.
    pub socket_buffer_size: usize,
}

impl Default for UdpServerConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            queue_size: 1000,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            workers: 10,
            socket_buffer_size: 0,
        }
    }
}

/// The largest UDP payload there is.
const MAX_UDP_PAYLOAD: usize = 65_535;

impl UdpServerConfig {
    /// The endpoint in force, given the protocol's default.
    fn endpoint_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.endpoint.as_deref().unwrap_or(default)
    }

    fn settings(&self) -> DatagramSettings {
        DatagramSettings {
            max_packet_size: self.max_packet_size,
            socket_buffer_size: if self.socket_buffer_size == 0 {
                DEFAULT_SOCKET_BUFFER_SIZE
            } else {
                self.socket_buffer_size
            },
        }
    }

    fn validate_into(&self, prefix: &str, default_endpoint: &str, errors: &mut Vec<FieldError>) {
        if let Err(message) = parse_endpoint(self.endpoint_or(default_endpoint)) {
            errors.push(FieldError::new(format!("{prefix}.endpoint"), message));
        }
        if self.max_packet_size == 0 || self.max_packet_size > MAX_UDP_PAYLOAD {
            errors.push(FieldError::new(
                format!("{prefix}.max_packet_size"),
                format!("{} is not a datagram size: use 1 to {MAX_UDP_PAYLOAD}", self.max_packet_size),
            ));
        }
        if i32::try_from(self.socket_buffer_size).is_err() {
            errors.push(FieldError::new(
                format!("{prefix}.socket_buffer_size"),
                format!("{} exceeds the largest socket buffer, {}", self.socket_buffer_size, i32::MAX),
            ));
        }
    }
}

/// A UDP section with its protocol, config keys and default endpoint.
#[derive(Clone, Copy)]
struct UdpSection<'a> {
    protocol: Protocol,
    prefix: &'static str,
    endpoint_key: &'static str,
    default_endpoint: &'static str,
    config: Option<&'a UdpServerConfig>,
}

impl<'a> UdpSection<'a> {
    fn endpoint(&self) -> Option<&'a str> {
        self.config.map(|config| config.endpoint_or(self.default_endpoint))
    }
}

/// The UDP sections: compact, then binary.
fn udp_sections(protocols: &JaegerProtocols) -> [UdpSection<'_>; 2] {
    [
        UdpSection {
            protocol: Protocol::JaegerThriftCompact,
            prefix: "protocols.thrift_compact",
            endpoint_key: "protocols.thrift_compact.endpoint",
            default_endpoint: DEFAULT_THRIFT_COMPACT_ENDPOINT,
            config: protocols.thrift_compact.as_ref(),
        },
        UdpSection {
            protocol: Protocol::JaegerThriftBinary,
            prefix: "protocols.thrift_binary",
            endpoint_key: "protocols.thrift_binary.endpoint",
            default_endpoint: DEFAULT_THRIFT_BINARY_ENDPOINT,
            config: protocols.thrift_binary.as_ref(),
        },
    ]
}

impl ComponentConfig for JaegerReceiverConfig {
    fn validate(&self) -> Vec<FieldError> {
        let protocols = &self.protocols;
        let mut errors = Vec::new();
        if protocols.grpc.is_none()
            && protocols.thrift_http.is_none()
            && protocols.thrift_binary.is_none()
            && protocols.thrift_compact.is_none()
        {
            errors.push(FieldError::new(
                "protocols",
                "must specify at least one protocol when using the Jaeger receiver: add `grpc:`, `thrift_http:`, \
                 `thrift_compact:` and/or `thrift_binary:`",
            ));
        }
        if let Some(grpc) = &protocols.grpc {
            let mut own = Vec::new();
            grpc.0.validate_into(&mut own);
            errors.extend(prefixed("protocols.grpc", own));
        }
        if let Some(http) = &protocols.thrift_http {
            errors.extend(confighttp::validate("protocols.thrift_http", &http.0));
        }
        if let (Some(grpc), Some(http)) = (&protocols.grpc, &protocols.thrift_http) {
            if let (Ok(a), Ok(b)) = (parse_endpoint(&grpc.0.endpoint), parse_endpoint(&http.0.endpoint)) {
                if a == b && a.port() != 0 {
                    errors.push(FieldError::new(
                        "protocols.thrift_http.endpoint",
                        format!("{b} is also `protocols.grpc.endpoint`; give each protocol its own port"),
                    ));
                }
            }
        }
        let [compact, binary] = udp_sections(protocols);
        for section in [compact, binary] {
            if let Some(udp) = section.config {
                udp.validate_into(section.prefix, section.default_endpoint, &mut errors);
            }
        }
        if let (Some(compact), Some(binary)) = (compact.endpoint(), binary.endpoint()) {
            if let (Ok(compact), Ok(binary)) = (parse_endpoint(compact), parse_endpoint(binary)) {
                if compact == binary && compact.port() != 0 {
                    errors.push(FieldError::new(
                        "protocols.thrift_binary.endpoint",
                        format!("{binary} is also `protocols.thrift_compact.endpoint`; give each its own UDP port"),
                    ));
                }
            }
        }
        errors
    }

    fn warnings(&self) -> Vec<FieldError> {
        self.protocols
            .thrift_http
            .as_ref()
            .map(|http| prefixed("protocols.thrift_http", http.0.warnings()).collect())
            .unwrap_or_default()
    }

    /// The TCP addresses of `grpc` and `thrift_http`.
    fn listen_addresses(&self) -> Vec<(String, SocketAddr)> {
        let grpc = self.protocols.grpc.as_ref().map(|grpc| (GRPC_KEYS.endpoint, grpc.0.endpoint.as_str()));
        let http =
            self.protocols.thrift_http.as_ref().map(|http| (THRIFT_HTTP_KEYS.endpoint, http.0.endpoint.as_str()));
        endpoints(grpc.into_iter().chain(http))
    }

    /// The UDP addresses of the agent ports.
    fn datagram_listen_addresses(&self) -> Vec<(String, SocketAddr)> {
        endpoints(
            udp_sections(&self.protocols)
                .into_iter()
                .filter_map(|section| section.endpoint().map(|e| (section.endpoint_key, e))),
        )
    }
}

/// The addresses of the endpoints that parse, with their keys.
fn endpoints<'a>(endpoints: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, SocketAddr)> {
    endpoints
        .into_iter()
        .filter_map(|(key, endpoint)| parse_endpoint(endpoint).ok().map(|address| (key.to_owned(), address)))
        .collect()
}

impl JaegerReceiverConfig {
    /// Binds `address` instead of the configured endpoint of `protocol`'s listener (the runtime's
    /// other cores bind the ports the first one got). Returns whether the receiver has that
    /// listener.
    pub fn set_endpoint(&mut self, protocol: Protocol, address: SocketAddr) -> bool {
        let protocols = &mut self.protocols;
        let udp = match protocol {
            Protocol::JaegerGrpc => {
                return protocols.grpc.as_mut().map(|grpc| grpc.0.endpoint = address.to_string()).is_some();
            }
            Protocol::JaegerThriftHttp => {
                return protocols.thrift_http.as_mut().map(|http| http.0.endpoint = address.to_string()).is_some();
            }
            Protocol::JaegerThriftCompact => protocols.thrift_compact.as_mut(),
            Protocol::JaegerThriftBinary => protocols.thrift_binary.as_mut(),
            _ => None,
        };
        udp.map(|udp| udp.endpoint = Some(address.to_string())).is_some()
    }

    /// Reads the `grpc.tls` and `thrift_http.tls` blocks' certificates, keys and CAs as binding
    /// will, so that a config whose files cannot be used is refused before anything starts.
    ///
    /// # Errors
    /// [`ReceiverError::Tls`] naming the key and file that cannot be used.
    pub fn load_certificates(&self) -> Result<(), ReceiverError> {
        let grpc = self.protocols.grpc.as_ref().and_then(|grpc| grpc.0.tls.as_ref());
        crate::otlp::load_tls(GRPC_KEYS.tls, grpc, &[crate::tls::ALPN_H2])?;
        let http = self.protocols.thrift_http.as_ref().and_then(|http| http.0.tls.as_ref());
        crate::otlp::load_tls(THRIFT_HTTP_KEYS.tls, http, &[crate::tls::ALPN_H2, crate::tls::ALPN_HTTP1]).map(drop)
    }
}

const GRPC_KEYS: ListenerKeys = ListenerKeys { endpoint: "protocols.grpc.endpoint", tls: "protocols.grpc.tls" };
const THRIFT_HTTP_KEYS: ListenerKeys =
    ListenerKeys { endpoint: "protocols.thrift_http.endpoint", tls: "protocols.thrift_http.tls" };

/// The decoders of the Jaeger formats, built by the caller (from `spanpipe-jaeger`).
#[derive(Clone, Debug)]
pub struct JaegerCodecs {
    /// Protobuf `PostSpansRequest`, the gRPC `PostSpans` message (registry name `jaeger_proto`).
    pub grpc: Arc<dyn Codec>,
    /// Binary Thrift `Batch`, the body of `POST /api/traces` (registry name `jaeger_thrift`).
    pub thrift_http: Arc<dyn Codec>,
    /// Compact Thrift `Agent.emitBatch` datagrams (port 6831).
    pub thrift_compact: Arc<dyn Codec>,
    /// Binary Thrift `Agent.emitBatch` datagrams (port 6832).
    pub thrift_binary: Arc<dyn Codec>,
}

/// The `jaeger` receiver.
#[derive(Debug)]
pub struct JaegerReceiver;

impl JaegerReceiver {
    /// Validates `config`, loads its TLS certificates and binds its listeners on the current
    /// glommio executor's core. Nothing is received until [`BoundReceiver::start`].
    ///
    /// # Errors
    /// [`ReceiverError::InvalidConfig`] listing every problem; [`ReceiverError::Tls`] when a
    /// certificate, key or CA cannot be loaded; [`ReceiverError::Bind`] when a port cannot be
    /// bound or its socket set up.
    pub fn bind<S: SpanSink + 'static>(
        config: &JaegerReceiverConfig,
        sink: Rc<S>,
        codecs: &JaegerCodecs,
    ) -> Result<BoundReceiver<S>, ReceiverError> {
        ReceiverError::unless_valid(config)?;
        let mut listeners = Vec::new();
        if let Some(grpc) = &config.protocols.grpc {
            let codec = Arc::clone(&codecs.grpc);
            listeners.push(Listener::grpc(
                Protocol::JaegerGrpc,
                GRPC_KEYS,
                &grpc.0,
                &JAEGER_POST_SPANS,
                codec,
                Rc::clone(&sink),
            )?);
        }
        if let Some(http) = &config.protocols.thrift_http {
            let thrift = &codecs.thrift_http;
            let table = MediaTable {
                accepted: vec![
                    ("application/x-thrift", Arc::clone(thrift)),
                    ("application/vnd.apache.thrift.binary", Arc::clone(thrift)),
                ],
                when_missing: None,
                refused: Vec::new(),
            };
            let route =
                Route { path: TRACES_PATH.to_owned(), codecs: RouteCodecs::Table(table), style: AnswerStyle::Accepted };
            let not_found = format!("404 page not found: spans are received at {TRACES_PATH}");
            let listener = Listener::http(
                Protocol::JaegerThriftHttp,
                THRIFT_HTTP_KEYS,
                &http.0,
                vec![route],
                not_found,
                Rc::clone(&sink),
            )?;
            listeners.push(listener);
        }
        let mut datagram_listeners = Vec::new();
        let [compact, binary] = udp_sections(&config.protocols);
        for (section, codec) in [(compact, &codecs.thrift_compact), (binary, &codecs.thrift_binary)] {
            let Some(udp) = section.config else { continue };
            datagram_listeners.push(DatagramListener::bind(
                section.protocol,
                section.endpoint_key,
                udp.endpoint_or(section.default_endpoint),
                udp.settings(),
                Arc::clone(codec),
                Rc::clone(&sink),
            )?);
        }
        Ok(BoundReceiver::new(listeners, datagram_listeners))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_present_but_empty_are_served_with_the_collectors_defaults() {
        let config: JaegerReceiverConfig = serde_json::from_value(serde_json::json!({
            "protocols": { "thrift_http": null, "thrift_compact": null, "thrift_binary": { "workers": 50 } }
        }))
        .unwrap();
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        let http = config.protocols.thrift_http.as_ref().unwrap();
        assert_eq!(http.0.endpoint, "localhost:14268");
        let compact = config.protocols.thrift_compact.as_ref().unwrap();
        assert_eq!(compact.endpoint_or(DEFAULT_THRIFT_COMPACT_ENDPOINT), "localhost:6831");
        assert_eq!((compact.max_packet_size, compact.queue_size, compact.workers), (65_000, 1000, 10));
        assert_eq!(config.protocols.thrift_binary.as_ref().unwrap().workers, 50);
        let ports = |addresses: Vec<(String, std::net::SocketAddr)>| -> Vec<(String, u16)> {
            addresses.into_iter().map(|(key, address)| (key, address.port())).collect()
        };
        // TCP and UDP are checked for clashes apart: a UDP socket may share a TCP socket's port.
        assert_eq!(ports(config.listen_addresses()), [("protocols.thrift_http.endpoint".to_owned(), 14268)]);
        assert_eq!(
            ports(config.datagram_listen_addresses()),
            [
                ("protocols.thrift_compact.endpoint".to_owned(), 6831),
                ("protocols.thrift_binary.endpoint".to_owned(), 6832),
            ]
        );
        let round_trip: JaegerReceiverConfig = serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
        assert_eq!(round_trip, config);
    }

    #[test]
    fn grpc_takes_configgrpc_keys_and_its_own_default_endpoint() {
        let config: JaegerReceiverConfig = serde_json::from_value(serde_json::json!({
            "protocols": { "grpc": null, "thrift_http": { "endpoint": "localhost:14250" } }
        }))
        .unwrap();
        let grpc = config.protocols.grpc.as_ref().unwrap();
        assert_eq!(grpc.0.endpoint, "localhost:14250");
        assert_eq!(grpc.0.max_recv_msg_size_mib, 4);
        // The two TCP protocols may not share a port.
        let paths: Vec<String> = config.validate().into_iter().map(|error| error.path).collect();
        assert_eq!(paths, ["protocols.thrift_http.endpoint"]);
        assert_eq!(
            config.listen_addresses().into_iter().map(|(key, a)| (key, a.port())).collect::<Vec<_>>(),
            [("protocols.grpc.endpoint".to_owned(), 14250), ("protocols.thrift_http.endpoint".to_owned(), 14250)]
        );
        let round_trip: JaegerReceiverConfig = serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
        assert_eq!(round_trip, config);

        let keyed: JaegerReceiverConfig = serde_json::from_value(serde_json::json!({
            "protocols": { "grpc": { "endpoint": "0.0.0.0:24250", "max_recv_msg_size_mib": 16, "keepalive": {} } }
        }))
        .unwrap();
        assert!(keyed.validate().is_empty(), "{:?}", keyed.validate());
        assert_eq!(keyed.protocols.grpc.as_ref().unwrap().0.endpoint, "0.0.0.0:24250");
        let unknown = serde_json::from_value::<JaegerReceiverConfig>(
            serde_json::json!({ "protocols": { "grpc": { "traces_url_path": "/x" } } }),
        );
        assert!(unknown.unwrap_err().to_string().contains("unknown field `traces_url_path`"));
        let refused = serde_json::from_value::<JaegerReceiverConfig>(
            serde_json::json!({ "protocols": { "grpc": { "auth": { "authenticator": "x" }, "endpoint": "nowhere" } } }),
        )
        .unwrap();
        let paths: Vec<String> = refused.validate().into_iter().map(|error| error.path).collect();
        assert_eq!(paths, ["protocols.grpc.endpoint", "protocols.grpc.auth"]);

        // The schema gives each section's own endpoint default, in the description too.
        let schema = serde_json::to_value(schemars::schema_for!(JaegerReceiverConfig)).unwrap();
        for (section, port) in [("JaegerGrpcConfig", "14250"), ("ThriftHttpConfig", "14268")] {
            let endpoint = &schema["$defs"][section]["properties"]["endpoint"];
            assert_eq!(endpoint["default"], format!("localhost:{port}"), "{section}");
            let description = endpoint["description"].as_str().unwrap();
            assert!(description.ends_with(&format!("Defaults to `localhost:{port}`.")), "{section}: {description}");
        }
    }

    #[test]
    fn impossible_values_are_refused_by_name() {
        let config: JaegerReceiverConfig = serde_json::from_value(serde_json::json!({
            "protocols": {
                "thrift_compact": { "max_packet_size": 70000 },
                "thrift_binary": { "endpoint": "127.0.0.1:6831" },
                "thrift_http": { "auth": { "authenticator": "x" } }
            }
        }))
        .unwrap();
        let paths: Vec<String> = config.validate().into_iter().map(|error| error.path).collect();
        assert_eq!(
            paths,
            [
                "protocols.thrift_http.auth",
                "protocols.thrift_compact.max_packet_size",
                "protocols.thrift_binary.endpoint",
            ]
        );
        assert!(JaegerReceiverConfig::default().validate()[0].path == "protocols");
        let unknown = serde_json::from_value::<JaegerReceiverConfig>(
            serde_json::json!({ "protocols": { "thrift_http": { "traces_url_path": "/x" } } }),
        );
        assert!(unknown.unwrap_err().to_string().contains("unknown field `traces_url_path`"));
    }
}
