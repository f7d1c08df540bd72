//! A pipeline stage backed by a processor plugin.

use std::ffi::c_void;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use spanpipe_core::wire::{FieldValue, Reader};
use spanpipe_core::SpanBatch;
use spanpipe_plugin_sdk::abi::{self, BatchRef, BytesRef, ProcessorOutput, SpanRef, Status};
use spanpipe_plugin_sdk::span_ref;
use spanpipe_processors::{DropReason, Output, Processor, ProcessorStats, Rebuild, SpanEdit};

use crate::error::CallError;
use crate::failure::{BreakerState, FailureConfig, OnFailure};
use crate::ffi::{borrowed, measure_cpu, with_message_sink, Instance};
use crate::load::{EntryPoints, PluginKind};
use crate::registry::PluginRegistry;
use crate::supervisor::{FailureStats, Gate, Supervisor};

/// The config of a plugin processor stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginStageConfig {
    /// The plugin's name (from its descriptor). Required.
    pub plugin: String,
    /// The config handed to the plugin's `create`, as JSON text. Defaults to `{}`.
    pub config_json: String,
    /// What happens when the plugin fails, and when to stop calling it.
    pub failure: FailureConfig,
}

pub(crate) fn empty_object() -> String {
    "{}".to_owned()
}

impl PluginStageConfig {
    /// A stage running `plugin` with an empty config and default failure settings.
    #[must_use]
    pub fn new(plugin: impl Into<String>) -> Self {
        Self { plugin: plugin.into(), config_json: empty_object(), failure: FailureConfig::default() }
    }
}

/// What a plugin stage did, beyond [`ProcessorStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PluginStageStats {
    /// Spans the plugin itself left out.
    pub spans_dropped_by_plugin: u64,
    /// Spans whose attributes the plugin replaced.
    pub spans_modified: u64,
    /// Spans passed on untouched because nothing is published under the plugin's name.
    pub spans_passed_through_absent: u64,
    /// Spans passed on untouched because the plugin failed or was bypassed (`pass_through`).
    pub spans_passed_through_on_failure: u64,
    /// Spans dropped because the plugin failed or was bypassed (`drop`).
    pub spans_dropped_on_failure: u64,
    /// What went wrong and what was done about it.
    pub failures: FailureStats,
    /// The registry generation the stage runs (0: none seen yet).
    pub generation: u64,
}

/// A processor stage that hands each batch to a plugin. One per core; see the crate docs.
#[derive(Debug)]
pub struct PluginProcessor {
    supervisor: Supervisor,
    stats: ProcessorStats,
    plugin_stats: PluginStageStats,
    /// Reused across batches: the span table lent to the plugin.
    span_table: Vec<SpanRef>,
    decisions: Decisions,
}

/// What the plugin decided during one call. Reused across batches.
#[derive(Debug, Default)]
struct Decisions {
    /// One byte per span, lent to the plugin as `ProcessorOutput::keep`.
    keep: Vec<u8>,
    /// Lent separately (as the callback's context), so that the callback never touches the
    /// memory the plugin writes `keep` through.
    replacements: Replacements,
}

/// New attributes the plugin gave through `replace_attributes`.
#[derive(Debug, Default)]
struct Replacements {
    /// Per span, the range of its new attributes in `bytes`.
    ranges: Vec<Option<Range<usize>>>,
    bytes: Vec<u8>,
    any: bool,
}

impl Decisions {
    fn reset(&mut self, spans: usize) {
        self.keep.clear();
        self.keep.resize(spans, 1);
        let replacements = &mut self.replacements;
        replacements.ranges.clear();
        replacements.ranges.resize(spans, None);
        replacements.bytes.clear();
        replacements.any = false;
    }
}

impl Replacements {
    fn replace(&mut self, span: usize, attributes: &[u8]) -> Status {
        if span >= self.ranges.len() || !is_attribute_run(attributes) {
            return abi::STATUS_ERROR;
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(attributes);
        self.ranges[span] = Some(start..self.bytes.len());
        self.any = true;
        abi::STATUS_OK
    }
}

/// Whether `bytes` is a run of whole `Span.attributes` fields (field 9, length-delimited). What is
/// inside each `KeyValue` is validated by the scan of the rebuilt batch.
fn is_attribute_run(bytes: &[u8]) -> bool {
    let mut reader = Reader::new(bytes, 0..bytes.len());
    loop {
        match reader.next_field() {
            Ok(None) => return true,
            Ok(Some(field)) if field.number == 9 && matches!(field.value, FieldValue::Len(_)) => {}
            _ => return false,
        }
    }
}

unsafe extern "C" fn replace_attributes(context: *mut c_void, span: usize, attributes: BytesRef) -> Status {
    // SAFETY: `context` is the `Replacements` lent for this call; the plugin lends the bytes for it.
    let (replacements, bytes) =
        unsafe { (&mut *context.cast::<Replacements>(), borrowed(attributes.ptr, attributes.len)) };
    replacements.replace(span, bytes)
}

/// Lends `batch` to the instance's `process` and collects its decisions.
fn call_process(
    instance: &mut Instance,
    batch: &SpanBatch,
    span_table: &mut Vec<SpanRef>,
    decisions: &mut Decisions,
) -> Result<(), CallError> {
    let EntryPoints::Processor { process, .. } = instance.plugin().entry_points() else {
        return Err(CallError::WrongKind { expected: PluginKind::Processor, found: instance.plugin().kind() });
    };
    span_table.clear();
    span_table.extend(batch.spans().map(|span| span_ref(&span)));
    decisions.reset(batch.len());
    let batch_ref = BatchRef {
        bytes: BytesRef { ptr: batch.bytes().as_ptr(), len: batch.bytes().len() },
        spans: span_table.as_ptr(),
        span_count: span_table.len(),
    };
    let mut output = ProcessorOutput {
        keep: decisions.keep.as_mut_ptr(),
        keep_len: decisions.keep.len(),
        context: (&raw mut decisions.replacements).cast(),
        replace_attributes,
    };
    let handle = instance.handle();
    // SAFETY: `process` belongs to the instance's plugin, whose library the instance keeps mapped;
    // the batch, span table and output are valid for the call. `output.keep` points into
    // `decisions.keep`, which the callback (given only `decisions.replacements`) never touches.
    with_message_sink(|error| unsafe { process(handle, &raw const batch_ref, &raw mut output, error) })
}

impl PluginProcessor {
    /// A stage for one core. The plugin instance is created at the first batch (and re-created
    /// whenever the registry publishes a new version).
    #[must_use]
    pub fn new(config: &PluginStageConfig, registry: Arc<PluginRegistry>) -> Self {
        Self {
            supervisor: Supervisor::new(
                &config.plugin,
                &config.config_json,
                PluginKind::Processor,
                config.failure,
                registry,
            ),
            stats: ProcessorStats::default(),
            plugin_stats: PluginStageStats::default(),
            span_table: Vec::new(),
            decisions: Decisions::default(),
        }
    }

    /// The plugin-specific counters.
    #[must_use]
    pub fn plugin_stats(&self) -> PluginStageStats {
        PluginStageStats {
            failures: self.supervisor.stats(),
            generation: self.supervisor.generation(),
            ..self.plugin_stats
        }
    }

    /// Where the stage's breaker stands.
    #[must_use]
    pub fn breaker_state(&self) -> BreakerState {
        self.supervisor.breaker_state()
    }

    /// The version of the plugin the stage runs, if any.
    #[must_use]
    pub fn plugin_version(&self) -> Option<&str> {
        self.supervisor.plugin().map(|plugin| plugin.version())
    }

    fn emit(&mut self, batch: SpanBatch, out: &mut Output) {
        if !batch.is_empty() {
            self.stats.record_out(batch.len());
            out.push(batch);
        }
    }

    /// The plugin could not handle `batch`: `on_failure` decides.
    fn fail_batch(&mut self, batch: SpanBatch, out: &mut Output) {
        match self.supervisor.failure().on_failure {
            OnFailure::PassThrough => {
                self.plugin_stats.spans_passed_through_on_failure += batch.len() as u64;
                self.stats.spans_bypassed += batch.len() as u64;
                self.emit(batch, out);
            }
            OnFailure::Drop => {
                self.plugin_stats.spans_dropped_on_failure += batch.len() as u64;
                self.stats.record_dropped(DropReason::Plugin, batch.len());
            }
        }
    }

    fn record_plugin_drops(&mut self, dropped: usize) {
        self.plugin_stats.spans_dropped_by_plugin += dropped as u64;
        self.stats.record_dropped(DropReason::Plugin, dropped);
    }

    /// Applies the plugin's decisions to `batch`.
    fn apply(&mut self, batch: SpanBatch, out: &mut Output) {
        let decisions = &self.decisions;
        let dropped = decisions.keep.iter().filter(|keep| **keep == 0).count();
        let replacements = &decisions.replacements;
        if dropped == 0 && !replacements.any {
            return self.emit(batch, out);
        }
        if !replacements.any {
            let kept = batch.filter(|span| decisions.keep[span.position()] != 0);
            self.record_plugin_drops(dropped);
            return self.emit(kept, out);
        }
        let mut rebuild = Rebuild::with_capacity(batch.len());
        for span in batch.spans() {
            let position = span.position();
            match (&replacements.ranges[position], decisions.keep[position]) {
                (_, 0) => rebuild.drop_span(),
                (Some(range), _) => rebuild.replace(
                    span.encoded(),
                    SpanEdit { trace_state: None, attributes: Some(&replacements.bytes[range.clone()]) },
                ),
                (None, _) => rebuild.keep(),
            }
        }
        let modified = rebuild.replaced();
        match rebuild.finish(&batch) {
            Ok(rebuilt) => {
                self.record_plugin_drops(dropped);
                self.plugin_stats.spans_modified += modified as u64;
                self.stats.spans_modified += modified as u64;
                self.emit(rebuilt, out);
            }
            // The plugin's attributes did not scan: its output cannot be vouched for, so the batch
            // is handled as a failed call would be.
            Err(error) => {
                let plugin = self.supervisor.plugin().map(|plugin| plugin.name().to_owned()).unwrap_or_default();
                tracing::warn!(%plugin, %error, "plugin replaced attributes with bytes that do not scan");
                self.fail_batch(batch, out);
            }
        }
    }
}

impl Processor for PluginProcessor {
    fn process(&mut self, batch: SpanBatch, now: Instant, out: &mut Output) {
        self.stats.record_in(batch.len());
        let (outcome, cpu_time) = match self.supervisor.prepare(now) {
            Gate::Absent => {
                self.plugin_stats.spans_passed_through_absent += batch.len() as u64;
                self.stats.spans_bypassed += batch.len() as u64;
                return self.emit(batch, out);
            }
            Gate::Unavailable => return self.fail_batch(batch, out),
            Gate::Run(instance) => {
                measure_cpu(|| call_process(instance, &batch, &mut self.span_table, &mut self.decisions))
            }
        };
        self.supervisor.record(now, &outcome, cpu_time);
        match outcome {
            Ok(()) => self.apply(batch, out),
            Err(_) => self.fail_batch(batch, out),
        }
    }

    fn stats(&self) -> &ProcessorStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_config_defaults_to_an_empty_plugin_config_and_default_failure_settings() {
        let config = PluginStageConfig::new("redact");
        assert_eq!(config.config_json, "{}");
        assert_eq!(config.failure, FailureConfig::default());
    }

    #[test]
    fn attribute_replacements_must_be_whole_attribute_fields() {
        let mut decisions = Decisions::default();
        decisions.reset(2);
        let decisions = &mut decisions.replacements;
        // field 9, length 3, payload: KeyValue { key: "k" }
        let attribute = [0x4a, 3, 0x0a, 1, b'k'];
        assert_eq!(decisions.replace(1, &attribute), abi::STATUS_OK);
        assert_eq!(decisions.replace(2, &attribute), abi::STATUS_ERROR, "span out of range");
        assert_eq!(decisions.replace(0, &[0x52, 0]), abi::STATUS_ERROR, "field 10 is not an attribute");
        assert_eq!(decisions.replace(0, &[0x4a, 9, 0]), abi::STATUS_ERROR, "length past the end");
        assert_eq!(decisions.replace(0, &[]), abi::STATUS_OK, "no attributes at all is a valid run");
        assert_eq!(decisions.ranges[1], Some(0..5));
    }
}
