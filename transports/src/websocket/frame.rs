//! The protocol on top of WebSocket messages, as code: the sequence-number envelope of each
//! message and the acknowledgements that answer them (specified in the module docs of
//! [`crate::websocket`]). Pure functions, no IO, shared by the receiver, clients (spangen, the
//! tests) and the fuzz checks.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Length of a binary message's sequence number: 8 bytes, big-endian.
pub const SEQUENCE_LEN: usize = 8;

/// Most digits of a text message's sequence number (`u64::MAX` has 20).
pub const MAX_SEQUENCE_DIGITS: usize = 20;

/// Longest `message` an acknowledgement carries, in bytes; longer ones are cut at a character
/// boundary, so an acknowledgement stays small whatever a codec or the pipeline says.
pub const MAX_ACK_MESSAGE_LEN: usize = 1024;

/// Longest reason a close frame can carry (RFC 6455 §5.5: control frames carry at most 125 bytes,
/// two of which are the code).
pub const MAX_CLOSE_REASON_LEN: usize = 123;

/// How a message's payload is encoded: the WebSocket message type decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PayloadEncoding {
    /// A binary message: an OTLP protobuf `ExportTraceServiceRequest`.
    Protobuf,
    /// A text message: an OTLP/JSON `ExportTraceServiceRequest`.
    Json,
}

/// A message taken apart: the client's sequence number and the OTLP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The client's sequence number, echoed in the acknowledgement.
    pub seq: u64,
    /// The payload's encoding.
    pub encoding: PayloadEncoding,
    /// The OTLP request (a slice of the message, not a copy).
    pub payload: Bytes,
}

/// Why a message could not be taken apart. Without a sequence number there is nothing to
/// acknowledge, so the receiver closes the connection with code 1007 and this as the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// A binary message shorter than its sequence number.
    #[error("binary message of {len} bytes is shorter than its 8-byte sequence number")]
    ShortBinary {
        /// The message's length.
        len: usize,
    },
    /// A text message that does not start with digits and a line feed.
    #[error("text message must start with a decimal sequence number and a line feed; byte {offset} is {found}")]
    TextSequence {
        /// Offset of the offending byte.
        offset: usize,
        /// What is there (`'x'`, `0x0d`, or `the end`).
        found: String,
    },
    /// A sequence number above `u64::MAX`.
    #[error("the sequence number at the start of the text message exceeds 18446744073709551615")]
    SequenceOverflow,
}

impl Envelope {
    /// Takes a binary message apart: 8-byte big-endian sequence number, then the protobuf.
    ///
    /// # Errors
    /// [`EnvelopeError::ShortBinary`] when the message has fewer than 8 bytes.
    pub fn from_binary(message: Bytes) -> Result<Self, EnvelopeError> {
        let Some((seq, _)) = message.split_first_chunk::<SEQUENCE_LEN>() else {
            return Err(EnvelopeError::ShortBinary { len: message.len() });
        };
        let seq = u64::from_be_bytes(*seq);
        Ok(Self { seq, encoding: PayloadEncoding::Protobuf, payload: message.slice(SEQUENCE_LEN..) })
    }

    /// Takes a text message apart: 1 to 20 ASCII digits, one line feed, then the OTLP/JSON.
    ///
    /// # Errors
    /// [`EnvelopeError::TextSequence`] naming the first byte that breaks the form;
    /// [`EnvelopeError::SequenceOverflow`] for a number above `u64::MAX`.
    pub fn from_text(message: Bytes) -> Result<Self, EnvelopeError> {
        let digits = message.iter().take(MAX_SEQUENCE_DIGITS).take_while(|byte| byte.is_ascii_digit()).count();
        let found = |offset: usize| EnvelopeError::TextSequence {
            offset,
            found: match message.get(offset) {
                None => "the end".to_owned(),
                Some(byte) if byte.is_ascii_graphic() => format!("'{}'", char::from(*byte)),
                Some(byte) => format!("{byte:#04x}"),
            },
        };
        if digits == 0 || message.get(digits) != Some(&b'\n') {
            return Err(found(digits));
        }
        let seq = message[..digits]
            .iter()
            .try_fold(0u64, |seq, digit| seq.checked_mul(10)?.checked_add(u64::from(digit - b'0')))
            .ok_or(EnvelopeError::SequenceOverflow)?;
        Ok(Self { seq, encoding: PayloadEncoding::Json, payload: message.slice(digits + 1..) })
    }

    /// A binary message for `seq` and an OTLP protobuf request, as a client sends it.
    #[must_use]
    pub fn binary_message(seq: u64, protobuf: &[u8]) -> Vec<u8> {
        let mut message = Vec::with_capacity(SEQUENCE_LEN + protobuf.len());
        message.extend_from_slice(&seq.to_be_bytes());
        message.extend_from_slice(protobuf);
        message
    }

    /// A text message for `seq` and an OTLP/JSON request, as a client sends it.
    #[must_use]
    pub fn text_message(seq: u64, json: &str) -> String {
        format!("{seq}\n{json}")
    }
}

/// Why a message was not accepted, in an error acknowledgement: the gRPC status names OTLP
/// uses for the same answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AckErrorCode {
    /// The request could not be decoded, or the pipeline refuses it for good: do not resend.
    InvalidArgument,
    /// The pipeline is full: resend after `retry_after_ms`.
    ResourceExhausted,
    /// The pipeline is not taking data now (shutting down, no healthy exporter): resend after
    /// `retry_after_ms`, on a new connection if this one closes.
    Unavailable,
}

impl AckErrorCode {
    /// The name as it appears on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::Unavailable => "UNAVAILABLE",
        }
    }
}

/// The error of an error acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckError {
    /// What kind of failure.
    pub code: AckErrorCode,
    /// What went wrong, for people (at most [`MAX_ACK_MESSAGE_LEN`] bytes).
    pub message: String,
    /// When the message may be sent again, in milliseconds; absent when it must not be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// The answer to one message, a text message of its own. Parse one with
/// `serde_json::from_str::<Ack>`; unknown fields are ignored, so later additions do not break
/// clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ack {
    /// The message's spans went to the pipeline.
    Accepted {
        /// The message's sequence number.
        seq: u64,
        /// Spans the pipeline took.
        accepted: u64,
        /// Spans the pipeline rejected and will not deliver (do not resend them).
        rejected: u64,
        /// Why spans were rejected, or a warning; absent when there is nothing to say.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The message was not accepted.
    Failed {
        /// The message's sequence number.
        seq: u64,
        /// What happened.
        error: AckError,
    },
}

impl Ack {
    /// A success: `spans` in the message, of which the pipeline rejected `rejected`.
    #[must_use]
    pub fn accepted(seq: u64, spans: u64, rejected: u64, message: Option<&str>) -> Self {
        let rejected = rejected.min(spans);
        Self::Accepted { seq, accepted: spans - rejected, rejected, message: message.map(truncated_message) }
    }

    /// A failure; `retry_after` is when the client may send the message again, if ever.
    #[must_use]
    pub fn failed(seq: u64, code: AckErrorCode, message: &str, retry_after: Option<std::time::Duration>) -> Self {
        let retry_after_ms = retry_after.map(|after| u64::try_from(after.as_millis()).unwrap_or(u64::MAX));
        Self::Failed { seq, error: AckError { code, message: truncated_message(message), retry_after_ms } }
    }

    /// The sequence number acknowledged.
    #[must_use]
    pub fn seq(&self) -> u64 {
        match self {
            Self::Accepted { seq, .. } | Self::Failed { seq, .. } => *seq,
        }
    }

    /// The acknowledgement as the JSON text the receiver sends, keys in the documented order.
    #[must_use]
    pub fn to_json(&self) -> String {
        match self {
            Self::Accepted { seq, accepted, rejected, message } => {
                let message =
                    message.as_deref().map(|m| format!(",\"message\":{}", json_string(m))).unwrap_or_default();
                format!("{{\"seq\":{seq},\"accepted\":{accepted},\"rejected\":{rejected}{message}}}")
            }
            Self::Failed { seq, error } => {
                let retry =
                    error.retry_after_ms.map(|after| format!(",\"retry_after_ms\":{after}")).unwrap_or_default();
                format!(
                    "{{\"seq\":{seq},\"error\":{{\"code\":\"{}\",\"message\":{}{retry}}}}}",
                    error.code.as_str(),
                    json_string(&error.message)
                )
            }
        }
    }
}

/// `text` as a JSON string literal, quoted and escaped.
fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// `text` cut to at most `limit` bytes at a character boundary.
fn truncated(text: &str, limit: usize) -> &str {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn truncated_message(message: &str) -> String {
    truncated(message, MAX_ACK_MESSAGE_LEN).to_owned()
}

/// `reason` cut to fit a close frame.
#[must_use]
pub fn close_reason(reason: &str) -> String {
    truncated(reason, MAX_CLOSE_REASON_LEN).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_messages_start_with_a_big_endian_sequence_number() {
        let message = Envelope::binary_message(17, b"\x0a\x00");
        assert_eq!(&message[..8], &[0, 0, 0, 0, 0, 0, 0, 17]);
        let envelope = Envelope::from_binary(Bytes::from(message)).unwrap();
        assert_eq!(
            (envelope.seq, envelope.encoding, &envelope.payload[..]),
            (17, PayloadEncoding::Protobuf, &b"\x0a\x00"[..])
        );
        assert_eq!(Envelope::from_binary(Bytes::from_static(b"1234567")), Err(EnvelopeError::ShortBinary { len: 7 }));
        assert_eq!(Envelope::from_binary(Bytes::from_static(&[0xff; 8])).unwrap().seq, u64::MAX);
    }

    #[test]
    fn text_messages_start_with_decimal_digits_and_a_line_feed() {
        let envelope = Envelope::from_text(Bytes::from(Envelope::text_message(42, "{}"))).unwrap();
        assert_eq!((envelope.seq, envelope.encoding, &envelope.payload[..]), (42, PayloadEncoding::Json, &b"{}"[..]));
        assert_eq!(Envelope::from_text(Bytes::from_static(b"18446744073709551615\n")).unwrap().seq, u64::MAX);
        assert_eq!(
            Envelope::from_text(Bytes::from_static(b"18446744073709551616\n")),
            Err(EnvelopeError::SequenceOverflow)
        );
        let error =
            |text: &'static str| Envelope::from_text(Bytes::from_static(text.as_bytes())).unwrap_err().to_string();
        assert!(error("{\"resourceSpans\":[]}").ends_with("byte 0 is '{'"));
        assert!(error("17 {}").ends_with("byte 2 is 0x20"));
        assert!(error("17").ends_with("byte 2 is the end"));
        assert!(error("123456789012345678901\n{}").ends_with("byte 20 is '1'"));
    }

    #[test]
    fn acks_are_small_json_objects_that_parse_back() {
        let ack = Ack::accepted(17, 120, 0, None);
        assert_eq!(ack.to_json(), r#"{"seq":17,"accepted":120,"rejected":0}"#);
        let partial = Ack::accepted(18, 10, 3, Some("dropped by a filter"));
        assert_eq!(serde_json::from_str::<Ack>(&partial.to_json()).unwrap(), partial);
        let failed = Ack::failed(19, AckErrorCode::ResourceExhausted, "full", Some(std::time::Duration::from_secs(2)));
        assert_eq!(
            failed.to_json(),
            r#"{"seq":19,"error":{"code":"RESOURCE_EXHAUSTED","message":"full","retry_after_ms":2000}}"#
        );
        assert_eq!(serde_json::from_str::<Ack>(&failed.to_json()).unwrap(), failed);
    }

    #[test]
    fn long_messages_and_reasons_are_cut_at_a_character_boundary() {
        let long = "é".repeat(1000);
        let Ack::Failed { error, .. } = Ack::failed(1, AckErrorCode::InvalidArgument, &long, None) else { panic!() };
        assert_eq!(error.message.len(), MAX_ACK_MESSAGE_LEN);
        assert_eq!(close_reason(&long).len(), 122);
    }
}
