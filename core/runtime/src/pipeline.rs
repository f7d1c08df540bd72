//! One pipeline on one core: its processors in order, then a fan-out to its exporters.
//!
//! Backpressure without loss: a batch an exporter's queue cannot take right now is kept in a
//! small per-pipeline backlog (it was already accepted, so it is never dropped), and while that
//! backlog is not empty the pipeline refuses new requests with a retryable answer. The backlog is
//! therefore bounded by what one request (or one timer flush) produces.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use spanpipe_core::SpanBatch;
use spanpipe_exporters::{Exporter, SendError};
use spanpipe_processors::{BuiltinProcessor, Output, Processor, Route};

/// How long a client is told to wait when an exporter's queue is full.
pub const FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Which of a pipeline's exporters each route of its routing processor goes to.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    /// For `Route::Table(i)`: indices into the pipeline's exporters.
    pub table: Vec<Vec<usize>>,
    /// For `Route::Default`.
    pub default: Vec<usize>,
}

/// Counters of what the pipeline itself decided (processors and exporters keep their own).
#[derive(Debug, Default)]
pub struct PipelineCounters {
    /// Batches an exporter could not take at once and that waited in the backlog.
    pub deferred_batches: Cell<u64>,
    /// Spans lost because an exporter had closed (only during shutdown).
    pub lost_spans: Cell<u64>,
}

/// A pipeline instance on one core.
#[derive(Debug)]
pub struct Pipeline {
    name: String,
    processors: RefCell<Vec<BuiltinProcessor>>,
    processor_ids: Vec<String>,
    exporters: Vec<Rc<Exporter>>,
    all_exporters: Vec<usize>,
    routes: RouteTable,
    backlog: RefCell<VecDeque<(usize, SpanBatch)>>,
    counters: PipelineCounters,
}

impl Pipeline {
    /// A pipeline named `name` (`traces/foo`) running `processors` (with their config ids) then
    /// fanning out to `exporters`.
    #[must_use]
    pub fn new(
        name: String,
        processors: Vec<(String, BuiltinProcessor)>,
        exporters: Vec<Rc<Exporter>>,
        routes: RouteTable,
    ) -> Self {
        let all_exporters = (0..exporters.len()).collect();
        let (processor_ids, processors) = processors.into_iter().unzip();
        Self {
            name,
            processors: RefCell::new(processors),
            processor_ids,
            exporters,
            all_exporters,
            routes,
            backlog: RefCell::new(VecDeque::new()),
            counters: PipelineCounters::default(),
        }
    }

    /// The pipeline's id.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a new request may come in: true unless batches are waiting for an exporter queue
    /// (retried first, so a queue that has drained admits at once).
    pub fn has_room(&self) -> bool {
        self.retry_backlog();
        self.backlog.borrow().is_empty()
    }

    /// Runs `batch` through the processors and hands what comes out to the exporters.
    pub fn submit(&self, batch: SpanBatch, now: Instant) {
        let mut output = Output::new();
        output.push(batch);
        self.run_from(0, output, now);
    }

    /// Lets time pass for every processor holding spans (the batch processor's timeout).
    pub fn tick(&self, now: Instant) {
        let stages = self.processors.borrow().len();
        for stage in 0..stages {
            let due = self.processors.borrow()[stage].next_deadline().is_some_and(|deadline| deadline <= now);
            if due {
                let mut output = Output::new();
                self.processors.borrow_mut()[stage].tick(now, &mut output);
                self.run_from(stage + 1, output, now);
            }
        }
        self.retry_backlog();
    }

    /// The earliest time a processor wants a tick.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.processors.borrow().iter().filter_map(Processor::next_deadline).min()
    }

    /// At shutdown: every processor gives up what it holds, in order, so that what the first
    /// stage flushes still passes through the later ones.
    pub fn flush(&self, now: Instant) {
        let stages = self.processors.borrow().len();
        for stage in 0..stages {
            let mut output = Output::new();
            self.processors.borrow_mut()[stage].flush(&mut output);
            self.run_from(stage + 1, output, now);
        }
    }

    /// Batches waiting for an exporter queue.
    #[must_use]
    pub fn backlog_len(&self) -> usize {
        self.backlog.borrow().len()
    }

    /// The exporter the oldest waiting batch is for: the one whose room lets the pipeline admit
    /// again.
    #[must_use]
    pub fn waiting_for(&self) -> Option<&Rc<Exporter>> {
        self.backlog.borrow().front().map(|(exporter, _)| &self.exporters[*exporter])
    }

    /// Spans waiting for an exporter queue.
    #[must_use]
    pub fn backlog_spans(&self) -> usize {
        self.backlog.borrow().iter().map(|(_, batch)| batch.len()).sum()
    }

    /// Tries once more to hand waiting batches to their exporters, in order.
    pub fn retry_backlog(&self) {
        let mut backlog = self.backlog.borrow_mut();
        while let Some((exporter, batch)) = backlog.pop_front() {
            match self.exporters[exporter].try_send(batch) {
                Ok(()) => {}
                Err(SendError::Full(batch)) => {
                    backlog.push_front((exporter, batch));
                    return;
                }
                Err(SendError::Closed(batch)) => self.lose(&batch),
            }
        }
    }

    /// The pipeline's exporters.
    #[must_use]
    pub fn exporters(&self) -> &[Rc<Exporter>] {
        &self.exporters
    }

    /// The pipeline's processors, for their statistics.
    pub fn with_processors<R>(&self, read: impl FnOnce(&[BuiltinProcessor]) -> R) -> R {
        read(&self.processors.borrow())
    }

    /// The config ids of the processors, in order.
    #[must_use]
    pub fn processor_ids(&self) -> &[String] {
        &self.processor_ids
    }

    /// What the pipeline itself counted.
    #[must_use]
    pub fn counters(&self) -> &PipelineCounters {
        &self.counters
    }

    /// Feeds `output` into the stages from `first` on; what leaves the last stage, or is routed
    /// by a routing processor, is delivered.
    fn run_from(&self, first: usize, mut output: Output, now: Instant) {
        let stages = self.processors.borrow().len();
        for stage in first..stages {
            if output.is_empty() {
                return;
            }
            let mut next = Output::new();
            for routed in output.drain() {
                match routed.route {
                    Route::Continue => self.processors.borrow_mut()[stage].process(routed.batch, now, &mut next),
                    route => next.push_routed(route, routed.batch),
                }
            }
            output = next;
        }
        for routed in output.drain() {
            let targets = match routed.route {
                Route::Continue => &self.all_exporters,
                Route::Table(index) => self.routes.table.get(index).unwrap_or(&self.routes.default),
                Route::Default => &self.routes.default,
            };
            self.deliver(routed.batch, targets);
        }
    }

    /// Hands `batch` to each exporter of `targets` (sharing the bytes, never copying them).
    fn deliver(&self, batch: SpanBatch, targets: &[usize]) {
        for &exporter in targets {
            // Order per exporter is kept: while batches wait for it, new ones queue behind them.
            let waiting = self.backlog.borrow().iter().any(|(waiting, _)| *waiting == exporter);
            if waiting {
                self.defer(exporter, batch.clone());
                continue;
            }
            match self.exporters[exporter].try_send(batch.clone()) {
                Ok(()) => {}
                Err(SendError::Full(batch)) => self.defer(exporter, batch),
                Err(SendError::Closed(batch)) => self.lose(&batch),
            }
        }
    }

    fn defer(&self, exporter: usize, batch: SpanBatch) {
        self.counters.deferred_batches.set(self.counters.deferred_batches.get() + 1);
        self.backlog.borrow_mut().push_back((exporter, batch));
    }

    fn lose(&self, batch: &SpanBatch) {
        self.counters.lost_spans.set(self.counters.lost_spans.get() + batch.len() as u64);
        tracing::error!(pipeline = %self.name, spans = batch.len(), "exporter closed: spans lost");
    }
}
