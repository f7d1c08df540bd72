//! Typed errors: what is wrong and at which byte.

use crate::thrift::TType;

/// Why a Thrift or protobuf payload could not be decoded: what is wrong and the byte offset (from the start
/// of the datagram or body) where it was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {kind}")]
pub struct DecodeError {
    /// Offset of the first byte of the value that could not be read.
    pub offset: usize,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

/// What is wrong with a Thrift or protobuf payload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ends inside a value: `needed` more bytes were expected than remain.
    #[error("truncated: {needed} more bytes needed")]
    Truncated {
        /// Bytes that were missing.
        needed: usize,
    },
    /// A type id that the protocol does not define (or `stop` where a value was expected).
    #[error("unknown type id {id}")]
    BadTypeId {
        /// The id as it appears on the wire.
        id: u8,
    },
    /// A string, binary or container whose declared length is negative.
    #[error("negative length {length}")]
    NegativeLength {
        /// The declared length.
        length: i64,
    },
    /// A string or binary whose declared length goes past the end of the input.
    #[error("length {length} goes past the end ({remaining} bytes remain)")]
    LengthPastEnd {
        /// The declared length.
        length: u64,
        /// Bytes left after the length prefix.
        remaining: usize,
    },
    /// A container with more elements than the remaining bytes could hold.
    #[error("container of {count} elements cannot fit in the {remaining} bytes that remain")]
    ContainerTooLarge {
        /// The declared element count.
        count: u64,
        /// Bytes left after the container header.
        remaining: usize,
    },
    /// Structures or containers nested deeper than [`crate::MAX_DEPTH`].
    #[error("nested deeper than {limit} levels")]
    DepthLimit {
        /// The limit.
        limit: usize,
    },
    /// A compact-protocol varint longer than its type allows.
    #[error("varint longer than {max_bytes} bytes")]
    VarintTooLong {
        /// The longest varint the value's type allows.
        max_bytes: usize,
    },
    /// A string that is not UTF-8.
    #[error("string field `{field}` is not valid UTF-8")]
    InvalidUtf8 {
        /// The field, as `Struct.field`.
        field: &'static str,
    },
    /// A message header of another protocol, version, or a non-message.
    #[error("not a {protocol} protocol message header")]
    BadMessageHeader {
        /// The protocol expected.
        protocol: &'static str,
    },
    /// A message other than `emitBatch`.
    #[error("message `{name}` is not `emitBatch`")]
    WrongMessageName {
        /// The name sent (lossily decoded).
        name: String,
    },
    /// A message type other than call (1) or oneway (4).
    #[error("message type {kind} is not call (1) or oneway (4)")]
    WrongMessageType {
        /// The type sent.
        kind: u8,
    },
    /// A list whose elements are not of the type the IDL declares.
    #[error("list `{field}` holds {found} elements, expected {expected}")]
    WrongElementType {
        /// The field, as `Struct.field`.
        field: &'static str,
        /// The IDL's element type.
        expected: TType,
        /// The type on the wire.
        found: TType,
    },
    /// A required field without which the data means nothing.
    #[error("required field `{field}` is missing")]
    MissingField {
        /// The field, as `Struct.field`.
        field: &'static str,
    },
    /// The canonical batch's scan refused what the decoder wrote (never expected: the decoder
    /// writes ids of their exact lengths and only flat values).
    #[error("the canonical batch scan refused the decoded spans: {0}")]
    CanonicalScan(String),
    /// Bytes after the end of the message or struct.
    /// A protobuf message breaks the wire format.
    #[error("{fault}")]
    Wire {
        /// What is wrong.
        fault: spanpipe_core::wire::WireFault,
    },
    /// A protobuf field came with another wire type than the schema gives it.
    #[error("field `{field}` has wire type {found}, expected {expected}")]
    WireType {
        /// The field, as `Message.field`.
        field: &'static str,
        /// The wire type found.
        found: spanpipe_core::WireType,
        /// The schema's.
        expected: spanpipe_core::WireType,
    },
    /// A protobuf id field of the wrong length.
    #[error("`{field}` is {found} bytes long; an id of this kind is {expected} bytes")]
    IdLength {
        /// The field, as `Message.field`.
        field: &'static str,
        /// Its length.
        found: usize,
        /// The length it must have.
        expected: usize,
    },
    /// A protobuf `Timestamp` or `Duration` outside the range its type allows.
    #[error("`{field}` ({seconds} s, {nanos} ns) is outside the range its type allows")]
    TimeOutOfRange {
        /// The field, as `Message.field`.
        field: &'static str,
        /// Its seconds.
        seconds: i64,
        /// Its nanoseconds.
        nanos: i64,
    },
    #[error("{count} bytes after the end of the payload")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

impl DecodeError {
    pub(crate) fn new(offset: usize, kind: DecodeErrorKind) -> Self {
        Self { offset, kind }
    }
}

/// Why a batch could not be encoded as Jaeger Thrift.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A Jaeger `Batch` has one `Process`: a body can carry only one resource.
    #[error(
        "a Jaeger batch holds one process, this batch has {resources} resources: \
         use `encode_per_resource` or `split_into_datagrams`"
    )]
    SeveralResources {
        /// How many resources the batch has.
        resources: usize,
    },
    /// The batch holds no resource at all.
    #[error("the batch holds no resource to encode")]
    NoResource,
    /// One span alone does not fit in a datagram of the requested size.
    #[error("span {span} needs a {size}-byte datagram, more than the limit of {limit} bytes")]
    SpanTooLarge {
        /// Position of the span in the batch.
        span: usize,
        /// Size of the smallest datagram holding it.
        size: usize,
        /// The limit asked for.
        limit: usize,
    },
    /// A list with more elements than Thrift's `i32` sizes allow.
    #[error("{what} has {count} elements, more than Thrift's i32 list size allows")]
    ListTooLong {
        /// What the list holds.
        what: &'static str,
        /// How many elements.
        count: usize,
    },
}
