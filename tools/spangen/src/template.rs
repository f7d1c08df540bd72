//! Request templates: traces generated once, encoded once, and patched in place per request.
//!
//! A template is one complete request body (OTLP protobuf, or OTLP/JSON made from it by
//! spanpipe-codecs' encoder) whose trace ids, span ids and times are placeholders, plus the list of
//! byte offsets where those placeholders sit. A request is a copy of the body with each offset
//! overwritten: new ids from the run's [`IdScheme`] and times relative to the request's scheduled
//! send time. Nothing is encoded per request, so generating a span costs a few bytes of `memcpy`
//! and three or four small writes.
//!
//! Finding the offsets: the placeholders encode what they stand for (span placeholder `n` is
//! `0x5A5A…` followed by `n + 1`, trace placeholder `t` is eight `0xA5` bytes followed by
//! `t + 1`; times are `10^18` plus the span's offset from the request time), so the locators only
//! have to find id and time fields and read their values. For protobuf the locator walks each
//! span's fields from the byte range the batch index gives. For JSON it finds the quoted keys
//! (`"spanId":"` …): JSON escapes every quote inside a string value, so such a key cannot occur
//! inside an attribute's value. Times are fixed width in both encodings — eight bytes in
//! protobuf, nineteen decimal digits in JSON for every instant between 2001 and 2286 — which is
//! what makes in-place patching possible.
//!
//! Protocols other than OTLP are encoded from the patched protobuf per request ([`crate::wire`]).
//! Building a template also runs its placeholder body through the protocol's encoder and decoder
//! once, to record what `--verify` must expect of each span in that protocol's form.

use spanpipe_core::wire::Fields;
use spanpipe_core::{Attributes as _, BatchWriter, ScanError, SpanBatch, SpanWriter};

use crate::ids::{IdScheme, SplitMix};
use crate::profile::Profile;
use crate::verify::fingerprint;
use crate::wire::Wire;

/// The encoding of request bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// OTLP protobuf (`application/x-protobuf`, and gRPC).
    Protobuf,
    /// OTLP/JSON (`application/json`).
    Json,
}

/// Placeholder times are this plus the span's offset: nineteen digits, like every real
/// nanosecond timestamp between 2001 and 2286.
const TIME_PLACEHOLDER_BASE: u64 = 1_000_000_000_000_000_000;
/// Real times must stay within the nineteen-digit range to patch JSON in place.
const TIME_LIMIT: u64 = 10_000_000_000_000_000_000 - 1;
const SPAN_PLACEHOLDER_TAG: u64 = 0x5A5A << 48;
const TRACE_PLACEHOLDER_PREFIX: [u8; 8] = [0xA5; 8];

/// What is written at one offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PatchKind {
    /// The id of the template's trace number `n`.
    TraceId(u32),
    /// The id of the template's span number `n` (its position in the batch).
    SpanId(u32),
    /// The request time plus this many nanoseconds.
    Time(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Patch {
    at: u32,
    kind: PatchKind,
}

/// The [`fingerprint`] of each template span in its *expected form*: the span as the protocol's
/// receiver will read it, i.e. after the protocol's encoder and decoder ([`Wire::round_trip`]),
/// found by its placeholder span id (a protocol may regroup or reorder spans).
fn expected_fingerprints(wire: Wire, body: &[u8], span_count: usize) -> Result<Vec<u64>, TemplateError> {
    let mut fingerprints = vec![None; span_count];
    for batch in wire.round_trip(body)? {
        for span in batch.spans() {
            let slot = match placeholder_kind(span.span_id()) {
                Some(PatchKind::SpanId(position)) => fingerprints.get_mut(position as usize),
                _ => None,
            };
            let slot = slot.ok_or_else(|| {
                TemplateError::Layout(format!("{} gave back a span with an id spangen did not write", wire.name()))
            })?;
            if slot.replace(fingerprint(&span)).is_some() {
                return Err(TemplateError::Layout(format!("{} gave back a span twice", wire.name())));
            }
        }
    }
    fingerprints
        .into_iter()
        .enumerate()
        .map(|(position, found)| {
            found.ok_or_else(|| TemplateError::Layout(format!("{} lost template span {position}", wire.name())))
        })
        .collect()
}

/// What `--verify` expects of a template's span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateSpan {
    /// The template's trace number the span belongs to.
    pub trace: u32,
    /// The parent's position in the template, for spans that have one.
    pub parent: Option<u32>,
    /// [`fingerprint`] of its service, name, kind and attributes, in the form the protocol's
    /// mapping gives them.
    pub fingerprint: u64,
}

/// Where a request's ids and times come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestIds {
    /// Span number of the template's span 0; span `n` gets number `span_base + n`.
    pub span_base: u64,
    /// Trace number of the template's trace 0.
    pub trace_base: u64,
    /// The request's time, in nanoseconds since the Unix epoch.
    pub time_nanos: u64,
}

/// Why a template could not be built or patched.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The span writer refused what the generator wrote (a bug in the generator).
    #[error("the generated template does not index: {0}")]
    Scan(#[from] ScanError),
    /// A placeholder was not where the encoding should have put it (a bug in a locator).
    #[error("template encoding: {0}")]
    Layout(String),
    /// The protocol's codec could not carry the template (a bug in spangen or the codec).
    #[error(transparent)]
    Wire(#[from] crate::wire::WireError),
    /// A time does not fit the fixed-width encoding.
    #[error("time {0} ns since the epoch is outside 2001..2286, which in-place patching needs")]
    TimeOutOfRange(u64),
}

/// One request body with the offsets to patch.
#[derive(Clone, Debug)]
pub struct Template {
    body: Vec<u8>,
    format: BodyFormat,
    patches: Vec<Patch>,
    spans: Vec<TemplateSpan>,
    traces: u32,
}

impl Template {
    /// Generates `span_count` spans of whole traces (the last one cut short where the request is
    /// full) in the shape of `profile`, from `seed`, and encodes them as `wire` needs them
    /// ([`Wire::template_format`]).
    ///
    /// # Errors
    /// Only on a bug: [`TemplateError::Scan`] or [`TemplateError::Layout`].
    pub fn build(profile: &Profile, seed: u64, span_count: u32, wire: Wire) -> Result<Self, TemplateError> {
        let generated = generate(profile, seed, span_count);
        let batch = write(&generated)?;
        let format = wire.template_format();
        let (body, patches) = match format {
            BodyFormat::Protobuf => {
                let patches = locate_protobuf(&batch)?;
                (batch.bytes().to_vec(), patches)
            }
            BodyFormat::Json => {
                let mut json = Vec::new();
                spanpipe_codecs::otlp_json::encode(&batch, &mut json);
                let patches = locate_json(&json)?;
                let expected = locate_protobuf(&batch)?.len();
                if patches.len() != expected {
                    return Err(TemplateError::Layout(format!(
                        "{} id and time fields in the JSON, {expected} in the protobuf",
                        patches.len()
                    )));
                }
                (json, patches)
            }
        };
        let fingerprints = expected_fingerprints(wire, &body, generated.spans.len())?;
        let spans = generated
            .spans
            .iter()
            .zip(fingerprints)
            .map(|(span, fingerprint)| TemplateSpan { trace: span.trace, parent: span.parent, fingerprint })
            .collect();
        Ok(Self { body, format, patches, spans, traces: generated.traces })
    }

    /// Number of spans in a request.
    #[must_use]
    pub fn span_count(&self) -> usize {
        self.spans.len()
    }

    /// Number of traces (whole or cut short) in a request.
    #[must_use]
    pub fn trace_count(&self) -> u32 {
        self.traces
    }

    /// The spans, in batch order.
    #[must_use]
    pub fn spans(&self) -> &[TemplateSpan] {
        &self.spans
    }

    /// Size of a request body in bytes.
    #[must_use]
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// Writes the request body for `request` into `out` (cleared first).
    ///
    /// # Errors
    /// [`TemplateError::TimeOutOfRange`] for a time outside the nineteen-digit range.
    pub fn render(&self, ids: &IdScheme, request: RequestIds, out: &mut Vec<u8>) -> Result<(), TemplateError> {
        if !(TIME_PLACEHOLDER_BASE..TIME_LIMIT - 4_000_000_000_000).contains(&request.time_nanos) {
            return Err(TemplateError::TimeOutOfRange(request.time_nanos));
        }
        out.clear();
        out.extend_from_slice(&self.body);
        let mut digits = itoa::Buffer::new();
        for patch in &self.patches {
            let at = patch.at as usize;
            match (self.format, patch.kind) {
                (BodyFormat::Protobuf, PatchKind::TraceId(trace)) => {
                    out[at..at + 16].copy_from_slice(&ids.trace_id(request.trace_base + u64::from(trace)));
                }
                (BodyFormat::Protobuf, PatchKind::SpanId(span)) => {
                    out[at..at + 8].copy_from_slice(&ids.span_id(request.span_base + u64::from(span)));
                }
                (BodyFormat::Protobuf, PatchKind::Time(offset)) => {
                    out[at..at + 8].copy_from_slice(&(request.time_nanos + offset).to_le_bytes());
                }
                (BodyFormat::Json, PatchKind::TraceId(trace)) => {
                    write_hex(&mut out[at..at + 32], &ids.trace_id(request.trace_base + u64::from(trace)));
                }
                (BodyFormat::Json, PatchKind::SpanId(span)) => {
                    write_hex(&mut out[at..at + 16], &ids.span_id(request.span_base + u64::from(span)));
                }
                (BodyFormat::Json, PatchKind::Time(offset)) => {
                    out[at..at + 19].copy_from_slice(digits.format(request.time_nanos + offset).as_bytes());
                }
            }
        }
        Ok(())
    }
}

fn write_hex(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xF)];
    }
}

/// A generated span, before encoding.
#[derive(Clone, Debug)]
struct GeneratedSpan {
    trace: u32,
    parent: Option<u32>,
    service: u32,
    name: String,
    kind: i32,
    start: u64,
    end: u64,
    error: bool,
    attributes: Vec<(String, Value)>,
    events: Vec<(String, u64)>,
    /// (trace, span) of the linked span.
    link: Option<(u32, u32)>,
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Double(f64),
}

#[derive(Debug)]
struct Generated {
    /// In batch order: grouped by service, and within a service in generation order.
    spans: Vec<GeneratedSpan>,
    traces: u32,
}

const SPAN_KIND_INTERNAL: i32 = 1;
const SPAN_KIND_SERVER: i32 = 2;
const SPAN_KIND_CLIENT: i32 = 3;
const SPAN_KIND_PRODUCER: i32 = 4;
const SPAN_KIND_CONSUMER: i32 = 5;
const SERVICE_NAMES: [&str; 8] = ["frontend", "checkout", "cart", "payment", "inventory", "shipping", "email", "ads"];
const ROUTES: [&str; 6] =
    ["/api/cart", "/api/checkout", "/api/products/{id}", "/api/orders", "/health", "/api/users/{id}"];
const METHODS: [&str; 4] = ["GET", "GET", "POST", "PUT"];
const VALUE_ALPHABET: &[u8; 64] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

fn service_name(service: u32) -> String {
    let base = SERVICE_NAMES[service as usize % SERVICE_NAMES.len()];
    match service as usize / SERVICE_NAMES.len() {
        0 => base.to_owned(),
        round => format!("{base}-{round}"),
    }
}

/// Generates whole traces until `span_count` spans are made, then orders them by service.
fn generate(profile: &Profile, seed: u64, span_count: u32) -> Generated {
    let mut random = SplitMix::new(seed);
    let mut spans: Vec<GeneratedSpan> = Vec::with_capacity(span_count as usize);
    let mut previous_root: Option<(u32, u32)> = None;
    let mut trace = 0;
    while spans.len() < span_count as usize {
        let root = spans.len() as u32;
        let duration = profile.root_duration_nanos(&mut random);
        let service = random.between(0, profile.services - 1);
        let mut root_span = new_span(profile, &mut random, trace, None, service, SPAN_KIND_SERVER, 0, duration);
        if random.chance(profile.link_ratio) {
            root_span.link = previous_root;
        }
        spans.push(root_span);
        // Breadth-first, so a trace cut short by the request size keeps its upper levels.
        let mut level = vec![root];
        for _ in 0..profile.depth {
            let mut next_level = Vec::new();
            for &parent in &level {
                let children = random.between(1, profile.fan_out);
                for _ in 0..children {
                    if spans.len() >= span_count as usize {
                        break;
                    }
                    let child = child_of(profile, &mut random, &spans[parent as usize], parent);
                    next_level.push(spans.len() as u32);
                    spans.push(child);
                }
            }
            level = next_level;
        }
        previous_root = Some((trace, root));
        trace += 1;
    }
    // Batch order groups spans by service (one ResourceSpans each); positions change, so parent
    // and link references are renumbered.
    let mut order: Vec<u32> = (0..spans.len() as u32).collect();
    order.sort_by_key(|&index| spans[index as usize].service);
    let mut position = vec![0u32; spans.len()];
    for (new, &old) in order.iter().enumerate() {
        position[old as usize] = new as u32;
    }
    let ordered = order
        .iter()
        .map(|&old| {
            let mut span = spans[old as usize].clone();
            span.parent = span.parent.map(|parent| position[parent as usize]);
            span.link = span.link.map(|(trace, span)| (trace, position[span as usize]));
            span
        })
        .collect();
    Generated { spans: ordered, traces: trace }
}

fn child_of(profile: &Profile, random: &mut SplitMix, parent: &GeneratedSpan, parent_index: u32) -> GeneratedSpan {
    let (kind, service) = match parent.kind {
        SPAN_KIND_CLIENT => (SPAN_KIND_SERVER, (parent.service + 1) % profile.services),
        SPAN_KIND_PRODUCER => (SPAN_KIND_CONSUMER, (parent.service + 1) % profile.services),
        _ if profile.services > 1 && random.chance(0.6) => {
            (if random.chance(0.1) { SPAN_KIND_PRODUCER } else { SPAN_KIND_CLIENT }, parent.service)
        }
        _ => (SPAN_KIND_INTERNAL, parent.service),
    };
    let parent_duration = parent.end - parent.start;
    let start = parent.start + (random.unit() * 0.5 * parent_duration as f64) as u64;
    let duration = ((parent.end - start) as f64 * (0.1 + 0.8 * random.unit())) as u64;
    new_span(profile, random, parent.trace, Some(parent_index), service, kind, start, start + duration.max(1))
}

#[allow(clippy::too_many_arguments, reason = "one call site per span kind origin; a struct would only rename them")]
fn new_span(
    profile: &Profile,
    random: &mut SplitMix,
    trace: u32,
    parent: Option<u32>,
    service: u32,
    kind: i32,
    start: u64,
    end: u64,
) -> GeneratedSpan {
    let error = random.chance(profile.error_ratio);
    let mut attributes = Vec::new();
    let name = if profile.http_conventions {
        let method = METHODS[random.between(0, METHODS.len() as u32 - 1) as usize];
        let route = ROUTES[random.between(0, ROUTES.len() as u32 - 1) as usize];
        if matches!(kind, SPAN_KIND_SERVER | SPAN_KIND_CLIENT) {
            attributes.push(("http.request.method".to_owned(), Value::Str(method.to_owned())));
            attributes.push(("http.route".to_owned(), Value::Str(route.to_owned())));
            attributes.push(("http.response.status_code".to_owned(), Value::Int(if error { 500 } else { 200 })));
            attributes.push(("server.address".to_owned(), Value::Str(format!("{}.internal", service_name(service)))));
            format!("{method} {route}")
        } else {
            format!("{} work", service_name(service))
        }
    } else {
        format!("operation-{}", random.between(0, 15))
    };
    if profile.attributes > 0 {
        // Distinct keys: consecutive ones from a random start, wrapping around the key space.
        let first_key = random.between(0, profile.attribute_keys - 1);
        for offset in 0..profile.attributes {
            let key = format!("attr.{}", (first_key + offset) % profile.attribute_keys);
            let value = match random.between(0, 9) {
                0 => Value::Int(random.next_u64() as i64 >> 20),
                1 => Value::Bool(random.chance(0.5)),
                // Multiples of 1/8: exact in binary and in three decimals, so every JSON parser on
                // the way (some are not correctly rounded) reads back the very same double.
                2 => Value::Double((random.next_u64() % 80_000) as f64 / 8.0),
                _ => Value::Str(
                    (0..profile.attribute_value_size)
                        .map(|_| char::from(VALUE_ALPHABET[(random.next_u64() % 64) as usize]))
                        .collect(),
                ),
            };
            attributes.push((key, value));
        }
    }
    let events = (0..random.between(0, profile.events))
        .map(|number| (format!("event-{number}"), start + (random.unit() * (end - start) as f64) as u64))
        .collect();
    GeneratedSpan { trace, parent, service, name, kind, start, end, error, attributes, events, link: None }
}

fn span_placeholder(position: u32) -> [u8; 8] {
    (SPAN_PLACEHOLDER_TAG | (u64::from(position) + 1)).to_be_bytes()
}

fn trace_placeholder(trace: u32) -> [u8; 16] {
    let mut id = [0; 16];
    id[..8].copy_from_slice(&TRACE_PLACEHOLDER_PREFIX);
    id[8..].copy_from_slice(&(u64::from(trace) + 1).to_be_bytes());
    id
}

/// Encodes the generated spans with placeholder ids and times, one `ResourceSpans` per service.
fn write(generated: &Generated) -> Result<SpanBatch, TemplateError> {
    let mut writer = BatchWriter::with_capacity(generated.spans.len() * 256);
    let mut position = 0;
    for service_spans in generated.spans.chunk_by(|a, b| a.service == b.service) {
        let service = service_spans[0].service;
        writer.resource_spans(|resource_spans| {
            resource_spans.resource(|resource| {
                resource.str_attribute("service.name", &service_name(service));
                resource.str_attribute("service.version", "1.4.2");
                resource.str_attribute("host.name", &format!("node-{service}"));
            });
            resource_spans.scope_spans(|scope_spans| {
                scope_spans.scope(|scope| {
                    scope.name("spangen").version(env!("CARGO_PKG_VERSION"));
                });
                for span in service_spans {
                    scope_spans.span(|writer| write_span(writer, span, position));
                    position += 1;
                }
            });
        });
    }
    Ok(writer.finish()?)
}

fn write_span(writer: &mut SpanWriter<'_>, span: &GeneratedSpan, position: u32) {
    writer.trace_id(&trace_placeholder(span.trace)).span_id(&span_placeholder(position));
    if let Some(parent) = span.parent {
        writer.parent_span_id(&span_placeholder(parent));
    }
    writer
        .name(&span.name)
        .kind(span.kind)
        .start_time_unix_nano(TIME_PLACEHOLDER_BASE + span.start)
        .end_time_unix_nano(TIME_PLACEHOLDER_BASE + span.end);
    for (key, value) in &span.attributes {
        match value {
            Value::Str(text) => writer.str_attribute(key, text),
            Value::Int(number) => writer.int_attribute(key, *number),
            Value::Bool(flag) => writer.bool_attribute(key, *flag),
            Value::Double(number) => writer.double_attribute(key, *number),
        }
    }
    for (name, time) in &span.events {
        writer.event(|event| {
            event.time_unix_nano(TIME_PLACEHOLDER_BASE + time).name(name);
        });
    }
    if let Some((trace, linked)) = span.link {
        writer.link(|link| {
            link.trace_id(&trace_placeholder(trace)).span_id(&span_placeholder(linked));
        });
    }
    if span.error {
        writer.status(2, "generated error");
    }
}

/// What a placeholder id or time stands for.
fn placeholder_kind(value: &[u8]) -> Option<PatchKind> {
    match value.len() {
        8 => {
            let id = u64::from_be_bytes(value.try_into().ok()?);
            (id & !0xFFFF_FFFF == SPAN_PLACEHOLDER_TAG && id & 0xFFFF_FFFF != 0)
                .then(|| PatchKind::SpanId((id & 0xFFFF_FFFF) as u32 - 1))
        }
        16 => {
            let suffix = u64::from_be_bytes(value[8..].try_into().ok()?);
            (value[..8] == TRACE_PLACEHOLDER_PREFIX && suffix != 0 && suffix <= u64::from(u32::MAX))
                .then(|| PatchKind::TraceId(suffix as u32 - 1))
        }
        _ => None,
    }
}

fn time_patch(nanos: u64) -> Option<PatchKind> {
    nanos.checked_sub(TIME_PLACEHOLDER_BASE).filter(|offset| *offset < TIME_PLACEHOLDER_BASE).map(PatchKind::Time)
}

const SPAN_TRACE_ID: u32 = 1;
const SPAN_SPAN_ID: u32 = 2;
const SPAN_PARENT_SPAN_ID: u32 = 4;
const SPAN_START_TIME: u32 = 7;
const SPAN_END_TIME: u32 = 8;
const SPAN_EVENTS: u32 = 11;
const SPAN_LINKS: u32 = 13;
const EVENT_TIME: u32 = 1;
const LINK_TRACE_ID: u32 = 1;
const LINK_SPAN_ID: u32 = 2;

fn locate_protobuf(batch: &SpanBatch) -> Result<Vec<Patch>, TemplateError> {
    let data = batch.bytes().as_ref();
    let mut patches = Vec::new();
    let mut add = |range: std::ops::Range<usize>, kind: Option<PatchKind>| match kind {
        Some(kind) => {
            patches.push(Patch { at: range.start as u32, kind });
            Ok(())
        }
        None => Err(TemplateError::Layout(format!("no placeholder at bytes {range:?}"))),
    };
    for span in batch.spans() {
        let body = span.byte_range().range();
        for field in Fields::within(data, body) {
            let range = field.value;
            match field.number {
                SPAN_TRACE_ID | SPAN_SPAN_ID | SPAN_PARENT_SPAN_ID => {
                    add(range.clone(), placeholder_kind(&data[range]))?
                }
                SPAN_START_TIME | SPAN_END_TIME => add(range.clone(), fixed64(&data[range]).and_then(time_patch))?,
                SPAN_EVENTS => {
                    for event_field in Fields::within(data, range) {
                        let range = event_field.value;
                        if event_field.number == EVENT_TIME {
                            add(range.clone(), fixed64(&data[range]).and_then(time_patch))?;
                        }
                    }
                }
                SPAN_LINKS => {
                    for link_field in Fields::within(data, range) {
                        let range = link_field.value;
                        if matches!(link_field.number, LINK_TRACE_ID | LINK_SPAN_ID) {
                            add(range.clone(), placeholder_kind(&data[range]))?;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(patches)
}

fn fixed64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

const JSON_ID_KEYS: [&[u8]; 3] = [b"\"traceId\":\"", b"\"spanId\":\"", b"\"parentSpanId\":\""];
const JSON_TIME_KEYS: [&[u8]; 3] = [b"\"startTimeUnixNano\":\"", b"\"endTimeUnixNano\":\"", b"\"timeUnixNano\":\""];

fn locate_json(json: &[u8]) -> Result<Vec<Patch>, TemplateError> {
    let mut patches = Vec::new();
    for key in JSON_ID_KEYS.iter().chain(&JSON_TIME_KEYS) {
        let is_time = JSON_TIME_KEYS.contains(key);
        let mut from = 0;
        while let Some(found) = find(&json[from..], key) {
            let at = from + found + key.len();
            let len = json[at..]
                .iter()
                .position(|&byte| byte == b'"')
                .ok_or_else(|| TemplateError::Layout(format!("unterminated value after byte {at}")))?;
            let text = std::str::from_utf8(&json[at..at + len]).unwrap_or_default();
            let kind = if is_time {
                text.parse::<u64>().ok().filter(|_| len == 19).and_then(time_patch)
            } else {
                decode_hex(text).as_deref().and_then(placeholder_kind)
            };
            let kind = kind.ok_or_else(|| TemplateError::Layout(format!("no placeholder in `{text}` at byte {at}")))?;
            patches.push(Patch { at: at as u32, kind });
            from = at + len;
        }
    }
    patches.sort_by_key(|patch| patch.at);
    Ok(patches)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len()).step_by(2).map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use prost::Message as _;

    use super::*;
    use crate::profile::ProfileName;

    const TIME: u64 = 1_750_000_000_000_000_000;

    fn spans_of(request: &ExportTraceServiceRequest) -> Vec<&Span> {
        request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect()
    }

    fn decode(format: BodyFormat, body: &[u8]) -> ExportTraceServiceRequest {
        match format {
            BodyFormat::Protobuf => ExportTraceServiceRequest::decode(body).expect("prost decodes the patched body"),
            BodyFormat::Json => serde_json::from_slice(body).expect("serde decodes the patched JSON"),
        }
    }

    fn wire(format: BodyFormat) -> Wire {
        match format {
            BodyFormat::Protobuf => Wire::OtlpProtobuf,
            BodyFormat::Json => Wire::OtlpJson,
        }
    }

    fn check_patched_request(profile: ProfileName, format: BodyFormat) {
        let template = Template::build(&Profile::preset(profile), 9, 100, wire(format)).unwrap();
        assert_eq!(template.span_count(), 100);
        let ids = IdScheme::new(5);
        let mut body = Vec::new();
        let request = RequestIds { span_base: 300, trace_base: 300, time_nanos: TIME };
        template.render(&ids, request, &mut body).unwrap();
        let decoded = decode(format, &body);
        let spans = spans_of(&decoded);
        assert_eq!(spans.len(), 100);
        for (position, (span, expected)) in spans.iter().zip(template.spans()).enumerate() {
            assert_eq!(span.span_id, ids.span_id(300 + position as u64), "span {position}");
            assert_eq!(span.trace_id, ids.trace_id(300 + u64::from(expected.trace)), "span {position}");
            let parent = expected.parent.map(|parent| ids.span_id(300 + u64::from(parent)).to_vec());
            assert_eq!(span.parent_span_id, parent.unwrap_or_default(), "span {position}");
            assert!(span.start_time_unix_nano >= TIME && span.start_time_unix_nano < TIME + 3_600_000_000_000);
            assert!(span.end_time_unix_nano > span.start_time_unix_nano);
            for event in &span.events {
                assert!((span.start_time_unix_nano..=span.end_time_unix_nano).contains(&event.time_unix_nano));
            }
            for link in &span.links {
                let linked =
                    spans.iter().find(|other| other.span_id == link.span_id).expect("links point in the request");
                assert_eq!(linked.trace_id, link.trace_id);
            }
        }
    }

    #[test]
    fn patched_protobuf_decodes_with_the_request_ids_and_times() {
        for profile in [ProfileName::Small, ProfileName::HttpService, ProfileName::HeavyAttributes] {
            check_patched_request(profile, BodyFormat::Protobuf);
        }
    }

    #[test]
    fn patched_json_decodes_with_the_request_ids_and_times() {
        for profile in [ProfileName::Small, ProfileName::HttpService, ProfileName::HeavyAttributes] {
            check_patched_request(profile, BodyFormat::Json);
        }
    }

    #[test]
    fn json_and_protobuf_templates_hold_the_same_spans() {
        let profile = Profile::preset(ProfileName::HttpService);
        let proto = Template::build(&profile, 4, 50, Wire::OtlpProtobuf).unwrap();
        let json = Template::build(&profile, 4, 50, Wire::OtlpJson).unwrap();
        let ids = IdScheme::new(1);
        let request = RequestIds { span_base: 0, trace_base: 0, time_nanos: TIME };
        let (mut proto_body, mut json_body) = (Vec::new(), Vec::new());
        proto.render(&ids, request, &mut proto_body).unwrap();
        json.render(&ids, request, &mut json_body).unwrap();
        assert_eq!(decode(BodyFormat::Protobuf, &proto_body), decode(BodyFormat::Json, &json_body));
    }

    #[test]
    fn ids_are_unique_across_requests() {
        let template = Template::build(&Profile::preset(ProfileName::HttpService), 1, 100, Wire::OtlpProtobuf).unwrap();
        let ids = IdScheme::new(77);
        let (mut span_ids, mut trace_ids) = (HashSet::new(), HashSet::new());
        let mut body = Vec::new();
        for request in 0..50u64 {
            let base = request * 100;
            template
                .render(&ids, RequestIds { span_base: base, trace_base: base, time_nanos: TIME }, &mut body)
                .unwrap();
            let decoded = decode(BodyFormat::Protobuf, &body);
            let request_traces: HashSet<Vec<u8>> = spans_of(&decoded).iter().map(|s| s.trace_id.clone()).collect();
            for span in spans_of(&decoded) {
                assert!(span_ids.insert(span.span_id.clone()), "span id repeated in request {request}");
            }
            for trace in request_traces {
                assert!(trace_ids.insert(trace), "trace id repeated in request {request}");
            }
        }
        assert_eq!(span_ids.len(), 5_000);
    }

    #[test]
    fn the_same_seed_builds_the_same_template_and_another_seed_another() {
        let profile = Profile::preset(ProfileName::HeavyAttributes);
        let first = Template::build(&profile, 11, 100, Wire::OtlpProtobuf).unwrap();
        let again = Template::build(&profile, 11, 100, Wire::OtlpProtobuf).unwrap();
        let other = Template::build(&profile, 12, 100, Wire::OtlpProtobuf).unwrap();
        assert_eq!(first.body, again.body);
        assert_ne!(first.body, other.body);
    }

    #[test]
    fn profiles_shape_the_traces() {
        let small = Template::build(&Profile::preset(ProfileName::Small), 2, 200, Wire::OtlpProtobuf).unwrap();
        let heavy =
            Template::build(&Profile::preset(ProfileName::HeavyAttributes), 2, 200, Wire::OtlpProtobuf).unwrap();
        let http = Template::build(&Profile::preset(ProfileName::HttpService), 2, 200, Wire::OtlpProtobuf).unwrap();
        let request = RequestIds { span_base: 0, trace_base: 0, time_nanos: TIME };
        let ids = IdScheme::new(0);
        let decode_spans = |template: &Template| {
            let mut body = Vec::new();
            template.render(&ids, request, &mut body).unwrap();
            decode(BodyFormat::Protobuf, &body)
        };
        let (small, heavy, http) = (decode_spans(&small), decode_spans(&heavy), decode_spans(&http));
        assert!(spans_of(&small).iter().all(|span| span.attributes.len() == 2 && span.events.is_empty()));
        assert!(spans_of(&heavy).iter().all(|span| span.attributes.len() >= 40));
        assert!(spans_of(&heavy).iter().any(|span| !span.links.is_empty()));
        let services = |request: &ExportTraceServiceRequest| request.resource_spans.len();
        assert!(services(&small) <= 2 && services(&http) == 5, "{} {}", services(&small), services(&http));
        let depth_three = spans_of(&http)
            .iter()
            .filter(|span| span.kind == SPAN_KIND_CONSUMER || span.kind == SPAN_KIND_SERVER)
            .count();
        assert!(depth_three > spans_of(&http).iter().filter(|span| span.parent_span_id.is_empty()).count());
        let errors = spans_of(&heavy).iter().filter(|span| span.status.as_ref().is_some_and(|s| s.code == 2)).count();
        assert!((1..40).contains(&errors), "{errors} errors of 200 at a 5% ratio");
    }

    /// The expected form is the protocol's: the same as OTLP's where the mapping carries
    /// everything (MessagePack, WebSocket's OTLP), different where it cannot (Zipkin makes typed
    /// attributes strings; Jaeger has no INTERNAL kind), and never the same across those two.
    #[test]
    fn expected_forms_follow_each_protocols_mapping() {
        let profile = Profile::preset(ProfileName::HttpService);
        let fingerprints = |wire: Wire| -> Vec<u64> {
            let template = Template::build(&profile, 6, 100, wire).unwrap();
            template.spans().iter().map(|span| span.fingerprint).collect()
        };
        let otlp = fingerprints(Wire::OtlpProtobuf);
        assert_eq!(fingerprints(Wire::OtlpJson), otlp);
        assert_eq!(fingerprints(Wire::Msgpack), otlp);
        let differing = |wire: Wire| otlp.iter().zip(fingerprints(wire)).filter(|(a, b)| **a != *b).count();
        let template = Template::build(&profile, 6, 100, Wire::OtlpProtobuf).unwrap();
        let mut body = Vec::new();
        template
            .render(&IdScheme::new(0), RequestIds { span_base: 0, trace_base: 0, time_nanos: TIME }, &mut body)
            .unwrap();
        let request = decode(BodyFormat::Protobuf, &body);
        let spans: Vec<&Span> =
            request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect();
        // Zipkin makes typed attributes (the profile's `http.response.status_code` or its extra
        // ones) strings; the resource's attributes, sent as tags, come back to the resource, so a
        // span with string attributes only keeps its OTLP form.
        let typed = spans
            .iter()
            .filter(|span| {
                span.attributes.iter().any(|attribute| {
                    !matches!(
                        attribute.value.as_ref().and_then(|value| value.value.as_ref()),
                        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(_))
                    )
                })
            })
            .count();
        assert!((1..100).contains(&typed), "{typed} of 100 spans with typed attributes");
        assert_eq!(differing(Wire::ZipkinJson), typed);
        assert_eq!(fingerprints(Wire::ZipkinProto), fingerprints(Wire::ZipkinJson));
        let internal_spans = spans.iter().filter(|span| span.kind == SPAN_KIND_INTERNAL).count();
        assert!(internal_spans > 0, "the profile makes INTERNAL spans");
        let jaeger = fingerprints(Wire::JaegerHttp);
        assert!(differing(Wire::JaegerHttp) >= internal_spans, "INTERNAL spans lose their kind in Jaeger");
        assert_eq!(fingerprints(Wire::JaegerCompact), jaeger);
        assert_eq!(fingerprints(Wire::JaegerBinary), jaeger);
    }

    #[test]
    fn refuses_times_that_do_not_fit_nineteen_digits() {
        let template = Template::build(&Profile::preset(ProfileName::Small), 1, 10, Wire::OtlpJson).unwrap();
        let mut body = Vec::new();
        let request = RequestIds { span_base: 0, trace_base: 0, time_nanos: 5 };
        assert!(matches!(
            template.render(&IdScheme::new(0), request, &mut body),
            Err(TemplateError::TimeOutOfRange(5))
        ));
    }
}
