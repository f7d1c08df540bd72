//! Bridges between spanpipe's batch and the prost types of `opentelemetry-proto`, used as the
//! oracle in tests: prost is the reference decoder every index field and view is compared with.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use spanpipe_core::{
    AnyValueView, Attributes, BatchWriter, Events, KeyValues, Links, SpanBatch, SpanView, ValueWriter,
};

pub fn any_value_to_prost(value: AnyValueView<'_>) -> AnyValue {
    let value = match value {
        AnyValueView::Empty => None,
        AnyValueView::String(s) => Some(Value::StringValue(s.to_owned())),
        AnyValueView::Bool(b) => Some(Value::BoolValue(b)),
        AnyValueView::Int(i) => Some(Value::IntValue(i)),
        AnyValueView::Double(d) => Some(Value::DoubleValue(d)),
        AnyValueView::Bytes(b) => Some(Value::BytesValue(b.to_vec())),
        AnyValueView::Array(values) => {
            Some(Value::ArrayValue(ArrayValue { values: values.map(any_value_to_prost).collect() }))
        }
        AnyValueView::KvList(values) => Some(Value::KvlistValue(KeyValueList { values: key_values_to_prost(values) })),
    };
    AnyValue { value }
}

pub fn key_values_to_prost(values: KeyValues<'_>) -> Vec<KeyValue> {
    values
        .map(|kv| KeyValue {
            key: kv.key.to_owned(),
            value: kv.has_value.then(|| any_value_to_prost(kv.value)),
            ..KeyValue::default()
        })
        .collect()
}

/// Every field of a span, read through the index and the lazy views only.
pub fn span_to_prost(view: &SpanView<'_>) -> Span {
    Span {
        trace_id: view.trace_id().to_vec(),
        span_id: view.span_id().to_vec(),
        trace_state: view.trace_state().to_owned(),
        parent_span_id: view.parent_span_id().map(|id| id.to_vec()).unwrap_or_default(),
        flags: view.flags(),
        name: view.name().to_owned(),
        kind: view.kind().as_i32(),
        start_time_unix_nano: view.start_time_unix_nano(),
        end_time_unix_nano: view.end_time_unix_nano(),
        attributes: key_values_to_prost(view.attributes()),
        dropped_attributes_count: view.dropped_attributes_count(),
        events: events_to_prost(view.events()),
        dropped_events_count: view.dropped_events_count(),
        links: links_to_prost(view.links()),
        dropped_links_count: view.dropped_links_count(),
        status: view
            .has_status()
            .then(|| Status { message: view.status_message().to_owned(), code: view.status_code().as_i32() }),
    }
}

fn events_to_prost(events: Events<'_>) -> Vec<span::Event> {
    events
        .map(|event| span::Event {
            time_unix_nano: event.time_unix_nano,
            name: event.name.to_owned(),
            attributes: key_values_to_prost(event.attributes()),
            dropped_attributes_count: event.dropped_attributes_count,
        })
        .collect()
}

fn links_to_prost(links: Links<'_>) -> Vec<span::Link> {
    links
        .map(|link| span::Link {
            trace_id: link.trace_id.to_vec(),
            span_id: link.span_id.to_vec(),
            trace_state: link.trace_state.to_owned(),
            attributes: key_values_to_prost(link.attributes()),
            dropped_attributes_count: link.dropped_attributes_count,
            flags: link.flags,
        })
        .collect()
}

/// Every field of a span, with the fields the index does not hold read through one
/// [`SpanView::details`] walk instead of the single-field accessors.
pub fn span_details_to_prost(view: &SpanView<'_>) -> Span {
    let details = view.details();
    Span {
        trace_state: details.trace_state.to_owned(),
        attributes: key_values_to_prost(details.attributes()),
        dropped_attributes_count: details.dropped_attributes_count,
        events: events_to_prost(details.events()),
        dropped_events_count: details.dropped_events_count,
        links: links_to_prost(details.links()),
        dropped_links_count: details.dropped_links_count,
        status: details.status.map(|status| Status { message: status.message.to_owned(), code: status.code.as_i32() }),
        ..span_to_prost(view)
    }
}

/// The whole batch, structure included, read through the views only.
pub fn batch_to_prost(batch: &SpanBatch) -> ExportTraceServiceRequest {
    let resource_spans = batch
        .resources()
        .map(|resource| ResourceSpans {
            resource: resource.is_present().then(|| Resource {
                attributes: key_values_to_prost(resource.attributes()),
                dropped_attributes_count: resource.dropped_attributes_count(),
                entity_refs: resource
                    .entity_refs()
                    .map(|e| EntityRef {
                        schema_url: e.schema_url.to_owned(),
                        r#type: e.entity_type.to_owned(),
                        id_keys: e.id_keys().map(str::to_owned).collect(),
                        description_keys: e.description_keys().map(str::to_owned).collect(),
                    })
                    .collect(),
            }),
            scope_spans: resource
                .scopes()
                .map(|scope| ScopeSpans {
                    scope: scope.is_present().then(|| InstrumentationScope {
                        name: scope.name().to_owned(),
                        version: scope.version().to_owned(),
                        attributes: key_values_to_prost(scope.attributes()),
                        dropped_attributes_count: scope.dropped_attributes_count(),
                    }),
                    spans: scope.spans().map(|span| span_to_prost(&span)).collect(),
                    schema_url: scope.schema_url().to_owned(),
                })
                .collect(),
            schema_url: resource.schema_url().to_owned(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// One span with the resource and scope it belongs to: what "the same spans under their original
/// resource and scope" means, independent of how a request groups them.
pub type FlatSpan = (Option<Resource>, String, Option<InstrumentationScope>, String, Span);

pub fn flatten(request: &ExportTraceServiceRequest) -> Vec<FlatSpan> {
    let mut flat = Vec::new();
    for rs in &request.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                flat.push((
                    rs.resource.clone(),
                    rs.schema_url.clone(),
                    ss.scope.clone(),
                    ss.schema_url.clone(),
                    span.clone(),
                ));
            }
        }
    }
    flat
}

fn write_value(writer: &mut ValueWriter<'_>, value: &AnyValue) {
    match &value.value {
        None => {}
        Some(Value::StringValue(s)) => writer.string(s),
        Some(Value::BoolValue(b)) => writer.bool(*b),
        Some(Value::IntValue(i)) => writer.int(*i),
        Some(Value::DoubleValue(d)) => writer.double(*d),
        Some(Value::BytesValue(b)) => writer.bytes(b),
        Some(Value::ArrayValue(array)) => writer.array(|a| {
            for element in &array.values {
                a.value(|v| write_value(v, element));
            }
        }),
        Some(Value::KvlistValue(list)) => writer.kvlist(|l| write_attributes(l, &list.values)),
        Some(Value::StringValueStrindex(_)) => unreachable!("strategies never generate string table indexes"),
    }
}

fn write_attributes(target: &mut impl Attributes, attributes: &[KeyValue]) {
    for kv in attributes {
        match &kv.value {
            Some(value) => target.attribute(&kv.key, |v| write_value(v, value)),
            None => target.attribute_without_value(&kv.key),
        }
    }
}

fn ids<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().expect("strategies generate ids of the right length")
}

/// Writes `request` with the span writer, field by field in field-number order and leaving out
/// proto3 defaults — the same rules prost encodes by.
pub fn write_with_writer(request: &ExportTraceServiceRequest) -> SpanBatch {
    let mut writer = BatchWriter::new();
    for rs in &request.resource_spans {
        writer.resource_spans(|w| {
            if let Some(resource) = &rs.resource {
                w.resource(|r| {
                    write_attributes(r, &resource.attributes);
                    if resource.dropped_attributes_count != 0 {
                        r.dropped_attributes_count(resource.dropped_attributes_count);
                    }
                    for entity in &resource.entity_refs {
                        r.entity_ref(|e| {
                            if !entity.schema_url.is_empty() {
                                e.schema_url(&entity.schema_url);
                            }
                            if !entity.r#type.is_empty() {
                                e.entity_type(&entity.r#type);
                            }
                            for key in &entity.id_keys {
                                e.id_key(key);
                            }
                            for key in &entity.description_keys {
                                e.description_key(key);
                            }
                        });
                    }
                });
            }
            for ss in &rs.scope_spans {
                w.scope_spans(|w| {
                    if let Some(scope) = &ss.scope {
                        w.scope(|s| {
                            if !scope.name.is_empty() {
                                s.name(&scope.name);
                            }
                            if !scope.version.is_empty() {
                                s.version(&scope.version);
                            }
                            write_attributes(s, &scope.attributes);
                            if scope.dropped_attributes_count != 0 {
                                s.dropped_attributes_count(scope.dropped_attributes_count);
                            }
                        });
                    }
                    for span in &ss.spans {
                        w.span(|s| write_span(s, span));
                    }
                    if !ss.schema_url.is_empty() {
                        w.schema_url(&ss.schema_url);
                    }
                });
            }
            if !rs.schema_url.is_empty() {
                w.schema_url(&rs.schema_url);
            }
        });
    }
    writer.finish().expect("the writer's output passes the scan")
}

fn write_span(s: &mut spanpipe_core::SpanWriter<'_>, span: &Span) {
    s.trace_id(&ids(&span.trace_id)).span_id(&ids(&span.span_id));
    if !span.trace_state.is_empty() {
        s.trace_state(&span.trace_state);
    }
    if !span.parent_span_id.is_empty() {
        s.parent_span_id(&ids(&span.parent_span_id));
    }
    if !span.name.is_empty() {
        s.name(&span.name);
    }
    if span.kind != 0 {
        s.kind(span.kind);
    }
    if span.start_time_unix_nano != 0 {
        s.start_time_unix_nano(span.start_time_unix_nano);
    }
    if span.end_time_unix_nano != 0 {
        s.end_time_unix_nano(span.end_time_unix_nano);
    }
    write_attributes(s, &span.attributes);
    if span.dropped_attributes_count != 0 {
        s.dropped_attributes_count(span.dropped_attributes_count);
    }
    for event in &span.events {
        s.event(|e| {
            if event.time_unix_nano != 0 {
                e.time_unix_nano(event.time_unix_nano);
            }
            if !event.name.is_empty() {
                e.name(&event.name);
            }
            write_attributes(e, &event.attributes);
            if event.dropped_attributes_count != 0 {
                e.dropped_attributes_count(event.dropped_attributes_count);
            }
        });
    }
    if span.dropped_events_count != 0 {
        s.dropped_events_count(span.dropped_events_count);
    }
    for link in &span.links {
        s.link(|l| {
            l.trace_id(&ids(&link.trace_id)).span_id(&ids(&link.span_id));
            if !link.trace_state.is_empty() {
                l.trace_state(&link.trace_state);
            }
            write_attributes(l, &link.attributes);
            if link.dropped_attributes_count != 0 {
                l.dropped_attributes_count(link.dropped_attributes_count);
            }
            if link.flags != 0 {
                l.flags(link.flags);
            }
        });
    }
    if span.dropped_links_count != 0 {
        s.dropped_links_count(span.dropped_links_count);
    }
    if let Some(status) = &span.status {
        s.status(status.code, &status.message);
    }
    if span.flags != 0 {
        s.flags(span.flags);
    }
}
