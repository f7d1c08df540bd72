//! Array and key-value-list attribute values as JSON text, the form the OpenTelemetry
//! specification asks for when a protocol has no such types (Jaeger tags are scalars).
//!
//! The same rendering as the Collector's `pcommon.Value.AsString`: arrays as JSON arrays,
//! key-value lists as JSON objects, bytes as standard base64 strings, an empty value as `null`.
//! Doubles that JSON cannot express (NaN, ±infinity) are written as the strings `"NaN"`,
//! `"Infinity"` and `"-Infinity"`.

use base64::Engine;
use spanpipe_core::AnyValueView;

/// Appends `value` as JSON.
pub(crate) fn value(out: &mut String, any: AnyValueView<'_>) {
    match any {
        AnyValueView::Empty => out.push_str("null"),
        AnyValueView::String(s) => string(out, s),
        AnyValueView::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        AnyValueView::Int(i) => out.push_str(itoa::Buffer::new().format(i)),
        AnyValueView::Double(d) if d.is_nan() => out.push_str("\"NaN\""),
        AnyValueView::Double(d) if d.is_infinite() => {
            out.push_str(if d > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
        }
        AnyValueView::Double(d) => out.push_str(ryu::Buffer::new().format_finite(d)),
        AnyValueView::Bytes(b) => {
            out.push('"');
            base64::engine::general_purpose::STANDARD.encode_string(b, out);
            out.push('"');
        }
        AnyValueView::Array(values) => {
            out.push('[');
            for (i, element) in values.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value(out, element);
            }
            out.push(']');
        }
        AnyValueView::KvList(entries) => {
            out.push('{');
            for (i, kv) in entries.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(out, kv.key);
                out.push(':');
                value(out, kv.value);
            }
            out.push('}');
        }
    }
}

/// A JSON string with RFC 8259 escaping.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                out.push_str("\\u00");
                out.push(char::from(b"0123456789abcdef"[(u32::from(c) >> 4) as usize]));
                out.push(char::from(b"0123456789abcdef"[(u32::from(c) & 0xf) as usize]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use spanpipe_core::{Attributes, BatchWriter};

    #[test]
    fn nested_values_render_as_json() {
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.scope_spans(|ss| {
                ss.span(|s| {
                    s.trace_id(&[1; 16]).span_id(&[2; 8]);
                    s.attribute("a", |v| {
                        v.array(|a| {
                            a.value(|v| v.string("x\"\n\u{1}"));
                            a.value(|v| v.int(-3));
                            a.value(|v| v.double(f64::NAN));
                            a.value(|v| v.bytes(b"hi"));
                            a.value(|v| {
                                v.kvlist(|kv| {
                                    kv.bool_attribute("k", true);
                                    kv.double_attribute("d", 1.5);
                                })
                            });
                            a.value(|_| {});
                        })
                    });
                });
            });
        });
        let batch = writer.finish().unwrap();
        let value = batch.span(0).unwrap().attributes().get("a").unwrap();
        let mut out = String::new();
        super::value(&mut out, value);
        assert_eq!(out, r#"["x\"\n\u0001",-3,"NaN","aGk=",{"k":true,"d":1.5},null]"#);
    }
}
