//! The attributes processor against prost: a model of each action over prost's decoding of
//! arbitrary requests must give exactly what prost decodes from the processor's output.

mod common;

use common::{batch_of, decode, key_value, request_of, run, span, string_attribute};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use proptest::prelude::*;
use regex::Regex;
use sha2::{Digest, Sha256};
use spanpipe_config::ComponentConfig;
use spanpipe_processors::{
    ActionKind, AttributeActionConfig, AttributeValue, AttributesConfig, AttributesProcessor, Processor,
};

fn action(kind: ActionKind, key: &str) -> AttributeActionConfig {
    AttributeActionConfig {
        key: key.to_owned(),
        action: kind,
        value: None,
        from_attribute: String::new(),
        from_context: String::new(),
        pattern: String::new(),
        converted_type: String::new(),
    }
}

fn processor(actions: Vec<AttributeActionConfig>) -> AttributesProcessor {
    let config = AttributesConfig { actions };
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    config.build().expect("valid config")
}

/// The Collector's hash of a value, computed from prost's decoding.
fn model_hash(value: &Option<AnyValue>) -> Option<AnyValue> {
    let input: Vec<u8> = match value.as_ref().and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(text)) => text.as_bytes().to_vec(),
        Some(Value::BoolValue(flag)) => vec![u8::from(*flag)],
        Some(Value::IntValue(number)) => number.to_le_bytes().to_vec(),
        Some(Value::DoubleValue(number)) => number.to_bits().to_le_bytes().to_vec(),
        _ => Vec::new(),
    };
    let hashed = if input.is_empty() { String::new() } else { hex::encode(Sha256::digest(&input)) };
    common::string_value(&hashed)
}

/// The actions of the property test, applied by a model to prost's attribute list.
fn model(attributes: &mut Vec<KeyValue>, pattern: &Regex) {
    // delete `secret` and every key matching the pattern
    attributes.retain(|attribute| attribute.key != "secret" && !pattern.is_match(&attribute.key));
    // hash `user.email`
    for attribute in attributes.iter_mut().filter(|attribute| attribute.key == "user.email") {
        attribute.value = model_hash(&attribute.value);
    }
    // upsert `env` = "prod"
    let prod = AnyValue { value: Some(Value::StringValue("prod".into())) };
    let mut found = false;
    for attribute in attributes.iter_mut().filter(|attribute| attribute.key == "env") {
        attribute.value = Some(prod.clone());
        attribute.key_strindex = 0;
        found = true;
    }
    if !found {
        attributes.push(KeyValue { key: "env".into(), value: Some(prod), ..KeyValue::default() });
    }
    // insert `copy` from the first `a`
    if !attributes.iter().any(|attribute| attribute.key == "copy") {
        if let Some(source) = attributes.iter().find(|attribute| attribute.key == "a").cloned() {
            attributes.push(KeyValue { key: "copy".into(), ..source });
        }
    }
}

fn property_actions() -> Vec<AttributeActionConfig> {
    vec![
        AttributeActionConfig { pattern: "^[0-9]".into(), ..action(ActionKind::Delete, "secret") },
        action(ActionKind::Hash, "user.email"),
        AttributeActionConfig {
            value: Some(AttributeValue::String("prod".into())),
            ..action(ActionKind::Upsert, "env")
        },
        AttributeActionConfig { from_attribute: "a".into(), ..action(ActionKind::Insert, "copy") },
    ]
}

/// Arbitrary requests whose spans also carry the keys the actions look for.
fn request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let extra = proptest::collection::vec(
        (
            prop::sample::select(vec!["secret", "user.email", "env", "a", "copy", "1x", "b"]),
            spanpipe_testkit::strategies::any_value(),
        ),
        0..5,
    );
    (spanpipe_testkit::strategies::request(), proptest::collection::vec(extra, 0..12)).prop_map(
        |(mut request, extras)| {
            let mut extras = extras.into_iter().cycle();
            for resource in &mut request.resource_spans {
                for scope in &mut resource.scope_spans {
                    for span in &mut scope.spans {
                        if let Some(extra) = extras.next() {
                            for (key, value) in extra {
                                span.attributes.push(KeyValue {
                                    key: key.into(),
                                    value: Some(value),
                                    ..KeyValue::default()
                                });
                            }
                        }
                    }
                }
            }
            request
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn output_equals_the_model_applied_to_prosts_decoding(request in request()) {
        prop_assume!(!common::spans(&request).is_empty());
        let mut processor = processor(property_actions());
        let input = batch_of(&request);
        let outputs = run(&mut processor, input);
        prop_assert_eq!(outputs.len(), 1);
        let got = decode(&outputs[0].1);

        let mut expected = request.clone();
        let pattern = Regex::new("^[0-9]").unwrap();
        for resource in &mut expected.resource_spans {
            for scope in &mut resource.scope_spans {
                for span in &mut scope.spans {
                    model(&mut span.attributes, &pattern);
                }
            }
        }
        // Resources and scopes without spans are not carried into a rewritten batch.
        let expected_spans = common::spans_in_context(&expected);
        let got_spans = common::spans_in_context(&got);
        prop_assert_eq!(got_spans, expected_spans);
        let stats = processor.stats();
        prop_assert_eq!(stats.spans_in, stats.spans_out);
    }
}

fn single_span_request(attributes: Vec<KeyValue>) -> ExportTraceServiceRequest {
    let mut span = span([7; 16], 1);
    span.attributes = attributes;
    request_of("checkout", vec![span])
}

fn attributes_after(processor: &mut AttributesProcessor, attributes: Vec<KeyValue>) -> Vec<KeyValue> {
    let outputs = run(processor, batch_of(&single_span_request(attributes)));
    common::spans(&decode(&outputs[0].1)).remove(0).attributes
}

#[test]
fn insert_update_upsert_follow_the_collector() {
    let mut processor = processor(vec![
        AttributeActionConfig { value: Some(AttributeValue::Int(1)), ..action(ActionKind::Insert, "present") },
        AttributeActionConfig { value: Some(AttributeValue::Bool(true)), ..action(ActionKind::Insert, "absent") },
        AttributeActionConfig { value: Some(AttributeValue::Double(2.5)), ..action(ActionKind::Update, "present") },
        AttributeActionConfig { value: Some(AttributeValue::Int(9)), ..action(ActionKind::Update, "missing") },
        AttributeActionConfig { from_attribute: "present".into(), ..action(ActionKind::Upsert, "copied") },
        AttributeActionConfig { from_attribute: "nowhere".into(), ..action(ActionKind::Upsert, "unset") },
        AttributeActionConfig {
            value: Some(AttributeValue::Array(vec![AttributeValue::String("x".into()), AttributeValue::Int(3)])),
            ..action(ActionKind::Upsert, "list")
        },
        AttributeActionConfig {
            value: Some(AttributeValue::Map([("k".to_owned(), AttributeValue::Bool(false))].into_iter().collect())),
            ..action(ActionKind::Insert, "map")
        },
    ]);
    let got = attributes_after(&mut processor, vec![string_attribute("present", "old")]);
    let expected = vec![
        key_value("present", Value::DoubleValue(2.5)),
        key_value("absent", Value::BoolValue(true)),
        key_value("copied", Value::DoubleValue(2.5)),
        key_value(
            "list",
            Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue { value: Some(Value::StringValue("x".into())) },
                    AnyValue { value: Some(Value::IntValue(3)) },
                ],
            }),
        ),
        key_value("map", Value::KvlistValue(KeyValueList { values: vec![key_value("k", Value::BoolValue(false))] })),
    ];
    assert_eq!(got, expected);
}

#[test]
fn delete_and_hash_redact_personal_data_everywhere_in_the_span() {
    let mut processor = processor(vec![
        action(ActionKind::Delete, "password"),
        AttributeActionConfig { pattern: "^http\\.request\\.header\\.".into(), ..action(ActionKind::Delete, "") },
        action(ActionKind::Hash, "user.email"),
        AttributeActionConfig { pattern: "\\.phone$".into(), ..action(ActionKind::Hash, "") },
    ]);
    let got = attributes_after(
        &mut processor,
        vec![
            string_attribute("user.email", "user@example.com"),
            string_attribute("password", "hunter2"),
            string_attribute("http.request.header.authorization", "Bearer abc"),
            string_attribute("user.phone", "+1-555-0100"),
            key_value("retries", Value::IntValue(3)),
            string_attribute("user.email", "duplicate@example.com"),
        ],
    );
    let sha = |text: &str| hex::encode(Sha256::digest(text.as_bytes()));
    assert_eq!(
        got,
        vec![
            string_attribute("user.email", &sha("user@example.com")),
            string_attribute("user.phone", &sha("+1-555-0100")),
            key_value("retries", Value::IntValue(3)),
            string_attribute("user.email", &sha("duplicate@example.com")),
        ]
    );
    let outputs =
        run(&mut processor, batch_of(&single_span_request(vec![string_attribute("user.email", "user@example.com")])));
    let bytes = outputs[0].1.bytes();
    assert!(!bytes.windows(16).any(|window| window == b"user@example.com"), "the plain value is gone from the bytes");
}

#[test]
fn hash_with_key_and_matching_pattern_hashes_twice_as_the_collector_does() {
    let mut processor =
        processor(vec![AttributeActionConfig { pattern: "email".into(), ..action(ActionKind::Hash, "email") }]);
    let got = attributes_after(&mut processor, vec![string_attribute("email", "a@b.c")]);
    let once = hex::encode(Sha256::digest(b"a@b.c"));
    assert_eq!(got, vec![string_attribute("email", &hex::encode(Sha256::digest(once.as_bytes())))]);
}

#[test]
fn extract_adds_named_groups_as_string_attributes() {
    let mut processor = processor(vec![AttributeActionConfig {
        pattern: "^/api/(?P<version>v[0-9]+)/users/(?P<user_id>[0-9]+)(?P<rest>/.*)?$".into(),
        ..action(ActionKind::Extract, "http.route")
    }]);
    let got = attributes_after(
        &mut processor,
        vec![string_attribute("http.route", "/api/v2/users/42"), string_attribute("user_id", "old")],
    );
    assert_eq!(
        got,
        vec![
            string_attribute("http.route", "/api/v2/users/42"),
            string_attribute("user_id", "42"),
            string_attribute("version", "v2"),
            string_attribute("rest", ""),
        ]
    );
    // A value that does not match, or is not a string, changes nothing.
    assert_eq!(
        attributes_after(&mut processor, vec![key_value("http.route", Value::IntValue(1))]),
        vec![key_value("http.route", Value::IntValue(1))]
    );
}

#[test]
fn untouched_batches_pass_without_a_copy() {
    let mut processor = processor(vec![action(ActionKind::Delete, "absent")]);
    let batch = batch_of(&single_span_request(vec![string_attribute("kept", "yes")]));
    let outputs = run(&mut processor, batch.clone());
    assert_eq!(outputs[0].1.bytes().as_ptr(), batch.bytes().as_ptr());
    assert_eq!(processor.stats().spans_modified, 0);
}

#[test]
fn config_reads_collector_yaml_shapes_and_refuses_what_it_lacks() {
    let parsed: AttributesConfig = serde_json::from_str(
        r#"{"actions": [
            {"key": "db.statement", "action": "delete"},
            {"key": "user.email", "action": "HASH"},
            {"key": "env", "value": "prod", "action": "upsert"},
            {"key": "retries", "value": 3, "action": "insert"},
            {"key": "ratio", "value": 0.5, "action": "insert"}
        ]}"#,
    )
    .unwrap();
    assert!(parsed.validate().is_empty());
    assert_eq!(parsed.actions[1].action, ActionKind::Hash);
    assert_eq!(parsed.actions[3].value, Some(AttributeValue::Int(3)));
    assert_eq!(parsed.actions[4].value, Some(AttributeValue::Double(0.5)));
    let convert: AttributesConfig =
        serde_json::from_str(r#"{"actions": [{"key": "n", "action": "convert", "converted_type": "int"}]}"#).unwrap();
    assert_eq!(convert.validate()[0].path, "actions[0].action");
    let context: AttributesConfig =
        serde_json::from_str(r#"{"actions": [{"key": "t", "action": "insert", "from_context": "metadata.tenant"}]}"#)
            .unwrap();
    assert_eq!(context.validate()[0].path, "actions[0].from_context");
    assert_eq!(AttributesConfig::default().validate()[0].path, "actions");
    let include = serde_json::from_str::<AttributesConfig>(r#"{"actions": [], "include": {"match_type": "strict"}}"#);
    assert!(include.unwrap_err().to_string().contains("include"));
    let unknown_action = serde_json::from_str::<AttributesConfig>(r#"{"actions": [{"key": "k", "action": "rename"}]}"#);
    assert!(unknown_action.unwrap_err().to_string().contains("rename"));
}
