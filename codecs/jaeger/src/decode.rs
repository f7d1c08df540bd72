//! Jaeger Thrift → canonical batch, written once for both protocols.
//!
//! Two steps, only the first of which reads the input:
//! 1. One walk over the message reads every value once (every string checked for UTF-8 once)
//!    into flat records of borrowed slices ([`Records`]): a [`SpanRecord`] per span with its
//!    scalar fields, its resolved parent and the [`SpecialTags`] (the tags that become OTLP
//!    fields, picked out on the same walk), and the span's tags, logs and references as ranges
//!    of shared vectors.
//! 2. The records are written through the [`BatchWriter`]: spans grouped by instrumentation
//!    scope (the scope comes from tags, so every span is read before any is written, and spans
//!    of one scope share one `ScopeSpans`, as the Collector groups them); attributes are the
//!    recorded tags less those that became fields, told apart by the kind recorded with each
//!    tag rather than by looking its key up again.
//!
//! The record vectors are kept per thread and reused across requests, so a steady stream of
//! datagrams allocates little more than its output.

use std::borrow::Cow;
use std::cell::Cell;
use std::ops::Range;

use spanpipe_codecs::repeated_keys::KeyTable;
use spanpipe_core::{Attributes, BatchWriter, ResourceSpansWriter, SpanBatch, SpanWriter};

use crate::error::{DecodeError, DecodeErrorKind};
use crate::keys::{self, Special};
use crate::thrift::{expect_emit_batch, ProtocolReader, TType};
use crate::NO_SERVICE_NAME;

type Result<T> = std::result::Result<T, DecodeError>;

pub(crate) mod proto;

/// Decodes an `Agent.emitBatch` message (a UDP datagram).
pub(crate) fn agent_message<'a, R: ProtocolReader<'a>>(mut reader: R) -> Result<SpanBatch> {
    expect_emit_batch(&mut reader)?;
    let args_at = reader.offset();
    let mut decoded = None;
    let mut last_id = 0;
    while let Some(field) = reader.field_begin(&mut last_id)? {
        if field.id == 1 && field.ttype == TType::Struct {
            decoded = Some(batch(&mut reader)?);
        } else {
            reader.skip(&field, 1)?;
        }
    }
    expect_end(&reader)?;
    decoded.ok_or_else(|| missing(args_at, "emitBatch_args.batch"))
}

/// Decodes a bare `Batch` struct (the collector's HTTP body).
pub(crate) fn batch_body<'a, R: ProtocolReader<'a>>(mut reader: R) -> Result<SpanBatch> {
    let decoded = batch(&mut reader)?;
    expect_end(&reader)?;
    Ok(decoded)
}

fn expect_end<'a, R: ProtocolReader<'a>>(reader: &R) -> Result<()> {
    match reader.remaining() {
        0 => Ok(()),
        count => Err(reader.error(DecodeErrorKind::TrailingBytes { count })),
    }
}

fn missing(at: usize, field: &'static str) -> DecodeError {
    DecodeError::new(at, DecodeErrorKind::MissingField { field })
}

/// Checks a list's element type and returns its count.
fn list_of<'a, R: ProtocolReader<'a>>(reader: &mut R, expected: TType, field: &'static str) -> Result<u32> {
    let at = reader.offset();
    let (found, count) = reader.list_begin()?;
    if found != expected && count > 0 {
        return Err(DecodeError::new(at, DecodeErrorKind::WrongElementType { field, expected, found }));
    }
    Ok(count)
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// Everything one message holds, read once; the `Range`s of the records index these vectors.
#[derive(Debug, Default)]
struct Records<'a> {
    spans: Vec<SpanRecord<'a>>,
    /// The process's tags, every span's tags and every log's fields, in input order.
    tags: Vec<Tag<'a>>,
    logs: Vec<LogRecord<'a>>,
    references: Vec<Reference>,
    /// The processes spans name, in order of first appearance, one per distinct process: a
    /// Thrift batch has one; a protobuf batch may give each span its own
    /// ([`SpanRecord::process`] indexes this).
    processes: Vec<ProcessRecord<'a>>,
    /// While writing: the spans' indices grouped by process.
    order: Vec<u32>,
    /// While writing: which spans of a process are already in a `ScopeSpans`.
    written: Vec<bool>,
    /// While writing: finds tag keys given twice in one list.
    key_table: KeyTable,
}

/// Thread-local records above this many bytes of capacity are dropped after the request rather
/// than kept (a big HTTP body should not pin its memory to the thread for good; a full 65,000-byte
/// datagram needs far less).
const KEPT_RECORDS_BYTES: usize = 1 << 20;

thread_local! {
    /// The record vectors of the last request on this thread, empty, for the next one. Taken out
    /// of the cell for the duration of a decode, so a nested decode would simply build its own.
    static RECORDS: Cell<Option<Records<'static>>> = const { Cell::new(None) };
}

/// An empty vector of another element type that reuses `vec`'s allocation: the standard
/// library collects a `vec::IntoIter` in place when the two types have the same size and
/// alignment, as they have here (the same record type with another lifetime).
fn recycle<T, U>(mut vec: Vec<T>) -> Vec<U> {
    vec.clear();
    vec.into_iter().filter_map(|_| None).collect()
}

impl Records<'_> {
    fn recycle<'b>(self) -> Records<'b> {
        Records {
            spans: recycle(self.spans),
            tags: recycle(self.tags),
            logs: recycle(self.logs),
            references: recycle(self.references),
            processes: recycle(self.processes),
            order: recycle(self.order),
            written: recycle(self.written),
            key_table: self.key_table,
        }
    }

    fn capacity_bytes(&self) -> usize {
        self.spans.capacity() * size_of::<SpanRecord<'_>>()
            + self.tags.capacity() * size_of::<Tag<'_>>()
            + self.logs.capacity() * size_of::<LogRecord<'_>>()
            + self.references.capacity() * size_of::<Reference>()
            + self.processes.capacity() * size_of::<ProcessRecord<'_>>()
            + self.order.capacity() * size_of::<u32>()
            + self.written.capacity()
    }
}

/// Runs `body` with this thread's (empty) records, and keeps them for the next request.
fn with_records<'a, T>(body: impl FnOnce(&mut Records<'a>) -> T) -> T {
    let mut records = RECORDS.take().map(Records::recycle).unwrap_or_default();
    let result = body(&mut records);
    if records.capacity_bytes() <= KEPT_RECORDS_BYTES {
        RECORDS.set(Some(records.recycle()));
    }
    result
}

/// `Process`: the service name and where its tags are, with what the Collector's renaming of
/// `hostname` and `jaeger.version` needs to know.
#[derive(Clone, Debug, Default)]
struct ProcessRecord<'a> {
    /// Whether the batch (or span) had a process at all; spans without one go to a resource of
    /// their own with no attributes.
    present: bool,
    service: Option<&'a str>,
    tags: Range<usize>,
    /// The last `hostname` tag, when no `host.name` tag is there to keep it from being renamed.
    hostname: Option<Tag<'a>>,
    /// The last `jaeger.version` tag, when no `opencensus.exporterversion` tag is there.
    jaeger_version: Option<Tag<'a>>,
    /// Whether a tag is named `service.name`: it replaces `serviceName` in the resource, as a
    /// later tag of the same key replaces an earlier one.
    service_name_tag: bool,
}

/// The `Batch` struct at the reader's position; leaves the reader after it.
fn batch<'a, R: ProtocolReader<'a>>(reader: &mut R) -> Result<SpanBatch> {
    let start = reader.offset();
    with_records(|records| {
        let mut process = None;
        let mut last_id = 0;
        while let Some(field) = reader.field_begin(&mut last_id)? {
            match (field.id, field.ttype) {
                (1, TType::Struct) => process = Some(read_process(reader, &mut records.tags)?),
                (2, TType::List) => {
                    let count = list_of(reader, TType::Struct, "Batch.spans")?;
                    records.spans.clear();
                    records.spans.reserve(count as usize);
                    for _ in 0..count {
                        if let Some(span) = read_span(reader, records)? {
                            records.spans.push(span);
                        }
                    }
                }
                _ => reader.skip(&field, 1)?,
            }
        }

        // One process for every span (each span's `process` is 0), present or not: a Thrift
        // batch is one resource, written even when it holds no spans.
        records.processes.push(process.unwrap_or_default());
        write_records(records, reader.input().len() * 2 + 64, start)
    })
}

/// Writes the records: one `ResourceSpans` per process, in the order of [`Records::processes`],
/// each with its spans grouped by scope. `start` is the offset any error is reported at.
fn write_records(records: &mut Records<'_>, capacity: usize, start: usize) -> Result<SpanBatch> {
    let mut writer = BatchWriter::with_capacity(capacity);
    let Records { spans, tags, logs, references, processes, order, written, key_table } = records;
    order.clear();
    order.extend(0..spans.len() as u32);
    if processes.len() > 1 {
        // Stable, so each process keeps its spans in input order.
        order.sort_by_key(|&index| spans[index as usize].process);
    }
    let mut members = &order[..];
    for (index, process) in processes.iter().enumerate() {
        let count = members.iter().take_while(|&&span| spans[span as usize].process == index).count();
        let (own, rest) = members.split_at(count);
        members = rest;
        writer.resource_spans(|rs| {
            if process.present {
                rs.resource(|resource| write_process(resource, process, tags, key_table));
            }
            write_scopes(rs, spans, own, written, |s, span| write_span(s, span, tags, logs, references, key_table));
        });
    }
    // The writer is only given ids of their exact lengths, `&str`s and flat values, so its
    // scan has nothing to refuse; should it ever, that is an error, not a panic.
    writer.finish().map_err(|error| DecodeError::new(start, DecodeErrorKind::CanonicalScan(error.to_string())))
}

fn read_process<'a, R: ProtocolReader<'a>>(reader: &mut R, tags: &mut Vec<Tag<'a>>) -> Result<ProcessRecord<'a>> {
    let mut process = ProcessRecord { present: true, ..ProcessRecord::default() };
    let mut last_id = 0;
    while let Some(field) = reader.field_begin(&mut last_id)? {
        match (field.id, field.ttype) {
            (1, TType::Binary) => process.service = Some(reader.read_str("Process.serviceName")?),
            (2, TType::List) => {
                let mut renames = ProcessRenames::default();
                process.tags = read_tags(reader, tags, "Process.tags", |tag| {
                    renames.see(tag);
                    true
                })?;
                renames.finish(&mut process);
            }
            _ => reader.skip(&field, 1)?,
        }
    }
    Ok(process)
}

/// What the Collector's renaming of a process's `hostname` and `jaeger.version` tags (and the
/// choice between `serviceName` and a `service.name` tag) needs to know, gathered tag by tag.
#[derive(Default)]
struct ProcessRenames<'a> {
    has_host_name: bool,
    has_exporter_version: bool,
    has_service_name: bool,
    hostname: Option<Tag<'a>>,
    jaeger_version: Option<Tag<'a>>,
}

impl<'a> ProcessRenames<'a> {
    fn see(&mut self, tag: &Tag<'a>) {
        match tag.key {
            keys::SERVICE_NAME => self.has_service_name = true,
            keys::HOST_NAME => self.has_host_name = true,
            keys::EXPORTER_VERSION => self.has_exporter_version = true,
            keys::HOSTNAME => self.hostname = Some(*tag),
            keys::JAEGER_VERSION => self.jaeger_version = Some(*tag),
            _ => {}
        }
    }

    fn finish(self, process: &mut ProcessRecord<'a>) {
        process.hostname = self.hostname.filter(|_| !self.has_host_name);
        process.jaeger_version = self.jaeger_version.filter(|_| !self.has_exporter_version);
        process.service_name_tag = self.has_service_name;
    }
}

/// `Process`: `serviceName` → `service.name`, tags → attributes (with the Collector's
/// `hostname` and `jaeger.version` translations), as [`for_each_resource_attribute`] gives them.
fn write_process(
    resource: &mut spanpipe_core::ResourceWriter<'_>,
    process: &ProcessRecord<'_>,
    tags: &[Tag<'_>],
    key_table: &mut KeyTable,
) {
    for_each_resource_attribute(process, tags, key_table, |key, value| match value {
        ResourceValue::Tag(tag) => tag.write_as(resource, key),
        ResourceValue::Str(text) => resource.str_attribute(key, text),
        ResourceValue::JaegerVersion(version) => {
            let mut value = String::with_capacity(JAEGER_PREFIX.len() + version.len());
            value.push_str(JAEGER_PREFIX);
            value.push_str(version);
            resource.str_attribute(key, &value);
        }
    });
}

/// What `opencensus.exporterversion` says before the `jaeger.version` it is made from.
const JAEGER_PREFIX: &str = "Jaeger-";

/// The value of a resource attribute of a process: a tag's, a string, or `Jaeger-` and a
/// `jaeger.version`.
enum ResourceValue<'s, 'a> {
    Tag(&'s Tag<'a>),
    Str(&'a str),
    JaegerVersion(&'a str),
}

/// Calls `each` with the key and value of every attribute of a process's resource, in order:
/// `serviceName` as `service.name` (unless a tag is named so: of a key given twice the last tag
/// counts, and the Collector puts `serviceName` into its map of attributes before the tags), the
/// tags that no later tag of the same key replaces, then the Collector's translations of
/// `hostname` and `jaeger.version`. One definition for writing the resource and for telling
/// processes apart by it.
fn for_each_resource_attribute<'s, 'a>(
    process: &'s ProcessRecord<'a>,
    tags: &'s [Tag<'a>],
    key_table: &mut KeyTable,
    mut each: impl FnMut(&str, ResourceValue<'_, 'a>),
) {
    let service = process.service.filter(|s| !s.is_empty() && *s != NO_SERVICE_NAME);
    if let Some(service) = service.filter(|_| !process.service_name_tag) {
        each(keys::SERVICE_NAME, ResourceValue::Str(service));
    }
    // The Collector renames `hostname` and `jaeger.version` only when the target key is absent,
    // and the renamed attribute goes last (it is added after the tags, then the old key removed).
    for tag in last_of_each(key_table, &tags[process.tags.clone()]).iter() {
        let renamed = (tag.key == keys::HOSTNAME && process.hostname.is_some())
            || (tag.key == keys::JAEGER_VERSION && process.jaeger_version.is_some());
        if !renamed {
            each(tag.key, ResourceValue::Tag(tag));
        }
    }
    if let Some(hostname) = &process.hostname {
        each(keys::HOST_NAME, ResourceValue::Tag(hostname));
    }
    if let Some(version) = &process.jaeger_version {
        each(keys::EXPORTER_VERSION, ResourceValue::JaegerVersion(version.str_value()));
    }
}

// ---------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------

/// The string attribute a tag of an unknown `vType` becomes (the Collector's, with Go's quoting of
/// the number).
fn unknown_type_text(v_type: i32) -> String {
    format!("<Unknown Jaeger TagType {v_type}>")
}

/// A tag's value by its `vType`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum TagValue<'a> {
    Str(&'a str),
    Double(f64),
    Bool(bool),
    Long(i64),
    Binary(&'a [u8]),
    /// A `vType` the IDL does not define.
    Unknown(i32),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Tag<'a> {
    pub key: &'a str,
    pub value: TagValue<'a>,
    /// For a span tag whose key may make it an OTLP field: which one.
    special: Option<Special>,
}

impl<'a> Tag<'a> {
    fn write_as(&self, target: &mut impl Attributes, key: &str) {
        match self.value {
            TagValue::Str(s) => target.str_attribute(key, s),
            TagValue::Double(d) => target.double_attribute(key, d),
            TagValue::Bool(b) => target.bool_attribute(key, b),
            TagValue::Long(l) => target.int_attribute(key, l),
            TagValue::Binary(b) => target.bytes_attribute(key, b),
            TagValue::Unknown(v_type) => target.str_attribute(key, &unknown_type_text(v_type)),
        }
    }

    fn str_value(&self) -> &'a str {
        match self.value {
            TagValue::Str(s) => s,
            _ => "",
        }
    }

    /// A count: a `LONG` (or a decimal `STRING`) in `u32` range.
    fn count(&self) -> Option<u32> {
        match self.value {
            TagValue::Long(n) => u32::try_from(n).ok(),
            TagValue::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// Reads one `Tag`. Inlined into the list loop, so the usual tag is built where it is pushed
/// (returned out of line, a tag went through memory and its caller stalled reading it back).
#[inline(always)]
fn read_tag<'a, R: ProtocolReader<'a>>(reader: &mut R) -> Result<Tag<'a>> {
    let start = reader.offset();
    if let Some(tag) = read_usual_tag(reader) {
        return Ok(tag);
    }
    reader.seek(start);
    // Through a copy, so that the caller's reader is never handed to code that is not inlined
    // (which would keep it in memory for the whole loop).
    let mut general = *reader;
    let tag = read_tag_fields(&mut general);
    *reader = general;
    tag
}

/// Reads a `Tag` field by field, in any order and form the protocol allows.
#[inline(never)]
fn read_tag_fields<'a, R: ProtocolReader<'a>>(reader: &mut R) -> Result<Tag<'a>> {
    let start = reader.offset();
    let mut key = None;
    let mut vtype = None;
    let (mut v_str, mut v_double, mut v_bool, mut v_long, mut v_binary) = ("", 0.0, false, 0, &[][..]);
    let mut last_id = 0;
    while let Some(field) = reader.field_begin(&mut last_id)? {
        match (field.id, field.ttype) {
            (1, TType::Binary) => key = Some(reader.read_str("Tag.key")?),
            (2, TType::I32) => vtype = Some(reader.read_i32()?),
            (3, TType::Binary) => v_str = reader.read_str("Tag.vStr")?,
            (4, TType::Double) => v_double = reader.read_double()?,
            (5, TType::Bool) => v_bool = reader.read_bool_field(&field)?,
            (6, TType::I64) => v_long = reader.read_i64()?,
            (7, TType::Binary) => v_binary = reader.read_binary()?,
            _ => reader.skip(&field, 1)?,
        }
    }
    let key = key.ok_or_else(|| missing(start, "Tag.key"))?;
    let value = match vtype.ok_or_else(|| missing(start, "Tag.vType"))? {
        0 => TagValue::Str(v_str),
        1 => TagValue::Double(v_double),
        2 => TagValue::Bool(v_bool),
        3 => TagValue::Long(v_long),
        4 => TagValue::Binary(v_binary),
        other => TagValue::Unknown(other),
    };
    Ok(Tag { key, value, special: None })
}

/// A tag laid out as Jaeger's clients write one — `key`, `vType`, then the one value field its
/// type names (string, long, double or bool), each with its usual header, then the stop — read
/// without the general field loop: most tags of most batches. `None` for any other layout (other
/// field order, extra or repeated fields, binaries, unknown types) or a value that does not
/// read, with the reader left wherever it stopped; [`read_tag`] then starts again with the
/// general loop, which decides, and reports any error, exactly as for every other tag.
#[inline(always)]
fn read_usual_tag<'a, R: ProtocolReader<'a>>(reader: &mut R) -> Option<Tag<'a>> {
    if !reader.field_is(0, 1, TType::Binary) {
        return None;
    }
    let key = reader.read_str("Tag.key").ok()?;
    if !reader.field_is(1, 2, TType::I32) {
        return None;
    }
    let value = match reader.read_i32().ok()? {
        0 if reader.field_is(2, 3, TType::Binary) => TagValue::Str(reader.read_str("Tag.vStr").ok()?),
        1 if reader.field_is(2, 4, TType::Double) => TagValue::Double(reader.read_double().ok()?),
        2 => TagValue::Bool(reader.bool_field_is(2, 5)?),
        3 if reader.field_is(2, 6, TType::I64) => TagValue::Long(reader.read_i64().ok()?),
        _ => return None,
    };
    reader.stop_is_next().then_some(Tag { key, value, special: None })
}

/// Reads the `list<Tag>` at the reader's position onto `tags`, each tag once; `each` sees every
/// tag as it is read (and may mark it) and says whether to keep it. Returns where the kept tags
/// are.
///
/// Never inlined: as a function of its own for each protocol, the tag loop (most of a batch's
/// reading) gets registers of its own, and its instruction count and speed no longer change with
/// how the code around it is laid out (inlined, binary Thrift measured up to 9% slower by the
/// clock with fewer instructions).
#[inline(never)]
fn read_tags<'a, R: ProtocolReader<'a>>(
    reader: &mut R,
    tags: &mut Vec<Tag<'a>>,
    field: &'static str,
    mut each: impl FnMut(&mut Tag<'a>) -> bool,
) -> Result<Range<usize>> {
    let first = tags.len();
    let count = list_of(reader, TType::Struct, field)?;
    // The count is bounded by the bytes left (a tag takes at least one), so this cannot be made
    // to reserve more than a few times the input.
    tags.reserve(count as usize);
    // The loop reads through a copy of the reader that nothing else can see, so its position
    // stays in a register; through `reader` every step stored it and the next step loaded it
    // back, a store-to-load round trip per header, length and value.
    let mut local = *reader;
    for _ in 0..count {
        let mut tag = read_tag(&mut local)?;
        if each(&mut tag) {
            tags.push(tag);
        }
    }
    *reader = local;
    Ok(first..tags.len())
}

/// `tags` without those a later tag with the same key replaces (the last value of a key counts,
/// as in the Collector's maps): `tags` itself, or a copy of the survivors.
#[inline]
fn last_of_each<'s, 'a>(key_table: &mut KeyTable, tags: &'s [Tag<'a>]) -> Cow<'s, [Tag<'a>]> {
    key_table.last_of_each(tags, |tag| tag.key.as_bytes())
}

/// The instrumentation scope a span's tags name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Scope<'a> {
    name: &'a str,
    version: &'a str,
}

/// Tags that become OTLP span fields, and which of them therefore leave the attributes.
#[derive(Clone, Copy, Debug, Default)]
struct SpecialTags<'a> {
    /// Bits of [`Special`] whose tags are not written as attributes.
    consumed: u16,
    kind: i32,
    status: Option<(i32, &'a str)>,
    trace_state: &'a str,
    scope: Scope<'a>,
    dropped_attributes: u32,
    dropped_events: u32,
    dropped_links: u32,
}

/// What the walk over a span's tags has seen of the tags whose meaning depends on the others.
#[derive(Debug, Default)]
struct SpecialTagsSeen<'a> {
    special: SpecialTags<'a>,
    error: Option<TagValue<'a>>,
    status_code: Option<&'a str>,
    description: Option<&'a str>,
    http_code: Option<Tag<'a>>,
    http_message: Option<&'a str>,
    scope_name: Option<&'a str>,
    library_name: Option<&'a str>,
    scope_version: Option<&'a str>,
    library_version: Option<&'a str>,
}

impl<'a> SpecialTagsSeen<'a> {
    /// Looks at one tag of the span, in order, and marks it with its special kind.
    fn see(&mut self, tag: &mut Tag<'a>) {
        let Some(which) = Special::of(tag.key) else { return };
        tag.special = Some(which);
        let special = &mut self.special;
        match which {
            Special::SpanKind => {
                special.kind = span_kind(tag.str_value());
                special.consume(which);
            }
            Special::Error => self.error = Some(tag.value),
            Special::StatusCode => {
                self.status_code = Some(tag.str_value());
                special.consume(which);
            }
            Special::StatusDescription => self.description = Some(tag.str_value()),
            Special::HttpStatusCode => self.http_code = Some(*tag),
            Special::HttpStatusMessage => self.http_message = Some(tag.str_value()),
            Special::TraceState => {
                special.trace_state = tag.str_value();
                special.consume(which);
            }
            Special::ScopeName => self.scope_name = Some(tag.str_value()),
            Special::LibraryName => self.library_name = Some(tag.str_value()),
            Special::ScopeVersion => self.scope_version = Some(tag.str_value()),
            Special::LibraryVersion => self.library_version = Some(tag.str_value()),
            Special::DroppedAttributes | Special::DroppedEvents | Special::DroppedLinks => {
                if let Some(count) = tag.count() {
                    match which {
                        Special::DroppedAttributes => special.dropped_attributes = count,
                        Special::DroppedEvents => special.dropped_events = count,
                        _ => special.dropped_links = count,
                    }
                    special.consume(which);
                }
            }
        }
    }

    /// Decides what the tags seen mean together.
    fn finish(self) -> SpecialTags<'a> {
        let mut special = self.special;

        // Scope: `otel.scope.*` (current) before `otel.library.*` (deprecated); a version only
        // counts with a name, as the Collector reads them.
        let name =
            self.scope_name.map(|n| (n, Special::ScopeName)).or(self.library_name.map(|n| (n, Special::LibraryName)));
        if let Some((name, which)) = name {
            special.consume(which);
            special.scope.name = name;
            let (version, version_key) = if which == Special::ScopeName {
                (self.scope_version, Special::ScopeVersion)
            } else {
                (self.library_version, Special::LibraryVersion)
            };
            if let Some(version) = version {
                special.scope.version = version;
                special.consume(version_key);
            }
            // SDKs write the deprecated `otel.library.*` beside `otel.scope.*` with the same
            // values; a copy that says nothing new is not kept as an attribute (one that differs is).
            if which == Special::ScopeName {
                if self.library_name == Some(name) {
                    special.consume(Special::LibraryName);
                }
                if self.library_version.is_some() && self.library_version == self.scope_version {
                    special.consume(Special::LibraryVersion);
                }
            }
        }

        // Status, as the Collector's `setInternalSpanStatus`: a boolean `error: true` wins, then
        // `otel.status_code`, then an HTTP status code.
        let mut code = 0;
        let mut message = "";
        let mut exists = false;
        if self.error == Some(TagValue::Bool(true)) {
            code = 2;
            exists = true;
            special.consume(Special::Error);
            if let Some(description) = self.description {
                message = description;
                special.consume(Special::StatusDescription);
            } else if let Some(http_message) = self.http_message {
                message = http_message;
            }
        }
        if let Some(status_code) = self.status_code {
            if !exists {
                exists = true;
                code = if status_code.eq_ignore_ascii_case("OK") {
                    1
                } else if status_code.eq_ignore_ascii_case("ERROR") {
                    2
                } else {
                    0
                };
                if let Some(description) = self.description {
                    message = description;
                    special.consume(Special::StatusDescription);
                }
            }
        } else if let Some(http_code) = self.http_code.filter(|_| !exists) {
            if let Some(http_status) = http_status_code(&http_code, special.kind) {
                if http_status != 0 {
                    exists = true;
                    code = http_status;
                }
                message = self.http_message.unwrap_or_default();
            }
        }
        if exists {
            special.status = Some((code, message));
        }
        special
    }
}

impl SpecialTags<'_> {
    fn consume(&mut self, which: Special) {
        self.consumed |= which.bit();
    }

    /// Whether `tag` became an OTLP field (and so is not an attribute).
    fn is_consumed(&self, tag: &Tag<'_>) -> bool {
        tag.special.is_some_and(|which| self.consumed & which.bit() != 0)
    }
}

/// OpenTracing `span.kind` values → OTLP `SpanKind`.
fn span_kind(value: &str) -> i32 {
    match value {
        "internal" => 1,
        "server" => 2,
        "client" => 3,
        "producer" => 4,
        "consumer" => 5,
        _ => 0,
    }
}

/// The Collector's HTTP fallback: 4xx is an error for clients and unset for servers; 100–398 is
/// unset; anything else an error. `None` when the tag is not an integer.
fn http_status_code(tag: &Tag<'_>, kind: i32) -> Option<i32> {
    let code = match tag.value {
        TagValue::Long(code) => code,
        TagValue::Str(s) => s.parse().ok()?,
        _ => return None,
    };
    // 4xx is unset only for servers; otherwise the Collector's `StatusCodeFromHTTP`, whose
    // bound is `< 399`: 399 itself counts as an error.
    let unset = if (400..500).contains(&code) { kind == 2 } else { (100..399).contains(&code) };
    Some(if unset { 0 } else { 2 })
}

// ---------------------------------------------------------------------------------------------
// Spans, logs, references
// ---------------------------------------------------------------------------------------------

/// One span, read.
#[derive(Clone, Debug)]
struct SpanRecord<'a> {
    trace_low: i64,
    trace_high: i64,
    span_id: i64,
    /// `parentSpanId`, or the parent its references name (see [`parent`]); 0 for a root.
    parent: i64,
    name: &'a str,
    flags: i32,
    /// Start and end in ns since the epoch.
    start: u64,
    end: u64,
    /// Index into [`Records::processes`].
    process: usize,
    /// Indices into [`Records::tags`], [`Records::logs`] and [`Records::references`].
    tags: Range<usize>,
    logs: Range<usize>,
    references: Range<usize>,
    special: SpecialTags<'a>,
}

/// One `Log`: its fields are in [`Records::tags`], less `event` and a valid
/// `otel.event.dropped_attributes_count`, which became the name and the dropped count.
#[derive(Clone, Debug)]
struct LogRecord<'a> {
    /// ns since the epoch.
    timestamp: u64,
    fields: Range<usize>,
    name: Option<&'a str>,
    dropped: Option<u32>,
}

impl SpanRecord<'_> {
    /// A span with nothing read yet, of process `process`.
    fn blank(process: usize) -> Self {
        Self {
            trace_low: 0,
            trace_high: 0,
            span_id: 0,
            parent: 0,
            name: "",
            flags: 0,
            start: 0,
            end: 0,
            process,
            tags: 0..0,
            logs: 0..0,
            references: 0..0,
            special: SpecialTags::default(),
        }
    }
}

/// A `SpanRef`.
#[derive(Clone, Copy, Debug)]
struct Reference {
    child_of: bool,
    trace_low: i64,
    trace_high: i64,
    span_id: i64,
}

/// Reads one `Span` struct; `None` for a span with every field at its default, which the
/// Collector drops.
fn read_span<'a, R: ProtocolReader<'a>>(reader: &mut R, records: &mut Records<'a>) -> Result<Option<SpanRecord<'a>>> {
    let start_at = reader.offset();
    let (mut trace_low, mut span_id) = (None, None);
    // A Thrift batch has one process.
    let mut span = SpanRecord::blank(0);
    // Whether a list field or `incomplete: true` was there: a span with them is not blank.
    let mut other_fields = false;
    let (mut start, mut duration) = (0, 0);
    let mut last_id = 0;
    while let Some(field) = reader.field_begin(&mut last_id)? {
        match (field.id, field.ttype) {
            (1, TType::I64) => trace_low = Some(reader.read_i64()?),
            (2, TType::I64) => span.trace_high = reader.read_i64()?,
            (3, TType::I64) => span_id = Some(reader.read_i64()?),
            (4, TType::I64) => span.parent = reader.read_i64()?,
            (5, TType::Binary) => span.name = reader.read_str("Span.operationName")?,
            (6, TType::List) => {
                other_fields = true;
                span.references = read_references(reader, &mut records.references)?;
            }
            (7, TType::I32) => span.flags = reader.read_i32()?,
            (8, TType::I64) => start = reader.read_i64()?,
            (9, TType::I64) => duration = reader.read_i64()?,
            (10, TType::List) => {
                other_fields = true;
                let mut seen = SpecialTagsSeen::default();
                span.tags = read_tags(reader, &mut records.tags, "Span.tags", |tag| {
                    seen.see(tag);
                    true
                })?;
                span.special = seen.finish();
            }
            (11, TType::List) => {
                other_fields = true;
                span.logs = read_logs(reader, records)?;
            }
            (12, TType::Bool) => {
                other_fields |= reader.read_bool_field(&field)?;
            }
            _ => reader.skip(&field, 1)?,
        }
    }
    let blank = trace_low.unwrap_or_default() == 0
        && span_id.unwrap_or_default() == 0
        && span.trace_high == 0
        && span.parent == 0
        && span.name.is_empty()
        && span.flags == 0
        && start == 0
        && duration == 0
        && !other_fields;
    if blank {
        return Ok(None);
    }
    (span.start, span.end) = (nanos(start), nanos(start.wrapping_add(duration)));
    span.trace_low = trace_low.ok_or_else(|| missing(start_at, "Span.traceIdLow"))?;
    span.span_id = span_id.ok_or_else(|| missing(start_at, "Span.spanId"))?;
    span.parent = parent(&span, &records.references[span.references.clone()]);
    Ok(Some(span))
}

/// The parent: `parentSpanId`, or else (as Jaeger's model and the Collector infer it) the first
/// `CHILD_OF` reference into the same trace, or else the first `FOLLOWS_FROM` one.
fn parent(span: &SpanRecord<'_>, references: &[Reference]) -> i64 {
    if span.parent != 0 {
        return span.parent;
    }
    let same_trace = |r: &&Reference| r.trace_low == span.trace_low && r.trace_high == span.trace_high;
    let first = |child_of: bool| references.iter().filter(same_trace).find(|r| r.child_of == child_of);
    first(true).or_else(|| first(false)).map_or(0, |r| r.span_id)
}

fn read_references<'a, R: ProtocolReader<'a>>(reader: &mut R, references: &mut Vec<Reference>) -> Result<Range<usize>> {
    let first = references.len();
    for _ in 0..list_of(reader, TType::Struct, "Span.references")? {
        let start = reader.offset();
        let (mut kind, mut low, mut high, mut span) = (None, None, 0, None);
        let mut last_id = 0;
        while let Some(field) = reader.field_begin(&mut last_id)? {
            match (field.id, field.ttype) {
                (1, TType::I32) => kind = Some(reader.read_i32()?),
                (2, TType::I64) => low = Some(reader.read_i64()?),
                (3, TType::I64) => high = reader.read_i64()?,
                (4, TType::I64) => span = Some(reader.read_i64()?),
                _ => reader.skip(&field, 1)?,
            }
        }
        references.push(Reference {
            child_of: kind.ok_or_else(|| missing(start, "SpanRef.refType"))? == 0,
            trace_low: low.ok_or_else(|| missing(start, "SpanRef.traceIdLow"))?,
            trace_high: high,
            span_id: span.ok_or_else(|| missing(start, "SpanRef.spanId"))?,
        });
    }
    Ok(first..references.len())
}

/// Reads the `list<Log>` at the reader's position: the `event` field becomes the name and
/// `otel.event.dropped_attributes_count` the dropped count; the other fields are kept.
fn read_logs<'a, R: ProtocolReader<'a>>(reader: &mut R, records: &mut Records<'a>) -> Result<Range<usize>> {
    let first = records.logs.len();
    for _ in 0..list_of(reader, TType::Struct, "Span.logs")? {
        let start = reader.offset();
        let mut log = LogRecord { timestamp: 0, fields: 0..0, name: None, dropped: None };
        let mut timestamp = None;
        let mut last_id = 0;
        while let Some(field) = reader.field_begin(&mut last_id)? {
            match (field.id, field.ttype) {
                (1, TType::I64) => timestamp = Some(reader.read_i64()?),
                (2, TType::List) => {
                    let mut fields = LogFields::default();
                    log.fields = read_tags(reader, &mut records.tags, "Log.fields", |tag| fields.keep(tag))?;
                    fields.finish(&mut log);
                }
                _ => reader.skip(&field, 1)?,
            }
        }
        log.timestamp = nanos(timestamp.ok_or_else(|| missing(start, "Log.timestamp"))?);
        records.logs.push(log);
    }
    Ok(first..records.logs.len())
}

/// The log fields that become an event's name and dropped count, gathered field by field.
#[derive(Default)]
struct LogFields<'a> {
    name: Option<&'a str>,
    dropped: Option<u32>,
}

impl<'a> LogFields<'a> {
    /// Notes `tag` and says whether it stays an attribute of the event.
    fn keep(&mut self, tag: &Tag<'a>) -> bool {
        match tag.key {
            keys::EVENT => {
                self.name = Some(tag.str_value());
                false
            }
            keys::EVENT_DROPPED_ATTRIBUTES => match tag.count() {
                Some(count) => {
                    self.dropped = Some(count);
                    false
                }
                None => true,
            },
            _ => true,
        }
    }

    fn finish(self, log: &mut LogRecord<'a>) {
        (log.name, log.dropped) = (self.name, self.dropped);
    }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Groups the spans at `members` (indices into `spans`) by scope in first-seen order and writes
/// one `ScopeSpans` per scope, each span through `write`.
fn write_scopes<'a>(
    rs: &mut ResourceSpansWriter<'_>,
    spans: &[SpanRecord<'a>],
    members: &[u32],
    written: &mut Vec<bool>,
    mut write: impl FnMut(&mut SpanWriter<'_>, &SpanRecord<'a>),
) {
    written.clear();
    written.resize(members.len(), false);
    for first in 0..members.len() {
        if written[first] {
            continue;
        }
        let scope = spans[members[first] as usize].special.scope;
        rs.scope_spans(|ss| {
            if scope != Scope::default() {
                ss.scope(|s| {
                    if !scope.name.is_empty() {
                        s.name(scope.name);
                    }
                    if !scope.version.is_empty() {
                        s.version(scope.version);
                    }
                });
            }
            for (&member, written) in members.iter().zip(written.iter_mut()).skip(first) {
                let span = &spans[member as usize];
                if !*written && span.special.scope == scope {
                    *written = true;
                    ss.span(|s| write(s, span));
                }
            }
        });
    }
}

fn trace_id(high: i64, low: i64) -> [u8; 16] {
    let mut id = [0; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

/// µs since the epoch → ns, wrapping as the Collector's `uint64(µs) * 1000` does.
fn nanos(micros: i64) -> u64 {
    (micros as u64).wrapping_mul(1000)
}

fn write_span(
    s: &mut SpanWriter<'_>,
    span: &SpanRecord<'_>,
    tags: &[Tag<'_>],
    logs: &[LogRecord<'_>],
    references: &[Reference],
    key_table: &mut KeyTable,
) {
    let special = &span.special;
    s.trace_id(&trace_id(span.trace_high, span.trace_low)).span_id(&span.span_id.to_be_bytes());
    if !special.trace_state.is_empty() {
        s.trace_state(special.trace_state);
    }
    if span.parent != 0 {
        s.parent_span_id(&span.parent.to_be_bytes());
    }
    if !span.name.is_empty() {
        s.name(span.name);
    }
    if special.kind != 0 {
        s.kind(special.kind);
    }
    s.start_time_unix_nano(span.start).end_time_unix_nano(span.end);
    for tag in last_of_each(key_table, &tags[span.tags.clone()]).iter() {
        if !special.is_consumed(tag) {
            tag.write_as(s, tag.key);
        }
    }
    if special.dropped_attributes != 0 {
        s.dropped_attributes_count(special.dropped_attributes);
    }
    for log in &logs[span.logs.clone()] {
        s.event(|e| {
            e.time_unix_nano(log.timestamp);
            if let Some(name) = log.name.filter(|n| !n.is_empty()) {
                e.name(name);
            }
            for field in last_of_each(key_table, &tags[log.fields.clone()]).iter() {
                field.write_as(e, field.key);
            }
            if let Some(dropped) = log.dropped.filter(|d| *d != 0) {
                e.dropped_attributes_count(dropped);
            }
        });
    }
    if special.dropped_events != 0 {
        s.dropped_events_count(special.dropped_events);
    }
    // Every reference becomes a link except `CHILD_OF` ones to the parent (the Collector's rule).
    for r in &references[span.references.clone()] {
        if r.child_of && r.span_id == span.parent {
            continue;
        }
        s.link(|l| {
            l.trace_id(&trace_id(r.trace_high, r.trace_low)).span_id(&r.span_id.to_be_bytes());
            l.str_attribute(keys::REF_TYPE, if r.child_of { keys::CHILD_OF } else { keys::FOLLOWS_FROM });
        });
    }
    if special.dropped_links != 0 {
        s.dropped_links_count(special.dropped_links);
    }
    if let Some((code, message)) = special.status {
        s.status(code, message);
    }
    let sampled = (span.flags & 1) as u32;
    if sampled != 0 {
        s.flags(sampled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thrift::{BinaryReader, BinaryWriter, CompactReader, CompactWriter, ProtocolWriter};
    use proptest::prelude::*;

    /// One field of a `Tag` struct as a writer might put it: its id and a value of some type.
    #[derive(Clone, Debug)]
    enum Field {
        Binary(i16, Vec<u8>),
        I32(i16, i32),
        I64(i16, i64),
        Double(i16, f64),
        Bool(i16, bool),
    }

    fn field() -> impl Strategy<Value = Field> {
        // Mostly the ids and types of `Tag`'s own fields, sometimes others.
        let id = prop_oneof![4 => 1i16..=7, 1 => -3i16..40];
        prop_oneof![
            (id.clone(), proptest::collection::vec(any::<u8>(), 0..20)).prop_map(|(id, b)| Field::Binary(id, b)),
            (id.clone(), prop_oneof![0i32..=5, any::<i32>()]).prop_map(|(id, v)| Field::I32(id, v)),
            (id.clone(), any::<i64>()).prop_map(|(id, v)| Field::I64(id, v)),
            (id.clone(), any::<f64>()).prop_map(|(id, v)| Field::Double(id, v)),
            (id, any::<bool>()).prop_map(|(id, v)| Field::Bool(id, v)),
        ]
    }

    /// Arbitrary fields, or the usual layout with arbitrary values (`vType` any of Jaeger's and a
    /// few others) and sometimes a field more, so both readers see near misses of that layout.
    fn fields() -> impl Strategy<Value = Vec<Field>> {
        let usual = (
            proptest::collection::vec(any::<u8>(), 0..12),
            prop_oneof![0i32..=5, -1i32..7],
            prop_oneof![Just(3i16), Just(4), Just(5), Just(6), 1i16..8],
            field(),
            proptest::option::of(field()),
        )
            .prop_map(|(key, v_type, value_id, value, extra)| {
                let value = match value {
                    Field::Binary(_, b) => Field::Binary(value_id, b),
                    Field::I32(_, v) => Field::I32(value_id, v),
                    Field::I64(_, v) => Field::I64(value_id, v),
                    Field::Double(_, v) => Field::Double(value_id, v),
                    Field::Bool(_, v) => Field::Bool(value_id, v),
                };
                let mut fields = vec![Field::Binary(1, key), Field::I32(2, v_type), value];
                fields.extend(extra);
                fields
            });
        prop_oneof![proptest::collection::vec(field(), 0..5), usual]
    }

    fn write<W: ProtocolWriter>(fields: &[Field]) -> Vec<u8> {
        let mut w = W::with_buf(Vec::new());
        w.struct_begin();
        for field in fields {
            match field {
                Field::Binary(id, b) => w.field_binary(*id, b),
                Field::I32(id, v) => w.field_i32(*id, *v),
                Field::I64(id, v) => w.field_i64(*id, *v),
                Field::Double(id, v) => w.field_double(*id, *v),
                Field::Bool(id, v) => w.field_bool(*id, *v),
            }
        }
        w.struct_end();
        w.into_buf()
    }

    /// The usual-layout reader reads a tag exactly as the general one does, or declines.
    fn agrees<'a, R: ProtocolReader<'a>>(mut fast: R) -> std::result::Result<bool, TestCaseError> {
        let mut general = fast;
        let read = read_usual_tag(&mut fast);
        if let Some(tag) = read {
            let expected = read_tag_fields(&mut general);
            prop_assert_eq!(format!("{expected:?}"), format!("{:?}", Ok::<_, DecodeError>(tag)));
            prop_assert_eq!(fast.offset(), general.offset());
        }
        Ok(read.is_some())
    }

    proptest! {
        #[test]
        fn the_usual_layout_reads_as_the_general_loop(fields in fields(), cut in any::<prop::sample::Index>()) {
            for bytes in [write::<CompactWriter>(&fields), write::<BinaryWriter>(&fields)] {
                let truncated = &bytes[..cut.index(bytes.len() + 1)];
                for input in [&bytes[..], truncated] {
                    agrees(CompactReader::new(input))?;
                    agrees(BinaryReader::new(input))?;
                }
            }
        }

        /// What Jaeger's clients write (and this crate's encoder): key, type, value, in order.
        #[test]
        fn string_long_double_and_bool_tags_take_the_usual_layout(key in ".{0,12}", text in ".{0,40}", long in any::<i64>(), double in any::<f64>(), bool in any::<bool>()) {
            let key = Field::Binary(1, key.into_bytes());
            for value in [
                [Field::I32(2, 0), Field::Binary(3, text.into_bytes())],
                [Field::I32(2, 3), Field::I64(6, long)],
                [Field::I32(2, 1), Field::Double(4, double)],
                [Field::I32(2, 2), Field::Bool(5, bool)],
            ] {
                let fields = [key.clone(), value[0].clone(), value[1].clone()];
                prop_assert!(agrees(CompactReader::new(&write::<CompactWriter>(&fields)))?);
                prop_assert!(agrees(BinaryReader::new(&write::<BinaryWriter>(&fields)))?);
            }
        }
    }
}
