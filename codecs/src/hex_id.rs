//! Trace and span ids written as hex digits, as every JSON-family protocol carries them.
//!
//! One digit reader and one pair loop for all decoders: OTLP/JSON wants exactly `2N` digits, Zipkin
//! accepts fewer and left-pads them (as zipkin-go does): [`decode_exact`] and
//! [`decode_left_padded`], the second using the first for full-length ids. Validity is tested once per id, not once per digit: only a byte that is
//! not a hex digit maps to a value with high bits set.

/// A hex digit's value, or a value with high bits set for a byte that is not one: arithmetic and
/// selects rather than a table lookup, so the compiler can do a whole id in vector registers.
#[inline]
fn digit_value(byte: u8) -> u8 {
    let decimal = byte.wrapping_sub(b'0');
    // Setting bit 5 folds `A`-`F` onto `a`-`f` and moves no other byte into that range.
    let letter = (byte | 0x20).wrapping_sub(b'a');
    if decimal < 10 {
        decimal
    } else if letter < 6 {
        letter + 10
    } else {
        0xFF
    }
}

/// Parses 1 to `2N` hex digits of either case into `N` big-endian bytes, left-padded with zeros
/// (`"abc"` is `[.., 0x0a, 0xbc]`). `None` when the length is out of that range or a byte is not
/// a hex digit; callers say which to their users.
#[inline]
#[must_use]
pub fn decode_left_padded<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() == 2 * N {
        return decode_exact(digits);
    }
    if digits.is_empty() || digits.len() > 2 * N {
        return None;
    }
    let mut id = [0u8; N];
    // An odd count leaves the first digit alone in the low nibble of the first byte written.
    let (lone, pairs) = digits.split_at(digits.len() % 2);
    let first = N - digits.len().div_ceil(2);
    let mut seen = 0u8;
    if let Some(&digit) = lone.first() {
        let value = digit_value(digit);
        seen |= value;
        id[first] = value;
    }
    for (byte, pair) in id[first + lone.len()..].iter_mut().zip(pairs.chunks_exact(2)) {
        let &[high, low] = pair else { return None };
        let (high, low) = (digit_value(high), digit_value(low));
        seen |= high | low;
        *byte = (high << 4) | low;
    }
    (seen <= 0x0F).then_some(id)
}

/// Exactly `2N` hex digits of either case into `N` big-endian bytes (OTLP/JSON's form, and the
/// usual Zipkin one); `None` for any other length or a byte that is not a hex digit. A loop of
/// known length over pairs, which the compiler unrolls without bounds checks.
#[inline]
#[must_use]
pub fn decode_exact<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let digits: &[u8] = digits.get(..2 * N)?;
    let mut id = [0u8; N];
    let mut seen = 0u8;
    for (byte, pair) in id.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (digit_value(pair[0]), digit_value(pair[1]));
        seen |= high | low;
        *byte = (high << 4) | low;
    }
    (seen <= 0x0F).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_are_left_padded_and_case_insensitive() {
        assert_eq!(decode_left_padded::<8>(b"1"), Some([0, 0, 0, 0, 0, 0, 0, 1]));
        assert_eq!(decode_left_padded::<8>(b"aBc"), Some([0, 0, 0, 0, 0, 0, 0x0a, 0xbc]));
        assert_eq!(decode_left_padded::<4>(b"0123aBcD"), Some([0x01, 0x23, 0xab, 0xcd]));
        assert_eq!(decode_left_padded::<4>(b"123456789"), None);
        assert_eq!(decode_left_padded::<4>(b""), None);
        assert_eq!(decode_left_padded::<4>(b"+1"), None);
        assert_eq!(decode_left_padded::<4>(b"g"), None);
        assert_eq!(decode_left_padded::<4>("é1".as_bytes()), None);
        assert_eq!(decode_exact::<4>(b"0123aBcD"), Some([0x01, 0x23, 0xab, 0xcd]));
        assert_eq!(decode_exact::<4>(b"123aBcD"), None);
        assert_eq!(decode_exact::<4>(b"0123aBcD0"), None);
        assert_eq!(decode_exact::<4>(b"0123aBcG"), None);
    }

    proptest! {
        /// Agrees with parsing the digits as one number, for every length and byte.
        #[test]
        fn matches_a_plain_number_parse(digits in proptest::collection::vec(any::<u8>(), 0..20)) {
            let expected = std::str::from_utf8(&digits).ok().filter(|text| {
                (1..=16).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_hexdigit())
            }).map(|text| u64::from_str_radix(text, 16).expect("hex digits").to_be_bytes());
            prop_assert_eq!(decode_left_padded::<8>(&digits), expected);
        }

        #[test]
        fn hex_digits_always_decode(id in any::<[u8; 16]>(), upper in any::<bool>(), skip in 0usize..32) {
            let text: String = id.iter().map(|byte| format!("{byte:02x}")).collect();
            let text = if upper { text.to_uppercase() } else { text };
            let trimmed = &text[skip.min(31)..];
            let mut expected = [0u8; 16];
            let value = u128::from_str_radix(trimmed, 16).expect("hex digits");
            expected.copy_from_slice(&value.to_be_bytes());
            prop_assert_eq!(decode_left_padded::<16>(trimmed.as_bytes()), Some(expected));
        }
    }
}
