//! What the `msgpack` fuzz target checks.
//!
//! For an accepted input: the batch's bytes pass the index scan again with the same index, the
//! lazy views read every field, and a MessagePack round trip keeps every span with its indexed
//! fields and the whole request as protobuf (compared as prost re-encodes it, as for OTLP/JSON:
//! an arbitrary body may repeat fields that the encoder writes once). Our encoding is a fixed
//! point after one round.

/// The `msgpack` target: arbitrary bytes as an OTLP MessagePack request.
pub fn msgpack(data: &[u8]) {
    let Ok(batch) = spanpipe_msgpack::decode(data) else { return };
    super::check_written(&batch);
    let mut body = Vec::new();
    spanpipe_msgpack::encode(&batch, &mut body);
    let again = spanpipe_msgpack::decode(&body).expect("our own MessagePack decodes");
    super::assert_same_spans(&batch, &again, "msgpack -> batch -> msgpack -> batch");
    assert_eq!(
        super::canonical_protobuf(&batch),
        super::canonical_protobuf(&again),
        "a MessagePack round trip changes the request"
    );
    // Keys in field-number order: decoding our own output writes what prost would.
    let mut body_again = Vec::new();
    spanpipe_msgpack::encode(&again, &mut body_again);
    assert_eq!(body, body_again, "MessagePack encoding is not a fixed point");
}
