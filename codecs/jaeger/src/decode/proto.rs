//! Jaeger's protobuf model (`jaeger.api_v2`, model.proto) → canonical batch: the body of the
//! Jaeger collector's gRPC `CollectorService/PostSpans`, read with spanpipe's bounds-checked wire
//! reader into the same records as Thrift, and written by the same code.
//!
//! ```text
//! message PostSpansRequest { Batch batch = 1; }
//! message Batch { repeated Span spans = 1; Process process = 2; }
//! message Span {
//!   bytes trace_id = 1; bytes span_id = 2; string operation_name = 3;
//!   repeated SpanRef references = 4; uint32 flags = 5; google.protobuf.Timestamp start_time = 6;
//!   google.protobuf.Duration duration = 7; repeated KeyValue tags = 8; repeated Log logs = 9;
//!   Process process = 10; string process_id = 11; repeated string warnings = 12;
//! }
//! message SpanRef { bytes trace_id = 1; bytes span_id = 2; SpanRefType ref_type = 3; }
//! message Process { string service_name = 1; repeated KeyValue tags = 2; }
//! message Log { google.protobuf.Timestamp timestamp = 1; repeated KeyValue fields = 2; }
//! message KeyValue {
//!   string key = 1; ValueType v_type = 2; string v_str = 3; bool v_bool = 4; int64 v_int64 = 5;
//!   double v_float64 = 6; bytes v_binary = 7;
//! }
//! enum ValueType { STRING = 0; BOOL = 1; INT64 = 2; FLOAT64 = 3; BINARY = 4; }
//! enum SpanRefType { CHILD_OF = 0; FOLLOWS_FROM = 1; }
//! ```
//!
//! What differs from Thrift, and how it is read:
//! - Ids are big-endian bytes: a trace id of exactly 16 bytes, a span id of exactly 8 (Jaeger's
//!   model refuses other lengths); absent is zero, as proto3 has no presence.
//! - Times are `Timestamp` and `Duration` messages with nanosecond precision, checked against the
//!   ranges protobuf's well-known types allow (as the Collector's unmarshalling does).
//! - A span may carry its own `process`; one without uses the batch's. Spans are grouped into one
//!   resource per distinct process, in order of first appearance. The Collector groups by the
//!   process *object*, in Go's map order; grouping by content gives the same resources when each
//!   span repeats the batch's process (as Jaeger's agent sends them) and a stable order.
//! - A singular message field given more than once (`batch`, `process`, `start_time`,
//!   `duration`, `Log.timestamp`) is the merge of its occurrences, as protobuf says: read in turn
//!   into one record, later scalars replacing earlier ones, repeated fields (spans, tags)
//!   collected. No encoder writes one twice, but prost and Go's decoders, the Collector's among
//!   them, read it so.
//! - `process_id` and `warnings` are read past: the Collector maps neither.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::ops::Range;

use spanpipe_codecs::digest::Digest;
use spanpipe_codecs::repeated_keys::KeyTable;
use spanpipe_core::wire::{decode_varint, Field, Reader, WireFault};
use spanpipe_core::{SpanBatch, WireType};

use super::{
    for_each_resource_attribute, parent, unknown_type_text, with_records, write_records, LogFields, LogRecord,
    ProcessRecord, ProcessRenames, Records, Reference, ResourceValue, SpanRecord, SpecialTagsSeen, Tag, TagValue,
    JAEGER_PREFIX,
};
use crate::error::{DecodeError, DecodeErrorKind};
use crate::thrift::utf8;

type Result<T> = std::result::Result<T, DecodeError>;

/// Decodes a `PostSpansRequest`. A request without a batch, or with a batch without spans, gives
/// an empty batch (the Collector's answer to it is a success with nothing in it).
pub(crate) fn post_spans_request(body: &[u8]) -> Result<SpanBatch> {
    let batches =
        occurrences(body, 0..body.len(), 1).map(|field| field.and_then(|f| len_field(&f, "PostSpansRequest.batch")));
    with_records(|records| {
        read_batch(body, batches, records)?;
        write_records(records, body.len() * 2 + 64, 0)
    })
}

/// Decodes a bare `Batch` message.
pub(crate) fn batch_message(body: &[u8]) -> Result<SpanBatch> {
    with_records(|records| {
        read_batch(body, std::iter::once(Ok(0..body.len())), records)?;
        write_records(records, body.len() * 2 + 64, 0)
    })
}

/// The occurrences of field `number` in the message at `range`, in wire order, and any fault
/// met on the way. Reading a singular message field's occurrences in turn into one record is
/// protobuf's merge of them.
fn occurrences(data: &[u8], range: Range<usize>, number: u32) -> impl Iterator<Item = Result<Field>> + Clone + '_ {
    let mut reader = Reader::new(data, range);
    let mut faulted = false;
    std::iter::from_fn(move || {
        if faulted {
            return None;
        }
        loop {
            match next_field(&mut reader) {
                Ok(Some(field)) if field.number != number => {}
                Ok(found) => return found.map(Ok),
                Err(fault) => {
                    faulted = true;
                    return Some(Err(fault));
                }
            }
        }
    })
}

/// The `process` fields met while reading a span or a batch. The process is read once its
/// parent is, so that its tags lie together in the records: from its one occurrence, as encoders
/// write it, or, when there were several, from all of them, found by walking the parent again.
#[derive(Default)]
struct DeferredProcess {
    first: Option<Field>,
    repeated: bool,
}

impl DeferredProcess {
    /// Notes an occurrence, checked to be length-delimited.
    fn see(&mut self, field: Field, name: &'static str) -> Result<()> {
        len_field(&field, name)?;
        if self.first.is_some() {
            self.repeated = true;
        } else {
            self.first = Some(field);
        }
        Ok(())
    }

    /// The process noted, if any. `every` walks the parent again for all its occurrences; it is
    /// lazy, and iterated only when there were several.
    fn read<'a>(
        self,
        data: &'a [u8],
        every: impl Iterator<Item = Result<Field>>,
        name: &'static str,
        tags: &mut Vec<Tag<'a>>,
    ) -> Result<Option<ProcessRecord<'a>>> {
        let process = match self {
            Self { first: None, .. } => return Ok(None),
            Self { first: Some(field), repeated: false } => read_process(data, std::iter::once(Ok(field)), name, tags),
            Self { repeated: true, .. } => read_process(data, every, name, tags),
        };
        process.map(Some)
    }
}

/// A `Timestamp` or `Duration` as read so far: its occurrences merge field by field.
#[derive(Clone, Copy, Default)]
struct SecondsAndNanos {
    seconds: i64,
    nanos: i64,
    /// Where the last occurrence starts, for errors.
    at: usize,
}

#[inline(always)]
fn next_field(reader: &mut Reader<'_>) -> Result<Option<Field>> {
    reader.next_field().map_err(wire_fault)
}

#[cold]
fn wire_fault((fault, at): (WireFault, usize)) -> DecodeError {
    DecodeError::new(at, DecodeErrorKind::Wire { fault })
}

#[cold]
fn wire_type_error(field: &Field, name: &'static str, expected: WireType) -> DecodeError {
    DecodeError::new(field.start, DecodeErrorKind::WireType { field: name, found: field.value.wire_type(), expected })
}

#[inline]
fn len_field(field: &Field, name: &'static str) -> Result<Range<usize>> {
    field.value.as_len().ok_or_else(|| wire_type_error(field, name, WireType::Len))
}

#[inline]
fn varint_field(field: &Field, name: &'static str) -> Result<u64> {
    field.value.as_varint().ok_or_else(|| wire_type_error(field, name, WireType::Varint))
}

#[inline]
fn str_field<'a>(data: &'a [u8], field: &Field, name: &'static str) -> Result<&'a str> {
    let range = len_field(field, name)?;
    utf8(&data[range]).ok_or_else(|| DecodeError::new(field.start, DecodeErrorKind::InvalidUtf8 { field: name }))
}

/// An id field of exactly `N` bytes (16 for a trace id, 8 for a span id), as its bytes.
fn id_field<const N: usize>(data: &[u8], field: &Field, name: &'static str) -> Result<[u8; N]> {
    let range = len_field(field, name)?;
    data[range.clone()].try_into().map_err(|_| {
        DecodeError::new(field.start, DecodeErrorKind::IdLength { field: name, found: range.len(), expected: N })
    })
}

fn trace_id_halves(id: [u8; 16]) -> (i64, i64) {
    let (high, low) = id.split_at(8);
    let word = |bytes: &[u8]| i64::from_be_bytes(bytes.try_into().unwrap_or_default());
    (word(high), word(low))
}

/// A `google.protobuf.Timestamp` (`seconds = 1`, `nanos = 2`) in ns since the epoch, within the
/// range the type allows (years 1 to 9999, nanos 0 to 999,999,999); before the epoch it wraps, as
/// the Collector's conversion to an unsigned time does.
fn timestamp(time: SecondsAndNanos, name: &'static str) -> Result<u64> {
    let SecondsAndNanos { seconds, nanos, at } = time;
    let in_range = (-62_135_596_800..=253_402_300_799).contains(&seconds) && (0..1_000_000_000).contains(&nanos);
    if !in_range {
        return Err(DecodeError::new(at, DecodeErrorKind::TimeOutOfRange { field: name, seconds, nanos }));
    }
    Ok((i128::from(seconds) * 1_000_000_000 + i128::from(nanos)) as u64)
}

/// A `google.protobuf.Duration` in ns (two's complement when negative), within the range the
/// type allows (±10,000 years; seconds and nanos of one sign).
fn duration(time: SecondsAndNanos, name: &'static str) -> Result<u64> {
    let SecondsAndNanos { seconds, nanos, at } = time;
    let in_range = (-315_576_000_000..=315_576_000_000).contains(&seconds)
        && (-999_999_999..=999_999_999).contains(&nanos)
        && (seconds == 0 || nanos == 0 || (seconds < 0) == (nanos < 0));
    if !in_range {
        return Err(DecodeError::new(at, DecodeErrorKind::TimeOutOfRange { field: name, seconds, nanos }));
    }
    Ok((i128::from(seconds) * 1_000_000_000 + i128::from(nanos)) as u64)
}

/// Reads one occurrence of a `Timestamp` or `Duration` message (`seconds` int64, `nanos` int32)
/// over what earlier occurrences of the same field gave (`None` for the first).
fn seconds_and_nanos(
    data: &[u8],
    field: &Field,
    name: &'static str,
    earlier: Option<SecondsAndNanos>,
) -> Result<SecondsAndNanos> {
    let mut reader = Reader::new(data, len_field(field, name)?);
    let mut time = SecondsAndNanos { at: field.start, ..earlier.unwrap_or_default() };
    while let Some(inner) = next_field(&mut reader)? {
        match inner.number {
            1 => time.seconds = varint_field(&inner, name)? as i64,
            // An int32 is sign-extended to ten bytes on the wire; its low 32 bits are the value.
            2 => time.nanos = i64::from(varint_field(&inner, name)? as i32),
            _ => {}
        }
    }
    Ok(time)
}

/// Which process a span read names, until the batch's own process is known (it may come after
/// the spans: encoders write fields in number order, and `spans` is field 1).
const BATCH_PROCESS: usize = usize::MAX;

/// Reads a `Batch` given as `parts`: the occurrences of a request's `batch` (one, as encoders
/// write it, or several to be merged), or the whole body for a bare batch.
fn read_batch<'a>(
    data: &'a [u8],
    parts: impl Iterator<Item = Result<Range<usize>>> + Clone,
    records: &mut Records<'a>,
) -> Result<()> {
    // The spans' own processes go to `records.processes` as they are read; the batch's is read
    // once every span is (it may come after them), and then they are told apart.
    let mut process = DeferredProcess::default();
    for part in parts.clone() {
        let mut reader = Reader::new(data, part?);
        while let Some(field) = next_field(&mut reader)? {
            match field.number {
                1 => {
                    let span_range = len_field(&field, "Batch.spans")?;
                    if let Some(span) = read_span(data, span_range, records)? {
                        records.spans.push(span);
                    }
                }
                2 => process.see(field, "Batch.process")?,
                _ => {}
            }
        }
    }
    // Every part was read without fault above.
    let every = parts.filter_map(Result::ok).flat_map(|part| occurrences(data, part, 2));
    let batch_process = process.read(data, every, "Batch.process", &mut records.tags)?;
    assign_processes(records, batch_process);
    Ok(())
}

/// Numbers the processes the spans name (their own, or the batch's for those without) in order of
/// first appearance, one number per distinct process, and leaves those processes in
/// [`Records::processes`]. A process is told apart by its service name and its tags in order, of
/// a key given twice the last (what its resource is made of).
fn assign_processes<'a>(records: &mut Records<'a>, batch_process: Option<ProcessRecord<'a>>) {
    // `records.processes` holds the spans' own processes as read (a span's `process` indexes
    // it); they are moved out and the distinct ones put back.
    let read = std::mem::take(&mut records.processes);
    let batch_process = batch_process.unwrap_or_default();
    let mut distinct = DistinctProcesses::new(&records.tags, &mut records.key_table);
    // The batch's process, once numbered (most spans name it).
    let mut batch_number = None;
    for span in &mut records.spans {
        let number = if span.process == BATCH_PROCESS {
            *batch_number.get_or_insert_with(|| distinct.number(&batch_process))
        } else {
            distinct.number(&read[span.process])
        };
        span.process = number;
    }
    records.processes = distinct.processes;
}

/// Processes told apart by content, numbered in order of first appearance. A request names one
/// process or a few, found by comparing them in turn; past [`DistinctProcesses::LINEAR`] they are
/// found through a map of keyed hashes, so that a request of many distinct processes costs no
/// more than a hash each.
///
/// Processes that differ as sent may still make the same resource: one repeats a tag key that
/// another gives once, or gives `hostname` where another gives `host.name`, or its tags in
/// another order around a renamed one. Those are one process, as after a round through any
/// encoder they would be. So a process that matches none as sent is looked for by its resource
/// ([`resource_bytes`]): by a digest of it, a match confirmed by the bytes themselves. Those are
/// read only for such a process (the first of each distinct process in a request): the processes
/// that match as sent cost nothing more.
struct DistinctProcesses<'r, 'a> {
    tags: &'r [Tag<'a>],
    key_table: &'r mut KeyTable,
    processes: Vec<ProcessRecord<'a>>,
    /// Built when the processes outnumber [`Self::LINEAR`]: a hash to the first process with it.
    by_hash: Option<(RandomState, HashMap<u64, usize>)>,
    /// The digest of each process's resource to the first process with it; empty until a second
    /// process comes.
    by_resource: HashMap<Digest, usize>,
    /// The resource of the process being looked for, and of the one it is compared with.
    resource: Vec<u8>,
    known_resource: Vec<u8>,
}

impl<'r, 'a> DistinctProcesses<'r, 'a> {
    const LINEAR: usize = 8;

    fn new(tags: &'r [Tag<'a>], key_table: &'r mut KeyTable) -> Self {
        Self {
            tags,
            key_table,
            processes: Vec::new(),
            by_hash: None,
            by_resource: HashMap::new(),
            resource: Vec::new(),
            known_resource: Vec::new(),
        }
    }

    /// The number of `process`, added if it is new.
    fn number(&mut self, process: &ProcessRecord<'a>) -> usize {
        match self.find(process) {
            Some(found) => found,
            None => self.number_by_resource(process),
        }
    }

    /// The number of a process that matches none as it was sent: of a process with the same
    /// resource, or a new one.
    #[inline(never)]
    fn number_by_resource(&mut self, process: &ProcessRecord<'a>) -> usize {
        if self.processes.is_empty() {
            return self.add(process.clone());
        }
        if self.by_resource.is_empty() {
            resource_bytes(&self.processes[0], self.tags, self.key_table, &mut self.resource);
            self.by_resource.insert(Digest::default().text(&self.resource), 0);
        }
        resource_bytes(process, self.tags, self.key_table, &mut self.resource);
        let digest = Digest::default().text(&self.resource);
        if let Some(&found) = self.by_resource.get(&digest) {
            resource_bytes(&self.processes[found], self.tags, self.key_table, &mut self.known_resource);
            if self.known_resource == self.resource {
                return found;
            }
            // Two resources with one digest: kept apart, the second not indexed (correct either
            // way; the digest is not keyed, so a sender could make this happen on purpose).
            return self.add(process.clone());
        }
        let number = self.add(process.clone());
        self.by_resource.insert(digest, number);
        number
    }

    #[inline]
    fn find(&self, process: &ProcessRecord<'a>) -> Option<usize> {
        let tags = self.tags;
        match &self.by_hash {
            None => self.processes.iter().position(|known| same_process(known, process, tags)),
            Some((hasher, by_hash)) => by_hash
                .get(&process_hash(hasher, process, tags))
                .copied()
                .filter(|&found| same_process(&self.processes[found], process, tags)),
        }
    }

    fn add(&mut self, process: ProcessRecord<'a>) -> usize {
        let number = self.processes.len();
        self.processes.push(process);
        let tags = self.tags;
        match &mut self.by_hash {
            None if self.processes.len() > Self::LINEAR => {
                let hasher = RandomState::new();
                // Reversed, so that of equal hashes the first process is the one kept.
                let by_hash =
                    self.processes.iter().enumerate().rev().map(|(n, p)| (process_hash(&hasher, p, tags), n)).collect();
                self.by_hash = Some((hasher, by_hash));
            }
            None => {}
            Some((hasher, by_hash)) => {
                // Two processes with one 64-bit keyed hash: kept apart, the second not indexed
                // (never seen in practice; correct either way).
                by_hash.entry(process_hash(hasher, &self.processes[number], tags)).or_insert(number);
            }
        }
        number
    }
}

/// The resource a process makes, as bytes (in `out`, cleared first) that are equal exactly when
/// the attributes written are: each key and each value length-prefixed, values by type (a
/// `jaeger.version` turned into a string reads as that string, an unknown `vType` as the string
/// it becomes).
fn resource_bytes(process: &ProcessRecord<'_>, tags: &[Tag<'_>], key_table: &mut KeyTable, out: &mut Vec<u8>) {
    fn put(out: &mut Vec<u8>, kind: u8, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|part| part.len()).sum();
        out.push(kind);
        out.extend_from_slice(&(len as u64).to_le_bytes());
        parts.iter().for_each(|part| out.extend_from_slice(part));
    }
    const KEY: u8 = 0;
    const STRING: u8 = 1;
    out.clear();
    out.push(u8::from(process.present));
    for_each_resource_attribute(process, tags, key_table, |key, value| {
        put(out, KEY, &[key.as_bytes()]);
        match value {
            ResourceValue::Str(text) => put(out, STRING, &[text.as_bytes()]),
            ResourceValue::JaegerVersion(version) => put(out, STRING, &[JAEGER_PREFIX.as_bytes(), version.as_bytes()]),
            ResourceValue::Tag(tag) => match tag.value {
                TagValue::Str(text) => put(out, STRING, &[text.as_bytes()]),
                TagValue::Unknown(v_type) => put(out, STRING, &[unknown_type_text(v_type).as_bytes()]),
                TagValue::Double(double) => put(out, 2, &[&double.to_bits().to_le_bytes()]),
                TagValue::Bool(flag) => put(out, 3, &[&[u8::from(flag)]]),
                TagValue::Long(long) => put(out, 4, &[&long.to_le_bytes()]),
                TagValue::Binary(bytes) => put(out, 5, &[bytes]),
            },
        }
    });
}

fn process_hash(hasher: &RandomState, process: &ProcessRecord<'_>, tags: &[Tag<'_>]) -> u64 {
    let mut state = hasher.build_hasher();
    process.present.hash(&mut state);
    process.service.hash(&mut state);
    for tag in &tags[process.tags.clone()] {
        tag.key.hash(&mut state);
        match tag.value {
            TagValue::Str(s) => (0u8, s).hash(&mut state),
            TagValue::Double(d) => (1u8, d.to_bits()).hash(&mut state),
            TagValue::Bool(b) => (2u8, b).hash(&mut state),
            TagValue::Long(l) => (3u8, l).hash(&mut state),
            TagValue::Binary(b) => (4u8, b).hash(&mut state),
            TagValue::Unknown(t) => (5u8, t).hash(&mut state),
        }
    }
    state.finish()
}

fn same_process(a: &ProcessRecord<'_>, b: &ProcessRecord<'_>, tags: &[Tag<'_>]) -> bool {
    a.present == b.present
        && a.service == b.service
        && tags[a.tags.clone()].len() == tags[b.tags.clone()].len()
        && tags[a.tags.clone()].iter().zip(&tags[b.tags.clone()]).all(|(x, y)| x.key == y.key && x.value == y.value)
}

/// Reads a `Process` from its `occurrences` (merged when there are several: the last service
/// name, every tag in order).
fn read_process<'a>(
    data: &'a [u8],
    occurrences: impl Iterator<Item = Result<Field>>,
    name: &'static str,
    tags: &mut Vec<Tag<'a>>,
) -> Result<ProcessRecord<'a>> {
    let mut process = ProcessRecord { present: true, ..ProcessRecord::default() };
    let mut renames = ProcessRenames::default();
    let first = tags.len();
    for field in occurrences {
        let mut reader = Reader::new(data, len_field(&field?, name)?);
        while let Some(inner) = next_field(&mut reader)? {
            match inner.number {
                1 => process.service = Some(str_field(data, &inner, "Process.service_name")?),
                2 => {
                    let tag = read_key_value(data, &inner, "Process.tags")?;
                    renames.see(&tag);
                    tags.push(tag);
                }
                _ => {}
            }
        }
    }
    process.tags = first..tags.len();
    renames.finish(&mut process);
    Ok(process)
}

/// A `KeyValue` as a tag; `name` is the repeated field it came in, for errors.
#[inline]
fn read_key_value<'a>(data: &'a [u8], field: &Field, name: &'static str) -> Result<Tag<'a>> {
    let range = len_field(field, name)?;
    if let Some(tag) = read_usual_key_value(&data[range.clone()]) {
        return Ok(tag);
    }
    read_key_value_fields(data, range)
}

/// A `KeyValue` laid out as encoders write one — `key`, then `v_type` unless STRING, then the one
/// value field its type names unless it holds the default, each with a one-byte tag and length,
/// nothing else — read straight from its bytes: most tags of most requests. `None` for any other
/// layout or a value that does not read (not UTF-8, a bad varint); [`read_key_value_fields`]
/// then decides, and reports any error, as for every other tag.
#[inline(always)]
fn read_usual_key_value(bytes: &[u8]) -> Option<Tag<'_>> {
    let [0x0a, key_len, rest @ ..] = bytes else { return None };
    let (key, rest) = rest.split_at_checked(usize::from(*key_len)).filter(|_| *key_len < 0x80)?;
    let key = utf8(key)?;
    let (v_type, rest) = match rest {
        [0x10, v_type @ 1..=0x7f, rest @ ..] => (*v_type, rest),
        _ => (0, rest),
    };
    let value = match (v_type, rest) {
        (0, []) => TagValue::Str(""),
        (0, [0x1a, len @ 0..=0x7f, text @ ..]) if usize::from(*len) == text.len() => TagValue::Str(utf8(text)?),
        (1, []) => TagValue::Bool(false),
        (1, [0x20, flag @ 0..=0x7f]) => TagValue::Bool(*flag != 0),
        (2, []) => TagValue::Long(0),
        (2, [0x28, varint @ ..]) => match decode_varint(varint) {
            Ok((value, len)) if len == varint.len() => TagValue::Long(value as i64),
            _ => return None,
        },
        (3, []) => TagValue::Double(0.0),
        (3, [0x31, bits @ ..]) => TagValue::Double(f64::from_le_bytes(bits.try_into().ok()?)),
        _ => return None,
    };
    Some(Tag { key, value, special: None })
}

/// Reads a `KeyValue` field by field, in any order and form protobuf allows.
#[inline(never)]
fn read_key_value_fields(data: &[u8], range: Range<usize>) -> Result<Tag<'_>> {
    let mut reader = Reader::new(data, range);
    let (mut key, mut v_type) = ("", 0);
    let (mut v_str, mut v_bool, mut v_int64, mut v_float64, mut v_binary) = ("", false, 0, 0.0, &[][..]);
    while let Some(inner) = next_field(&mut reader)? {
        match inner.number {
            1 => key = str_field(data, &inner, "KeyValue.key")?,
            // An enum is an int32 on the wire.
            2 => v_type = varint_field(&inner, "KeyValue.v_type")? as i32,
            3 => v_str = str_field(data, &inner, "KeyValue.v_str")?,
            4 => v_bool = varint_field(&inner, "KeyValue.v_bool")? != 0,
            5 => v_int64 = varint_field(&inner, "KeyValue.v_int64")? as i64,
            6 => {
                let bits =
                    inner.value.as_i64().ok_or_else(|| wire_type_error(&inner, "KeyValue.v_float64", WireType::I64))?;
                v_float64 = f64::from_bits(bits);
            }
            7 => v_binary = &data[len_field(&inner, "KeyValue.v_binary")?],
            _ => {}
        }
    }
    let value = match v_type {
        0 => TagValue::Str(v_str),
        1 => TagValue::Bool(v_bool),
        2 => TagValue::Long(v_int64),
        3 => TagValue::Double(v_float64),
        4 => TagValue::Binary(v_binary),
        other => TagValue::Unknown(other),
    };
    Ok(Tag { key, value, special: None })
}

/// Reads one `Span`; `None` for a span with every field at its default, which the Collector
/// drops (as it does in Thrift).
fn read_span<'a>(data: &'a [u8], range: Range<usize>, records: &mut Records<'a>) -> Result<Option<SpanRecord<'a>>> {
    let mut reader = Reader::new(data, range.clone());
    let (mut trace_id, mut span_id) = ([0; 16], [0; 8]);
    let (mut start_parts, mut duration_parts) = (None, None);
    let mut process = DeferredProcess::default();
    let mut span = SpanRecord::blank(BATCH_PROCESS);
    let (first_reference, first_log) = (records.references.len(), records.logs.len());
    // Whether a field that has no place in the record was there (`process_id`, `warnings`, an
    // unknown field), or a tag: a span with one is not blank.
    let mut other_fields = false;
    // The span's tags must lie side by side in `records.tags`, where logs put theirs too (a
    // process is read after the walk). Encoders write each repeated field's entries together, so
    // the tags are read on this walk; only when a log's fields came between two of them (protobuf
    // allows it) are they read again, together, on a second walk.
    let mut tags: Option<Range<usize>> = None;
    let mut tags_apart = false;
    let mut seen = SpecialTagsSeen::default();
    while let Some(field) = next_field(&mut reader)? {
        match field.number {
            1 => trace_id = id_field(data, &field, "Span.trace_id")?,
            2 => span_id = id_field(data, &field, "Span.span_id")?,
            3 => span.name = str_field(data, &field, "Span.operation_name")?,
            4 => records.references.push(read_reference(data, &field)?),
            5 => span.flags = varint_field(&field, "Span.flags")? as u32 as i32,
            6 => start_parts = Some(seconds_and_nanos(data, &field, "Span.start_time", start_parts)?),
            7 => duration_parts = Some(seconds_and_nanos(data, &field, "Span.duration", duration_parts)?),
            8 => {
                other_fields = true;
                let mut tag = read_key_value(data, &field, "Span.tags")?;
                let end = records.tags.len();
                let run = tags.get_or_insert(end..end);
                tags_apart |= run.end != end;
                if !tags_apart {
                    seen.see(&mut tag);
                    records.tags.push(tag);
                    run.end += 1;
                }
            }
            9 => {
                let log = read_log(data, &field, records)?;
                records.logs.push(log);
            }
            10 => process.see(field, "Span.process")?,
            _ => other_fields = true,
        }
    }
    let start = start_parts.map(|time| timestamp(time, "Span.start_time")).transpose()?;
    let duration_ns = duration_parts.map(|time| duration(time, "Span.duration")).transpose()?.unwrap_or(0);
    let every = occurrences(data, range.clone(), 10);
    if let Some(own) = process.read(data, every, "Span.process", &mut records.tags)? {
        span.process = records.processes.len();
        records.processes.push(own);
    }
    if tags_apart {
        let first_tag = records.tags.len();
        seen = SpecialTagsSeen::default();
        let mut reader = Reader::new(data, range);
        while let Some(field) = next_field(&mut reader)? {
            if field.number == 8 {
                let mut tag = read_key_value(data, &field, "Span.tags")?;
                seen.see(&mut tag);
                records.tags.push(tag);
            }
        }
        tags = Some(first_tag..records.tags.len());
    }
    span.tags = tags.unwrap_or_default();
    span.references = first_reference..records.references.len();
    span.logs = first_log..records.logs.len();
    span.special = seen.finish();
    let blank = trace_id == [0; 16]
        && span_id == [0; 8]
        && span.name.is_empty()
        && span.flags == 0
        && start.is_none()
        && duration_ns == 0
        && span.references.is_empty()
        && span.logs.is_empty()
        && span.process == BATCH_PROCESS
        && !other_fields;
    if blank {
        return Ok(None);
    }
    (span.trace_high, span.trace_low) = trace_id_halves(trace_id);
    span.span_id = i64::from_be_bytes(span_id);
    let start = start.unwrap_or(0);
    (span.start, span.end) = (start, start.wrapping_add(duration_ns));
    span.parent = parent(&span, &records.references[span.references.clone()]);
    Ok(Some(span))
}

fn read_reference(data: &[u8], field: &Field) -> Result<Reference> {
    let mut reader = Reader::new(data, len_field(field, "Span.references")?);
    let (mut trace_id, mut span_id, mut ref_type) = ([0; 16], [0; 8], 0);
    while let Some(inner) = next_field(&mut reader)? {
        match inner.number {
            1 => trace_id = id_field(data, &inner, "SpanRef.trace_id")?,
            2 => span_id = id_field(data, &inner, "SpanRef.span_id")?,
            3 => ref_type = varint_field(&inner, "SpanRef.ref_type")? as i32,
            _ => {}
        }
    }
    let (trace_high, trace_low) = trace_id_halves(trace_id);
    Ok(Reference { child_of: ref_type == 0, trace_low, trace_high, span_id: i64::from_be_bytes(span_id) })
}

fn read_log<'a>(data: &'a [u8], field: &Field, records: &mut Records<'a>) -> Result<LogRecord<'a>> {
    let mut reader = Reader::new(data, len_field(field, "Span.logs")?);
    let mut log = LogRecord { timestamp: 0, fields: 0..0, name: None, dropped: None };
    let mut fields = LogFields::default();
    let mut time = None;
    let first = records.tags.len();
    while let Some(inner) = next_field(&mut reader)? {
        match inner.number {
            1 => time = Some(seconds_and_nanos(data, &inner, "Log.timestamp", time)?),
            2 => {
                let tag = read_key_value(data, &inner, "Log.fields")?;
                if fields.keep(&tag) {
                    records.tags.push(tag);
                }
            }
            _ => {}
        }
    }
    if let Some(time) = time {
        log.timestamp = timestamp(time, "Log.timestamp")?;
    }
    log.fields = first..records.tags.len();
    fields.finish(&mut log);
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use spanpipe_core::wire::{put_len_field, put_tag, put_varint};

    /// One field of a `KeyValue` as an encoder might write it.
    #[derive(Clone, Debug)]
    enum KvField {
        Len(u32, Vec<u8>),
        Varint(u32, u64),
        Fixed64(u32, u64),
    }

    fn kv_field() -> impl Strategy<Value = KvField> {
        let number = prop_oneof![4 => 1u32..=7, 1 => 8u32..20];
        prop_oneof![
            (number.clone(), proptest::collection::vec(any::<u8>(), 0..12)).prop_map(|(n, b)| KvField::Len(n, b)),
            (number.clone(), prop_oneof![0u64..6, any::<u64>()]).prop_map(|(n, v)| KvField::Varint(n, v)),
            (number, any::<u64>()).prop_map(|(n, v)| KvField::Fixed64(n, v)),
        ]
    }

    /// Arbitrary fields, or the usual layout (key, type, value) with arbitrary values.
    fn kv_fields() -> impl Strategy<Value = Vec<KvField>> {
        let usual = ("[a-z.]{0,10}", 0u64..6, kv_field(), proptest::option::of(kv_field())).prop_map(
            |(key, v_type, value, extra)| {
                let value = match (v_type, value) {
                    (0, KvField::Len(_, b)) => KvField::Len(3, b),
                    (1, KvField::Varint(_, v)) => KvField::Varint(4, v % 3),
                    (2, KvField::Varint(_, v)) => KvField::Varint(5, v),
                    (3, KvField::Fixed64(_, v)) => KvField::Fixed64(6, v),
                    (_, other) => other,
                };
                let mut fields = vec![KvField::Len(1, key.into_bytes())];
                if v_type != 0 {
                    fields.push(KvField::Varint(2, v_type));
                }
                fields.push(value);
                fields.extend(extra);
                fields
            },
        );
        prop_oneof![proptest::collection::vec(kv_field(), 0..5), usual]
    }

    fn encode(fields: &[KvField]) -> Vec<u8> {
        let mut out = Vec::new();
        for field in fields {
            match field {
                KvField::Len(n, bytes) => put_len_field(&mut out, *n, bytes),
                KvField::Varint(n, value) => {
                    put_tag(&mut out, *n, WireType::Varint);
                    put_varint(&mut out, *value);
                }
                KvField::Fixed64(n, value) => {
                    put_tag(&mut out, *n, WireType::I64);
                    out.extend_from_slice(&value.to_le_bytes());
                }
            }
        }
        out
    }

    proptest! {
        /// The usual-layout reader reads a tag exactly as the general loop does, or declines.
        #[test]
        fn the_usual_layout_reads_as_the_general_loop(fields in kv_fields()) {
            let bytes = encode(&fields);
            if let Some(fast) = read_usual_key_value(&bytes) {
                let general = read_key_value_fields(&bytes, 0..bytes.len());
                prop_assert_eq!(format!("{general:?}"), format!("{:?}", Ok::<_, DecodeError>(fast)));
            }
        }

        /// What encoders write for string, int64, double and bool tags takes the usual layout.
        #[test]
        fn encoders_tags_take_the_usual_layout(key in "[a-z.]{0,20}", text in "[ -~]{1,60}", long in any::<i64>(), double in any::<f64>()) {
            let key = KvField::Len(1, key.into_bytes());
            for value in [
                vec![KvField::Len(3, text.clone().into_bytes())],
                vec![KvField::Varint(2, 2), KvField::Varint(5, long as u64)],
                vec![KvField::Varint(2, 3), KvField::Fixed64(6, double.to_bits())],
                vec![KvField::Varint(2, 1), KvField::Varint(4, 1)],
            ] {
                let fields: Vec<KvField> = std::iter::once(key.clone()).chain(value).collect();
                prop_assert!(read_usual_key_value(&encode(&fields)).is_some(), "{:?}", fields);
            }
        }
    }
}
