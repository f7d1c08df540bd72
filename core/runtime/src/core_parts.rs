//! One data-plane core: what it runs (receivers, pipelines, exporters, sources), its loop, the
//! reload of its parts, and its shutdown.
//!
//! The core builds its parts the same way at start and at a reload ([`prepare`] then [`commit`]):
//! at start nothing is kept; at a reload the [`Kept`] map says which running instances carry over.
//! `prepare` builds and binds everything new without touching what runs, so a failure (a port
//! that cannot be bound, an exporter that cannot be built) leaves the core as it was; `commit`
//! swaps synchronously, between two polls of the core's tasks — the atomic swap the core sees.
//!
//! What a reload replaces is retired, not dropped ([`Retiring`]): an old receiver closes
//! gracefully (its in-flight requests finish into the pipelines they were admitted to); an old
//! pipeline keeps running its timers until nothing feeds it, is then flushed and its backlog
//! delivered; an old exporter, once no pipeline uses it, hands its queue to its replacement and
//! flushes what it has in flight. Nothing accepted is dropped by a reload.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spanpipe_core::SpanBatch;
use spanpipe_exporters::{DropReason as ExporterDropReason, Exporter, FlushReport, SendError};
use spanpipe_health::HealthSink;
use spanpipe_plugins::{PluginRegistry, PluginSource};
use spanpipe_processors::{MemoryLimiter, Permit};
use spanpipe_transports::otlp::{Accepted, Refusal, RoomWait, RunningReceiver, SpanSink};
use spanpipe_transports::BoundReceiver;

use crate::collector::{ReceiverAddresses, ShutdownReport};
use crate::components::CollectorPlan;
use crate::metrics;
use crate::pipeline::{Pipeline, FULL_RETRY_AFTER};
use crate::receivers::ReceiverCodecs;
use crate::reload::Kept;
use crate::telemetry::{CoreSlot, PUBLISH_INTERVAL};
use crate::watchdog::AdmissionGate;

/// How often a core checks for shutdown and commands and retries waiting batches when no
/// processor deadline is sooner.
const IDLE_TICK: Duration = Duration::from_millis(50);

/// What a client is told to wait while the collector shuts down.
const SHUTDOWN_RETRY_AFTER: Duration = Duration::from_secs(5);

/// A reload's step, sent to every core by the collector.
pub(crate) enum CoreCommand {
    /// Build and bind the parts of `plan` (keeping what `kept` says) without swapping; answer
    /// with every receiver's addresses. `bind_as`: the addresses the first core got, for the
    /// receivers it bound anew (so port 0 means the same port on every core).
    Prepare {
        plan: Arc<CollectorPlan>,
        kept: Arc<Kept>,
        bind_as: Option<Vec<ReceiverAddresses>>,
        reply: mpsc::Sender<Result<Vec<ReceiverAddresses>, String>>,
    },
    /// Swap in what was prepared.
    Commit { reply: mpsc::Sender<()> },
    /// Drop what was prepared; the running parts stay.
    Abort { reply: mpsc::Sender<()> },
}

/// What one core is given.
pub(crate) struct CoreContext {
    pub(crate) core: usize,
    pub(crate) plan: Arc<CollectorPlan>,
    pub(crate) bind_as: Option<Vec<ReceiverAddresses>>,
    pub(crate) plugins: Arc<PluginRegistry>,
    pub(crate) health: Arc<dyn HealthSink>,
    pub(crate) slot: Arc<CoreSlot>,
    /// Closed by the memory watchdog: every sink refuses new requests while it is.
    pub(crate) admission: AdmissionGate,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) commands: mpsc::Receiver<CoreCommand>,
}

/// Where a sink's batches go: pipelines, guarded by their memory limiters.
struct SinkTargets {
    pipelines: Vec<Rc<Pipeline>>,
    limiters: Vec<Arc<MemoryLimiter>>,
}

impl SinkTargets {
    /// The pipelines of `feeds` (indices into the plan's and the core's pipelines), with the
    /// memory limiters of those pipelines, each once.
    fn new(plan: &CollectorPlan, feeds: &[usize], pipelines: &[Rc<Pipeline>]) -> Self {
        let mut limiters: Vec<Arc<MemoryLimiter>> = Vec::new();
        for &pipeline in feeds {
            if let Some(limiter) = &plan.pipelines[pipeline].memory_limiter {
                if !limiters.iter().any(|known| Arc::ptr_eq(known, limiter)) {
                    limiters.push(Arc::clone(limiter));
                }
            }
        }
        Self { pipelines: feeds.iter().map(|&index| Rc::clone(&pipelines[index])).collect(), limiters }
    }
}

/// The sink of one receiver on one core. Its targets are swapped by a reload; a request admitted
/// before the swap is delivered to the targets of its submit, which are never gone: retired
/// pipelines still deliver.
pub(crate) struct PipelineSink {
    targets: RefCell<SinkTargets>,
    stopping: Rc<Cell<bool>>,
    admission: AdmissionGate,
}

impl PipelineSink {
    fn new(targets: SinkTargets, stopping: &Rc<Cell<bool>>, admission: &AdmissionGate) -> Self {
        Self { targets: RefCell::new(targets), stopping: Rc::clone(stopping), admission: admission.clone() }
    }

    fn retarget(&self, targets: SinkTargets) {
        *self.targets.borrow_mut() = targets;
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
        if let Some(refusal) = self.admission.refusal() {
            return Err(refusal);
        }
        let targets = self.targets.borrow();
        if let Some(full) = targets.pipelines.iter().find(|pipeline| !pipeline.has_room()) {
            return Err(Refusal::Exhausted {
                reason: format!("pipeline `{}`: an exporter's sending queue is full", full.name()).into(),
                retry_after: FULL_RETRY_AFTER,
            });
        }
        targets
            .limiters
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
        let targets = self.targets.borrow();
        if let Some((last, others)) = targets.pipelines.split_last() {
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
        let targets = self.targets.borrow();
        let full = targets.pipelines.iter().find(|pipeline| pipeline.backlog_len() > 0)?;
        let room = full.waiting_for()?.listen_for_room()?;
        Some(Box::pin(room))
    }
}

/// A receiver on its core.
pub(crate) struct CoreReceiver {
    pub(crate) id: String,
    pub(crate) running: RunningReceiver,
    sink: Rc<PipelineSink>,
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

/// Everything one core runs.
pub(crate) struct CoreParts {
    pub(crate) receivers: Vec<CoreReceiver>,
    pub(crate) sources: Vec<RunningSource>,
    pub(crate) pipelines: Vec<Rc<Pipeline>>,
    pub(crate) exporters: Vec<(String, Rc<Exporter>)>,
    stopping: Rc<Cell<bool>>,
    retiring: Retiring,
}

/// A new config's parts, built and bound on the core but not serving yet.
pub(crate) struct PreparedCore {
    plan: Arc<CollectorPlan>,
    kept: Arc<Kept>,
    exporters: Vec<(String, Rc<Exporter>)>,
    pipelines: Vec<Rc<Pipeline>>,
    /// By receiver of the new plan: its listeners bound anew, or `None` where the running one is kept.
    bound: Vec<Option<(BoundReceiver<PipelineSink>, Rc<PipelineSink>)>>,
}

/// Builds and binds what `plan` needs beyond what `kept` keeps of `running`, without changing
/// anything that runs. Returns every receiver's addresses (kept or new), in the plan's order.
fn prepare(
    context: &CoreContext,
    running: &CoreParts,
    plan: Arc<CollectorPlan>,
    kept: Arc<Kept>,
    bind_as: Option<&[ReceiverAddresses]>,
) -> Result<(PreparedCore, Vec<ReceiverAddresses>), String> {
    let kept_part = |position: Option<usize>| position.map(|index| (index, running));
    let mut exporters = Vec::with_capacity(plan.exporters.len());
    for ((id, builder), position) in plan.exporters.iter().zip(&kept.exporters) {
        let exporter = match kept_part(*position) {
            Some((index, parts)) => Rc::clone(&parts.exporters[index].1),
            None => Rc::new(
                builder.build_reporting_to(Some(Arc::clone(&context.health))).map_err(|error| error.to_string())?,
            ),
        };
        exporters.push((id.to_string(), exporter));
    }
    let pipelines: Vec<Rc<Pipeline>> = plan
        .pipelines
        .iter()
        .zip(&kept.pipelines)
        .map(|(pipeline, position)| match kept_part(*position) {
            Some((index, parts)) => Rc::clone(&parts.pipelines[index]),
            None => Rc::new(Pipeline::new(
                pipeline.id.to_string(),
                pipeline
                    .processors
                    .iter()
                    .map(|(id, builder)| (id.to_string(), builder.build(&context.plugins)))
                    .collect(),
                pipeline.exporters.iter().map(|&index| Rc::clone(&exporters[index].1)).collect(),
                pipeline.routes.clone(),
            )),
        })
        .collect();
    let stopping = &running.stopping;
    let codecs = ReceiverCodecs::new(&context.plugins);
    let mut bound = Vec::with_capacity(plan.receivers.len());
    let mut addresses = Vec::with_capacity(plan.receivers.len());
    for (index, (receiver, position)) in plan.receivers.iter().zip(&kept.receivers).enumerate() {
        if let Some((old, parts)) = kept_part(*position) {
            let listeners = parts.receivers[old].running.listeners().map(|(protocol, address, _)| (protocol, address));
            addresses.push(ReceiverAddresses { id: receiver.id.to_string(), listeners: listeners.collect() });
            bound.push(None);
            continue;
        }
        let mut config = receiver.config.clone();
        if let Some(first) = bind_as.and_then(|bound| bound.get(index)) {
            for &(protocol, address) in &first.listeners {
                config.set_endpoint(protocol, address);
            }
        }
        let sink = Rc::new(PipelineSink::new(
            SinkTargets::new(&plan, &receiver.pipelines, &pipelines),
            stopping,
            &context.admission,
        ));
        let listening =
            config.bind(Rc::clone(&sink), &codecs).map_err(|error| format!("receivers.{}: {error}", receiver.id))?;
        addresses.push(ReceiverAddresses { id: receiver.id.to_string(), listeners: listening.listening() });
        bound.push(Some((listening, sink)));
    }
    Ok((PreparedCore { plan, kept, exporters, pipelines, bound }, addresses))
}

/// Swaps `prepared` in: kept receivers and sources are pointed at the new pipelines, new
/// receivers start serving, and whatever the new config does not keep is retired.
fn commit(context: &CoreContext, parts: &mut CoreParts, prepared: PreparedCore) {
    let PreparedCore { plan, kept, exporters, pipelines, bound } = prepared;
    let mut old_receivers: Vec<Option<CoreReceiver>> = parts.receivers.drain(..).map(Some).collect();
    let mut receivers = Vec::with_capacity(plan.receivers.len());
    for ((receiver, position), fresh) in plan.receivers.iter().zip(&kept.receivers).zip(bound) {
        match (fresh, position.and_then(|index| old_receivers.get_mut(index)?.take())) {
            (Some((listening, sink)), _) => {
                receivers.push(CoreReceiver { id: receiver.id.to_string(), running: listening.start(), sink });
            }
            (None, Some(running)) => {
                running.sink.retarget(SinkTargets::new(&plan, &receiver.pipelines, &pipelines));
                receivers.push(running);
            }
            (None, None) => unreachable!("a receiver is either kept or bound anew"),
        }
    }
    for old in old_receivers.into_iter().flatten() {
        parts.retiring.close_receiver(context.core, old);
    }

    let mut old_sources: Vec<Option<RunningSource>> = parts.sources.drain(..).map(Some).collect();
    if context.core == 0 {
        for (source, position) in plan.sources.iter().zip(&kept.sources) {
            let sink = PipelineSink::new(
                SinkTargets::new(&plan, &source.pipelines, &pipelines),
                &parts.stopping,
                &context.admission,
            );
            let running = match position.and_then(|index| old_sources.get_mut(index)?.take()) {
                Some(mut running) => {
                    running.sink = sink;
                    running
                }
                None => RunningSource {
                    id: source.id.to_string(),
                    source: PluginSource::new(&source.config, Arc::clone(&context.plugins), Instant::now()),
                    sink,
                    refused_spans: 0,
                },
            };
            parts.sources.push(running);
        }
    }
    drop(old_sources);

    let old_pipelines = std::mem::replace(&mut parts.pipelines, pipelines);
    for pipeline in old_pipelines {
        if !parts.pipelines.iter().any(|current| Rc::ptr_eq(current, &pipeline)) {
            parts.retiring.pipelines.push(RetiringPipeline { pipeline, flushed: false });
        }
    }
    let old_exporters = std::mem::replace(&mut parts.exporters, exporters);
    for (id, exporter) in old_exporters {
        if parts.exporters.iter().any(|(_, current)| Rc::ptr_eq(current, &exporter)) {
            continue;
        }
        let replacement = parts.exporters.iter().find(|(current, _)| *current == id).map(|(_, new)| Rc::clone(new));
        parts.retiring.exporters.push(RetiringExporter { id, exporter, replacement });
    }
    parts.receivers = receivers;
}

/// Batches handed back by retired exporters, each with the exporter that takes it over, in order;
/// shared with the tasks that collect them.
type Handover = Rc<RefCell<VecDeque<(Rc<Exporter>, SpanBatch)>>>;

/// What a reload replaced, finishing its work.
#[derive(Default)]
struct Retiring {
    /// Old receivers closing: their listeners are closed, in-flight requests finish.
    closing: Vec<glommio::task::JoinHandle<()>>,
    pipelines: Vec<RetiringPipeline>,
    exporters: Vec<RetiringExporter>,
    /// Batches a retired exporter handed back, for its replacement, in order.
    handover: Handover,
    /// Retired exporters flushing what they have in flight.
    flushing: Vec<glommio::task::JoinHandle<FlushReport>>,
    /// Undelivered spans reported by flushes that already ended.
    undelivered: u64,
}

struct RetiringPipeline {
    pipeline: Rc<Pipeline>,
    flushed: bool,
}

struct RetiringExporter {
    id: String,
    exporter: Rc<Exporter>,
    /// The new config's exporter of the same id, which takes over its queue.
    replacement: Option<Rc<Exporter>>,
}

impl Retiring {
    fn close_receiver(&mut self, core: usize, receiver: CoreReceiver) {
        tracing::debug!(core, receiver = %receiver.id, "reload: closing the replaced receiver's listeners");
        let CoreReceiver { running, sink, .. } = receiver;
        drop(sink);
        self.closing.push(glommio::spawn_local(running.shutdown()).detach());
    }

    fn is_idle(&self) -> bool {
        self.pipelines.is_empty() && self.exporters.is_empty() && self.handover.borrow().is_empty()
    }

    /// Moves retired parts along: pipelines run their timers and, once nothing feeds them, are
    /// flushed and emptied; exporters no pipeline uses any more hand their queue over and flush.
    fn step(&mut self, now: Instant, flush_deadline: Instant) {
        for retiring in &mut self.pipelines {
            retiring.pipeline.tick(now);
            // Only this list holds it: no receiver can submit to it any more.
            if !retiring.flushed && Rc::strong_count(&retiring.pipeline) == 1 {
                retiring.pipeline.flush(now);
                retiring.flushed = true;
            }
            retiring.pipeline.retry_backlog();
        }
        self.pipelines.retain(|retiring| !(retiring.flushed && retiring.pipeline.backlog_len() == 0));
        let mut index = 0;
        while index < self.exporters.len() {
            if Rc::strong_count(&self.exporters[index].exporter) > 1 {
                index += 1;
                continue;
            }
            let RetiringExporter { id, exporter, replacement } = self.exporters.swap_remove(index);
            let handover = Rc::clone(&self.handover);
            let retire = async move {
                if let Some(replacement) = replacement {
                    let batches = exporter.hand_over().await;
                    tracing::info!(exporter = %id, batches = batches.len(), "reload: the replaced exporter's undelivered batches move to its replacement");
                    handover.borrow_mut().extend(batches.into_iter().map(|batch| (Rc::clone(&replacement), batch)));
                }
                exporter.flush(flush_deadline).await
            };
            self.flushing.push(glommio::spawn_local(retire).detach());
        }
        let mut handover = self.handover.borrow_mut();
        while let Some((exporter, batch)) = handover.pop_front() {
            match exporter.try_send(batch) {
                Ok(()) => {}
                Err(SendError::Full(batch)) => {
                    handover.push_front((exporter, batch));
                    break;
                }
                Err(SendError::Closed(batch)) => {
                    tracing::error!(exporter = exporter.name(), spans = batch.len(), "exporter closed: spans lost");
                    self.undelivered += batch.len() as u64;
                }
            }
        }
    }

    /// At shutdown: everything retired finishes by `deadline`; returns the spans it could not
    /// deliver.
    async fn finish(&mut self, deadline: Instant) -> u64 {
        for closing in self.closing.drain(..) {
            let _ = glommio::timer::timeout(deadline.saturating_duration_since(Instant::now()), async {
                closing.await;
                Ok(())
            })
            .await;
        }
        while !self.is_idle() && Instant::now() < deadline {
            self.step(Instant::now(), deadline);
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        // Retired exporters hand back what they did not deliver, then what they handed back
        // goes to their replacements (flushed after this).
        let mut undelivered = 0;
        for flushing in self.flushing.drain(..) {
            if let Some(report) = flushing.await {
                undelivered += report.undelivered_spans;
            }
        }
        while !self.is_idle() && Instant::now() < deadline {
            self.step(Instant::now(), deadline);
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        undelivered += self.undelivered;
        undelivered += self.pipelines.iter().map(|retiring| retiring.pipeline.backlog_spans() as u64).sum::<u64>();
        undelivered += self.handover.borrow().iter().map(|(_, batch)| batch.len() as u64).sum::<u64>();
        undelivered
    }
}

/// Builds the core's parts for `context.plan`, binding its receivers; the addresses they got.
fn start_parts(context: &CoreContext) -> Result<(CoreParts, Vec<ReceiverAddresses>), String> {
    let kept = Arc::new(Kept::nothing(&context.plan));
    let mut parts = CoreParts {
        receivers: Vec::new(),
        sources: Vec::new(),
        pipelines: Vec::new(),
        exporters: Vec::new(),
        stopping: Rc::new(Cell::new(false)),
        retiring: Retiring::default(),
    };
    let (prepared, addresses) = prepare(context, &parts, Arc::clone(&context.plan), kept, context.bind_as.as_deref())?;
    commit(context, &mut parts, prepared);
    Ok((parts, addresses))
}

/// A core's life: build, serve (ticking processors, running sources, publishing metrics,
/// applying reloads) until stopped, then shut down.
pub(crate) async fn run_core(
    context: CoreContext,
    ready: mpsc::Sender<Result<Vec<ReceiverAddresses>, String>>,
) -> ShutdownReport {
    let mut parts = match start_parts(&context) {
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
    let mut prepared: Option<PreparedCore> = None;
    while !context.stop.load(Ordering::Acquire) {
        let now = Instant::now();
        while let Ok(command) = context.commands.try_recv() {
            prepared = handle_command(&context, &mut parts, prepared.take(), command);
        }
        for source in &mut parts.sources {
            source.run_if_due(now);
        }
        for pipeline in &parts.pipelines {
            pipeline.tick(now);
        }
        parts.retiring.step(now, now + context.shutdown_timeout);
        if now >= next_publish {
            context.slot.publish(metrics::core_samples(context.core, &parts, &cpu_clock));
            next_publish = now + PUBLISH_INTERVAL;
        }
        let wake = parts
            .pipelines
            .iter()
            .chain(parts.retiring.pipelines.iter().map(|retiring| &retiring.pipeline))
            .filter_map(|pipeline| pipeline.next_deadline())
            .chain(parts.sources.iter().map(|source| source.source.next_deadline()))
            .min()
            .map_or(IDLE_TICK, |deadline| deadline.saturating_duration_since(Instant::now()).min(IDLE_TICK));
        let wake = if parts.retiring.is_idle() { wake } else { wake.min(Duration::from_millis(10)) };
        glommio::timer::sleep(wake).await;
    }
    drop(prepared);
    let report = shut_down_core(&context, &mut parts).await;
    context.slot.publish(metrics::core_samples(context.core, &parts, &cpu_clock));
    report
}

/// Runs one reload step on this core; returns what stays prepared.
fn handle_command(
    context: &CoreContext,
    parts: &mut CoreParts,
    prepared: Option<PreparedCore>,
    command: CoreCommand,
) -> Option<PreparedCore> {
    match command {
        CoreCommand::Prepare { plan, kept, bind_as, reply } => {
            drop(prepared);
            match prepare(context, parts, plan, kept, bind_as.as_deref()) {
                Ok((ready, addresses)) => {
                    let _ = reply.send(Ok(addresses));
                    Some(ready)
                }
                Err(message) => {
                    let _ = reply.send(Err(message));
                    None
                }
            }
        }
        CoreCommand::Commit { reply } => {
            if let Some(ready) = prepared {
                commit(context, parts, ready);
            }
            let _ = reply.send(());
            None
        }
        CoreCommand::Abort { reply } => {
            drop(prepared);
            let _ = reply.send(());
            None
        }
    }
}

/// Stop accepting, let in-flight requests finish, flush processors, deliver what waits, flush
/// exporters by the deadline; whatever is left is reported as undelivered.
async fn shut_down_core(context: &CoreContext, parts: &mut CoreParts) -> ShutdownReport {
    let deadline = Instant::now() + context.shutdown_timeout;
    parts.stopping.set(true);
    let receivers = std::mem::take(&mut parts.receivers);
    let closed = glommio::timer::timeout(context.shutdown_timeout, async move {
        for receiver in receivers {
            tracing::debug!(core = context.core, receiver = %receiver.id, "closing listeners and connections");
            receiver.running.shutdown().await;
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
    report.undelivered_spans += parts.retiring.finish(deadline).await;
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
