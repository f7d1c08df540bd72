//! The answers of an OTLP/HTTP exchange in MessagePack: `ExportTraceServiceResponse` for a
//! success (with its `partialSuccess`) and `google.rpc.Status` for a failure.
//!
//! A client that sends `application/msgpack` reads the answer in the same format, as OTLP/HTTP
//! clients do for protobuf and JSON. The mapping is that of requests (lowerCamelCase keys,
//! integers as MessagePack integers, proto3 defaults left out); `Status.details` are
//! `google.protobuf.Any` messages written as their own two fields, `{"typeUrl": str, "value":
//! bin}` with the protobuf encoding of the detail in `value` — MessagePack has no counterpart of
//! the JSON mapping's `@type` unpacking, and the receiver already holds the protobuf bytes of its
//! `RetryInfo`.

use rmp::encode::ByteBuf;
use spanpipe_codecs::field_path::{PathContext as _, PathError as _};

use crate::decode::{integer, narrow, str_or_nil};
use crate::encode::{Infallibly as _, Map};
use crate::error::{Expected, MsgpackError, MsgpackErrorKind};
use crate::reader::{Reader, Result};

/// An OTLP `ExportTraceServiceResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportResponse {
    /// Set when the server rejected some spans (or wants to warn); `None` for a full success.
    pub partial_success: Option<PartialSuccess>,
}

/// An OTLP `ExportTracePartialSuccess`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartialSuccess {
    /// How many spans the server rejected.
    pub rejected_spans: i64,
    /// Why, in words for a human.
    pub error_message: String,
}

/// A `google.rpc.Status`: the body of an OTLP/HTTP error answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// The gRPC status code (`3` for `INVALID_ARGUMENT`, …).
    pub code: i32,
    /// The message for a human.
    pub message: String,
    /// Typed details, such as `google.rpc.RetryInfo`.
    pub details: Vec<StatusDetail>,
}

/// A `google.protobuf.Any` among [`Status::details`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusDetail {
    /// The type of the detail, e.g. `type.googleapis.com/google.rpc.RetryInfo`.
    pub type_url: String,
    /// The protobuf encoding of the detail.
    pub value: Vec<u8>,
}

impl ExportResponse {
    /// The MessagePack body: `{}` for a full success, else
    /// `{"partialSuccess": {"rejectedSpans": int, "errorMessage": str}}` without default members.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = ByteBuf::new();
        let mut o = Map::open(&mut out);
        if let Some(partial) = &self.partial_success {
            let mut p = Map::open(o.key("partialSuccess"));
            p.non_zero_sint("rejectedSpans", partial.rejected_spans);
            p.non_empty_str("errorMessage", &partial.error_message);
            p.close();
        }
        o.close();
        out.into_vec()
    }

    /// Reads a MessagePack body, as leniently as requests (snake_case keys, `rejectedSpans` as a
    /// decimal string, nil as absent, unknown keys ignored). An empty body is a full success, as
    /// an empty protobuf message is.
    ///
    /// # Errors
    /// [`MsgpackError`] when the body is not such a map.
    pub fn decode(body: &[u8]) -> std::result::Result<Self, MsgpackError> {
        let mut response = Self::default();
        if body.is_empty() {
            return Ok(response);
        }
        whole(body, |r| {
            map(r, |key, r| match key {
                "partialSuccess" | "partial_success" => {
                    if r.nil() {
                        return Ok(());
                    }
                    let partial = response.partial_success.insert(PartialSuccess::default());
                    map(r, |key, r| match key {
                        "rejectedSpans" | "rejected_spans" => {
                            partial.rejected_spans = signed(r, "int64").in_key("rejectedSpans")?;
                            Ok(())
                        }
                        "errorMessage" | "error_message" => {
                            partial.error_message =
                                str_or_nil(r).in_key("errorMessage")?.unwrap_or_default().to_owned();
                            Ok(())
                        }
                        _ => r.skip(),
                    })
                    .in_key("partialSuccess")
                }
                _ => r.skip(),
            })
        })?;
        Ok(response)
    }
}

impl Status {
    /// The MessagePack body: `{"code": int, "message": str, "details": [{"typeUrl": str,
    /// "value": bin}]}` without default members.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = ByteBuf::new();
        let mut o = Map::open(&mut out);
        o.non_zero_sint("code", self.code.into());
        o.non_empty_str("message", &self.message);
        if !self.details.is_empty() {
            let out = o.key("details");
            rmp::encode::write_array_len(out, u32::try_from(self.details.len()).unwrap_or(u32::MAX)).infallibly();
            for detail in &self.details {
                let mut d = Map::open(out);
                d.non_empty_str("typeUrl", &detail.type_url);
                if !detail.value.is_empty() {
                    d.bin("value", &detail.value);
                }
                d.close();
            }
        }
        o.close();
        out.into_vec()
    }

    /// Reads a MessagePack body, as leniently as requests.
    ///
    /// # Errors
    /// [`MsgpackError`] when the body is not such a map.
    pub fn decode(body: &[u8]) -> std::result::Result<Self, MsgpackError> {
        let mut status = Self::default();
        whole(body, |r| {
            map(r, |key, r| match key {
                "code" => {
                    status.code = signed(r, "int32").in_key("code")?;
                    Ok(())
                }
                "message" => {
                    status.message = str_or_nil(r).in_key("message")?.unwrap_or_default().to_owned();
                    Ok(())
                }
                "details" => {
                    let len = r.array_len_or_nil().in_key("details")?;
                    for i in 0..len as usize {
                        let detail = detail(r).in_index(i).in_key("details")?;
                        status.details.push(detail);
                    }
                    Ok(())
                }
                _ => r.skip(),
            })
        })?;
        Ok(status)
    }
}

fn detail(r: &mut Reader<'_>) -> Result<StatusDetail> {
    let mut detail = StatusDetail::default();
    map(r, |key, r| match key {
        "typeUrl" | "type_url" => {
            detail.type_url = str_or_nil(r).in_key("typeUrl")?.unwrap_or_default().to_owned();
            Ok(())
        }
        "value" => {
            if !r.nil() {
                detail.value = r.bin().in_key("value")?.to_vec();
            }
            Ok(())
        }
        _ => r.skip(),
    })?;
    Ok(detail)
}

/// Reads the whole body with `read`: nothing may follow the top-level map.
fn whole(body: &[u8], read: impl FnOnce(&mut Reader<'_>) -> Result) -> Result {
    let mut reader = Reader::new(body);
    read(&mut reader).map_err(MsgpackError::finish)?;
    if !reader.is_at_end() {
        return Err(reader.error(MsgpackErrorKind::TrailingBytes));
    }
    Ok(())
}

/// The entries of a map, each key handed to `entry` (which consumes the value).
fn map<'a>(r: &mut Reader<'a>, mut entry: impl FnMut(&'a str, &mut Reader<'a>) -> Result) -> Result {
    let len = r.map_len(Expected::Map)?;
    for _ in 0..len {
        let key = r.key()?;
        entry(key, r)?;
    }
    Ok(())
}

/// A signed integer field of protobuf type `ty` (nil is zero).
fn signed<T: TryFrom<i128> + Default>(r: &mut Reader<'_>, ty: &'static str) -> Result<T> {
    let at = *r;
    integer(r, ty, Expected::Integer)?.map_or(Ok(T::default()), |int| narrow(&at, int, ty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_success_is_an_empty_map() {
        assert_eq!(ExportResponse::default().encode(), [0x80]);
        assert_eq!(ExportResponse::decode(&[0x80]).unwrap(), ExportResponse::default());
        assert_eq!(ExportResponse::decode(&[]).unwrap(), ExportResponse::default());
    }

    #[test]
    fn partial_success_round_trips() {
        let response = ExportResponse {
            partial_success: Some(PartialSuccess { rejected_spans: 3, error_message: "too old".into() }),
        };
        let body = response.encode();
        let mut expected = vec![0x81, 0xae];
        expected.extend_from_slice(b"partialSuccess");
        expected.extend_from_slice(&[0x82, 0xad]);
        expected.extend_from_slice(b"rejectedSpans");
        expected.push(0x03);
        expected.push(0xac);
        expected.extend_from_slice(b"errorMessage");
        expected.push(0xa7);
        expected.extend_from_slice(b"too old");
        assert_eq!(body, expected);
        assert_eq!(ExportResponse::decode(&body).unwrap(), response);
    }

    #[test]
    fn status_with_details_round_trips() {
        let status = Status {
            code: 8,
            message: "queue full".into(),
            details: vec![StatusDetail {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: vec![0x0a, 0x02, 0x08, 0x05],
            }],
        };
        assert_eq!(Status::decode(&status.encode()).unwrap(), status);
    }

    #[test]
    fn responses_accept_snake_case_and_string_integers() {
        // {"partial_success": {"rejected_spans": "7", "error_message": nil}}
        let mut body = vec![0x81, 0xaf];
        body.extend_from_slice(b"partial_success");
        body.extend_from_slice(&[0x82, 0xae]);
        body.extend_from_slice(b"rejected_spans");
        body.extend_from_slice(&[0xa1, b'7', 0xad]);
        body.extend_from_slice(b"error_message");
        body.push(0xc0);
        let response = ExportResponse::decode(&body).unwrap();
        assert_eq!(response.partial_success, Some(PartialSuccess { rejected_spans: 7, error_message: String::new() }));
    }

    #[test]
    fn a_status_code_beyond_int32_is_refused_with_its_path() {
        // {"code": 2^40}
        let body = [0x81, 0xa4, b'c', b'o', b'd', b'e', 0xcf, 0, 0, 1, 0, 0, 0, 0, 0];
        let error = Status::decode(&body).unwrap_err();
        assert_eq!(error.path().to_string(), "code");
        assert_eq!(error.offset(), 6);
        assert!(matches!(error.kind(), MsgpackErrorKind::InvalidInteger { ty: "int32", .. }));
    }
}
