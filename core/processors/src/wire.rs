//! The few protobuf wire-format pieces that rewriting a span needs: walking a message's fields with
//! their byte ranges, and writing tags, varints and length-delimited fields.
//!
//! The core keeps its own reader private, and its writer only writes whole messages through
//! closures; rewriting one field of a span while copying every other field byte for byte needs the
//! raw ranges, so this crate carries a small reader of its own. It only ever reads bytes of a
//! [`spanpipe_core::SpanBatch`], which passed the core's validating scan, so it does not report
//! faults: should it meet one anyway, iteration ends (never a panic, never an out-of-bounds read).

use std::ops::Range;

/// Protobuf wire type of a length-delimited field.
pub(crate) const WIRE_LEN: u8 = 2;

/// One field of a message: its number, where the whole field (tag included) lies, and where its
/// payload lies when it is length-delimited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawField {
    pub number: u32,
    /// The whole field: tag, length prefix if any, payload.
    pub whole: Range<usize>,
    /// The payload of a length-delimited field; `None` for scalars.
    pub payload: Option<Range<usize>>,
}

/// The fields of one message, in wire order, with ranges relative to the message's bytes.
#[derive(Clone, Debug)]
pub(crate) struct Fields<'a> {
    data: &'a [u8],
    position: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(message: &'a [u8]) -> Self {
        Self { data: message, position: 0 }
    }
}

/// Reads a varint at `position`; returns it and the position after it.
fn read_varint(data: &[u8], mut position: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *data.get(position)?;
        position += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some((value, position));
        }
    }
    None
}

impl Iterator for Fields<'_> {
    type Item = RawField;

    fn next(&mut self) -> Option<RawField> {
        let start = self.position;
        if start >= self.data.len() {
            return None;
        }
        let (tag, after_tag) = read_varint(self.data, start)?;
        let number = u32::try_from(tag >> 3).ok()?;
        let (end, payload) = match (tag & 7) as u8 {
            0 => (read_varint(self.data, after_tag)?.1, None),
            1 => (after_tag.checked_add(8)?, None),
            WIRE_LEN => {
                let (len, payload_start) = read_varint(self.data, after_tag)?;
                let payload_end = payload_start.checked_add(usize::try_from(len).ok()?)?;
                (payload_end, Some(payload_start..payload_end))
            }
            5 => (after_tag.checked_add(4)?, None),
            _ => return None,
        };
        if end > self.data.len() {
            self.position = self.data.len();
            return None;
        }
        self.position = end;
        Some(RawField { number, whole: start..end, payload })
    }
}

/// Bytes a varint of `value` takes.
pub(crate) const fn varint_len(value: u64) -> usize {
    // One byte per started group of seven bits; zero still takes one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes a length-delimited field with a one-byte tag and a payload of `len` bytes takes.
pub(crate) const fn len_field_size(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Writes the tag of a length-delimited field and its length prefix.
pub(crate) fn put_len_header(out: &mut Vec<u8>, number: u32, len: usize) {
    put_varint(out, u64::from(number) << 3 | u64::from(WIRE_LEN));
    put_varint(out, len as u64);
}

/// Writes a whole length-delimited field.
pub(crate) fn put_len_field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_len_header(out, number, payload.len());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_every_wire_type_with_exact_ranges() {
        // field 1 varint 300, field 2 "ab", field 3 fixed64, field 4 fixed32
        let mut message = vec![0x08, 0xac, 0x02, 0x12, 0x02, b'a', b'b', 0x19];
        message.extend_from_slice(&7u64.to_le_bytes());
        message.push(0x25);
        message.extend_from_slice(&9u32.to_le_bytes());
        let fields: Vec<RawField> = Fields::new(&message).collect();
        assert_eq!(
            fields,
            vec![
                RawField { number: 1, whole: 0..3, payload: None },
                RawField { number: 2, whole: 3..7, payload: Some(5..7) },
                RawField { number: 3, whole: 7..16, payload: None },
                RawField { number: 4, whole: 16..21, payload: None },
            ]
        );
    }

    #[test]
    fn stops_at_truncated_or_unknown_wire_types_without_panicking() {
        for message in [&[0x12, 0x05, b'a'][..], &[0x08][..], &[0x0b][..], &[0x80][..], &[0x19, 1, 2][..]] {
            assert!(Fields::new(message).all(|field| field.whole.end <= message.len()));
        }
        assert_eq!(Fields::new(&[0x12, 0x05, b'a']).count(), 0);
    }

    #[test]
    fn varint_lengths_match_encodings() {
        for value in [0u64, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
            assert_eq!(read_varint(&out, 0), Some((value, out.len())));
        }
    }
}
