//! Canonical batch → OTLP/JSON, written straight into the output buffer.
//!
//! The output is what the OTLP specification calls the JSON Protobuf Encoding, in its canonical
//! form: lowerCamelCase keys, lower-case hex ids, enums as integers, 64-bit integers as decimal
//! strings, 32-bit ones as numbers, doubles as numbers (or `"NaN"`, `"Infinity"`, `"-Infinity"`),
//! bytes as padded standard base64, proto3 default scalars left out, no whitespace. Keys follow
//! the order of the opentelemetry-proto message definitions.
//!
//! Empty containers that exist on the wire are kept (`"resource":{}`, a `ScopeSpans` without
//! spans, `"status":{}`, `"value":{}`), so protobuf → JSON → protobuf loses nothing the views can
//! see. No serde and no intermediate values: itoa, ryu, and hand-written hex, base64 and string
//! escaping append to one `Vec<u8>`.

use spanpipe_core::{
    AnyValueView, EntityRefView, EventView, KeyValueView, KeyValues, LinkView, ResourceView, ScopeView, SpanBatch,
    SpanView,
};

/// Appends the OTLP/JSON encoding of `batch` to `out`.
///
/// Decoding the output with [`super::decode`] gives back the same spans (see the module docs of
/// [`super`] for the few things JSON cannot carry), and encoding that again gives the same bytes.
pub fn encode(batch: &SpanBatch, out: &mut Vec<u8>) {
    // JSON is usually two to three times the protobuf size (hex ids, keys, quoting).
    out.reserve(batch.encoded_len().saturating_mul(5) / 2 + 2);
    let mut o = Object::open(out);
    let mut resources = batch.resources().peekable();
    if resources.peek().is_some() {
        let out = o.key(b"resourceSpans");
        out.push(b'[');
        for (i, resource) in resources.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            resource_spans(out, &resource);
        }
        out.push(b']');
    }
    o.close();
}

/// Writes one JSON object's members, placing the commas.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    /// Starts a member: writes the separator and `"key":`, and hands out the buffer for the value.
    /// Keys are fixed field names that need no escaping.
    #[inline]
    fn key(&mut self, key: &[u8]) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key);
        self.out.extend_from_slice(b"\":");
        self.out
    }

    #[inline]
    fn string(&mut self, key: &[u8], value: &str) {
        let out = self.key(key);
        write_str(out, value);
    }

    /// A string field, left out when empty (the proto3 default).
    #[inline]
    fn non_empty_string(&mut self, key: &[u8], value: &str) {
        if !value.is_empty() {
            self.string(key, value);
        }
    }

    /// A `uint32`/`fixed32` field as a number, left out when zero.
    #[inline]
    fn non_zero_u32(&mut self, key: &[u8], value: u32) {
        if value != 0 {
            let out = self.key(key);
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
    }

    /// An enum field as its number, left out when zero.
    #[inline]
    fn non_zero_i32(&mut self, key: &[u8], value: i32) {
        if value != 0 {
            let out = self.key(key);
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
    }

    /// A `fixed64` field as a decimal string, left out when zero.
    #[inline]
    fn non_zero_u64(&mut self, key: &[u8], value: u64) {
        if value != 0 {
            let out = self.key(key);
            out.push(b'"');
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
            out.push(b'"');
        }
    }

    #[inline]
    fn hex(&mut self, key: &[u8], id: &[u8]) {
        let out = self.key(key);
        write_hex(out, id);
    }

    /// A repeated `KeyValue` field, left out when there are none.
    fn attributes(&mut self, key: &[u8], attributes: KeyValues<'_>) {
        let mut open = false;
        for attribute in attributes {
            if open {
                self.out.push(b',');
            } else {
                self.key(key).push(b'[');
                open = true;
            }
            key_value(self.out, &attribute);
        }
        if open {
            self.out.push(b']');
        }
    }

    /// A repeated string field, left out when there are none (empty strings in it are kept).
    fn strings<'s>(&mut self, key: &[u8], strings: impl Iterator<Item = &'s str>) {
        let mut open = false;
        for text in strings {
            if open {
                self.out.push(b',');
            } else {
                self.key(key).push(b'[');
                open = true;
            }
            write_str(self.out, text);
        }
        if open {
            self.out.push(b']');
        }
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

fn resource_spans(out: &mut Vec<u8>, resource: &ResourceView<'_>) {
    let mut o = Object::open(out);
    if resource.is_present() {
        let mut r = Object::open(o.key(b"resource"));
        r.attributes(b"attributes", resource.attributes());
        r.non_zero_u32(b"droppedAttributesCount", resource.dropped_attributes_count());
        let mut entity_refs = resource.entity_refs().peekable();
        if entity_refs.peek().is_some() {
            let out = r.key(b"entityRefs");
            out.push(b'[');
            for (i, entity_ref) in entity_refs.enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                self::entity_ref(out, &entity_ref);
            }
            out.push(b']');
        }
        r.close();
    }
    let mut scopes = resource.scopes().peekable();
    if scopes.peek().is_some() {
        let out = o.key(b"scopeSpans");
        out.push(b'[');
        for (i, scope) in scopes.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            scope_spans(out, &scope);
        }
        out.push(b']');
    }
    o.non_empty_string(b"schemaUrl", resource.schema_url());
    o.close();
}

fn entity_ref(out: &mut Vec<u8>, entity_ref: &EntityRefView<'_>) {
    let mut o = Object::open(out);
    o.non_empty_string(b"schemaUrl", entity_ref.schema_url);
    o.non_empty_string(b"type", entity_ref.entity_type);
    o.strings(b"idKeys", entity_ref.id_keys());
    o.strings(b"descriptionKeys", entity_ref.description_keys());
    o.close();
}

fn scope_spans(out: &mut Vec<u8>, scope: &ScopeView<'_>) {
    let mut o = Object::open(out);
    if scope.is_present() {
        let mut s = Object::open(o.key(b"scope"));
        s.non_empty_string(b"name", scope.name());
        s.non_empty_string(b"version", scope.version());
        s.attributes(b"attributes", scope.attributes());
        s.non_zero_u32(b"droppedAttributesCount", scope.dropped_attributes_count());
        s.close();
    }
    let mut spans = scope.spans().peekable();
    if spans.peek().is_some() {
        let out = o.key(b"spans");
        out.push(b'[');
        for (i, span) in spans.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self::span(out, &span);
        }
        out.push(b']');
    }
    o.non_empty_string(b"schemaUrl", scope.schema_url());
    o.close();
}

fn span(out: &mut Vec<u8>, span: &SpanView<'_>) {
    // One walk over the span's bytes for every field the index does not hold.
    let details = span.details();
    let mut o = Object::open(out);
    // Ids are always written: the index guarantees them, and receivers require them.
    o.hex(b"traceId", span.trace_id());
    o.hex(b"spanId", span.span_id());
    o.non_empty_string(b"traceState", details.trace_state);
    if let Some(parent) = span.parent_span_id() {
        o.hex(b"parentSpanId", parent);
    }
    o.non_zero_u32(b"flags", span.flags());
    o.non_empty_string(b"name", span.name());
    o.non_zero_i32(b"kind", span.kind().as_i32());
    o.non_zero_u64(b"startTimeUnixNano", span.start_time_unix_nano());
    o.non_zero_u64(b"endTimeUnixNano", span.end_time_unix_nano());
    o.attributes(b"attributes", details.attributes());
    o.non_zero_u32(b"droppedAttributesCount", details.dropped_attributes_count);
    let mut events = details.events().peekable();
    if events.peek().is_some() {
        let out = o.key(b"events");
        out.push(b'[');
        for (i, event) in events.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self::event(out, &event);
        }
        out.push(b']');
    }
    o.non_zero_u32(b"droppedEventsCount", details.dropped_events_count);
    let mut links = details.links().peekable();
    if links.peek().is_some() {
        let out = o.key(b"links");
        out.push(b'[');
        for (i, link) in links.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self::link(out, &link);
        }
        out.push(b']');
    }
    o.non_zero_u32(b"droppedLinksCount", details.dropped_links_count);
    if let Some(status) = details.status {
        let mut s = Object::open(o.key(b"status"));
        s.non_empty_string(b"message", status.message);
        s.non_zero_i32(b"code", status.code.as_i32());
        s.close();
    }
    o.close();
}

fn event(out: &mut Vec<u8>, event: &EventView<'_>) {
    let mut o = Object::open(out);
    o.non_zero_u64(b"timeUnixNano", event.time_unix_nano);
    o.non_empty_string(b"name", event.name);
    o.attributes(b"attributes", event.attributes());
    o.non_zero_u32(b"droppedAttributesCount", event.dropped_attributes_count);
    o.close();
}

/// A link. Its ids are always written (the index guarantees them, as for spans).
fn link(out: &mut Vec<u8>, link: &LinkView<'_>) {
    let mut o = Object::open(out);
    o.hex(b"traceId", &link.trace_id);
    o.hex(b"spanId", &link.span_id);
    o.non_empty_string(b"traceState", link.trace_state);
    o.attributes(b"attributes", link.attributes());
    o.non_zero_u32(b"droppedAttributesCount", link.dropped_attributes_count);
    o.non_zero_u32(b"flags", link.flags);
    o.close();
}

fn key_value(out: &mut Vec<u8>, attribute: &KeyValueView<'_>) {
    let mut o = Object::open(out);
    o.non_empty_string(b"key", attribute.key);
    // An absent value message and an empty one differ on the wire: only the second is written.
    if attribute.has_value {
        any_value(o.key(b"value"), &attribute.value);
    }
    o.close();
}

/// An `AnyValue`. Its content is written even when it is a default (`""`, `0`, `false`, an empty
/// array), because which member of the oneof is set is information.
fn any_value(out: &mut Vec<u8>, value: &AnyValueView<'_>) {
    let mut o = Object::open(out);
    match value {
        AnyValueView::Empty => {}
        AnyValueView::String(text) => o.string(b"stringValue", text),
        AnyValueView::Bool(flag) => {
            let out = o.key(b"boolValue");
            out.extend_from_slice(if *flag { b"true" } else { b"false" });
        }
        AnyValueView::Int(int) => {
            let out = o.key(b"intValue");
            out.push(b'"');
            out.extend_from_slice(itoa::Buffer::new().format(*int).as_bytes());
            out.push(b'"');
        }
        AnyValueView::Double(double) => write_double(o.key(b"doubleValue"), *double),
        AnyValueView::Bytes(bytes) => {
            let out = o.key(b"bytesValue");
            out.push(b'"');
            write_base64(out, bytes);
            out.push(b'"');
        }
        AnyValueView::Array(values) => {
            let mut a = Object::open(o.key(b"arrayValue"));
            let mut open = false;
            for element in values.clone() {
                if open {
                    a.out.push(b',');
                } else {
                    a.key(b"values").push(b'[');
                    open = true;
                }
                any_value(a.out, &element);
            }
            if open {
                a.out.push(b']');
            }
            a.close();
        }
        AnyValueView::KvList(entries) => {
            let mut l = Object::open(o.key(b"kvlistValue"));
            l.attributes(b"values", entries.clone());
            l.close();
        }
    }
    o.close();
}

/// A double as a JSON number (shortest round-trip form), or one of the three strings the
/// protobuf JSON mapping uses for values JSON numbers cannot express.
pub(super) fn write_double(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    } else if value.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if value > 0.0 {
        out.extend_from_slice(b"\"Infinity\"");
    } else {
        out.extend_from_slice(b"\"-Infinity\"");
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex in quotes.
pub(super) fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    // Ids are 8 or 16 bytes: each chunk is spelled into a stack buffer and appended at once.
    const CHUNK: usize = 16;
    out.reserve(bytes.len() * 2 + 2);
    out.push(b'"');
    for chunk in bytes.chunks(CHUNK) {
        let mut digits = [0u8; 2 * CHUNK];
        for (pair, &byte) in digits.chunks_exact_mut(2).zip(chunk) {
            pair[0] = HEX_DIGITS[usize::from(byte >> 4)];
            pair[1] = HEX_DIGITS[usize::from(byte & 0x0F)];
        }
        out.extend_from_slice(&digits[..2 * chunk.len()]);
    }
    out.push(b'"');
}

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), without quotes.
pub(super) fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let symbol = |index: u32| BASE64_ALPHABET[(index & 0x3F) as usize];
    out.reserve(bytes.len().div_ceil(3) * 4);
    let mut chunks = bytes.chunks_exact(3);
    for chunk in &mut chunks {
        let &[a, b, c] = chunk else { continue };
        let group = u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c);
        out.extend_from_slice(&[symbol(group >> 18), symbol(group >> 12), symbol(group >> 6), symbol(group)]);
    }
    match *chunks.remainder() {
        [a] => {
            let group = u32::from(a) << 16;
            out.extend_from_slice(&[symbol(group >> 18), symbol(group >> 12), b'=', b'=']);
        }
        [a, b] => {
            let group = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[symbol(group >> 18), symbol(group >> 12), symbol(group >> 6), b'=']);
        }
        _ => {}
    }
}

/// How each byte is written inside a JSON string: 0 as itself, `u` as `\u00XX`, anything else as
/// a backslash followed by that character. RFC 8259 requires escaping `"`, `\` and the control
/// characters below 0x20; everything else, including non-ASCII UTF-8, passes through.
static ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0A] = b'n';
    table[0x0C] = b'f';
    table[0x0D] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// A JSON string literal, quotes included.
pub(super) fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if needs_escape(bytes) {
        write_escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

/// Whether any byte of `bytes` must be escaped in a JSON string, eight bytes at a time: nearly
/// every string in telemetry needs no escape and is then copied whole.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if word_needs_escape(u64::from_le_bytes(word)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&byte| ESCAPES[usize::from(byte)] != 0)
}

/// Whether one of the eight bytes of `word` is a control character (below 0x20), `"` or `\`.
/// The classic SWAR tests ("Bit Twiddling Hacks", hasless and haszero): exact as to whether any
/// byte matches, though not as to which.
#[inline]
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    control | quote | backslash != 0
}

/// The body of a string that holds at least one byte to escape. Runs of bytes that need no
/// escape are copied whole.
#[cold]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape = ESCAPES[usize::from(byte)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        start = i + 1;
        if escape == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX_DIGITS[usize::from(byte >> 4)],
                HEX_DIGITS[usize::from(byte & 0x0F)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
}
