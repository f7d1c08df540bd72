//! # spanpipe-processors
//!
//! The span processors of a spanpipe pipeline — `batch`, `probabilistic_sampler`,
//! `adaptive_sampler`, `attributes`, `routing` — and the `memory_limiter` that guards the
//! receivers, with config types that read an OpenTelemetry Collector config unchanged.
//!
//! ## Shape
//!
//! Processors are pure, synchronous logic over [`SpanBatch`]. The runtime runs one instance of each
//! per core on that core's executor (thread per core, shared nothing), so an instance needs no
//! locks, may be `!Send`, and keeps plain counters ([`ProcessorStats`]) that the runtime sums
//! across cores. Processors never read the clock: the runtime passes `now` to
//! [`Processor::process`] and [`Processor::tick`], and asks [`Processor::next_deadline`] when to
//! tick next, so timers stay the runtime's business and tests drive time by hand.
//!
//! Configs are cheap to clone and build one instance per core ([`ProcessorBuilder::build`]). What
//! instances of one processor share across cores is explicit and atomic: the adaptive sampler's
//! rate ([`AdaptiveSamplerHandle`]) and the memory limiter ([`MemoryLimiter`]).
//!
//! Built-in processors are one enum, [`BuiltinProcessor`], rather than boxed trait objects: the
//! runtime stores its pipeline as a plain `Vec` without an allocation per stage, and the match
//! dispatch lets the compiler see through to each processor. A call happens per batch, not per
//! span, so the dispatch itself is not what this is about; [`BuiltinProcessor::Custom`] is the door
//! for processors that come from elsewhere (plugins).
//!
//! ## Bytes stay bytes
//!
//! A batch is OTLP protobuf bytes plus an index (see `spanpipe-core`). Dropping and splitting
//! spans re-frames byte slices ([`spanpipe_core::Reframer`]); nothing is decoded into structs and
//! re-encoded. Where a processor must change a span (the `attributes` processor, or a sampler
//! recording its threshold in `tracestate`), only that span is rewritten, every field it does not
//! change copied byte for byte.
//!
//! ## Compatibility
//!
//! Component names, keys and defaults are the OpenTelemetry Collector's; the decisions are too
//! (the probabilistic sampler keeps exactly the traces the Collector keeps, `hash` produces the
//! same digests). Keys spanpipe does not implement are refused with a message naming them, never
//! ignored: unknown keys by serde (`deny_unknown_fields`), known-but-unsupported ones (such as
//! `from_context`) by [`ComponentConfig::validate`].

mod adaptive;
mod attributes;
mod batch;
mod memory_limiter;
mod probabilistic;
mod rewrite;
mod routing;
mod sampling;
mod stats;
mod tracestate;

use std::time::Instant;

use serde::Deserialize;
use spanpipe_config::{ComponentConfig, FieldError};
use spanpipe_core::SpanBatch;

pub use adaptive::{AdaptiveSampler, AdaptiveSamplerConfig, AdaptiveSamplerHandle, InvalidPercentage};
pub use attributes::{ActionKind, AttributeActionConfig, AttributeValue, AttributesConfig, AttributesProcessor};
pub use batch::{BatchConfig, BatchProcessor};
pub use memory_limiter::{
    MemoryError, MemoryLimiter, MemoryLimiterConfig, MemoryReader, MemoryUsage, Permit, ProcessMemory, Refused,
};
pub use probabilistic::{ProbabilisticSampler, ProbabilisticSamplerConfig, SamplerMode};
pub use rewrite::{Rebuild, SpanEdit};
pub use routing::{AttributeSource, RoutingConfig, RoutingProcessor, RoutingTableEntry};
pub use stats::{DropReason, ProcessorStats};

/// A stage of a pipeline, one instance per core.
pub trait Processor: std::fmt::Debug {
    /// Takes a batch; pushes what goes on into `out` (nothing, the batch, or other batches).
    fn process(&mut self, batch: SpanBatch, now: Instant, out: &mut Output);

    /// Lets time pass: a processor that holds spans sends those whose deadline is at or before
    /// `now`. The runtime calls this at [`Processor::next_deadline`].
    fn tick(&mut self, now: Instant, out: &mut Output) {
        let _ = (now, out);
    }

    /// When the processor next needs [`Processor::tick`]; `None` while it holds nothing.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Sends everything held, at shutdown.
    fn flush(&mut self, out: &mut Output) {
        let _ = out;
    }

    /// What the processor did so far.
    fn stats(&self) -> &ProcessorStats;
}

/// Where a batch a processor emitted goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// On to the next stage of the same pipeline (what every processor but `routing` emits).
    Continue,
    /// To the exporters of entry `n` of the routing processor's `table`.
    Table(usize),
    /// To the routing processor's `default_exporters`.
    Default,
}

/// A batch a processor emitted, with where it goes.
#[derive(Clone, Debug)]
pub struct RoutedBatch {
    /// Where it goes.
    pub route: Route,
    /// The spans.
    pub batch: SpanBatch,
}

/// The batches a processor emits during one call. The runtime keeps one per core and drains it
/// after every call, so its buffer is reused.
#[derive(Debug, Default)]
pub struct Output {
    batches: Vec<RoutedBatch>,
}

impl Output {
    /// An empty output.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Emits a batch to the next stage.
    pub fn push(&mut self, batch: SpanBatch) {
        self.push_routed(Route::Continue, batch);
    }

    /// Emits a batch to `route`.
    pub fn push_routed(&mut self, route: Route, batch: SpanBatch) {
        self.batches.push(RoutedBatch { route, batch });
    }

    /// Number of batches emitted.
    #[must_use]
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// Whether nothing was emitted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// The emitted batches, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, RoutedBatch> {
        self.batches.iter()
    }

    /// Takes the emitted batches out, in order, leaving the output empty.
    pub fn drain(&mut self) -> std::vec::Drain<'_, RoutedBatch> {
        self.batches.drain(..)
    }
}

/// Finishes a rewrite and emits the result, keeping the books.
fn emit_rebuilt(stats: &mut ProcessorStats, batch: &SpanBatch, rebuild: rewrite::Rebuild, out: &mut Output) {
    let kept = batch.len() - rebuild.dropped();
    let modified = rebuild.replaced();
    match rebuild.finish(batch) {
        Ok(rebuilt) => {
            stats.spans_modified += modified as u64;
            if !rebuilt.is_empty() {
                stats.record_out(rebuilt.len());
                out.push(rebuilt);
            }
        }
        Err(_) => stats.record_dropped(DropReason::Internal, kept),
    }
}

/// The processors spanpipe knows, by their config name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcessorKind {
    /// `batch`
    Batch,
    /// `probabilistic_sampler`
    ProbabilisticSampler,
    /// `adaptive_sampler` (spanpipe's own)
    AdaptiveSampler,
    /// `attributes`
    Attributes,
    /// `routing`
    Routing,
    /// `memory_limiter`
    MemoryLimiter,
}

impl ProcessorKind {
    /// Every kind.
    pub const ALL: [ProcessorKind; 6] = [
        Self::Batch,
        Self::ProbabilisticSampler,
        Self::AdaptiveSampler,
        Self::Attributes,
        Self::Routing,
        Self::MemoryLimiter,
    ];

    /// The component type name used in configs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::ProbabilisticSampler => "probabilistic_sampler",
            Self::AdaptiveSampler => "adaptive_sampler",
            Self::Attributes => "attributes",
            Self::Routing => "routing",
            Self::MemoryLimiter => "memory_limiter",
        }
    }

    /// The kind of a component id: `batch` and `batch/large` are both [`ProcessorKind::Batch`].
    #[must_use]
    pub fn from_component_id(id: &str) -> Option<Self> {
        let name = id.split_once('/').map_or(id, |(name, _)| name);
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Reads this kind's config.
    ///
    /// # Errors
    /// The deserializer's error for a malformed config, an unknown key among them.
    pub fn deserialize_config<'de, D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<ProcessorConfig, D::Error> {
        Ok(match self {
            Self::Batch => ProcessorConfig::Batch(BatchConfig::deserialize(deserializer)?),
            Self::ProbabilisticSampler => {
                ProcessorConfig::ProbabilisticSampler(ProbabilisticSamplerConfig::deserialize(deserializer)?)
            }
            Self::AdaptiveSampler => {
                ProcessorConfig::AdaptiveSampler(AdaptiveSamplerConfig::deserialize(deserializer)?)
            }
            Self::Attributes => ProcessorConfig::Attributes(AttributesConfig::deserialize(deserializer)?),
            Self::Routing => ProcessorConfig::Routing(RoutingConfig::deserialize(deserializer)?),
            Self::MemoryLimiter => ProcessorConfig::MemoryLimiter(MemoryLimiterConfig::deserialize(deserializer)?),
        })
    }

    /// This kind's config with every default (what an empty YAML mapping gives).
    #[must_use]
    pub fn default_config(self) -> ProcessorConfig {
        match self {
            Self::Batch => ProcessorConfig::Batch(BatchConfig::default()),
            Self::ProbabilisticSampler => ProcessorConfig::ProbabilisticSampler(ProbabilisticSamplerConfig::default()),
            Self::AdaptiveSampler => ProcessorConfig::AdaptiveSampler(AdaptiveSamplerConfig::default()),
            Self::Attributes => ProcessorConfig::Attributes(AttributesConfig::default()),
            Self::Routing => ProcessorConfig::Routing(RoutingConfig::default()),
            Self::MemoryLimiter => ProcessorConfig::MemoryLimiter(MemoryLimiterConfig::default()),
        }
    }

    /// The JSON Schema of this kind's config.
    #[must_use]
    pub fn json_schema(self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        match self {
            Self::Batch => generator.subschema_for::<BatchConfig>(),
            Self::ProbabilisticSampler => generator.subschema_for::<ProbabilisticSamplerConfig>(),
            Self::AdaptiveSampler => generator.subschema_for::<AdaptiveSamplerConfig>(),
            Self::Attributes => generator.subschema_for::<AttributesConfig>(),
            Self::Routing => generator.subschema_for::<RoutingConfig>(),
            Self::MemoryLimiter => generator.subschema_for::<MemoryLimiterConfig>(),
        }
    }
}

/// The config of any processor.
#[derive(Clone, Debug, PartialEq)]
pub enum ProcessorConfig {
    /// `batch`
    Batch(BatchConfig),
    /// `probabilistic_sampler`
    ProbabilisticSampler(ProbabilisticSamplerConfig),
    /// `adaptive_sampler`
    AdaptiveSampler(AdaptiveSamplerConfig),
    /// `attributes`
    Attributes(AttributesConfig),
    /// `routing`
    Routing(RoutingConfig),
    /// `memory_limiter`
    MemoryLimiter(MemoryLimiterConfig),
}

impl ProcessorConfig {
    /// Which processor this configures.
    #[must_use]
    pub fn kind(&self) -> ProcessorKind {
        match self {
            Self::Batch(_) => ProcessorKind::Batch,
            Self::ProbabilisticSampler(_) => ProcessorKind::ProbabilisticSampler,
            Self::AdaptiveSampler(_) => ProcessorKind::AdaptiveSampler,
            Self::Attributes(_) => ProcessorKind::Attributes,
            Self::Routing(_) => ProcessorKind::Routing,
            Self::MemoryLimiter(_) => ProcessorKind::MemoryLimiter,
        }
    }

    /// The problems [`ComponentConfig::validate`] finds, with paths relative to the component.
    #[must_use]
    pub fn validate(&self) -> Vec<FieldError> {
        match self {
            Self::Batch(config) => config.validate(),
            Self::ProbabilisticSampler(config) => config.validate(),
            Self::AdaptiveSampler(config) => config.validate(),
            Self::Attributes(config) => config.validate(),
            Self::Routing(config) => config.validate(),
            Self::MemoryLimiter(config) => config.validate(),
        }
    }
}

/// Why a processor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The config has problems; each names the field to change.
    #[error("invalid {kind} config: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// The component type name.
        kind: &'static str,
        /// What is wrong.
        errors: Vec<FieldError>,
    },
    /// `memory_limiter` is admission control at the receivers, not a stage that batches pass
    /// through; build it with [`MemoryLimiterConfig::build`] and share it across cores.
    #[error("memory_limiter guards the receivers and is not built per core: use MemoryLimiterConfig::build")]
    AdmissionControl,
}

/// Builds one instance of a processor per core. Cheap to clone; validates once, builds often.
#[derive(Clone, Debug)]
pub enum ProcessorBuilder {
    /// `batch`
    Batch(BatchConfig),
    /// `probabilistic_sampler`
    ProbabilisticSampler(ProbabilisticSamplerConfig),
    /// `adaptive_sampler`, with the rate handle its instances share.
    AdaptiveSampler(AdaptiveSamplerConfig, AdaptiveSamplerHandle),
    /// `attributes`, compiled once (regular expressions, encoded values).
    Attributes(AttributesProcessor),
    /// `routing`
    Routing(RoutingConfig),
}

impl ProcessorBuilder {
    /// Checks `config` and prepares the builder.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] with every problem of the config, or [`BuildError::AdmissionControl`]
    /// for a `memory_limiter`.
    pub fn new(config: &ProcessorConfig) -> Result<Self, BuildError> {
        let errors = config.validate();
        if !errors.is_empty() {
            return Err(BuildError::Invalid { kind: config.kind().name(), errors });
        }
        Ok(match config {
            ProcessorConfig::Batch(config) => Self::Batch(config.clone()),
            ProcessorConfig::ProbabilisticSampler(config) => Self::ProbabilisticSampler(config.clone()),
            ProcessorConfig::AdaptiveSampler(config) => Self::AdaptiveSampler(config.clone(), config.handle()),
            ProcessorConfig::Attributes(config) => Self::Attributes(
                config.build().map_err(|error| BuildError::Invalid { kind: "attributes", errors: vec![error] })?,
            ),
            ProcessorConfig::Routing(config) => Self::Routing(config.clone()),
            ProcessorConfig::MemoryLimiter(_) => return Err(BuildError::AdmissionControl),
        })
    }

    /// The adaptive sampler's rate handle, for the control plane.
    #[must_use]
    pub fn adaptive_handle(&self) -> Option<&AdaptiveSamplerHandle> {
        match self {
            Self::AdaptiveSampler(_, handle) => Some(handle),
            _ => None,
        }
    }

    /// A fresh instance for one core.
    #[must_use]
    pub fn build(&self) -> BuiltinProcessor {
        match self {
            Self::Batch(config) => BuiltinProcessor::Batch(config.build()),
            Self::ProbabilisticSampler(config) => BuiltinProcessor::ProbabilisticSampler(config.build()),
            Self::AdaptiveSampler(config, handle) => BuiltinProcessor::AdaptiveSampler(config.build(handle)),
            Self::Attributes(template) => BuiltinProcessor::Attributes(template.fresh()),
            Self::Routing(config) => BuiltinProcessor::Routing(config.build()),
        }
    }
}

/// A processor instance: the built-in ones, or one from elsewhere.
#[derive(Debug)]
pub enum BuiltinProcessor {
    /// `batch`
    Batch(BatchProcessor),
    /// `probabilistic_sampler`
    ProbabilisticSampler(ProbabilisticSampler),
    /// `adaptive_sampler`
    AdaptiveSampler(AdaptiveSampler),
    /// `attributes`
    Attributes(AttributesProcessor),
    /// `routing`
    Routing(RoutingProcessor),
    /// Any other implementation (a plugin).
    Custom(Box<dyn Processor>),
}

macro_rules! dispatch {
    ($self:expr, $processor:ident => $call:expr) => {
        match $self {
            BuiltinProcessor::Batch($processor) => $call,
            BuiltinProcessor::ProbabilisticSampler($processor) => $call,
            BuiltinProcessor::AdaptiveSampler($processor) => $call,
            BuiltinProcessor::Attributes($processor) => $call,
            BuiltinProcessor::Routing($processor) => $call,
            BuiltinProcessor::Custom($processor) => $call,
        }
    };
}

impl Processor for BuiltinProcessor {
    fn process(&mut self, batch: SpanBatch, now: Instant, out: &mut Output) {
        dispatch!(self, processor => processor.process(batch, now, out));
    }

    fn tick(&mut self, now: Instant, out: &mut Output) {
        dispatch!(self, processor => processor.tick(now, out));
    }

    fn next_deadline(&self) -> Option<Instant> {
        dispatch!(self, processor => processor.next_deadline())
    }

    fn flush(&mut self, out: &mut Output) {
        dispatch!(self, processor => processor.flush(out));
    }

    fn stats(&self) -> &ProcessorStats {
        dispatch!(self, processor => processor.stats())
    }
}
