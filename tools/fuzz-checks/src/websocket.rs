//! What the `websocket` fuzz target checks: the WebSocket receiver's envelope parser and a whole
//! session, on the same arbitrary bytes.
//!
//! - As one message (binary and text): taking it apart never panics; what is taken apart puts
//!   back together into a message that reads the same; an acknowledgement for its sequence
//!   number, success or error with any message, is JSON that parses back to itself.
//! - As a client's byte stream after a completed handshake (the receiver's own session, over an
//!   in-memory connection, into a pipeline that takes everything): the session ends without a
//!   panic, and everything the server sent is a well-formed sequence of unmasked, unfragmented
//!   frames — acknowledgements (text, each a JSON [`Ack`]), pongs, pings, and at most one close
//!   frame, last, with a code the protocol documents (or the client's own, echoed) and a reason
//!   that fits.

use bytes::Bytes;
use spanpipe_transports::websocket::fuzzing::serve_client_bytes;
use spanpipe_transports::websocket::{Ack, AckErrorCode, Envelope, MAX_ACK_MESSAGE_LEN, MAX_CLOSE_REASON_LEN};

/// The close codes the receiver documents.
const CLOSE_CODES: [u16; 6] = [1001, 1002, 1007, 1008, 1009, 1013];

/// A code a client may close with, which the server echoes in its reply (RFC 6455 §7.4).
fn echoed_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The `websocket` target.
pub fn websocket(data: &[u8]) {
    envelope_round_trips(data);
    session_answers_are_well_formed(data);
}

fn envelope_round_trips(data: &[u8]) {
    if let Ok(envelope) = Envelope::from_binary(Bytes::copy_from_slice(data)) {
        assert_eq!(Envelope::binary_message(envelope.seq, &envelope.payload), data, "binary envelope round trip");
        ack_round_trips(envelope.seq, data);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Envelope::from_text(Bytes::copy_from_slice(data)) {
        Ok(envelope) => {
            let payload = std::str::from_utf8(&envelope.payload).expect("a slice after the ASCII prefix is UTF-8");
            let again = Envelope::from_text(Bytes::from(Envelope::text_message(envelope.seq, payload))).unwrap();
            assert_eq!((again.seq, &again.payload), (envelope.seq, &envelope.payload), "text envelope round trip");
            ack_round_trips(envelope.seq, data);
        }
        Err(error) => assert!(!error.to_string().is_empty(), "{text:?}: an error says what is wrong"),
    }
}

fn ack_round_trips(seq: u64, data: &[u8]) {
    let message = String::from_utf8_lossy(data);
    let acks = [
        Ack::accepted(seq, data.len() as u64, u64::from(data.first().copied().unwrap_or(0)), Some(&message)),
        Ack::failed(seq, AckErrorCode::InvalidArgument, &message, None),
        Ack::failed(seq, AckErrorCode::ResourceExhausted, &message, Some(std::time::Duration::from_millis(seq))),
    ];
    for ack in acks {
        let parsed: Ack = serde_json::from_str(&ack.to_json()).expect("an acknowledgement is JSON");
        assert_eq!(parsed, ack, "acknowledgement round trip");
        assert_eq!(parsed.seq(), seq);
        let text = match &parsed {
            Ack::Accepted { message, .. } => message.as_deref().unwrap_or_default(),
            Ack::Failed { error, .. } => &error.message,
        };
        assert!(text.len() <= MAX_ACK_MESSAGE_LEN, "acknowledgement messages are bounded");
    }
}

fn session_answers_are_well_formed(data: &[u8]) {
    let sent = serve_client_bytes(data);
    let mut rest = &sent[..];
    let mut closed = false;
    while !rest.is_empty() {
        assert!(!closed, "nothing follows the close frame");
        assert!(rest.len() >= 2, "a frame header is whole");
        let (first, second) = (rest[0], rest[1]);
        assert_eq!(first & 0xf0, 0x80, "server frames are final, without reserved bits");
        assert_eq!(second & 0x80, 0, "server frames are not masked");
        let header = match second & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        assert!(rest.len() >= header, "a frame header is whole");
        let len = match header {
            4 => usize::from(u16::from_be_bytes([rest[2], rest[3]])),
            10 => usize::try_from(u64::from_be_bytes(rest[2..10].try_into().expect("8 bytes")))
                .expect("a length that fits"),
            _ => usize::from(second & 0x7f),
        };
        assert!(rest.len() >= header + len, "a frame is whole");
        let payload = &rest[header..header + len];
        match first & 0x0f {
            0x1 => {
                let ack: Ack = serde_json::from_slice(payload).expect("text frames are acknowledgements");
                assert_eq!(serde_json::from_str::<Ack>(&ack.to_json()).expect("re-encoded"), ack);
            }
            0x9 | 0xa => assert!(len <= 125, "control frames are short"),
            0x8 => {
                closed = true;
                if !payload.is_empty() {
                    assert!(payload.len() >= 2, "a close code has two bytes");
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    assert!(
                        CLOSE_CODES.contains(&code) || echoed_close_code(code),
                        "close code {code} is documented or the client's own"
                    );
                    let reason = std::str::from_utf8(&payload[2..]).expect("close reasons are UTF-8");
                    assert!(reason.len() <= MAX_CLOSE_REASON_LEN);
                }
            }
            opcode => panic!("the server sent opcode {opcode:#x}"),
        }
        rest = &rest[header + len..];
    }
}
