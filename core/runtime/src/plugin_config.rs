//! How configs name plugin components: `processors: {plugin/<name>: ...}` and
//! `receivers: {plugin/<name>: ...}` (a source plugin), referred to from pipelines like built-in
//! components. The plugin itself is found by name among the libraries of `plugins.dir`; it may
//! arrive, change or leave while spanpipe runs, so a config may name a plugin that is not loaded
//! yet (its stage passes batches through until it is).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::{ComponentConfig, ComponentId, FieldError, GoDuration};

/// What becomes of a batch a plugin could not process (it panicked, its breaker is open, or it
/// is restarting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The batch goes on unchanged (counted): a broken enrichment or redaction stage must not
    /// lose spans.
    #[default]
    PassThrough,
    /// The batch is dropped (counted): for stages whose output must never be skipped, such as
    /// one that removes data that may not leave the host.
    Drop,
}

/// When a plugin is bypassed after failing: `failures` failures (panics, or budget trips) within
/// `window` open the breaker for `cool_down`; then the plugin is tried again.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Failures within `window` that open the breaker. Defaults to 5.
    pub failures: u32,
    /// The window failures are counted in. Defaults to 60s.
    pub window: GoDuration,
    /// How long the plugin is bypassed once the breaker opens. Defaults to 30s.
    pub cool_down: GoDuration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { failures: 5, window: GoDuration::from_secs(60), cool_down: GoDuration::from_secs(30) }
    }
}

/// How long a failed plugin instance waits before it is created again: `initial`, doubling after
/// each consecutive failure up to `max`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BackoffConfig {
    /// The first wait. Defaults to 100ms.
    pub initial: GoDuration,
    /// The longest wait. Defaults to 10s.
    pub max: GoDuration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self { initial: GoDuration::from_millis(100), max: GoDuration::from_secs(10) }
    }
}

/// Settings every plugin component has, whatever its kind.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PluginCommon {
    /// The plugin's name, as its library declares it. Defaults to the component id's name:
    /// `plugin/redact` runs the plugin `redact`.
    pub plugin: Option<String>,
    /// The plugin's own settings, handed to it as JSON when an instance is created.
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub config: Option<serde_json::Value>,
    /// Restart backoff after a failure.
    pub restart_backoff: BackoffConfig,
    /// The circuit breaker.
    pub breaker: BreakerConfig,
}

impl PluginCommon {
    /// The plugin this component runs: `plugin`, or the id's name.
    #[must_use]
    pub fn plugin_name(&self, id: &ComponentId) -> String {
        self.plugin.clone().unwrap_or_else(|| id.name().unwrap_or_default().to_owned())
    }

    /// The plugin's settings as JSON text (`{}` when none are given).
    #[must_use]
    pub fn config_json(&self) -> String {
        self.config.as_ref().map_or_else(|| "{}".to_owned(), serde_json::Value::to_string)
    }

    fn validate_into(&self, errors: &mut Vec<FieldError>) {
        if self.plugin.as_deref() == Some("") {
            errors.push(FieldError::new("plugin", "must not be empty; leave it out to use the component's name"));
        }
        if let Some(config) = &self.config {
            if !config.is_object() {
                errors.push(FieldError::new("config", "must be a mapping of the plugin's settings"));
            }
        }
        if self.breaker.failures == 0 {
            errors.push(FieldError::new("breaker.failures", "must be at least 1"));
        }
        for (key, value) in [
            ("breaker.window", &self.breaker.window),
            ("breaker.cool_down", &self.breaker.cool_down),
            ("restart_backoff.initial", &self.restart_backoff.initial),
            ("restart_backoff.max", &self.restart_backoff.max),
        ] {
            if value.0.is_zero() {
                errors.push(FieldError::new(key, "must be more than 0s"));
            }
        }
        if self.restart_backoff.max.0 < self.restart_backoff.initial.0 {
            errors.push(FieldError::new("restart_backoff.max", "must be at least restart_backoff.initial"));
        }
    }
}

/// `processors: plugin/<name>`: a processor plugin as a pipeline stage.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PluginProcessorConfig {
    /// Settings every plugin component has.
    #[serde(flatten)]
    pub common: PluginCommon,
    /// What becomes of a batch the plugin could not process. Defaults to `pass_through`.
    pub on_failure: OnFailure,
    /// The CPU time one call may take (measured on the calling thread's CPU clock). A call over
    /// it is a strike; `budget_strikes` strikes in a row trip the breaker. Defaults to none.
    pub cpu_budget: Option<GoDuration>,
    /// Consecutive calls over `cpu_budget` that trip the breaker. Defaults to 3.
    pub budget_strikes: u32,
}

impl Default for PluginProcessorConfig {
    fn default() -> Self {
        Self { common: PluginCommon::default(), on_failure: OnFailure::default(), cpu_budget: None, budget_strikes: 3 }
    }
}

impl ComponentConfig for PluginProcessorConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.common.validate_into(&mut errors);
        if self.cpu_budget.is_some_and(|budget| budget.0.is_zero()) {
            errors.push(FieldError::new("cpu_budget", "must be more than 0s; leave it out for no budget"));
        }
        if self.cpu_budget.is_some() && self.budget_strikes == 0 {
            errors.push(FieldError::new("budget_strikes", "must be at least 1"));
        }
        errors
    }
}

/// `receivers: plugin/<name>`: a source plugin, run on an interval, feeding the pipelines that
/// list it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PluginReceiverConfig {
    /// Settings every plugin component has.
    #[serde(flatten)]
    pub common: PluginCommon,
    /// How often the source runs a cycle. Defaults to 10s.
    pub interval: GoDuration,
}

impl Default for PluginReceiverConfig {
    fn default() -> Self {
        Self { common: PluginCommon::default(), interval: GoDuration::from_secs(10) }
    }
}

impl ComponentConfig for PluginReceiverConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.common.validate_into(&mut errors);
        if self.interval.0.is_zero() {
            errors.push(FieldError::new("interval", "must be more than 0s"));
        }
        errors
    }
}
