//! Zipkin `zipkin.proto3.ListOfSpans` → canonical batch, read with spanpipe's bounds-checked wire
//! reader. One pass validates every span (wire types, id lengths, UTF-8, addresses) and parses it
//! into a [`ZipkinSpan`]; tags and annotations stay byte ranges of the body that
//! [`crate::to_otlp`] reads again as it writes.
//!
//! ```text
//! message ListOfSpans { repeated Span spans = 1; }
//! message Span {
//!   bytes trace_id = 1; bytes parent_id = 2; bytes id = 3; Kind kind = 4; string name = 5;
//!   fixed64 timestamp = 6; uint64 duration = 7; Endpoint local_endpoint = 8;
//!   Endpoint remote_endpoint = 9; repeated Annotation annotations = 10;
//!   map<string, string> tags = 11; bool debug = 12; bool shared = 13;
//! }
//! message Endpoint { string service_name = 1; bytes ipv4 = 2; bytes ipv6 = 3; int32 port = 4; }
//! message Annotation { fixed64 timestamp = 1; string value = 2; }
//! ```
//!
//! An endpoint given twice is the merge of the two occurrences, as protobuf's rule for singular
//! message fields says (no encoder writes one twice; prost and Go's decoders read it so).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use spanpipe_codecs::repeated_keys::KeyTable;
use spanpipe_core::wire::{Field, FieldValue, Reader};
use spanpipe_core::{SpanBatch, WireType};

use crate::error::{Problem, ZipkinError};
use crate::to_otlp::{check_times, micros_to_nanos, write_batch, Endpoint, Kind, SpanLists, TagWalk, ZipkinSpan};
use crate::DecodeOptions;

type Result<T> = std::result::Result<T, ZipkinError>;

/// Decodes a `ListOfSpans` into a batch. An empty body gives an empty batch.
///
/// # Errors
/// A [`ZipkinError`] with the byte offset of the offending field and what is wrong with it.
pub fn decode_proto(body: &[u8], options: DecodeOptions) -> Result<SpanBatch> {
    let mut reader = Reader::new(body, 0..body.len());
    let mut spans = Vec::new();
    KeyTable::with(|key_table| {
        while let Some(field) = reader.next_field().map_err(ZipkinError::wire)? {
            if field.number == 1 {
                let range = expect_len(&field, "ListOfSpans.spans")?;
                spans.push(span(body, range, field.start, key_table)?);
            }
        }
        Ok(())
    })?;
    write_batch(&spans, options, body.len() + body.len() / 2)
}

/// A span's tags and annotations: the span's own bytes, read again on demand.
#[derive(Clone, Debug)]
pub(crate) struct ProtoLists<'a> {
    data: &'a [u8],
    span: Range<usize>,
}

impl<'a> ProtoLists<'a> {
    fn messages(&self, number: u32) -> impl Iterator<Item = Range<usize>> + 'a {
        let mut reader = Reader::new(self.data, self.span.clone());
        std::iter::from_fn(move || reader.next_field().ok().flatten()).filter_map(move |field| match field.value {
            FieldValue::Len(range) if field.number == number => Some(range),
            _ => None,
        })
    }
}

impl<'a> SpanLists<'a> for ProtoLists<'a> {
    fn tags(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        let data = self.data;
        self.messages(11).filter_map(move |entry| map_entry(data, entry).ok())
    }

    fn annotations(&self) -> impl Iterator<Item = (u64, &'a str)> {
        let data = self.data;
        self.messages(10).filter_map(move |body| annotation(data, body).ok())
    }
}

/// The error for a known field sent with another wire type than the schema gives.
fn mismatch(field: &Field, name: &'static str, expected: WireType) -> ZipkinError {
    ZipkinError::at_byte(field.start, Problem::WireType { field: name, found: field.value.wire_type(), expected })
}

fn expect_len(field: &Field, name: &'static str) -> Result<Range<usize>> {
    field.value.as_len().ok_or_else(|| mismatch(field, name, WireType::Len))
}

fn expect_varint(field: &Field, name: &'static str) -> Result<u64> {
    field.value.as_varint().ok_or_else(|| mismatch(field, name, WireType::Varint))
}

fn expect_fixed64(field: &Field, name: &'static str) -> Result<u64> {
    field.value.as_i64().ok_or_else(|| mismatch(field, name, WireType::I64))
}

fn utf8(data: &[u8], range: Range<usize>, start: usize) -> Result<&str> {
    std::str::from_utf8(&data[range]).map_err(|_| ZipkinError::at_byte(start, Problem::InvalidUtf8))
}

fn span<'a>(
    data: &'a [u8],
    range: Range<usize>,
    start: usize,
    key_table: &mut KeyTable,
) -> Result<ZipkinSpan<'a, ProtoLists<'a>>> {
    let mut trace_id = None;
    let mut id = None;
    let mut span = ZipkinSpan::blank(ProtoLists { data, span: range.clone() });
    let mut tags = TagWalk::new(&mut span.special, key_table);
    let mut reader = Reader::new(data, range);
    while let Some(field) = reader.next_field().map_err(ZipkinError::wire)? {
        let at = field.start;
        match field.number {
            1 => {
                let bytes = &data[expect_len(&field, "Span.trace_id")?];
                let mut padded = [0u8; 16];
                match bytes.len() {
                    8 => padded[8..].copy_from_slice(bytes),
                    16 => padded.copy_from_slice(bytes),
                    found => return Err(ZipkinError::at_byte(at, Problem::IdLength { expected: "8 or 16", found })),
                }
                trace_id = Some((padded, at));
            }
            2 => {
                let bytes = &data[expect_len(&field, "Span.parent_id")?];
                span.parent_id = match bytes.len() {
                    0 => None,
                    _ => Some(span_id(bytes, at, "0 or 8")?),
                };
            }
            3 => id = Some((span_id(&data[expect_len(&field, "Span.id")?], at, "8")?, at)),
            4 => span.kind = kind(expect_varint(&field, "Span.kind")?),
            5 => span.name = utf8(data, expect_len(&field, "Span.name")?, at)?,
            6 => span.timestamp = Some(expect_fixed64(&field, "Span.timestamp")?).filter(|&micros| micros != 0),
            7 => span.duration = expect_varint(&field, "Span.duration")?,
            8 => span.local = Some(endpoint(data, expect_len(&field, "Span.local_endpoint")?, span.local)?),
            9 => span.remote = Some(endpoint(data, expect_len(&field, "Span.remote_endpoint")?, span.remote)?),
            10 => {
                let body = expect_len(&field, "Span.annotations")?;
                let (timestamp, _) = annotation(data, body)?;
                micros_to_nanos(timestamp).map_err(|problem| ZipkinError::at_byte(at, problem))?;
            }
            11 => {
                let (key, value) = map_entry(data, expect_len(&field, "Span.tags")?)?;
                tags.see(key, value);
            }
            12 => {
                expect_varint(&field, "Span.debug")?;
            }
            13 => {
                expect_varint(&field, "Span.shared")?;
            }
            _ => {}
        }
    }
    tags.finish();
    let (trace_id, trace_at) = trace_id.ok_or(ZipkinError::at_byte(start, Problem::Missing))?;
    let (id, id_at) = id.ok_or(ZipkinError::at_byte(start, Problem::Missing))?;
    if trace_id == [0; 16] {
        return Err(ZipkinError::at_byte(trace_at, Problem::ZeroId));
    }
    if id == [0; 8] {
        return Err(ZipkinError::at_byte(id_at, Problem::ZeroId));
    }
    span.trace_id = trace_id;
    span.id = id;
    check_times(span.timestamp, span.duration).map_err(|problem| ZipkinError::at_byte(start, problem))?;
    Ok(span)
}

fn span_id(bytes: &[u8], at: usize, expected: &'static str) -> Result<[u8; 8]> {
    bytes.try_into().map_err(|_| ZipkinError::at_byte(at, Problem::IdLength { expected, found: bytes.len() }))
}

/// `Kind` is an open proto3 enum: a value this version does not know is unspecified.
fn kind(value: u64) -> Kind {
    match value {
        1 => Kind::Client,
        2 => Kind::Server,
        3 => Kind::Producer,
        4 => Kind::Consumer,
        _ => Kind::Unspecified,
    }
}

/// Reads an `Endpoint` over what earlier occurrences of the same field gave (`None` for the
/// first): a singular message field given twice is the merge of the two, as protobuf says.
fn endpoint<'a>(data: &'a [u8], range: Range<usize>, earlier: Option<Endpoint<'a>>) -> Result<Endpoint<'a>> {
    let mut endpoint = earlier.unwrap_or_default();
    let mut reader = Reader::new(data, range);
    while let Some(field) = reader.next_field().map_err(ZipkinError::wire)? {
        let at = field.start;
        match field.number {
            1 => endpoint.service_name = utf8(data, expect_len(&field, "Endpoint.service_name")?, at)?,
            2 => {
                let bytes = &data[expect_len(&field, "Endpoint.ipv4")?];
                endpoint.ipv4 = match <[u8; 4]>::try_from(bytes) {
                    Ok(octets) => Some(Ipv4Addr::from(octets)),
                    Err(_) if bytes.is_empty() => None,
                    Err(_) => return Err(invalid_address(at, "IPv4", bytes)),
                };
            }
            3 => {
                let bytes = &data[expect_len(&field, "Endpoint.ipv6")?];
                endpoint.ipv6 = match <[u8; 16]>::try_from(bytes) {
                    Ok(octets) => Some(Ipv6Addr::from(octets)),
                    Err(_) if bytes.is_empty() => None,
                    Err(_) => return Err(invalid_address(at, "IPv6", bytes)),
                };
            }
            4 => {
                // int32: negative values are sign-extended to ten bytes on the wire.
                let port = expect_varint(&field, "Endpoint.port")? as i64;
                endpoint.port = u16::try_from(port)
                    .map_err(|_| ZipkinError::at_byte(at, Problem::Number(port.to_string(), "a port (0 to 65535)")))?;
            }
            _ => {}
        }
    }
    Ok(endpoint)
}

fn invalid_address(at: usize, family: &'static str, bytes: &[u8]) -> ZipkinError {
    let value = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    ZipkinError::at_byte(at, Problem::InvalidAddress { family, value })
}

fn annotation(data: &[u8], body: Range<usize>) -> Result<(u64, &str)> {
    let mut timestamp = 0;
    let mut value = "";
    let mut reader = Reader::new(data, body);
    while let Some(field) = reader.next_field().map_err(ZipkinError::wire)? {
        match field.number {
            1 => timestamp = expect_fixed64(&field, "Annotation.timestamp")?,
            2 => value = utf8(data, expect_len(&field, "Annotation.value")?, field.start)?,
            _ => {}
        }
    }
    Ok((timestamp, value))
}

/// One entry of `map<string, string> tags`: key 1, value 2, either may be absent (empty).
fn map_entry(data: &[u8], body: Range<usize>) -> Result<(&str, &str)> {
    let mut key = "";
    let mut value = "";
    let mut reader = Reader::new(data, body);
    while let Some(field) = reader.next_field().map_err(ZipkinError::wire)? {
        match field.number {
            1 => key = utf8(data, expect_len(&field, "Span.tags.key")?, field.start)?,
            2 => value = utf8(data, expect_len(&field, "Span.tags.value")?, field.start)?,
            _ => {}
        }
    }
    Ok((key, value))
}
