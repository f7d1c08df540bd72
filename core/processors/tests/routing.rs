//! The routing decision partitions a batch exactly: every span lands in exactly one output, under
//! the route its attribute selects, in its original order, with its resource and scope.

mod common;

use common::{batch_of, decode, key_value, request_of, run, span, spans_in_context, string_attribute};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use proptest::prelude::*;
use spanpipe_config::ComponentConfig;
use spanpipe_processors::{AttributeSource, DropReason, Processor, Route, RoutingConfig, RoutingTableEntry};

const TENANTS: [&str; 2] = ["acme", "globex"];

fn config(source: AttributeSource, default_exporters: &[&str]) -> RoutingConfig {
    RoutingConfig {
        from_attribute: "tenant".into(),
        attribute_source: source,
        default_exporters: default_exporters.iter().map(|name| (*name).to_owned()).collect(),
        table: TENANTS
            .iter()
            .map(|tenant| RoutingTableEntry {
                value: (*tenant).to_owned(),
                statement: String::new(),
                exporters: vec![format!("otlp/{tenant}")],
            })
            .collect(),
        drop_resource_routing_attribute: false,
    }
}

/// What a span's `tenant` may be: one of the routes, another string, an int, or absent.
fn tenant() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(Some(Value::StringValue("acme".into()))),
        Just(Some(Value::StringValue("globex".into()))),
        Just(Some(Value::StringValue("initech".into()))),
        Just(Some(Value::IntValue(1))),
        Just(None),
    ]
}

fn tag(attributes: &mut Vec<KeyValue>, tenant: Option<Value>) {
    if let Some(value) = tenant {
        attributes.insert(
            0,
            KeyValue { key: "tenant".into(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() },
        );
    }
}

fn request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    (spanpipe_testkit::strategies::request(), proptest::collection::vec(tenant(), 1..40)).prop_map(
        |(mut request, tenants)| {
            let mut tenants = tenants.into_iter().cycle();
            for resource in &mut request.resource_spans {
                let resource_message = resource.resource.get_or_insert_with(Resource::default);
                tag(&mut resource_message.attributes, tenants.next().flatten());
                for scope in &mut resource.scope_spans {
                    for span in &mut scope.spans {
                        tag(&mut span.attributes, tenants.next().flatten());
                    }
                }
            }
            request
        },
    )
}

fn string_tenant(attributes: &[KeyValue]) -> Option<&str> {
    attributes.iter().find(|attribute| attribute.key == "tenant").and_then(|attribute| {
        match attribute.value.as_ref().and_then(|value| value.value.as_ref()) {
            Some(Value::StringValue(text)) => Some(text.as_str()),
            _ => None,
        }
    })
}

fn expected_route(tenant: Option<&str>) -> Route {
    match tenant.and_then(|tenant| TENANTS.iter().position(|known| *known == tenant)) {
        Some(index) => Route::Table(index),
        None => Route::Default,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn partition_is_exact(request in request(), by_span in any::<bool>(), has_default in any::<bool>()) {
        let all = spans_in_context(&request);
        prop_assume!(!all.is_empty());
        let source = if by_span { AttributeSource::Span } else { AttributeSource::Resource };
        let config = config(source, if has_default { &["otlp/default"] } else { &[] });
        prop_assert!(config.validate().is_empty());
        let mut router = config.build();
        let outputs = run(&mut router, batch_of(&request));

        let route_of = |resource: &Option<Resource>, span: &Span| {
            let attributes = if by_span { &span.attributes } else { &resource.as_ref().expect("tagged").attributes };
            expected_route(string_tenant(attributes))
        };
        let mut routes_seen = Vec::new();
        for (route, batch) in &outputs {
            prop_assert!(!routes_seen.contains(route), "one batch per route");
            routes_seen.push(*route);
            let expected: Vec<_> = all.iter().filter(|(resource, _, _, _, span)| route_of(resource, span) == *route).cloned().collect();
            prop_assert_eq!(&spans_in_context(&decode(batch)), &expected, "route {:?} gets its spans in order", route);
        }
        let routed: usize = outputs.iter().map(|(_, batch)| batch.len()).sum();
        let unrouted = all.iter().filter(|(resource, _, _, _, span)| route_of(resource, span) == Route::Default).count();
        let stats = router.stats();
        if has_default {
            prop_assert_eq!(routed, all.len());
        } else {
            prop_assert!(!routes_seen.contains(&Route::Default));
            prop_assert_eq!(routed + unrouted, all.len());
            prop_assert_eq!(stats.dropped(DropReason::NoRoute) as usize, unrouted);
        }
        prop_assert_eq!(stats.spans_in as usize, all.len());
        prop_assert_eq!(stats.spans_out as usize, routed);
    }
}

#[test]
fn a_batch_on_one_route_passes_without_a_copy() {
    let mut request = request_of("svc", vec![span([1; 16], 1), span([1; 16], 2)]);
    request.resource_spans[0].resource.as_mut().unwrap().attributes.push(string_attribute("tenant", "globex"));
    let batch = batch_of(&request);
    let mut router = config(AttributeSource::Resource, &[]).build();
    let outputs = run(&mut router, batch.clone());
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].0, Route::Table(1));
    assert_eq!(outputs[0].1.bytes().as_ptr(), batch.bytes().as_ptr());
}

#[test]
fn span_routing_splits_one_resource() {
    let mut acme = span([1; 16], 1);
    acme.attributes.push(string_attribute("tenant", "acme"));
    let mut other = span([1; 16], 2);
    other.attributes.push(key_value("tenant", Value::BoolValue(true)));
    let mut router = config(AttributeSource::Span, &["debug"]).build();
    let outputs = run(&mut router, batch_of(&request_of("svc", vec![acme, other])));
    let routes: Vec<(Route, usize)> = outputs.iter().map(|(route, batch)| (*route, batch.len())).collect();
    assert_eq!(routes, vec![(Route::Table(0), 1), (Route::Default, 1)]);
}

#[test]
fn validation_refuses_what_spanpipe_cannot_route() {
    let paths = |config: RoutingConfig| config.validate().into_iter().map(|error| error.path).collect::<Vec<_>>();
    assert_eq!(paths(config(AttributeSource::Context, &[])), ["attribute_source"]);
    let mut statement = config(AttributeSource::Resource, &[]);
    statement.table[1] = RoutingTableEntry {
        value: String::new(),
        statement: "route() where resource.attributes[\"x\"] == \"y\"".into(),
        exporters: vec!["otlp".into()],
    };
    assert_eq!(paths(statement), ["table[1].statement"]);
    let mut duplicate = config(AttributeSource::Resource, &[]);
    duplicate.table[1].value = "acme".into();
    duplicate.table[0].exporters.clear();
    assert_eq!(paths(duplicate), ["table[0].exporters", "table[1].value"]);
    let empty = RoutingConfig { attribute_source: AttributeSource::Resource, ..RoutingConfig::default() };
    assert_eq!(paths(empty), ["from_attribute", "table"]);
    let drop = RoutingConfig { drop_resource_routing_attribute: true, ..config(AttributeSource::Resource, &[]) };
    assert_eq!(paths(drop), ["drop_resource_routing_attribute"]);
    let parsed: RoutingConfig = serde_json::from_str(
        r#"{"from_attribute": "tenant", "attribute_source": "resource", "default_exporters": ["jaeger"],
            "table": [{"value": "acme", "exporters": ["jaeger/acme"]}]}"#,
    )
    .unwrap();
    assert!(parsed.validate().is_empty());
    assert_eq!(parsed.table[0].exporters, ["jaeger/acme"]);
    let error_mode = serde_json::from_str::<RoutingConfig>(r#"{"error_mode": "ignore"}"#).unwrap_err();
    assert!(error_mode.to_string().contains("error_mode"));
}
