//! Trace and span ids, and the pseudo-random numbers the trace generator draws.
//!
//! Ids are not random draws but a keyed bijection of a counter: span number `n` of the run gets
//! `mix(key + n)`, where `mix` is SplitMix64's finaliser (invertible: each step is an xor-shift or
//! a multiplication by an odd constant). That gives three properties at the price of a few
//! multiplications per id:
//! - ids are unique across every request of a run, by construction, not by probability;
//! - they look random to the collector (hash-based samplers and routers see a uniform spread);
//! - `--verify` can turn an id read back from a file into the span number that produced it, so it
//!   needs no table of what was sent — only which requests were acknowledged.
//!
//! The key is derived from `--seed`, so a seed repeats a run's ids exactly.

/// SplitMix64's output function: a bijection on `u64`.
#[must_use]
pub fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

/// The inverse of [`mix`].
#[must_use]
pub fn unmix(mut value: u64) -> u64 {
    value = unshift(value, 31);
    value = unshift(value.wrapping_mul(0x3196_42B2_D24D_8EC3), 27);
    unshift(value.wrapping_mul(0x96DE_1B17_3F11_9089), 30)
}

/// Inverts `x ^ (x >> shift)`.
fn unshift(value: u64, shift: u32) -> u64 {
    let mut result = value;
    let mut applied = shift;
    while applied < 64 {
        result = value ^ (result >> shift);
        applied += shift;
    }
    result
}

/// The ids of one run, derived from its seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdScheme {
    /// Added to span numbers before mixing. Kept in `[2^62, 2^63)`, so `key + n` can only wrap to
    /// zero (the one input `mix` maps to zero) for `n > 2^63`: span ids are never all zero.
    span_key: u64,
    /// The same for trace numbers.
    trace_key: u64,
    /// The first eight bytes of every trace id of the run.
    trace_prefix: [u8; 8],
}

const KEY_LOW: u64 = 1 << 62;

impl IdScheme {
    /// The ids a seed gives.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut random = SplitMix::new(seed ^ 0x6964_7363_6865_6D65);
        let span_key = KEY_LOW | (random.next_u64() >> 2);
        let trace_key = KEY_LOW | (random.next_u64() >> 2);
        let trace_prefix = random.next_u64().to_be_bytes();
        Self { span_key, trace_key, trace_prefix }
    }

    /// The id of span number `number` of the run.
    #[must_use]
    pub fn span_id(&self, number: u64) -> [u8; 8] {
        mix(self.span_key.wrapping_add(number)).to_be_bytes()
    }

    /// The span number a span id was made from (any id maps to some number; whether it was
    /// ever sent is for the caller to check).
    #[must_use]
    pub fn span_number(&self, id: &[u8; 8]) -> u64 {
        unmix(u64::from_be_bytes(*id)).wrapping_sub(self.span_key)
    }

    /// The id of trace number `number` of the run.
    #[must_use]
    pub fn trace_id(&self, number: u64) -> [u8; 16] {
        let mut id = [0; 16];
        id[..8].copy_from_slice(&self.trace_prefix);
        id[8..].copy_from_slice(&mix(self.trace_key.wrapping_add(number)).to_be_bytes());
        id
    }
}

/// SplitMix64: small, fast, and — unlike the `rand` crate's `StdRng`, whose algorithm may change
/// between releases — fixed forever, so a seed gives the same traces in every version.
#[derive(Clone, Debug)]
pub struct SplitMix {
    state: u64,
}

impl SplitMix {
    /// A generator seeded with `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: u32, high: u32) -> u32 {
        let span = u64::from(high.saturating_sub(low)) + 1;
        low + (self.next_u64() % span) as u32
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A standard normal draw (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmix_inverts_mix() {
        let mut random = SplitMix::new(7);
        for value in [0, 1, u64::MAX, 1 << 63].into_iter().chain((0..10_000).map(|_| random.next_u64())) {
            assert_eq!(unmix(mix(value)), value);
        }
    }

    #[test]
    fn span_numbers_round_trip_through_ids() {
        let ids = IdScheme::new(42);
        for number in (0..5_000).chain([u64::from(u32::MAX), 1 << 40]) {
            assert_eq!(ids.span_number(&ids.span_id(number)), number);
            assert_ne!(ids.span_id(number), [0; 8]);
        }
    }

    #[test]
    fn seeds_give_different_ids_and_the_same_seed_the_same() {
        assert_eq!(IdScheme::new(1), IdScheme::new(1));
        assert_ne!(IdScheme::new(1).span_id(0), IdScheme::new(2).span_id(0));
        assert_ne!(IdScheme::new(1).trace_id(0), IdScheme::new(2).trace_id(0));
    }
}
