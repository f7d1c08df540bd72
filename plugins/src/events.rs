//! What the plugin machinery reports: one typed event per thing that happened, with one
//! [`PluginEvent::emit`] that logs it and hands it to the caller's sink (which the runtime routes
//! to metrics and the health log).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::LoadError;
use crate::load::PluginKind;

/// Where events go: supplied by whoever builds the [`crate::PluginRegistry`]. Called from the
/// watcher thread and from data-plane cores, so it must be cheap and must not block for long.
pub type EventSink = Arc<dyn Fn(PluginEvent) + Send + Sync>;

/// Why a breaker opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TripReason {
    /// `failures` calls failed (panicked, refused or could not be created) within the window.
    Failures {
        /// How many.
        failures: u32,
    },
    /// `strikes` consecutive calls went over the CPU budget.
    CpuBudget {
        /// How many.
        strikes: u32,
    },
    /// The single trial call after a cool-down failed.
    HalfOpenTrialFailed,
}

/// Something that happened to a plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginEvent {
    /// A library passed its checks and was published.
    Loaded {
        /// Plugin name.
        name: String,
        /// Plugin version.
        version: String,
        /// What it provides.
        kind: PluginKind,
        /// The file.
        path: PathBuf,
        /// Its generation in the registry.
        generation: u64,
    },
    /// A library was not loaded.
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        error: LoadError,
    },
    /// A plugin's file was removed; the plugin is absent from now on.
    Retired {
        /// Plugin name.
        name: String,
        /// The file that went away.
        path: PathBuf,
        /// The generation that marks it absent.
        generation: u64,
    },
    /// An instance was created from a newly published version, replacing the previous one at a
    /// batch (or cycle) boundary.
    Swapped {
        /// Plugin name.
        plugin: String,
        /// The version now running.
        version: String,
        /// Its generation.
        generation: u64,
    },
    /// An instance could not be created (its `create` refused the config or panicked).
    CreateFailed {
        /// Plugin name.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// A call refused its input (`STATUS_ERROR`).
    CallFailed {
        /// Plugin name.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// A call panicked; the instance was destroyed and a restart scheduled.
    Panicked {
        /// Plugin name.
        plugin: String,
        /// The panic message.
        message: String,
        /// When the restart is due.
        restart_in: Duration,
    },
    /// A new instance replaced one that panicked.
    Restarted {
        /// Plugin name.
        plugin: String,
    },
    /// A call used more CPU time than its budget.
    BudgetExceeded {
        /// Plugin name.
        plugin: String,
        /// CPU time the call used.
        cpu_time: Duration,
        /// The budget.
        budget: Duration,
        /// Consecutive calls over budget so far.
        strikes: u32,
    },
    /// The breaker opened: the plugin is bypassed for the cool-down.
    BreakerOpened {
        /// Plugin name.
        plugin: String,
        /// Why.
        reason: TripReason,
        /// How long it stays open.
        cool_down: Duration,
    },
    /// A trial call after a cool-down succeeded: the plugin is in use again.
    BreakerClosed {
        /// Plugin name.
        plugin: String,
    },
    /// An instance was destroyed but the process has more threads than before it was created:
    /// the plugin probably started threads and left them running.
    ThreadsLeftRunning {
        /// Plugin name.
        plugin: String,
        /// Threads before the instance was created.
        before: usize,
        /// Threads after it was destroyed.
        after: usize,
    },
    /// An instance's `destroy` failed or panicked.
    DestroyFailed {
        /// Plugin name.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
}

impl PluginEvent {
    /// Logs the event (one line) and hands it to `sink`.
    pub fn emit(self, sink: &EventSink) {
        self.log();
        sink(self);
    }

    fn log(&self) {
        match self {
            Self::Loaded { name, version, kind, path, generation } => {
                tracing::info!(plugin = %name, %version, %kind, path = %path.display(), generation, "plugin loaded");
            }
            Self::Refused { path, error } => match error {
                LoadError::Refused { field, expected, found, .. } => tracing::error!(
                    path = %path.display(), field = field.as_str(), %expected, %found, "{error}"
                ),
                _ => tracing::error!(path = %path.display(), "{error}"),
            },
            Self::Retired { name, path, generation } => {
                tracing::info!(plugin = %name, path = %path.display(), generation, "plugin removed; stages pass spans through");
            }
            Self::Swapped { plugin, version, generation } => {
                tracing::debug!(%plugin, %version, generation, "plugin instance replaced by a new version");
            }
            Self::CreateFailed { plugin, message } => {
                tracing::error!(%plugin, %message, "plugin instance could not be created")
            }
            Self::CallFailed { plugin, message } => tracing::warn!(%plugin, %message, "plugin call failed"),
            Self::Panicked { plugin, message, restart_in } => {
                tracing::error!(%plugin, panic = %message, ?restart_in, "plugin panicked; instance destroyed, restart scheduled");
            }
            Self::Restarted { plugin } => tracing::info!(%plugin, "plugin instance restarted"),
            Self::BudgetExceeded { plugin, cpu_time, budget, strikes } => {
                tracing::warn!(%plugin, ?cpu_time, ?budget, strikes, "plugin call over its CPU budget");
            }
            Self::BreakerOpened { plugin, reason, cool_down } => {
                tracing::error!(%plugin, ?reason, ?cool_down, "plugin breaker open: plugin bypassed");
            }
            Self::BreakerClosed { plugin } => tracing::info!(%plugin, "plugin breaker closed: plugin in use again"),
            Self::ThreadsLeftRunning { plugin, before, after } => {
                tracing::warn!(%plugin, before, after, "plugin instance destroyed but left threads running");
            }
            Self::DestroyFailed { plugin, message } => {
                tracing::warn!(%plugin, %message, "plugin instance failed to destroy")
            }
        }
    }
}
