//! The generated JSON Schema: its shape, and that it accepts what the loader accepts and
//! refuses unknown keys, checked with an independent validator (the `jsonschema` crate).

mod common;

use common::{fixture, registry};
use serde_json::{json, Value};
use spanpipe_config::Loader;

fn schema() -> Value {
    registry().json_schema().to_value()
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&schema()).expect("the generated schema is a valid draft 2020-12 schema")
}

fn lookup(name: &str) -> Option<String> {
    match name {
        "BATCH_SIZE" => Some("1024".to_owned()),
        "DEPLOYMENT" => Some("production".to_owned()),
        // Not a numeric text: JSON has to pick a type where the loader lets the key decide.
        "TENANT" => Some("acme".to_owned()),
        _ => None,
    }
}

/// The document as the schema sees it (after environment expansion, scalars typed).
fn as_json(text: &str) -> Value {
    let registry = registry();
    let json = Loader::new(&registry).with_env(lookup).document_as_json(text).unwrap_or_else(|e| panic!("{e}"));
    json
}

fn schema_errors(text: &str) -> Vec<String> {
    validator().iter_errors(&as_json(text)).map(|error| format!("{}: {error}", error.instance_path())).collect()
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

#[test]
fn sections_match_registered_types_by_pattern() {
    let schema = schema();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["additionalProperties"], false);
    let receivers = &schema["properties"]["receivers"];
    assert_eq!(receivers["additionalProperties"], false);
    assert_eq!(receivers["type"], json!(["object", "null"]));
    let patterns: Vec<&String> = receivers["patternProperties"].as_object().unwrap().keys().collect();
    assert_eq!(patterns, ["^otlp(/.+)?$"]);
    let exporter_patterns: Vec<&String> =
        schema["properties"]["exporters"]["patternProperties"].as_object().unwrap().keys().collect();
    assert_eq!(exporter_patterns, ["^debug(/.+)?$", "^otlp(/.+)?$"]);
    // The otlp receiver and the otlp exporter are different types with different schemas.
    let receiver_ref = &receivers["patternProperties"]["^otlp(/.+)?$"]["$ref"];
    let exporter_ref = &schema["properties"]["exporters"]["patternProperties"]["^otlp(/.+)?$"]["$ref"];
    assert_ne!(receiver_ref, exporter_ref);
    let service = schema["properties"]["service"]["$ref"].as_str().unwrap().trim_start_matches("#/$defs/");
    let pipelines = &schema["$defs"][service]["properties"]["pipelines"];
    assert!(pipelines["patternProperties"]["^traces(/.+)?$"].is_object(), "{pipelines}");
    assert_eq!(pipelines["additionalProperties"], false);
    // Field docs and defaults reach the schema.
    let batch = schema["$defs"]["BatchConfig"]["properties"]["send_batch_size"].clone();
    assert_eq!(batch["description"], "Defaults to 8192.");
}

#[test]
fn accepts_collector_configs() {
    for (name, text) in [
        ("collector_minimal.yaml", read("collector_minimal.yaml")),
        ("collector_full.yaml", read("collector_full.yaml")),
    ] {
        assert_eq!(schema_errors(&text), Vec::<String>::new(), "{name}");
        let registry = registry();
        let loaded = Loader::new(&registry).with_env(lookup).load_str(&text);
        assert!(loaded.is_ok(), "{name} also loads: {loaded:?}");
    }
}

#[test]
fn accepts_empty_bodies_where_the_loader_takes_defaults() {
    let text = "receivers:\n  otlp:\n    protocols:\n      grpc:\nprocessors:\n  batch:\n  attributes:\n    actions:\nexporters:\n  debug:\nextensions:\nconnectors:\nservice:\n  telemetry:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      processors:\n      exporters: [debug]\n";
    assert_eq!(schema_errors(text), Vec::<String>::new());
}

#[test]
fn refuses_unknown_keys_types_and_signals() {
    let valid = read("collector_minimal.yaml");
    let cases = [
        ("top-level key", valid.replacen("processors:", "procesors:", 1), ""),
        (
            "component key",
            valid.replace("      grpc:\n", "      grpc:\n        endpiont: x\n"),
            "/receivers/otlp/protocols/grpc",
        ),
        ("component type", valid.replace("  batch:\n", "  batch:\n  tail_sampling:\n"), "/processors"),
        ("service key", format!("{valid}  worker_threads: 4\n"), "/service"),
        (
            "pipeline key",
            valid.replace("      exporters: [debug]\n", "      exporters: [debug]\n      connectors: [x]\n"),
            "/service/pipelines/traces",
        ),
        ("signal", format!("{valid}    metrics:\n      receivers: [otlp]\n"), "/service/pipelines"),
        ("connector", format!("connectors:\n  forward:\n{valid}"), "/connectors"),
        (
            "value type",
            valid.replace("  batch:\n", "  batch:\n    send_batch_size: lots\n"),
            "/processors/batch/send_batch_size",
        ),
        ("enum value", valid.replace("  debug:\n", "  debug:\n    verbosity: loud\n"), "/exporters/debug/verbosity"),
        (
            "component id",
            valid.replace("receivers: [otlp]", "receivers: [\"otlp/\"]"),
            "/service/pipelines/traces/receivers/0",
        ),
    ];
    for (what, text, instance_path) in cases {
        let errors = schema_errors(&text);
        assert!(!errors.is_empty(), "{what}: the schema should refuse it");
        assert!(errors.iter().any(|error| error.starts_with(&format!("{instance_path}:"))), "{what}: {errors:#?}");
        let registry = registry();
        assert!(Loader::new(&registry).load_str(&text).is_err(), "{what}: the loader refuses it too");
    }
}
