//! Per-core exporter counters that the runtime sums on read.
//!
//! Every exporter instance owns one [`ExporterStats`] behind an `Arc`. Only its own core writes to
//! it, so the atomics are never contended and `Relaxed` ordering is enough: a reader on another
//! thread (the metrics endpoint) sees each counter move monotonically and may see two counters a
//! few increments apart, which is all a Prometheus scrape needs. [`ExporterStats::snapshot`] copies
//! the counters into a plain [`StatsSnapshot`], and snapshots of all cores add up with `+=`.
//!
//! Counters are plain numbers, not metric names: the runtime decides how to render them.

use std::ops::AddAssign;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use spanpipe_core::SpanBatch;

/// Why a batch the exporter had accepted was given up. Every accepted batch ends either delivered
/// or counted under exactly one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The backend refused the batch with a non-retryable answer (HTTP 400, gRPC
    /// `INVALID_ARGUMENT`, …).
    Rejected,
    /// Retrying went on for `retry_on_failure.max_elapsed_time` without success.
    RetriesExhausted,
    /// The attempt failed with a retryable answer but `retry_on_failure.enabled` is false.
    RetryDisabled,
    /// The shutdown deadline passed before the batch could be delivered.
    Shutdown,
    /// The batch could not be encoded for the wire (or compressed).
    Encode,
    /// Writing the batch to its file failed.
    Write,
}

impl DropReason {
    /// Every reason, in the order of [`DropReason::index`].
    pub const ALL: [Self; 6] =
        [Self::Rejected, Self::RetriesExhausted, Self::RetryDisabled, Self::Shutdown, Self::Encode, Self::Write];

    /// A stable label for metrics (`rejected`, `retries_exhausted`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::RetriesExhausted => "retries_exhausted",
            Self::RetryDisabled => "retry_disabled",
            Self::Shutdown => "shutdown",
            Self::Encode => "encode",
            Self::Write => "write",
        }
    }

    /// Position of this reason in [`StatsSnapshot::dropped_batches`] and `dropped_spans`.
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            Self::Rejected => 0,
            Self::RetriesExhausted => 1,
            Self::RetryDisabled => 2,
            Self::Shutdown => 3,
            Self::Encode => 4,
            Self::Write => 5,
        }
    }
}

const REASONS: usize = DropReason::ALL.len();

/// Upper bounds of the export latency histogram's buckets; one more bucket counts everything
/// slower than the last bound. The bounds follow Prometheus' usual 1-2.5-5 ladder from 1 ms to
/// 10 s, which spans a loopback round trip and a backend at its timeout alike.
pub const LATENCY_BUCKET_BOUNDS: [Duration; 13] = [
    Duration::from_millis(1),
    Duration::from_micros(2_500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_micros(2_500_000),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

const BUCKETS: usize = LATENCY_BUCKET_BOUNDS.len() + 1;

/// The counters of one exporter instance (one core). Written by its core, read from anywhere.
#[derive(Debug, Default)]
pub struct ExporterStats {
    batches_sent: AtomicU64,
    spans_sent: AtomicU64,
    bytes_sent: AtomicU64,
    wire_bytes_sent: AtomicU64,
    spans_rejected_by_backend: AtomicU64,
    refused_batches: AtomicU64,
    refused_spans: AtomicU64,
    dropped_batches: [AtomicU64; REASONS],
    dropped_spans: [AtomicU64; REASONS],
    retries: AtomicU64,
    failovers: AtomicU64,
    failbacks: AtomicU64,
    tls_handshake_failures: AtomicU64,
    queue_depth: AtomicU64,
    in_flight: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS],
    latency_sum_micros: AtomicU64,
}

fn add(counter: &AtomicU64, amount: u64) {
    counter.fetch_add(amount, Ordering::Relaxed);
}

fn sub(counter: &AtomicU64, amount: u64) {
    counter.fetch_sub(amount, Ordering::Relaxed);
}

impl ExporterStats {
    /// A fresh set of zeroed counters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A batch reached the backend (or the file, or the log). `wire_bytes` is what went on the
    /// wire after encoding and compression.
    pub(crate) fn delivered(&self, batch: &SpanBatch, wire_bytes: usize) {
        add(&self.batches_sent, 1);
        add(&self.spans_sent, batch.len() as u64);
        add(&self.bytes_sent, batch.encoded_len() as u64);
        add(&self.wire_bytes_sent, wire_bytes as u64);
    }

    /// The backend accepted the request but rejected `spans` of it (`partial_success`).
    pub(crate) fn rejected_by_backend(&self, spans: u64) {
        add(&self.spans_rejected_by_backend, spans);
    }

    /// `try_send` refused a batch because the queue was full (pushed back, not dropped).
    pub(crate) fn refused(&self, batch: &SpanBatch) {
        add(&self.refused_batches, 1);
        add(&self.refused_spans, batch.len() as u64);
    }

    /// An accepted batch was given up.
    pub(crate) fn dropped(&self, reason: DropReason, spans: usize) {
        add(&self.dropped_batches[reason.index()], 1);
        add(&self.dropped_spans[reason.index()], spans as u64);
    }

    pub(crate) fn retried(&self) {
        add(&self.retries, 1);
    }

    pub(crate) fn failed_over(&self) {
        add(&self.failovers, 1);
    }

    pub(crate) fn failed_back(&self) {
        add(&self.failbacks, 1);
    }

    /// A connection's TLS handshake failed (refused certificate, timeout, …).
    pub(crate) fn tls_handshake_failed(&self) {
        add(&self.tls_handshake_failures, 1);
    }

    pub(crate) fn enqueued(&self) {
        add(&self.queue_depth, 1);
    }

    pub(crate) fn dequeued(&self) {
        sub(&self.queue_depth, 1);
    }

    pub(crate) fn attempt_started(&self) {
        add(&self.in_flight, 1);
    }

    /// One request finished (whatever its outcome) after `latency`.
    pub(crate) fn attempt_finished(&self, latency: Duration) {
        sub(&self.in_flight, 1);
        let bucket = LATENCY_BUCKET_BOUNDS.iter().position(|bound| latency <= *bound).unwrap_or(BUCKETS - 1);
        add(&self.latency_buckets[bucket], 1);
        add(&self.latency_sum_micros, u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Copies every counter.
    #[must_use]
    pub fn snapshot(&self) -> StatsSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StatsSnapshot {
            batches_sent: load(&self.batches_sent),
            spans_sent: load(&self.spans_sent),
            bytes_sent: load(&self.bytes_sent),
            wire_bytes_sent: load(&self.wire_bytes_sent),
            spans_rejected_by_backend: load(&self.spans_rejected_by_backend),
            refused_batches: load(&self.refused_batches),
            refused_spans: load(&self.refused_spans),
            dropped_batches: self.dropped_batches.each_ref().map(load),
            dropped_spans: self.dropped_spans.each_ref().map(load),
            retries: load(&self.retries),
            failovers: load(&self.failovers),
            failbacks: load(&self.failbacks),
            tls_handshake_failures: load(&self.tls_handshake_failures),
            queue_depth: load(&self.queue_depth),
            in_flight: load(&self.in_flight),
            latency_buckets: self.latency_buckets.each_ref().map(load),
            latency_sum_micros: load(&self.latency_sum_micros),
        }
    }
}

/// The counters of one or more exporter instances at one moment. Add snapshots of every core
/// with `+=` to get the exporter's totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Batches delivered.
    pub batches_sent: u64,
    /// Spans in delivered batches (including any the backend then rejected in a partial success).
    pub spans_sent: u64,
    /// OTLP protobuf bytes of delivered batches, before encoding and compression.
    pub bytes_sent: u64,
    /// Bytes of delivered request bodies as sent: after encoding and compression.
    pub wire_bytes_sent: u64,
    /// Spans the backend reported as rejected in a `partial_success` answer.
    pub spans_rejected_by_backend: u64,
    /// Batches `try_send` refused because the queue was full; the caller kept them.
    pub refused_batches: u64,
    /// Spans in refused batches.
    pub refused_spans: u64,
    /// Accepted batches given up, by [`DropReason::index`].
    pub dropped_batches: [u64; REASONS],
    /// Spans in those batches, by [`DropReason::index`].
    pub dropped_spans: [u64; REASONS],
    /// Attempts after the first one.
    pub retries: u64,
    /// Switches from a failing endpoint to the next one.
    pub failovers: u64,
    /// Returns to the primary endpoint after a successful probe.
    pub failbacks: u64,
    /// Attempts that failed because of TLS: the handshake failed, or the server refused this
    /// side's certificate right after it (TLS 1.3). Each is also retried or dropped like any
    /// failed attempt.
    pub tls_handshake_failures: u64,
    /// Batches waiting in the queue (a gauge).
    pub queue_depth: u64,
    /// Requests on the wire right now (a gauge).
    pub in_flight: u64,
    /// Requests per latency bucket: `latency_buckets[i]` counts requests that took at most
    /// `LATENCY_BUCKET_BOUNDS[i]` and longer than the previous bound; the last counts the rest.
    /// Not cumulative; Prometheus' cumulative form is a running sum.
    pub latency_buckets: [u64; BUCKETS],
    /// Sum of all request latencies, in microseconds.
    pub latency_sum_micros: u64,
}

impl StatsSnapshot {
    /// Batches dropped for `reason`.
    #[must_use]
    pub fn dropped_batches_for(&self, reason: DropReason) -> u64 {
        self.dropped_batches[reason.index()]
    }

    /// Spans dropped for `reason`.
    #[must_use]
    pub fn dropped_spans_for(&self, reason: DropReason) -> u64 {
        self.dropped_spans[reason.index()]
    }

    /// Batches dropped for any reason.
    #[must_use]
    pub fn dropped_batches_total(&self) -> u64 {
        self.dropped_batches.iter().sum()
    }

    /// Spans dropped for any reason.
    #[must_use]
    pub fn dropped_spans_total(&self) -> u64 {
        self.dropped_spans.iter().sum()
    }

    /// Requests measured by the latency histogram.
    #[must_use]
    pub fn latency_count(&self) -> u64 {
        self.latency_buckets.iter().sum()
    }
}

impl AddAssign for StatsSnapshot {
    fn add_assign(&mut self, other: Self) {
        fn add_all<const N: usize>(into: &mut [u64; N], from: [u64; N]) {
            for (into, from) in into.iter_mut().zip(from) {
                *into += from;
            }
        }
        self.batches_sent += other.batches_sent;
        self.spans_sent += other.spans_sent;
        self.bytes_sent += other.bytes_sent;
        self.wire_bytes_sent += other.wire_bytes_sent;
        self.spans_rejected_by_backend += other.spans_rejected_by_backend;
        self.refused_batches += other.refused_batches;
        self.refused_spans += other.refused_spans;
        add_all(&mut self.dropped_batches, other.dropped_batches);
        add_all(&mut self.dropped_spans, other.dropped_spans);
        self.retries += other.retries;
        self.failovers += other.failovers;
        self.failbacks += other.failbacks;
        self.tls_handshake_failures += other.tls_handshake_failures;
        self.queue_depth += other.queue_depth;
        self.in_flight += other.in_flight;
        add_all(&mut self.latency_buckets, other.latency_buckets);
        self.latency_sum_micros += other.latency_sum_micros;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_the_first_bucket_whose_bound_covers_it() {
        let stats = ExporterStats::new();
        for latency in [Duration::from_micros(999), Duration::from_millis(1), Duration::from_millis(3)] {
            stats.attempt_started();
            stats.attempt_finished(latency);
        }
        stats.attempt_started();
        stats.attempt_finished(Duration::from_secs(60));
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.latency_buckets[0], 2);
        assert_eq!(snapshot.latency_buckets[2], 1);
        assert_eq!(snapshot.latency_buckets[BUCKETS - 1], 1);
        assert_eq!(snapshot.latency_count(), 4);
        assert_eq!(snapshot.in_flight, 0);
        assert_eq!(snapshot.latency_sum_micros, 999 + 1_000 + 3_000 + 60_000_000);
    }

    #[test]
    fn snapshots_of_cores_add_up() {
        let (first, second) = (ExporterStats::new(), ExporterStats::new());
        first.dropped(DropReason::Shutdown, 7);
        second.dropped(DropReason::Shutdown, 3);
        second.dropped(DropReason::Rejected, 1);
        first.retried();
        second.retried();
        let mut total = first.snapshot();
        total += second.snapshot();
        assert_eq!(total.dropped_batches_for(DropReason::Shutdown), 2);
        assert_eq!(total.dropped_spans_for(DropReason::Shutdown), 10);
        assert_eq!(total.dropped_spans_total(), 11);
        assert_eq!(total.retries, 2);
    }

    #[test]
    fn drop_reason_indexes_match_their_position() {
        for (position, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), position, "{}", reason.as_str());
        }
    }
}
