//! The `adaptive_sampler` processor (spanpipe's own): keeps what an on-call engineer needs — every
//! span with status ERROR and every span slower than `latency_threshold` — and samples the rest at
//! a base rate that can be changed while spanpipe runs.
//!
//! The base-rate decision is consistent by trace id: it compares the W3C trace-id randomness (the
//! last 56 bits) with the threshold of the rate, the same test OpenTelemetry's consistent samplers
//! and the `probabilistic_sampler` in `proportional` mode make, so every span of a trace gets the
//! same answer on every core and every agent, and a trace kept at 1% is also kept at 10%.
//!
//! The rate lives in an [`AdaptiveSamplerHandle`]: one atomic shared by the instances of every
//! core, written by whatever controls it (an operator's command, a feedback loop on export
//! volume) and read once per batch. The sampler does not write `tracestate`: its kept spans are
//! not a uniform probability sample (errors and slow spans are kept at 100%), so a single
//! threshold per batch would misstate their adjusted counts.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::{ComponentConfig, FieldError, GoDuration};
use spanpipe_core::{SpanBatch, StatusCode};

use crate::sampling::{Randomness, Threshold, MIN_PROBABILITY};
use crate::{DropReason, Output, Processor, ProcessorStats};

/// Config of the `adaptive_sampler` processor.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveSamplerConfig {
    /// Percentage of traces kept among spans that are neither errors nor slow, at start; change it
    /// at run time through the sampler's handle. 0 to 100. Defaults to 10.
    #[serde(default = "default_base_sampling_percentage")]
    pub base_sampling_percentage: f32,
    /// Spans lasting at least this long are always kept. Defaults to 1s.
    #[serde(default = "default_latency_threshold")]
    pub latency_threshold: GoDuration,
}

fn default_base_sampling_percentage() -> f32 {
    10.0
}

fn default_latency_threshold() -> GoDuration {
    GoDuration::from_secs(1)
}

impl Default for AdaptiveSamplerConfig {
    fn default() -> Self {
        Self {
            base_sampling_percentage: default_base_sampling_percentage(),
            latency_threshold: default_latency_threshold(),
        }
    }
}

impl ComponentConfig for AdaptiveSamplerConfig {
    fn validate(&self) -> Vec<FieldError> {
        match check_percentage(self.base_sampling_percentage) {
            Ok(()) => Vec::new(),
            Err(error) => vec![FieldError::new("base_sampling_percentage", error.to_string())],
        }
    }
}

impl AdaptiveSamplerConfig {
    /// The shared handle every instance built from it reads. Build one per configured sampler,
    /// then pass it to [`AdaptiveSamplerConfig::build`] on every core.
    #[must_use]
    pub fn handle(&self) -> AdaptiveSamplerHandle {
        AdaptiveSamplerHandle {
            percentage: Arc::new(AtomicU32::new(self.base_sampling_percentage.to_bits())),
            factor: Arc::new(AtomicU32::new(1.0f32.to_bits())),
        }
    }

    /// A per-core instance reading `handle`. Call after [`ComponentConfig::validate`] found nothing.
    #[must_use]
    pub fn build(&self, handle: &AdaptiveSamplerHandle) -> AdaptiveSampler {
        AdaptiveSampler {
            handle: handle.clone(),
            latency_threshold_nanos: u64::try_from(self.latency_threshold.0.as_nanos()).unwrap_or(u64::MAX),
            stats: ProcessorStats::default(),
        }
    }
}

/// A base rate outside 0..=100.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error("sampling percentage {0} is out of range: use a number from 0 to 100")]
pub struct InvalidPercentage(pub f32);

fn check_percentage(percentage: f32) -> Result<(), InvalidPercentage> {
    if (0.0..=100.0).contains(&percentage) {
        Ok(())
    } else {
        Err(InvalidPercentage(percentage))
    }
}

/// Changes the rate of every instance of one adaptive sampler, on every core. Cheap to clone; all
/// clones share the atomics. The rate applied is the base rate (the config's, or an operator's)
/// times a factor the health watchdog lowers under CPU pressure: the two are kept apart so that
/// restoring the factor restores whatever base rate holds by then.
#[derive(Clone, Debug)]
pub struct AdaptiveSamplerHandle {
    /// The base percentage as `f32` bits.
    percentage: Arc<AtomicU32>,
    /// The watchdog's factor (0..=1) as `f32` bits.
    factor: Arc<AtomicU32>,
}

impl AdaptiveSamplerHandle {
    /// The base rate in percent.
    #[must_use]
    pub fn percentage(&self) -> f32 {
        f32::from_bits(self.percentage.load(Ordering::Relaxed))
    }

    /// The watchdog's factor (1 unless lowered).
    #[must_use]
    pub fn factor(&self) -> f32 {
        f32::from_bits(self.factor.load(Ordering::Relaxed))
    }

    /// Sets the watchdog's factor, clamped to 0..=1; instances use it from their next batch on.
    pub fn set_factor(&self, factor: f32) {
        let factor = if factor.is_nan() { 1.0 } else { factor.clamp(0.0, 1.0) };
        self.factor.store(factor.to_bits(), Ordering::Relaxed);
    }

    /// The rate instances apply: the base rate times the factor, in percent.
    #[must_use]
    pub fn effective_percentage(&self) -> f32 {
        self.percentage() * self.factor()
    }

    /// Sets the base rate in percent; instances use it from their next batch on.
    ///
    /// # Errors
    /// [`InvalidPercentage`] for a value outside 0..=100 (or not a number); the rate is unchanged.
    pub fn set_percentage(&self, percentage: f32) -> Result<(), InvalidPercentage> {
        check_percentage(percentage)?;
        self.percentage.store(percentage.to_bits(), Ordering::Relaxed);
        Ok(())
    }
}

/// The `adaptive_sampler` of one core.
#[derive(Debug)]
pub struct AdaptiveSampler {
    handle: AdaptiveSamplerHandle,
    latency_threshold_nanos: u64,
    stats: ProcessorStats,
}

/// The threshold of a percentage; zero (or less than the smallest expressible rate) keeps nothing.
fn base_threshold(percentage: f32) -> Threshold {
    let probability = f64::from(percentage.clamp(0.0, 100.0)) / 100.0;
    if probability < MIN_PROBABILITY {
        return Threshold::NEVER;
    }
    Threshold::from_probability(probability, 0).unwrap_or(Threshold::NEVER)
}

impl Processor for AdaptiveSampler {
    fn process(&mut self, batch: SpanBatch, _now: Instant, out: &mut Output) {
        self.stats.record_in(batch.len());
        let threshold = base_threshold(self.handle.effective_percentage());
        let latency = self.latency_threshold_nanos;
        let keep: Vec<bool> = batch
            .spans()
            .map(|span| {
                span.status_code() == StatusCode::Error
                    || span.duration_nanos() >= latency
                    || threshold.should_sample(Randomness::from_trace_id(span.trace_id()))
            })
            .collect();
        let dropped = keep.iter().filter(|keep| !**keep).count();
        self.stats.record_dropped(DropReason::NotSampled, dropped);
        let kept = if dropped == 0 { batch } else { batch.filter(|span| keep[span.position()]) };
        if !kept.is_empty() {
            self.stats.record_out(kept.len());
            out.push(kept);
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
    fn handle_refuses_rates_out_of_range_and_keeps_the_old_one() {
        let handle = AdaptiveSamplerConfig::default().handle();
        assert_eq!(handle.percentage(), 10.0);
        for invalid in [-1.0, 100.5, f32::NAN, f32::INFINITY] {
            assert!(handle.set_percentage(invalid).is_err(), "{invalid}");
        }
        assert_eq!(handle.percentage(), 10.0);
        let shared = handle.clone();
        shared.set_percentage(42.5).unwrap();
        assert_eq!(handle.percentage(), 42.5);
    }

    #[test]
    fn the_factor_scales_the_base_rate_and_restoring_it_restores_the_current_base() {
        let handle = AdaptiveSamplerConfig::default().handle();
        assert_eq!((handle.factor(), handle.effective_percentage()), (1.0, 10.0));
        handle.set_factor(0.25);
        assert_eq!(handle.effective_percentage(), 2.5);
        handle.set_percentage(40.0).unwrap();
        assert_eq!(handle.effective_percentage(), 10.0, "an operator's change applies under the factor");
        handle.set_factor(1.0);
        assert_eq!(handle.effective_percentage(), 40.0);
        handle.set_factor(7.0);
        assert_eq!(handle.factor(), 1.0, "clamped");
    }

    #[test]
    fn base_threshold_covers_the_extremes() {
        assert_eq!(base_threshold(100.0), Threshold::ALWAYS);
        assert_eq!(base_threshold(0.0), Threshold::NEVER);
        assert_eq!(base_threshold(50.0).tvalue(), "8");
    }
}
