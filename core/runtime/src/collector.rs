//! Starting and stopping the collector: one glommio executor per data-plane core, each running
//! its own receivers, pipelines and exporters; shutdown that drains and reports what it lost.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use spanpipe_config::Config;
use spanpipe_core::SpanBatch;
use spanpipe_exporters::{DropReason as ExporterDropReason, Exporter};
use spanpipe_health::{HealthLog, HealthLogOptions, HealthSink, MemoryHealthSink};
use spanpipe_plugins::{PluginRegistry, PluginSource};
use spanpipe_processors::{AdaptiveSamplerHandle, MemoryLimiter, Permit};
use spanpipe_transports::otlp::{Accepted, Protocol, Refusal, RoomWait, RunningReceiver, SpanSink};

use crate::components::{CollectorPlan, PlanError};
use crate::pipeline::{Pipeline, FULL_RETRY_AFTER};
use crate::plugins::Plugins;
use crate::preflight::{check_io_uring, PreflightError};
use crate::receivers::ReceiverCodecs;
use crate::telemetry::{self, CoreSlot, Telemetry, TelemetryServerError, PUBLISH_INTERVAL};
use crate::watchdog::{self, CpuProbe, Watchdog};
use crate::{cores, hugepages, metrics};

/// How often a core checks for shutdown and retries waiting batches when no processor deadline
/// is sooner.
const IDLE_TICK: Duration = Duration::from_millis(50);

/// Memory each core's executor sets aside for storage I/O: glommio's minimum (see where it is
/// used).
const IO_MEMORY: usize = 64 << 10;

/// What a client is told to wait while the collector shuts down.
const SHUTDOWN_RETRY_AFTER: Duration = Duration::from_secs(5);

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
    receivers: Vec<ReceiverAddresses>,
    cpus: Vec<usize>,
    memory_checker: Option<std::thread::JoinHandle<()>>,
    watchdog: Option<std::thread::JoinHandle<()>>,
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
        let health = open_health_log(config)?;
        let plugins = Plugins::start(&config.plugins, Arc::clone(&health), telemetry.control_slot())?;
        let stop = Arc::new(AtomicBool::new(false));
        let telemetry_stop = Arc::new(AtomicBool::new(false));

        let mut running = Self {
            cores: Vec::new(),
            stop: Arc::clone(&stop),
            telemetry: Arc::clone(&telemetry),
            telemetry_server: None,
            telemetry_stop: Arc::clone(&telemetry_stop),
            receivers: Vec::new(),
            cpus: cpus.clone(),
            memory_checker: None,
            watchdog: None,
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
        for (core, &cpu) in cpus.iter().enumerate() {
            let (ready_tx, ready_rx) = mpsc::channel();
            let context = CoreContext {
                core,
                plan: Arc::clone(&plan),
                bind_as: bound.clone(),
                plugins: Arc::clone(&registry),
                health: Arc::clone(&running.health),
                slot: telemetry.core_slot(core),
                stop: Arc::clone(&stop),
                shutdown_timeout,
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
        running.receivers = bound.unwrap_or_default();
        running.memory_checker = start_memory_checker(&plan, Arc::clone(&stop));
        let samplers: Vec<(String, AdaptiveSamplerHandle)> = plan
            .pipelines
            .iter()
            .flat_map(|pipeline| pipeline.processors.iter())
            .filter_map(|(id, builder)| builder.adaptive_handle().map(|handle| (id.to_string(), handle.clone())))
            .collect();
        telemetry.set_adaptive_samplers(samplers.clone());
        running.watchdog = watchdog::start(Watchdog {
            config: config.service.watchdog.cpu.clone(),
            samplers,
            cpus: cpus.len(),
            probe: options.cpu_probe.clone(),
            health: Arc::clone(&running.health),
            metrics: telemetry.control_slot(),
            stop: Arc::clone(&stop),
        });
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

    /// Where each receiver listens.
    #[must_use]
    pub fn receivers(&self) -> &[ReceiverAddresses] {
        &self.receivers
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
        if let Some(watchdog) = self.watchdog.take() {
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
fn open_health_log(config: &Config) -> Result<Arc<dyn HealthSink>, StartError> {
    let settings = &config.service.health_log;
    Ok(match &settings.path {
        Some(path) => Arc::new(HealthLog::open_with(path, &HealthLogOptions::new(settings.size))?),
        None => Arc::new(MemoryHealthSink::new()),
    })
}

/// Measures memory for every memory limiter at its `check_interval`, on a thread of its own so
/// that reading `/proc` never runs on a data-plane core. `None` when no pipeline has a limiter.
fn start_memory_checker(plan: &CollectorPlan, stop: Arc<AtomicBool>) -> Option<std::thread::JoinHandle<()>> {
    let mut limiters: Vec<Arc<MemoryLimiter>> = Vec::new();
    for limiter in plan.pipelines.iter().filter_map(|pipeline| pipeline.memory_limiter.as_ref()) {
        if !limiters.iter().any(|known| Arc::ptr_eq(known, limiter)) {
            limiters.push(Arc::clone(limiter));
        }
    }
    if limiters.is_empty() {
        return None;
    }
    let spawned = std::thread::Builder::new().name("spanpipe-memory".into()).spawn(move || {
        let mut next_check: Vec<Instant> = vec![Instant::now(); limiters.len()];
        while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            for (limiter, next) in limiters.iter().zip(next_check.iter_mut()) {
                if now >= *next {
                    if let Err(error) = limiter.check() {
                        tracing::error!(%error, "memory_limiter cannot measure memory; keeping the previous figure");
                    }
                    *next = now + limiter.check_interval();
                }
            }
            let wake = next_check.iter().min().map_or(IDLE_TICK, |next| next.saturating_duration_since(now));
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

/// What one core is given.
struct CoreContext {
    core: usize,
    plan: Arc<CollectorPlan>,
    bind_as: Option<Vec<ReceiverAddresses>>,
    plugins: Arc<PluginRegistry>,
    health: Arc<dyn HealthSink>,
    slot: Arc<CoreSlot>,
    stop: Arc<AtomicBool>,
    shutdown_timeout: Duration,
}

/// The sink of one receiver on one core: the pipelines it feeds, guarded by their memory limiters.
struct PipelineSink {
    pipelines: Vec<Rc<Pipeline>>,
    limiters: Vec<Arc<MemoryLimiter>>,
    stopping: Rc<Cell<bool>>,
}

impl PipelineSink {
    /// The sink feeding `feeds` (indices into the plan's and the core's pipelines), with the
    /// memory limiters of those pipelines, each once.
    fn new(plan: &CollectorPlan, feeds: &[usize], pipelines: &[Rc<Pipeline>], stopping: &Rc<Cell<bool>>) -> Self {
        let mut limiters: Vec<Arc<MemoryLimiter>> = Vec::new();
        for &pipeline in feeds {
            if let Some(limiter) = &plan.pipelines[pipeline].memory_limiter {
                if !limiters.iter().any(|known| Arc::ptr_eq(known, limiter)) {
                    limiters.push(Arc::clone(limiter));
                }
            }
        }
        Self {
            pipelines: feeds.iter().map(|&index| Rc::clone(&pipelines[index])).collect(),
            limiters,
            stopping: Rc::clone(stopping),
        }
    }
}

impl SpanSink for PipelineSink {
    type Admission = Vec<Permit>;

    fn admit(&self, encoded_len: usize) -> Result<Self::Admission, Refusal> {
        if self.stopping.get() {
            return Err(Refusal::Unavailable {
                reason: "spanpipe is shutting down".into(),
                retry_after: SHUTDOWN_RETRY_AFTER,
            });
        }
        if let Some(full) = self.pipelines.iter().find(|pipeline| !pipeline.has_room()) {
            return Err(Refusal::Exhausted {
                reason: format!("pipeline `{}`: an exporter's sending queue is full", full.name()).into(),
                retry_after: FULL_RETRY_AFTER,
            });
        }
        self.limiters
            .iter()
            .map(|limiter| {
                limiter.admit(encoded_len as u64).map_err(|refused| Refusal::Exhausted {
                    reason: format!(
                        "memory limit reached ({} MiB in use of a {} MiB soft limit)",
                        refused.estimate >> 20,
                        refused.soft_limit >> 20
                    )
                    .into(),
                    retry_after: refused.retry_after,
                })
            })
            .collect()
    }

    fn submit(&self, batch: SpanBatch, admission: Self::Admission) -> Result<Accepted, Refusal> {
        let now = Instant::now();
        if let Some((last, others)) = self.pipelines.split_last() {
            for pipeline in others {
                pipeline.submit(batch.clone(), now);
            }
            last.submit(batch, now);
        }
        drop(admission);
        Ok(Accepted::all())
    }

    /// Receivers wait (instead of being refused) when the pipeline is full because of an
    /// exporter configured with `sending_queue.block_on_overflow`, and only then: a memory limit
    /// or another exporter's full queue refuses at once.
    fn wait_for_room(&self) -> Option<RoomWait<'_>> {
        let full = self.pipelines.iter().find(|pipeline| pipeline.backlog_len() > 0)?;
        let room = full.waiting_for()?.listen_for_room()?;
        Some(Box::pin(room))
    }
}

/// Everything one core runs.
pub(crate) struct CoreParts {
    pub(crate) receivers: Vec<(String, RunningReceiver)>,
    pub(crate) sources: Vec<RunningSource>,
    pub(crate) pipelines: Vec<Rc<Pipeline>>,
    pub(crate) exporters: Vec<(String, Rc<Exporter>)>,
    stopping: Rc<Cell<bool>>,
}

fn build_core(context: &CoreContext) -> Result<(CoreParts, Vec<ReceiverAddresses>), String> {
    let plan = &context.plan;
    let codecs = ReceiverCodecs::new(&context.plugins);
    let exporters = plan
        .exporters
        .iter()
        .map(|(id, builder)| {
            builder
                .build_reporting_to(Some(Arc::clone(&context.health)))
                .map(|exporter| (id.to_string(), Rc::new(exporter)))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;
    let pipelines: Vec<Rc<Pipeline>> = plan
        .pipelines
        .iter()
        .map(|pipeline| {
            Rc::new(Pipeline::new(
                pipeline.id.to_string(),
                pipeline
                    .processors
                    .iter()
                    .map(|(id, builder)| (id.to_string(), builder.build(&context.plugins)))
                    .collect(),
                pipeline.exporters.iter().map(|&index| Rc::clone(&exporters[index].1)).collect(),
                pipeline.routes.clone(),
            ))
        })
        .collect();
    let stopping = Rc::new(Cell::new(false));
    let mut receivers = Vec::new();
    let mut addresses = Vec::new();
    for (index, receiver) in plan.receivers.iter().enumerate() {
        let mut config = receiver.config.clone();
        if let Some(first) = context.bind_as.as_ref().and_then(|bound| bound.get(index)) {
            for &(protocol, address) in &first.listeners {
                config.set_endpoint(protocol, address);
            }
        }
        let sink = Rc::new(PipelineSink::new(plan, &receiver.pipelines, &pipelines, &stopping));
        let bound = config.bind(sink, &codecs).map_err(|error| format!("receivers.{}: {error}", receiver.id))?;
        addresses.push(ReceiverAddresses { id: receiver.id.to_string(), listeners: bound.listening() });
        receivers.push((receiver.id.to_string(), bound.start()));
    }
    // Sources run once per process: on the first core.
    let sources = if context.core == 0 {
        plan.sources
            .iter()
            .map(|source| RunningSource {
                id: source.id.to_string(),
                source: PluginSource::new(&source.config, Arc::clone(&context.plugins), Instant::now()),
                sink: PipelineSink::new(plan, &source.pipelines, &pipelines, &stopping),
                refused_spans: 0,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok((CoreParts { receivers, sources, pipelines, exporters, stopping }, addresses))
}

/// A source plugin on its core, with the pipelines it feeds.
pub(crate) struct RunningSource {
    pub(crate) id: String,
    pub(crate) source: PluginSource,
    sink: PipelineSink,
    /// Spans a cycle emitted that the pipelines refused (full, over the memory limit, stopping).
    pub(crate) refused_spans: u64,
}

impl RunningSource {
    /// Runs the source's cycle if it is due and hands what it emits to the pipelines, as a
    /// receiver would: admitted first, refused (and counted) when they have no room.
    fn run_if_due(&mut self, now: Instant) {
        if now < self.source.next_deadline() {
            return;
        }
        for batch in self.source.poll(now) {
            match self.sink.admit(batch.encoded_len()) {
                Ok(admission) => {
                    let _ = self.sink.submit(batch, admission);
                }
                Err(refusal) => {
                    self.refused_spans += batch.len() as u64;
                    tracing::warn!(source = %self.id, spans = batch.len(), %refusal, "source spans refused by the pipeline");
                }
            }
        }
    }
}

async fn run_core(context: CoreContext, ready: mpsc::Sender<Result<Vec<ReceiverAddresses>, String>>) -> ShutdownReport {
    let mut parts = match build_core(&context) {
        Ok((parts, addresses)) => {
            let _ = ready.send(Ok(addresses));
            parts
        }
        Err(message) => {
            let _ = ready.send(Err(message));
            return ShutdownReport::default();
        }
    };
    let cpu_clock = metrics::ThreadCpuClock::start();
    let mut next_publish = Instant::now();
    while !context.stop.load(Ordering::Acquire) {
        let now = Instant::now();
        for source in &mut parts.sources {
            source.run_if_due(now);
        }
        for pipeline in &parts.pipelines {
            pipeline.tick(now);
        }
        if now >= next_publish {
            context.slot.publish(metrics::core_samples(context.core, &parts, &cpu_clock));
            next_publish = now + PUBLISH_INTERVAL;
        }
        let wake = parts
            .pipelines
            .iter()
            .filter_map(|pipeline| pipeline.next_deadline())
            .chain(parts.sources.iter().map(|source| source.source.next_deadline()))
            .min()
            .map_or(IDLE_TICK, |deadline| deadline.saturating_duration_since(Instant::now()).min(IDLE_TICK));
        glommio::timer::sleep(wake).await;
    }
    let report = shut_down_core(&context, &mut parts).await;
    context.slot.publish(metrics::core_samples(context.core, &parts, &cpu_clock));
    report
}

/// Stop accepting, let in-flight requests finish, flush processors, deliver what waits, flush
/// exporters by the deadline; whatever is left is reported as undelivered.
async fn shut_down_core(context: &CoreContext, parts: &mut CoreParts) -> ShutdownReport {
    let deadline = Instant::now() + context.shutdown_timeout;
    parts.stopping.set(true);
    let receivers = std::mem::take(&mut parts.receivers);
    let closed = glommio::timer::timeout(context.shutdown_timeout, async move {
        for (id, receiver) in receivers {
            tracing::debug!(core = context.core, receiver = %id, "closing listeners and connections");
            receiver.shutdown().await;
        }
        Ok(())
    })
    .await;
    if closed.is_err() {
        tracing::warn!(core = context.core, "receivers did not close their connections before the shutdown deadline");
    }
    let now = Instant::now();
    for pipeline in &parts.pipelines {
        pipeline.flush(now);
    }
    while parts.pipelines.iter().any(|pipeline| pipeline.backlog_len() > 0) && Instant::now() < deadline {
        for pipeline in &parts.pipelines {
            pipeline.retry_backlog();
        }
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    let mut report = ShutdownReport {
        undelivered_spans: parts.pipelines.iter().map(|pipeline| pipeline.backlog_spans() as u64).sum(),
        dropped_while_running: 0,
    };
    for (id, exporter) in &parts.exporters {
        let flushed = exporter.flush(deadline).await;
        if flushed.undelivered_spans > 0 {
            tracing::error!(
                core = context.core,
                exporter = %id,
                spans = flushed.undelivered_spans,
                batches = flushed.undelivered_batches,
                "shutdown deadline reached: spans not delivered"
            );
        }
        report.undelivered_spans += flushed.undelivered_spans;
        let stats = exporter.stats().snapshot();
        report.dropped_while_running += ExporterDropReason::ALL
            .iter()
            .filter(|reason| **reason != ExporterDropReason::Shutdown)
            .map(|reason| stats.dropped_spans[reason.index()])
            .sum::<u64>();
    }
    report
}
