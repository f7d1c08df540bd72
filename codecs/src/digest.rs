//! A fast 64-bit digest of texts and words, for telling apart cheaply what is nearly always
//! different: the Zipkin decoder groups spans by a digest of their resource tags, the Jaeger
//! protobuf decoder finds processes that make the same resource by a digest of it.
//!
//! Each text's length and 8-byte words (the 1 to 7 bytes left read as one more word, overlapping
//! the last full word when there is one) go through an xor, a multiply by an odd constant and a
//! rotation. It is not keyed: different inputs could be made to share a digest, so a caller that
//! must not confuse two inputs confirms a match another way, or accepts what a collision does.

/// The digest of the words and texts added so far, in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Digest(u64);

impl Digest {
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

    /// Adds one word.
    #[inline]
    #[must_use]
    pub fn word(self, word: u64) -> Self {
        Self((self.0 ^ word).wrapping_mul(Self::MULTIPLIER).rotate_left(29))
    }

    /// Adds a text: its length, then its bytes.
    #[must_use]
    pub fn text(self, text: &[u8]) -> Self {
        let mut digest = self.word(text.len() as u64);
        let mut rest = text;
        while let Some((word, tail)) = rest.split_first_chunk::<8>() {
            digest = digest.word(u64::from_le_bytes(*word));
            rest = tail;
        }
        if rest.is_empty() {
            digest
        } else if let Some(last) = text.last_chunk::<8>() {
            digest.word(u64::from_le_bytes(*last))
        } else {
            digest.word(rest.iter().rev().fold(0, |word, &byte| word << 8 | u64::from(byte)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(texts: &[(&str, &str)]) -> Digest {
        texts.iter().fold(Digest::default(), |digest, (key, value)| digest.text(key.as_bytes()).text(value.as_bytes()))
    }

    #[test]
    fn digests_tell_texts_apart_by_boundary_and_order() {
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("host.name", "")],
            &[("host.name", "node-1")],
            &[("host.name", "node-2")],
            &[("host.name", "node-1"), ("os.type", "linux")],
            &[("os.type", "linux"), ("host.name", "node-1")],
            &[("host.nam", "enode-1")],
            // Past one word, and the overlapping read of the last one.
            &[("host.name", "ip-10-0-0-1.eu-west-1.compute.internal")],
            &[("host.name", "ip-10-0-0-2.eu-west-1.compute.internal")],
            &[("host.name", "ip-10-0-0-1.eu-west-1.compute.internaL")],
            &[("host.name", "ip-10-0-0-1.eu-west-1.compute.interna")],
        ];
        let digests: Vec<Digest> = cases.iter().map(|texts| digest(texts)).collect();
        for (i, a) in digests.iter().enumerate() {
            for (j, b) in digests.iter().enumerate() {
                assert_eq!(a == b, i == j, "{:?} and {:?}", cases[i], cases[j]);
            }
        }
    }
}
