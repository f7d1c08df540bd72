//! Protobuf wire-format primitives: the one reader and the one set of writers that the index scan,
//! the lazy views, the span writer and re-framing all share — public so that every other protobuf
//! format spanpipe reads or writes (Zipkin's `ListOfSpans`, processors that rewrite span bytes,
//! the load generator's templates) uses the same bounds-checked code instead of a copy of it.
//!
//! The reader works on the whole batch buffer with absolute positions, so every range it hands out
//! can be stored in the index as is and every error names a byte offset into the original request.
//! It never panics and never reads out of bounds: every length is checked against the end of the
//! enclosing message before it is used.

use std::ops::Range;

/// The longest varint protobuf allows: 64 bits in 7-bit groups.
pub const MAX_VARINT_LEN: usize = 10;

/// Protobuf wire types (the low three bits of a tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireType {
    /// Variable-length integer (int32, int64, uint32, bool, enum).
    Varint,
    /// Eight little-endian bytes (fixed64, double).
    I64,
    /// Length-delimited (string, bytes, embedded message).
    Len,
    /// Deprecated group start; OTLP never uses groups.
    StartGroup,
    /// Deprecated group end.
    EndGroup,
    /// Four little-endian bytes (fixed32, float).
    I32,
}

impl WireType {
    /// The three bits that stand for this wire type in a tag.
    #[must_use]
    pub const fn bits(self) -> u8 {
        match self {
            Self::Varint => 0,
            Self::I64 => 1,
            Self::Len => 2,
            Self::StartGroup => 3,
            Self::EndGroup => 4,
            Self::I32 => 5,
        }
    }
}

impl std::fmt::Display for WireType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Varint => "varint",
            Self::I64 => "fixed64",
            Self::Len => "length-delimited",
            Self::StartGroup => "start-group",
            Self::EndGroup => "end-group",
            Self::I32 => "fixed32",
        })
    }
}

/// What went wrong at the wire level; callers add the offset and the field they were reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireFault {
    /// The message ends inside a tag, varint or fixed-width value.
    #[error("truncated")]
    Truncated,
    /// A varint longer than ten bytes or beyond 64 bits.
    #[error("varint overflows 64 bits")]
    VarintOverflow,
    /// Field number zero or a tag beyond 32 bits.
    #[error("invalid tag")]
    InvalidTag,
    /// Wire type 3, 4, 6 or 7 (groups are not supported).
    #[error("unsupported wire type {0}")]
    UnsupportedWireType(u8),
    /// A length prefix that points past the end of the enclosing message.
    #[error("length {length} exceeds the {remaining} bytes remaining")]
    LengthPastEnd {
        /// The declared length.
        length: u64,
        /// Bytes left in the enclosing message.
        remaining: usize,
    },
}

/// The payload of one field, already bounds-checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldValue {
    /// A varint's value.
    Varint(u64),
    /// A fixed64's value (little endian decoded).
    I64(u64),
    /// A fixed32's value (little endian decoded).
    I32(u32),
    /// Absolute byte range of the field's payload (after the length prefix).
    Len(Range<usize>),
}

impl FieldValue {
    /// A length-delimited field's payload range; `None` for another wire type.
    #[must_use]
    pub fn as_len(&self) -> Option<Range<usize>> {
        match self {
            Self::Len(range) => Some(range.clone()),
            _ => None,
        }
    }

    /// A varint's value; `None` for another wire type.
    #[must_use]
    pub fn as_varint(&self) -> Option<u64> {
        match *self {
            Self::Varint(value) => Some(value),
            _ => None,
        }
    }

    /// A fixed64's value; `None` for another wire type.
    #[must_use]
    pub fn as_i64(&self) -> Option<u64> {
        match *self {
            Self::I64(value) => Some(value),
            _ => None,
        }
    }

    /// The wire type this value was read with.
    #[must_use]
    pub fn wire_type(&self) -> WireType {
        match self {
            Self::Varint(_) => WireType::Varint,
            Self::I64(_) => WireType::I64,
            Self::I32(_) => WireType::I32,
            Self::Len(_) => WireType::Len,
        }
    }
}

/// One field as read from the wire.
#[derive(Clone, Debug)]
pub struct Field {
    /// Field number from the tag.
    pub number: u32,
    /// Absolute offset of the tag's first byte: where the whole field starts.
    pub start: usize,
    /// The field's payload.
    pub value: FieldValue,
}

/// A cursor over one protobuf message inside a larger buffer.
///
/// `data` is the buffer cut off at the end of the message, so one bound serves every check and
/// positions stay absolute (offsets into the whole request). Tags and lengths below 128 — nearly
/// all of them in OTLP — take an inlined one-byte path; longer varints and every error path are
/// out of line.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over the message that occupies `range` of `data`. The caller guarantees that the
    /// range lies inside `data` (every range comes from a checked length or a validated index);
    /// should it not, the reader reads less, never out of bounds.
    #[inline]
    pub fn new(data: &'a [u8], range: Range<usize>) -> Self {
        debug_assert!(range.start <= range.end && range.end <= data.len());
        let data = data.get(..range.end).unwrap_or(data);
        Self { data, pos: range.start }
    }

    /// Absolute position of the next byte to read.
    #[inline(always)]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes from the cursor to the end of the message.
    #[inline(always)]
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    /// Moves past `len` bytes the caller has just read from [`Reader::rest`].
    #[inline(always)]
    pub fn advance(&mut self, len: usize) {
        self.pos = self.pos.saturating_add(len).min(self.data.len());
    }

    /// Reads the next field, or `None` at the end of the message. On error, the offset is where
    /// the faulty item starts.
    ///
    /// # Errors
    /// The fault and its absolute offset.
    #[inline(always)]
    pub fn next_field(&mut self) -> Result<Option<Field>, (WireFault, usize)> {
        let start = self.pos;
        let key = match self.data.get(start) {
            None => return Ok(None),
            Some(&byte) if byte < 0x80 => {
                self.pos = start + 1;
                u64::from(byte)
            }
            Some(_) => self.varint_slow().map_err(|fault| (fault, start))?,
        };
        let number = (key >> 3) as u32;
        if number == 0 || key > u64::from(u32::MAX) {
            return Err((WireFault::InvalidTag, start));
        }
        let value_start = self.pos;
        let value = match key & 7 {
            0 => FieldValue::Varint(self.varint().map_err(|fault| (fault, value_start))?),
            1 => FieldValue::I64(u64::from_le_bytes(self.fixed::<8>().map_err(|fault| (fault, value_start))?)),
            2 => {
                let length = self.varint().map_err(|fault| (fault, value_start))?;
                let remaining = self.data.len() - self.pos;
                if length > remaining as u64 {
                    return Err((WireFault::LengthPastEnd { length, remaining }, value_start));
                }
                let payload = self.pos..self.pos + length as usize;
                self.pos = payload.end;
                FieldValue::Len(payload)
            }
            5 => FieldValue::I32(u32::from_le_bytes(self.fixed::<4>().map_err(|fault| (fault, value_start))?)),
            bits => return Err((WireFault::UnsupportedWireType(bits as u8), start)),
        };
        Ok(Some(Field { number, start, value }))
    }

    #[inline(always)]
    fn varint(&mut self) -> Result<u64, WireFault> {
        match self.data.get(self.pos) {
            Some(&byte) if byte < 0x80 => {
                self.pos += 1;
                Ok(u64::from(byte))
            }
            _ => self.varint_slow(),
        }
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> Result<u64, WireFault> {
        let (value, len) = decode_varint(self.data.get(self.pos..).unwrap_or_default())?;
        self.pos += len;
        Ok(value)
    }

    #[inline(always)]
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], WireFault> {
        let bytes: [u8; N] = self
            .data
            .get(self.pos..self.pos + N)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(WireFault::Truncated)?;
        self.pos += N;
        Ok(bytes)
    }
}

/// One field of a message with its byte ranges, as [`Fields`] yields it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawField {
    /// Field number from the tag.
    pub number: u32,
    /// Wire type from the tag.
    pub wire_type: WireType,
    /// The whole field: tag, length prefix if any, value.
    pub whole: Range<usize>,
    /// The value's bytes: a varint's bytes, the fixed-width bytes, or a length-delimited field's
    /// payload (without its length prefix).
    pub value: Range<usize>,
}

/// The fields of one message in wire order, with the byte ranges that copying or patching a field
/// in place needs — for bytes that already passed a validating scan (a batch's, or a template the
/// load generator built), which is why faults are not reported: should one appear anyway,
/// iteration ends there (never a panic, never an out-of-bounds read).
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    reader: Reader<'a>,
}

impl<'a> Fields<'a> {
    /// The fields of `message`, with ranges relative to it.
    #[must_use]
    pub fn new(message: &'a [u8]) -> Self {
        Self::within(message, 0..message.len())
    }

    /// The fields of the message at `range` of `data`, with ranges absolute in `data`.
    #[must_use]
    pub fn within(data: &'a [u8], range: Range<usize>) -> Self {
        let range = range.start.min(data.len())..range.end.min(data.len());
        Self { reader: Reader::new(data, range.start..range.end.max(range.start)) }
    }
}

impl Iterator for Fields<'_> {
    type Item = RawField;

    fn next(&mut self) -> Option<RawField> {
        let Ok(Some(field)) = self.reader.next_field() else {
            self.reader.advance(usize::MAX);
            return None;
        };
        let end = self.reader.position();
        let wire_type = field.value.wire_type();
        let value = match field.value {
            FieldValue::Len(payload) => payload,
            FieldValue::I64(_) => end - 8..end,
            FieldValue::I32(_) => end - 4..end,
            FieldValue::Varint(_) => {
                let tag_len =
                    decode_varint(self.reader.data.get(field.start..).unwrap_or_default()).map_or(0, |(_, len)| len);
                field.start + tag_len..end
            }
        };
        Some(RawField { number: field.number, wire_type, whole: field.start..end, value })
    }
}

/// Decodes a varint from the start of `buf`, returning the value and the bytes it took.
///
/// # Errors
/// [`WireFault::Truncated`] or [`WireFault::VarintOverflow`].
#[inline]
pub fn decode_varint(buf: &[u8]) -> Result<(u64, usize), WireFault> {
    match buf.first() {
        None => return Err(WireFault::Truncated),
        Some(&b) if b < 0x80 => return Ok((u64::from(b), 1)),
        Some(_) => {}
    }
    let mut value = 0u64;
    for (i, &byte) in buf.iter().take(MAX_VARINT_LEN).enumerate() {
        if i == MAX_VARINT_LEN - 1 && byte > 1 {
            return Err(WireFault::VarintOverflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok((value, i + 1));
        }
    }
    if buf.len() >= MAX_VARINT_LEN {
        Err(WireFault::VarintOverflow)
    } else {
        Err(WireFault::Truncated)
    }
}

/// Number of bytes `value` takes as a varint.
#[inline]
pub const fn varint_len(value: u64) -> usize {
    // Bits needed, rounded up to groups of seven; zero still takes one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends `value` as a varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Writes `value` as a varint into `out`, which must be exactly `varint_len(value)` long.
#[inline]
pub fn write_varint_into(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut() {
        *slot = (value as u8 & 0x7f) | 0x80;
        value >>= 7;
    }
    if let Some(last) = out.last_mut() {
        *last &= 0x7f;
    }
}

/// Appends a tag for `field` with wire type `wire_type`.
#[inline]
pub fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: WireType) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type.bits()));
}

/// Appends a length-delimited field (string, bytes, or a message already encoded).
#[inline]
pub fn put_len_field(out: &mut Vec<u8>, field: u32, payload: &[u8]) {
    put_len_header(out, field, payload.len());
    out.extend_from_slice(payload);
}

/// Appends the tag and length prefix of a length-delimited field whose `len` payload bytes follow.
#[inline]
pub fn put_len_header(out: &mut Vec<u8>, field: u32, len: usize) {
    put_tag(out, field, WireType::Len);
    put_varint(out, len as u64);
}

/// Number of bytes a length-delimited field with a one-byte tag and `len` payload bytes takes.
#[inline]
pub const fn len_field_size(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_at_every_length_boundary() {
        for shift in 0..64 {
            for value in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) + 1, u64::MAX] {
                let mut out = Vec::new();
                put_varint(&mut out, value);
                assert_eq!(out.len(), varint_len(value), "{value}");
                assert_eq!(decode_varint(&out), Ok((value, out.len())));
                let mut fixed = vec![0; varint_len(value)];
                write_varint_into(&mut fixed, value);
                assert_eq!(fixed, out);
            }
        }
    }

    #[test]
    fn rejects_eleven_byte_and_overflowing_varints() {
        assert_eq!(decode_varint(&[0xff; 11]), Err(WireFault::VarintOverflow));
        let mut ten = [0xff; 10];
        ten[9] = 0x02;
        assert_eq!(decode_varint(&ten), Err(WireFault::VarintOverflow));
        ten[9] = 0x01;
        assert_eq!(decode_varint(&ten), Ok((u64::MAX, 10)));
        assert_eq!(decode_varint(&[0x80, 0x80]), Err(WireFault::Truncated));
        assert_eq!(decode_varint(&[]), Err(WireFault::Truncated));
    }

    #[test]
    fn fields_walk_every_wire_type_with_exact_ranges() {
        let mut message = Vec::new();
        put_tag(&mut message, 1, WireType::Varint);
        put_varint(&mut message, 300);
        put_tag(&mut message, 2, WireType::I64);
        message.extend_from_slice(&7u64.to_le_bytes());
        put_len_field(&mut message, 3, b"abc");
        put_tag(&mut message, 4, WireType::I32);
        message.extend_from_slice(&9u32.to_le_bytes());
        let fields: Vec<RawField> = Fields::new(&message).collect();
        let shape: Vec<_> = fields.iter().map(|f| (f.number, f.wire_type, f.whole.clone(), f.value.clone())).collect();
        assert_eq!(
            shape,
            [
                (1, WireType::Varint, 0..3, 1..3),
                (2, WireType::I64, 3..12, 4..12),
                (3, WireType::Len, 12..17, 14..17),
                (4, WireType::I32, 17..22, 18..22),
            ]
        );
        let mut framed = vec![0xAA, 0xBB];
        framed.extend_from_slice(&message);
        let absolute: Vec<_> = Fields::within(&framed, 2..framed.len()).map(|f| f.whole).collect();
        assert_eq!(absolute, [2..5, 5..14, 14..19, 19..24]);
    }

    #[test]
    fn fields_stop_at_a_fault_without_panicking() {
        let mut message = Vec::new();
        put_len_field(&mut message, 1, b"ok");
        message.extend_from_slice(&[0x12, 0x7f, 0x01]);
        assert_eq!(Fields::new(&message).map(|f| f.number).collect::<Vec<_>>(), [1]);
        assert_eq!(Fields::new(&[0x0b]).count(), 0);
        assert_eq!(Fields::within(&message, 3..100).count(), 0);
    }

    #[test]
    fn accepts_non_minimal_varints_like_prost() {
        assert_eq!(decode_varint(&[0x81, 0x80, 0x00]), Ok((1, 3)));
    }
}
