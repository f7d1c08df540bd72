//! # spanpipe-config
//!
//! The config model: the YAML file in the shape users already know from the OpenTelemetry
//! Collector, the registry of component config types, the JSON Schema generated from them, and
//! the validation that names the path and line of every mistake.
//!
//! ## Why it is built this way
//!
//! - **Drop-in compatibility.** A Collector config that uses only components spanpipe has must
//!   run unchanged: the same sections (`receivers`, `processors`, `exporters`, `extensions`,
//!   `service.pipelines`), component ids (`type/name`), `${env:VAR}` expansion, empty bodies
//!   meaning defaults (`batch:`), and each component's keys and defaults, which its config type
//!   declares. What spanpipe lacks is refused by name: an unknown component type, an unknown
//!   key, a `metrics` pipeline, a connector.
//! - **The binary decides which components exist.** This crate knows no component: the binary
//!   registers each type with its config type ([`ComponentRegistry`]), and loading deserializes
//!   each section into the registered type, so one registration gives parsing, validation and
//!   the schema. Loaded configs are type-erased and the runtime downcasts them
//!   ([`Components::config`]).
//! - **Every error at once, each with its path and line.** The YAML is read into a tree that
//!   remembers where every value was written (module `yaml`), and a serde deserializer over that tree
//!   (module `de`) gives each config type's errors the full dotted path
//!   (`receivers.otlp.protocols.grpc.endpoint`) and line. Each component is read on its own and
//!   the semantic checks run on everything that loaded, so a user fixes a file in one pass.
//! - **Validation is pure.** No file system, network or spawning: a config (or a change from a
//!   control plane) is checked completely before anything is built or bound, then swapped in.
//!   Ports are compared from each component's [`ComponentConfig::listen_addresses`], so a port
//!   bound twice is refused instead of silently shared through `SO_REUSEPORT`.
//! - **YAML parser.** `saphyr-parser`, a maintained pure-Rust YAML 1.2 parser that passes the
//!   YAML test suite and gives every event its span (serde_yaml is archived; its forks wrap
//!   libyaml and hand serde no positions for values inside a component's section). Expansion of
//!   environment references then happens in values after parsing, as in the Collector, so a
//!   variable cannot change the document's structure.
//!
//! ## Use
//!
//! ```
//! use spanpipe_config::{ComponentConfig, ComponentRegistry, Loader};
//!
//! #[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields, default)]
//! struct BatchConfig {
//!     /// Spans per batch. Defaults to 8192.
//!     send_batch_size: u32,
//! }
//! impl Default for BatchConfig {
//!     fn default() -> Self {
//!         Self { send_batch_size: 8192 }
//!     }
//! }
//! impl ComponentConfig for BatchConfig {}
//! # #[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
//! # #[serde(deny_unknown_fields, default)]
//! # struct Empty {}
//! # impl ComponentConfig for Empty {}
//!
//! let registry = ComponentRegistry::new()
//!     .receiver::<Empty>("otlp")?
//!     .processor::<BatchConfig>("batch")?
//!     .exporter::<Empty>("debug")?;
//! let text = "
//! receivers: {otlp: }
//! processors: {batch: }
//! exporters: {debug: }
//! service:
//!   pipelines:
//!     traces: {receivers: [otlp], processors: [batch], exporters: [debug]}
//! ";
//! let (config, warnings) = Loader::new(&registry).load_str(text).map_err(|errors| errors.to_string())?;
//! let batch = config.processors.config::<BatchConfig>(&"batch".parse()?).unwrap();
//! assert_eq!(batch.send_batch_size, 8192);
//! assert!(warnings.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod component_id;
mod de;
mod duration;
mod endpoint;
mod env;
mod error;
mod jsonc;
mod load;
mod model;
mod path;
mod registry;
mod schema;
mod validate;
mod yaml;

use std::net::SocketAddr;

pub use component_id::{ComponentId, ComponentIdError, ComponentKind};
pub use duration::{DurationError, GoDuration};
pub use endpoint::{listen_addresses_conflict, listen_host, parse_listen_endpoint, EndpointError};
pub use error::{ConfigError, ConfigErrorKind, ConfigErrors, Location, Warning, WarningKind};
pub use load::{load_file, load_str, Loaded, Loader};
pub use model::{
    Components, Config, CpuWatchdogConfig, HealthLogConfig, LogEncoding, LogLevel, LogsConfig, MemoryWatchdogConfig,
    MetricReader, MetricsConfig, MetricsEndpoint, MetricsLevel, PipelineConfig, PipelineId, PluginsConfig,
    PrometheusExporter, PullMetricExporter, PullMetricReader, ServiceConfig, TelemetryConfig, WatchdogConfig,
    DEFAULT_METRICS_PORT,
};
pub use registry::{AnyComponentConfig, ComponentRegistry, RegistryError};

/// The config `spanpipe run` uses without `--config`: OTLP/gRPC on 4317 and OTLP/HTTP on 4318 →
/// `batch` → `debug`, written as a Collector user writes it. It needs the `otlp` receiver, the
/// `batch` processor and the `debug` exporter registered.
pub const DEFAULT_CONFIG: &str = include_str!("../default.yaml");

/// One problem found in a config, with the dotted path of the field to change
/// (`receivers.otlp.protocols.grpc.endpoint`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// Path of the offending field, relative to where the error is reported; callers prefix it
    /// with the component's own path.
    pub path: String,
    /// What is wrong and what to change.
    pub message: String,
}

impl FieldError {
    /// An error at `path` (relative to the component) saying `message`.
    #[must_use]
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

/// What every component's config type implements: serde for the YAML, schemars for the JSON
/// Schema, and the semantic checks the schema cannot express.
///
/// Types deny unknown keys (`#[serde(deny_unknown_fields)]`) and give every field the default the
/// OpenTelemetry Collector gives it, so a Collector config that uses only components spanpipe has
/// runs unchanged.
///
/// How the loader fills them: an empty body (`batch:`) is an empty mapping, so with
/// `#[serde(default)]` every field takes its default; an empty value is `None` for an `Option`
/// and an empty list for a `Vec`; a section whose presence turns something on (`grpc:`) uses
/// [`enabled_when_present`]. A plain scalar fills a number, a boolean or a string as the field
/// asks (`4317` fills a `u16` or a `String`); durations use [`GoDuration`].
pub trait ComponentConfig:
    serde::de::DeserializeOwned + schemars::JsonSchema + Default + Clone + std::fmt::Debug + Send + Sync + 'static
{
    /// Checks what the schema cannot: impossible limits, values out of range, combinations that
    /// cannot work. Paths in the errors are relative to the component (`timeout`,
    /// `protocols.http.endpoint`). Pure: no file system, network or spawning.
    fn validate(&self) -> Vec<FieldError> {
        Vec::new()
    }

    /// What is valid but probably not meant: settings that do nothing as written. Reported as
    /// warnings, once, when the config is loaded or validated (not by each core that builds the
    /// component). Paths are relative to the component, as in [`ComponentConfig::validate`].
    fn warnings(&self) -> Vec<FieldError> {
        Vec::new()
    }

    /// The local addresses this component binds, each with the path of the key that sets it, so
    /// that a config binding one port twice is refused before anything starts.
    fn listen_addresses(&self) -> Vec<(String, SocketAddr)> {
        Vec::new()
    }

    /// The local addresses this component binds UDP sockets on, as [`listen_addresses`] does for
    /// TCP. Kept apart because a UDP and a TCP socket may share a port number.
    ///
    /// [`listen_addresses`]: ComponentConfig::listen_addresses
    fn datagram_listen_addresses(&self) -> Vec<(String, SocketAddr)> {
        Vec::new()
    }
}

/// For a section whose presence turns something on, as the Collector's
/// `receivers.otlp.protocols.grpc`: written with an empty body (`grpc:`) it is on with its
/// defaults, absent it is off. Use on an `Option` field:
///
/// ```
/// # #[derive(Debug, Default, serde::Deserialize)]
/// # #[serde(deny_unknown_fields, default)]
/// # struct GrpcConfig { endpoint: Option<String> }
/// #[derive(Debug, Default, serde::Deserialize)]
/// #[serde(deny_unknown_fields, default)]
/// struct Protocols {
///     #[serde(deserialize_with = "spanpipe_config::enabled_when_present")]
///     grpc: Option<GrpcConfig>,
/// }
/// ```
///
/// # Errors
/// The inner type's errors.
pub fn enabled_when_present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(Some(<Option<T> as serde::Deserialize>::deserialize(deserializer)?.unwrap_or_default()))
}

/// Reads a key whose YAML may be written empty (`response_headers:`, which parses as `null`) as
/// its type's default, as the Collector does, instead of refusing the `null`. Use on a field whose
/// default is empty:
///
/// ```
/// #[derive(Debug, Default, serde::Deserialize)]
/// #[serde(deny_unknown_fields, default)]
/// struct Server {
///     #[serde(deserialize_with = "spanpipe_config::default_when_null")]
///     response_headers: std::collections::BTreeMap<String, String>,
/// }
/// let server: Server = serde_json::from_str(r#"{"response_headers": null}"#).unwrap();
/// assert!(server.response_headers.is_empty());
/// ```
///
/// # Errors
/// The inner type's errors.
pub fn default_when_null<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(deserializer)?.unwrap_or_default())
}
