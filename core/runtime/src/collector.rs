//! Starting and stopping the collector: one glommio executor per data-plane core, each running
//! its own receivers, pipelines and exporters; shutdown that drains and reports what it lost.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use spanpipe_config::Config;
use spanpipe_health::{HealthLog, HealthLogOptions, HealthSink, MemoryHealthSink};
use spanpipe_transports::otlp::Protocol;

use crate::components::{CollectorPlan, PlanError};
use crate::config_watch::ConfigWatch;
use crate::core_parts::{run_core, CoreContext};
use crate::plugins::Plugins;
use crate::preflight::{check_io_uring, PreflightError};
use crate::reloader::{ReloadError, ReloadOutcome, Reloader, ReloaderParts, SharedLimiters, SharedSamplers};
use crate::telemetry::{self, Telemetry, TelemetryServerError};
use crate::watchdog::memory::{self as memory_watchdog, MemoryWatchdog};
use crate::watchdog::{self, AdmissionGate, CpuProbe, MemoryProbe, Watchdog};
use crate::{cores, hugepages};
use spanpipe_processors::MemoryLimiter;

/// How often the memory checker looks for shutdown.
const IDLE_TICK: Duration = Duration::from_millis(50);

/// Memory each core's executor sets aside for storage I/O: glommio's minimum (see where it is
/// used).
const IO_MEMORY: usize = 64 << 10;

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// io_uring is not usable here.
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// The config could not be prepared.
    #[error(transparent)]
    Plan(#[from] Box<PlanError>),
    /// The CPU set could not be read.
    #[error("cannot read the CPU affinity mask: {0}")]
    Cpus(std::io::Error),
    /// A core could not start (an executor, a listener, an exporter).
    #[error("core {core} (CPU {cpu}): {message}")]
    Core {
        /// Index of the data-plane core.
        core: usize,
        /// The CPU it is pinned to.
        cpu: usize,
        /// What failed, naming the component.
        message: String,
    },
    /// The telemetry endpoint could not be served.
    #[error(transparent)]
    Telemetry(#[from] TelemetryServerError),
    /// The plugin directory could not be read or watched.
    #[error("plugins.dir: {0}")]
    Plugins(#[from] spanpipe_plugins::HostError),
    /// The health log could not be opened.
    #[error("service.health_log: {0}")]
    HealthLog(#[from] spanpipe_health::HealthLogError),
    /// The config file could not be watched for changes.
    #[error("watching the config file for changes: {0}")]
    ConfigWatch(#[from] notify::Error),
}

/// The addresses one receiver listens on (the same on every core).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiverAddresses {
    /// The receiver's id.
    pub id: String,
    /// Each listener's protocol and bound address.
    pub listeners: Vec<(Protocol, SocketAddr)>,
}

impl ReceiverAddresses {
    /// Where the listener of `protocol` is bound, if the receiver has one.
    #[must_use]
    pub fn address(&self, protocol: Protocol) -> Option<SocketAddr> {
        self.listeners.iter().find(|(served, _)| *served == protocol).map(|(_, address)| *address)
    }
}

/// What a core could not deliver when it stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Spans accepted but not delivered by the deadline (counted in the exporters' and the
    /// pipelines' drop metrics too).
    pub undelivered_spans: u64,
    /// Spans exporters gave up on earlier, while running: refused by the backend as permanent
    /// errors, or retries exhausted (`spanpipe_exporter_dropped_spans_total`).
    pub dropped_while_running: u64,
}

/// A started collector.
#[derive(Debug)]
pub struct RunningCollector {
    cores: Vec<glommio::ExecutorJoinHandle<ShutdownReport>>,
    stop: Arc<AtomicBool>,
    telemetry: Arc<Telemetry>,
    telemetry_server: Option<(SocketAddr, std::thread::JoinHandle<()>)>,
    telemetry_stop: Arc<AtomicBool>,
    reloader: Option<Arc<Reloader>>,
    config_watch: Option<ConfigWatch>,
    cpus: Vec<usize>,
    memory_checker: Option<std::thread::JoinHandle<()>>,
    watchdog: Option<std::thread::JoinHandle<()>>,
    memory_watchdog: Option<std::thread::JoinHandle<()>>,
    /// The plugin registry and the directory watch; dropped (the watch stopped) after the cores.
    plugins: Option<Plugins>,
    health: Arc<dyn HealthSink>,
}

/// How to start: the parts of the run the config does not hold.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Where to serve `/metrics`, `/healthz`, `/readyz`; `None` serves none.
    pub telemetry_address: Option<SocketAddr>,
    /// Where the watchdog reads CPU use; `None` measures the process (tests inject figures).
    pub cpu_probe: Option<CpuProbe>,
    /// Where the watchdog reads memory use; `None` measures the process (tests inject figures).
    pub memory_probe: Option<MemoryProbe>,
    /// The file the config was read from: reloads read it again.
    pub config_file: Option<PathBuf>,
    /// Reload when the config file changes (inotify, debounced by this long); `None` reloads
    /// only when asked (SIGHUP through the binary, `POST /-/reload`).
    pub watch_config: Option<Duration>,
}

impl RunningCollector {
    /// Starts the collector described by `config`: checks io_uring, prepares every component,
    /// starts one executor per data-plane core (pinned), and returns once every core listens.
    ///
    /// # Errors
    /// A [`StartError`] naming what failed; nothing keeps running then.
    pub fn start(config: &Config, options: &StartOptions) -> Result<Self, StartError> {
        check_io_uring()?;
        hugepages::disable_transparent_huge_pages();
        let plan = Arc::new(CollectorPlan::new(config).map_err(Box::new)?);
        let cpus = cores::data_plane_cpus(config.service.cores).map_err(StartError::Cpus)?;
        let shutdown_timeout: Duration = config.service.shutdown_timeout.into();
        let telemetry = Telemetry::new(cpus.len());
        let health = open_health_log(config, options.config_file.as_deref())?;
        let plugins = Plugins::start(&config.plugins, Arc::clone(&health), telemetry.control_slot())?;
        let stop = Arc::new(AtomicBool::new(false));
        let admission = AdmissionGate::new(&config.service.watchdog.memory);
        let telemetry_stop = Arc::new(AtomicBool::new(false));

        let mut running = Self {
            cores: Vec::new(),
            stop: Arc::clone(&stop),
            telemetry: Arc::clone(&telemetry),
            telemetry_server: None,
            telemetry_stop: Arc::clone(&telemetry_stop),
            reloader: None,
            config_watch: None,
            cpus: cpus.clone(),
            memory_checker: None,
            watchdog: None,
            memory_watchdog: None,
            plugins: None,
            health,
        };
        telemetry.set_health(Arc::clone(&running.health));
        let registry = Arc::clone(plugins.registry());
        if !plugins.watching() && (!plan.sources.is_empty() || plan.has_plugin_stages()) {
            tracing::warn!("the config uses plugin components but sets no `plugins.dir`: they pass spans through");
        }
        running.plugins = Some(plugins);
        // Cores start one after the other: the first binds the configured addresses (port 0
        // picks a free port) and the others bind exactly what it got, with SO_REUSEPORT.
        let mut bound: Option<Vec<ReceiverAddresses>> = None;
        let mut commands = Vec::with_capacity(cpus.len());
        for (core, &cpu) in cpus.iter().enumerate() {
            let (ready_tx, ready_rx) = mpsc::channel();
            let (command_tx, command_rx) = mpsc::channel();
            commands.push(command_tx);
            let context = CoreContext {
                core,
                plan: Arc::clone(&plan),
                bind_as: bound.clone(),
                plugins: Arc::clone(&registry),
                health: Arc::clone(&running.health),
                slot: telemetry.core_slot(core),
                admission: admission.clone(),
                stop: Arc::clone(&stop),
                shutdown_timeout,
                commands: command_rx,
            };
            let spawned = LocalExecutorBuilder::new(Placement::Fixed(cpu))
                .name(&format!("spanpipe-core-{core}"))
                // glommio preallocates and registers this much for storage (DMA file) I/O, 10 MiB
                // by default, resident from the start. Cores only do network I/O (the file
                // exporter writes from its own thread), so they take the minimum.
                .io_memory(IO_MEMORY)
                .spawn(move || run_core(context, ready_tx));
            let handle = match spawned {
                Ok(handle) => handle,
                Err(error) => {
                    running.abort();
                    return Err(StartError::Core { core, cpu, message: format!("cannot start the executor: {error}") });
                }
            };
            running.cores.push(handle);
            match ready_rx.recv() {
                Ok(Ok(addresses)) => {
                    telemetry.core_ready();
                    bound.get_or_insert(addresses);
                }
                Ok(Err(message)) => {
                    running.abort();
                    return Err(StartError::Core { core, cpu, message });
                }
                Err(_) => {
                    running.abort();
                    let message = "the executor stopped while starting (see the log above)".to_owned();
                    return Err(StartError::Core { core, cpu, message });
                }
            }
        }
        let samplers: SharedSamplers = Arc::new(Mutex::new(plan.adaptive_samplers()));
        let limiters: SharedLimiters = Arc::new(Mutex::new(plan.memory_limiters()));
        running.memory_checker = start_memory_checker(Arc::clone(&limiters), Arc::clone(&stop));
        telemetry.set_adaptive_samplers(plan.adaptive_samplers());
        running.watchdog = watchdog::start(Watchdog {
            config: config.service.watchdog.cpu.clone(),
            samplers: Arc::clone(&samplers),
            cpus: cpus.len(),
            probe: options.cpu_probe.clone(),
            health: Arc::clone(&running.health),
            metrics: telemetry.control_slot(),
            stop: Arc::clone(&stop),
        });
        running.memory_watchdog = memory_watchdog::start(MemoryWatchdog {
            config: config.service.watchdog.memory.clone(),
            gate: admission,
            probe: options.memory_probe.clone(),
            health: Arc::clone(&running.health),
            metrics: telemetry.control_slot(),
            stop: Arc::clone(&stop),
        });
        let reloader = Arc::new(Reloader::new(ReloaderParts {
            config: config.clone(),
            plan: Arc::clone(&plan),
            receivers: bound.unwrap_or_default(),
            commands,
            file: options.config_file.clone(),
            health: Arc::clone(&running.health),
            telemetry: Arc::clone(&telemetry),
            samplers,
            limiters,
            stop: Arc::clone(&stop),
        }));
        telemetry.set_reloader(Arc::clone(&reloader));
        running.reloader = Some(Arc::clone(&reloader));
        if let (Some(debounce), Some(file)) = (options.watch_config, options.config_file.as_ref()) {
            match ConfigWatch::start(file, debounce, Arc::clone(&reloader)) {
                Ok(watch) => running.config_watch = Some(watch),
                Err(error) => {
                    running.abort();
                    return Err(error.into());
                }
            }
        }
        if let Some(address) = options.telemetry_address {
            match telemetry::serve(Arc::clone(&telemetry), address, telemetry_stop) {
                Ok(server) => running.telemetry_server = Some(server),
                Err(error) => {
                    running.abort();
                    return Err(error.into());
                }
            }
        }
        Ok(running)
    }

    /// The CPUs the data plane runs on.
    #[must_use]
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }

    /// Where each receiver of the running config listens.
    #[must_use]
    pub fn receivers(&self) -> Vec<ReceiverAddresses> {
        self.reloader.as_ref().map(|reloader| reloader.receivers()).unwrap_or_default()
    }

    /// Reads the config file again and applies it (what SIGHUP does). `trigger` names what asked.
    ///
    /// # Errors
    /// A [`ReloadError`]: the running config stays; the refusal is logged, counted, written to
    /// the health log and shown at `/status`.
    pub fn reload_config_file(&self, trigger: &str) -> Result<ReloadOutcome, ReloadError> {
        self.reloader.as_ref().ok_or(ReloadError::Stopping)?.reload_file(trigger)
    }

    /// Where telemetry is served, if it is.
    #[must_use]
    pub fn telemetry_address(&self) -> Option<SocketAddr> {
        self.telemetry_server.as_ref().map(|(address, _)| *address)
    }

    /// The metrics as `/metrics` renders them.
    #[must_use]
    pub fn render_metrics(&self) -> String {
        self.telemetry.render()
    }

    /// Stops accepting, drains processors and queues, flushes exporters within the config's
    /// `service.shutdown_timeout`, and reports what could not be delivered.
    #[must_use]
    pub fn shutdown(mut self) -> ShutdownReport {
        // No reload may start once cores begin to stop.
        self.config_watch = None;
        self.telemetry.set_stopping();
        self.stop.store(true, Ordering::Release);
        let mut report = ShutdownReport::default();
        for core in self.cores.drain(..) {
            match core.join() {
                Ok(core_report) => {
                    report.undelivered_spans += core_report.undelivered_spans;
                    report.dropped_while_running += core_report.dropped_while_running;
                }
                Err(error) => tracing::error!(%error, "a data-plane core ended with an error"),
            }
        }
        self.stop_telemetry();
        if let Some(checker) = self.memory_checker.take() {
            let _ = checker.join();
        }
        for watchdog in [self.watchdog.take(), self.memory_watchdog.take()].into_iter().flatten() {
            let _ = watchdog.join();
        }
        // Every stage is gone with its core: stop watching the plugin directory.
        self.plugins = None;
        report
    }

    /// The most recent health-log records (self-healing actions), newest last.
    #[must_use]
    pub fn health_records(&self, count: usize) -> Vec<spanpipe_health::HealthRecord> {
        self.health.latest(count)
    }

    fn stop_telemetry(&mut self) {
        self.telemetry_stop.store(true, Ordering::Release);
        if let Some((_, thread)) = self.telemetry_server.take() {
            let _ = thread.join();
        }
    }

    /// Stops whatever started when starting fails half-way.
    fn abort(&mut self) {
        self.stop.store(true, Ordering::Release);
        for core in self.cores.drain(..) {
            let _ = core.join();
        }
        self.stop_telemetry();
    }
}

/// The health log of `service.health_log.path`, or one kept in memory when none is set.
fn open_health_log(config: &Config, config_file: Option<&std::path::Path>) -> Result<Arc<dyn HealthSink>, StartError> {
    let settings = &config.service.health_log;
    let options = HealthLogOptions::new(settings.size);
    Ok(match (&settings.path, config_file) {
        (Some(path), _) => Arc::new(HealthLog::open_with(path, &options)?),
        // The default place is a convenience, not a requirement: a directory spanpipe may not
        // write (a read-only /etc) must not keep it from starting.
        (None, Some(file)) => {
            let path = default_health_log_path(file);
            match HealthLog::open_with(&path, &options) {
                Ok(log) => Arc::new(log),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot open the default health log; keeping health records in memory (set service.health_log.path)");
                    Arc::new(MemoryHealthSink::new())
                }
            }
        }
        (None, None) => Arc::new(MemoryHealthSink::new()),
    })
}

/// Where the health log is kept when `service.health_log.path` is not set: beside the config
/// file, named after it (`/etc/spanpipe/gateway.yaml` → `/etc/spanpipe/gateway.health.log`), so
/// that collectors run from different configs never share one.
#[must_use]
pub fn default_health_log_path(config_file: &std::path::Path) -> PathBuf {
    let stem = config_file.file_stem().map_or_else(|| "spanpipe".into(), |stem| stem.to_string_lossy().into_owned());
    config_file.with_file_name(format!("{stem}.health.log"))
}

/// Measures memory for every memory limiter at its `check_interval`, on a thread of its own so
/// that reading `/proc` never runs on a data-plane core. The limiters are those of the running
/// config (a reload replaces the list); the thread idles while there are none.
fn start_memory_checker(limiters: SharedLimiters, stop: Arc<AtomicBool>) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new().name("spanpipe-memory".into()).spawn(move || {
        // When each limiter is next due, by identity (a reload may add or remove limiters).
        let mut next_check: Vec<(Arc<MemoryLimiter>, Instant)> = Vec::new();
        while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            let current = limiters.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            next_check.retain(|(limiter, _)| current.iter().any(|known| Arc::ptr_eq(known, limiter)));
            for limiter in current {
                if !next_check.iter().any(|(known, _)| Arc::ptr_eq(known, &limiter)) {
                    next_check.push((limiter, now));
                }
            }
            for (limiter, next) in &mut next_check {
                if now >= *next {
                    if let Err(error) = limiter.check() {
                        tracing::error!(%error, "memory_limiter cannot measure memory; keeping the previous figure");
                    }
                    *next = now + limiter.check_interval();
                }
            }
            let wake = next_check
                .iter()
                .map(|(_, next)| *next)
                .min()
                .map_or(IDLE_TICK, |next| next.saturating_duration_since(now));
            std::thread::sleep(wake.min(IDLE_TICK));
        }
    });
    match spawned {
        Ok(thread) => Some(thread),
        Err(error) => {
            tracing::error!(%error, "cannot start the memory checker; memory limits use the figures measured at start");
            None
        }
    }
}
