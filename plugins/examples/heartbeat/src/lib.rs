//! Example source plugin: one heartbeat span per cycle, so a pipeline with no traffic still shows
//! that it runs end to end.
//!
//! Config: `{"service": "spanpipe-heartbeat"}` (the default): the `service.name` of the spans.
//! Each span is named `heartbeat`, carries `heartbeat.sequence` (1, 2, …) and fresh trace and
//! span ids.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use spanpipe_plugin_sdk::core::{Attributes, BatchWriter};
use spanpipe_plugin_sdk::{export_source, Emitter, Source};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// `service.name` of the heartbeat spans. Defaults to `spanpipe-heartbeat`.
    service: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { service: "spanpipe-heartbeat".to_owned() }
    }
}

/// The heartbeat source.
#[derive(Debug)]
struct Heartbeat {
    service: String,
    sequence: u64,
    /// Mixed into every id so that two instances started together do not repeat each other.
    seed: u64,
}

/// SplitMix64: a cheap, well-mixed 64-bit hash. Ids only need to be distinct, not secret.
fn mix(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// A `u64` that is never zero (an all-zero id is invalid in OTLP).
fn non_zero(value: u64) -> u64 {
    value.max(1)
}

fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos() as u64)
}

impl Heartbeat {
    fn ids(&self) -> ([u8; 16], [u8; 8]) {
        let base = self.seed ^ self.sequence.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let mut trace_id = [0; 16];
        trace_id[..8].copy_from_slice(&non_zero(mix(base)).to_be_bytes());
        trace_id[8..].copy_from_slice(&mix(base ^ 1).to_be_bytes());
        (trace_id, non_zero(mix(base ^ 2)).to_be_bytes())
    }
}

impl Source for Heartbeat {
    fn new(config: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_str(config).map_err(|e| format!("invalid heartbeat config: {e}"))?;
        let seed = mix(now_nanos() ^ u64::from(std::process::id()).rotate_left(32));
        Ok(Self { service: config.service, sequence: 0, seed })
    }

    fn emit(&mut self, out: &mut Emitter<'_>) -> Result<(), String> {
        self.sequence += 1;
        let (trace_id, span_id) = self.ids();
        let now = now_nanos();
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.resource(|r| r.str_attribute("service.name", &self.service));
            rs.scope_spans(|ss| {
                ss.scope(|s| {
                    s.name("spanpipe-example-heartbeat");
                });
                ss.span(|s| {
                    s.trace_id(&trace_id).span_id(&span_id).name("heartbeat").kind(1);
                    s.start_time_unix_nano(now).end_time_unix_nano(now);
                    s.int_attribute("heartbeat.sequence", self.sequence as i64);
                });
            });
        });
        Ok(out.push(writer)?)
    }
}

export_source!(Heartbeat, name = "heartbeat", version = "1.0.0");

#[cfg(test)]
mod tests {
    use spanpipe_plugin_sdk::testing;

    use super::*;

    #[test]
    fn each_cycle_emits_one_numbered_span_with_fresh_ids() {
        // SAFETY: the generated function returns a pointer to a static descriptor.
        let descriptor = unsafe { &*spanpipe_plugin_descriptor() };
        let mut source = testing::source(descriptor, r#"{"service": "probe"}"#).expect("created");
        let mut seen = Vec::new();
        for sequence in 1..=3 {
            let requests = source.emit().expect("emitted");
            assert_eq!(requests.len(), 1);
            let span = requests[0].span(0).expect("one span");
            assert_eq!((span.name(), span.service_name()), ("heartbeat", Some("probe")));
            let attribute = span.attributes().get("heartbeat.sequence").map(|v| format!("{v:?}"));
            assert_eq!(attribute, Some(format!("Int({sequence})")));
            assert!(span.trace_id() != &[0; 16] && span.span_id() != &[0; 8]);
            seen.push((*span.trace_id(), *span.span_id()));
        }
        seen.dedup();
        assert_eq!(seen.len(), 3, "ids repeat: {seen:?}");
        let default = testing::source(descriptor, "{}").expect("created").emit().expect("emitted");
        assert_eq!(default[0].span(0).and_then(|s| s.service_name()), Some("spanpipe-heartbeat"));
    }
}
