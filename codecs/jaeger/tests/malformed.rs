//! Malformed datagrams and bodies: each is refused with the exact error kind and byte offset,
//! and nothing (truncation at every byte, corruption of every byte) makes the decoder panic.

use spanpipe_jaeger::thrift::{BinaryWriter, CompactWriter, MessageType, ProtocolWriter, TType};
use spanpipe_jaeger::{decode_agent, decode_batch, DecodeError, DecodeErrorKind, Protocol, MAX_DEPTH};

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Bytes written with spanpipe's own writer, for shapes Apache Thrift would refuse to write.
fn written<W: ProtocolWriter>(body: impl FnOnce(&mut W)) -> Vec<u8> {
    let mut w = W::with_buf(Vec::new());
    body(&mut w);
    w.into_buf()
}

/// An `emitBatch` header and the start of its args struct.
fn emit_batch<W: ProtocolWriter>(w: &mut W) {
    w.message_begin("emitBatch", MessageType::Oneway, 0);
    w.struct_begin();
}

/// `emitBatch` whose batch has a process and holds `span` as its only span.
fn with_span<W: ProtocolWriter>(span: impl FnOnce(&mut W)) -> Vec<u8> {
    written(|w: &mut W| {
        emit_batch(w);
        w.field_header(1, TType::Struct);
        w.struct_begin();
        w.field_header(1, TType::Struct);
        w.struct_begin();
        w.field_binary(1, b"svc");
        w.struct_end();
        w.field_list(2, TType::Struct, 1);
        w.struct_begin();
        span(w);
        w.struct_end();
        w.struct_end();
        w.struct_end();
    })
}

const COMPACT_HEADER: usize = 13; // 0x82, type/version, sequence id, "emitBatch" with its length
const BINARY_HEADER: usize = 21; // version word, "emitBatch" with its length, sequence id

fn err(protocol: Protocol, input: &[u8]) -> DecodeError {
    match decode_agent(protocol, input) {
        Ok(batch) => panic!("accepted {} spans from {input:02x?}", batch.len()),
        Err(error) => error,
    }
}

#[test]
fn malformed_table() {
    use DecodeErrorKind as K;
    let compact_header = written(|w: &mut CompactWriter| emit_batch(w));
    let mut deep = compact_header.clone();
    deep.push(0x29); // field 2, a list
    deep.extend(std::iter::repeat_n(0x19, 100)); // a list of one list, a hundred times
    let missing_span_id = with_span(|w: &mut CompactWriter| {
        w.field_i64(1, 7);
        w.field_binary(5, b"op");
    });
    let missing_tag_type = with_span(|w: &mut CompactWriter| {
        w.field_i64(1, 7);
        w.field_i64(3, 8);
        w.field_list(10, TType::Struct, 1);
        w.struct_begin();
        w.field_binary(1, b"key");
        w.struct_end();
    });
    let bad_utf8 = with_span(|w: &mut BinaryWriter| {
        w.field_i64(1, 7);
        w.field_i64(3, 8);
        w.field_binary(5, b"\xff\xfe");
    });
    let spans_of_i32 = written(|w: &mut BinaryWriter| {
        emit_batch(w);
        w.field_header(1, TType::Struct);
        w.struct_begin();
        w.field_list(2, TType::I32, 1);
        w.write_i32(5);
        w.struct_end();
        w.struct_end();
    });
    let mut too_long_varint = with_span(|w: &mut CompactWriter| w.field_header(1, TType::I64));
    let at = too_long_varint.len() - 3; // the span's and the batch's and the args' stop bytes
    too_long_varint.splice(at..at, [0xff; 11]);
    let mut trailing = vector("agent_compact_minimal.bin");
    trailing.push(0);

    // (what, protocol, input, offset, kind)
    let table: Vec<(&str, Protocol, Vec<u8>, usize, DecodeErrorKind)> = vec![
        ("empty datagram", Protocol::Compact, vec![], 0, K::Truncated { needed: 2 }),
        ("not compact", Protocol::Compact, vec![0x80, 0x81, 0, 0], 0, K::BadMessageHeader { protocol: "compact" }),
        (
            "binary version 2",
            Protocol::Binary,
            vec![0x80, 0x02, 0, 4, 0, 0, 0, 0],
            0,
            K::BadMessageHeader { protocol: "binary" },
        ),
        (
            "emitZipkinBatch",
            Protocol::Compact,
            written(|w: &mut CompactWriter| w.message_begin("emitZipkinBatch", MessageType::Oneway, 0)),
            0,
            K::WrongMessageName { name: "emitZipkinBatch".into() },
        ),
        (
            "reply message",
            Protocol::Compact,
            {
                let mut reply = compact_header.clone();
                reply[1] = 2 << 5 | 1;
                reply
            },
            0,
            K::WrongMessageType { kind: 2 },
        ),
        (
            "unknown compact type id 13",
            Protocol::Compact,
            {
                let mut bad = compact_header.clone();
                bad.push(0x1d);
                bad
            },
            COMPACT_HEADER,
            K::BadTypeId { id: 13 },
        ),
        (
            "no batch argument",
            Protocol::Compact,
            {
                let mut empty = compact_header.clone();
                empty.push(0);
                empty
            },
            COMPACT_HEADER,
            K::MissingField { field: "emitBatch_args.batch" },
        ),
        (
            "string past the end",
            Protocol::Compact,
            {
                let mut short = compact_header.clone();
                short.extend([0x1c, 0x1c, 0x18, 100, b'a']);
                short
            },
            COMPACT_HEADER + 3,
            K::LengthPastEnd { length: 100, remaining: 1 },
        ),
        (
            "negative string length",
            Protocol::Binary,
            {
                let mut negative = written(|w: &mut BinaryWriter| {
                    emit_batch(w);
                    w.field_header(1, TType::Struct);
                    w.field_header(1, TType::Struct);
                    w.field_header(1, TType::Binary);
                });
                negative.extend((-1i32).to_be_bytes());
                negative
            },
            BINARY_HEADER + 9,
            K::NegativeLength { length: -1 },
        ),
        (
            "two billion spans in a few bytes",
            Protocol::Binary,
            {
                let mut huge = written(|w: &mut BinaryWriter| {
                    emit_batch(w);
                    w.field_header(1, TType::Struct);
                    w.field_header(2, TType::List);
                });
                huge.push(12);
                huge.extend(i32::MAX.to_be_bytes());
                huge
            },
            BINARY_HEADER + 6,
            K::ContainerTooLarge { count: i32::MAX as u64, remaining: 0 },
        ),
        (
            "negative list size",
            Protocol::Binary,
            {
                let mut negative = written(|w: &mut BinaryWriter| {
                    emit_batch(w);
                    w.field_header(1, TType::Struct);
                    w.field_header(2, TType::List);
                });
                negative.push(12);
                negative.extend((-5i32).to_be_bytes());
                negative
            },
            BINARY_HEADER + 6,
            K::NegativeLength { length: -5 },
        ),
        (
            "lists nested a hundred deep",
            Protocol::Compact,
            deep,
            COMPACT_HEADER + MAX_DEPTH,
            K::DepthLimit { limit: MAX_DEPTH },
        ),
        (
            "span without spanId",
            Protocol::Compact,
            missing_span_id,
            COMPACT_HEADER + 10,
            K::MissingField { field: "Span.spanId" },
        ),
        (
            "tag without vType",
            Protocol::Compact,
            missing_tag_type,
            COMPACT_HEADER + 16,
            K::MissingField { field: "Tag.vType" },
        ),
        (
            "operationName not UTF-8",
            Protocol::Binary,
            bad_utf8,
            BINARY_HEADER + 50,
            K::InvalidUtf8 { field: "Span.operationName" },
        ),
        (
            "spans list of i32",
            Protocol::Binary,
            spans_of_i32,
            BINARY_HEADER + 6,
            K::WrongElementType { field: "Batch.spans", expected: TType::Struct, found: TType::I32 },
        ),
        ("eleven-byte varint", Protocol::Compact, too_long_varint, at, K::VarintTooLong { max_bytes: 10 }),
        (
            "bytes after the message",
            Protocol::Compact,
            trailing.clone(),
            trailing.len() - 1,
            K::TrailingBytes { count: 1 },
        ),
    ];
    for (what, protocol, input, offset, kind) in table {
        assert_eq!(err(protocol, &input), DecodeError { offset, kind }, "{what}: {input:02x?}");
    }
}

type Decode = fn(&[u8]) -> Result<spanpipe_core::SpanBatch, DecodeError>;

#[test]
fn truncated_at_every_byte_is_an_error_within_bounds() {
    let cases: [(&str, Decode); 6] = [
        ("agent_compact_full.bin", |b| decode_agent(Protocol::Compact, b)),
        ("agent_compact_minimal.bin", |b| decode_agent(Protocol::Compact, b)),
        ("agent_binary_full.bin", |b| decode_agent(Protocol::Binary, b)),
        ("agent_binary_minimal.bin", |b| decode_agent(Protocol::Binary, b)),
        ("agent_binary_minimal_non_strict_call.bin", |b| decode_agent(Protocol::Binary, b)),
        ("http_binary.bin", |b| decode_batch(Protocol::Binary, b)),
    ];
    for (name, decode) in cases {
        let whole = vector(name);
        assert!(decode(&whole).is_ok(), "{name}");
        for end in 0..whole.len() {
            let error = decode(&whole[..end]).expect_err(name);
            assert!(error.offset <= end, "{name}[..{end}]: {error}");
            assert!(
                matches!(
                    error.kind,
                    DecodeErrorKind::Truncated { .. }
                        | DecodeErrorKind::LengthPastEnd { .. }
                        | DecodeErrorKind::ContainerTooLarge { .. }
                ),
                "{name}[..{end}]: {error}"
            );
        }
    }
}

#[test]
fn corrupting_any_byte_never_panics_and_accepted_input_reads_whole() {
    for (name, protocol) in [("agent_compact_full.bin", Protocol::Compact), ("agent_binary_full.bin", Protocol::Binary)]
    {
        let whole = vector(name);
        for at in 0..whole.len() {
            for value in [0x00, 0x01, 0x0f, 0x7f, 0x80, 0xff] {
                let mut corrupt = whole.clone();
                corrupt[at] = value;
                if let Ok(batch) = decode_agent(protocol, &corrupt) {
                    for span in batch.spans() {
                        let details = span.details();
                        assert!(
                            details.attributes().count() + details.events().count() + details.links().count() < 1000
                        );
                    }
                }
            }
        }
    }
}
