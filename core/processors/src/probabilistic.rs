//! The `probabilistic_sampler` processor, compatible with the OpenTelemetry Collector's: the same
//! keys, defaults and modes, and the same decision for every span, so that a fleet mixing
//! spanpipe agents and Collectors samples one trace the same way everywhere.
//!
//! - `hash_seed` (the default): FNV-1a of the seed and the trace id, 14 bits compared with the
//!   percentage scaled to 2^14, exactly as the Collector computes it (the randomness derived from
//!   the hash is recorded as `rv` in the span's `tracestate`, with the threshold as `th`).
//! - `proportional`: the W3C trace-id randomness (its last 56 bits) or an explicit `rv`, compared
//!   with a threshold that multiplies any incoming `th` probability by the configured one.
//! - `equalizing`: the same randomness, with the configured threshold unless the span already
//!   arrived sampled at a lower probability.
//!
//! Every decision depends only on the span (trace id, `tracestate`, `sampling.priority`), never on
//! the instance, so every core and every agent decides the same for the same trace. A kept span's
//! `tracestate` gets the threshold (`ot=th:…`) it was sampled at, as the Collector writes it, which
//! lets backends compute adjusted counts; that rewrites the kept spans' bytes (only the
//! `trace_state` field; everything else is copied as it was). A `sampling.priority` span attribute
//! forces the decision (0 drops, a positive number keeps), as in the Collector.

use std::sync::LazyLock;
use std::time::Instant;

use memchr::memmem::Finder;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::{ComponentConfig, FieldError};
use spanpipe_core::{AnyValueView, SpanBatch, SpanView};

use crate::rewrite::{Rebuild, SpanEdit};
use crate::sampling::{Randomness, Threshold, HEX_DIGITS, MIN_PROBABILITY};
use crate::tracestate::{TraceState, TraceStateError};
use crate::{DropReason, Output, Processor, ProcessorStats};

/// Config of the `probabilistic_sampler` processor.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbabilisticSamplerConfig {
    /// Percentage of traces kept: 0 keeps none, 100 or more keeps all. Defaults to 0.
    #[serde(default)]
    pub sampling_percentage: f32,
    /// Seed of the trace-id hash in `hash_seed` mode; every agent of one tier must use the same
    /// seed, different tiers may use different ones. Defaults to 0.
    #[serde(default)]
    pub hash_seed: u32,
    /// `hash_seed`, `proportional` or `equalizing`; unset means `hash_seed`, as in the Collector.
    /// Defaults to unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SamplerMode>,
    /// Drop spans whose sampling information is unusable (no randomness, invalid or inconsistent
    /// `tracestate`) instead of passing them. Defaults to true.
    #[serde(default = "default_fail_closed")]
    pub fail_closed: bool,
    /// Hex digits of the threshold written to `tracestate` (1 to 14). Defaults to 4.
    #[serde(default = "default_sampling_precision")]
    pub sampling_precision: i32,
    /// Logs only in the Collector; refused here, where pipelines carry traces. Defaults to unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_source: Option<String>,
    /// Logs only in the Collector; refused here, where pipelines carry traces. Defaults to unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_attribute: Option<String>,
    /// Logs only in the Collector; refused here, where pipelines carry traces. Defaults to unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_priority: Option<String>,
}

/// How the probabilistic sampler decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SamplerMode {
    /// The Collector's original FNV hash of seed and trace id.
    HashSeed,
    /// OpenTelemetry consistent sampling; reduces incoming probabilities proportionally.
    Proportional,
    /// OpenTelemetry consistent sampling; lowers probabilities to the configured one at most.
    Equalizing,
}

fn default_fail_closed() -> bool {
    true
}

fn default_sampling_precision() -> i32 {
    4
}

impl Default for ProbabilisticSamplerConfig {
    fn default() -> Self {
        Self {
            sampling_percentage: 0.0,
            hash_seed: 0,
            mode: None,
            fail_closed: default_fail_closed(),
            sampling_precision: default_sampling_precision(),
            attribute_source: None,
            from_attribute: None,
            sampling_priority: None,
        }
    }
}

impl ComponentConfig for ProbabilisticSamplerConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let percentage = self.sampling_percentage;
        if !percentage.is_finite() {
            errors.push(FieldError::new("sampling_percentage", format!("{percentage} is not a number")));
        } else if percentage < 0.0 {
            errors.push(FieldError::new("sampling_percentage", format!("{percentage} is negative")));
        } else if percentage > 0.0 && f64::from(percentage) / 100.0 < MIN_PROBABILITY {
            errors.push(FieldError::new(
                "sampling_percentage",
                format!("{percentage} is below the smallest expressible rate (2^-56 of all traces)"),
            ));
        }
        if !(1..=HEX_DIGITS as i32).contains(&self.sampling_precision) {
            errors.push(FieldError::new(
                "sampling_precision",
                format!("{} is out of range: use 1 to {HEX_DIGITS} hex digits", self.sampling_precision),
            ));
        }
        for (key, value) in [
            ("attribute_source", &self.attribute_source),
            ("from_attribute", &self.from_attribute),
            ("sampling_priority", &self.sampling_priority),
        ] {
            if value.is_some() {
                errors.push(FieldError::new(
                    key,
                    "applies to logs pipelines only; spanpipe pipelines carry traces, which are always sampled by \
                     trace id: remove it",
                ));
            }
        }
        errors
    }
}

impl ProbabilisticSamplerConfig {
    /// The mode in effect: the configured one, else `hash_seed` (as the Collector chooses).
    #[must_use]
    pub fn effective_mode(&self) -> SamplerMode {
        self.mode.unwrap_or(SamplerMode::HashSeed)
    }

    /// A per-core instance. Call after [`ComponentConfig::validate`] found nothing.
    #[must_use]
    pub fn build(&self) -> ProbabilisticSampler {
        ProbabilisticSampler { rule: Rule::new(self), fail_closed: self.fail_closed, stats: ProcessorStats::default() }
    }
}

/// The decision rule of one configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rule {
    /// Sampling percentage zero (or below 14-bit resolution in `hash_seed` mode).
    Never,
    HashSeed {
        seed: u32,
        threshold: Threshold,
    },
    Equalizing {
        threshold: Threshold,
    },
    Proportional {
        ratio: f64,
        precision: u32,
    },
}

/// Buckets of the `hash_seed` mode's 14-bit hash.
const HASH_BUCKETS: u32 = 1 << 14;

impl Rule {
    fn new(config: &ProbabilisticSamplerConfig) -> Self {
        let percentage = config.sampling_percentage.min(100.0);
        if percentage <= 0.0 || percentage.is_nan() {
            return Self::Never;
        }
        let ratio = (f64::from(percentage) / 100.0).max(MIN_PROBABILITY);
        let precision = config.sampling_precision.clamp(1, HEX_DIGITS as i32) as u32;
        match config.effective_mode() {
            SamplerMode::Equalizing => {
                let threshold = Threshold::from_probability(ratio, precision).unwrap_or(Threshold::ALWAYS);
                Self::Equalizing { threshold }
            }
            SamplerMode::Proportional => Self::Proportional { ratio, precision },
            SamplerMode::HashSeed => {
                // The Collector computes this in 32-bit floating point and truncates; so does this,
                // so that both keep exactly the same traces.
                let scaled = (percentage * (HASH_BUCKETS as f32 / 100.0)) as u32;
                if scaled == 0 {
                    return Self::Never;
                }
                let rejected = u64::from(HASH_BUCKETS - scaled.min(HASH_BUCKETS));
                Self::HashSeed { seed: config.hash_seed, threshold: Threshold::from_rejections(rejected << 42) }
            }
        }
    }

    /// The threshold for a span whose sampling information is consistent.
    fn decide(&self, state: Option<&TraceState<'_>>) -> Threshold {
        let incoming = state.and_then(TraceState::threshold);
        match *self {
            Self::Never => Threshold::NEVER,
            Self::HashSeed { threshold, .. } => threshold,
            Self::Equalizing { threshold } => match incoming {
                Some(incoming) if threshold < incoming => incoming,
                _ => threshold,
            },
            Self::Proportional { ratio, precision } => {
                let incoming = incoming.map_or(1.0, Threshold::probability);
                Threshold::from_probability(incoming * ratio, precision).unwrap_or(Threshold::NEVER)
            }
        }
    }
}

/// FNV-1a (32 bits) of the seed's little-endian bytes followed by `bytes`.
fn fnv1a(seed: u32, bytes: &[u8]) -> u32 {
    seed.to_le_bytes()
        .iter()
        .chain(bytes)
        .fold(0x811c_9dc5u32, |hash, byte| (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193))
}

/// The `hash_seed` mode's randomness: the 14 hashed bits placed so that the specification's
/// `threshold <= randomness` test gives the Collector's `hash < scaled percentage` decision; the
/// other 42 bits are filled from the unused hash bits (the Collector's layout, so `rv` matches).
fn hashed_randomness(seed: u32, trace_id: &[u8; 16]) -> Randomness {
    let hash = fnv1a(seed, trace_id);
    let hashed = u64::from(hash & (HASH_BUCKETS - 1));
    let reversed = u64::from(HASH_BUCKETS - 1) - hashed;
    let unused = u64::from(hash >> 14);
    let mixed = unused ^ (unused << 10);
    Randomness::from_bits(reversed << 42 | mixed << 14 | hashed)
}

/// What a span's `sampling.priority` attribute asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Priority {
    Defer,
    Keep,
    Drop,
}

/// The attribute that forces a decision.
const PRIORITY_KEY: &str = "sampling.priority";

/// Finds [`PRIORITY_KEY`] in a span's bytes; built once per process (its tables are large).
static PRIORITY_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(PRIORITY_KEY));

/// Reads `sampling.priority` as the Collector does: an int, double or numeric string; zero drops,
/// a positive value keeps, anything else leaves the decision to the sampler. `key` finds the
/// attribute's name in the span's bytes: a span without those bytes cannot have the attribute,
/// which spares nearly every span the walk over its attributes.
fn sampling_priority(span: &SpanView<'_>, key: &Finder<'_>) -> Priority {
    if key.find(span.encoded()).is_none() {
        return Priority::Defer;
    }
    let number = match span.attributes().get(PRIORITY_KEY) {
        Some(AnyValueView::Int(value)) => value as f64,
        Some(AnyValueView::Double(value)) => value,
        Some(AnyValueView::String(text)) => match text.parse::<f64>() {
            Ok(value) => value,
            Err(_) => return Priority::Defer,
        },
        _ => return Priority::Defer,
    };
    if number == 0.0 {
        Priority::Drop
    } else if number > 0.0 {
        Priority::Keep
    } else {
        Priority::Defer
    }
}

/// Why the sampling information of a span could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SamplingFault {
    TraceState(TraceStateError),
    /// `hash_seed` mode met a span that already carries OpenTelemetry sampling information.
    InUse,
    MissingRandomness,
    InconsistentThreshold,
}

/// The decision for one span.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Keep { trace_state: Option<String> },
    Drop(DropReason),
}

/// The `probabilistic_sampler` of one core.
#[derive(Debug)]
pub struct ProbabilisticSampler {
    rule: Rule,
    fail_closed: bool,
    stats: ProcessorStats,
}

impl ProbabilisticSampler {
    fn verdict(&self, span: &SpanView<'_>) -> Verdict {
        let raw_state = span.trace_state();
        let trace_id = span.trace_id();
        let trace_randomness = (*trace_id != [0; 16]).then(|| Randomness::from_trace_id(trace_id));
        let (randomness, mut state, mut fault) = match (self.rule, TraceState::parse(raw_state)) {
            (Rule::HashSeed { seed, .. }, parsed) => {
                let randomness = (*trace_id != [0; 16]).then(|| hashed_randomness(seed, trace_id));
                match parsed {
                    Err(error) => (randomness, None, Some(SamplingFault::TraceState(error))),
                    Ok(state) if state.randomness().is_some() || state.threshold().is_some() => {
                        (randomness, None, Some(SamplingFault::InUse))
                    }
                    Ok(mut state) => {
                        state.set_randomness(randomness.unwrap_or(Randomness::ALL_PROBABILITIES));
                        (randomness, Some(state), None)
                    }
                }
            }
            (Rule::Never, Ok(state)) => (Some(Randomness::ALL_PROBABILITIES), Some(state), None),
            (Rule::Never, Err(error)) => {
                (Some(Randomness::ALL_PROBABILITIES), None, Some(SamplingFault::TraceState(error)))
            }
            (_, Err(error)) => (None, None, Some(SamplingFault::TraceState(error))),
            (_, Ok(state)) => (state.randomness().or(trace_randomness), Some(state), None),
        };
        if fault.is_none() {
            fault = match (randomness, state.as_mut()) {
                (None, _) => Some(SamplingFault::MissingRandomness),
                (Some(randomness), Some(state))
                    if state.threshold().is_some_and(|threshold| !threshold.should_sample(randomness)) =>
                {
                    // A threshold the randomness does not pass is a lie; it goes, as the
                    // specification recommends.
                    state.clear_threshold();
                    Some(SamplingFault::InconsistentThreshold)
                }
                _ => None,
            };
        }
        let mut threshold = match fault {
            Some(_) if self.fail_closed => Threshold::NEVER,
            Some(_) => Threshold::ALWAYS,
            None => self.rule.decide(state.as_ref()),
        };
        let priority = sampling_priority(span, &PRIORITY_FINDER);
        match priority {
            Priority::Keep => threshold = Threshold::ALWAYS,
            Priority::Drop => threshold = Threshold::NEVER,
            Priority::Defer => {}
        }
        if !threshold.should_sample(randomness.unwrap_or(Randomness::ALL_PROBABILITIES)) {
            return Verdict::Drop(match (priority, fault) {
                (Priority::Drop, _) => DropReason::SamplingPriority,
                (_, Some(_)) if self.fail_closed => DropReason::SamplingError,
                _ => DropReason::NotSampled,
            });
        }
        let trace_state = state.and_then(|mut state| {
            // An update that would raise the probability is refused and leaves the state as it
            // was, which is then written back unchanged (as in the Collector).
            let _ = state.update_threshold(threshold);
            let text = state.serialize();
            (text != raw_state).then_some(text)
        });
        Verdict::Keep { trace_state }
    }
}

impl Processor for ProbabilisticSampler {
    fn process(&mut self, batch: SpanBatch, _now: Instant, out: &mut Output) {
        self.stats.record_in(batch.len());
        let mut rebuild = Rebuild::with_capacity(batch.len());
        for span in batch.spans() {
            match self.verdict(&span) {
                Verdict::Keep { trace_state: None } => rebuild.keep(),
                Verdict::Keep { trace_state: Some(state) } => {
                    rebuild.replace(span.encoded(), SpanEdit { trace_state: Some(&state), attributes: None });
                }
                Verdict::Drop(reason) => {
                    self.stats.record_dropped(reason, 1);
                    rebuild.drop_span();
                }
            }
        }
        crate::emit_rebuilt(&mut self.stats, &batch, rebuild, out);
    }

    fn stats(&self) -> &ProcessorStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_seed_thresholds_match_the_collector() {
        // The Collector's Test_tracesamplerprocessor_HashSeedTraceState table.
        for (percentage, tvalue) in
            [(100.0, "0"), (75.0, "4"), (50.0, "8"), (25.0, "c"), (10.0, "e668"), (100.0f32 / 3.0, "aaac")]
        {
            let config = ProbabilisticSamplerConfig {
                sampling_percentage: percentage,
                mode: Some(SamplerMode::HashSeed),
                ..ProbabilisticSamplerConfig::default()
            };
            let Rule::HashSeed { threshold, .. } = Rule::new(&config) else { panic!("{percentage}: not hash_seed") };
            assert_eq!(threshold.tvalue(), tvalue, "{percentage}");
        }
    }

    #[test]
    fn mode_defaults_follow_the_collector() {
        let default = ProbabilisticSamplerConfig { sampling_percentage: 50.0, ..Default::default() };
        assert!(matches!(Rule::new(&default), Rule::HashSeed { seed: 0, .. }));
        let seeded = ProbabilisticSamplerConfig { hash_seed: 7, ..default.clone() };
        assert!(matches!(Rule::new(&seeded), Rule::HashSeed { seed: 7, .. }));
        let tiny = ProbabilisticSamplerConfig { sampling_percentage: 0.001, ..default.clone() };
        assert_eq!(Rule::new(&tiny), Rule::Never, "below 14-bit resolution, as the Collector rounds it");
        let over = ProbabilisticSamplerConfig { sampling_percentage: 250.0, ..default };
        assert!(matches!(Rule::new(&over), Rule::HashSeed { threshold: Threshold::ALWAYS, .. }));
    }

    #[test]
    fn priority_parsing_follows_the_collector() {
        use spanpipe_core::{Attributes, BatchWriter};
        type WriteAttribute = fn(&mut spanpipe_core::SpanWriter<'_>);
        let cases: [(&str, WriteAttribute, Priority); 7] = [
            ("int zero", (|s| s.int_attribute("sampling.priority", 0)), Priority::Drop),
            ("int positive", (|s| s.int_attribute("sampling.priority", 2)), Priority::Keep),
            ("int negative", (|s| s.int_attribute("sampling.priority", -1)), Priority::Defer),
            ("double zero", (|s| s.double_attribute("sampling.priority", 0.0)), Priority::Drop),
            ("string positive", (|s| s.str_attribute("sampling.priority", "0.5")), Priority::Keep),
            ("string NaN", (|s| s.str_attribute("sampling.priority", "NaN")), Priority::Defer),
            ("other key", (|s| s.int_attribute("no.sampling.priority", 0)), Priority::Defer),
        ];
        for (name, attribute, expected) in cases {
            let mut writer = BatchWriter::new();
            writer.resource_spans(|rs| {
                rs.scope_spans(|ss| {
                    ss.span(|s| {
                        s.trace_id(&[1; 16]).span_id(&[2; 8]);
                        attribute(s);
                    })
                })
            });
            let batch = writer.finish().unwrap();
            assert_eq!(sampling_priority(&batch.span(0).unwrap(), &Finder::new(PRIORITY_KEY)), expected, "{name}");
        }
    }
}
