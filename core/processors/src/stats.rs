//! Plain per-instance counters. Each core owns its processor instances and their counters; nothing
//! here is atomic. The runtime reads them between batches on the owning core and sums copies
//! across cores ([`ProcessorStats::add`]), so the hot path pays an add, not a shared cache line.

/// Why a processor left spans out. Every span that goes in either goes out, is still held (the
/// batch processor), or is counted under exactly one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A sampler's probabilistic decision did not select the span.
    NotSampled,
    /// The span's `sampling.priority` attribute was zero (probabilistic sampler).
    SamplingPriority,
    /// The sampler could not decide (no randomness, invalid or inconsistent `tracestate`) and
    /// `fail_closed` is set.
    SamplingError,
    /// The routing processor found no route and has no `default_exporters`.
    NoRoute,
    /// A rewritten batch failed the core's scan: a bug in spanpipe, counted rather than passed on.
    Internal,
    /// A plugin processor left the span out, or the plugin failed and its stage's `on_failure`
    /// is `drop`.
    Plugin,
}

impl DropReason {
    /// Every reason, in a fixed order (the order of [`ProcessorStats::dropped_by_reason`]).
    pub const ALL: [DropReason; 6] =
        [Self::NotSampled, Self::SamplingPriority, Self::SamplingError, Self::NoRoute, Self::Internal, Self::Plugin];

    /// A short stable name, for metric labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotSampled => "not_sampled",
            Self::SamplingPriority => "sampling_priority",
            Self::SamplingError => "sampling_error",
            Self::NoRoute => "no_route",
            Self::Internal => "internal_error",
            Self::Plugin => "plugin",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::NotSampled => 0,
            Self::SamplingPriority => 1,
            Self::SamplingError => 2,
            Self::NoRoute => 3,
            Self::Internal => 4,
            Self::Plugin => 5,
        }
    }
}

/// What one processor instance did since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessorStats {
    /// Batches handed to the processor.
    pub batches_in: u64,
    /// Spans in those batches.
    pub spans_in: u64,
    /// Batches the processor emitted.
    pub batches_out: u64,
    /// Spans in those batches.
    pub spans_out: u64,
    /// Spans whose bytes the processor rewrote (attributes changed, `tracestate` updated).
    pub spans_modified: u64,
    /// Spans passed on without being processed, because the stage could not process them: a
    /// plugin stage whose plugin is absent, failed, or is bypassed by its breaker.
    pub spans_bypassed: u64,
    dropped: [u64; DropReason::ALL.len()],
}

impl ProcessorStats {
    /// Spans left out for `reason`.
    #[must_use]
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Spans left out for any reason.
    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Every reason with its count, in the order of [`DropReason::ALL`].
    pub fn dropped_by_reason(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|reason| (*reason, self.dropped(*reason)))
    }

    /// Spans taken in and neither emitted nor dropped: what the processor holds right now.
    #[must_use]
    pub fn spans_held(&self) -> u64 {
        self.spans_in.saturating_sub(self.spans_out + self.dropped_total())
    }

    /// Adds another instance's counters to these (summing across cores).
    pub fn add(&mut self, other: &ProcessorStats) {
        self.batches_in += other.batches_in;
        self.spans_in += other.spans_in;
        self.batches_out += other.batches_out;
        self.spans_out += other.spans_out;
        self.spans_modified += other.spans_modified;
        self.spans_bypassed += other.spans_bypassed;
        for (mine, theirs) in self.dropped.iter_mut().zip(other.dropped) {
            *mine += theirs;
        }
    }

    /// Counts a batch of `spans` spans handed to the processor. Public so that processors
    /// outside this crate (plugins) keep the same books.
    pub fn record_in(&mut self, spans: usize) {
        self.batches_in += 1;
        self.spans_in += spans as u64;
    }

    /// Counts a batch of `spans` spans the processor emitted.
    pub fn record_out(&mut self, spans: usize) {
        self.batches_out += 1;
        self.spans_out += spans as u64;
    }

    /// Counts `spans` spans left out for `reason`.
    pub fn record_dropped(&mut self, reason: DropReason, spans: usize) {
        self.dropped[reason.index()] += spans as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_across_instances_and_accounts_for_every_span() {
        let mut core_a = ProcessorStats::default();
        core_a.record_in(10);
        core_a.record_out(6);
        core_a.record_dropped(DropReason::NotSampled, 3);
        let mut core_b = ProcessorStats::default();
        core_b.record_in(5);
        core_b.record_dropped(DropReason::SamplingError, 5);
        let mut total = ProcessorStats::default();
        total.add(&core_a);
        total.add(&core_b);
        assert_eq!((total.batches_in, total.spans_in, total.spans_out), (2, 15, 6));
        assert_eq!(total.dropped(DropReason::NotSampled), 3);
        assert_eq!(total.dropped(DropReason::SamplingError), 5);
        assert_eq!(total.dropped_total(), 8);
        assert_eq!(total.spans_held(), 1);
        let names: Vec<&str> = total.dropped_by_reason().map(|(reason, _)| reason.as_str()).collect();
        assert_eq!(
            names,
            ["not_sampled", "sampling_priority", "sampling_error", "no_route", "internal_error", "plugin"]
        );
    }
}
