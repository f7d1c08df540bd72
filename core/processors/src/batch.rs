//! The `batch` processor: gathers spans into larger batches, bounded in spans and bytes, and sends
//! what it holds at the latest `timeout` after the oldest of it arrived.
//!
//! Keys and defaults are the OpenTelemetry Collector's (`send_batch_size` 8192,
//! `send_batch_max_size` 0, `timeout` 200ms) plus spanpipe's `send_batch_max_bytes`, because
//! backends limit request bytes, not span counts. As in the Collector, reaching
//! `send_batch_size` sends everything held, cut into pieces of at most `send_batch_max_size`; a
//! zero `send_batch_size` or `timeout` sends every batch at once (still cut to the limits).
//! Unlike the Collector, whose timer restarts after every send, the deadline here is always the
//! arrival of the oldest span held plus `timeout`, so no span waits longer than `timeout` for its
//! turn (given the runtime ticks at [`Processor::next_deadline`]).
//!
//! Nothing is re-encoded: incoming batches are kept as they came, and a batch is cut out of them
//! with the [`Reframer`] only when it is sent. A batch that is sent whole on its own is passed on
//! without a copy.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::{ComponentConfig, FieldError, GoDuration};
use spanpipe_core::{Reframer, SpanBatch};

use crate::{Output, Processor, ProcessorStats};
use spanpipe_core::wire::len_field_size;

/// Config of the `batch` processor.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Number of spans after which a batch is sent regardless of the timeout; 0 sends every
    /// incoming batch at once. Defaults to 8192.
    #[serde(default = "default_send_batch_size")]
    pub send_batch_size: u32,
    /// Upper bound on the spans of a sent batch; larger ones are split. 0 means no limit; otherwise
    /// it must be at least `send_batch_size`. Defaults to 0.
    #[serde(default)]
    pub send_batch_max_size: u32,
    /// Longest time a span is held before its batch is sent, whatever its size; 0 sends every
    /// incoming batch at once. Defaults to 200ms.
    #[serde(default = "default_timeout")]
    pub timeout: GoDuration,
    /// spanpipe extra: upper bound on the encoded size of a sent batch in bytes; larger ones are
    /// split (a single span larger than this travels alone). Reaching it also sends a batch. 0
    /// means no limit. Defaults to 0.
    #[serde(default)]
    pub send_batch_max_bytes: u64,
}

fn default_send_batch_size() -> u32 {
    8192
}

fn default_timeout() -> GoDuration {
    GoDuration::from_millis(200)
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            send_batch_size: default_send_batch_size(),
            send_batch_max_size: 0,
            timeout: default_timeout(),
            send_batch_max_bytes: 0,
        }
    }
}

impl ComponentConfig for BatchConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.send_batch_max_size > 0 && self.send_batch_max_size < self.send_batch_size {
            errors.push(FieldError::new(
                "send_batch_max_size",
                format!(
                    "must be greater than or equal to send_batch_size ({}), or 0 for no limit",
                    self.send_batch_size
                ),
            ));
        }
        errors
    }
}

impl BatchConfig {
    /// A per-core instance. Call after [`ComponentConfig::validate`] found nothing.
    #[must_use]
    pub fn build(&self) -> BatchProcessor {
        let limit = |value: u64| if value == 0 { usize::MAX } else { usize::try_from(value).unwrap_or(usize::MAX) };
        BatchProcessor {
            send_batch_size: self.send_batch_size as usize,
            max_spans: limit(u64::from(self.send_batch_max_size)),
            max_bytes: limit(self.send_batch_max_bytes),
            timeout: self.timeout.0,
            pending: VecDeque::new(),
            cursor: 0,
            pending_spans: 0,
            pending_span_bytes: 0,
            stats: ProcessorStats::default(),
        }
    }
}

/// An incoming batch held by the processor, with when it arrived.
#[derive(Debug)]
struct Held {
    batch: SpanBatch,
    arrived: Instant,
}

/// The `batch` processor of one core.
#[derive(Debug)]
pub struct BatchProcessor {
    send_batch_size: usize,
    max_spans: usize,
    max_bytes: usize,
    timeout: Duration,
    /// Incoming batches in arrival order; the spans before `cursor` of the first were sent.
    pending: VecDeque<Held>,
    cursor: usize,
    pending_spans: usize,
    /// Sum of the encoded `spans` fields of the held spans: a lower bound of the size of a batch
    /// holding them all, which decides when the byte limit is reached.
    pending_span_bytes: usize,
    stats: ProcessorStats,
}

fn span_field_size(batch: &SpanBatch, position: usize) -> usize {
    batch.span(position).map_or(0, |span| len_field_size(span.byte_range().len()))
}

impl BatchProcessor {
    /// Whether what is held must be sent now, without waiting for the deadline.
    fn full(&self) -> bool {
        let immediate = self.send_batch_size == 0 || self.timeout.is_zero();
        self.pending_spans > 0
            && (immediate || self.pending_spans >= self.send_batch_size || self.pending_span_bytes >= self.max_bytes)
    }

    /// The held spans not yet sent, in order.
    fn held_spans(&self) -> impl Iterator<Item = (&SpanBatch, usize)> + '_ {
        self.pending.iter().enumerate().flat_map(move |(index, held)| {
            let first = if index == 0 { self.cursor } else { 0 };
            (first..held.batch.len()).map(move |position| (&held.batch, position))
        })
    }

    /// Sends one batch cut from the front of what is held, as large as the limits allow.
    fn send_one(&mut self, out: &mut Output) {
        let (batch, count) = self.cut();
        self.advance(count);
        self.stats.record_out(batch.len());
        out.push(batch);
    }

    /// The next batch to send and how many held spans it takes.
    fn cut(&self) -> (SpanBatch, usize) {
        if let (Some(first), 1) = (self.pending.front(), self.pending.len()) {
            if self.cursor == 0 && first.batch.len() <= self.max_spans && first.batch.encoded_len() <= self.max_bytes {
                return (first.batch.clone(), first.batch.len());
            }
        }
        let mut reframer = Reframer::with_capacity(self.pending_spans.min(self.max_spans));
        let mut count = 0;
        for (batch, position) in self.held_spans() {
            if count == self.max_spans {
                break;
            }
            reframer.push(batch, position);
            if count > 0 && reframer.encoded_len() > self.max_bytes {
                // The reframer cannot take a span back: frame the ones that fit again.
                let mut fitting = Reframer::with_capacity(count);
                for (batch, position) in self.held_spans().take(count) {
                    fitting.push(batch, position);
                }
                return (fitting.finish(), count);
            }
            count += 1;
        }
        (reframer.finish(), count)
    }

    /// Forgets the first `count` held spans.
    fn advance(&mut self, mut count: usize) {
        while count > 0 {
            let Some(first) = self.pending.front() else { break };
            let available = first.batch.len() - self.cursor;
            let taken = available.min(count);
            let bytes: usize =
                (self.cursor..self.cursor + taken).map(|position| span_field_size(&first.batch, position)).sum();
            self.pending_span_bytes -= bytes;
            self.pending_spans -= taken;
            count -= taken;
            if taken == available {
                self.pending.pop_front();
                self.cursor = 0;
            } else {
                self.cursor += taken;
            }
        }
    }

    fn send_all(&mut self, out: &mut Output) {
        while self.pending_spans > 0 {
            self.send_one(out);
        }
    }
}

impl Processor for BatchProcessor {
    fn process(&mut self, batch: SpanBatch, now: Instant, out: &mut Output) {
        self.stats.record_in(batch.len());
        if batch.is_empty() {
            return;
        }
        self.pending_span_bytes += (0..batch.len()).map(|position| span_field_size(&batch, position)).sum::<usize>();
        self.pending_spans += batch.len();
        self.pending.push_back(Held { batch, arrived: now });
        while self.full() {
            self.send_one(out);
        }
    }

    fn tick(&mut self, now: Instant, out: &mut Output) {
        if self.next_deadline().is_some_and(|deadline| deadline <= now) {
            self.send_all(out);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.pending.front().map(|held| held.arrived + self.timeout)
    }

    fn flush(&mut self, out: &mut Output) {
        self.send_all(out);
    }

    fn stats(&self) -> &ProcessorStats {
        &self.stats
    }
}
