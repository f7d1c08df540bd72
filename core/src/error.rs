//! Errors of the index scan: what is wrong, in which field, at which byte of the request.

use crate::wire::{WireFault, WireType};

/// Why an OTLP payload was refused. Always carries the byte offset and the field where the scan
/// stopped, so a client (or the person reading the log) can find the fault in the request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset} in {field}")]
pub struct ScanError {
    /// What is wrong.
    pub kind: ScanErrorKind,
    /// Absolute byte offset into the request where the faulty item starts.
    pub offset: usize,
    /// The protobuf field being read, as `Message.field` (e.g. `Span.trace_id`).
    pub field: &'static str,
}

/// The kinds of structural fault the scan detects. Match on these, never on the message text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanErrorKind {
    /// The payload ends in the middle of a tag, varint or fixed-width value.
    #[error("payload truncated")]
    Truncated,
    /// A varint runs past ten bytes or past 64 bits.
    #[error("varint longer than 64 bits")]
    VarintOverflow,
    /// A tag with field number 0 or one that does not fit in 32 bits.
    #[error("invalid field tag")]
    InvalidTag,
    /// Wire types 6 and 7 do not exist; groups (3 and 4) are not used by OTLP.
    #[error("unsupported wire type {0}")]
    UnsupportedWireType(u8),
    /// A known field arrived with a wire type its schema does not allow.
    #[error("wrong wire type: expected {expected}, found {found}")]
    WrongWireType {
        /// What the schema says.
        expected: WireType,
        /// What the payload has.
        found: WireType,
    },
    /// A length prefix points beyond the end of the enclosing message.
    #[error("length {length} exceeds the {remaining} bytes left in the enclosing message")]
    LengthPastEnd {
        /// The declared length.
        length: u64,
        /// Bytes actually left.
        remaining: usize,
    },
    /// Trace ids must be 16 bytes and span ids 8 (parent span ids 8 or absent).
    #[error("id is {found} bytes long, expected {expected}")]
    InvalidIdLength {
        /// 16 for trace ids, 8 for span ids.
        expected: usize,
        /// What the payload has.
        found: usize,
    },
    /// A protobuf `string` field that is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// Attribute values nest arrays and key-value lists deeper than the limit.
    #[error("attribute values nested deeper than {limit} levels")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
    /// A singular message field (a ResourceSpans' resource, a ScopeSpans' scope) appears twice;
    /// re-framing copies one of them, so a request relying on protobuf's merge rule is refused
    /// rather than altered.
    #[error("field appears more than once")]
    DuplicateField,
    /// The request holds no spans at all. Receivers answer this with success and zero accepted
    /// spans, as the OTLP specification asks; it is an error here so that no caller mistakes it
    /// for a batch worth routing.
    #[error("request contains no spans")]
    Empty,
    /// Batches address their bytes with 32-bit offsets.
    #[error("payload of {0} bytes exceeds the 4 GiB batch limit")]
    TooLarge(usize),
}

impl ScanError {
    pub(crate) fn new(kind: ScanErrorKind, offset: usize, field: &'static str) -> Self {
        Self { kind, offset, field }
    }

    pub(crate) fn from_wire((fault, offset): (WireFault, usize), field: &'static str) -> Self {
        let kind = match fault {
            WireFault::Truncated => ScanErrorKind::Truncated,
            WireFault::VarintOverflow => ScanErrorKind::VarintOverflow,
            WireFault::InvalidTag => ScanErrorKind::InvalidTag,
            WireFault::UnsupportedWireType(bits) => ScanErrorKind::UnsupportedWireType(bits),
            WireFault::LengthPastEnd { length, remaining } => ScanErrorKind::LengthPastEnd { length, remaining },
        };
        Self::new(kind, offset, field)
    }
}
