//! Example processor plugin: keeps a fixed percentage of traces and drops the rest.
//!
//! Config: `{"percent": 50.0}` (defaults to 50). A span is kept when the first 8 bytes of its
//! trace id, read as a big-endian `u64`, fall below that percentage of the `u64` range. Trace ids
//! are random, so this keeps about that share of traces, and every span of a trace gets the same
//! decision on every instance without any shared state.

use serde::Deserialize;
use spanpipe_plugin_sdk::{export_processor, Batch, Decisions, Processor};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Share of traces kept, 0 to 100. Defaults to 50.
    percent: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self { percent: 50.0 }
    }
}

/// The sampling processor.
#[derive(Debug)]
struct Sample {
    /// Trace ids whose first 8 bytes are below this are kept; `None` keeps every trace.
    below: Option<u64>,
}

impl Sample {
    fn from_percent(percent: f64) -> Result<Self, String> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(format!("invalid sample config: `percent` must be between 0 and 100, not {percent}"));
        }
        // 2^64 as a float; 100% cannot be written as a `u64` bound, hence `None`.
        let range = 18_446_744_073_709_551_616.0_f64;
        let below = (percent < 100.0).then(|| (percent / 100.0 * range) as u64);
        Ok(Self { below })
    }

    fn keeps(&self, trace_id: &[u8; 16]) -> bool {
        let mut first = [0; 8];
        first.copy_from_slice(&trace_id[..8]);
        self.below.is_none_or(|below| u64::from_be_bytes(first) < below)
    }
}

impl Processor for Sample {
    fn new(config: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_str(config).map_err(|e| format!("invalid sample config: {e}"))?;
        Self::from_percent(config.percent)
    }

    fn process(&mut self, batch: &Batch<'_>, decisions: &mut Decisions<'_>) -> Result<(), String> {
        for span in batch.spans().filter(|span| !self.keeps(span.trace_id())) {
            decisions.drop(span.position());
        }
        Ok(())
    }
}

export_processor!(Sample, name = "sample", version = "1.0.0");

#[cfg(test)]
mod tests {
    use spanpipe_plugin_sdk::core::BatchWriter;
    use spanpipe_plugin_sdk::testing;

    use super::*;

    fn trace(first: u64) -> [u8; 16] {
        let mut id = [0xff; 16];
        id[..8].copy_from_slice(&first.to_be_bytes());
        id
    }

    #[test]
    fn keeps_trace_ids_below_the_percentage_of_the_range() {
        let half = Sample::from_percent(50.0).expect("valid");
        assert!(half.keeps(&trace(0)) && half.keeps(&trace(u64::MAX / 2)));
        assert!(!half.keeps(&trace(u64::MAX / 2 + 1)) && !half.keeps(&trace(u64::MAX)));
        assert!(!Sample::from_percent(0.0).expect("valid").keeps(&trace(0)));
        assert!(Sample::from_percent(100.0).expect("valid").keeps(&trace(u64::MAX)));
        assert!(Sample::from_percent(100.5).is_err() && Sample::from_percent(f64::NAN).is_err());
    }

    #[test]
    fn drops_the_spans_of_traces_not_sampled() {
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.scope_spans(|ss| {
                for (span, first) in [(1, 1), (2, u64::MAX), (3, 7)] {
                    ss.span(|s| {
                        s.trace_id(&trace(first)).span_id(&[span; 8]);
                    });
                }
            });
        });
        let batch = writer.finish().expect("valid");
        // SAFETY: the generated function returns a pointer to a static descriptor.
        let mut processor =
            testing::processor(unsafe { &*spanpipe_plugin_descriptor() }, r#"{"percent": 25}"#).expect("created");
        assert_eq!(processor.process(&batch).expect("processed").keep, [true, false, true]);
    }
}
