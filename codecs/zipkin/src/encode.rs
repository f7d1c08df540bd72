//! OTLP → Zipkin v2: the mapping both encoders share, and the two wire forms.
//!
//! [`encode_spans`] reads each span through the batch's views and says what the Zipkin span holds
//! to a [`Sink`]: the head (ids, kind, name, times, endpoints), then the annotations, then the
//! tags. [`JsonSink`] writes Zipkin v2 JSON, [`ProtoSink`] a `ListOfSpans`; neither knows the
//! mapping, and the mapping knows no wire format.

use std::net::IpAddr;

use spanpipe_core::wire::{put_len_field, put_tag, put_varint};
use spanpipe_core::{AnyValueView, SpanBatch, SpanKind, SpanView, StatusCode, WireType};

use crate::json_text::{push_json_object, push_string, push_tag_value};
use crate::keys;

/// Zipkin's span kinds; `INTERNAL` and unspecified spans have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ZipkinKind {
    Client,
    Server,
    Producer,
    Consumer,
}

impl ZipkinKind {
    fn name(self) -> &'static str {
        match self {
            Self::Client => "CLIENT",
            Self::Server => "SERVER",
            Self::Producer => "PRODUCER",
            Self::Consumer => "CONSUMER",
        }
    }

    /// zipkin.proto's `Span.Kind` number.
    fn number(self) -> u64 {
        match self {
            Self::Client => 1,
            Self::Server => 2,
            Self::Producer => 3,
            Self::Consumer => 4,
        }
    }
}

/// An endpoint to write; empty parts are left out.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OutEndpoint<'a> {
    pub(crate) service_name: &'a str,
    pub(crate) address: Option<IpAddr>,
    pub(crate) port: u16,
}

impl OutEndpoint<'_> {
    fn is_empty(&self) -> bool {
        self.service_name.is_empty() && self.address.is_none() && self.port == 0
    }
}

/// The fixed fields of one Zipkin span.
#[derive(Debug)]
pub(crate) struct SpanHead<'a> {
    pub(crate) trace_id: &'a [u8; 16],
    pub(crate) parent_id: Option<&'a [u8; 8]>,
    pub(crate) id: &'a [u8; 8],
    pub(crate) kind: Option<ZipkinKind>,
    pub(crate) name: &'a str,
    /// µs; `None` leaves it out.
    pub(crate) timestamp: Option<u64>,
    /// µs; zero leaves it out.
    pub(crate) duration: u64,
    pub(crate) local: OutEndpoint<'a>,
    pub(crate) remote: OutEndpoint<'a>,
}

/// A Zipkin wire form. Calls come in the order `head`, every `annotation`, every `tag`, `end`.
pub(crate) trait Sink {
    fn head(&mut self, head: &SpanHead<'_>);
    fn annotation(&mut self, timestamp: u64, value: &str);
    fn tag(&mut self, key: &str, value: &str);
    fn end(&mut self);
}

/// Attributes of a span that feed Zipkin's typed fields, found in one pass.
#[derive(Debug, Default)]
struct Typed<'a> {
    host_address: Option<IpAddr>,
    host_port: u16,
    peer_service: &'a str,
    /// The best-ranked attribute naming the remote service, and its rank.
    ranked_service: Option<(usize, &'a str)>,
    peer_address: Option<IpAddr>,
    peer_port: u16,
    start_time_absent: bool,
}

fn as_address(value: &AnyValueView<'_>) -> Option<IpAddr> {
    value.as_str()?.parse().ok()
}

/// A port as an integer or a decimal string; zero and out-of-range values are not ports.
fn as_port(value: &AnyValueView<'_>) -> u16 {
    let port = match value {
        AnyValueView::Int(int) => u16::try_from(*int).ok(),
        AnyValueView::String(s) => s.parse().ok(),
        _ => None,
    };
    port.unwrap_or(0)
}

impl<'a> Typed<'a> {
    fn read(span: &SpanView<'a>, attributes: spanpipe_core::KeyValues<'a>) -> Self {
        let mut typed = Self::default();
        let remote_kind = matches!(span.kind(), SpanKind::Client | SpanKind::Producer);
        for kv in attributes {
            match kv.key {
                keys::HOST_IP => typed.host_address = as_address(&kv.value),
                keys::HOST_PORT => typed.host_port = as_port(&kv.value),
                keys::PEER_SERVICE => typed.peer_service = kv.value.as_str().unwrap_or(""),
                keys::PEER_IP => typed.peer_address = as_address(&kv.value),
                keys::PEER_PORT => typed.peer_port = as_port(&kv.value),
                keys::START_TIME_ABSENT => typed.start_time_absent = matches!(kv.value, AnyValueView::Bool(true)),
                key if remote_kind => {
                    let rank = keys::REMOTE_SERVICE_RANKING.iter().position(|ranked| *ranked == key);
                    if let (Some(rank), Some(name)) = (rank, kv.value.as_str().filter(|name| !name.is_empty())) {
                        if typed.ranked_service.is_none_or(|(best, _)| rank < best) {
                            typed.ranked_service = Some((rank, name));
                        }
                    }
                }
                _ => {}
            }
        }
        typed
    }

    /// Whether an attribute went into a typed field and is not also written as a tag.
    fn consumed(&self, key: &str, value: &AnyValueView<'_>) -> bool {
        match key {
            keys::HOST_IP => self.host_address.is_some(),
            keys::HOST_PORT => self.host_port != 0,
            keys::PEER_SERVICE => !self.peer_service.is_empty(),
            keys::PEER_IP => self.peer_address.is_some(),
            keys::PEER_PORT => self.peer_port != 0,
            keys::START_TIME_ABSENT => matches!(value, AnyValueView::Bool(true)),
            _ => false,
        }
    }
}

/// Tags the mapping makes itself; an attribute of the same name gives way to them.
#[derive(Debug, Default)]
struct Generated<'a> {
    tags: Vec<(&'static str, std::borrow::Cow<'a, str>)>,
}

impl Generated<'_> {
    fn has(&self, key: &str) -> bool {
        self.tags.iter().any(|(generated, _)| *generated == key)
    }
}

/// Maps every span of `batch` to Zipkin and hands it to `sink`.
pub(crate) fn encode_spans(batch: &SpanBatch, default_service_name: &str, sink: &mut impl Sink) {
    let mut scratch = String::new();
    let mut generated = Generated::default();
    for span in batch.spans() {
        let details = span.details();
        let typed = Typed::read(&span, details.attributes());
        let resource = span.resource();
        let service = resource.service_name().filter(|name| !name.is_empty()).unwrap_or(default_service_name);
        let start = span.start_time_unix_nano();
        let kind = match span.kind() {
            SpanKind::Client => Some(ZipkinKind::Client),
            SpanKind::Server => Some(ZipkinKind::Server),
            SpanKind::Producer => Some(ZipkinKind::Producer),
            SpanKind::Consumer => Some(ZipkinKind::Consumer),
            _ => None,
        };
        let remote_service = if typed.peer_service.is_empty() {
            typed.ranked_service.map_or("", |(_, name)| name)
        } else {
            typed.peer_service
        };
        sink.head(&SpanHead {
            trace_id: span.trace_id(),
            parent_id: span.parent_span_id(),
            id: span.span_id(),
            kind,
            name: span.name(),
            timestamp: (!typed.start_time_absent && start != 0).then_some(start / 1000),
            duration: span.end_time_unix_nano().saturating_sub(start) / 1000,
            local: OutEndpoint { service_name: service, address: typed.host_address, port: typed.host_port },
            remote: OutEndpoint { service_name: remote_service, address: typed.peer_address, port: typed.peer_port },
        });

        for event in details.events() {
            scratch.clear();
            let mut attributes = event.attributes().peekable();
            if attributes.peek().is_none() {
                scratch.push_str(event.name);
            } else {
                // The specification's form: `"name":{"key":value,…}`.
                push_string(&mut scratch, event.name);
                scratch.push(':');
                push_json_object(&mut scratch, event.attributes());
            }
            sink.annotation(event.time_unix_nano / 1000, &scratch);
        }

        generated.tags.clear();
        let scope = span.scope();
        if !scope.name().is_empty() {
            generated.tags.push((keys::SCOPE_NAME, scope.name().into()));
        }
        if !scope.version().is_empty() {
            generated.tags.push((keys::SCOPE_VERSION, scope.version().into()));
        }
        match span.status_code() {
            StatusCode::Ok => generated.tags.push((keys::STATUS_CODE, "OK".into())),
            StatusCode::Error => {
                generated.tags.push((keys::STATUS_CODE, "ERROR".into()));
                let message = details.status.map_or("", |status| status.message);
                generated.tags.push((keys::ERROR, message.into()));
                // The error tag carries the description, but there `true` is a bare flag and
                // `false` no error at all: such a description also goes into
                // `otel.status_description`, which decoders read beside `otel.status_code` (ours
                // and the Collector's), so that it survives the round trip.
                if matches!(message, "true" | "false") {
                    generated.tags.push((keys::STATUS_DESCRIPTION, message.into()));
                }
            }
            _ => {}
        }
        for (key, count) in [
            (keys::DROPPED_ATTRIBUTES, details.dropped_attributes_count),
            (keys::DROPPED_EVENTS, details.dropped_events_count),
            (keys::DROPPED_LINKS, details.dropped_links_count),
        ] {
            if count != 0 {
                generated.tags.push((key, itoa::Buffer::new().format(count).to_owned().into()));
            }
        }
        if !details.trace_state.is_empty() {
            generated.tags.push((keys::TRACE_STATE, details.trace_state.into()));
        }
        if span.kind() == SpanKind::Internal {
            generated.tags.push((keys::SPAN_KIND, "internal".into()));
        }

        let status_is_error = span.status_code() == StatusCode::Error;
        for kv in details.attributes() {
            let false_error = kv.key == keys::ERROR
                && !status_is_error
                && matches!(kv.value, AnyValueView::Bool(false) | AnyValueView::String("false"));
            if typed.consumed(kv.key, &kv.value) || generated.has(kv.key) || false_error {
                continue;
            }
            scratch.clear();
            push_tag_value(&mut scratch, &kv.value);
            sink.tag(kv.key, &scratch);
        }
        for kv in resource.attributes() {
            if kv.key == keys::SERVICE_NAME
                || generated.has(kv.key)
                || details.attributes().any(|own| own.key == kv.key)
            {
                continue;
            }
            scratch.clear();
            push_tag_value(&mut scratch, &kv.value);
            sink.tag(kv.key, &scratch);
        }
        for (key, value) in &generated.tags {
            sink.tag(key, value);
        }
        sink.end();
    }
}

/// zipkin-go writes a trace id whose high half is zero as 64 bits; so do we.
fn trace_id_bytes(trace_id: &[u8; 16]) -> &[u8] {
    if trace_id[..8] == [0; 8] {
        &trace_id[8..]
    } else {
        &trace_id[..]
    }
}

/// Zipkin v2 JSON: a JSON array of spans, keys in the order of Zipkin's own encoder.
#[derive(Debug, Default)]
pub(crate) struct JsonSink {
    out: String,
    spans: usize,
    annotations: usize,
    tags: usize,
}

impl JsonSink {
    /// A sink that appends to `out`.
    pub(crate) fn new(out: String) -> Self {
        Self { out, ..Self::default() }
    }

    fn key(&mut self, key: &str) {
        self.out.push_str(",\"");
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    fn hex(&mut self, key: &str, bytes: &[u8]) {
        self.key(key);
        self.hex_value(bytes);
    }

    fn hex_value(&mut self, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        self.out.push('"');
        for byte in bytes {
            self.out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            self.out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
        self.out.push('"');
    }

    fn number(&mut self, key: &str, value: u64) {
        self.key(key);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    fn endpoint(&mut self, key: &str, endpoint: &OutEndpoint<'_>) {
        if endpoint.is_empty() {
            return;
        }
        self.key(key);
        let mut separator = '{';
        let mut field = |out: &mut String, name: &str| {
            out.push(separator);
            separator = ',';
            push_string(out, name);
            out.push(':');
        };
        if !endpoint.service_name.is_empty() {
            field(&mut self.out, "serviceName");
            push_string(&mut self.out, endpoint.service_name);
        }
        match endpoint.address {
            Some(IpAddr::V4(v4)) => {
                field(&mut self.out, "ipv4");
                push_string(&mut self.out, &v4.to_string());
            }
            Some(IpAddr::V6(v6)) => {
                field(&mut self.out, "ipv6");
                push_string(&mut self.out, &v6.to_string());
            }
            None => {}
        }
        if endpoint.port != 0 {
            field(&mut self.out, "port");
            self.out.push_str(itoa::Buffer::new().format(endpoint.port));
        }
        self.out.push('}');
    }

    pub(crate) fn finish(mut self) -> String {
        self.out.push_str(if self.spans == 0 { "[]" } else { "]" });
        self.out
    }
}

impl Sink for JsonSink {
    fn head(&mut self, head: &SpanHead<'_>) {
        self.out.push(if self.spans == 0 { '[' } else { ',' });
        self.spans += 1;
        self.annotations = 0;
        self.tags = 0;
        self.out.push_str("{\"traceId\":");
        self.hex_value(trace_id_bytes(head.trace_id));
        if let Some(parent) = head.parent_id {
            self.hex("parentId", parent);
        }
        self.hex("id", head.id);
        if let Some(kind) = head.kind {
            self.key("kind");
            push_string(&mut self.out, kind.name());
        }
        if !head.name.is_empty() {
            self.key("name");
            push_string(&mut self.out, head.name);
        }
        if let Some(timestamp) = head.timestamp {
            self.number("timestamp", timestamp);
        }
        if head.duration != 0 {
            self.number("duration", head.duration);
        }
        self.endpoint("localEndpoint", &head.local);
        self.endpoint("remoteEndpoint", &head.remote);
    }

    fn annotation(&mut self, timestamp: u64, value: &str) {
        if self.annotations == 0 {
            self.out.push_str(",\"annotations\":[");
        } else {
            self.out.push(',');
        }
        self.annotations += 1;
        self.out.push_str("{\"timestamp\":");
        self.out.push_str(itoa::Buffer::new().format(timestamp));
        self.out.push_str(",\"value\":");
        push_string(&mut self.out, value);
        self.out.push('}');
    }

    fn tag(&mut self, key: &str, value: &str) {
        if self.tags == 0 {
            if self.annotations != 0 {
                self.out.push(']');
                self.annotations = 0;
            }
            self.out.push_str(",\"tags\":{");
        } else {
            self.out.push(',');
        }
        self.tags += 1;
        push_string(&mut self.out, key);
        self.out.push(':');
        push_string(&mut self.out, value);
    }

    fn end(&mut self) {
        if self.annotations != 0 {
            self.out.push(']');
        }
        if self.tags != 0 {
            self.out.push('}');
        }
        self.out.push('}');
    }
}

/// `zipkin.proto3.ListOfSpans`, fields in field-number order, defaults left out.
#[derive(Debug, Default)]
pub(crate) struct ProtoSink {
    out: Vec<u8>,
    span: Vec<u8>,
    nested: Vec<u8>,
}

impl ProtoSink {
    /// A sink that appends to `out`.
    pub(crate) fn new(out: Vec<u8>) -> Self {
        Self { out, ..Self::default() }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.out
    }

    fn endpoint(&mut self, number: u32, endpoint: &OutEndpoint<'_>) {
        if endpoint.is_empty() {
            return;
        }
        self.nested.clear();
        if !endpoint.service_name.is_empty() {
            put_len_field(&mut self.nested, 1, endpoint.service_name.as_bytes());
        }
        match endpoint.address {
            Some(IpAddr::V4(v4)) => put_len_field(&mut self.nested, 2, &v4.octets()),
            Some(IpAddr::V6(v6)) => put_len_field(&mut self.nested, 3, &v6.octets()),
            None => {}
        }
        if endpoint.port != 0 {
            put_tag(&mut self.nested, 4, WireType::Varint);
            put_varint(&mut self.nested, u64::from(endpoint.port));
        }
        put_len_field(&mut self.span, number, &self.nested);
    }
}

impl Sink for ProtoSink {
    fn head(&mut self, head: &SpanHead<'_>) {
        self.span.clear();
        put_len_field(&mut self.span, 1, trace_id_bytes(head.trace_id));
        if let Some(parent) = head.parent_id {
            put_len_field(&mut self.span, 2, parent);
        }
        put_len_field(&mut self.span, 3, head.id);
        if let Some(kind) = head.kind {
            put_tag(&mut self.span, 4, WireType::Varint);
            put_varint(&mut self.span, kind.number());
        }
        if !head.name.is_empty() {
            put_len_field(&mut self.span, 5, head.name.as_bytes());
        }
        if let Some(timestamp) = head.timestamp {
            put_tag(&mut self.span, 6, WireType::I64);
            self.span.extend_from_slice(&timestamp.to_le_bytes());
        }
        if head.duration != 0 {
            put_tag(&mut self.span, 7, WireType::Varint);
            put_varint(&mut self.span, head.duration);
        }
        self.endpoint(8, &head.local);
        self.endpoint(9, &head.remote);
    }

    fn annotation(&mut self, timestamp: u64, value: &str) {
        self.nested.clear();
        put_tag(&mut self.nested, 1, WireType::I64);
        self.nested.extend_from_slice(&timestamp.to_le_bytes());
        if !value.is_empty() {
            put_len_field(&mut self.nested, 2, value.as_bytes());
        }
        put_len_field(&mut self.span, 10, &self.nested);
    }

    fn tag(&mut self, key: &str, value: &str) {
        self.nested.clear();
        put_len_field(&mut self.nested, 1, key.as_bytes());
        put_len_field(&mut self.nested, 2, value.as_bytes());
        put_len_field(&mut self.span, 11, &self.nested);
    }

    fn end(&mut self) {
        put_len_field(&mut self.out, 1, &self.span);
    }
}
