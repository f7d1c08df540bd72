//! The `debug` exporter: logs what passes through, with the OpenTelemetry Collector's keys.
//!
//! - `basic`: one line per batch — spans, resource spans, services, bytes;
//! - `normal`: that line, then one line per span (trace id, span id, name, service, kind, status,
//!   duration);
//! - `detailed`: that line, then every field of every span in the Collector's text layout.
//!
//! Lines go through `tracing` (target `spanpipe::debug`) unless `use_internal_logger` is false,
//! in which case they are written to standard output as the Collector does. Logging is sampled as
//! the Collector's zap sampler does: in each one-second window the first `sampling_initial`
//! batches are logged, then every `sampling_thereafter`-th. Sampled-out batches still count as
//! exported; the exporter never refuses a batch.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::{ComponentConfig, FieldError};
use spanpipe_core::{AnyValueView, KeyValues, SpanBatch, SpanKind, SpanView, StatusCode};

use crate::stats::ExporterStats;

/// How much the `debug` exporter prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verbosity {
    /// A summary line per batch.
    #[default]
    Basic,
    /// The summary and a line per span.
    Normal,
    /// The summary and every field of every span.
    Detailed,
}

/// Config of the `debug` exporter.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DebugExporterConfig {
    /// `basic`, `normal` or `detailed`. Defaults to basic.
    pub verbosity: Verbosity,
    /// Batches logged at the start of each second. Defaults to 2.
    pub sampling_initial: u64,
    /// After those, every this-many-th batch of the second is logged; 0 logs no more. Defaults
    /// to 1.
    pub sampling_thereafter: u64,
    /// Log through spanpipe's own logger (`tracing`) rather than to standard output. Defaults to
    /// true.
    pub use_internal_logger: bool,
}

impl Default for DebugExporterConfig {
    fn default() -> Self {
        Self { verbosity: Verbosity::Basic, sampling_initial: 2, sampling_thereafter: 1, use_internal_logger: true }
    }
}

impl ComponentConfig for DebugExporterConfig {
    fn validate(&self) -> Vec<FieldError> {
        Vec::new()
    }
}

/// zap's sampler, for one message: per one-second window, the first `initial` pass, then every
/// `thereafter`-th. Time is an argument.
#[derive(Clone, Debug)]
pub struct LogSampler {
    initial: u64,
    thereafter: u64,
    window_start: Option<Instant>,
    seen: u64,
}

const SAMPLING_TICK: Duration = Duration::from_secs(1);

impl LogSampler {
    /// A sampler with the config's numbers.
    #[must_use]
    pub fn new(initial: u64, thereafter: u64) -> Self {
        Self { initial, thereafter, window_start: None, seen: 0 }
    }

    /// Whether the message at `now` is logged.
    pub fn admit(&mut self, now: Instant) -> bool {
        let in_window = self.window_start.is_some_and(|start| now.saturating_duration_since(start) < SAMPLING_TICK);
        if !in_window {
            self.window_start = Some(now);
            self.seen = 0;
        }
        self.seen += 1;
        if self.seen <= self.initial {
            return true;
        }
        self.thereafter != 0 && (self.seen - self.initial) % self.thereafter == 0
    }
}

/// One core's `debug` exporter.
#[derive(Debug)]
pub struct DebugExporter {
    name: String,
    config: DebugExporterConfig,
    sampler: RefCell<LogSampler>,
    stats: Arc<ExporterStats>,
}

impl DebugExporter {
    /// An instance with fresh counters.
    #[must_use]
    pub fn new(name: &str, config: &DebugExporterConfig) -> Self {
        Self {
            name: name.to_owned(),
            config: config.clone(),
            sampler: RefCell::new(LogSampler::new(config.sampling_initial, config.sampling_thereafter)),
            stats: Arc::new(ExporterStats::new()),
        }
    }

    /// Logs `batch` (if the sampler admits it) and counts it.
    pub fn export(&self, batch: &SpanBatch) {
        if self.sampler.borrow_mut().admit(Instant::now()) {
            let details = match self.config.verbosity {
                Verbosity::Basic => None,
                Verbosity::Normal => Some(render_normal(batch)),
                Verbosity::Detailed => Some(render_detailed(batch)),
            };
            let summary = Summary::of(batch);
            if self.config.use_internal_logger {
                tracing::info!(
                    target: "spanpipe::debug",
                    exporter = %self.name,
                    resource_spans = summary.resource_spans,
                    spans = summary.spans,
                    services = %summary.services.join(","),
                    bytes = summary.bytes,
                    "Traces"
                );
                if let Some(details) = details {
                    tracing::info!(target: "spanpipe::debug", exporter = %self.name, "{details}");
                }
            } else {
                let mut text = format!("{summary}\n");
                text.push_str(details.as_deref().unwrap_or_default());
                // Standard output closed is the operator's choice; nothing to report it to.
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
            }
        }
        self.stats.delivered(batch, batch.encoded_len());
    }

    /// This instance's counters.
    #[must_use]
    pub fn stats(&self) -> &Arc<ExporterStats> {
        &self.stats
    }
}

/// What the summary line says about a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// `ResourceSpans` entries.
    pub resource_spans: usize,
    /// Spans.
    pub spans: usize,
    /// Distinct `service.name`s, in order of appearance.
    pub services: Vec<String>,
    /// Encoded size.
    pub bytes: usize,
}

impl Summary {
    /// The summary of `batch`.
    #[must_use]
    pub fn of(batch: &SpanBatch) -> Self {
        let mut services: Vec<String> = Vec::new();
        for resource in batch.resources() {
            let name = resource.service_name().unwrap_or("");
            if !services.iter().any(|known| known == name) {
                services.push(name.to_owned());
            }
        }
        Self { resource_spans: batch.resource_count(), spans: batch.len(), services, bytes: batch.encoded_len() }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Traces: resource spans {}, spans {}, services [{}], bytes {}",
            self.resource_spans,
            self.spans,
            self.services.join(", "),
            self.bytes
        )
    }
}

fn kind_name(kind: SpanKind) -> String {
    match kind {
        SpanKind::Unspecified => "Unspecified".to_owned(),
        SpanKind::Internal => "Internal".to_owned(),
        SpanKind::Server => "Server".to_owned(),
        SpanKind::Client => "Client".to_owned(),
        SpanKind::Producer => "Producer".to_owned(),
        SpanKind::Consumer => "Consumer".to_owned(),
        SpanKind::Other(value) => format!("SpanKind({value})"),
    }
}

fn status_name(code: StatusCode) -> String {
    match code {
        StatusCode::Unset => "Unset".to_owned(),
        StatusCode::Ok => "Ok".to_owned(),
        StatusCode::Error => "Error".to_owned(),
        StatusCode::Other(value) => format!("StatusCode({value})"),
    }
}

fn timestamp(nanos: u64) -> String {
    let at = DateTime::<Utc>::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX));
    at.format("%Y-%m-%d %H:%M:%S%.9f +0000 UTC").to_string()
}

/// One line per span.
#[must_use]
pub fn render_normal(batch: &SpanBatch) -> String {
    let mut text = String::new();
    for span in batch.spans() {
        let _ = writeln!(
            text,
            "{} {} {} service={} kind={} status={} duration={:?}",
            hex::encode(span.trace_id()),
            hex::encode(span.span_id()),
            span.name(),
            span.service_name().unwrap_or(""),
            kind_name(span.kind()),
            status_name(span.status_code()),
            Duration::from_nanos(span.duration_nanos()),
        );
    }
    text
}

fn render_value(value: &AnyValueView<'_>, out: &mut String) {
    match value {
        AnyValueView::Empty => out.push_str("Empty()"),
        AnyValueView::String(text) => {
            let _ = write!(out, "Str({text})");
        }
        AnyValueView::Bool(flag) => {
            let _ = write!(out, "Bool({flag})");
        }
        AnyValueView::Int(int) => {
            let _ = write!(out, "Int({int})");
        }
        AnyValueView::Double(double) => {
            let _ = write!(out, "Double({double})");
        }
        AnyValueView::Bytes(bytes) => {
            let _ = write!(out, "Bytes({})", hex::encode(bytes));
        }
        AnyValueView::Array(values) => {
            out.push_str("Slice([");
            for (i, value) in values.clone().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_value(&value, out);
            }
            out.push_str("])");
        }
        AnyValueView::KvList(entries) => {
            out.push_str("Map({");
            for (i, entry) in entries.clone().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{}: ", entry.key);
                render_value(&entry.value, out);
            }
            out.push_str("})");
        }
    }
}

fn render_attributes(attributes: KeyValues<'_>, indent: &str, out: &mut String) {
    for attribute in attributes {
        let _ = write!(out, "{indent}-> {}: ", attribute.key);
        render_value(&attribute.value, out);
        out.push('\n');
    }
}

fn render_span(span: &SpanView<'_>, index: usize, out: &mut String) {
    let _ = writeln!(out, "Span #{index}");
    let _ = writeln!(out, "    Trace ID       : {}", hex::encode(span.trace_id()));
    let _ = writeln!(out, "    Parent ID      : {}", span.parent_span_id().map(hex::encode).unwrap_or_default());
    let _ = writeln!(out, "    ID             : {}", hex::encode(span.span_id()));
    let _ = writeln!(out, "    Name           : {}", span.name());
    let _ = writeln!(out, "    Kind           : {}", kind_name(span.kind()));
    let _ = writeln!(out, "    Start time     : {}", timestamp(span.start_time_unix_nano()));
    let _ = writeln!(out, "    End time       : {}", timestamp(span.end_time_unix_nano()));
    let _ = writeln!(out, "    Status code    : {}", status_name(span.status_code()));
    let _ = writeln!(out, "    Status message : {}", span.status_message());
    let mut attributes = span.attributes().peekable();
    if attributes.peek().is_some() {
        out.push_str("Attributes:\n");
        render_attributes(span.attributes(), "     ", out);
    }
    for (i, event) in span.events().enumerate() {
        if i == 0 {
            out.push_str("Events:\n");
        }
        let _ = writeln!(out, "SpanEvent #{i}");
        let _ = writeln!(out, "     -> Name: {}", event.name);
        let _ = writeln!(out, "     -> Timestamp: {}", timestamp(event.time_unix_nano));
        let _ = writeln!(out, "     -> DroppedAttributesCount: {}", event.dropped_attributes_count);
        render_attributes(event.attributes(), "          ", out);
    }
    for (i, link) in span.links().enumerate() {
        if i == 0 {
            out.push_str("Links:\n");
        }
        let _ = writeln!(out, "SpanLink #{i}");
        let _ = writeln!(out, "     -> Trace ID: {}", hex::encode(link.trace_id));
        let _ = writeln!(out, "     -> ID: {}", hex::encode(link.span_id));
        let _ = writeln!(out, "     -> TraceState: {}", link.trace_state);
        let _ = writeln!(out, "     -> DroppedAttributesCount: {}", link.dropped_attributes_count);
        render_attributes(link.attributes(), "          ", out);
    }
}

/// Every field of every span, laid out as the Collector's `detailed` verbosity does.
#[must_use]
pub fn render_detailed(batch: &SpanBatch) -> String {
    let mut out = String::new();
    for (r, resource) in batch.resources().enumerate() {
        let _ = writeln!(out, "ResourceSpans #{r}");
        let _ = writeln!(out, "Resource SchemaURL: {}", resource.schema_url());
        out.push_str("Resource attributes:\n");
        render_attributes(resource.attributes(), "     ", &mut out);
        for (s, scope) in resource.scopes().enumerate() {
            let _ = writeln!(out, "ScopeSpans #{s}");
            let _ = writeln!(out, "ScopeSpans SchemaURL: {}", scope.schema_url());
            let _ = writeln!(out, "InstrumentationScope {} {}", scope.name(), scope.version());
            for (i, span) in scope.spans().enumerate() {
                render_span(&span, i, &mut out);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn batch() -> SpanBatch {
        SpanBatch::decode(Bytes::from(spanpipe_testkit::realistic::encoded(4, 2))).unwrap()
    }

    #[test]
    fn sampler_logs_the_first_n_per_second_then_every_mth() {
        let start = Instant::now();
        let mut sampler = LogSampler::new(2, 3);
        let admitted: Vec<bool> = (0..8).map(|_| sampler.admit(start)).collect();
        assert_eq!(admitted, [true, true, false, false, true, false, false, true]);
        assert!(sampler.admit(start + Duration::from_secs(1)), "a new second starts over");
        let mut none_after = LogSampler::new(1, 0);
        assert!(none_after.admit(start));
        assert!(!none_after.admit(start));
    }

    #[test]
    fn summary_counts_spans_services_and_bytes() {
        let batch = batch();
        let summary = Summary::of(&batch);
        assert_eq!(summary.spans, 4);
        assert_eq!(summary.bytes, batch.encoded_len());
        assert_eq!(summary.resource_spans, batch.resource_count());
        assert!(!summary.services.is_empty());
        let line = summary.to_string();
        assert!(line.contains("spans 4"), "{line}");
    }

    #[test]
    fn normal_prints_a_line_per_span_and_detailed_every_span() {
        let batch = batch();
        let normal = render_normal(&batch);
        assert_eq!(normal.lines().count(), batch.len());
        let first = batch.span(0).unwrap();
        assert!(normal.starts_with(&hex::encode(first.trace_id())), "{normal}");
        let detailed = render_detailed(&batch);
        assert_eq!(detailed.matches("Span #").count(), batch.len());
        assert!(detailed.contains(&format!("    ID             : {}", hex::encode(first.span_id()))));
        assert!(detailed.contains("Resource attributes:"));
    }

    #[test]
    fn timestamps_read_as_the_collector_prints_them() {
        assert_eq!(timestamp(1_581_452_773_000_123_789), "2020-02-11 20:26:13.000123789 +0000 UTC");
    }

    #[test]
    fn counts_every_batch_even_when_sampled_out() {
        let exporter = DebugExporter::new(
            "debug",
            &DebugExporterConfig { sampling_initial: 0, sampling_thereafter: 0, ..Default::default() },
        );
        exporter.export(&batch());
        exporter.export(&batch());
        assert_eq!(exporter.stats().snapshot().batches_sent, 2);
        assert_eq!(exporter.stats().snapshot().spans_sent, 8);
    }
}
