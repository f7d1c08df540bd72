//! Small config types named like the Collector components spanpipe will have (the real ones live
//! in other crates), with just enough keys, defaults, checks and listen addresses to exercise
//! the loader: the same shapes the real types have.
//!
//! Each test crate reads a different part of them, so fields one crate never reads are allowed.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use spanpipe_config::{
    enabled_when_present, parse_listen_endpoint, ComponentConfig, ComponentRegistry, FieldError, GoDuration,
};

/// `receivers.otlp`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiverConfig {
    /// The protocols to serve; each is on when its key is written.
    pub protocols: Protocols,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    /// OTLP/gRPC. Defaults to off.
    #[serde(deserialize_with = "enabled_when_present")]
    pub grpc: Option<GrpcServerConfig>,
    /// OTLP/HTTP. Defaults to off.
    #[serde(deserialize_with = "enabled_when_present")]
    pub http: Option<HttpServerConfig>,
}

/// A protocol's server settings, with the protocol's own default port.
macro_rules! server_config {
    ($name:ident, $port:literal) => {
        #[derive(Debug, Clone, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            /// Where to listen. Defaults to localhost and the protocol's port.
            pub endpoint: String,
            /// Largest request, in MiB. Defaults to 4.
            pub max_recv_msg_size_mib: u32,
        }

        impl Default for $name {
            fn default() -> Self {
                Self { endpoint: format!("localhost:{}", $port), max_recv_msg_size_mib: 4 }
            }
        }
    };
}

server_config!(GrpcServerConfig, 4317);
server_config!(HttpServerConfig, 4318);

impl OtlpReceiverConfig {
    fn servers(&self) -> Vec<(&'static str, &str, u32)> {
        let grpc =
            self.protocols.grpc.as_ref().map(|s| ("protocols.grpc", s.endpoint.as_str(), s.max_recv_msg_size_mib));
        let http =
            self.protocols.http.as_ref().map(|s| ("protocols.http", s.endpoint.as_str(), s.max_recv_msg_size_mib));
        grpc.into_iter().chain(http).collect()
    }
}

impl ComponentConfig for OtlpReceiverConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.servers().is_empty() {
            errors.push(FieldError::new("protocols", "enable at least one of `grpc` and `http`"));
        }
        for (path, endpoint, size) in self.servers() {
            if let Err(error) = parse_listen_endpoint(endpoint) {
                errors.push(FieldError::new(format!("{path}.endpoint"), error.to_string()));
            }
            if size == 0 {
                errors.push(FieldError::new(format!("{path}.max_recv_msg_size_mib"), "must be at least 1"));
            }
        }
        errors
    }

    fn listen_addresses(&self) -> Vec<(String, SocketAddr)> {
        self.servers()
            .into_iter()
            .filter_map(|(path, endpoint, _)| Some((format!("{path}.endpoint"), parse_listen_endpoint(endpoint).ok()?)))
            .collect()
    }
}

/// `processors.batch`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Defaults to 8192.
    pub send_batch_size: u32,
    /// Defaults to 0 (no limit).
    pub send_batch_max_size: u32,
    /// Defaults to 200ms.
    pub timeout: GoDuration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { send_batch_size: 8192, send_batch_max_size: 0, timeout: GoDuration::from_millis(200) }
    }
}

impl ComponentConfig for BatchConfig {
    fn validate(&self) -> Vec<FieldError> {
        if self.send_batch_max_size != 0 && self.send_batch_max_size < self.send_batch_size {
            vec![FieldError::new("send_batch_max_size", "must be 0 or at least `send_batch_size`")]
        } else {
            Vec::new()
        }
    }
}

/// `processors.attributes`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AttributesConfig {
    /// Defaults to none.
    pub actions: Vec<AttributeAction>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeAction {
    pub key: String,
    pub action: ActionKind,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Insert,
    Delete,
    Hash,
}

impl ComponentConfig for AttributesConfig {
    fn validate(&self) -> Vec<FieldError> {
        self.actions
            .iter()
            .enumerate()
            .filter(|(_, action)| action.action == ActionKind::Insert && action.value.is_none())
            .map(|(index, _)| FieldError::new(format!("actions[{index}].value"), "`insert` needs a `value`"))
            .collect()
    }
}

/// `exporters.debug`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DebugConfig {
    /// Defaults to basic.
    pub verbosity: Verbosity,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    #[default]
    Basic,
    Normal,
    Detailed,
}

impl ComponentConfig for DebugConfig {}

/// `exporters.otlp`: `endpoint` is required, as in the Collector.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtlpExporterConfig {
    pub endpoint: String,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub timeout: Option<GoDuration>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Defaults to false.
    pub insecure: bool,
}

impl ComponentConfig for OtlpExporterConfig {}

/// `extensions.health_check`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// Defaults to localhost:13133.
    pub endpoint: String,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self { endpoint: "localhost:13133".to_owned() }
    }
}

impl ComponentConfig for HealthCheckConfig {
    fn listen_addresses(&self) -> Vec<(String, SocketAddr)> {
        parse_listen_endpoint(&self.endpoint).map(|address| ("endpoint".to_owned(), address)).into_iter().collect()
    }
}

/// Every test type under its Collector name.
pub fn registry() -> ComponentRegistry {
    ComponentRegistry::new()
        .receiver::<OtlpReceiverConfig>("otlp")
        .and_then(|r| r.processor::<BatchConfig>("batch"))
        .and_then(|r| r.processor::<AttributesConfig>("attributes"))
        .and_then(|r| r.exporter::<DebugConfig>("debug"))
        .and_then(|r| r.exporter::<OtlpExporterConfig>("otlp"))
        .and_then(|r| r.extension::<HealthCheckConfig>("health_check"))
        .expect("test types register")
}

/// The path of a file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}
