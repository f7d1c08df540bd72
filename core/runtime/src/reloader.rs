//! Applying a new config to the running collector: validated in full first, then prepared on
//! every core (built and bound without swapping), then committed on every core. Any failure
//! before the commit — a schema or semantic error, a setting that needs a restart, a port that
//! cannot be bound — refuses the reload and the running config stays, untouched. See
//! [`crate::reload`] for what a reload keeps.
//!
//! Every outcome is recorded: applied reloads raise the revision (`/status`,
//! `spanpipe_config_revision`), refused ones are logged, counted
//! (`spanpipe_config_reloads_total{result="refused"}`), written to the health log and shown at
//! `/status` with every reason.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use spanpipe_config::{Config, Loader};
use spanpipe_health::{HealthRecord, HealthSink};
use spanpipe_processors::{AdaptiveSamplerHandle, MemoryLimiter};

use crate::collector::ReceiverAddresses;
use crate::components::{builtin_registry, CollectorPlan};
use crate::core_parts::CoreCommand;
use crate::reload::{config_hash, restart_only_changes, ChangeSummary, ConfigRecord, ConfigStatus, Kept};
use crate::telemetry::{CoreSlot, Sample, Telemetry};

/// How long a core may take to prepare or commit its part of a reload before the reload is
/// given up (a core busy for this long is stuck, not slow).
const CORE_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The adaptive samplers of the running config, shared with the watchdog and `/v1/adaptive_sampler`.
pub(crate) type SharedSamplers = Arc<Mutex<Vec<(String, AdaptiveSamplerHandle)>>>;
/// The memory limiters of the running config, shared with the thread that measures memory.
pub(crate) type SharedLimiters = Arc<Mutex<Vec<Arc<MemoryLimiter>>>>;

/// Why a reload was refused. The running config is unchanged in every case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The collector was started from a config with no file behind it.
    #[error("the running config was not read from a file (started with the embedded default or an in-memory config): nothing to reload")]
    NoFile,
    /// The new config does not load or fails the semantic checks; each error names its field.
    #[error("the new config is invalid: {}", errors.join("; "))]
    Invalid {
        /// Each problem, with its key path and line.
        errors: Vec<String>,
    },
    /// The new config changes settings a running process cannot take on.
    #[error("{} cannot change while spanpipe runs: restart it to apply the new value", fields.join(", "))]
    RestartRequired {
        /// The keys that changed.
        fields: Vec<&'static str>,
    },
    /// A core could not build or bind the new parts (an exporter, a listener's port).
    #[error("cannot apply the new config: {message}")]
    Apply {
        /// What failed, naming the component.
        message: String,
    },
    /// Shutdown has begun.
    #[error("spanpipe is shutting down")]
    Stopping,
}

impl ReloadError {
    /// Every reason, one per line as `/status` lists them.
    #[must_use]
    pub fn reasons(&self) -> Vec<String> {
        match self {
            Self::Invalid { errors } => errors.clone(),
            other => vec![other.to_string()],
        }
    }
}

/// What an applied (or unchanged) reload did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadOutcome {
    /// The running config's revision (unchanged when the config was).
    pub revision: u64,
    /// The running config's hash.
    pub hash: String,
    /// What changed; empty when the new config says what the running one did.
    pub changes: ChangeSummary,
}

/// The running config and the cores it runs on.
struct Running {
    config: Config,
    plan: Arc<CollectorPlan>,
    receivers: Vec<ReceiverAddresses>,
}

/// Applies new configs to the running collector; shared by the file watch, SIGHUP (through
/// [`crate::RunningCollector::reload_config_file`]) and `POST /-/reload`.
pub struct Reloader {
    running: Mutex<Running>,
    commands: Vec<mpsc::Sender<CoreCommand>>,
    file: Option<PathBuf>,
    record: ConfigRecord,
    health: Arc<dyn HealthSink>,
    telemetry: Arc<Telemetry>,
    metrics: Arc<CoreSlot>,
    samplers: SharedSamplers,
    limiters: SharedLimiters,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("file", &self.file)
            .field("status", &self.record.snapshot())
            .finish_non_exhaustive()
    }
}

/// What [`Reloader::new`] takes over from the collector's start.
pub(crate) struct ReloaderParts {
    pub(crate) config: Config,
    pub(crate) plan: Arc<CollectorPlan>,
    pub(crate) receivers: Vec<ReceiverAddresses>,
    pub(crate) commands: Vec<mpsc::Sender<CoreCommand>>,
    pub(crate) file: Option<PathBuf>,
    pub(crate) health: Arc<dyn HealthSink>,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) samplers: SharedSamplers,
    pub(crate) limiters: SharedLimiters,
    pub(crate) stop: Arc<AtomicBool>,
}

impl Reloader {
    pub(crate) fn new(parts: ReloaderParts) -> Self {
        let source = parts
            .file
            .as_ref()
            .map_or_else(|| "embedded or in-memory config".to_owned(), |file| file.display().to_string());
        let reloader = Self {
            record: ConfigRecord::new(&parts.config, source),
            running: Mutex::new(Running { config: parts.config, plan: parts.plan, receivers: parts.receivers }),
            commands: parts.commands,
            file: parts.file,
            health: parts.health,
            metrics: parts.telemetry.control_slot(),
            telemetry: parts.telemetry,
            samplers: parts.samplers,
            limiters: parts.limiters,
            stop: parts.stop,
        };
        reloader.publish();
        reloader
    }

    /// The running config's revision and hash and the last refusal.
    #[must_use]
    pub fn status(&self) -> ConfigStatus {
        self.record.snapshot()
    }

    /// Where each receiver of the running config listens.
    #[must_use]
    pub fn receivers(&self) -> Vec<ReceiverAddresses> {
        self.lock().receivers.clone()
    }

    /// Reads the config file again and applies it. `trigger` says what asked (`file_change`,
    /// `sighup`, `http`), for the log and the health log.
    ///
    /// # Errors
    /// A [`ReloadError`]; the running config stays and the refusal is recorded.
    pub fn reload_file(&self, trigger: &str) -> Result<ReloadOutcome, ReloadError> {
        let loaded = match &self.file {
            None => Err(ReloadError::NoFile),
            Some(file) => match builtin_registry() {
                Err(error) => Err(ReloadError::Invalid { errors: vec![error.to_string()] }),
                Ok(registry) => Loader::new(&registry).load_file(file).map_err(|errors| ReloadError::Invalid {
                    errors: errors.errors.iter().map(|error| format!("{}: {error}", errors.source_name)).collect(),
                }),
            },
        };
        match loaded {
            Ok((config, warnings)) => {
                for warning in warnings {
                    tracing::warn!("config reload: {warning}");
                }
                self.apply(config, trigger)
            }
            Err(error) => Err(self.refuse(trigger, error)),
        }
    }

    /// Applies `config` (already loaded) to the running collector.
    ///
    /// # Errors
    /// A [`ReloadError`]; the running config stays and the refusal is recorded.
    pub fn apply(&self, config: Config, trigger: &str) -> Result<ReloadOutcome, ReloadError> {
        let mut running = self.lock();
        match self.apply_locked(&mut running, config, trigger) {
            Ok(outcome) => {
                drop(running);
                if outcome.changes.is_empty() {
                    tracing::info!(trigger, revision = outcome.revision, "config reload: nothing changed");
                } else {
                    tracing::info!(
                        trigger,
                        revision = outcome.revision,
                        hash = %outcome.hash,
                        "config reload applied: {}",
                        outcome.changes
                    );
                    let rebound = |id: &str| {
                        let name = format!("receivers/{id}");
                        outcome.changes.added.contains(&name) || outcome.changes.changed.contains(&name)
                    };
                    for receiver in self.receivers().iter().filter(|receiver| rebound(&receiver.id)) {
                        for (protocol, address) in &receiver.listeners {
                            tracing::info!(receiver = %receiver.id, protocol = protocol.as_str(), %address, "receiver listening");
                        }
                    }
                }
                Ok(outcome)
            }
            Err(error) => {
                drop(running);
                Err(self.refuse(trigger, error))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn apply_locked(&self, running: &mut Running, config: Config, trigger: &str) -> Result<ReloadOutcome, ReloadError> {
        if self.stop.load(Ordering::Acquire) {
            return Err(ReloadError::Stopping);
        }
        let fields = restart_only_changes(&running.config, &config);
        if !fields.is_empty() {
            return Err(ReloadError::RestartRequired { fields });
        }
        CollectorPlan::check(&config)
            .map_err(|errors| ReloadError::Invalid { errors: errors.iter().map(ToString::to_string).collect() })?;
        let hash = config_hash(&config);
        let status = self.record.snapshot();
        if hash == status.hash {
            return Ok(ReloadOutcome { revision: status.revision, hash, changes: ChangeSummary::default() });
        }
        let plan = CollectorPlan::new_reusing(&config, Some((&running.config, &running.plan)))
            .map_err(|error| ReloadError::Invalid { errors: vec![error.to_string()] })?;
        let plan = Arc::new(plan);
        let kept = Arc::new(Kept::between(&running.config, &running.plan, &config, &plan));
        let changes = ChangeSummary::between(&running.plan, &plan, &kept);
        let receivers = self.prepare_everywhere(&plan, &kept)?;
        self.on_every_core(|reply| CoreCommand::Commit { reply });
        self.share_stateful_parts(&plan);
        running.config = config;
        running.plan = plan;
        running.receivers = receivers;
        // Whoever sees the new revision at `/status` must find it in the health log and in
        // `spanpipe_config_revision` too: the health record is written first, the revision is
        // recorded (which `/status` reads), and the metrics follow at once. Only an applied
        // reload, under the lock held here, moves the revision, so the next one is known.
        let revision = status.revision + 1;
        self.health.record(
            HealthRecord::new("config", trigger, "reload_applied")
                .before(format!("revision {} ({})", status.revision, status.hash))
                .after(format!("revision {revision} ({hash})"))
                .detail(changes.to_string()),
        );
        let recorded = self.record.applied(hash.clone());
        debug_assert_eq!(recorded, revision, "the revision moved outside the reload lock");
        self.publish();
        Ok(ReloadOutcome { revision, hash, changes })
    }

    /// Prepares `plan` on the first core, then on the others with the addresses it bound;
    /// aborts what was prepared when any core fails.
    fn prepare_everywhere(
        &self,
        plan: &Arc<CollectorPlan>,
        kept: &Arc<Kept>,
    ) -> Result<Vec<ReceiverAddresses>, ReloadError> {
        let mut first: Option<Vec<ReceiverAddresses>> = None;
        for (core, commands) in self.commands.iter().enumerate() {
            let (reply, answer) = mpsc::channel();
            let command =
                CoreCommand::Prepare { plan: Arc::clone(plan), kept: Arc::clone(kept), bind_as: first.clone(), reply };
            let result = match commands.send(command) {
                Ok(()) => answer
                    .recv_timeout(CORE_REPLY_TIMEOUT)
                    .unwrap_or_else(|_| Err(format!("core {core} did not answer within {CORE_REPLY_TIMEOUT:?}"))),
                Err(_) => Err(format!("core {core} has stopped")),
            };
            match result {
                Ok(addresses) => {
                    first.get_or_insert(addresses);
                }
                Err(message) => {
                    self.on_every_core(|reply| CoreCommand::Abort { reply });
                    return Err(ReloadError::Apply { message });
                }
            }
        }
        Ok(first.unwrap_or_default())
    }

    /// Sends each core the command `make` builds and waits for every answer.
    fn on_every_core(&self, make: impl Fn(mpsc::Sender<()>) -> CoreCommand) {
        let answers: Vec<mpsc::Receiver<()>> = self
            .commands
            .iter()
            .filter_map(|commands| {
                let (reply, answer) = mpsc::channel();
                commands.send(make(reply)).ok().map(|()| answer)
            })
            .collect();
        for answer in answers {
            let _ = answer.recv_timeout(CORE_REPLY_TIMEOUT);
        }
    }

    /// Hands the new plan's adaptive samplers and memory limiters to those who act on them
    /// across cores: the watchdog, `/v1/adaptive_sampler`, the memory checker.
    fn share_stateful_parts(&self, plan: &CollectorPlan) {
        let samplers = plan.adaptive_samplers();
        *self.samplers.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = samplers.clone();
        self.telemetry.set_adaptive_samplers(samplers);
        *self.limiters.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = plan.memory_limiters();
    }

    /// Records a refusal: counted, logged, in the health log and at `/status`.
    fn refuse(&self, trigger: &str, error: ReloadError) -> ReloadError {
        let reasons = error.reasons();
        tracing::error!(trigger, "config reload refused; the running config stays: {error}");
        // In the health log before it shows at `/status`, as an applied reload is.
        let status = self.record.snapshot();
        self.health.record(
            HealthRecord::new("config", trigger, "reload_refused")
                .before(format!("revision {} ({})", status.revision, status.hash))
                .after(format!("revision {} ({}), unchanged", status.revision, status.hash))
                .detail(reasons.join("; ")),
        );
        self.record.refused(reasons);
        self.publish();
        error
    }

    fn publish(&self) {
        let status = self.record.snapshot();
        self.metrics.publish(vec![
            Sample::gauge(
                "spanpipe_config_revision",
                "The running config's revision: 1 at start, +1 for each applied reload.",
                Vec::new(),
                status.revision as f64,
            ),
            Sample::gauge(
                "spanpipe_config_info",
                "The running config's hash (label `hash`); always 1.",
                vec![("hash", status.hash.clone())],
                1.0,
            ),
            Sample::counter(
                "spanpipe_config_reloads_total",
                "Config reloads by result: applied (the config changed; a reload that changes nothing is not counted) or refused.",
                vec![("result", "applied".to_owned())],
                status.reloads_applied,
            ),
            Sample::counter(
                "spanpipe_config_reloads_total",
                "Config reloads by result: applied (the config changed; a reload that changes nothing is not counted) or refused.",
                vec![("result", "refused".to_owned())],
                status.reloads_refused,
            ),
        ]);
    }
}
