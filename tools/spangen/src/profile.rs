//! What the generated traces look like: the presets behind `--profile` and the knobs that
//! override them.

use crate::ids::SplitMix;

/// A named preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileName {
    /// Two services, shallow traces, two short attributes per span, no events or links: the
    /// cheapest spans a collector meets, so the request rate is what is being tested.
    Small,
    /// Five services, traces three calls deep with fan-out, HTTP semantic-convention attributes,
    /// occasional events and links, 2% errors: what an instrumented web backend sends.
    HttpService,
    /// Forty attributes of 64-byte values per span from 400 distinct keys, two events, 10% links:
    /// attribute processors, filters and encoders under pressure.
    HeavyAttributes,
}

/// The shape of generated traces.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Profile {
    /// Distinct services (one `ResourceSpans` each; calls go from one service to the next).
    pub services: u32,
    /// Levels of calls below a trace's root span.
    pub depth: u32,
    /// Most children a span has (each has between one and this many, leaves none).
    pub fan_out: u32,
    /// Attributes per span besides the semantic-convention ones.
    pub attributes: u32,
    /// How many distinct attribute keys those attributes are drawn from (key cardinality).
    pub attribute_keys: u32,
    /// Length in bytes of string attribute values.
    pub attribute_value_size: u32,
    /// Most events per span (each span has between zero and this many).
    pub events: u32,
    /// Fraction of trace roots that link to the previous trace's root.
    pub link_ratio: f64,
    /// Fraction of spans with an error status.
    pub error_ratio: f64,
    /// Median duration of a trace's root span, in milliseconds (durations are log-normal).
    pub latency_median_ms: f64,
    /// Spread of the log-normal durations (σ of the logarithm); 0 makes every root take the median.
    pub latency_sigma: f64,
    /// Whether spans carry HTTP semantic-convention names and attributes.
    pub http_conventions: bool,
}

impl Profile {
    /// The preset called `name`.
    #[must_use]
    pub fn preset(name: ProfileName) -> Self {
        match name {
            ProfileName::Small => Self {
                services: 2,
                depth: 1,
                fan_out: 2,
                attributes: 2,
                attribute_keys: 8,
                attribute_value_size: 8,
                events: 0,
                link_ratio: 0.0,
                error_ratio: 0.01,
                latency_median_ms: 5.0,
                latency_sigma: 0.5,
                http_conventions: false,
            },
            ProfileName::HttpService => Self {
                services: 5,
                depth: 3,
                fan_out: 3,
                attributes: 6,
                attribute_keys: 50,
                attribute_value_size: 16,
                events: 1,
                link_ratio: 0.05,
                error_ratio: 0.02,
                latency_median_ms: 20.0,
                latency_sigma: 1.0,
                http_conventions: true,
            },
            ProfileName::HeavyAttributes => Self {
                services: 3,
                depth: 2,
                fan_out: 3,
                attributes: 40,
                attribute_keys: 400,
                attribute_value_size: 64,
                events: 2,
                link_ratio: 0.1,
                error_ratio: 0.05,
                latency_median_ms: 50.0,
                latency_sigma: 1.2,
                http_conventions: true,
            },
        }
    }

    /// Checks the knobs against each other; the message names the flag to change.
    ///
    /// # Errors
    /// A description of the first inconsistent setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.services == 0 {
            return Err("--services must be at least 1".into());
        }
        if self.fan_out == 0 && self.depth > 0 {
            return Err("--fan-out must be at least 1 when --depth is above 0".into());
        }
        if self.attributes > self.attribute_keys {
            return Err(format!(
                "--attributes ({}) cannot exceed --attribute-keys ({}): a span's keys are distinct",
                self.attributes, self.attribute_keys
            ));
        }
        for (flag, ratio) in [("--link-ratio", self.link_ratio), ("--error-ratio", self.error_ratio)] {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(format!("{flag} must be between 0 and 1, not {ratio}"));
            }
        }
        if !(self.latency_median_ms > 0.0 && self.latency_median_ms.is_finite()) {
            return Err("--latency-median-ms must be a positive number".into());
        }
        if !(self.latency_sigma >= 0.0 && self.latency_sigma <= 5.0) {
            return Err("--latency-sigma must be between 0 and 5".into());
        }
        Ok(())
    }

    /// A root span's duration in nanoseconds, at least a microsecond.
    pub(crate) fn root_duration_nanos(&self, random: &mut SplitMix) -> u64 {
        let millis = self.latency_median_ms * (self.latency_sigma * random.normal()).exp();
        // Capped at an hour so that offsets stay far below the fixed-width time placeholders.
        (millis * 1e6).clamp(1_000.0, 3.6e12) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid() {
        for name in [ProfileName::Small, ProfileName::HttpService, ProfileName::HeavyAttributes] {
            assert_eq!(Profile::preset(name).validate(), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn refuses_more_attributes_than_keys() {
        let profile = Profile { attributes: 10, attribute_keys: 5, ..Profile::preset(ProfileName::Small) };
        assert!(profile.validate().unwrap_err().contains("--attribute-keys"));
    }

    #[test]
    fn refuses_ratios_outside_zero_to_one() {
        let profile = Profile { error_ratio: 1.5, ..Profile::preset(ProfileName::Small) };
        assert!(profile.validate().unwrap_err().contains("--error-ratio"));
    }

    #[test]
    fn root_durations_centre_on_the_median() {
        let profile = Profile::preset(ProfileName::HttpService);
        let mut random = SplitMix::new(3);
        let mut durations: Vec<u64> = (0..2001).map(|_| profile.root_duration_nanos(&mut random)).collect();
        durations.sort_unstable();
        let median_ms = durations[1000] as f64 / 1e6;
        assert!((15.0..27.0).contains(&median_ms), "median {median_ms} ms, preset 20 ms");
    }
}
