//! What one self-healing action looks like on record, and how it reads on one line.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One self-healing action: what happened to which component, what was measured against which
/// threshold, and what spanpipe did about it.
///
/// Build one with [`HealthRecord::new`] and the chained setters, e.g.
///
/// ```
/// use spanpipe_health::HealthRecord;
///
/// let record = HealthRecord::new("processors/plugin/redact", "cpu_budget", "breaker_open")
///     .measured("1.8ms/span")
///     .threshold("1ms/span")
///     .detail("3 budget overruns in 10s");
/// assert_eq!(record.sequence, 0, "the log assigns the sequence when it appends");
/// ```
///
/// `sequence` is assigned by the log that stores the record ([`crate::HealthLog::append`],
/// [`crate::MemoryHealthSink`]); whatever the caller puts there is replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthRecord {
    /// When the action was taken, nanoseconds since the Unix epoch (UTC).
    pub time_unix_nano: u64,
    /// Position in the log, assigned on append: starts at 1 and only ever grows, across restarts.
    pub sequence: u64,
    /// The component acted on, as a config path, e.g. `"processors/plugin/redact"`.
    pub component: String,
    /// What set it off, e.g. `"panic"`, `"cpu_budget"`, `"cpu"`, `"reload"`.
    pub trigger: String,
    /// The value that crossed the threshold, if one was measured, e.g. `"93%"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<String>,
    /// The limit it crossed, e.g. `"85%"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    /// What spanpipe did, e.g. `"restart"`, `"breaker_open"`, `"sampling_rate 1.0 -> 0.5"`.
    pub action: String,
    /// The state before the action, when it changed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The state after the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Anything else an operator needs, e.g. the panic message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl HealthRecord {
    /// A record stamped with the current time; add the optional fields with the setters.
    #[must_use]
    pub fn new(component: impl Into<String>, trigger: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            time_unix_nano: unix_nanos(SystemTime::now()),
            sequence: 0,
            component: component.into(),
            trigger: trigger.into(),
            measured: None,
            threshold: None,
            action: action.into(),
            before: None,
            after: None,
            detail: None,
        }
    }

    /// Replaces the timestamp (nanoseconds since the Unix epoch); for callers with their own clock
    /// and for tests.
    #[must_use]
    pub fn at(mut self, time_unix_nano: u64) -> Self {
        self.time_unix_nano = time_unix_nano;
        self
    }

    /// Sets the measured value.
    #[must_use]
    pub fn measured(mut self, measured: impl Into<String>) -> Self {
        self.measured = Some(measured.into());
        self
    }

    /// Sets the threshold the measured value crossed.
    #[must_use]
    pub fn threshold(mut self, threshold: impl Into<String>) -> Self {
        self.threshold = Some(threshold.into());
        self
    }

    /// Sets the state before the action.
    #[must_use]
    pub fn before(mut self, before: impl Into<String>) -> Self {
        self.before = Some(before.into());
        self
    }

    /// Sets the state after the action.
    #[must_use]
    pub fn after(mut self, after: impl Into<String>) -> Self {
        self.after = Some(after.into());
        self
    }

    /// Sets the free-form detail.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Nanoseconds since the Unix epoch; times before it (a badly set clock) become 0 and times past
/// year 2554 saturate, so stamping a record never fails.
fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// One human-readable line for the `spanpipe health` CLI and logs, e.g.
///
/// ```text
/// 2026-12-02T10:02:24.123456789Z #42 processors/plugin/redact: cpu_budget (measured 1.8ms, threshold 1ms) -> breaker_open [closed -> open] 3 overruns
/// ```
///
/// Optional parts appear only when set. The timestamp is RFC 3339 in UTC with nanoseconds, so
/// lines sort and grep the same way the records are ordered.
#[must_use]
pub fn format_line(record: &HealthRecord) -> String {
    record.to_string()
}

impl fmt::Display for HealthRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = UNIX_EPOCH + Duration::from_nanos(self.time_unix_nano);
        write!(f, "{} #{} {}: {}", humantime::format_rfc3339_nanos(time), self.sequence, self.component, self.trigger)?;
        match (&self.measured, &self.threshold) {
            (Some(measured), Some(threshold)) => write!(f, " (measured {measured}, threshold {threshold})")?,
            (Some(measured), None) => write!(f, " (measured {measured})")?,
            (None, Some(threshold)) => write!(f, " (threshold {threshold})")?,
            (None, None) => {}
        }
        write!(f, " -> {}", self.action)?;
        match (&self.before, &self.after) {
            (Some(before), Some(after)) => write!(f, " [{before} -> {after}]")?,
            (Some(before), None) => write!(f, " [before: {before}]")?,
            (None, Some(after)) => write!(f, " [after: {after}]")?,
            (None, None) => {}
        }
        if let Some(detail) = &self.detail {
            write!(f, " {detail}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_line_renders_every_set_field_with_an_rfc3339_utc_time() {
        let record = HealthRecord::new("processors/plugin/redact", "cpu_budget", "breaker_open")
            .at(1_764_669_744_123_456_789)
            .measured("1.8ms")
            .threshold("1ms")
            .before("closed")
            .after("open")
            .detail("3 overruns");
        let record = HealthRecord { sequence: 42, ..record };
        assert_eq!(
            format_line(&record),
            "2025-12-02T10:02:24.123456789Z #42 processors/plugin/redact: cpu_budget (measured 1.8ms, threshold 1ms) \
             -> breaker_open [closed -> open] 3 overruns"
        );
    }

    #[test]
    fn format_line_leaves_out_unset_fields() {
        let record = HealthRecord::new("exporters/otlp", "reload", "reload_refused").at(0);
        assert_eq!(format_line(&record), "1970-01-01T00:00:00.000000000Z #0 exporters/otlp: reload -> reload_refused");
    }

    #[test]
    fn json_leaves_out_unset_fields_and_reads_back_equal() {
        let record = HealthRecord::new("c", "panic", "restart").at(7).detail("boom");
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains("measured"), "{json}");
        assert_eq!(serde_json::from_str::<HealthRecord>(&json).unwrap(), record);
    }
}
