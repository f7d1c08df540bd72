//! Durations written the way the OpenTelemetry Collector's configs write them: Go's
//! `time.ParseDuration` syntax (`"200ms"`, `"5s"`, `"1m30s"`, `"1.5h"`, `"0"`), so Collector configs
//! load unchanged.

use std::fmt;
use std::time::Duration;

/// A non-negative duration in Go's `time.ParseDuration` syntax: a sequence of decimal numbers,
/// each with an optional fraction and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), or a bare
/// `"0"`. Negative durations mean nothing for timeouts and intervals and are refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub Duration);

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: {reason} (write it like \"200ms\", \"5s\" or \"1m30s\")")]
pub struct DurationError {
    text: String,
    reason: &'static str,
}

impl GoDuration {
    /// `seconds` seconds.
    #[must_use]
    pub const fn from_secs(seconds: u64) -> Self {
        Self(Duration::from_secs(seconds))
    }

    /// `millis` milliseconds.
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Self(Duration::from_millis(millis))
    }

    /// Parses Go's duration syntax.
    ///
    /// # Errors
    /// When `text` is empty, negative, has a number without a unit (other than `"0"`), an unknown
    /// unit, or overflows.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let error = |reason| DurationError { text: text.to_owned(), reason };
        let mut rest = text.strip_prefix('+').unwrap_or(text);
        if rest.starts_with('-') {
            return Err(error("durations cannot be negative"));
        }
        if rest == "0" {
            return Ok(Self(Duration::ZERO));
        }
        if rest.is_empty() {
            return Err(error("empty"));
        }
        let mut total_nanos: u128 = 0;
        while !rest.is_empty() {
            let digits_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
            let (number, after) = rest.split_at(digits_end);
            if number.is_empty() || number == "." || number.matches('.').count() > 1 {
                return Err(error("expected a number"));
            }
            let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
            let (unit, next) = after.split_at(unit_end);
            let unit_nanos: u128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                "" => return Err(error("missing unit")),
                _ => return Err(error("unknown unit")),
            };
            let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
            let whole: u128 =
                if whole.is_empty() { 0 } else { whole.parse().map_err(|_| error("number too large"))? };
            let mut nanos = whole.checked_mul(unit_nanos).ok_or_else(|| error("too large"))?;
            // The fraction, digit by digit, exact to the nanosecond as Go computes it.
            let mut scale = unit_nanos;
            for digit in fraction.bytes() {
                scale /= 10;
                nanos += u128::from(digit - b'0') * scale;
            }
            total_nanos = total_nanos.checked_add(nanos).ok_or_else(|| error("too large"))?;
            rest = next;
        }
        let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| error("too large"))?;
        Ok(Self(Duration::new(secs, (total_nanos % 1_000_000_000) as u32)))
    }
}

impl fmt::Display for GoDuration {
    /// Writes the duration so that [`GoDuration::parse`] reads it back exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("h", 3_600_000_000_000u128),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
        ] {
            if nanos % size == 0 {
                return write!(f, "{}{unit}", nanos / size);
            }
        }
        write!(f, "{nanos}ns")
    }
}

impl From<GoDuration> for Duration {
    fn from(value: GoDuration) -> Self {
        value.0
    }
}

impl<'de> serde::Deserialize<'de> for GoDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"200ms\", \"5s\" or \"1m30s\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<GoDuration, E> {
                GoDuration::parse(text).map_err(E::custom)
            }
            // A bare integer is nanoseconds, as Go's YAML decoding of a time.Duration reads it.
            fn visit_u64<E: serde::de::Error>(self, nanos: u64) -> Result<GoDuration, E> {
                Ok(GoDuration(Duration::from_nanos(nanos)))
            }
            fn visit_i64<E: serde::de::Error>(self, nanos: i64) -> Result<GoDuration, E> {
                u64::try_from(nanos)
                    .map(|n| GoDuration(Duration::from_nanos(n)))
                    .map_err(|_| E::custom("durations cannot be negative"))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl serde::Serialize for GoDuration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl schemars::JsonSchema for GoDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration in Go's syntax: \"200ms\", \"5s\", \"1m30s\", \"1.5h\" (units ns, us, ms, s, m, h), or an integer number of nanoseconds.",
            "anyOf": [
                { "type": "string", "pattern": "^\\+?(0|([0-9]*\\.?[0-9]+(ns|us|µs|μs|ms|s|m|h))+)$" },
                { "type": "integer", "minimum": 0 }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_syntax() {
        let cases = [
            ("0", Duration::ZERO),
            ("200ms", Duration::from_millis(200)),
            ("5s", Duration::from_secs(5)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5h", Duration::from_secs(5400)),
            (".5s", Duration::from_millis(500)),
            ("1h2m3s4ms5us6ns", Duration::new(3723, 4_005_006)),
            ("2µs", Duration::from_micros(2)),
            ("+3s", Duration::from_secs(3)),
        ];
        for (text, expected) in cases {
            assert_eq!(GoDuration::parse(text).unwrap().0, expected, "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses_and_negatives() {
        for text in ["", "5", "s", "5x", "-1s", "1..5s", "5s3", "99999999999999999999999h"] {
            assert!(GoDuration::parse(text).is_err(), "{text} should be refused");
        }
    }

    #[test]
    fn display_parses_back() {
        for nanos in [0u64, 1, 999, 1_000, 1_500_000, 2_000_000_000, 90_000_000_000, 7_200_000_000_000, 1_234_567_891] {
            let duration = GoDuration(Duration::from_nanos(nanos));
            assert_eq!(GoDuration::parse(&duration.to_string()).unwrap(), duration);
        }
    }
}
