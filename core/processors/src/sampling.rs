//! OpenTelemetry consistent probability sampling arithmetic: 56-bit randomness and thresholds, as
//! the OpenTelemetry specification (tracestate probability sampling, OTEP 235) and the W3C Trace
//! Context Level 2 define them, and as the Collector's `pkg/sampling` computes them.
//!
//! A span is sampled when `threshold <= randomness`; both are numbers below 2^56. The randomness
//! is the least-significant 56 bits of the trace id (W3C "random trace id" bits) unless the
//! `tracestate` carries an explicit one (`rv`). The threshold is the number of randomness values,
//! out of 2^56, that are rejected: 0 samples everything, 2^56 nothing. Because every sampler of a
//! trace compares the same randomness, a span kept at a lower probability is kept at every higher
//! one, on every agent, without any coordination.

use std::fmt::Write as _;

/// 2^56: the number of randomness values.
pub(crate) const MAX_ADJUSTED_COUNT: u64 = 1 << 56;

/// Hex digits of a 56-bit value.
pub(crate) const HEX_DIGITS: usize = 14;

/// The smallest sampling probability a threshold can express.
pub(crate) const MIN_PROBABILITY: f64 = 1.0 / MAX_ADJUSTED_COUNT as f64;

/// 56 bits of randomness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Randomness(u64);

impl Randomness {
    /// Sampled at every probability: what a span without randomness is given.
    pub(crate) const ALL_PROBABILITIES: Randomness = Randomness(MAX_ADJUSTED_COUNT - 1);

    /// The randomness of a trace id: its last seven bytes, big-endian.
    pub(crate) fn from_trace_id(trace_id: &[u8; 16]) -> Self {
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id[8..]);
        Self(u64::from_be_bytes(low) & (MAX_ADJUSTED_COUNT - 1))
    }

    /// From a 56-bit number; larger values are cut to 56 bits.
    pub(crate) fn from_bits(bits: u64) -> Self {
        Self(bits & (MAX_ADJUSTED_COUNT - 1))
    }

    /// Parses an `rv` value: exactly 14 hex digits, either case.
    pub(crate) fn from_rvalue(text: &str) -> Option<Self> {
        if text.len() != HEX_DIGITS {
            return None;
        }
        parse_hex(text).map(Self)
    }

    /// The `rv` encoding: 14 lowercase hex digits.
    pub(crate) fn rvalue(self) -> String {
        format!("{:014x}", self.0)
    }
}

/// Parses 1 to 16 hex digits of either case, nothing else (no sign, no prefix, no underscores).
fn parse_hex(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

/// A sampling threshold: how many of the 2^56 randomness values are rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Threshold(u64);

/// A probability outside `[2^-56, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProbabilityOutOfRange;

impl Threshold {
    /// Samples everything.
    pub(crate) const ALWAYS: Threshold = Threshold(0);
    /// Samples nothing.
    pub(crate) const NEVER: Threshold = Threshold(MAX_ADJUSTED_COUNT);

    /// From a rejection count below 2^56.
    pub(crate) fn from_rejections(rejections: u64) -> Self {
        Self(rejections.min(MAX_ADJUSTED_COUNT))
    }

    /// Parses a `th` value: 1 to 14 hex digits, trailing zeros omitted.
    pub(crate) fn from_tvalue(text: &str) -> Option<Self> {
        if text.len() > HEX_DIGITS {
            return None;
        }
        let value = parse_hex(text)?;
        Some(Self(value << (4 * (HEX_DIGITS - text.len()))))
    }

    /// The `th` encoding: `"0"` for always, `""` for never, otherwise 14 hex digits with trailing
    /// zeros removed.
    pub(crate) fn tvalue(self) -> String {
        match self {
            Self::ALWAYS => "0".to_owned(),
            Self::NEVER => String::new(),
            Self(value) => {
                let mut text = String::with_capacity(HEX_DIGITS);
                // Writing to a String cannot fail.
                let _ = write!(text, "{value:014x}");
                text.truncate(text.trim_end_matches('0').len());
                text
            }
        }
    }

    /// Whether a span with this randomness is sampled.
    pub(crate) fn should_sample(self, randomness: Randomness) -> bool {
        self.0 <= randomness.0
    }

    /// The sampling probability, in `[0, 1]`.
    pub(crate) fn probability(self) -> f64 {
        (MAX_ADJUSTED_COUNT - self.0) as f64 / MAX_ADJUSTED_COUNT as f64
    }

    /// The threshold of a probability, rounded to `precision` significant hex digits (0 means all
    /// 14). Near 0 and 1, precision grows by one digit per leading `0` or `f`, so that the
    /// relative error stays small, exactly as the Collector's `ProbabilityToThresholdWithPrecision`.
    pub(crate) fn from_probability(probability: f64, precision: u32) -> Result<Self, ProbabilityOutOfRange> {
        if !(MIN_PROBABILITY..=1.0).contains(&probability) {
            return Err(ProbabilityOutOfRange);
        }
        if probability == 1.0 {
            return Ok(Self::ALWAYS);
        }
        let base = if precision == 0 { HEX_DIGITS as i32 } else { precision as i32 };
        let extra_for = |value: f64| frexp_exponent(value) / -4;
        let digits = (base + extra_for(probability)).max(base + extra_for(1.0 - probability)).min(HEX_DIGITS as i32);
        let scaled = (probability * MAX_ADJUSTED_COUNT as f64).round() as u64;
        let mut threshold = MAX_ADJUSTED_COUNT - scaled;
        let shift = 4 * (HEX_DIGITS as i32 - digits);
        if shift > 0 {
            let half = 1u64 << (shift - 1);
            threshold = ((threshold + half) >> shift) << shift;
        }
        Ok(Self(threshold))
    }
}

/// The exponent `e` of `value = m * 2^e` with `0.5 <= |m| < 1`, as C's and Go's `frexp`; 0 for 0.
fn frexp_exponent(value: f64) -> i32 {
    if value == 0.0 || !value.is_finite() {
        return 0;
    }
    let bits = value.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        return frexp_exponent(value * 2f64.powi(64)) - 64;
    }
    biased - 1022
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_match_the_collectors_encodings() {
        let cases = [
            (1.0, 4, "0"),
            (0.5, 4, "8"),
            (0.25, 4, "c"),
            (0.4, 3, "99a"),
            (0.4, 6, "99999a"),
            (0.01, 14, "fd70a3d70a3d71"),
            (0.01, 4, "fd70a"),
            (0.01, 3, "fd71"),
            (0.6, 4, "6666"),
            (0.2, 6, "cccccd"),
        ];
        for (probability, precision, tvalue) in cases {
            let threshold = Threshold::from_probability(probability, precision).unwrap();
            assert_eq!(threshold.tvalue(), tvalue, "{probability} at precision {precision}");
        }
    }

    #[test]
    fn precision_grows_near_the_extremes() {
        // 1 - 8e-7 at precision 10: the leading zeros raise the precision (Collector test vector).
        let threshold = Threshold::from_probability(f64::from((1.0f32 - 8e-7) * 100.0) / 100.0, 10).unwrap();
        assert_eq!(threshold.tvalue(), "00000cccccccd");
        // 2^-14 of 2^-14 (the Collector's "tiny probability rounding" vector).
        assert_eq!(Threshold::from_probability(2f64.powi(-28), 4).unwrap().tvalue(), "fffffff");
    }

    #[test]
    fn refuses_probabilities_out_of_range() {
        for probability in [0.0, -0.1, 1.5, MIN_PROBABILITY / 2.0, f64::NAN] {
            assert_eq!(Threshold::from_probability(probability, 4), Err(ProbabilityOutOfRange), "{probability}");
        }
        assert_eq!(Threshold::from_probability(MIN_PROBABILITY, 4).unwrap(), Threshold(MAX_ADJUSTED_COUNT - 1));
    }

    #[test]
    fn tvalues_parse_with_trailing_zeros_restored() {
        assert_eq!(Threshold::from_tvalue("8"), Some(Threshold(8 << 52)));
        assert_eq!(Threshold::from_tvalue("80000000000000"), Some(Threshold(8 << 52)));
        assert_eq!(Threshold::from_tvalue("0"), Some(Threshold::ALWAYS));
        for invalid in ["", "-1", "abababababababab", "0x8", "8_0", "g"] {
            assert_eq!(Threshold::from_tvalue(invalid), None, "{invalid}");
        }
        assert_eq!(Threshold::NEVER.tvalue(), "");
    }

    #[test]
    fn rvalues_need_exactly_fourteen_hex_digits() {
        assert_eq!(Randomness::from_rvalue("FD70A3D70A3D71"), Some(Randomness(0xfd70a3d70a3d71)));
        assert_eq!(Randomness::from_rvalue("abababababababab"), None);
        assert_eq!(Randomness::from_rvalue("fd70"), None);
        assert_eq!(Randomness(0xa).rvalue(), "0000000000000a");
    }

    #[test]
    fn trace_id_randomness_is_the_last_seven_bytes() {
        let mut trace_id = [0xfe; 16];
        trace_id[9..].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0]);
        let randomness = Randomness::from_trace_id(&trace_id);
        assert_eq!(randomness, Randomness(0x80000000000000));
        assert!(Threshold::from_probability(0.5, 4).unwrap().should_sample(randomness));
        assert!(!Threshold::from_probability(0.49, 4).unwrap().should_sample(randomness));
    }

    #[test]
    fn frexp_matches_its_definition() {
        for value in [1.0, 0.5, 0.75, 0.01, 1e-300, 3.0] {
            let exponent = frexp_exponent(value);
            let mantissa = value / 2f64.powi(exponent);
            assert!((0.5..1.0).contains(&mantissa), "{value}: {mantissa} * 2^{exponent}");
        }
        // The smallest subnormal is 2^-1074 = 0.5 * 2^-1073, as Go's math.Frexp gives it.
        assert_eq!(frexp_exponent(5e-324), -1073);
        assert_eq!(frexp_exponent(0.0), 0);
    }
}
