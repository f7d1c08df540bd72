//! Zipkin v1 JSON → canonical batch, by way of the v2 model: each v1 span is converted into the
//! one or more v2 spans zipkin's `V1SpanConverter` makes of it, and those go through the same
//! mapping ([`crate::to_otlp`]) as v2 JSON and protobuf.
//!
//! simd-json parses the body in place into its tape, as for v2. What differs is where a v2 span's
//! tags and events lie: a v1 span lists annotations and binary annotations of *both* sides of an
//! RPC, each with its own endpoint, and which v2 span an entry belongs to follows from matching its
//! endpoint's service name against the sides found so far (an order-dependent replay of the
//! converter). So the first pass records each entry once, as a borrowed `(key, value)` or
//! `(timestamp, value)` pair in per-request vectors grouped by v2 span, rather than replaying that
//! matching every time the mapping reads a span's lists. Strings stay in the body; only binary
//! annotation values sent as JSON numbers are formatted, into one per-request text buffer.

use std::ops::Range;

use simd_json::prelude::*;
use simd_json::tape::Value;
use spanpipe_core::SpanBatch;

use crate::error::{Context as _, JsonFault, Problem, ZipkinError};
use crate::json_decode::{boolean, endpoint, for_each_span, hex_id, non_zero, string, unsigned, with_tape, wrong_type};
use crate::json_text::push_double;
use crate::to_otlp::{check_times, micros_to_nanos, write_batch, Endpoint, Kind, SpanLists, SpecialTags, ZipkinSpan};
use crate::DecodeOptions;
use spanpipe_codecs::json_tape::JsonBuffer;
use spanpipe_codecs::repeated_keys::KeyTable;

type Result<T> = std::result::Result<T, JsonFault>;

/// Decodes a Zipkin v1 JSON document (an array of v1 spans) into a batch. The buffer is parsed in
/// place, so its contents are unspecified afterwards. An empty array gives an empty batch.
///
/// # Errors
/// A [`ZipkinError`] naming the JSON path of the offending value and what is wrong with it.
pub fn decode_v1_json<B: JsonBuffer + ?Sized>(
    json: &mut B,
    options: DecodeOptions,
) -> std::result::Result<SpanBatch, ZipkinError> {
    with_tape(json, |root, body_len| {
        // A v1 body repeats each span's endpoint on every annotation, so the batch takes well
        // under half of it; the request's framing, resource and scope come on top.
        let capacity = body_len / 2 + 512;
        let mut request = Request::default();
        let mut converter = Converter::default();
        for_each_span(root, |item| converter.convert(item, &mut request))?;
        let Request { spans, events, tags, numbers } = request;
        let spans: Vec<_> = KeyTable::with(|key_table| {
            spans
                .into_iter()
                .map(|span| {
                    let ranges = span.lists.clone();
                    let lists = V1Lists {
                        events: events.get(ranges.events).unwrap_or_default(),
                        tags: tags.get(ranges.tags).unwrap_or_default(),
                        numbers: &numbers,
                    };
                    span.with_lists(lists, key_table)
                })
                .collect()
        });
        write_batch(&spans, options, capacity)
    })
}

/// A binary annotation's value as a tag value: text in the body, or a number formatted into the
/// request's text buffer (`start..end`).
#[derive(Clone, Copy, Debug)]
enum TagValue<'i> {
    Text(&'i str),
    Number(usize, usize),
}

/// Where a v2 span's events and tags lie in the request's vectors.
#[derive(Clone, Debug)]
struct ListRanges {
    events: Range<usize>,
    tags: Range<usize>,
}

/// Everything the first pass keeps of a request.
#[derive(Debug, Default)]
struct Request<'i> {
    spans: Vec<ZipkinSpan<'i, ListRanges>>,
    /// `(timestamp µs, value)`, grouped by span, each group in time order.
    events: Vec<(u64, &'i str)>,
    /// `(key, value)`, grouped by span, each group in body order.
    tags: Vec<(&'i str, TagValue<'i>)>,
    /// Binary annotation values sent as JSON numbers, as text.
    numbers: String,
}

/// One v2 span's share of the request's lists.
#[derive(Clone, Copy, Debug)]
struct V1Lists<'r, 'i> {
    events: &'r [(u64, &'i str)],
    tags: &'r [(&'i str, TagValue<'i>)],
    numbers: &'r str,
}

impl<'r, 'i: 'r> SpanLists<'r> for V1Lists<'r, 'i> {
    fn tags(&self) -> impl Iterator<Item = (&'r str, &'r str)> {
        let numbers = self.numbers;
        self.tags.iter().map(move |&(key, value)| match value {
            TagValue::Text(text) => (key, text),
            TagValue::Number(start, end) => (key, numbers.get(start..end).unwrap_or_default()),
        })
    }

    fn annotations(&self) -> impl Iterator<Item = (u64, &'r str)> {
        self.events.iter().copied()
    }
}

/// One side of a v1 span being converted: a v2 span under construction (`Span.Builder` in zipkin).
#[derive(Clone, Copy, Debug)]
struct Side<'i> {
    local: Option<Endpoint<'i>>,
    kind: Kind,
    timestamp: Option<u64>,
    duration: Option<u64>,
    remote: Option<Endpoint<'i>>,
}

impl<'i> Side<'i> {
    fn new(local: Option<Endpoint<'i>>) -> Self {
        Self { local, kind: Kind::Unspecified, timestamp: None, duration: None, remote: None }
    }

    /// Sets the times from a begin and an optional end annotation. A negative duration (clock skew)
    /// is absent, as zipkin clamps it.
    fn times(&mut self, begin: u64, end: Option<u64>) {
        self.timestamp = Some(begin);
        self.duration = end.and_then(|end| end.checked_sub(begin));
    }
}

/// A core annotation (`cs`, `sr`, …): when and where. Core annotations need an endpoint; without
/// one they are ordinary events.
#[derive(Clone, Copy, Debug)]
struct Core<'i> {
    timestamp: u64,
    endpoint: Endpoint<'i>,
}

#[derive(Debug, Default)]
struct CoreAnnotations<'i> {
    cs: Option<Core<'i>>,
    sr: Option<Core<'i>>,
    ss: Option<Core<'i>>,
    cr: Option<Core<'i>>,
    ms: Option<Core<'i>>,
    mr: Option<Core<'i>>,
    ws: Option<Core<'i>>,
    wr: Option<Core<'i>>,
}

impl<'i> CoreAnnotations<'i> {
    /// The slot of a core annotation value and the kind it gives its side (`ws`/`wr`, the wire
    /// send and receive of messaging, give none).
    fn slot(&mut self, value: &str) -> Option<(&mut Option<Core<'i>>, Option<Kind>)> {
        Some(match value {
            "cs" => (&mut self.cs, Some(Kind::Client)),
            "sr" => (&mut self.sr, Some(Kind::Server)),
            "ss" => (&mut self.ss, Some(Kind::Server)),
            "cr" => (&mut self.cr, Some(Kind::Client)),
            "ms" => (&mut self.ms, Some(Kind::Producer)),
            "mr" => (&mut self.mr, Some(Kind::Consumer)),
            "ws" => (&mut self.ws, None),
            "wr" => (&mut self.wr, None),
            _ => return None,
        })
    }
}

/// The fields of a v1 span, read before its lists are interpreted (the lists need the span's
/// timestamp and duration, which may come after them in the object).
#[derive(Clone, Copy, Debug)]
struct Source<'t, 'i> {
    trace_id: [u8; 16],
    id: [u8; 8],
    parent_id: Option<[u8; 8]>,
    name: &'i str,
    /// µs; 0 is absent, as in zipkin's `V1Span`.
    timestamp: u64,
    duration: u64,
    annotations: Option<Value<'t, 'i>>,
    binary_annotations: Option<Value<'t, 'i>>,
}

impl Source<'_, '_> {
    /// Whether `end` is the span's end as its own timestamp and duration give it: then the missing
    /// begin annotation is the span's timestamp (a tracer bridging events to spans).
    fn ends_at(&self, end: Option<Core<'_>>) -> bool {
        end.is_some_and(|end| {
            self.timestamp != 0
                && self.duration != 0
                && self.timestamp.checked_add(self.duration) == Some(end.timestamp)
        })
    }
}

/// A binary annotation's value, as far as the mapping is concerned.
#[derive(Clone, Copy, Debug)]
enum BinaryValue<'i> {
    /// `true` under `ca`, `sa` or `ma` with an endpoint is an address annotation; under other
    /// keys a boolean is the tag `"true"` or `"false"`.
    Bool(bool),
    Tag(TagValue<'i>),
    /// `null` or no value: nothing to keep.
    Absent,
}

/// Converts v1 spans, reusing its buffers from span to span (`V1SpanConverter`'s state).
#[derive(Debug, Default)]
struct Converter<'i> {
    sides: Vec<Side<'i>>,
    /// `(side, timestamp, value)` in body order.
    events: Vec<(usize, u64, &'i str)>,
    /// `(side, key, value)` in body order.
    tags: Vec<(usize, &'i str, TagValue<'i>)>,
}

impl<'i> Converter<'i> {
    fn convert<'t>(&mut self, item: Value<'t, 'i>, request: &mut Request<'i>) -> Result<()> {
        let source = source(item)?;
        self.sides.clear();
        self.events.clear();
        self.tags.clear();
        self.sides.push(Side::new(None));
        let core = self.annotations(&source).in_key("annotations")?;
        self.binary_annotations(&source, &core, &mut request.numbers).in_key("binaryAnnotations")?;
        self.emit(&source, request)
    }

    /// `forEndpoint`: the side whose local service is the endpoint's; the first side takes the
    /// first endpoint seen; entries without an endpoint belong to the first side.
    fn side_for(&mut self, endpoint: Option<Endpoint<'i>>) -> usize {
        let Some(endpoint) = endpoint else { return 0 };
        for (index, side) in self.sides.iter_mut().enumerate() {
            match side.local {
                None => {
                    side.local = Some(endpoint);
                    return index;
                }
                Some(local) if local.service_name == endpoint.service_name => return index,
                Some(_) => {}
            }
        }
        self.new_side(endpoint)
    }

    fn new_side(&mut self, endpoint: Endpoint<'i>) -> usize {
        self.sides.push(Side::new(Some(endpoint)));
        self.sides.len() - 1
    }

    /// `maybeTimestampDuration`: the span's own timestamp and duration when it has both, else the
    /// begin and end annotations'.
    fn times_from(&mut self, source: &Source<'_, '_>, begin: Core<'i>, end: Option<Core<'i>>) {
        let side = self.side_for(Some(begin.endpoint));
        if source.timestamp != 0 && source.duration != 0 {
            self.sides[side].times(source.timestamp, source.timestamp.checked_add(source.duration));
        } else {
            self.sides[side].times(begin.timestamp, end.map(|end| end.timestamp));
        }
    }

    /// Reads the annotations: core ones set kinds and times, the others become events.
    fn annotations(&mut self, source: &Source<'_, 'i>) -> Result<CoreAnnotations<'i>> {
        let mut core = CoreAnnotations::default();
        for (index, item) in list(source.annotations, "an array of annotations")?.enumerate() {
            let (timestamp, value, endpoint) = annotation(item).in_index(index)?;
            let side = self.side_for(endpoint);
            match (endpoint, core.slot(value)) {
                (Some(endpoint), Some((slot, kind))) => {
                    if let Some(kind) = kind {
                        self.sides[side].kind = kind;
                    }
                    *slot = Some(Core { timestamp, endpoint });
                }
                _ => self.events.push((side, timestamp, value)),
            }
        }

        if core.cs.is_none() && source.ends_at(core.cr) {
            core.cs = core.cr.map(|cr| Core { timestamp: source.timestamp, endpoint: cr.endpoint });
        }
        if core.sr.is_none() && source.ends_at(core.ss) {
            core.sr = core.ss.map(|ss| Core { timestamp: source.timestamp, endpoint: ss.endpoint });
        }
        self.rpc(source, &core);
        self.messaging(source, &core);
        Ok(core)
    }

    /// Client and server sides: one v1 span may hold both, which become two v2 spans.
    fn rpc(&mut self, source: &Source<'_, '_>, core: &CoreAnnotations<'i>) {
        match (core.cs, core.sr, core.cr, core.ss) {
            (Some(cs), Some(sr), cr, ss) => {
                // The client side owns the span's timestamp and duration.
                self.times_from(source, cs, cr);
                let client = self.side_for(Some(cs.endpoint));
                let server = if cs.endpoint.service_name == sr.endpoint.service_name {
                    // Loopback: both sides in one service still make two spans.
                    self.sides[client].kind = Kind::Client;
                    let server = self.new_side(sr.endpoint);
                    self.sides[server].kind = Kind::Server;
                    server
                } else {
                    self.side_for(Some(sr.endpoint))
                };
                self.sides[server].times(sr.timestamp, ss.map(|ss| ss.timestamp));
                if cr.is_none() && source.duration == 0 {
                    // One-way: the client side has no duration.
                    self.sides[client].duration = None;
                }
            }
            (Some(cs), None, Some(cr), _) => self.times_from(source, cs, Some(cr)),
            (None, Some(sr), _, Some(ss)) => self.times_from(source, sr, Some(ss)),
            _ => self.incomplete_rpc(source, core),
        }
    }

    /// `handleIncompleteRpc`: a side that is a client or server without both its annotations
    /// starts at the one it has; a lone end annotation becomes an event.
    fn incomplete_rpc(&mut self, source: &Source<'_, '_>, core: &CoreAnnotations<'i>) {
        for (index, side) in self.sides.iter_mut().enumerate() {
            let (begin, end) = match side.kind {
                Kind::Client => (core.cs, (core.cr, "cr")),
                Kind::Server => (core.sr, (core.ss, "ss")),
                _ => continue,
            };
            if let Some(begin) = begin {
                side.timestamp = Some(begin.timestamp);
            }
            if let (Some(end), value) = end {
                self.events.push((index, end.timestamp, value));
            }
        }
        if source.timestamp != 0 {
            self.sides[0].times(source.timestamp, source.timestamp.checked_add(source.duration));
        }
    }

    /// Producer and consumer sides (`ms`/`ws`, `wr`/`mr`).
    fn messaging(&mut self, source: &Source<'_, '_>, core: &CoreAnnotations<'i>) {
        match (core.ms, core.mr) {
            (Some(ms), Some(mr)) => {
                let producer = self.side_for(Some(ms.endpoint));
                let consumer = if ms.endpoint.service_name == mr.endpoint.service_name {
                    self.sides[producer].kind = Kind::Producer;
                    let consumer = self.new_side(mr.endpoint);
                    self.sides[consumer].kind = Kind::Consumer;
                    consumer
                } else {
                    self.side_for(Some(mr.endpoint))
                };
                match core.wr {
                    Some(wr) => self.sides[consumer].times(wr.timestamp, Some(mr.timestamp)),
                    None => self.sides[consumer].timestamp = Some(mr.timestamp),
                }
                self.sides[producer].times(ms.timestamp, core.ws.map(|ws| ws.timestamp));
            }
            (Some(ms), None) => self.times_from(source, ms, core.ws),
            (None, Some(mr)) => match core.wr {
                Some(wr) => self.times_from(source, wr, Some(mr)),
                None => self.times_from(source, mr, None),
            },
            (None, None) => {
                for (wire, value) in [(core.ws, "ws"), (core.wr, "wr")] {
                    if let Some(wire) = wire {
                        let side = self.side_for(Some(wire.endpoint));
                        self.events.push((side, wire.timestamp, value));
                    }
                }
            }
        }
    }

    /// Reads the binary annotations: address annotations give remote endpoints, the others tags.
    fn binary_annotations(
        &mut self,
        source: &Source<'_, 'i>,
        core: &CoreAnnotations<'i>,
        numbers: &mut String,
    ) -> Result<()> {
        let (mut ca, mut sa, mut ma) = (None, None, None);
        for (index, item) in list(source.binary_annotations, "an array of binary annotations")?.enumerate() {
            let (key, value, endpoint) = binary_annotation(item, numbers).in_index(index)?;
            let value = match (value, key, endpoint) {
                (BinaryValue::Bool(true), "ca", Some(endpoint)) => {
                    ca = Some(endpoint);
                    continue;
                }
                (BinaryValue::Bool(true), "sa", Some(endpoint)) => {
                    sa = Some(endpoint);
                    continue;
                }
                (BinaryValue::Bool(true), "ma", Some(endpoint)) => {
                    ma = Some(endpoint);
                    continue;
                }
                // An address annotation without its address, or one that says it is none.
                (BinaryValue::Bool(_), "ca" | "sa" | "ma", _) | (BinaryValue::Absent, ..) => continue,
                (BinaryValue::Bool(flag), ..) => TagValue::Text(if flag { "true" } else { "false" }),
                (BinaryValue::Tag(value), ..) => value,
            };
            let side = self.side_for(endpoint);
            // `lc` (local component) with no value only marks the local endpoint.
            if key == "lc" && matches!(value, TagValue::Text("")) {
                continue;
            }
            self.tags.push((side, key, value));
        }
        self.addresses(core, ca, sa, ma);
        Ok(())
    }

    /// Remote endpoints from `ca` (client address, on the server side), `sa` (server address, on
    /// the client side) and `ma` (message broker address, on both messaging sides).
    fn addresses(
        &mut self,
        core: &CoreAnnotations<'i>,
        ca: Option<Endpoint<'i>>,
        sa: Option<Endpoint<'i>>,
        ma: Option<Endpoint<'i>>,
    ) {
        let no_rpc_annotations = core.cs.is_none() && core.cr.is_none() && core.ss.is_none() && core.sr.is_none();
        if no_rpc_annotations && (ca.is_some() || sa.is_some()) {
            match (ca, sa) {
                // Both addresses and no core annotation: the client address is this side.
                (Some(ca), Some(sa)) => {
                    let side = self.side_for(Some(ca));
                    self.sides[side].remote = Some(sa);
                }
                // `sa` alone is a remote address; it does not make the span a client.
                (None, Some(sa)) => self.sides[0].remote = Some(sa),
                // `ca` alone: a server that saw its client.
                (Some(ca), None) => {
                    self.sides[0].kind = Kind::Server;
                    self.sides[0].remote = Some(ca);
                }
                (None, None) => {}
            }
            return;
        }
        if let (Some(mut ca), Some(server)) = (ca, core.sr.or(core.ss)) {
            if ca != server.endpoint {
                // Finagle sends `ca` with the server's own service name and the client's port:
                // without the name, it does not read as a call from the service to itself.
                if ca.service_name == server.endpoint.service_name {
                    ca.service_name = "";
                }
                let side = self.side_for(Some(server.endpoint));
                self.sides[side].remote = Some(ca);
            }
        }
        if let (Some(sa), Some(client)) = (sa, core.cs.or(core.cr)) {
            let side = self.side_for(Some(client.endpoint));
            self.sides[side].remote = Some(sa);
        }
        if let Some(ma) = ma {
            for messaging in [core.ms, core.mr].into_iter().flatten() {
                let side = self.side_for(Some(messaging.endpoint));
                self.sides[side].remote = Some(ma);
            }
        }
    }

    /// Appends the sides as v2 spans, each with its events (in time order, as zipkin sorts them)
    /// and tags (in body order).
    fn emit(&self, source: &Source<'_, 'i>, request: &mut Request<'i>) -> Result<()> {
        for (index, side) in self.sides.iter().enumerate() {
            let timestamp = side.timestamp.filter(|&micros| micros != 0);
            let duration = side.duration.unwrap_or(0);
            check_times(timestamp, duration).map_err(JsonFault::new)?;
            let events_start = request.events.len();
            request.events.extend(
                self.events
                    .iter()
                    .filter(|(owner, ..)| *owner == index)
                    .map(|&(_, timestamp, value)| (timestamp, value)),
            );
            let events = events_start..request.events.len();
            if let Some(group) = request.events.get_mut(events.clone()) {
                group.sort_by_key(|&(timestamp, _)| timestamp);
            }
            let tags_start = request.tags.len();
            request
                .tags
                .extend(self.tags.iter().filter(|(owner, ..)| *owner == index).map(|&(_, key, value)| (key, value)));
            request.spans.push(ZipkinSpan {
                trace_id: source.trace_id,
                id: source.id,
                parent_id: source.parent_id,
                kind: side.kind,
                name: source.name,
                timestamp,
                duration,
                local: side.local,
                remote: side.remote,
                special: SpecialTags::default(),
                lists: ListRanges { events, tags: tags_start..request.tags.len() },
            });
        }
        Ok(())
    }
}

/// The elements of an optional JSON array.
fn list<'t, 'i>(value: Option<Value<'t, 'i>>, expected: &'static str) -> Result<impl Iterator<Item = Value<'t, 'i>>> {
    let array = match value {
        None => None,
        Some(value) => Some(value.as_array().ok_or_else(|| JsonFault::new(wrong_type(expected, value)))?),
    };
    Ok(array.into_iter().flat_map(|array| array.iter()))
}

/// Reads and checks a v1 span's own fields.
fn source<'t, 'i>(value: Value<'t, 'i>) -> Result<Source<'t, 'i>> {
    let object = value.as_object().ok_or_else(|| JsonFault::new(wrong_type("a span object", value)))?;
    let mut trace_id: Option<(&'i str, [u8; 16])> = None;
    let mut trace_id_high: Option<(&'i str, [u8; 8])> = None;
    let mut id = None;
    let mut source = Source {
        trace_id: [0; 16],
        id: [0; 8],
        parent_id: None,
        name: "",
        timestamp: 0,
        duration: 0,
        annotations: None,
        binary_annotations: None,
    };
    for (key, value) in object.iter() {
        if value.is_null() {
            continue;
        }
        let mut field = || -> Result<()> {
            match key {
                "traceId" => {
                    let text = string(value)?;
                    trace_id = Some((text, hex_id::<16>(text)?));
                }
                "traceIdHigh" => {
                    let text = string(value)?;
                    trace_id_high = Some((text, hex_id::<8>(text)?));
                }
                "id" => id = Some(non_zero(hex_id::<8>(string(value)?)?)?),
                "parentId" => {
                    let text = string(value)?;
                    source.parent_id = if text.is_empty() { None } else { Some(hex_id::<8>(text)?) };
                }
                "name" => source.name = string(value)?,
                "timestamp" => source.timestamp = unsigned(value)?,
                "duration" => source.duration = unsigned(value)?,
                "annotations" => source.annotations = Some(value),
                "binaryAnnotations" => source.binary_annotations = Some(value),
                "debug" => {
                    boolean(value)?;
                }
                _ => {}
            }
            Ok(())
        };
        field().in_key(key)?;
    }
    let (text, mut trace) = trace_id.ok_or_else(|| JsonFault::new(Problem::Missing).in_key("traceId"))?;
    if let Some((high_text, high)) = trace_id_high {
        if text.len() <= 16 {
            trace[..8].copy_from_slice(&high);
        } else if trace[..8] != high {
            return Err(JsonFault::new(Problem::TraceIdHighMismatch { trace_id_high: high_text.to_owned() })
                .in_key("traceIdHigh"));
        }
    }
    source.trace_id = non_zero(trace).in_key("traceId")?;
    source.id = id.ok_or_else(|| JsonFault::new(Problem::Missing).in_key("id"))?;
    let timestamp = Some(source.timestamp).filter(|&micros| micros != 0);
    check_times(timestamp, source.duration).map_err(|problem| JsonFault::new(problem).in_key("duration"))?;
    Ok(source)
}

/// An endpoint that may be `null` or absent; one with no field set is absent too (zipkin reads it
/// as none), so that it cannot make a core annotation.
fn optional_endpoint<'i>(value: Option<Value<'_, 'i>>) -> Result<Option<Endpoint<'i>>> {
    match value.filter(|value| !value.is_null()) {
        None => Ok(None),
        Some(value) => {
            Ok(Some(endpoint(value).in_key("endpoint")?).filter(|endpoint| *endpoint != Endpoint::default()))
        }
    }
}

/// `{timestamp, value, endpoint?}`.
fn annotation<'i>(value: Value<'_, 'i>) -> Result<(u64, &'i str, Option<Endpoint<'i>>)> {
    let object = value.as_object().ok_or_else(|| JsonFault::new(wrong_type("an annotation object", value)))?;
    let timestamp = object.get("timestamp").ok_or_else(|| JsonFault::new(Problem::Missing).in_key("timestamp"))?;
    let timestamp = unsigned(timestamp).in_key("timestamp")?;
    micros_to_nanos(timestamp).map_err(|problem| JsonFault::new(problem).in_key("timestamp"))?;
    let text = object.get("value").ok_or_else(|| JsonFault::new(Problem::Missing).in_key("value"))?;
    let text = string(text).in_key("value")?;
    Ok((timestamp, text, optional_endpoint(object.get("endpoint"))?))
}

/// `{key, value, type?, endpoint?}`. The value's JSON type decides how it is read (`type`, which
/// old zipkin encoders write beside numbers, adds nothing and is not read).
fn binary_annotation<'i>(
    value: Value<'_, 'i>,
    numbers: &mut String,
) -> Result<(&'i str, BinaryValue<'i>, Option<Endpoint<'i>>)> {
    let object = value.as_object().ok_or_else(|| JsonFault::new(wrong_type("a binary annotation object", value)))?;
    let key = object.get("key").filter(|key| !key.is_null());
    let key = string(key.ok_or_else(|| JsonFault::new(Problem::Missing).in_key("key"))?).in_key("key")?;
    let value = match object.get("value") {
        None => BinaryValue::Absent,
        Some(value) => binary_value(value, numbers).in_key("value")?,
    };
    Ok((key, value, optional_endpoint(object.get("endpoint"))?))
}

fn binary_value<'i>(value: Value<'_, 'i>, numbers: &mut String) -> Result<BinaryValue<'i>> {
    Ok(match value.value_type() {
        ValueType::Null => BinaryValue::Absent,
        ValueType::String => BinaryValue::Tag(TagValue::Text(string(value)?)),
        ValueType::Bool => BinaryValue::Bool(boolean(value)?),
        ValueType::Array | ValueType::Object => {
            return Err(wrong_type("a string, boolean or number", value).into());
        }
        _ => {
            let start = numbers.len();
            match (value.as_i64(), value.as_u64()) {
                (Some(int), _) if !value.is_f64() => numbers.push_str(itoa::Buffer::new().format(int)),
                (_, Some(uint)) if !value.is_f64() => numbers.push_str(itoa::Buffer::new().format(uint)),
                _ => push_double(numbers, value.cast_f64().unwrap_or_default()),
            }
            BinaryValue::Tag(TagValue::Number(start, numbers.len()))
        }
    })
}
