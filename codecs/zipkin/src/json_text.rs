//! Writing JSON text: strings escaped per RFC 8259 and OTLP attribute values as JSON, shared by
//! the Zipkin JSON encoder and by tag values that hold arrays, maps or event attributes.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use spanpipe_core::{AnyValueView, KeyValues};

/// Appends `text` as a JSON string literal.
pub(crate) fn push_string(out: &mut String, text: &str) {
    out.push('"');
    let mut clean_from = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[clean_from..at]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        clean_from = at + 1;
    }
    out.push_str(&text[clean_from..]);
    out.push('"');
}

/// A double as text: the shortest digits that read back to the same value, never an exponent
/// (Go's `strconv.FormatFloat(v, 'f', -1, 64)`, which the Collector uses), `NaN`, `+Inf`, `-Inf`.
pub(crate) fn push_double(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

/// An attribute value as a tag value: strings as they are, other scalars as text, bytes in
/// standard base64, arrays and maps as JSON (the specification: "serialized to string like a
/// JSON list").
pub(crate) fn push_tag_value(out: &mut String, value: &AnyValueView<'_>) {
    match value {
        AnyValueView::Empty => {}
        AnyValueView::String(s) => out.push_str(s),
        AnyValueView::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        AnyValueView::Int(int) => out.push_str(itoa::Buffer::new().format(*int)),
        AnyValueView::Double(double) => push_double(out, *double),
        AnyValueView::Bytes(bytes) => STANDARD.encode_string(bytes, out),
        AnyValueView::Array(_) | AnyValueView::KvList(_) => push_json_value(out, value),
    }
}

/// An attribute value as a JSON value. Doubles always carry a fraction or exponent so that they
/// read back as doubles; non-finite ones, which JSON cannot hold, are written as strings.
pub(crate) fn push_json_value(out: &mut String, value: &AnyValueView<'_>) {
    match value {
        AnyValueView::Empty => out.push_str("null"),
        AnyValueView::String(s) => push_string(out, s),
        AnyValueView::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        AnyValueView::Int(int) => out.push_str(itoa::Buffer::new().format(*int)),
        AnyValueView::Double(double) if double.is_finite() => out.push_str(ryu::Buffer::new().format_finite(*double)),
        AnyValueView::Double(double) => {
            out.push('"');
            push_double(out, *double);
            out.push('"');
        }
        AnyValueView::Bytes(bytes) => {
            out.push('"');
            STANDARD.encode_string(bytes, out);
            out.push('"');
        }
        AnyValueView::Array(values) => {
            out.push('[');
            for (i, item) in values.clone().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_value(out, &item);
            }
            out.push(']');
        }
        AnyValueView::KvList(entries) => push_json_object(out, entries.clone()),
    }
}

/// Key-value pairs as a JSON object.
pub(crate) fn push_json_object(out: &mut String, entries: KeyValues<'_>) {
    out.push('{');
    for (i, kv) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(out, kv.key);
        out.push(':');
        push_json_value(out, &kv.value);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_control_characters() {
        let mut out = String::new();
        push_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn doubles_are_written_as_go_writes_them() {
        for (value, text) in
            [(1.5, "1.5"), (1e21, "1000000000000000000000"), (f64::INFINITY, "+Inf"), (f64::NAN, "NaN")]
        {
            let mut out = String::new();
            push_double(&mut out, value);
            assert_eq!(out, text);
        }
    }
}
