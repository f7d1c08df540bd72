//! Example codec plugin: spans as newline-delimited JSON, content type
//! `application/x-ndjson-spans`, one object per line:
//!
//! ```json
//! {"trace_id":"<32 hex>","span_id":"<16 hex>","parent_span_id":"<16 hex, optional>","name":"GET /",
//!  "start":1700000000000000000,"end":1700000000000500000,"service":"checkout","attributes":{"k":"v"}}
//! ```
//!
//! Decoding turns a whole body into one request, spans grouped by `service` into resources in the
//! order services first appear. Blank lines are skipped; a bad line fails the body with its line
//! number. Encoding writes the same form; attribute values that are not strings are written as
//! their text (ints, doubles, bools) or left out (bytes, arrays, key-value lists), since the format
//! only has string values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spanpipe_plugin_sdk::core::{AnyValueView, Attributes, BatchWriter};
use spanpipe_plugin_sdk::{export_codec, Batch, Codec, Emitter};

/// One line of the format.
#[derive(Debug, Deserialize, Serialize)]
struct SpanLine {
    trace_id: String,
    span_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent_span_id: Option<String>,
    name: String,
    start: u64,
    end: u64,
    #[serde(default)]
    service: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

/// A line's spans ids, decoded from hex.
struct Ids {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_span_id: Option<[u8; 8]>,
}

fn hex_id<const N: usize>(field: &str, text: &str) -> Result<[u8; N], String> {
    let mut id = [0; N];
    hex::decode_to_slice(text, &mut id).map_err(|e| format!("`{field}` is not {} hex digits: {e}", N * 2))?;
    Ok(id)
}

impl SpanLine {
    fn ids(&self) -> Result<Ids, String> {
        Ok(Ids {
            trace_id: hex_id("trace_id", &self.trace_id)?,
            span_id: hex_id("span_id", &self.span_id)?,
            parent_span_id: self.parent_span_id.as_deref().map(|id| hex_id("parent_span_id", id)).transpose()?,
        })
    }
}

/// The codec; it keeps nothing between calls.
#[derive(Debug)]
struct NdjsonSpans;

impl Codec for NdjsonSpans {
    const CONTENT_TYPES: &'static [&'static str] = &["application/x-ndjson-spans"];

    fn new(_config: &str) -> Result<Self, String> {
        Ok(Self)
    }

    fn decode(&mut self, body: &[u8], out: &mut Emitter<'_>) -> Result<(), String> {
        let body = std::str::from_utf8(body).map_err(|e| format!("the body is not UTF-8: {e}"))?;
        // Services in order of first appearance, each with its lines.
        let mut services: Vec<(String, Vec<(SpanLine, Ids)>)> = Vec::new();
        for (number, line) in (1..).zip(body.lines()) {
            if line.trim().is_empty() {
                continue;
            }
            let parsed = serde_json::from_str::<SpanLine>(line)
                .map_err(|e| e.to_string())
                .and_then(|span| Ok((span.ids()?, span)))
                .map_err(|e| format!("line {number}: {e}"))?;
            let (ids, span) = parsed;
            match services.iter_mut().find(|(service, _)| *service == span.service) {
                Some((_, spans)) => spans.push((span, ids)),
                None => services.push((span.service.clone(), vec![(span, ids)])),
            }
        }
        let mut writer = BatchWriter::new();
        for (service, spans) in &services {
            writer.resource_spans(|rs| {
                rs.resource(|r| r.str_attribute("service.name", service));
                rs.scope_spans(|ss| {
                    for (span, ids) in spans {
                        ss.span(|s| {
                            s.trace_id(&ids.trace_id).span_id(&ids.span_id);
                            if let Some(parent) = &ids.parent_span_id {
                                s.parent_span_id(parent);
                            }
                            s.name(&span.name).start_time_unix_nano(span.start).end_time_unix_nano(span.end);
                            for (key, value) in &span.attributes {
                                s.str_attribute(key, value);
                            }
                        });
                    }
                });
            });
        }
        Ok(out.push(writer)?)
    }

    fn encode(&mut self, batch: &Batch<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        for span in batch.spans() {
            let mut attributes = BTreeMap::new();
            for attribute in span.attributes() {
                let value = match attribute.value {
                    AnyValueView::String(text) => text.to_owned(),
                    AnyValueView::Int(int) => int.to_string(),
                    AnyValueView::Double(double) => double.to_string(),
                    AnyValueView::Bool(flag) => flag.to_string(),
                    _ => continue,
                };
                // The first of repeated keys wins, as `KeyValues::get` reads them.
                attributes.entry(attribute.key.to_owned()).or_insert(value);
            }
            let line = SpanLine {
                trace_id: hex::encode(span.trace_id()),
                span_id: hex::encode(span.span_id()),
                parent_span_id: span.parent_span_id().map(hex::encode),
                name: span.name().to_owned(),
                start: span.start_time_unix_nano(),
                end: span.end_time_unix_nano(),
                service: span.resource().service_name().unwrap_or_default().to_owned(),
                attributes,
            };
            serde_json::to_writer(&mut *out, &line).map_err(|e| format!("span {}: {e}", span.position()))?;
            out.push(b'\n');
        }
        Ok(())
    }
}

export_codec!(NdjsonSpans, name = "ndjson", version = "1.0.0");

#[cfg(test)]
mod tests {
    use spanpipe_plugin_sdk::{abi, testing};

    use super::*;

    const BODY: &str = concat!(
        r#"{"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"1112131415161718","name":"GET /","start":10,"end":20,"service":"web","attributes":{"http.method":"GET"}}"#,
        "\n\n",
        r#"{"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"2122232425262728","parent_span_id":"1112131415161718","name":"db","start":12,"end":18,"service":"db"}"#,
        "\n",
        r#"{"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"3132333435363738","name":"render","start":14,"end":19,"service":"web"}"#,
        "\n",
    );

    fn codec() -> testing::TestCodec {
        // SAFETY: the generated function returns a pointer to a static descriptor.
        testing::codec(unsafe { &*spanpipe_plugin_descriptor() }, "{}").expect("created")
    }

    #[test]
    fn decodes_one_request_grouped_by_service_and_encodes_it_back() {
        let mut codec = codec();
        assert_eq!(codec.content_types(), ["application/x-ndjson-spans"]);
        let requests = codec.decode(BODY.as_bytes()).expect("decoded");
        assert_eq!(requests.len(), 1);
        let batch = &requests[0];
        let services: Vec<_> = batch.spans().map(|s| (s.service_name(), s.name())).collect();
        assert_eq!(services, [(Some("web"), "GET /"), (Some("web"), "render"), (Some("db"), "db")]);
        assert_eq!(batch.resource_count(), 2);
        let db = batch.span(2).expect("third span");
        assert_eq!(
            (db.parent_span_id(), db.start_time_unix_nano()),
            (Some(&[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]), 12)
        );

        let encoded = String::from_utf8(codec.encode(batch).expect("encoded")).expect("UTF-8");
        let lines: Vec<serde_json::Value> = encoded.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
        let mut expected: Vec<serde_json::Value> =
            BODY.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).expect("JSON")).collect();
        expected.swap(1, 2);
        for line in &mut expected {
            line.as_object_mut().expect("object").entry("attributes").or_insert(serde_json::json!({}));
        }
        assert_eq!(lines, expected);
    }

    #[test]
    fn a_bad_line_fails_the_body_with_its_number() {
        let mut codec = codec();
        let body = format!(
            "{}\n{}\n",
            BODY.lines().next().expect("a line"),
            r#"{"trace_id":"xyz","span_id":"1112131415161718","name":"n","start":1,"end":2}"#
        );
        let failure = codec.decode(body.as_bytes()).expect_err("bad trace id");
        assert_eq!(failure.status, abi::STATUS_ERROR);
        assert!(failure.message.starts_with("line 2: `trace_id` is not 32 hex digits"), "{}", failure.message);
        let failure = codec.decode(b"\n\n{not json").expect_err("bad JSON");
        assert!(failure.message.starts_with("line 3: "), "{}", failure.message);
    }
}
