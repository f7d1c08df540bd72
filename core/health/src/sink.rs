//! The seam the rest of spanpipe records through, and the in-memory implementations.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::HealthRecord;

/// Where self-healing actions are recorded.
///
/// Components hold an `Arc<dyn HealthSink>` and call [`HealthSink::record`] when they act. The
/// call never fails and never panics: a component that is busy recovering from one fault must
/// not be handed a second one because the audit trail could not be written. Implementations
/// report their own failures (see [`crate::HealthLog`], which logs a `tracing` warning).
pub trait HealthSink: Send + Sync + std::fmt::Debug {
    /// Records one action; the sink assigns its sequence.
    fn record(&self, record: HealthRecord);

    /// The most recent `n` records, oldest first, for the `/status` page. Kept in memory, so this
    /// reads no file.
    fn latest(&self, n: usize) -> Vec<HealthRecord>;
}

/// Locks a mutex whether or not a panicking thread poisoned it: every value guarded in this
/// crate is left consistent between statements, so the data is still good.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The last `limit` records, oldest first: the memory behind [`HealthSink::latest`].
#[derive(Debug)]
pub(crate) struct LatestRecords {
    limit: usize,
    records: Mutex<VecDeque<HealthRecord>>,
}

impl LatestRecords {
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit, records: Mutex::new(VecDeque::with_capacity(limit)) }
    }

    pub(crate) fn push(&self, record: HealthRecord) {
        if self.limit == 0 {
            return;
        }
        let mut records = lock(&self.records);
        if records.len() == self.limit {
            records.pop_front();
        }
        records.push_back(record);
    }

    pub(crate) fn latest(&self, n: usize) -> Vec<HealthRecord> {
        let records = lock(&self.records);
        records.iter().skip(records.len().saturating_sub(n)).cloned().collect()
    }
}

/// A [`HealthSink`] that keeps every record in memory: for tests of the crates that record
/// health events, and for runs configured without a health log file.
///
/// Sequences start at 1, as in [`crate::HealthLog`].
#[derive(Debug, Default)]
pub struct MemoryHealthSink {
    records: Mutex<Vec<HealthRecord>>,
}

impl MemoryHealthSink {
    /// An empty sink.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record so far, oldest first.
    #[must_use]
    pub fn records(&self) -> Vec<HealthRecord> {
        lock(&self.records).clone()
    }
}

impl HealthSink for MemoryHealthSink {
    fn record(&self, record: HealthRecord) {
        let mut records = lock(&self.records);
        let sequence = records.len() as u64 + 1;
        records.push(HealthRecord { sequence, ..record });
    }

    fn latest(&self, n: usize) -> Vec<HealthRecord> {
        let records = lock(&self.records);
        records[records.len().saturating_sub(n)..].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sink_assigns_sequences_from_one_and_returns_the_latest_oldest_first() {
        let sink = MemoryHealthSink::new();
        for action in ["a", "b", "c"] {
            sink.record(HealthRecord::new("c", "panic", action).sequence_hint(99));
        }
        let sequences: Vec<u64> = sink.records().iter().map(|record| record.sequence).collect();
        assert_eq!(sequences, [1, 2, 3]);
        let latest: Vec<String> = sink.latest(2).into_iter().map(|record| record.action).collect();
        assert_eq!(latest, ["b", "c"]);
        assert_eq!(sink.latest(10).len(), 3);
    }

    #[test]
    fn latest_records_keeps_only_its_limit() {
        let latest = LatestRecords::new(2);
        for action in ["a", "b", "c"] {
            latest.push(HealthRecord::new("c", "panic", action));
        }
        let actions: Vec<String> = latest.latest(5).into_iter().map(|record| record.action).collect();
        assert_eq!(actions, ["b", "c"]);
    }

    impl HealthRecord {
        fn sequence_hint(self, sequence: u64) -> Self {
            Self { sequence, ..self }
        }
    }
}
