//! The few response messages receivers write, encoded by hand: `ExportTraceServiceResponse`,
//! `google.rpc.Status` and its `RetryInfo` detail, in protobuf and in OTLP/JSON.
//!
//! They are a handful of bytes; a protobuf library would add a dependency and a copy for
//! nothing. The encodings are checked against prost's decoding in `tests/`.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::otlp::sink::Accepted;

/// gRPC status codes used by the receivers (numbering from `google.rpc.Code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum GrpcCode {
    /// Success.
    Ok = 0,
    /// Malformed request; do not retry.
    InvalidArgument = 3,
    /// The request took too long to arrive.
    DeadlineExceeded = 4,
    /// Over a size limit, or (with `RetryInfo`) temporarily full.
    ResourceExhausted = 8,
    /// Method, service or encoding not served.
    Unimplemented = 12,
    /// Not taking requests now; retry.
    Unavailable = 14,
}

const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

fn put_varint(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// A varint field (wire type 0); skipped when zero, as proto3 does.
fn put_varint_field(out: &mut BytesMut, field: u32, value: u64) {
    if value != 0 {
        put_varint(out, u64::from(field << 3));
        put_varint(out, value);
    }
}

/// A length-delimited field (wire type 2); skipped when empty unless `always`.
fn put_bytes_field(out: &mut BytesMut, field: u32, bytes: &[u8], always: bool) {
    if always || !bytes.is_empty() {
        put_varint(out, u64::from((field << 3) | 2));
        put_varint(out, bytes.len() as u64);
        out.put_slice(bytes);
    }
}

fn message(build: impl FnOnce(&mut BytesMut)) -> BytesMut {
    let mut out = BytesMut::new();
    build(&mut out);
    out
}

/// `ExportTraceServiceResponse`, with `partial_success` set only when spans were rejected or
/// there is a message (the specification requires it unset on full success).
pub(crate) fn export_response_proto(outcome: &Accepted) -> Bytes {
    if outcome.rejected_spans == 0 && outcome.message.is_none() {
        return Bytes::new();
    }
    let partial = message(|out| {
        put_varint_field(out, 1, outcome.rejected_spans);
        put_bytes_field(out, 2, outcome.message.as_deref().unwrap_or_default().as_bytes(), false);
    });
    message(|out| put_bytes_field(out, 1, &partial, true)).freeze()
}

/// `ExportTraceServiceResponse` in spanpipe's MessagePack form (`{}` for a full success).
pub(crate) fn export_response_msgpack(outcome: &Accepted) -> Bytes {
    let partial_success =
        (outcome.rejected_spans != 0 || outcome.message.is_some()).then(|| spanpipe_msgpack::PartialSuccess {
            rejected_spans: i64::try_from(outcome.rejected_spans).unwrap_or(i64::MAX),
            error_message: outcome.message.as_deref().unwrap_or_default().to_owned(),
        });
    Bytes::from(spanpipe_msgpack::ExportResponse { partial_success }.encode())
}

/// `google.rpc.Status` in spanpipe's MessagePack form: the `RetryInfo` detail carries the same
/// protobuf bytes as in [`status_proto`], under its type URL.
pub(crate) fn status_msgpack(code: GrpcCode, text: &str, retry_after: Option<Duration>) -> Bytes {
    let details = retry_after
        .map(|delay| spanpipe_msgpack::StatusDetail {
            type_url: RETRY_INFO_TYPE_URL.to_owned(),
            value: message(|info| put_bytes_field(info, 1, &duration_proto(delay), true)).to_vec(),
        })
        .into_iter()
        .collect();
    Bytes::from(spanpipe_msgpack::Status { code: code as i32, message: text.to_owned(), details }.encode())
}

/// `ExportTraceServiceResponse` as OTLP/JSON (64-bit integers as strings, camelCase keys).
pub(crate) fn export_response_json(outcome: &Accepted) -> Bytes {
    if outcome.rejected_spans == 0 && outcome.message.is_none() {
        return Bytes::from_static(b"{}");
    }
    let mut partial = serde_json::Map::new();
    if outcome.rejected_spans != 0 {
        partial.insert("rejectedSpans".into(), outcome.rejected_spans.to_string().into());
    }
    if let Some(text) = &outcome.message {
        partial.insert("errorMessage".into(), text.clone().into());
    }
    Bytes::from(serde_json::json!({ "partialSuccess": partial }).to_string())
}

/// `google.protobuf.Duration` of `delay`.
fn duration_proto(delay: Duration) -> BytesMut {
    message(|out| {
        put_varint_field(out, 1, delay.as_secs());
        put_varint_field(out, 2, u64::from(delay.subsec_nanos()));
    })
}

/// `google.rpc.Status { code, message, details: [RetryInfo { retry_delay }] }`.
pub(crate) fn status_proto(code: GrpcCode, text: &str, retry_after: Option<Duration>) -> Bytes {
    message(|out| {
        put_varint_field(out, 1, code as u64);
        put_bytes_field(out, 2, text.as_bytes(), false);
        if let Some(delay) = retry_after {
            let retry_info = message(|info| put_bytes_field(info, 1, &duration_proto(delay), true));
            let any = message(|any| {
                put_bytes_field(any, 1, RETRY_INFO_TYPE_URL.as_bytes(), false);
                put_bytes_field(any, 2, &retry_info, false);
            });
            put_bytes_field(out, 3, &any, true);
        }
    })
    .freeze()
}

/// `google.rpc.Status` in proto3 JSON, the `RetryInfo` detail as an `Any` with `@type`.
pub(crate) fn status_json(code: GrpcCode, text: &str, retry_after: Option<Duration>) -> Bytes {
    let mut status = serde_json::json!({ "code": code as u8, "message": text });
    if let Some(delay) = retry_after {
        // proto3 JSON writes a Duration as seconds with an "s" suffix.
        let seconds = if delay.subsec_nanos() == 0 {
            format!("{}s", delay.as_secs())
        } else {
            format!("{}.{:09}s", delay.as_secs(), delay.subsec_nanos())
        };
        status["details"] = serde_json::json!([{ "@type": RETRY_INFO_TYPE_URL, "retryDelay": seconds }]);
    }
    Bytes::from(status.to_string())
}

/// The 5-byte gRPC message prefix (uncompressed) followed by `message`.
pub(crate) fn grpc_frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    out.put_slice(message);
    out.freeze()
}

/// `grpc-message` value: percent-encoded outside printable ASCII and for `%` itself, as the
/// gRPC HTTP/2 protocol requires.
pub(crate) fn percent_encode_grpc_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encodes_what_grpc_requires() {
        assert_eq!(percent_encode_grpc_message("plain text"), "plain text");
        assert_eq!(percent_encode_grpc_message("100% ok\né"), "100%25 ok%0A%C3%A9");
    }

    #[test]
    fn json_forms_are_what_otlp_json_expects() {
        assert_eq!(export_response_json(&Accepted::all()), "{}");
        let partial: serde_json::Value =
            serde_json::from_slice(&export_response_json(&Accepted::partial(3, "bad spans"))).unwrap();
        assert_eq!(partial, serde_json::json!({"partialSuccess": {"rejectedSpans": "3", "errorMessage": "bad spans"}}));
        let status: serde_json::Value = serde_json::from_slice(&status_json(
            GrpcCode::ResourceExhausted,
            "full",
            Some(Duration::from_millis(1500)),
        ))
        .unwrap();
        assert_eq!(status["code"], 8);
        assert_eq!(status["details"][0]["retryDelay"], "1.500000000s");
    }
}
