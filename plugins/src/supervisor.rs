//! The life of the one instance a stage (processor or source) runs: picking up new versions at a
//! boundary, restarting after a panic with backoff, the breaker and the CPU budget. The stages do
//! the calls; this decides whether there is an instance to call and books what the call did.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::CallError;
use crate::events::{PluginEvent, TripReason};
use crate::failure::{Backoff, BreakerState, CircuitBreaker, FailureConfig};
use crate::ffi::Instance;
use crate::load::{LoadedPlugin, PluginKind};
use crate::registry::PluginRegistry;

/// Counters of what a plugin did wrong, and what was done about it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureStats {
    /// Calls that panicked.
    pub panics: u64,
    /// Calls the plugin refused (`STATUS_ERROR`).
    pub call_errors: u64,
    /// Instances that could not be created.
    pub create_failures: u64,
    /// Instances created again after a panic.
    pub restarts: u64,
    /// Times the breaker opened.
    pub breaker_trips: u64,
    /// Calls over the CPU budget.
    pub budget_overruns: u64,
    /// Instances replaced by a newly published version.
    pub swaps: u64,
    /// Retired instances that left threads running.
    pub threads_left_running: u64,
}

/// Whether a call can be made now.
pub(crate) enum Gate<'a> {
    /// Call this instance, then [`Supervisor::record`] the outcome.
    Run(&'a mut Instance),
    /// Nothing is published under the name (or it was removed): pass through.
    Absent,
    /// The plugin is there but not callable now (breaker open, restart pending, create failed):
    /// apply `on_failure`.
    Unavailable,
}

pub(crate) struct Supervisor {
    plugin_name: String,
    config_json: String,
    expected_kind: PluginKind,
    failure: FailureConfig,
    registry: Arc<PluginRegistry>,
    /// The registry generation this supervisor acted on; 0 before the first look.
    seen_generation: u64,
    plugin: Option<Arc<LoadedPlugin>>,
    instance: Option<Instance>,
    /// Set after a panic or failed create: no instance until then.
    restart_at: Option<Instant>,
    /// Whether the next create replaces a failed instance (counted as a restart).
    restarting: bool,
    backoff: Backoff,
    breaker: CircuitBreaker,
    strikes: u32,
    stats: FailureStats,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Supervisor")
            .field("plugin", &self.plugin_name)
            .field("generation", &self.seen_generation)
            .field("running", &self.instance.is_some())
            .field("breaker", &self.breaker.state())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    pub(crate) fn new(
        plugin_name: &str,
        config_json: &str,
        expected_kind: PluginKind,
        failure: FailureConfig,
        registry: Arc<PluginRegistry>,
    ) -> Self {
        Self {
            plugin_name: plugin_name.to_owned(),
            config_json: config_json.to_owned(),
            expected_kind,
            failure,
            registry,
            seen_generation: 0,
            plugin: None,
            instance: None,
            restart_at: None,
            restarting: false,
            backoff: Backoff::new(failure.restart_backoff),
            breaker: CircuitBreaker::new(failure.breaker),
            strikes: 0,
            stats: FailureStats::default(),
        }
    }

    pub(crate) fn failure(&self) -> &FailureConfig {
        &self.failure
    }

    pub(crate) fn stats(&self) -> FailureStats {
        self.stats
    }

    pub(crate) fn generation(&self) -> u64 {
        self.seen_generation
    }

    pub(crate) fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// The version running (or to run), if any.
    pub(crate) fn plugin(&self) -> Option<&Arc<LoadedPlugin>> {
        self.plugin.as_ref()
    }

    /// Called at a boundary (before a batch or cycle): follows the registry, restarts when due,
    /// and says whether to call.
    pub(crate) fn prepare(&mut self, now: Instant) -> Gate<'_> {
        let generation = self.registry.generation(&self.plugin_name);
        if generation != self.seen_generation {
            self.switch_to(generation);
        }
        if self.plugin.is_none() {
            return Gate::Absent;
        }
        if !self.breaker.admits(now) {
            return Gate::Unavailable;
        }
        if self.instance.is_none() {
            if self.restart_at.is_some_and(|at| now < at) {
                return Gate::Unavailable;
            }
            self.create(now);
        }
        match self.instance.as_mut() {
            Some(instance) => Gate::Run(instance),
            None => Gate::Unavailable,
        }
    }

    /// Replaces what runs with what the registry publishes now.
    fn switch_to(&mut self, generation: u64) {
        let published = self.registry.current(&self.plugin_name).and_then(|published| published.plugin);
        let had_plugin = self.plugin.is_some();
        self.retire_instance();
        self.plugin = match published {
            Some(plugin) if plugin.kind() != self.expected_kind => {
                let error = CallError::WrongKind { expected: self.expected_kind, found: plugin.kind() };
                self.registry
                    .emit(PluginEvent::CreateFailed { plugin: self.plugin_name.clone(), message: error.to_string() });
                None
            }
            other => other,
        };
        if had_plugin && self.plugin.is_some() {
            self.stats.swaps += 1;
        }
        if let Some(plugin) = &self.plugin {
            self.registry.emit(PluginEvent::Swapped {
                plugin: self.plugin_name.clone(),
                version: plugin.version().to_owned(),
                generation,
            });
        }
        // A new version starts with a clean slate: its predecessor's failures are not its own.
        self.seen_generation = generation;
        self.restart_at = None;
        self.restarting = false;
        self.strikes = 0;
        self.backoff = Backoff::new(self.failure.restart_backoff);
        self.breaker = CircuitBreaker::new(self.failure.breaker);
    }

    fn create(&mut self, now: Instant) {
        let Some(plugin) = &self.plugin else { return };
        match Instance::create(plugin, &self.config_json) {
            Ok(instance) => {
                self.instance = Some(instance);
                self.restart_at = None;
                if std::mem::take(&mut self.restarting) {
                    self.stats.restarts += 1;
                    self.registry.emit(PluginEvent::Restarted { plugin: self.plugin_name.clone() });
                }
            }
            Err(error) => {
                self.stats.create_failures += 1;
                let message = match error {
                    CallError::Refused(message) | CallError::Panicked(message) => message,
                    other => other.to_string(),
                };
                self.registry.emit(PluginEvent::CreateFailed { plugin: self.plugin_name.clone(), message });
                self.schedule_restart(now);
                self.breaker_failure(now);
            }
        }
    }

    fn schedule_restart(&mut self, now: Instant) -> Duration {
        let delay = self.backoff.next_delay();
        self.restart_at = Some(now + delay);
        self.restarting = true;
        delay
    }

    /// Books the outcome of a call made through [`Gate::Run`] at `now`, which used `cpu_time`.
    pub(crate) fn record(&mut self, now: Instant, outcome: &Result<(), CallError>, cpu_time: Duration) {
        match outcome {
            Ok(()) => self.record_success(now, cpu_time),
            Err(CallError::Refused(message)) => {
                self.stats.call_errors += 1;
                self.registry
                    .emit(PluginEvent::CallFailed { plugin: self.plugin_name.clone(), message: message.clone() });
                self.breaker_failure(now);
            }
            Err(error) => {
                self.stats.panics += 1;
                let message = match error {
                    CallError::Panicked(message) => message.clone(),
                    other => other.to_string(),
                };
                self.retire_instance();
                let restart_in = self.schedule_restart(now);
                self.registry.emit(PluginEvent::Panicked { plugin: self.plugin_name.clone(), message, restart_in });
                self.breaker_failure(now);
            }
        }
    }

    fn record_success(&mut self, now: Instant, cpu_time: Duration) {
        let over_budget = self.failure.cpu_budget.filter(|budget| cpu_time > *budget);
        let Some(budget) = over_budget else {
            self.strikes = 0;
            self.backoff.reset();
            if self.breaker.record_success() {
                self.registry.emit(PluginEvent::BreakerClosed { plugin: self.plugin_name.clone() });
            }
            return;
        };
        self.stats.budget_overruns += 1;
        self.strikes += 1;
        self.registry.emit(PluginEvent::BudgetExceeded {
            plugin: self.plugin_name.clone(),
            cpu_time,
            budget,
            strikes: self.strikes,
        });
        if self.breaker.state() == BreakerState::HalfOpen {
            // The trial call was too slow: that is not the success that closes the breaker.
            self.trip(now, TripReason::HalfOpenTrialFailed);
        } else if self.strikes >= self.failure.budget_strikes.max(1) {
            let strikes = self.strikes;
            self.trip(now, TripReason::CpuBudget { strikes });
        }
    }

    fn breaker_failure(&mut self, now: Instant) {
        if let Some(reason) = self.breaker.record_failure(now) {
            self.announce_trip(reason);
        }
    }

    fn trip(&mut self, now: Instant, reason: TripReason) {
        self.breaker.open(now);
        self.strikes = 0;
        self.announce_trip(reason);
    }

    fn announce_trip(&mut self, reason: TripReason) {
        self.stats.breaker_trips += 1;
        self.registry.emit(PluginEvent::BreakerOpened {
            plugin: self.plugin_name.clone(),
            reason,
            cool_down: self.breaker.cool_down(),
        });
    }

    /// Destroys the running instance, if any, and reports what it left behind.
    fn retire_instance(&mut self) {
        let Some(instance) = self.instance.take() else { return };
        let retirement = instance.retire();
        if let Some(error) = retirement.destroy_error {
            self.registry
                .emit(PluginEvent::DestroyFailed { plugin: self.plugin_name.clone(), message: error.to_string() });
        }
        if let Some((before, after)) = retirement.threads_left {
            self.stats.threads_left_running += 1;
            self.registry.emit(PluginEvent::ThreadsLeftRunning { plugin: self.plugin_name.clone(), before, after });
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.retire_instance();
    }
}
