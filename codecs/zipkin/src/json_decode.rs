//! Zipkin v2 JSON → canonical batch.
//!
//! simd-json parses the body in place into its tape (a flat node array; strings are unescaped
//! inside the body and borrowed from it). One pass over the tape validates every span and parses
//! its ids, times, endpoints and special tags (noting whether a tag key may repeat) into a
//! [`ZipkinSpan`] whose tags and annotations stay tape slices; [`crate::to_otlp`] then groups and
//! writes them. Nothing is allocated per field, and the parser's buffers and the spans' vector
//! keep their allocations across requests.

use std::cell::Cell;
use std::net::{Ipv4Addr, Ipv6Addr};

use simd_json::prelude::*;
use simd_json::tape::{Object, Value};
use spanpipe_codecs::json_tape::{self, JsonBuffer};
use spanpipe_codecs::repeated_keys::KeyTable;
use spanpipe_core::SpanBatch;

use crate::error::{Context as _, JsonFault, Location, Problem, ZipkinError};
use crate::to_otlp::{check_times, micros_to_nanos, write_batch, Endpoint, Kind, SpanLists, TagWalk, ZipkinSpan};
use crate::DecodeOptions;

type Result<T> = std::result::Result<T, JsonFault>;

/// Decodes a Zipkin v2 JSON document (an array of spans) into a batch. The buffer is parsed in
/// place, so its contents are unspecified afterwards. An empty array gives an empty batch.
///
/// # Errors
/// A [`ZipkinError`] naming the JSON path of the offending value and what is wrong with it.
pub fn decode_json<B: JsonBuffer + ?Sized>(
    json: &mut B,
    options: DecodeOptions,
) -> std::result::Result<SpanBatch, ZipkinError> {
    with_tape(json, |root, body_len| {
        // The batch takes about two thirds of the body's bytes (measured on the benchmark's
        // spans: 584 of 807 bytes for one span, 51 of 81 kB for a hundred; hex ids and quoted
        // keys shrink, OTLP's attribute keys grow), plus the request's framing, resource and
        // scope. Reserving that up front spares a large request the copy of growing once.
        let capacity = body_len / 4 * 3 + 256;
        let mut spans = same_allocation(SPAN_STORAGE.take());
        spans.reserve(root.as_array().map_or(0, |array| array.len()));
        let read = KeyTable::with(|key_table| {
            for_each_span(root, |item| {
                spans.push(ZipkinSpan::blank(JsonLists { tags: None, annotations: None }));
                read_span(item, spans.last_mut().expect("just pushed"), key_table)
            })
        });
        let batch = read.and_then(|()| write_batch(&spans, options, capacity));
        if spans.capacity() <= MAX_RETAINED_SPANS {
            SPAN_STORAGE.set(same_allocation(spans));
        }
        batch
    })
}

/// Requests of up to this many spans leave the span vector's allocation cached on the thread.
const MAX_RETAINED_SPANS: usize = 1024;

thread_local! {
    /// The allocation of the spans' vector, kept empty between requests on this thread (so the
    /// `'static` borrows nothing): one allocation less per request.
    static SPAN_STORAGE: Cell<Vec<ZipkinSpan<'static, JsonLists<'static, 'static>>>> = const { Cell::new(Vec::new()) };
}

/// An empty vector holding `from`'s allocation, for elements of the same layout (here: the same
/// span type borrowing for other lifetimes). The standard library collects a mapped `IntoIter`
/// into the allocation it came from when the layouts agree, so nothing is allocated or freed;
/// were that ever not so, this would allocate, never misbehave.
fn same_allocation<T, U>(mut from: Vec<T>) -> Vec<U> {
    from.clear();
    from.into_iter().map(|_| unreachable!("the vector was emptied")).collect()
}

/// Parses `json` into simd-json's tape (in place, with this thread's cached parser buffers) and
/// hands the root value to `decode`, with the body's length (from which the decoders size the
/// batch). Both Zipkin JSON versions decode through this.
pub(crate) fn with_tape<B: JsonBuffer + ?Sized, R>(
    json: &mut B,
    decode: impl for<'t, 'i> FnOnce(Value<'t, 'i>, usize) -> std::result::Result<R, ZipkinError>,
) -> std::result::Result<R, ZipkinError> {
    let body_len = json.len();
    json_tape::with_tape(json, |tape| decode(tape.as_value(), body_len)).unwrap_or_else(|error| {
        Err(ZipkinError { location: Location::Body, problem: Problem::Syntax(error.to_string()) })
    })
}

/// Calls `each` on every element of the root array but `null` ones (skipped, as Go decodes them to
/// zero values), adding the element's index to the path of any fault.
pub(crate) fn for_each_span<'t, 'i>(
    root: Value<'t, 'i>,
    mut each: impl FnMut(Value<'t, 'i>) -> Result<()>,
) -> std::result::Result<(), ZipkinError> {
    let Some(array) = root.as_array() else {
        return Err(JsonFault::new(wrong_type("an array of spans", root)).finish());
    };
    for (index, item) in array.iter().enumerate() {
        if !item.is_null() {
            each(item).in_index(index).map_err(JsonFault::finish)?;
        }
    }
    Ok(())
}

/// A span's tags and annotations, still on the tape.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JsonLists<'t, 'i> {
    tags: Option<Value<'t, 'i>>,
    annotations: Option<Value<'t, 'i>>,
}

impl<'t, 'i> SpanLists<'i> for JsonLists<'t, 'i> {
    fn tags(&self) -> impl Iterator<Item = (&'i str, &'i str)> {
        self.tags
            .and_then(|tags| tags.as_object())
            .into_iter()
            .flat_map(|object| object.iter())
            .filter_map(|(key, value)| Some((key, value.into_string()?)))
    }

    /// Every member's key: the first pass checked that every value is a string, so these are
    /// the keys of [`Self::tags`]. An iterator of its own type, so that reading the keys does
    /// not change how the walk over the tags is compiled.
    fn tag_keys(&self) -> impl Iterator<Item = &'i str> {
        self.tags.and_then(|tags| tags.as_object()).into_iter().flat_map(|object| object.iter()).map(|(key, _)| key)
    }

    fn annotations(&self) -> impl Iterator<Item = (u64, &'i str)> {
        self.annotations.and_then(|list| list.as_array()).into_iter().flat_map(|array| array.iter()).filter_map(
            |annotation| {
                let (timestamp, value) = annotation_members(annotation.as_object()?);
                Some((timestamp?.as_u64()?, value?.into_string()?))
            },
        )
    }
}

pub(crate) fn json_type(value: Value<'_, '_>) -> &'static str {
    match value.value_type() {
        ValueType::Null => "null",
        ValueType::Bool => "a boolean",
        ValueType::String => "a string",
        ValueType::Array => "an array",
        ValueType::Object => "an object",
        _ => "a number",
    }
}

pub(crate) fn wrong_type(expected: &'static str, found: Value<'_, '_>) -> Problem {
    Problem::WrongType { expected, found: json_type(found) }
}

pub(crate) fn string<'i>(value: Value<'_, 'i>) -> Result<&'i str> {
    value.into_string().ok_or_else(|| wrong_type("a string", value).into())
}

/// A non-negative JSON integer. simd-json keeps integers exact (never through `f64`).
pub(crate) fn unsigned(value: Value<'_, '_>) -> Result<u64> {
    if let Some(number) = value.as_u64() {
        return Ok(number);
    }
    match value.value_type() {
        ValueType::I64 | ValueType::I128 | ValueType::U128 | ValueType::F64 => {
            Err(Problem::Number(value.encode(), "a non-negative 64-bit integer").into())
        }
        _ => Err(wrong_type("a number", value).into()),
    }
}

pub(crate) fn boolean(value: Value<'_, '_>) -> Result<bool> {
    value.as_bool().ok_or_else(|| wrong_type("a boolean", value).into())
}

/// Parses 1 to `N * 2` hex digits of either case into `N` bytes, left-padded with zeros, as
/// zipkin-go (which the Collector uses) parses ids.
pub(crate) fn hex_id<const N: usize>(text: &str) -> std::result::Result<[u8; N], Problem> {
    spanpipe_codecs::hex_id::decode_left_padded(text.as_bytes())
        .ok_or_else(|| Problem::InvalidHexId { value: text.to_owned(), max_digits: N * 2 })
}

pub(crate) fn non_zero<const N: usize>(id: [u8; N]) -> Result<[u8; N]> {
    if id == [0; N] {
        Err(Problem::ZeroId.into())
    } else {
        Ok(id)
    }
}

/// Reads one span into `span` (blank when called), where the caller keeps it: a span is a few
/// hundred bytes, not worth moving again.
fn read_span<'t, 'i>(
    value: Value<'t, 'i>,
    span: &mut ZipkinSpan<'i, JsonLists<'t, 'i>>,
    key_table: &mut KeyTable,
) -> Result<()> {
    let object = value.as_object().ok_or_else(|| JsonFault::new(wrong_type("a span object", value)))?;
    let mut trace_id = None;
    let mut id = None;
    for (key, value) in object.iter() {
        if value.is_null() {
            continue;
        }
        let mut field = || -> Result<()> {
            match key {
                "traceId" => trace_id = Some(non_zero(hex_id::<16>(string(value)?)?)?),
                "id" => id = Some(non_zero(hex_id::<8>(string(value)?)?)?),
                "parentId" => {
                    let text = string(value)?;
                    span.parent_id = if text.is_empty() { None } else { Some(hex_id::<8>(text)?) };
                }
                "name" => span.name = string(value)?,
                "kind" => span.kind = kind(string(value)?),
                "timestamp" => span.timestamp = Some(unsigned(value)?).filter(|&micros| micros != 0),
                "duration" => span.duration = unsigned(value)?,
                "localEndpoint" => span.local = Some(endpoint(value)?),
                "remoteEndpoint" => span.remote = Some(endpoint(value)?),
                "annotations" => {
                    annotations(value)?;
                    span.lists.annotations = Some(value);
                }
                "tags" => {
                    // A repeated `tags` key replaces the earlier object, its special tags too.
                    tags(value, TagWalk::new(&mut span.special, key_table))?;
                    span.lists.tags = Some(value);
                }
                "debug" | "shared" => {
                    boolean(value)?;
                }
                _ => {}
            }
            Ok(())
        };
        field().in_key(key)?;
    }
    span.trace_id = trace_id.ok_or_else(|| JsonFault::new(Problem::Missing).in_key("traceId"))?;
    span.id = id.ok_or_else(|| JsonFault::new(Problem::Missing).in_key("id"))?;
    check_times(span.timestamp, span.duration).map_err(|problem| JsonFault::new(problem).in_key("duration"))?;
    Ok(())
}

/// Zipkin's kinds are upper case; any other value (zipkin-go accepts any string) is unspecified.
fn kind(text: &str) -> Kind {
    match text {
        "CLIENT" => Kind::Client,
        "SERVER" => Kind::Server,
        "PRODUCER" => Kind::Producer,
        "CONSUMER" => Kind::Consumer,
        _ => Kind::Unspecified,
    }
}

pub(crate) fn endpoint<'i>(value: Value<'_, 'i>) -> Result<Endpoint<'i>> {
    let object = value.as_object().ok_or_else(|| JsonFault::new(wrong_type("an endpoint object", value)))?;
    let mut endpoint = Endpoint::default();
    for (key, value) in object.iter() {
        if value.is_null() {
            continue;
        }
        let mut field = || -> Result<()> {
            match key {
                "serviceName" => endpoint.service_name = string(value)?,
                "ipv4" => {
                    let text = string(value)?;
                    if !text.is_empty() {
                        let invalid = || Problem::InvalidAddress { family: "IPv4", value: text.to_owned() };
                        endpoint.ipv4 = Some(dotted_quad(text).ok_or_else(invalid)?);
                        endpoint.ipv4_text = text;
                    }
                }
                "ipv6" => endpoint.ipv6 = address::<Ipv6Addr>(string(value)?, "IPv6")?,
                "port" => {
                    let port = unsigned(value)?;
                    endpoint.port =
                        u16::try_from(port).map_err(|_| Problem::Number(port.to_string(), "a port (0 to 65535)"))?;
                }
                _ => {}
            }
            Ok(())
        };
        field().in_key(key)?;
    }
    Ok(endpoint)
}

/// An IPv4 address as `Ipv4Addr::from_str` reads it (four decimal octets up to 255, without
/// leading zeros), without its general-purpose parser: most Zipkin spans carry two. Read octet by
/// octet, each at most three digits: a loop over bytes with a state for each took 18 instructions
/// a character, a twelfth of a span's decoding.
fn dotted_quad(text: &str) -> Option<Ipv4Addr> {
    let bytes = text.as_bytes();
    let digit = |at: usize| bytes.get(at).and_then(|byte| byte.is_ascii_digit().then(|| u32::from(byte - b'0')));
    let mut octets = [0u8; 4];
    let mut at = 0;
    for (index, octet) in octets.iter_mut().enumerate() {
        if index > 0 {
            if bytes.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let mut value = digit(at)?;
        at += 1;
        // A leading zero is a whole octet; otherwise up to two more digits.
        if value != 0 {
            for _ in 0..2 {
                let Some(next) = digit(at) else { break };
                value = value * 10 + next;
                at += 1;
            }
        }
        *octet = u8::try_from(value).ok()?;
    }
    (at == bytes.len()).then_some(Ipv4Addr::from(octets))
}

/// An address in its textual form; `""` is absent.
pub(crate) fn address<A: std::str::FromStr>(text: &str, family: &'static str) -> Result<Option<A>> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| Problem::InvalidAddress { family, value: text.to_owned() }.into())
}

fn annotations(value: Value<'_, '_>) -> Result<()> {
    let array = value.as_array().ok_or_else(|| JsonFault::new(wrong_type("an array of annotations", value)))?;
    for (index, annotation) in array.iter().enumerate() {
        let check = || -> Result<()> {
            let object =
                annotation.as_object().ok_or_else(|| JsonFault::new(wrong_type("an annotation object", annotation)))?;
            let (timestamp, text) = annotation_members(object);
            let timestamp = timestamp.ok_or_else(|| JsonFault::new(Problem::Missing).in_key("timestamp"))?;
            micros_to_nanos(unsigned(timestamp).in_key("timestamp")?)
                .map_err(|p| JsonFault::new(p).in_key("timestamp"))?;
            let text = text.ok_or_else(|| JsonFault::new(Problem::Missing).in_key("value"))?;
            string(text).in_key("value")?;
            Ok(())
        };
        check().in_index(index)?;
    }
    Ok(())
}

/// An annotation's `timestamp` and `value`, found in one pass over its members (the first of
/// each, as a lookup by key finds them).
fn annotation_members<'t, 'i>(object: Object<'t, 'i>) -> (Option<Value<'t, 'i>>, Option<Value<'t, 'i>>) {
    let (mut timestamp, mut value) = (None, None);
    for (key, member) in object.iter() {
        match key {
            "timestamp" => timestamp = timestamp.or(Some(member)),
            "value" => value = value.or(Some(member)),
            _ => {}
        }
    }
    (timestamp, value)
}

/// Checks that every tag is a string, taking note of each on the span's `walk`.
fn tags<'i>(value: Value<'_, 'i>, mut walk: TagWalk<'_, 'i, '_>) -> Result<()> {
    let object = value.as_object().ok_or_else(|| JsonFault::new(wrong_type("an object of string tags", value)))?;
    for (key, value) in object.iter() {
        walk.see(key, string(value).in_key(key)?);
    }
    walk.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The dotted-quad reader accepts exactly what the standard parser accepts, and its
        /// input is then exactly what formatting the address gives (what `ipv4_text` relies on).
        #[test]
        fn dotted_quad_reads_as_the_standard_parser(text in "[0-9.]{0,16}|[0-9]{1,3}(\\.[0-9]{1,3}){3}") {
            let standard = text.parse::<Ipv4Addr>().ok();
            prop_assert_eq!(dotted_quad(&text), standard);
            if let Some(address) = standard {
                prop_assert_eq!(address.to_string(), text);
            }
        }
    }

    /// Special tags are read in the first pass; a repeated `tags` key must still mean what it
    /// means for attributes: the last object wins, whole.
    #[test]
    fn a_repeated_tags_key_replaces_the_special_tags_too() {
        let mut json = br#"[{"traceId":"1","id":"2","name":"n","timestamp":1,
            "tags":{"otel.status_code":"ERROR","otel.scope.name":"first","a":"1"},
            "tags":{"b":"2"}}]"#
            .to_vec();
        let batch = decode_json(&mut json, DecodeOptions::default()).expect("decodes");
        let span = batch.span(0).expect("one span");
        assert!(!span.has_status(), "the first object's status must not survive");
        assert_eq!(span.scope().name(), "");
        let keys: Vec<&str> = span.attributes().map(|attribute| attribute.key).collect();
        assert_eq!(keys, ["b"]);
    }

    /// Past the 64 positions kept as bits, resource tags and replaced keys are told apart by key:
    /// a span of 70 tags whose resource tag and a plain key both come again after position 64.
    #[test]
    fn tags_past_the_first_64_are_sorted_and_replaced_like_the_others() {
        let mut tags: Vec<String> = (0..64).map(|index| format!("\"t{index}\":\"{index}\"")).collect();
        tags.extend(
            [
                "\"host.name\":\"a\"",
                "\"t3\":\"late\"",
                "\"x\":\"1\"",
                "\"host.name\":\"b\"",
                "\"x\":\"2\"",
                "\"y\":\"3\"",
            ]
            .map(str::to_owned),
        );
        let mut json = format!(
            r#"[{{"traceId":"1","id":"2","timestamp":1,"localEndpoint":{{"serviceName":"s"}},"tags":{{{}}}}}]"#,
            tags.join(",")
        )
        .into_bytes();
        let batch = decode_json(&mut json, DecodeOptions::default()).expect("decodes");
        let resource: Vec<(String, String)> = batch
            .resources()
            .next()
            .expect("a resource")
            .attributes()
            .map(|kv| (kv.key.to_owned(), format!("{:?}", kv.value)))
            .collect();
        assert_eq!(resource.iter().map(|(key, _)| key.as_str()).collect::<Vec<_>>(), ["service.name", "host.name"]);
        assert!(resource[1].1.contains("\"b\""), "{resource:?}");
        let span = batch.span(0).expect("one span");
        let keys: Vec<&str> = span.attributes().map(|attribute| attribute.key).collect();
        let mut expected: Vec<String> = (0..64).filter(|&index| index != 3).map(|index| format!("t{index}")).collect();
        expected.extend(["t3", "x", "y"].map(str::to_owned));
        assert_eq!(keys, expected);
    }

    #[test]
    fn hex_ids_are_left_padded_and_case_insensitive() {
        assert_eq!(hex_id::<8>("1").unwrap(), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(hex_id::<8>("aBc").unwrap(), [0, 0, 0, 0, 0, 0, 0x0a, 0xbc]);
        assert_eq!(hex_id::<16>("0123456789abcdef").unwrap()[8..], [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        assert!(matches!(hex_id::<8>("12345678901234567"), Err(Problem::InvalidHexId { max_digits: 16, .. })));
        assert!(matches!(hex_id::<8>("+1"), Err(Problem::InvalidHexId { .. })));
        assert!(matches!(hex_id::<16>(""), Err(Problem::InvalidHexId { .. })));
    }
}
