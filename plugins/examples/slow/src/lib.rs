//! Example processor plugin that burns CPU on every batch: what the host's accounting of time
//! spent in plugins is tested with.
//!
//! Config: `{"spin_ms": 50, "leak_threads": 0}` (the defaults): how long each batch keeps a core
//! busy — it spins rather than sleeps, so that the time is CPU time, as a slow plugin's would be —
//! and how many threads each instance starts and never stops, the misbehaviour the host reports
//! when it retires an instance. Every span is kept.

use std::time::{Duration, Instant};

use serde::Deserialize;
use spanpipe_plugin_sdk::{export_processor, Batch, Decisions, Processor};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Milliseconds spent per batch. Defaults to 50.
    spin_ms: u64,
    /// Threads started when an instance is created and left running when it is destroyed.
    /// Defaults to 0.
    leak_threads: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self { spin_ms: 50, leak_threads: 0 }
    }
}

/// The slow processor.
#[derive(Debug)]
struct Slow {
    spin: Duration,
}

impl Processor for Slow {
    fn new(config: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_str(config).map_err(|e| format!("invalid slow config: {e}"))?;
        for _ in 0..config.leak_threads {
            // Parked for the life of the process: nothing ever unparks or joins it.
            std::thread::Builder::new()
                .name("slow-leaked".to_owned())
                .spawn(|| loop {
                    std::thread::park();
                })
                .map_err(|e| format!("cannot start a thread: {e}"))?;
        }
        Ok(Self { spin: Duration::from_millis(config.spin_ms) })
    }

    fn process(&mut self, _batch: &Batch<'_>, _decisions: &mut Decisions<'_>) -> Result<(), String> {
        let start = Instant::now();
        while start.elapsed() < self.spin {
            std::hint::spin_loop();
        }
        Ok(())
    }
}

export_processor!(Slow, name = "slow", version = "1.0.0");

#[cfg(test)]
mod tests {
    use spanpipe_plugin_sdk::core::BatchWriter;
    use spanpipe_plugin_sdk::testing;

    use super::*;

    #[test]
    fn spends_the_configured_time_and_keeps_everything() {
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.scope_spans(|ss| {
                ss.span(|s| {
                    s.trace_id(&[1; 16]).span_id(&[2; 8]);
                });
            });
        });
        let batch = writer.finish().expect("valid");
        // SAFETY: the generated function returns a pointer to a static descriptor.
        let descriptor = unsafe { &*spanpipe_plugin_descriptor() };
        let mut processor = testing::processor(descriptor, r#"{"spin_ms": 20}"#).expect("created");
        let start = Instant::now();
        assert_eq!(processor.process(&batch).expect("processed").keep, [true]);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
