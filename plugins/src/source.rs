//! A source of spans backed by a source plugin.

use std::sync::Arc;
use std::time::{Duration, Instant};

use spanpipe_core::SpanBatch;

use crate::error::CallError;
use crate::failure::{BreakerState, FailureConfig, OnFailure};
use crate::ffi::{measure_cpu, with_message_sink, Instance, RequestCollector};
use crate::load::{EntryPoints, PluginKind};
use crate::processor::empty_object;
use crate::registry::PluginRegistry;
use crate::supervisor::{FailureStats, Gate, Supervisor};

/// The config of a plugin source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginSourceConfig {
    /// The plugin's name (from its descriptor). Required.
    pub plugin: String,
    /// The config handed to the plugin's `create`, as JSON text. Defaults to `{}`.
    pub config_json: String,
    /// Time between cycles. Defaults to `10s`.
    pub interval: Duration,
    /// What happens when the plugin fails, and when to stop calling it. `on_failure: drop`
    /// discards what a failed cycle pushed before failing; `pass_through` keeps it.
    pub failure: FailureConfig,
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}

impl PluginSourceConfig {
    /// A source running `plugin` every 10 s with an empty config and default failure settings.
    #[must_use]
    pub fn new(plugin: impl Into<String>) -> Self {
        Self {
            plugin: plugin.into(),
            config_json: empty_object(),
            interval: default_interval(),
            failure: FailureConfig::default(),
        }
    }
}

/// What a plugin source did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PluginSourceStats {
    /// Cycles in which the plugin was called.
    pub cycles: u64,
    /// Cycles skipped: plugin absent, breaker open or restart pending.
    pub cycles_skipped: u64,
    /// Batches handed on.
    pub batches_out: u64,
    /// Spans in those batches.
    pub spans_out: u64,
    /// Requests the plugin pushed that did not scan or held no spans.
    pub requests_rejected: u64,
    /// Spans a failed cycle had pushed, discarded because `on_failure` is `drop`.
    pub spans_dropped_on_failure: u64,
    /// What went wrong and what was done about it.
    pub failures: FailureStats,
    /// The registry generation the source runs (0: none seen yet).
    pub generation: u64,
}

/// A source plugin on one core, driven by the runtime's timer: call [`PluginSource::poll`] at
/// [`PluginSource::next_deadline`].
#[derive(Debug)]
pub struct PluginSource {
    supervisor: Supervisor,
    interval: Duration,
    next_cycle: Instant,
    stats: PluginSourceStats,
}

fn call_emit(instance: &mut Instance, collector: &mut RequestCollector) -> Result<(), CallError> {
    let EntryPoints::Source { emit, .. } = instance.plugin().entry_points() else {
        return Err(CallError::WrongKind { expected: PluginKind::Source, found: instance.plugin().kind() });
    };
    let sink = collector.sink();
    let handle = instance.handle();
    // SAFETY: `emit` belongs to the instance's plugin, whose library the instance keeps mapped; the
    // sink and its collector are valid for the call.
    with_message_sink(|error| unsafe { emit(handle, &raw const sink, error) })
}

impl PluginSource {
    /// A source whose first cycle is due at `start`.
    #[must_use]
    pub fn new(config: &PluginSourceConfig, registry: Arc<PluginRegistry>, start: Instant) -> Self {
        Self {
            supervisor: Supervisor::new(
                &config.plugin,
                &config.config_json,
                PluginKind::Source,
                config.failure,
                registry,
            ),
            interval: config.interval,
            next_cycle: start,
            stats: PluginSourceStats::default(),
        }
    }

    /// When the next cycle is due.
    #[must_use]
    pub fn next_deadline(&self) -> Instant {
        self.next_cycle
    }

    /// Runs a cycle if one is due at `now` and returns what it emitted (nothing otherwise).
    /// A newly published version takes over here, between cycles.
    pub fn poll(&mut self, now: Instant) -> Vec<SpanBatch> {
        if now < self.next_cycle {
            return Vec::new();
        }
        self.next_cycle = now + self.interval;
        let mut collector = RequestCollector::default();
        let (outcome, cpu_time) = match self.supervisor.prepare(now) {
            Gate::Run(instance) => measure_cpu(|| call_emit(instance, &mut collector)),
            Gate::Absent | Gate::Unavailable => {
                self.stats.cycles_skipped += 1;
                return Vec::new();
            }
        };
        self.stats.cycles += 1;
        self.stats.requests_rejected += collector.rejected;
        self.supervisor.record(now, &outcome, cpu_time);
        let batches = collector.batches;
        if outcome.is_err() && self.supervisor.failure().on_failure == OnFailure::Drop {
            self.stats.spans_dropped_on_failure += batches.iter().map(|batch| batch.len() as u64).sum::<u64>();
            return Vec::new();
        }
        self.stats.batches_out += batches.len() as u64;
        self.stats.spans_out += batches.iter().map(|batch| batch.len() as u64).sum::<u64>();
        batches
    }

    /// What the source did so far.
    #[must_use]
    pub fn stats(&self) -> PluginSourceStats {
        PluginSourceStats { failures: self.supervisor.stats(), generation: self.supervisor.generation(), ..self.stats }
    }

    /// Where the source's breaker stands.
    #[must_use]
    pub fn breaker_state(&self) -> BreakerState {
        self.supervisor.breaker_state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_config_defaults() {
        let config = PluginSourceConfig::new("heartbeat");
        assert_eq!((config.config_json.as_str(), config.interval), ("{}", Duration::from_secs(10)));
    }
}
