//! Zero-copy Thrift readers and writers for the compact and the binary protocol.
//!
//! The mapping code is written once against [`ProtocolReader`] and [`ProtocolWriter`] and
//! monomorphised per protocol, so there is no dynamic dispatch per value. Readers borrow the
//! input: strings and binaries come out as slices of it. A reader is a position over the whole
//! input (`Copy`), so the decoder can remember where a list starts and come back to it.
//!
//! Bounds: every length and element count is checked against the bytes that remain before
//! anything is read or allocated (an element takes at least [`ProtocolReader::min_size`] bytes),
//! and skipping unknown values recurses at most [`MAX_DEPTH`] levels.

use crate::error::{DecodeError, DecodeErrorKind};

/// How deep structures and containers may nest inside a skipped value. Jaeger's IDL nests four
/// levels (`Batch` → `Span` → `Log` → `Tag`); anything far deeper is an attack or garbage.
pub const MAX_DEPTH: usize = 64;

/// A Thrift value type, the same for both protocols (each has its own ids on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TType {
    /// `bool`.
    Bool,
    /// `byte` (`i8`).
    Byte,
    /// `i16`.
    I16,
    /// `i32` (and enums).
    I32,
    /// `i64`.
    I64,
    /// `double`.
    Double,
    /// `string` and `binary`.
    Binary,
    /// `list`.
    List,
    /// `set`.
    Set,
    /// `map`.
    Map,
    /// `struct`.
    Struct,
}

impl std::fmt::Display for TType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bool => "bool",
            Self::Byte => "byte",
            Self::I16 => "i16",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::Double => "double",
            Self::Binary => "binary",
            Self::List => "list",
            Self::Set => "set",
            Self::Map => "map",
            Self::Struct => "struct",
        })
    }
}

/// The Thrift message types the decoder accepts for `emitBatch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    /// `CALL` (1): sent by clients that do not mark the method oneway.
    Call,
    /// `ONEWAY` (4): what Jaeger clients send for `emitBatch`.
    Oneway,
}

impl MessageType {
    fn id(self) -> u8 {
        match self {
            Self::Call => 1,
            Self::Oneway => 4,
        }
    }

    fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Call),
            4 => Some(Self::Oneway),
            _ => None,
        }
    }
}

/// A field header: its id and type, and where it starts (for errors).
#[derive(Clone, Copy, Debug)]
pub struct FieldHeader {
    pub id: i16,
    pub ttype: TType,
    /// For the compact protocol, a boolean field's value lives in its header.
    pub bool_value: Option<bool>,
}

type Result<T> = std::result::Result<T, DecodeError>;

/// The primitives both protocols provide; the Jaeger mapping is written against these alone.
pub trait ProtocolReader<'a>: Copy {
    /// The protocol's name, for errors.
    const NAME: &'static str;

    /// The whole input and the reader's position in it.
    fn input(&self) -> &'a [u8];
    /// Current offset into the input.
    fn offset(&self) -> usize;
    /// Moves to `offset` (a position this reader was at before).
    fn seek(&mut self, offset: usize);

    /// The smallest encoding of a value of this type: bounds element counts.
    fn min_size(ttype: TType) -> usize;

    /// The next field header of a struct, or `None` at its stop byte. `last_id` is the id of the
    /// struct's previous field (start each struct at 0); the compact protocol encodes ids as
    /// deltas from it.
    fn field_begin(&mut self, last_id: &mut i16) -> Result<Option<FieldHeader>>;

    /// Consumes the next field header if it is the usual one for field `id` of type `ttype`
    /// after field `last_id` (compact: the one-byte delta form; binary: the only form), and
    /// says whether it did. Decoders read structs laid out as their writers lay them out with
    /// this, without the general field loop; any other header is left for [`Self::field_begin`].
    /// Never matches a compact boolean, whose value is in its header: [`Self::bool_field_is`]
    /// reads those.
    fn field_is(&mut self, last_id: i16, id: i16, ttype: TType) -> bool;

    /// As [`Self::field_is`] for boolean field `id`, and reads its value too (compact: from the
    /// header; binary: the byte after it). `None` for any other header or a value that does not
    /// read, with the reader then at an unspecified position (callers seek back).
    fn bool_field_is(&mut self, last_id: i16, id: i16) -> Option<bool>;

    /// Consumes a struct's stop byte if it comes next, and says whether it did.
    fn stop_is_next(&mut self) -> bool {
        let at = self.offset();
        let is_stop = self.input().get(at) == Some(&0);
        if is_stop {
            self.seek(at + 1);
        }
        is_stop
    }
    /// A `bool` value outside a field header (in a list, or a binary-protocol field).
    fn read_bool(&mut self) -> Result<bool>;
    fn read_byte(&mut self) -> Result<i8>;
    fn read_i16(&mut self) -> Result<i16>;
    fn read_i32(&mut self) -> Result<i32>;
    fn read_i64(&mut self) -> Result<i64>;
    fn read_double(&mut self) -> Result<f64>;
    /// A `binary` or `string`, borrowed from the input.
    fn read_binary(&mut self) -> Result<&'a [u8]>;
    /// A list or set header: element type and count (checked against the remaining bytes).
    fn list_begin(&mut self) -> Result<(TType, u32)>;
    /// A map header: key type, value type and count (checked against the remaining bytes).
    fn map_begin(&mut self) -> Result<(TType, TType, u32)>;
    /// A message header: name, type and sequence id.
    fn message_begin(&mut self) -> Result<(&'a [u8], u8, i32)>;

    /// Bytes after the current position.
    fn remaining(&self) -> usize {
        self.input().len().saturating_sub(self.offset())
    }

    fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(self.offset(), kind)
    }

    /// A `string`: `binary` that must be UTF-8.
    #[inline(always)]
    fn read_str(&mut self, field: &'static str) -> Result<&'a str> {
        let start = self.offset();
        let bytes = self.read_binary()?;
        utf8(bytes).ok_or_else(|| DecodeError::new(start, DecodeErrorKind::InvalidUtf8 { field }))
    }

    /// Reads the value of a field, or a container element, whose header said `bool_value`.
    fn read_bool_field(&mut self, header: &FieldHeader) -> Result<bool> {
        match header.bool_value {
            Some(value) => Ok(value),
            None => self.read_bool(),
        }
    }

    /// Skips one value of type `ttype`, nested at most [`MAX_DEPTH`] levels.
    fn skip(&mut self, header: &FieldHeader, depth: usize) -> Result<()> {
        if header.bool_value.is_some() {
            return Ok(());
        }
        self.skip_value(header.ttype, depth)
    }

    /// Skips one value of type `ttype` (not a compact field-header boolean).
    fn skip_value(&mut self, ttype: TType, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(self.error(DecodeErrorKind::DepthLimit { limit: MAX_DEPTH }));
        }
        match ttype {
            TType::Bool => self.read_bool().map(drop),
            TType::Byte => self.read_byte().map(drop),
            TType::I16 => self.read_i16().map(drop),
            TType::I32 => self.read_i32().map(drop),
            TType::I64 => self.read_i64().map(drop),
            TType::Double => self.read_double().map(drop),
            TType::Binary => self.read_binary().map(drop),
            TType::List | TType::Set => {
                let (element, count) = self.list_begin()?;
                (0..count).try_for_each(|_| self.skip_value(element, depth + 1))
            }
            TType::Map => {
                let (key, value, count) = self.map_begin()?;
                (0..count).try_for_each(|_| {
                    self.skip_value(key, depth + 1)?;
                    self.skip_value(value, depth + 1)
                })
            }
            TType::Struct => {
                let mut last_id = 0;
                while let Some(field) = self.field_begin(&mut last_id)? {
                    self.skip(&field, depth + 1)?;
                }
                Ok(())
            }
        }
    }
}

/// `bytes` as a `str` if they are UTF-8. Nearly every tag key and value is ASCII, which an
/// inlined word-at-a-time check confirms in a fraction of the time the general validator (an
/// out-of-line call with its own alignment set-up) takes on strings this short; the general
/// validator decides the rest.
#[inline]
pub(crate) fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: every byte is below 0x80, and a sequence of ASCII bytes is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// Takes `n` bytes at `*pos` or reports how many are missing.
#[inline]
fn take<'a>(input: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8]> {
    match pos.checked_add(n).and_then(|end| input.get(*pos..end)) {
        Some(bytes) => {
            *pos += n;
            Ok(bytes)
        }
        None => Err(truncated(input, *pos, n)),
    }
}

/// Takes the byte at `*pos`: the compact protocol's headers and varints are read a byte at a
/// time, so this is its hottest path.
#[inline]
fn take_byte(input: &[u8], pos: &mut usize) -> Result<u8> {
    match input.get(*pos) {
        Some(&byte) => {
            *pos += 1;
            Ok(byte)
        }
        None => Err(truncated(input, *pos, 1)),
    }
}

#[cold]
fn truncated(input: &[u8], pos: usize, n: usize) -> DecodeError {
    let needed = n - input.len().saturating_sub(pos);
    DecodeError::new(pos, DecodeErrorKind::Truncated { needed })
}

#[inline]
fn take_array<const N: usize>(input: &[u8], pos: &mut usize) -> Result<[u8; N]> {
    let bytes = take(input, pos, N)?;
    let mut array = [0; N];
    array.copy_from_slice(bytes);
    Ok(array)
}

/// Checks that `count` elements of at least `min` bytes each fit in what remains.
fn check_count(count: i64, min: usize, at: usize, remaining: usize) -> Result<u32> {
    if count < 0 {
        return Err(DecodeError::new(at, DecodeErrorKind::NegativeLength { length: count }));
    }
    let fits = (count as u64).checked_mul(min as u64).is_some_and(|need| need <= remaining as u64);
    if !fits || count > i64::from(i32::MAX) {
        return Err(DecodeError::new(at, DecodeErrorKind::ContainerTooLarge { count: count as u64, remaining }));
    }
    Ok(count as u32)
}

/// Takes a string or binary of `length` bytes (declared at `at`).
fn take_length<'a>(input: &'a [u8], pos: &mut usize, length: i64, at: usize) -> Result<&'a [u8]> {
    if length < 0 {
        return Err(DecodeError::new(at, DecodeErrorKind::NegativeLength { length }));
    }
    let remaining = input.len().saturating_sub(*pos);
    if length as u64 > remaining as u64 {
        return Err(DecodeError::new(at, DecodeErrorKind::LengthPastEnd { length: length as u64, remaining }));
    }
    take(input, pos, length as usize)
}

// ---------------------------------------------------------------------------------------------
// Compact protocol
// ---------------------------------------------------------------------------------------------

const COMPACT_PROTOCOL_ID: u8 = 0x82;
const COMPACT_VERSION: u8 = 1;

/// Reads the Thrift compact protocol.
#[derive(Clone, Copy, Debug)]
pub struct CompactReader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> CompactReader<'a> {
    /// A reader at the start of `input`.
    #[must_use]
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    #[inline]
    fn varint(&mut self, max_bytes: usize) -> Result<u64> {
        // Lengths, field ids and small numbers fit in one byte: no loop for them.
        match self.input.get(self.pos) {
            Some(&byte) if byte & 0x80 == 0 => {
                self.pos += 1;
                Ok(u64::from(byte))
            }
            _ => self.varint_long(max_bytes),
        }
    }

    fn varint_long(&mut self, max_bytes: usize) -> Result<u64> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = take_byte(self.input, &mut self.pos)?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::new(start, DecodeErrorKind::VarintTooLong { max_bytes }))
    }

    #[inline]
    fn zigzag(&mut self, max_bytes: usize) -> Result<i64> {
        let raw = self.varint(max_bytes)?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    /// The type of a compact type id (a nibble), looked up rather than matched: it is read for
    /// every field.
    #[inline]
    fn ttype(&self, id: u8, at: usize) -> Result<TType> {
        const TYPES: [Option<TType>; 16] = [
            None,
            Some(TType::Bool),
            Some(TType::Bool),
            Some(TType::Byte),
            Some(TType::I16),
            Some(TType::I32),
            Some(TType::I64),
            Some(TType::Double),
            Some(TType::Binary),
            Some(TType::List),
            Some(TType::Set),
            Some(TType::Map),
            Some(TType::Struct),
            None,
            None,
            None,
        ];
        TYPES[usize::from(id & 0x0f)].ok_or_else(|| DecodeError::new(at, DecodeErrorKind::BadTypeId { id }))
    }
}

impl<'a> ProtocolReader<'a> for CompactReader<'a> {
    const NAME: &'static str = "compact";

    fn input(&self) -> &'a [u8] {
        self.input
    }

    fn offset(&self) -> usize {
        self.pos
    }

    fn seek(&mut self, offset: usize) {
        self.pos = offset;
    }

    fn min_size(ttype: TType) -> usize {
        match ttype {
            TType::Double => 8,
            _ => 1,
        }
    }

    #[inline]
    fn field_begin(&mut self, last_id: &mut i16) -> Result<Option<FieldHeader>> {
        let at = self.pos;
        let byte = take_byte(self.input, &mut self.pos)?;
        if byte == 0 {
            return Ok(None);
        }
        let ttype = self.ttype(byte & 0x0f, at)?;
        let delta = byte >> 4;
        let id = if delta == 0 {
            let id_at = self.pos;
            let id = self.zigzag(3)?;
            i16::try_from(id).map_err(|_| DecodeError::new(id_at, DecodeErrorKind::VarintTooLong { max_bytes: 3 }))?
        } else {
            last_id.wrapping_add(i16::from(delta))
        };
        *last_id = id;
        let bool_value = match byte & 0x0f {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        };
        Ok(Some(FieldHeader { id, ttype, bool_value }))
    }

    #[inline(always)]
    fn field_is(&mut self, last_id: i16, id: i16, ttype: TType) -> bool {
        let delta = i32::from(id) - i32::from(last_id);
        let usual = (delta as u8) << 4 | CompactWriter::type_id(ttype);
        let matches = (1..=15).contains(&delta) && ttype != TType::Bool && self.input.get(self.pos) == Some(&usual);
        self.pos += usize::from(matches);
        matches
    }

    #[inline(always)]
    fn bool_field_is(&mut self, last_id: i16, id: i16) -> Option<bool> {
        let delta = i32::from(id) - i32::from(last_id);
        if !(1..=15).contains(&delta) {
            return None;
        }
        // The header's type nibble is the value: 1 true, 2 false.
        let value = match self.input.get(self.pos)?.checked_sub((delta as u8) << 4)? {
            1 => true,
            2 => false,
            _ => return None,
        };
        self.pos += 1;
        Some(value)
    }

    #[inline]
    fn read_bool(&mut self) -> Result<bool> {
        let [byte] = take_array::<1>(self.input, &mut self.pos)?;
        // Lists of booleans hold one byte each: 1 is true; 0 and 2 (the field-header false) false.
        Ok(byte == 1)
    }

    fn read_byte(&mut self) -> Result<i8> {
        Ok(take_array::<1>(self.input, &mut self.pos)?[0] as i8)
    }

    fn read_i16(&mut self) -> Result<i16> {
        Ok(self.zigzag(3)? as i16)
    }

    #[inline]
    fn read_i32(&mut self) -> Result<i32> {
        Ok(self.zigzag(5)? as i32)
    }

    #[inline]
    fn read_i64(&mut self) -> Result<i64> {
        self.zigzag(10)
    }

    #[inline]
    fn read_double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(take_array(self.input, &mut self.pos)?))
    }

    #[inline]
    fn read_binary(&mut self) -> Result<&'a [u8]> {
        let at = self.pos;
        let length = self.varint(5)?;
        take_length(self.input, &mut self.pos, length as i64, at)
    }

    fn list_begin(&mut self) -> Result<(TType, u32)> {
        let at = self.pos;
        let [byte] = take_array::<1>(self.input, &mut self.pos)?;
        let element = self.ttype(byte & 0x0f, at)?;
        let count = match byte >> 4 {
            15 => self.varint(5)? as i64,
            short => i64::from(short),
        };
        Ok((element, check_count(count, Self::min_size(element), at, self.remaining())?))
    }

    fn map_begin(&mut self) -> Result<(TType, TType, u32)> {
        let at = self.pos;
        let count = self.varint(5)? as i64;
        if count == 0 {
            return Ok((TType::Byte, TType::Byte, 0));
        }
        let types_at = self.pos;
        let [types] = take_array::<1>(self.input, &mut self.pos)?;
        let key = self.ttype(types >> 4, types_at)?;
        let value = self.ttype(types & 0x0f, types_at)?;
        let min = Self::min_size(key) + Self::min_size(value);
        Ok((key, value, check_count(count, min, at, self.remaining())?))
    }

    fn message_begin(&mut self) -> Result<(&'a [u8], u8, i32)> {
        let at = self.pos;
        let [protocol, version_and_type] = take_array::<2>(self.input, &mut self.pos)?;
        if protocol != COMPACT_PROTOCOL_ID || version_and_type & 0x1f != COMPACT_VERSION {
            return Err(DecodeError::new(at, DecodeErrorKind::BadMessageHeader { protocol: Self::NAME }));
        }
        let sequence = self.varint(5)? as i32;
        let name = self.read_binary()?;
        Ok((name, version_and_type >> 5, sequence))
    }
}

// ---------------------------------------------------------------------------------------------
// Binary protocol
// ---------------------------------------------------------------------------------------------

const BINARY_VERSION_1: u32 = 0x8001_0000;
const BINARY_VERSION_MASK: u32 = 0xffff_0000;

/// Reads the Thrift binary protocol (big-endian, fixed-width).
#[derive(Clone, Copy, Debug)]
pub struct BinaryReader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> BinaryReader<'a> {
    /// A reader at the start of `input`.
    #[must_use]
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    fn ttype(id: u8, at: usize) -> Result<TType> {
        Ok(match id {
            2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::Double,
            6 => TType::I16,
            8 => TType::I32,
            10 => TType::I64,
            11 => TType::Binary,
            12 => TType::Struct,
            13 => TType::Map,
            14 => TType::Set,
            15 => TType::List,
            _ => return Err(DecodeError::new(at, DecodeErrorKind::BadTypeId { id })),
        })
    }
}

impl<'a> ProtocolReader<'a> for BinaryReader<'a> {
    const NAME: &'static str = "binary";

    fn input(&self) -> &'a [u8] {
        self.input
    }

    fn offset(&self) -> usize {
        self.pos
    }

    fn seek(&mut self, offset: usize) {
        self.pos = offset;
    }

    fn min_size(ttype: TType) -> usize {
        match ttype {
            TType::Bool | TType::Byte | TType::Struct => 1,
            TType::I16 => 2,
            TType::I32 | TType::Binary => 4,
            TType::I64 | TType::Double => 8,
            TType::List | TType::Set => 5,
            TType::Map => 6,
        }
    }

    #[inline]
    fn field_begin(&mut self, _last_id: &mut i16) -> Result<Option<FieldHeader>> {
        let at = self.pos;
        let [id] = take_array::<1>(self.input, &mut self.pos)?;
        if id == 0 {
            return Ok(None);
        }
        let ttype = Self::ttype(id, at)?;
        let id = i16::from_be_bytes(take_array(self.input, &mut self.pos)?);
        Ok(Some(FieldHeader { id, ttype, bool_value: None }))
    }

    #[inline(always)]
    fn field_is(&mut self, _last_id: i16, id: i16, ttype: TType) -> bool {
        // Byte by byte: comparing slices would build the expected header on the stack first.
        let [high, low] = id.to_be_bytes();
        let matches = match self.input.get(self.pos..self.pos + 3) {
            Some(&[type_id, id_high, id_low]) => {
                type_id == BinaryWriter::type_id(ttype) && id_high == high && id_low == low
            }
            _ => false,
        };
        self.pos += 3 * usize::from(matches);
        matches
    }

    #[inline(always)]
    fn bool_field_is(&mut self, last_id: i16, id: i16) -> Option<bool> {
        if !self.field_is(last_id, id, TType::Bool) {
            return None;
        }
        self.read_bool().ok()
    }

    #[inline]
    fn read_bool(&mut self) -> Result<bool> {
        Ok(take_array::<1>(self.input, &mut self.pos)?[0] != 0)
    }

    fn read_byte(&mut self) -> Result<i8> {
        Ok(take_array::<1>(self.input, &mut self.pos)?[0] as i8)
    }

    fn read_i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(take_array(self.input, &mut self.pos)?))
    }

    #[inline]
    fn read_i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(take_array(self.input, &mut self.pos)?))
    }

    #[inline]
    fn read_i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(take_array(self.input, &mut self.pos)?))
    }

    #[inline]
    fn read_double(&mut self) -> Result<f64> {
        Ok(f64::from_be_bytes(take_array(self.input, &mut self.pos)?))
    }

    #[inline]
    fn read_binary(&mut self) -> Result<&'a [u8]> {
        let at = self.pos;
        let length = self.read_i32()?;
        take_length(self.input, &mut self.pos, i64::from(length), at)
    }

    fn list_begin(&mut self) -> Result<(TType, u32)> {
        let at = self.pos;
        let [id] = take_array::<1>(self.input, &mut self.pos)?;
        let element = Self::ttype(id, at)?;
        let count = self.read_i32()?;
        Ok((element, check_count(i64::from(count), Self::min_size(element), at, self.remaining())?))
    }

    fn map_begin(&mut self) -> Result<(TType, TType, u32)> {
        let at = self.pos;
        let [key, value] = take_array::<2>(self.input, &mut self.pos)?;
        let key = Self::ttype(key, at)?;
        let value = Self::ttype(value, at + 1)?;
        let count = self.read_i32()?;
        let min = Self::min_size(key) + Self::min_size(value);
        Ok((key, value, check_count(i64::from(count), min, at, self.remaining())?))
    }

    /// Strict headers (`0x8001_00tt`, name, sequence id) and the old non-strict ones (name,
    /// type byte, sequence id), told apart by the sign of the first word as every Thrift
    /// library does.
    fn message_begin(&mut self) -> Result<(&'a [u8], u8, i32)> {
        let at = self.pos;
        let first = self.read_i32()?;
        if first < 0 {
            let word = first as u32;
            if word & BINARY_VERSION_MASK != BINARY_VERSION_1 {
                return Err(DecodeError::new(at, DecodeErrorKind::BadMessageHeader { protocol: Self::NAME }));
            }
            let name = self.read_binary()?;
            let sequence = self.read_i32()?;
            Ok((name, (word & 0xff) as u8, sequence))
        } else {
            self.pos = at;
            let name = self.read_binary()?;
            let [kind] = take_array::<1>(self.input, &mut self.pos)?;
            let sequence = self.read_i32()?;
            Ok((name, kind, sequence))
        }
    }
}

/// Reads a message header and checks it is `emitBatch` as a call or oneway message.
pub fn expect_emit_batch<'a, R: ProtocolReader<'a>>(reader: &mut R) -> Result<()> {
    let at = reader.offset();
    let (name, kind, _sequence) = reader.message_begin()?;
    if name != b"emitBatch" {
        let name = String::from_utf8_lossy(name).into_owned();
        return Err(DecodeError::new(at, DecodeErrorKind::WrongMessageName { name }));
    }
    if MessageType::from_id(kind).is_none() {
        return Err(DecodeError::new(at, DecodeErrorKind::WrongMessageType { kind }));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------------------------

/// The primitives both protocols write; fields are written with their id, structs are closed
/// with [`ProtocolWriter::struct_end`].
pub trait ProtocolWriter: Sized {
    /// A writer appending to `buf`.
    fn with_buf(buf: Vec<u8>) -> Self;
    /// The bytes written.
    fn into_buf(self) -> Vec<u8>;
    /// How many bytes a list header for `count` elements takes.
    fn list_header_len(count: u32) -> usize;
    /// Appends bytes that are already encoded (a whole struct).
    fn raw(&mut self, bytes: &[u8]);
    fn message_begin(&mut self, name: &str, kind: MessageType, sequence: i32);
    /// Starts a struct (compact: resets the field-id delta base).
    fn struct_begin(&mut self);
    /// Writes the stop byte and ends the struct.
    fn struct_end(&mut self);
    fn field_header(&mut self, id: i16, ttype: TType);
    fn field_bool(&mut self, id: i16, value: bool);
    fn write_i32(&mut self, value: i32);
    fn write_i64(&mut self, value: i64);
    fn write_double(&mut self, value: f64);
    fn write_binary(&mut self, value: &[u8]);
    fn list_begin(&mut self, element: TType, count: u32);

    fn field_i32(&mut self, id: i16, value: i32) {
        self.field_header(id, TType::I32);
        self.write_i32(value);
    }

    fn field_i64(&mut self, id: i16, value: i64) {
        self.field_header(id, TType::I64);
        self.write_i64(value);
    }

    fn field_double(&mut self, id: i16, value: f64) {
        self.field_header(id, TType::Double);
        self.write_double(value);
    }

    fn field_binary(&mut self, id: i16, value: &[u8]) {
        self.field_header(id, TType::Binary);
        self.write_binary(value);
    }

    fn field_list(&mut self, id: i16, element: TType, count: u32) {
        self.field_header(id, TType::List);
        self.list_begin(element, count);
    }
}

/// Writes the compact protocol.
#[derive(Debug, Default)]
pub struct CompactWriter {
    buf: Vec<u8>,
    last_id: i16,
    /// The enclosing structs' last field ids.
    stack: Vec<i16>,
}

impl CompactWriter {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    #[inline]
    fn zigzag(&mut self, value: i64) {
        self.varint(((value << 1) ^ (value >> 63)) as u64);
    }

    fn type_id(ttype: TType) -> u8 {
        match ttype {
            TType::Bool => 1,
            TType::Byte => 3,
            TType::I16 => 4,
            TType::I32 => 5,
            TType::I64 => 6,
            TType::Double => 7,
            TType::Binary => 8,
            TType::List => 9,
            TType::Set => 10,
            TType::Map => 11,
            TType::Struct => 12,
        }
    }

    fn header(&mut self, id: i16, type_id: u8) {
        let delta = i32::from(id) - i32::from(self.last_id);
        if (1..=15).contains(&delta) {
            self.buf.push((delta as u8) << 4 | type_id);
        } else {
            self.buf.push(type_id);
            self.zigzag(i64::from(id));
        }
        self.last_id = id;
    }
}

impl ProtocolWriter for CompactWriter {
    fn with_buf(buf: Vec<u8>) -> Self {
        Self { buf, last_id: 0, stack: Vec::new() }
    }

    fn into_buf(self) -> Vec<u8> {
        self.buf
    }

    fn list_header_len(count: u32) -> usize {
        if count < 15 {
            1
        } else {
            1 + (32 - count.leading_zeros() as usize).div_ceil(7)
        }
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn message_begin(&mut self, name: &str, kind: MessageType, sequence: i32) {
        self.buf.push(COMPACT_PROTOCOL_ID);
        self.buf.push(kind.id() << 5 | COMPACT_VERSION);
        self.varint(u64::from(sequence as u32));
        self.write_binary(name.as_bytes());
    }

    fn struct_begin(&mut self) {
        self.stack.push(self.last_id);
        self.last_id = 0;
    }

    fn struct_end(&mut self) {
        self.buf.push(0);
        self.last_id = self.stack.pop().unwrap_or_default();
    }

    fn field_header(&mut self, id: i16, ttype: TType) {
        self.header(id, Self::type_id(ttype));
    }

    fn field_bool(&mut self, id: i16, value: bool) {
        self.header(id, if value { 1 } else { 2 });
    }

    fn write_i32(&mut self, value: i32) {
        self.zigzag(i64::from(value));
    }

    fn write_i64(&mut self, value: i64) {
        self.zigzag(value);
    }

    fn write_double(&mut self, value: f64) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    fn write_binary(&mut self, value: &[u8]) {
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    fn list_begin(&mut self, element: TType, count: u32) {
        let element = Self::type_id(element);
        if count < 15 {
            self.buf.push((count as u8) << 4 | element);
        } else {
            self.buf.push(0xf0 | element);
            self.varint(u64::from(count));
        }
    }
}

/// Writes the binary protocol (strict message headers).
#[derive(Debug, Default)]
pub struct BinaryWriter {
    buf: Vec<u8>,
}

impl BinaryWriter {
    fn type_id(ttype: TType) -> u8 {
        match ttype {
            TType::Bool => 2,
            TType::Byte => 3,
            TType::Double => 4,
            TType::I16 => 6,
            TType::I32 => 8,
            TType::I64 => 10,
            TType::Binary => 11,
            TType::Struct => 12,
            TType::Map => 13,
            TType::Set => 14,
            TType::List => 15,
        }
    }
}

impl ProtocolWriter for BinaryWriter {
    fn with_buf(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    fn into_buf(self) -> Vec<u8> {
        self.buf
    }

    fn list_header_len(_count: u32) -> usize {
        5
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn message_begin(&mut self, name: &str, kind: MessageType, sequence: i32) {
        self.write_i32((BINARY_VERSION_1 | u32::from(kind.id())) as i32);
        self.write_binary(name.as_bytes());
        self.write_i32(sequence);
    }

    fn struct_begin(&mut self) {}

    fn struct_end(&mut self) {
        self.buf.push(0);
    }

    fn field_header(&mut self, id: i16, ttype: TType) {
        self.buf.push(Self::type_id(ttype));
        self.buf.extend_from_slice(&id.to_be_bytes());
    }

    fn field_bool(&mut self, id: i16, value: bool) {
        self.field_header(id, TType::Bool);
        self.buf.push(u8::from(value));
    }

    fn write_i32(&mut self, value: i32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    fn write_i64(&mut self, value: i64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    fn write_double(&mut self, value: f64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    fn write_binary(&mut self, value: &[u8]) {
        self.write_i32(value.len() as i32);
        self.buf.extend_from_slice(value);
    }

    fn list_begin(&mut self, element: TType, count: u32) {
        self.buf.push(Self::type_id(element));
        self.write_i32(count as i32);
    }
}
