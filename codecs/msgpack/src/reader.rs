//! A cursor over a MessagePack body that reads one value at a time with `rmp::decode` and knows
//! its byte offset, so every refusal can say where it happened.
//!
//! `rmp::decode` reads markers and lengths; strings and bins are then borrowed from the body
//! (never copied), and a value the decoder does not want is skipped without recursion (a count of
//! values still to skip replaces the stack), so unknown keys cost no allocation and no depth,
//! whatever they hold.

use rmp::decode::{Bytes, NumValueReadError, ValueReadError};
use rmp::Marker;

use crate::error::{Expected, Family, MsgpackError, MsgpackErrorKind};

pub(crate) type Result<T = ()> = std::result::Result<T, MsgpackError>;

/// The unread part of a body, and the body's length (to turn what is left into an offset).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    total: usize,
}

/// The family of a marker; `None` for the reserved 0xc1.
fn family(marker: Marker) -> Option<Family> {
    Some(match marker {
        Marker::Null => Family::Nil,
        Marker::True | Marker::False => Family::Bool,
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::U64
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64 => Family::Integer,
        Marker::F32 | Marker::F64 => Family::Float,
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => Family::Str,
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => Family::Bin,
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => Family::Array,
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => Family::Map,
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => Family::Ext,
        Marker::Reserved => return None,
    })
}

impl<'a> Reader<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Self { rest: body, total: body.len() }
    }

    /// Byte offset of the next value.
    pub(crate) fn offset(&self) -> usize {
        self.total - self.rest.len()
    }

    pub(crate) fn is_at_end(&self) -> bool {
        self.rest.is_empty()
    }

    /// An error about the value at the cursor.
    #[cold]
    pub(crate) fn error(&self, kind: MsgpackErrorKind) -> MsgpackError {
        MsgpackError::new(kind, self.offset())
    }

    /// The family of the next value, without consuming it.
    #[inline]
    pub(crate) fn peek(&self) -> Result<Family> {
        let &first = self.rest.first().ok_or_else(|| self.error(MsgpackErrorKind::UnexpectedEnd))?;
        family(Marker::from_u8(first)).ok_or_else(|| self.error(MsgpackErrorKind::ReservedMarker))
    }

    /// Consumes a nil if one is next; says whether it did.
    #[inline]
    pub(crate) fn nil(&mut self) -> bool {
        match self.rest.split_first() {
            Some((0xc0, rest)) => {
                self.rest = rest;
                true
            }
            _ => false,
        }
    }

    /// Runs one `rmp::decode` function at the cursor and moves past what it read. A failure
    /// leaves the cursor where it was, so the error names the value's first byte.
    #[inline]
    fn read<T, E>(
        &mut self,
        read: impl FnOnce(&mut Bytes<'a>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut bytes = Bytes::new(self.rest);
        let value = read(&mut bytes)?;
        self.rest = bytes.remaining_slice();
        Ok(value)
    }

    /// What a failed `rmp::decode` call means, for a value where `expected` belongs.
    #[cold]
    fn refusal<E: rmp::decode::RmpReadErr>(&self, error: &ValueReadError<E>, expected: Expected) -> MsgpackError {
        match error {
            ValueReadError::TypeMismatch(marker) => self.mismatch(*marker, expected),
            // `Bytes` fails only where the slice ends.
            ValueReadError::InvalidMarkerRead(_) | ValueReadError::InvalidDataRead(_) => self.truncated(),
        }
    }

    /// The body ends inside the value at the cursor; the offset is the end of the body.
    #[cold]
    fn truncated(&self) -> MsgpackError {
        MsgpackError::new(MsgpackErrorKind::UnexpectedEnd, self.total)
    }

    #[cold]
    fn mismatch(&self, marker: Marker, expected: Expected) -> MsgpackError {
        match family(marker) {
            Some(found) => self.error(MsgpackErrorKind::WrongType { expected, found }),
            None => self.error(MsgpackErrorKind::ReservedMarker),
        }
    }

    /// Takes `len` bytes of payload after a header was read.
    #[inline]
    fn take(&mut self, len: u32) -> Result<&'a [u8]> {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > self.rest.len() {
            return Err(self.truncated());
        }
        let (payload, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(payload)
    }

    /// The length of a map; `expected` names what the field wanted if it is not one.
    #[inline]
    pub(crate) fn map_len(&mut self, expected: Expected) -> Result<u32> {
        self.read(rmp::decode::read_map_len).map_err(|error| self.refusal(&error, expected))
    }

    /// The length of an array.
    #[inline]
    pub(crate) fn array_len(&mut self) -> Result<u32> {
        self.read(rmp::decode::read_array_len).map_err(|error| self.refusal(&error, Expected::Array))
    }

    /// A repeated field's length: nil is an empty list.
    #[inline]
    pub(crate) fn array_len_or_nil(&mut self) -> Result<u32> {
        if self.nil() {
            return Ok(0);
        }
        self.array_len()
    }

    /// The bytes of a str, UTF-8 checked.
    #[inline]
    pub(crate) fn str(&mut self, expected: Expected) -> Result<&'a str> {
        let start = *self;
        let len = self.read(rmp::decode::read_str_len).map_err(|error| self.refusal(&error, expected))?;
        let payload = self.take(len)?;
        std::str::from_utf8(payload).map_err(|_| start.error(MsgpackErrorKind::InvalidUtf8))
    }

    /// The bytes of a bin.
    #[inline]
    pub(crate) fn bin(&mut self) -> Result<&'a [u8]> {
        let len = self.read(rmp::decode::read_bin_len).map_err(|error| self.refusal(&error, Expected::Bytes))?;
        self.take(len)
    }

    /// A map key: a str.
    #[inline]
    pub(crate) fn key(&mut self) -> Result<&'a str> {
        match self.peek()? {
            Family::Str => self.str(Expected::Str),
            found => Err(self.error(MsgpackErrorKind::NonStringKey { found })),
        }
    }

    /// An integer of any MessagePack integer format, widened to `i128` so that one routine
    /// serves every protobuf integer type; callers narrow it.
    #[inline]
    pub(crate) fn integer(&mut self, expected: Expected) -> Result<i128> {
        self.read(rmp::decode::read_int::<i128, _>).map_err(|error| match error {
            NumValueReadError::TypeMismatch(marker) => self.mismatch(marker, expected),
            // `i128` holds every MessagePack integer, so a range error cannot come from rmp; a
            // truncated payload is what remains.
            _ => self.truncated(),
        })
    }

    /// A float 32 (widened exactly) or float 64.
    #[inline]
    pub(crate) fn float(&mut self) -> Result<f64> {
        if let Some(&first) = self.rest.first() {
            if Marker::from_u8(first) == Marker::F32 {
                return self
                    .read(rmp::decode::read_f32)
                    .map(f64::from)
                    .map_err(|error| self.refusal(&error, Expected::Number));
            }
        }
        self.read(rmp::decode::read_f64).map_err(|error| self.refusal(&error, Expected::Number))
    }

    #[inline]
    pub(crate) fn bool(&mut self) -> Result<bool> {
        self.read(rmp::decode::read_bool).map_err(|error| self.refusal(&error, Expected::Bool))
    }

    /// Moves past one value, whatever it holds. No recursion: `pending` counts the values still to
    /// be skipped, and each array or map adds its elements to it. Every value takes at least one
    /// byte, so a huge declared length ends at the end of the body.
    pub(crate) fn skip(&mut self) -> Result {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            match self.peek()? {
                Family::Nil | Family::Bool => self.rest = self.rest.get(1..).unwrap_or_default(),
                Family::Integer => {
                    self.integer(Expected::Integer)?;
                }
                Family::Float => {
                    self.float()?;
                }
                Family::Str => {
                    let len = self.read(rmp::decode::read_str_len).map_err(|e| self.refusal(&e, Expected::Str))?;
                    self.take(len)?;
                }
                Family::Bin => {
                    self.bin()?;
                }
                Family::Array => pending = pending.saturating_add(u64::from(self.array_len()?)),
                Family::Map => pending = pending.saturating_add(2 * u64::from(self.map_len(Expected::Map)?)),
                Family::Ext => {
                    let meta = self.read(rmp::decode::read_ext_meta).map_err(|e| self.refusal(&e, Expected::Bytes))?;
                    self.take(meta.size)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_moves_past_nested_values_of_every_family() {
        // [nil, true, -1, 300, 1.5f32, 2.5f64, "ab", bin[1], {"k": [1]}, fixext1]
        let body = [
            0x9a, 0xc0, 0xc3, 0xff, 0xcd, 0x01, 0x2c, 0xca, 0x3f, 0xc0, 0x00, 0x00, 0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0,
            0xa2, b'a', b'b', 0xc4, 0x01, 0x07, 0x81, 0xa1, b'k', 0x91, 0x01, 0xd4, 0x05, 0x09, 0x2a,
        ];
        let mut reader = Reader::new(&body);
        reader.skip().unwrap();
        assert_eq!(reader.offset(), body.len() - 1);
        assert_eq!(reader.integer(Expected::Integer).unwrap(), 42);
        assert!(reader.is_at_end());
    }

    #[test]
    fn a_huge_declared_length_ends_at_the_end_of_the_body() {
        // array32 of 4 294 967 295 elements, of which two are present.
        let body = [0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0];
        let error = Reader::new(&body).skip().unwrap_err();
        assert_eq!(error.kind(), &MsgpackErrorKind::UnexpectedEnd);
        assert_eq!(error.offset(), body.len());
    }

    #[test]
    fn a_string_longer_than_the_body_is_a_truncation_not_a_panic() {
        let body = [0xdb, 0xff, 0xff, 0xff, 0xf0, b'a'];
        let error = Reader::new(&body).str(Expected::Str).unwrap_err();
        assert_eq!(error.kind(), &MsgpackErrorKind::UnexpectedEnd);
    }

    #[test]
    fn type_errors_name_the_family_found_and_the_offset() {
        let body = [0xc0, 0xc1, 0x92];
        let mut reader = Reader::new(&body);
        assert!(reader.nil());
        assert_eq!(reader.peek().unwrap_err().kind(), &MsgpackErrorKind::ReservedMarker);
        reader.rest = &body[2..];
        let error = reader.map_len(Expected::Map).unwrap_err();
        assert_eq!(error.kind(), &MsgpackErrorKind::WrongType { expected: Expected::Map, found: Family::Array });
        assert_eq!(error.offset(), 2);
    }
}
