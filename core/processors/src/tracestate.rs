//! The W3C `tracestate` header and OpenTelemetry's `ot` member in it, as far as sampling needs:
//! parse, read and update `th` (threshold) and `rv` (explicit randomness), and write it back.
//!
//! Parsing follows the W3C Trace Context grammar (at most 32 list members, keys and values of the
//! allowed characters, at most 1024 bytes) and OpenTelemetry's grammar for the `ot` value
//! (`key:value` pairs separated by `;`, at most 256 bytes). Anything else is an error, which the
//! sampler treats as the Collector does (`fail_closed`). Writing puts the `ot` member first, as the
//! W3C specification asks of a member that was modified, and keeps every other member, and every
//! other `ot` sub-key, as it was and in its order; an `rv` that was read is written back as it was
//! read (an upper-case one stays upper-case).

use crate::sampling::{Randomness, Threshold};

/// Why a `tracestate` could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TraceStateError {
    #[error("tracestate longer than 1024 bytes")]
    TooLong,
    #[error("tracestate has more than 32 list members")]
    TooManyMembers,
    #[error("tracestate is not valid W3C syntax")]
    Syntax,
    #[error("the OpenTelemetry (`ot`) tracestate value is not valid")]
    OtelSyntax,
    #[error("r-value must have 14 hex digits")]
    RValue,
    #[error("t-value must have 1 to 14 hex digits")]
    TValue,
}

const MAX_W3C_LEN: usize = 1024;
const MAX_W3C_MEMBERS: usize = 32;
const MAX_OTEL_LEN: usize = 256;

/// A parsed `tracestate`, borrowing the original text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TraceState<'a> {
    rvalue: Option<(String, Randomness)>,
    tvalue: Option<(String, Threshold)>,
    /// `ot` sub-keys other than `rv` and `th`, in order.
    otel_extra: Vec<(&'a str, &'a str)>,
    /// Members other than `ot`, in order.
    members: Vec<(&'a str, &'a str)>,
}

impl<'a> TraceState<'a> {
    pub(crate) fn parse(input: &'a str) -> Result<Self, TraceStateError> {
        if input.len() > MAX_W3C_LEN {
            return Err(TraceStateError::TooLong);
        }
        let mut state = TraceState::default();
        let mut count = 0;
        for member in input.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            count += 1;
            if count > MAX_W3C_MEMBERS {
                return Err(TraceStateError::TooManyMembers);
            }
            let (key, value) = member.split_once('=').ok_or(TraceStateError::Syntax)?;
            if !is_w3c_key(key) || !is_w3c_value(value) {
                return Err(TraceStateError::Syntax);
            }
            if key == "ot" {
                state.parse_otel(value)?;
            } else {
                state.members.push((key, value));
            }
        }
        Ok(state)
    }

    fn parse_otel(&mut self, value: &'a str) -> Result<(), TraceStateError> {
        if value.len() > MAX_OTEL_LEN {
            return Err(TraceStateError::OtelSyntax);
        }
        for member in value.split(';') {
            let (key, text) = member.split_once(':').ok_or(TraceStateError::OtelSyntax)?;
            if !is_otel_key(key) || !text.bytes().all(is_otel_value_byte) {
                return Err(TraceStateError::OtelSyntax);
            }
            match key {
                "rv" => {
                    let randomness = Randomness::from_rvalue(text).ok_or(TraceStateError::RValue)?;
                    self.rvalue = Some((text.to_owned(), randomness));
                }
                "th" => {
                    let threshold = Threshold::from_tvalue(text).ok_or(TraceStateError::TValue)?;
                    self.tvalue = Some((text.to_owned(), threshold));
                }
                _ => self.otel_extra.push((key, text)),
            }
        }
        Ok(())
    }

    /// The explicit randomness (`ot` `rv`), if any.
    pub(crate) fn randomness(&self) -> Option<Randomness> {
        self.rvalue.as_ref().map(|(_, randomness)| *randomness)
    }

    /// The threshold (`ot` `th`), if any.
    pub(crate) fn threshold(&self) -> Option<Threshold> {
        self.tvalue.as_ref().map(|(_, threshold)| *threshold)
    }

    pub(crate) fn set_randomness(&mut self, randomness: Randomness) {
        self.rvalue = Some((randomness.rvalue(), randomness));
    }

    pub(crate) fn clear_threshold(&mut self) {
        self.tvalue = None;
    }

    /// Records that the span was sampled with `threshold`. Raising the sampling probability of a
    /// span that arrived with a threshold is illogical (it would shrink its adjusted count), so an
    /// update to a lower threshold is refused and the state stays as it was.
    pub(crate) fn update_threshold(&mut self, threshold: Threshold) -> Result<(), InconsistentSampling> {
        if self.threshold().is_some_and(|existing| existing > threshold) {
            return Err(InconsistentSampling);
        }
        let text = threshold.tvalue();
        self.tvalue = if text.is_empty() { None } else { Some((text, threshold)) };
        Ok(())
    }

    /// The `tracestate` text.
    pub(crate) fn serialize(&self) -> String {
        let mut out = String::new();
        let mut otel: Vec<(&str, &str)> = Vec::with_capacity(2 + self.otel_extra.len());
        if let Some((text, _)) = &self.rvalue {
            otel.push(("rv", text));
        }
        if let Some((text, _)) = &self.tvalue {
            otel.push(("th", text));
        }
        otel.extend(self.otel_extra.iter().copied());
        if !otel.is_empty() {
            out.push_str("ot=");
            for (index, (key, value)) in otel.iter().enumerate() {
                if index > 0 {
                    out.push(';');
                }
                out.push_str(key);
                out.push(':');
                out.push_str(value);
            }
        }
        for (key, value) in &self.members {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        }
        out
    }
}

/// An update that would raise a span's sampling probability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InconsistentSampling;

fn is_key_byte(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'_' | b'-' | b'*' | b'/')
}

/// `simple-key` or `tenant-id "@" system-id` of the W3C grammar.
fn is_w3c_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    match key.split_once('@') {
        None => {
            bytes.len() <= 256
                && bytes.first().is_some_and(u8::is_ascii_lowercase)
                && bytes[1..].iter().all(|byte| is_key_byte(*byte))
        }
        Some((tenant, system)) => {
            let (tenant, system) = (tenant.as_bytes(), system.as_bytes());
            (1..=241).contains(&tenant.len())
                && tenant.first().is_some_and(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
                && tenant[1..].iter().all(|byte| is_key_byte(*byte))
                && (1..=14).contains(&system.len())
                && system.first().is_some_and(u8::is_ascii_lowercase)
                && system[1..].iter().all(|byte| is_key_byte(*byte))
        }
    }
}

/// `0*255(chr) nblk-chr`: printable ASCII without `,` and `=`, spaces allowed but not last.
fn is_w3c_value(value: &str) -> bool {
    let non_blank = |byte: u8| matches!(byte, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    let bytes = value.as_bytes();
    (1..=256).contains(&bytes.len())
        && bytes.iter().all(|byte| *byte == b' ' || non_blank(*byte))
        && bytes.last().is_some_and(|byte| non_blank(*byte))
}

/// `lcalpha *(lcalpha / DIGIT)`.
fn is_otel_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes[1..].iter().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
}

fn is_otel_value_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_back_otel_values_and_other_members() {
        let state = TraceState::parse(" vendor=a b , ot=rv:FD70A3D70A3D71;x:y;th:8 ,other@sys=1").unwrap();
        assert_eq!(state.randomness(), Randomness::from_rvalue("fd70a3d70a3d71"));
        assert_eq!(state.threshold(), Threshold::from_tvalue("8"));
        assert_eq!(state.serialize(), "ot=rv:FD70A3D70A3D71;th:8;x:y,vendor=a b,other@sys=1");
    }

    #[test]
    fn empty_input_is_an_empty_state() {
        let state = TraceState::parse("").unwrap();
        assert_eq!(state, TraceState::default());
        assert_eq!(state.serialize(), "");
        assert_eq!(TraceState::parse(" , ,").unwrap().serialize(), "");
    }

    #[test]
    fn refuses_what_the_grammars_refuse() {
        let too_many = (0..33).map(|index| format!("k{index}=v")).collect::<Vec<_>>().join(",");
        let cases = [
            ("Key=v", TraceStateError::Syntax),
            ("k=", TraceStateError::Syntax),
            ("k=v,w", TraceStateError::Syntax),
            ("k=a=b", TraceStateError::Syntax),
            ("k=v\tx", TraceStateError::Syntax),
            ("ot=th", TraceStateError::OtelSyntax),
            ("ot=th:8;", TraceStateError::OtelSyntax),
            ("ot=Th:8", TraceStateError::OtelSyntax),
            ("ot=rv:abababababababab", TraceStateError::RValue),
            ("ot=th:abababababababab", TraceStateError::TValue),
            ("ot=th:-1", TraceStateError::TValue),
            (too_many.as_str(), TraceStateError::TooManyMembers),
        ];
        for (input, expected) in cases {
            assert_eq!(TraceState::parse(input), Err(expected), "{input}");
        }
        assert_eq!(TraceState::parse(&"a".repeat(1025)), Err(TraceStateError::TooLong));
    }

    #[test]
    fn threshold_updates_never_raise_the_probability() {
        let mut state = TraceState::parse("ot=th:c").unwrap();
        assert_eq!(state.update_threshold(Threshold::from_tvalue("8").unwrap()), Err(InconsistentSampling));
        assert_eq!(state.serialize(), "ot=th:c");
        state.update_threshold(Threshold::from_tvalue("e").unwrap()).unwrap();
        assert_eq!(state.serialize(), "ot=th:e");
        let mut zeros = TraceState::parse("ot=rv:90000000000000;th:80000000000000").unwrap();
        zeros.update_threshold(Threshold::from_tvalue("8").unwrap()).unwrap();
        assert_eq!(zeros.serialize(), "ot=rv:90000000000000;th:8");
    }
}
