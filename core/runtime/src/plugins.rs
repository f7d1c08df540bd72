//! The runtime's side of plugins: the registry every core reads, the host that watches
//! `plugins.dir`, the codec plugins offered to the receivers, and what becomes of plugin events —
//! a metric for each, and a health-log record for each action taken or refused.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use spanpipe_codecs::{Codec, DynamicCodecs};
use spanpipe_config::{ComponentId, PluginsConfig};
use spanpipe_health::{HealthRecord, HealthSink};
use spanpipe_plugins::{
    BackoffConfig, BreakerConfig, EventSink, FailureConfig, HostError, OnFailure as HostOnFailure, PluginEvent,
    PluginHost, PluginHostConfig, PluginRegistry, PluginSourceConfig, PluginStageConfig, TripReason,
};

use crate::plugin_config::{OnFailure, PluginCommon, PluginProcessorConfig, PluginReceiverConfig};
use crate::telemetry::{CoreSlot, Sample};

/// Plugins as the running collector holds them.
#[derive(Debug)]
pub(crate) struct Plugins {
    registry: Arc<PluginRegistry>,
    /// Watches `plugins.dir`; `None` when the config names no directory. Dropping it stops the
    /// watch.
    host: Option<PluginHost>,
}

impl Plugins {
    /// Creates the registry and, when `config.dir` is set, loads the directory and watches it.
    /// Events are logged by the plugins crate, counted into `metrics` and recorded in `health`.
    pub(crate) fn start(
        config: &PluginsConfig,
        health: Arc<dyn HealthSink>,
        metrics: Arc<CoreSlot>,
    ) -> Result<Self, HostError> {
        let counters = Arc::new(EventCounters::default());
        let events: EventSink = Arc::new(move |event: PluginEvent| {
            counters.count(&event, &metrics);
            if let Some(record) = health_record(&event) {
                health.record(record);
            }
        });
        let registry = Arc::new(PluginRegistry::new(events));
        let host = match &config.dir {
            Some(dir) => Some(PluginHost::start(
                PluginHostConfig { dir: dir.clone(), state_dir: config.load_dir.clone(), settle: config.settle.0 },
                Arc::clone(&registry),
            )?),
            None => None,
        };
        Ok(Self { registry, host })
    }

    /// The registry the cores' plugin stages and sources read.
    pub(crate) fn registry(&self) -> &Arc<PluginRegistry> {
        &self.registry
    }

    /// Whether a directory is watched.
    pub(crate) fn watching(&self) -> bool {
        self.host.is_some()
    }
}

/// The host's failure settings from a component's.
fn failure_config(
    common: &PluginCommon,
    on_failure: OnFailure,
    cpu_budget: Option<Duration>,
    strikes: u32,
) -> FailureConfig {
    FailureConfig {
        on_failure: match on_failure {
            OnFailure::PassThrough => HostOnFailure::PassThrough,
            OnFailure::Drop => HostOnFailure::Drop,
        },
        cpu_budget,
        budget_strikes: strikes,
        breaker: BreakerConfig {
            failures: common.breaker.failures,
            window: common.breaker.window.0,
            cool_down: common.breaker.cool_down.0,
        },
        restart_backoff: BackoffConfig { initial: common.restart_backoff.initial.0, max: common.restart_backoff.max.0 },
    }
}

/// What a `processors: plugin/...` component runs.
pub(crate) fn stage_config(id: &ComponentId, config: &PluginProcessorConfig) -> PluginStageConfig {
    PluginStageConfig {
        plugin: config.common.plugin_name(id),
        config_json: config.common.config_json(),
        failure: failure_config(
            &config.common,
            config.on_failure,
            config.cpu_budget.map(|budget| budget.0),
            config.budget_strikes,
        ),
    }
}

/// What a `receivers: plugin/...` component runs. A source's failed cycle passes on what it
/// pushed before failing: it is valid data, already checked.
pub(crate) fn source_config(id: &ComponentId, config: &PluginReceiverConfig) -> PluginSourceConfig {
    PluginSourceConfig {
        plugin: config.common.plugin_name(id),
        config_json: config.common.config_json(),
        interval: config.interval.0,
        failure: failure_config(&config.common, OnFailure::PassThrough, None, 1),
    }
}

/// The codec plugins published now, offered to the receivers' content-type lookup.
#[derive(Debug)]
pub(crate) struct PluginCodecs(pub(crate) Arc<PluginRegistry>);

impl DynamicCodecs for PluginCodecs {
    fn by_content_type(&self, media_type: &str) -> Option<Arc<dyn Codec>> {
        self.0.codec_for(media_type).map(|codec| codec as Arc<dyn Codec>)
    }

    fn content_types(&self) -> Vec<String> {
        self.0.codecs().iter().flat_map(|codec| codec.content_types().iter().map(|t| (*t).to_owned())).collect()
    }
}

/// Plugin events counted by plugin and kind, republished as samples after each event (events are
/// rare: loads, failures, breaker changes — never one per batch).
#[derive(Debug, Default)]
struct EventCounters {
    counts: Mutex<BTreeMap<(String, &'static str, String), u64>>,
}

impl EventCounters {
    fn count(&self, event: &PluginEvent, slot: &CoreSlot) {
        let (plugin, kind, reason) = event_labels(event);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry((plugin, kind, reason)).or_insert(0) += 1;
        slot.publish(
            counts
                .iter()
                .map(|((plugin, kind, reason), &count)| {
                    let mut labels = vec![("plugin", plugin.clone()), ("event", (*kind).to_owned())];
                    if !reason.is_empty() {
                        labels.push(("reason", reason.clone()));
                    }
                    Sample::counter(
                        "spanpipe_plugin_events_total",
                        "Plugin lifecycle and failure events: loaded, refused (reason: the field that differs, or load), retired, swapped, panicked, restarted, budget_exceeded, breaker_opened, breaker_closed, threads_left_running, create_failed, call_failed, destroy_failed.",
                        labels,
                        count,
                    )
                })
                .collect(),
        );
    }
}

/// The plugin (or, for a refused file, the file name), the event's name, and a reason label.
fn event_labels(event: &PluginEvent) -> (String, &'static str, String) {
    let file_name =
        |path: &std::path::Path| path.file_name().map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    match event {
        PluginEvent::Loaded { name, .. } => (name.clone(), "loaded", String::new()),
        PluginEvent::Refused { path, error } => (
            file_name(path),
            "refused",
            error.refused_field().map_or_else(|| "load".to_owned(), |field| field.as_str().to_owned()),
        ),
        PluginEvent::Retired { name, .. } => (name.clone(), "retired", String::new()),
        PluginEvent::Swapped { plugin, .. } => (plugin.clone(), "swapped", String::new()),
        PluginEvent::CreateFailed { plugin, .. } => (plugin.clone(), "create_failed", String::new()),
        PluginEvent::CallFailed { plugin, .. } => (plugin.clone(), "call_failed", String::new()),
        PluginEvent::Panicked { plugin, .. } => (plugin.clone(), "panicked", String::new()),
        PluginEvent::Restarted { plugin } => (plugin.clone(), "restarted", String::new()),
        PluginEvent::BudgetExceeded { plugin, .. } => (plugin.clone(), "budget_exceeded", String::new()),
        PluginEvent::BreakerOpened { plugin, reason, .. } => (
            plugin.clone(),
            "breaker_opened",
            match reason {
                TripReason::Failures { .. } => "failures",
                TripReason::CpuBudget { .. } => "cpu_budget",
                TripReason::HalfOpenTrialFailed => "trial_failed",
            }
            .to_owned(),
        ),
        PluginEvent::BreakerClosed { plugin } => (plugin.clone(), "breaker_closed", String::new()),
        PluginEvent::ThreadsLeftRunning { plugin, .. } => (plugin.clone(), "threads_left_running", String::new()),
        PluginEvent::DestroyFailed { plugin, .. } => (plugin.clone(), "destroy_failed", String::new()),
        _ => ("unknown".to_owned(), "other", String::new()),
    }
}

/// The health-log record of an event that is an action taken or refused; `None` for routine
/// ones (a call that refused its input is the input's problem, not the plugin's health).
fn health_record(event: &PluginEvent) -> Option<HealthRecord> {
    let component = |plugin: &str| format!("plugins/{plugin}");
    Some(match event {
        PluginEvent::Loaded { name, version, path, generation, .. } => {
            HealthRecord::new(component(name), "file_added", "loaded")
                .after(format!("version {version} (generation {generation})"))
                .detail(path.display().to_string())
        }
        PluginEvent::Refused { path, error } => {
            let record = HealthRecord::new("plugins", "compatibility_check", "refused").detail(error.to_string());
            match error {
                spanpipe_plugins::LoadError::Refused { expected, found, .. } => {
                    record.measured(found.clone()).threshold(expected.clone())
                }
                _ => record.measured(path.display().to_string()),
            }
        }
        PluginEvent::Retired { name, path, generation } => {
            HealthRecord::new(component(name), "file_removed", "retired")
                .after(format!("absent (generation {generation}): stages pass spans through"))
                .detail(path.display().to_string())
        }
        PluginEvent::Swapped { plugin, version, generation } => {
            HealthRecord::new(component(plugin), "new_version", "swapped")
                .after(format!("version {version} (generation {generation})"))
        }
        PluginEvent::CreateFailed { plugin, message } => {
            HealthRecord::new(component(plugin), "create_failed", "bypassed").detail(message.clone())
        }
        PluginEvent::Panicked { plugin, message, restart_in } => {
            HealthRecord::new(component(plugin), "panic", "restart_scheduled")
                .after(format!("restart in {restart_in:?}"))
                .detail(message.clone())
        }
        PluginEvent::Restarted { plugin } => HealthRecord::new(component(plugin), "restart_due", "restarted"),
        PluginEvent::BudgetExceeded { plugin, cpu_time, budget, strikes } => {
            HealthRecord::new(component(plugin), "cpu_budget", "strike")
                .measured(format!("{cpu_time:?}"))
                .threshold(format!("{budget:?}"))
                .after(format!("{strikes} consecutive"))
        }
        PluginEvent::BreakerOpened { plugin, reason, cool_down } => {
            let (trigger, measured) = match reason {
                TripReason::Failures { failures } => ("failures", format!("{failures} failures")),
                TripReason::CpuBudget { strikes } => ("cpu_budget", format!("{strikes} calls over budget")),
                TripReason::HalfOpenTrialFailed => ("trial_failed", "trial call failed".to_owned()),
            };
            HealthRecord::new(component(plugin), trigger, "breaker_open")
                .measured(measured)
                .before("closed")
                .after(format!("open for {cool_down:?}: plugin bypassed"))
        }
        PluginEvent::BreakerClosed { plugin } => {
            HealthRecord::new(component(plugin), "trial_succeeded", "breaker_closed").before("open").after("closed")
        }
        PluginEvent::ThreadsLeftRunning { plugin, before, after } => {
            HealthRecord::new(component(plugin), "threads_left_running", "reported")
                .measured(format!("{after} threads"))
                .threshold(format!("{before} threads"))
        }
        PluginEvent::DestroyFailed { plugin, message } => {
            HealthRecord::new(component(plugin), "destroy_failed", "reported").detail(message.clone())
        }
        _ => return None,
    })
}
