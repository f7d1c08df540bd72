//! Zipkin v2 → OTLP: the mapping both decoders share.
//!
//! Each decoder validates its body in a first pass and describes every span as a [`ZipkinSpan`]:
//! ids, kind, name, times and endpoints already parsed (a few dozen bytes, no allocation), tags and
//! annotations left where they lie in the body behind the [`SpanLists`] trait, which re-reads them
//! on demand. This module groups the spans by resource and scope and writes them through
//! [`BatchWriter`] — so JSON and protobuf get exactly the same mapping from one piece of code.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simd_json::prelude::*;
use simd_json::tape::Value as JsonValue;
use spanpipe_codecs::digest::Digest;
use spanpipe_codecs::json_tape;
use spanpipe_codecs::repeated_keys::{KeyTable, RepeatWatch, Superseded};
use spanpipe_core::{
    ArrayWriter, Attributes, BatchWriter, EventWriter, KeyValueListWriter, ResourceSpansWriter, SpanBatch, SpanWriter,
    ValueWriter, MAX_VALUE_DEPTH,
};

use crate::error::{Location, Problem, ZipkinError};
use crate::keys;
use crate::DecodeOptions;

/// Zipkin's span kind. Anything else (absent, or a value this version does not know) is
/// `Unspecified`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Unspecified,
    Client,
    Server,
    Producer,
    Consumer,
}

impl Kind {
    /// OTLP's `SpanKind` number.
    fn otlp(self) -> i32 {
        match self {
            Self::Unspecified => 0,
            Self::Server => 2,
            Self::Client => 3,
            Self::Producer => 4,
            Self::Consumer => 5,
        }
    }
}

/// A Zipkin `Endpoint`, parsed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Endpoint<'a> {
    pub(crate) service_name: &'a str,
    pub(crate) ipv4: Option<Ipv4Addr>,
    /// `ipv4` as the body wrote it, when it came as text (JSON), else `""`. The JSON decoders
    /// accept only the dotted quad without leading zeros, which is exactly what formatting the
    /// address gives back, so the attribute is written from this text without formatting it.
    pub(crate) ipv4_text: &'a str,
    pub(crate) ipv6: Option<Ipv6Addr>,
    /// Zero means absent, as in Zipkin.
    pub(crate) port: u16,
}

impl Endpoint<'_> {
    /// The address Zipkin → OTLP reports: IPv6 when both are set (the Collector writes IPv4 first
    /// and then overwrites it with IPv6).
    fn address(&self) -> Option<IpAddr> {
        match (self.ipv4, self.ipv6) {
            (_, Some(v6)) => Some(IpAddr::V6(v6)),
            (Some(v4), None) => Some(IpAddr::V4(v4)),
            (None, None) => None,
        }
    }
}

/// Tags and annotations of one span, read again from the body on demand. The decoder validated
/// them in its first pass, so these iterators cannot fail.
pub(crate) trait SpanLists<'a> {
    /// `(key, value)` in body order.
    fn tags(&self) -> impl Iterator<Item = (&'a str, &'a str)>;
    /// The keys of [`Self::tags`], in the same order: asked only of a span whose keys repeat.
    fn tag_keys(&self) -> impl Iterator<Item = &'a str> {
        self.tags().map(|(key, _)| key)
    }
    /// `(timestamp in µs, value)` in body order; timestamps already checked to fit nanoseconds.
    fn annotations(&self) -> impl Iterator<Item = (u64, &'a str)>;
}

/// One Zipkin v2 span as a decoder's first pass saw it.
#[derive(Clone, Debug)]
pub(crate) struct ZipkinSpan<'a, L> {
    pub(crate) trace_id: [u8; 16],
    pub(crate) id: [u8; 8],
    pub(crate) parent_id: Option<[u8; 8]>,
    pub(crate) kind: Kind,
    pub(crate) name: &'a str,
    /// µs since the epoch; `None` when absent (or zero in protobuf, its default).
    pub(crate) timestamp: Option<u64>,
    /// µs.
    pub(crate) duration: u64,
    pub(crate) local: Option<Endpoint<'a>>,
    pub(crate) remote: Option<Endpoint<'a>>,
    /// What its tags say beyond attributes, read by the decoder as it validates them.
    pub(crate) special: SpecialTags<'a>,
    pub(crate) lists: L,
}

impl<'a, L> ZipkinSpan<'a, L> {
    /// A span with nothing read yet but where its lists lie: the decoders fill in what the body
    /// holds.
    pub(crate) fn blank(lists: L) -> Self {
        Self {
            trace_id: [0; 16],
            id: [0; 8],
            parent_id: None,
            kind: Kind::Unspecified,
            name: "",
            timestamp: None,
            duration: 0,
            local: None,
            remote: None,
            special: SpecialTags::default(),
            lists,
        }
    }

    /// The same span with other lists, and the special tags read from them (the v1 decoder first
    /// records where each span's lists lie, then hands them out once the request's lists are
    /// complete).
    pub(crate) fn with_lists<M: SpanLists<'a>>(self, lists: M, key_table: &mut KeyTable) -> ZipkinSpan<'a, M> {
        let Self { trace_id, id, parent_id, kind, name, timestamp, duration, local, remote, special: _, lists: _ } =
            self;
        let special = SpecialTags::read(lists.tags(), key_table);
        ZipkinSpan { trace_id, id, parent_id, kind, name, timestamp, duration, local, remote, special, lists }
    }
}

impl<'a, L: SpanLists<'a>> ZipkinSpan<'a, L> {
    /// The service the span's resource names: its local endpoint's, else its `service.name` tag
    /// (a client that sends no endpoint may still tag it), else none.
    fn service(&self) -> &'a str {
        match self.local {
            Some(Endpoint { service_name, .. }) if !service_name.is_empty() => service_name,
            _ => self.special.service_name.unwrap_or(""),
        }
    }

    /// Which of the span's tags a later tag with the same key replaces: the last value of a key
    /// counts, as in zipkin-go's map of tags and so in the Collector. The keys are compared only
    /// when the first pass saw one that may repeat; for every other span this is nothing.
    #[inline]
    fn superseded_tags(&self) -> Superseded {
        if self.special.keys_may_repeat {
            self.compare_tag_keys()
        } else {
            Superseded::default()
        }
    }

    #[cold]
    #[inline(never)]
    fn compare_tag_keys(&self) -> Superseded {
        Superseded::of(|| self.lists.tag_keys().map(str::as_bytes))
    }

    /// Calls `write` with each of the span's tags that name resource attributes, in body order,
    /// but `service.name` (which [`Self::service`] stands for) and those a later tag of the same
    /// key replaces.
    fn for_each_resource_tag(&self, mut write: impl FnMut(&'a str, &'a str)) {
        // Most spans have none: then the tags are not walked again.
        if self.special.resource_tags == 0 {
            return;
        }
        let superseded = self.superseded_tags();
        let selection = TagSelection::resource(&self.special, &superseded);
        // `for_each`, not a `for` loop: the span's own walk over its tags (`write_span`) stays the
        // only caller of the iterator's `next`, which keeps it inlined there.
        self.lists.tags().enumerate().for_each(|(position, (key, value))| {
            if selection.takes(position, key) {
                write(key, value);
            }
        });
    }

    /// Whether two spans of the same service make the same resource: the same resource tags, in
    /// the same order (spans from one SDK repeat its resource alike on every span), as told by
    /// their number and digest ([`add_resource_tag`]). The digest takes every resource tag of the first
    /// pass, also one that a later tag of the same key replaces, so spans whose keys may repeat
    /// are compared by the tags that count.
    fn same_resource(&self, other: &Self) -> bool {
        if self.special.keys_may_repeat || other.special.keys_may_repeat {
            return self.same_resource_tags(other);
        }
        self.special.resource_tags == other.special.resource_tags
            && self.special.resource_digest == other.special.resource_digest
    }

    #[cold]
    #[inline(never)]
    fn same_resource_tags(&self, other: &Self) -> bool {
        let resource_tags = |span: &Self| {
            let mut tags = Vec::new();
            span.for_each_resource_tag(|key, value| tags.push((key, value)));
            tags
        };
        resource_tags(self) == resource_tags(other)
    }
}

/// A span's resource tags (keys and values, in order) as a [`Digest`], so that spans are grouped
/// by resource without reading their tags again: every span of a request from an SDK carries the
/// same half dozen of them, and comparing those text by text for every span cost more than the
/// rest of its decoding. Different resource tags could, in principle, share a digest; that would
/// put spans of one request (one sender's) in one resource.
///
/// Out of line: most tags are not resource tags, and `SpecialTags::see` stays small.
#[inline(never)]
fn add_resource_tag(digest: Digest, key: &str, value: &str) -> Digest {
    digest.text(key.as_bytes()).text(value.as_bytes())
}

/// Checks that a span's times fit 64-bit nanoseconds, as the writer needs them.
pub(crate) fn check_times(timestamp: Option<u64>, duration: u64) -> Result<(), Problem> {
    let start = timestamp.unwrap_or(0);
    let end = start.checked_add(duration).ok_or(Problem::TimestampOverflow(u64::MAX))?;
    micros_to_nanos(end).map(drop)
}

pub(crate) fn micros_to_nanos(micros: u64) -> Result<u64, Problem> {
    micros.checked_mul(1000).ok_or(Problem::TimestampOverflow(micros))
}

/// The tags with a meaning beyond "attribute", read in one pass over a span's tags.
#[derive(Clone, Debug, Default)]
pub(crate) struct SpecialTags<'a> {
    scope_name: Option<&'a str>,
    scope_version: Option<&'a str>,
    library_name: Option<&'a str>,
    library_version: Option<&'a str>,
    trace_state: Option<&'a str>,
    status_code: Option<i32>,
    status_description: Option<&'a str>,
    error: Option<&'a str>,
    span_kind: Option<&'a str>,
    dropped_attributes: Option<u32>,
    dropped_events: Option<u32>,
    dropped_links: Option<u32>,
    peer_service: bool,
    /// The `service.name` tag.
    service_name: Option<&'a str>,
    /// How many tags other than `service.name` name resource attributes
    /// ([`keys::is_resource_attribute`]): they go to the resource, not the span.
    resource_tags: u16,
    /// Their digest.
    resource_digest: Digest,
    /// Which of the first 64 tags (by position in the body) they are, so that writing the span
    /// and its resource does not ask [`keys::is_resource_attribute`] again.
    resource_tag_positions: u64,
    /// How many tags [`Self::see`] has seen (up to 255: the positions past 63 are not kept).
    tags_seen: u8,
    /// Whether the first pass saw a key that may repeat ([`ZipkinSpan::superseded_tags`] then
    /// compares them).
    keys_may_repeat: bool,
}

impl<'a> SpecialTags<'a> {
    fn read(tags: impl Iterator<Item = (&'a str, &'a str)>, key_table: &mut KeyTable) -> Self {
        let mut special = Self::default();
        let mut walk = TagWalk::new(&mut special, key_table);
        for (key, value) in tags {
            walk.see(key, value);
        }
        walk.finish();
        special
    }

    /// Takes note of one tag, in body order (a later tag with the same key wins).
    #[inline]
    fn see(&mut self, key: &'a str, value: &'a str) {
        let position = self.tags_seen;
        self.tags_seen = self.tags_seen.saturating_add(1);
        match key {
            keys::SCOPE_NAME => self.scope_name = Some(value),
            keys::SCOPE_VERSION => self.scope_version = Some(value),
            keys::LIBRARY_NAME => self.library_name = Some(value),
            keys::LIBRARY_VERSION => self.library_version = Some(value),
            keys::TRACE_STATE => self.trace_state = Some(value),
            keys::STATUS_CODE => self.status_code = status_code_from_name(value),
            keys::STATUS_DESCRIPTION => self.status_description = Some(value),
            keys::ERROR => self.error = Some(value),
            keys::SPAN_KIND => self.span_kind = Some(value),
            keys::DROPPED_ATTRIBUTES => self.dropped_attributes = value.parse().ok(),
            keys::DROPPED_EVENTS => self.dropped_events = value.parse().ok(),
            keys::DROPPED_LINKS => self.dropped_links = value.parse().ok(),
            keys::PEER_SERVICE => self.peer_service = true,
            keys::SERVICE_NAME => self.service_name = Some(value),
            _ if keys::is_resource_attribute(key) => {
                self.resource_tags = self.resource_tags.saturating_add(1);
                self.resource_digest = add_resource_tag(self.resource_digest, key, value);
                if let Some(bit) = 1u64.checked_shl(u32::from(position)) {
                    self.resource_tag_positions |= bit;
                }
            }
            _ => {}
        }
    }

    /// Whether a tag past the first 64 (in body order) goes to the resource: one of those counted
    /// in [`Self::resource_tags`]. The first 64 are told by [`Self::resource_tag_positions`].
    fn is_resource_tag_past_64(&self, key: &str) -> bool {
        self.resource_tags != 0 && key != keys::SERVICE_NAME && keys::is_resource_attribute(key)
    }

    fn scope(&self) -> (&'a str, &'a str) {
        (self.scope_name.or(self.library_name).unwrap_or(""), self.scope_version.or(self.library_version).unwrap_or(""))
    }

    /// Whether the error tag marks the span failed: any value but `false`.
    fn error_marks_failure(&self) -> bool {
        self.error.is_some_and(|value| value != "false")
    }

    /// OTLP status code and message.
    fn status(&self) -> (i32, &'a str) {
        let mut code = self.status_code.unwrap_or(0);
        let mut message = if self.status_code.is_some() { self.status_description.unwrap_or("") } else { "" };
        if self.error_marks_failure() {
            code = 2;
            if message.is_empty() {
                message = self.error.filter(|value| *value != "true").unwrap_or("");
            }
        }
        (code, message)
    }
}

/// Which of a span's tags a walk over them takes: for the span's attributes, all but its resource
/// tags; for its resource, only those; for both, none that a later tag of the same key replaces.
/// The first 64 positions are told by one bit each, the bits of the resource tags and of the
/// replaced tags merged once per span, so the walk over a span whose keys do not repeat tests
/// no more than it would without them.
struct TagSelection<'s, 'a> {
    /// Bit `i` set when the walk takes the tag at position `i`.
    first: u64,
    special: &'s SpecialTags<'a>,
    superseded: &'s Superseded,
    /// Whether the walk is the resource's.
    resource: bool,
}

impl<'s, 'a> TagSelection<'s, 'a> {
    fn span(special: &'s SpecialTags<'a>, superseded: &'s Superseded) -> Self {
        let first = !(special.resource_tag_positions | superseded.first_64());
        Self { first, special, superseded, resource: false }
    }

    fn resource(special: &'s SpecialTags<'a>, superseded: &'s Superseded) -> Self {
        let first = special.resource_tag_positions & !superseded.first_64();
        Self { first, special, superseded, resource: true }
    }

    #[inline]
    fn takes(&self, position: usize, key: &str) -> bool {
        if position < 64 {
            self.first >> position & 1 != 0
        } else {
            !self.superseded.contains(position) && self.special.is_resource_tag_past_64(key) == self.resource
        }
    }
}

/// The first pass over one span's tags: their special meanings, and whether a key may repeat
/// (through the request's [`KeyTable`]; the span keeps only the answer).
pub(crate) struct TagWalk<'s, 'a, 't> {
    special: &'s mut SpecialTags<'a>,
    keys: RepeatWatch<'t>,
}

impl<'s, 'a, 't> TagWalk<'s, 'a, 't> {
    /// Starts over: what `special` held before (an earlier `tags` object) no longer counts.
    pub(crate) fn new(special: &'s mut SpecialTags<'a>, key_table: &'t mut KeyTable) -> Self {
        *special = SpecialTags::default();
        Self { special, keys: key_table.watch() }
    }

    /// Takes note of one tag, in body order.
    #[inline]
    pub(crate) fn see(&mut self, key: &'a str, value: &'a str) {
        self.keys.see(key.as_bytes());
        self.special.see(key, value);
    }

    pub(crate) fn finish(self) {
        self.special.keys_may_repeat = self.keys.may_repeat();
    }
}

/// `otel.status_code` values: the specification's names, pdata's spelling, and the proto enum's.
fn status_code_from_name(name: &str) -> Option<i32> {
    match name {
        "UNSET" | "Unset" | "STATUS_CODE_UNSET" => Some(0),
        "OK" | "Ok" | "STATUS_CODE_OK" => Some(1),
        "ERROR" | "Error" | "STATUS_CODE_ERROR" => Some(2),
        _ => None,
    }
}

/// Groups spans into one `ResourceSpans` per resource (service and resource tags) and one
/// `ScopeSpans` per instrumentation scope within it, both in order of first appearance, and
/// writes them.
pub(crate) fn write_batch<'a, L: SpanLists<'a>>(
    spans: &[ZipkinSpan<'a, L>],
    options: DecodeOptions,
    capacity: usize,
) -> Result<SpanBatch, ZipkinError> {
    let mut writer = BatchWriter::with_capacity(capacity);
    let mut context = SpanContext { spans, options, scratch: Scratch::default() };
    // Spans of one request usually share service and scope: then there is one group, known
    // without building the grouping tables (a fifth of the allocations of a one-span request).
    if let Some((first, scope)) = single_group(spans) {
        write_resource(&mut writer, first, |rs| write_scope(rs, scope, 0..spans.len(), &mut context));
    } else {
        let groups = Groups::of(spans);
        for resource in &groups.resources {
            write_resource(&mut writer, &spans[resource.span], |rs| {
                for &scope_index in &resource.scopes {
                    let scope = &groups.scopes[scope_index];
                    write_scope(rs, scope.scope, scope.spans.iter().copied(), &mut context);
                }
            });
        }
    }
    writer.finish().map_err(|error| ZipkinError { location: Location::Body, problem: Problem::Index(error) })
}

/// What writing a span takes besides its writer: the spans, the options, and the scratch buffers
/// shared by all of them.
struct SpanContext<'s, 'a, L> {
    spans: &'s [ZipkinSpan<'a, L>],
    options: DecodeOptions,
    scratch: Scratch,
}

/// The service of a span, with the scope name and version of its special tags: the span's
/// group, as far as it can be told without reading its resource tags
/// ([`ZipkinSpan::same_resource`] does that).
#[derive(Clone, Copy, PartialEq, Eq)]
struct GroupKey<'a> {
    service: &'a str,
    scope: (&'a str, &'a str),
}

impl<'a> GroupKey<'a> {
    fn of<L: SpanLists<'a>>(span: &ZipkinSpan<'a, L>) -> Self {
        Self { service: span.service(), scope: span.special.scope() }
    }
}

/// The first span and the scope when every span has the same group (and there is at least one
/// span).
fn single_group<'s, 'a, L: SpanLists<'a>>(
    spans: &'s [ZipkinSpan<'a, L>],
) -> Option<(&'s ZipkinSpan<'a, L>, (&'a str, &'a str))> {
    let (first, rest) = spans.split_first()?;
    let key = GroupKey::of(first);
    rest.iter().all(|span| GroupKey::of(span) == key && first.same_resource(span)).then_some((first, key.scope))
}

/// A `ResourceSpans` whose resource is `span`'s: its service and its resource tags.
fn write_resource<'a, L: SpanLists<'a>>(
    writer: &mut BatchWriter,
    span: &ZipkinSpan<'a, L>,
    scopes: impl FnOnce(&mut ResourceSpansWriter<'_>),
) {
    let service = span.service();
    writer.resource_spans(|rs| {
        if !service.is_empty() || span.special.resource_tags != 0 {
            rs.resource(|r| {
                if !service.is_empty() {
                    r.str_attribute(keys::SERVICE_NAME, service);
                }
                span.for_each_resource_tag(|key, value| r.str_attribute(key, value));
            });
        }
        scopes(rs);
    });
}

fn write_scope<'a, L: SpanLists<'a>>(
    rs: &mut ResourceSpansWriter<'_>,
    (name, version): (&str, &str),
    span_indices: impl IntoIterator<Item = usize>,
    context: &mut SpanContext<'_, 'a, L>,
) {
    rs.scope_spans(|ss| {
        if !name.is_empty() || !version.is_empty() {
            ss.scope(|sc| {
                if !name.is_empty() {
                    sc.name(name);
                }
                if !version.is_empty() {
                    sc.version(version);
                }
            });
        }
        for index in span_indices {
            let span = &context.spans[index];
            ss.span(|w| write_span(span, context.options, &mut context.scratch, w));
        }
    });
}

struct ResourceGroup {
    /// The first span of the resource, whose service and resource tags it writes.
    span: usize,
    scopes: Vec<usize>,
    /// The next resource of the same service (with other resource tags), if any.
    other: Option<usize>,
}

struct ScopeGroup<'a> {
    scope: (&'a str, &'a str),
    spans: Vec<usize>,
}

struct Groups<'a> {
    resources: Vec<ResourceGroup>,
    scopes: Vec<ScopeGroup<'a>>,
}

impl<'a> Groups<'a> {
    fn of<L: SpanLists<'a>>(spans: &[ZipkinSpan<'a, L>]) -> Self {
        let mut groups = Groups { resources: Vec::new(), scopes: Vec::new() };
        let mut resources = ResourcesSeen::default();
        let mut scope_of = FirstSeen::default();
        // Neighbouring spans often share resource and scope: skip the lookups while they do.
        let mut previous: Option<(GroupKey<'a>, &ZipkinSpan<'a, L>, usize)> = None;
        for (index, span) in spans.iter().enumerate() {
            let key = GroupKey::of(span);
            let scope = match previous {
                Some((previous_key, previous_span, scope))
                    if previous_key == key && previous_span.same_resource(span) =>
                {
                    scope
                }
                _ => {
                    let resource = resources.index(&mut groups.resources, spans, index);
                    let (scope, new_scope) = scope_of.index((resource, key.scope));
                    if new_scope {
                        groups.scopes.push(ScopeGroup { scope: key.scope, spans: Vec::new() });
                        groups.resources[resource].scopes.push(scope);
                    }
                    scope
                }
            };
            previous = Some((key, span, scope));
            groups.scopes[scope].spans.push(index);
        }
        groups
    }
}

/// Numbers resources in order of first appearance: services through [`FirstSeen`], and the
/// resources of one service (one, unless its spans carry different resource tags) as a chain
/// through [`ResourceGroup::other`].
#[derive(Default)]
struct ResourcesSeen<'a> {
    services: FirstSeen<&'a str>,
    /// The first resource of each service, by the service's number.
    first_resource: Vec<usize>,
}

impl<'a> ResourcesSeen<'a> {
    /// The resource of `spans[index]`, pushed to `resources` if it is new.
    fn index<L: SpanLists<'a>>(
        &mut self,
        resources: &mut Vec<ResourceGroup>,
        spans: &[ZipkinSpan<'a, L>],
        index: usize,
    ) -> usize {
        let span = &spans[index];
        let new = resources.len();
        let (service, new_service) = self.services.index(span.service());
        if new_service {
            self.first_resource.push(new);
        } else {
            let mut candidate = self.first_resource[service];
            loop {
                if spans[resources[candidate].span].same_resource(span) {
                    return candidate;
                }
                match resources[candidate].other {
                    Some(next) => candidate = next,
                    None => break,
                }
            }
            resources[candidate].other = Some(new);
        }
        resources.push(ResourceGroup { span: index, scopes: Vec::new(), other: None });
        new
    }
}

/// Numbers keys in order of first appearance. A request has one or a few services and scopes, so
/// a linear search finds them faster than hashing would; past [`FirstSeen::LINEAR_LIMIT`] keys a
/// hash map takes over, so a request naming thousands of services stays linear in its spans.
struct FirstSeen<K> {
    keys: Vec<K>,
    map: Option<HashMap<K, usize>>,
}

impl<K> Default for FirstSeen<K> {
    fn default() -> Self {
        Self { keys: Vec::new(), map: None }
    }
}

impl<K: Copy + Eq + std::hash::Hash> FirstSeen<K> {
    const LINEAR_LIMIT: usize = 16;

    /// The number of `key`, and whether it is new.
    fn index(&mut self, key: K) -> (usize, bool) {
        let found = match &self.map {
            Some(map) => map.get(&key).copied(),
            None => self.keys.iter().position(|known| *known == key),
        };
        if let Some(index) = found {
            return (index, false);
        }
        let index = self.keys.len();
        self.keys.push(key);
        match &mut self.map {
            Some(map) => {
                map.insert(key, index);
            }
            None if self.keys.len() > Self::LINEAR_LIMIT => {
                self.map = Some(self.keys.iter().enumerate().map(|(index, &key)| (key, index)).collect());
            }
            None => {}
        }
        (index, true)
    }
}

/// Buffers reused across spans: annotation JSON being parsed, addresses being formatted.
#[derive(Debug, Default)]
struct Scratch {
    json: Vec<u8>,
    text: String,
}

fn write_span<'a, L: SpanLists<'a>>(
    span: &ZipkinSpan<'a, L>,
    options: DecodeOptions,
    scratch: &mut Scratch,
    w: &mut SpanWriter<'_>,
) {
    let text = &mut scratch.text;
    let special = &span.special;
    w.trace_id(&span.trace_id).span_id(&span.id);
    if let Some(state) = special.trace_state.filter(|state| !state.is_empty()) {
        w.trace_state(state);
    }
    if let Some(parent) = span.parent_id.filter(|parent| *parent != span.id && *parent != [0; 8]) {
        w.parent_span_id(&parent);
    }
    if !span.name.is_empty() {
        w.name(span.name);
    }
    let kind = match (span.kind, special.span_kind) {
        (Kind::Unspecified, Some("internal")) => 1,
        (kind, _) => kind.otlp(),
    };
    if kind != 0 {
        w.kind(kind);
    }
    // Checked by the decoders' first pass ([`check_times`]); saturating keeps this total anyway.
    let start = span.timestamp.unwrap_or(0).saturating_mul(1000);
    w.start_time_unix_nano(start);
    w.end_time_unix_nano(start.saturating_add(span.duration.saturating_mul(1000)));

    let local = span.local.unwrap_or_default();
    let remote = span.remote.unwrap_or_default();
    let local_address = local.address();
    let remote_address = remote.address();
    let service = span.service();
    let consumed = |key: &str, value: &str| match key {
        keys::SCOPE_NAME | keys::SCOPE_VERSION | keys::LIBRARY_NAME | keys::LIBRARY_VERSION | keys::TRACE_STATE => true,
        keys::STATUS_CODE | keys::STATUS_DESCRIPTION => special.status_code.is_some(),
        keys::ERROR => special.error_marks_failure(),
        keys::SPAN_KIND => span.kind == Kind::Unspecified,
        keys::DROPPED_ATTRIBUTES => special.dropped_attributes.is_some(),
        keys::DROPPED_EVENTS => special.dropped_events.is_some(),
        keys::DROPPED_LINKS => special.dropped_links.is_some(),
        keys::HOST_IP => local_address.is_some(),
        keys::HOST_PORT => local.port != 0,
        keys::PEER_IP => remote_address.is_some(),
        keys::PEER_PORT => remote.port != 0,
        // The resource's own; a `service.name` tag that contradicts the endpoint stays here.
        keys::SERVICE_NAME => value == service,
        // The translation's own marker, written below when the span has no timestamp. A tag of
        // that name on a span with one says what is not so, and would make the encoder drop the
        // timestamp; it is not kept either.
        keys::START_TIME_ABSENT => true,
        _ => false,
    };
    let superseded = span.superseded_tags();
    let selection = TagSelection::span(special, &superseded);
    for (position, (key, value)) in span.lists.tags().enumerate() {
        if !selection.takes(position, key) || consumed(key, value) {
            continue;
        }
        if options.parse_string_tags {
            typed_attribute(w, key, value);
        } else {
            w.str_attribute(key, value);
        }
    }
    if let Some(address) = local_address {
        write_address(w, keys::HOST_IP, address, local.ipv4_text, text);
    }
    if local.port != 0 {
        w.int_attribute(keys::HOST_PORT, i64::from(local.port));
    }
    if !remote.service_name.is_empty() && !special.peer_service {
        w.str_attribute(keys::PEER_SERVICE, remote.service_name);
    }
    if let Some(address) = remote_address {
        write_address(w, keys::PEER_IP, address, remote.ipv4_text, text);
    }
    if remote.port != 0 {
        w.int_attribute(keys::PEER_PORT, i64::from(remote.port));
    }
    if span.timestamp.is_none() {
        w.bool_attribute(keys::START_TIME_ABSENT, true);
    }
    if let Some(count) = special.dropped_attributes.filter(|&count| count != 0) {
        w.dropped_attributes_count(count);
    }
    for (timestamp, value) in span.lists.annotations() {
        w.event(|e| {
            e.time_unix_nano(timestamp.saturating_mul(1000));
            write_annotation(value, &mut scratch.json, e);
        });
    }
    if let Some(count) = special.dropped_events.filter(|&count| count != 0) {
        w.dropped_events_count(count);
    }
    if let Some(count) = special.dropped_links.filter(|&count| count != 0) {
        w.dropped_links_count(count);
    }
    let (code, message) = special.status();
    if code != 0 || !message.is_empty() {
        w.status(code, message);
    }
}

/// An address attribute. IPv4 is written as the body wrote it when it came as text (`ipv4_text`),
/// else formatted on the stack digit by digit (the `Display` machinery costs more than the rest
/// of a span's attributes together); IPv6, rarer and with zero-run compression to get right, goes
/// through `Display` into a reused buffer.
fn write_address(w: &mut SpanWriter<'_>, key: &str, address: IpAddr, ipv4_text: &str, text: &mut String) {
    match address {
        IpAddr::V4(_) if !ipv4_text.is_empty() => w.str_attribute(key, ipv4_text),
        IpAddr::V4(v4) => w.str_attribute(key, DottedQuad::of(v4).as_str()),
        IpAddr::V6(v6) => {
            text.clear();
            // Writing into a `String` cannot fail.
            let _ = write!(text, "{v6}");
            w.str_attribute(key, text);
        }
    }
}

/// An IPv4 address in dotted-decimal form, as `Display` writes it.
struct DottedQuad {
    text: [u8; 15],
    len: usize,
}

impl DottedQuad {
    fn of(address: Ipv4Addr) -> Self {
        let mut quad = Self { text: [0; 15], len: 0 };
        for (index, octet) in address.octets().into_iter().enumerate() {
            if index != 0 {
                quad.push(b'.');
            }
            if octet >= 100 {
                quad.push(b'0' + octet / 100);
            }
            if octet >= 10 {
                quad.push(b'0' + octet / 10 % 10);
            }
            quad.push(b'0' + octet % 10);
        }
        quad
    }

    fn push(&mut self, byte: u8) {
        self.text[self.len] = byte;
        self.len += 1;
    }

    fn as_str(&self) -> &str {
        // Digits and dots only: always UTF-8, so the fallback is never taken.
        std::str::from_utf8(&self.text[..self.len]).unwrap_or_default()
    }
}

/// `parse_string_tags`: a tag whose value parses as an integer, then a double, then a boolean
/// (the order of the Collector's `DetermineValueType`) becomes an attribute of that type.
fn typed_attribute(w: &mut SpanWriter<'_>, key: &str, value: &str) {
    if let Ok(int) = value.parse::<i64>() {
        w.int_attribute(key, int);
    } else if let Some(double) = parse_go_float(value) {
        w.double_attribute(key, double);
    } else if let Some(flag) = parse_go_bool(value) {
        w.bool_attribute(key, flag);
    } else {
        w.str_attribute(key, value);
    }
}

/// Go's `strconv.ParseFloat` for decimal input: Rust's parser accepts the same decimal forms and
/// the same `inf`/`infinity`/`nan` spellings in any case. Hexadecimal floats (`0x1p-2`), which Go
/// also accepts, stay strings.
fn parse_go_float(value: &str) -> Option<f64> {
    value.parse::<f64>().ok()
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// An annotation becomes an event. Three forms carry event attributes:
/// - the specification's, which the encoders write: `"name":{"key":value,…}`;
/// - the OpenTelemetry Python SDK's: `{"name":{"key":value,…}}`;
/// - the Collector's: `name|{"key":value,…}|droppedAttributesCount`.
///
/// Any other value, or one of these forms that does not parse, is the event name as it stands.
/// The JSON is parsed into simd-json's tape, which keeps the attributes in document order, with the
/// thread's second parser (the request's tape is still being read), so no annotation allocates.
fn write_annotation(value: &str, scratch: &mut Vec<u8>, e: &mut EventWriter<'_>) {
    if !write_spec_form(value, scratch, e) && !write_collector_form(value, scratch, e) && !value.is_empty() {
        e.name(value);
    }
}

/// `"name":{…}` (the specification's text) or `{"name":{…}}` (what the OpenTelemetry Python SDK's
/// Zipkin exporters send, v1 and v2 alike: the same member inside an object).
fn write_spec_form(value: &str, scratch: &mut Vec<u8>, e: &mut EventWriter<'_>) -> bool {
    if !value.ends_with('}') {
        return false;
    }
    scratch.clear();
    if value.starts_with('"') {
        scratch.push(b'{');
        scratch.extend_from_slice(value.as_bytes());
        scratch.push(b'}');
    } else if value.starts_with('{') {
        scratch.extend_from_slice(value.as_bytes());
    } else {
        return false;
    }
    json_tape::with_tape(scratch, |tape| {
        let Some(outer) = tape.as_value().as_object() else { return false };
        let mut entries = outer.iter();
        let (Some((name, attributes)), None) = (entries.next(), entries.next()) else { return false };
        if attributes.as_object().is_none() || !fits_depth(attributes, 1) {
            return false;
        }
        if !name.is_empty() {
            e.name(name);
        }
        write_json_attributes(attributes, e);
        true
    })
    .unwrap_or(false)
}

fn write_collector_form(value: &str, scratch: &mut Vec<u8>, e: &mut EventWriter<'_>) -> bool {
    // The form ends in a count, so a value that does not end in a digit (most event names) is
    // told apart without searching it for `|`.
    if !value.as_bytes().last().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let Some((name, rest)) = value.split_once('|') else { return false };
    let Some((json, dropped)) = rest.rsplit_once('|') else { return false };
    let Ok(dropped) = dropped.parse::<u32>() else { return false };
    scratch.clear();
    scratch.extend_from_slice(json.as_bytes());
    json_tape::with_tape(scratch, |tape| {
        let attributes = tape.as_value();
        if attributes.as_object().is_none() || !fits_depth(attributes, 1) {
            return false;
        }
        if !name.is_empty() {
            e.name(name);
        }
        write_json_attributes(attributes, e);
        if dropped != 0 {
            e.dropped_attributes_count(dropped);
        }
        true
    })
    .unwrap_or(false)
}

/// Whether `value`, nested `depth` levels inside an attribute value, stays within what the
/// index accepts.
fn fits_depth(value: JsonValue<'_, '_>, depth: usize) -> bool {
    if let Some(array) = value.as_array() {
        depth < MAX_VALUE_DEPTH && array.iter().all(|item| fits_depth(item, depth + 1))
    } else if let Some(object) = value.as_object() {
        depth < MAX_VALUE_DEPTH && object.iter().all(|(_, item)| fits_depth(item, depth + 1))
    } else {
        true
    }
}

/// The members of a JSON object as attributes, in document order; of a key given twice, the
/// last member counts.
fn write_json_attributes(object: JsonValue<'_, '_>, e: &mut impl Attributes) {
    let Some(object) = object.as_object() else { return };
    // The decoders' first pass does not read the objects inside annotations: their keys go
    // through the thread's table here (the request's first pass is over and gave it back).
    let superseded = if object.len() > 1 {
        KeyTable::with(|key_table| key_table.superseded(|| object.iter().map(|(key, _)| key.as_bytes())))
    } else {
        Superseded::default()
    };
    for (position, (key, value)) in object.iter().enumerate() {
        if !superseded.contains(position) {
            e.attribute(key, |v| write_json_value(value, v));
        }
    }
}

/// JSON → `AnyValue`: integers (as the token is written) stay integers, other numbers are
/// doubles, `null` is an empty value, arrays and objects nest.
fn write_json_value(value: JsonValue<'_, '_>, v: &mut ValueWriter<'_>) {
    match value.value_type() {
        ValueType::String => v.string(value.into_string().unwrap_or_default()),
        ValueType::Bool => v.bool(value.as_bool().unwrap_or_default()),
        ValueType::Null => {}
        ValueType::Array => v.array(|a: &mut ArrayWriter<'_>| {
            for item in value.as_array().iter().flat_map(|array| array.iter()) {
                a.value(|v| write_json_value(item, v));
            }
        }),
        ValueType::Object => v.kvlist(|kv: &mut KeyValueListWriter<'_>| write_json_attributes(value, kv)),
        _ => match value.as_i64() {
            Some(int) if !value.is_f64() => v.int(int),
            _ => v.double(value.cast_f64().unwrap_or_default()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_addresses_are_formatted_as_display_formats_them() {
        for address in ["0.0.0.0", "255.255.255.255", "10.1.0.200", "9.99.100.7", "127.0.0.1"] {
            let address: Ipv4Addr = address.parse().unwrap();
            assert_eq!(DottedQuad::of(address).as_str(), address.to_string());
        }
    }

    #[test]
    fn first_seen_numbers_keys_in_order_of_appearance_past_the_linear_limit() {
        let mut seen = FirstSeen::default();
        let count = FirstSeen::<usize>::LINEAR_LIMIT * 3;
        for round in 0..2 {
            for key in 0..count {
                assert_eq!(seen.index(key * 7), (key, round == 0), "key {key}, round {round}");
            }
        }
        assert!(seen.map.is_some());
    }
}
