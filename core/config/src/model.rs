//! The loaded config: the file's shape as the OpenTelemetry Collector's, with spanpipe's few
//! additions under `service` (`cores`, `shutdown_timeout`) and the `plugins` section.

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::component_id::{ComponentId, ComponentKind};
use crate::error::ConfigErrorKind;
use crate::registry::AnyComponentConfig;
use crate::{ComponentConfig, GoDuration};

/// A whole config file, loaded and validated.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `receivers`: accept spans.
    pub receivers: Components,
    /// `processors`: transform, sample, batch.
    pub processors: Components,
    /// `exporters`: send spans on.
    pub exporters: Components,
    /// `extensions`: serve beside the pipelines.
    pub extensions: Components,
    /// `service`: which components run, in which pipelines, and the process's own settings.
    pub service: ServiceConfig,
    /// `plugins`: where run-time plugin libraries are found (a spanpipe addition).
    pub plugins: PluginsConfig,
}

impl Config {
    /// The section of `kind`.
    #[must_use]
    pub fn components(&self, kind: ComponentKind) -> &Components {
        match kind {
            ComponentKind::Receiver => &self.receivers,
            ComponentKind::Processor => &self.processors,
            ComponentKind::Exporter => &self.exporters,
            ComponentKind::Extension => &self.extensions,
        }
    }

    /// What the config says, as one JSON value: each component's settings as written (after
    /// environment expansion) and the `service` and `plugins` sections with their defaults
    /// filled in. Comments and formatting leave it unchanged; any change of meaning changes it.
    #[must_use]
    pub fn canonical_json(&self) -> serde_json::Value {
        let section = |components: &Components| {
            components
                .settings
                .iter()
                .map(|(id, settings)| (id.to_string(), settings.clone()))
                .collect::<serde_json::Map<_, _>>()
        };
        serde_json::json!({
            "receivers": section(&self.receivers),
            "processors": section(&self.processors),
            "exporters": section(&self.exporters),
            "extensions": section(&self.extensions),
            "service": serde_json::to_value(&self.service).unwrap_or_default(),
            "plugins": serde_json::to_value(&self.plugins).unwrap_or_default(),
        })
    }

    pub(crate) fn components_mut(&mut self, kind: ComponentKind) -> &mut Components {
        match kind {
            ComponentKind::Receiver => &mut self.receivers,
            ComponentKind::Processor => &mut self.processors,
            ComponentKind::Exporter => &mut self.exporters,
            ComponentKind::Extension => &mut self.extensions,
        }
    }
}

/// The components of one section, in the order of the file, each with its config as the type
/// registered for its component type.
#[derive(Clone, Default)]
pub struct Components {
    configs: IndexMap<ComponentId, Arc<dyn AnyComponentConfig>>,
    /// Each component's section as written (after environment expansion), as JSON: what a reload
    /// compares to tell a changed component from an unchanged one.
    settings: IndexMap<ComponentId, serde_json::Value>,
}

impl Components {
    /// The config of `id`, type-erased.
    #[must_use]
    pub fn get(&self, id: &ComponentId) -> Option<&Arc<dyn AnyComponentConfig>> {
        self.configs.get(id)
    }

    /// The config of `id` as `T`; `None` if `id` is not configured or its type is not `T`.
    #[must_use]
    pub fn config<T: ComponentConfig>(&self, id: &ComponentId) -> Option<&T> {
        self.configs.get(id)?.downcast_ref()
    }

    /// Whether `id` is configured.
    #[must_use]
    pub fn contains(&self, id: &ComponentId) -> bool {
        self.configs.contains_key(id)
    }

    /// The components, in the order of the file.
    pub fn iter(&self) -> impl Iterator<Item = (&ComponentId, &Arc<dyn AnyComponentConfig>)> {
        self.configs.iter()
    }

    /// How many there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.configs.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    /// The section of `id` as written (after environment expansion), as JSON.
    #[must_use]
    pub fn settings(&self, id: &ComponentId) -> Option<&serde_json::Value> {
        self.settings.get(id)
    }

    /// Whether `id` is configured in both `self` and `other` with the same settings: a reload
    /// keeps such a component as it runs.
    #[must_use]
    pub fn unchanged_in(&self, other: &Self, id: &ComponentId) -> bool {
        matches!((self.settings.get(id), other.settings.get(id)), (Some(ours), Some(theirs)) if ours == theirs)
    }

    pub(crate) fn insert(&mut self, id: ComponentId, config: Arc<dyn AnyComponentConfig>, settings: serde_json::Value) {
        self.settings.insert(id.clone(), settings);
        self.configs.insert(id, config);
    }
}

impl fmt::Debug for Components {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.configs.iter().map(|(id, config)| (id.to_string(), config))).finish()
    }
}

/// The `plugins` section: the directory spanpipe watches for plugin libraries. Plugin components
/// themselves are configured like built-in ones (`processors: {plugin/redact: ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// The directory watched for plugin libraries (`*.so`), e.g. `/var/lib/spanpipe/plugins`. A
    /// library dropped in is checked, loaded and put into service; a replaced one is swapped in;
    /// a removed one is retired. Without it no plugin is loaded and plugin components pass
    /// batches through.
    pub dir: Option<std::path::PathBuf>,
    /// Where loaded libraries are copied before they are opened, so that a file replaced in
    /// `dir` never reaches the dynamic loader under a name it already has open. Defaults to a
    /// directory of this process under the system's temporary directory.
    pub load_dir: Option<std::path::PathBuf>,
    /// How long a new or changed file must keep its size before it is loaded, so that a copy in
    /// progress is never opened. Defaults to 200ms.
    pub settle: GoDuration,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self { dir: None, load_dir: None, settle: GoDuration(std::time::Duration::from_millis(200)) }
    }
}

/// The `service` section.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(default)]
pub struct ServiceConfig {
    /// Pipelines by id (`traces` or `traces/<name>`): which receivers feed which processors and
    /// exporters. spanpipe handles traces only. Defaults to none (a config must define one).
    #[schemars(schema_with = "pipelines_schema")]
    pub pipelines: IndexMap<PipelineId, PipelineConfig>,
    /// The extensions to start, by id; each must be configured under `extensions`. Defaults to
    /// none.
    pub extensions: Vec<ComponentId>,
    /// spanpipe's own logs and metrics.
    pub telemetry: TelemetryConfig,
    /// How many cores run the data plane, one executor each (a spanpipe addition). Defaults to
    /// every core the process may use (its affinity mask and cgroup CPU quota).
    #[schemars(range(min = 1))]
    pub cores: Option<usize>,
    /// How long shutdown may take to drain queues and flush exporters before what is left is
    /// counted as lost (a spanpipe addition). Defaults to 30s.
    pub shutdown_timeout: GoDuration,
    /// Where self-healing actions are recorded (a spanpipe addition).
    pub health_log: HealthLogConfig,
    /// The health watchdog's thresholds (a spanpipe addition).
    pub watchdog: WatchdogConfig,
}

/// `service.watchdog`: what spanpipe does by itself when the process is under pressure.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(default, deny_unknown_fields)]
pub struct WatchdogConfig {
    /// CPU pressure: lower the adaptive samplers' rates step by step while the process's CPU use
    /// stays high, restore them step by step once it stays low.
    pub cpu: CpuWatchdogConfig,
    /// Memory pressure: refuse new data at every receiver while the process's memory use is over
    /// a soft limit, so that data already accepted drains before the hard limit is reached.
    pub memory: MemoryWatchdogConfig,
}

/// `service.watchdog.cpu`. CPU use is the process's CPU time over the wall time, relative to the
/// CPUs it may use (its affinity mask capped by its cgroup's CPU quota).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(default, deny_unknown_fields)]
pub struct CpuWatchdogConfig {
    /// Whether the watchdog acts on CPU use. Defaults to true (it does nothing without an
    /// `adaptive_sampler` in a pipeline).
    pub enabled: bool,
    /// How often CPU use is measured. Defaults to 1s.
    pub interval: GoDuration,
    /// CPU use (0 to 1) at or above which the rate is lowered. Defaults to 0.9.
    pub high: f64,
    /// How long CPU use must stay at or above `high` before each step down. Defaults to 30s.
    pub high_for: GoDuration,
    /// CPU use at or below which the rate is restored. Defaults to 0.6.
    pub low: f64,
    /// How long CPU use must stay at or below `low` before each step up. Defaults to 60s.
    pub low_for: GoDuration,
    /// The factors the adaptive samplers' rates are multiplied by, one step at a time: the first
    /// is 1 (no downgrade), each smaller than the one before, the last the floor. Defaults to
    /// `[1.0, 0.5, 0.25, 0.1]`.
    pub steps: Vec<f64>,
}

impl Default for CpuWatchdogConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: GoDuration::from_secs(1),
            high: 0.9,
            high_for: GoDuration::from_secs(30),
            low: 0.6,
            low_for: GoDuration::from_secs(60),
            steps: vec![1.0, 0.5, 0.25, 0.1],
        }
    }
}

/// `service.watchdog.memory`. Memory use is the process's resident set size over the memory it
/// may use: its cgroup's memory limit (v2 `memory.max`), or the machine's `MemTotal` when the
/// cgroup sets none — what the `memory_limiter` processor measures too.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryWatchdogConfig {
    /// Whether the watchdog acts on memory use. Defaults to true.
    pub enabled: bool,
    /// How often memory use is measured. Defaults to 1s.
    pub interval: GoDuration,
    /// Memory use (0 to 1) over which every receiver refuses new requests. Defaults to 0.8.
    pub soft_limit: f64,
    /// Memory use under which receivers accept requests again; below `soft_limit`, so that a
    /// figure hovering around the soft limit does not open and close admission at every reading.
    /// Defaults to 0.7.
    pub restore_below: f64,
    /// How long refused clients are told to wait before retrying (`Retry-After`). Defaults to 1s.
    pub retry_after: GoDuration,
}

impl Default for MemoryWatchdogConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: GoDuration::from_secs(1),
            soft_limit: 0.8,
            restore_below: 0.7,
            retry_after: GoDuration::from_secs(1),
        }
    }
}

/// `service.health_log`: the record of every self-healing action (a plugin restarted or cut off,
/// a plugin refused) — a fixed-size ring file that survives restarts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(default, deny_unknown_fields)]
pub struct HealthLogConfig {
    /// The ring file, e.g. `/var/lib/spanpipe/health.log`. Defaults to `<config name>.health.log`
    /// beside the config file (kept in memory only when that cannot be written, or when spanpipe
    /// runs its embedded default config).
    pub path: Option<std::path::PathBuf>,
    /// The ring's size in bytes; the file never grows past it (plus a 64-byte header). Defaults to
    /// 16 MiB.
    #[schemars(range(min = 1024))]
    pub size: u64,
}

impl Default for HealthLogConfig {
    fn default() -> Self {
        Self { path: None, size: 16 * 1024 * 1024 }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            pipelines: IndexMap::new(),
            extensions: Vec::new(),
            telemetry: TelemetryConfig::default(),
            cores: None,
            shutdown_timeout: GoDuration::from_secs(30),
            health_log: HealthLogConfig::default(),
            watchdog: WatchdogConfig::default(),
        }
    }
}

/// The keys of the `service` section, for messages.
pub(crate) const SERVICE_KEYS: &[&str] =
    &["pipelines", "extensions", "telemetry", "cores", "shutdown_timeout", "health_log", "watchdog"];

fn pipelines_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let pipeline = generator.subschema_for::<PipelineConfig>();
    schemars::json_schema!({
        "type": "object",
        "patternProperties": { "^traces(/.+)?$": pipeline },
        "additionalProperties": false
    })
}

/// A pipeline's id: `traces` or `traces/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PipelineId {
    name: Option<String>,
}

/// Signals the Collector has pipelines for and spanpipe does not handle.
const OTHER_SIGNALS: &[&str] = &["metrics", "logs", "profiles"];

impl PipelineId {
    /// The `traces` pipeline without a name.
    #[must_use]
    pub const fn traces() -> Self {
        Self { name: None }
    }

    /// `traces/<name>`.
    #[must_use]
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: Some(name.into()) }
    }

    /// The name after `traces/`, if any.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub(crate) fn parse(text: &str) -> Result<Self, ConfigErrorKind> {
        let (signal, name) = match text.split_once('/') {
            Some((signal, name)) => (signal, Some(name)),
            None => (text, None),
        };
        match (signal, name) {
            ("traces", None) => Ok(Self::traces()),
            ("traces", Some(name)) if !name.is_empty() && !name.chars().any(char::is_whitespace) => {
                Ok(Self::named(name))
            }
            (signal, _) if OTHER_SIGNALS.contains(&signal) => {
                Err(ConfigErrorKind::UnsupportedSignal { signal: signal.to_owned() })
            }
            _ => Err(ConfigErrorKind::InvalidPipelineId { id: text.to_owned() }),
        }
    }
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "traces/{name}"),
            None => f.write_str("traces"),
        }
    }
}

impl Serialize for PipelineId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One pipeline: spans from every receiver go through the processors in order, then to every
/// exporter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Receivers that feed this pipeline; at least one. Defaults to none.
    pub receivers: Vec<ComponentId>,
    /// Processors, applied in this order. Defaults to none.
    pub processors: Vec<ComponentId>,
    /// Exporters, each receiving every batch; at least one. Defaults to none.
    pub exporters: Vec<ComponentId>,
}

impl PipelineConfig {
    /// The components of `kind` this pipeline lists (none for extensions).
    #[must_use]
    pub fn components(&self, kind: ComponentKind) -> &[ComponentId] {
        match kind {
            ComponentKind::Receiver => &self.receivers,
            ComponentKind::Processor => &self.processors,
            ComponentKind::Exporter => &self.exporters,
            ComponentKind::Extension => &[],
        }
    }
}

/// `service.telemetry`: spanpipe's own logs and metrics, with the Collector's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// spanpipe's own log.
    pub logs: LogsConfig,
    /// spanpipe's own metrics (and, beside them, `/healthz` and `/readyz`).
    pub metrics: MetricsConfig,
}

/// `service.telemetry.logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// The lowest level logged. Defaults to info.
    pub level: LogLevel,
    /// `console` (human-readable lines) or `json` (one object per line). Defaults to console.
    pub encoding: LogEncoding,
}

/// Log levels, named as the Collector names them: lowercase, or uppercase as zap also reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything, including per-batch detail.
    Debug,
    /// Start, stop, configuration and rare events.
    #[default]
    Info,
    /// Problems spanpipe recovers from.
    Warn,
    /// Problems that lose data or stop a component.
    Error,
}

const LOG_LEVELS: &[&str] = &["debug", "info", "warn", "error"];

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        match text.as_ref() {
            "debug" | "DEBUG" => Ok(Self::Debug),
            "info" | "INFO" => Ok(Self::Info),
            "warn" | "WARN" => Ok(Self::Warn),
            "error" | "ERROR" => Ok(Self::Error),
            other => Err(serde::de::Error::unknown_variant(other, LOG_LEVELS)),
        }
    }
}

impl JsonSchema for LogLevel {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LogLevel".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The lowest level logged: debug, info, warn or error (uppercase also accepted).",
            "enum": ["debug", "info", "warn", "error", "DEBUG", "INFO", "WARN", "ERROR"]
        })
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogEncoding {
    /// Human-readable lines.
    #[default]
    Console,
    /// One JSON object per line.
    Json,
}

/// `service.telemetry.metrics`: the Prometheus endpoint that serves spanpipe's metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// How much is measured: `none` serves no metrics endpoint. Defaults to normal.
    pub level: MetricsLevel,
    /// The endpoint as `host:port`, in the Collector's older syntax; set this or `readers`, not
    /// both. Defaults to unset.
    pub address: Option<String>,
    /// Metric readers in the Collector's syntax (`- pull: {exporter: {prometheus: {host, port}}}`);
    /// spanpipe serves Prometheus pull readers only. Defaults to one reader on localhost:8888.
    pub readers: Option<Vec<MetricReader>>,
}

/// How much spanpipe measures about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetricsLevel {
    /// No metrics and no metrics endpoint.
    None,
    /// The essentials: spans accepted, refused and exported.
    Basic,
    /// Adds queue depths, batch sizes and export latency.
    #[default]
    Normal,
    /// Adds per-core detail.
    Detailed,
}

/// One metric reader: spanpipe serves Prometheus pull readers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricReader {
    /// A reader that Prometheus scrapes.
    pub pull: PullMetricReader,
}

/// `pull`: a scraped reader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PullMetricReader {
    /// Its exporter.
    pub exporter: PullMetricExporter,
}

/// `pull.exporter`: spanpipe has the Prometheus exporter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PullMetricExporter {
    /// The Prometheus endpoint (also accepted as `prometheus/development`, the newer Collectors'
    /// name).
    #[serde(alias = "prometheus/development")]
    pub prometheus: PrometheusExporter,
}

/// Where the Prometheus endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusExporter {
    /// The host or IP address to listen on; `0.0.0.0` for every interface. Defaults to
    /// localhost.
    pub host: String,
    /// The port. Defaults to 8888.
    pub port: u16,
}

impl Default for PrometheusExporter {
    fn default() -> Self {
        Self { host: "localhost".to_owned(), port: DEFAULT_METRICS_PORT }
    }
}

/// The Collector's (and spanpipe's) metrics port.
pub const DEFAULT_METRICS_PORT: u16 = 8888;

/// One endpoint that serves spanpipe's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsEndpoint {
    /// The path of the key that sets it, relative to `service.telemetry.metrics`.
    pub path: String,
    /// Host or address to listen on.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl MetricsConfig {
    /// The endpoints to serve: none at level `none`; the `address` if set; otherwise each
    /// reader's, or localhost:8888 when no reader is written. An `address` that is not
    /// `host:port` is left out (validation reports it).
    #[must_use]
    pub fn endpoints(&self) -> Vec<MetricsEndpoint> {
        if self.level == MetricsLevel::None {
            return Vec::new();
        }
        if let Some(address) = &self.address {
            return split_host_port(address)
                .map(|(host, port)| MetricsEndpoint { path: "address".to_owned(), host: host.to_owned(), port })
                .into_iter()
                .collect();
        }
        match &self.readers {
            None => {
                let default = PrometheusExporter::default();
                vec![MetricsEndpoint { path: "readers".to_owned(), host: default.host, port: default.port }]
            }
            Some(readers) => readers
                .iter()
                .enumerate()
                .map(|(index, reader)| {
                    let prometheus = &reader.pull.exporter.prometheus;
                    MetricsEndpoint {
                        path: format!("readers[{index}].pull.exporter.prometheus.port"),
                        host: prometheus.host.clone(),
                        port: prometheus.port,
                    }
                })
                .collect(),
        }
    }
}

/// Splits `host:port` (`[::1]:8888`, `:8888`) at its last colon.
pub(crate) fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|host| host.strip_suffix(']')).unwrap_or(host);
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_can_be_handed_to_other_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Config>();
    }

    #[test]
    fn pipeline_ids_accept_traces_only() {
        assert_eq!(PipelineId::parse("traces").unwrap(), PipelineId::traces());
        assert_eq!(PipelineId::parse("traces/eu").unwrap().name(), Some("eu"));
        assert_eq!(PipelineId::parse("traces/eu").unwrap().to_string(), "traces/eu");
        for signal in ["metrics", "logs/app", "profiles"] {
            assert!(matches!(PipelineId::parse(signal), Err(ConfigErrorKind::UnsupportedSignal { .. })), "{signal}");
        }
        for bad in ["trace", "traces/", "traces/a b", ""] {
            assert!(matches!(PipelineId::parse(bad), Err(ConfigErrorKind::InvalidPipelineId { .. })), "{bad:?}");
        }
    }

    #[test]
    fn metrics_endpoints_follow_level_address_and_readers() {
        let default = MetricsConfig::default();
        assert_eq!(
            default.endpoints(),
            [MetricsEndpoint { path: "readers".into(), host: "localhost".into(), port: 8888 }]
        );
        let none = MetricsConfig { level: MetricsLevel::None, ..MetricsConfig::default() };
        assert!(none.endpoints().is_empty());
        let address = MetricsConfig { address: Some("[::]:9999".into()), ..MetricsConfig::default() };
        assert_eq!(address.endpoints(), [MetricsEndpoint { path: "address".into(), host: "::".into(), port: 9999 }]);
        let bad_address = MetricsConfig { address: Some("nowhere".into()), ..MetricsConfig::default() };
        assert!(bad_address.endpoints().is_empty());
    }

    #[test]
    fn splits_host_and_port() {
        assert_eq!(split_host_port("0.0.0.0:4317"), Some(("0.0.0.0", 4317)));
        assert_eq!(split_host_port(":8888"), Some(("", 8888)));
        assert_eq!(split_host_port("[::1]:4318"), Some(("::1", 4318)));
        assert_eq!(split_host_port("localhost"), None);
        assert_eq!(split_host_port("host:99999"), None);
    }
}
