//! Processors by name: reading configs, JSON Schemas, validation errors, per-core building and
//! dispatch through [`BuiltinProcessor`].

mod common;

use std::time::{Duration, Instant};

use common::{batch_of, request_of, span};
use spanpipe_core::SpanBatch;
use spanpipe_processors::{
    BatchConfig, BuildError, BuiltinProcessor, Output, Processor, ProcessorBuilder, ProcessorConfig, ProcessorKind,
    ProcessorStats, Route,
};

#[test]
fn component_ids_name_their_kind() {
    assert_eq!(ProcessorKind::from_component_id("batch"), Some(ProcessorKind::Batch));
    assert_eq!(ProcessorKind::from_component_id("batch/large"), Some(ProcessorKind::Batch));
    assert_eq!(ProcessorKind::from_component_id("memory_limiter"), Some(ProcessorKind::MemoryLimiter));
    assert_eq!(ProcessorKind::from_component_id("tail_sampling"), None);
    for kind in ProcessorKind::ALL {
        assert_eq!(ProcessorKind::from_component_id(kind.name()), Some(kind));
    }
}

#[test]
fn empty_configs_read_as_the_defaults_and_schemas_refuse_unknown_keys() {
    for kind in ProcessorKind::ALL {
        let parsed = kind.deserialize_config(serde_json::json!({})).unwrap();
        assert_eq!(parsed, kind.default_config(), "{}", kind.name());
        assert_eq!(parsed.kind(), kind);
        let unknown = kind.deserialize_config(serde_json::json!({"no_such_key": 1})).unwrap_err();
        assert!(unknown.to_string().contains("no_such_key"), "{}: {unknown}", kind.name());
        let mut generator = schemars::SchemaGenerator::default();
        let reference = kind.json_schema(&mut generator);
        let definitions = generator.definitions();
        let name =
            reference.get("$ref").and_then(|value| value.as_str()).expect("a named schema").rsplit('/').next().unwrap();
        let schema = &definitions[name];
        assert_eq!(schema["additionalProperties"], serde_json::json!(false), "{}", kind.name());
    }
    let mut generator = schemars::SchemaGenerator::default();
    let reference = ProcessorKind::Batch.json_schema(&mut generator);
    assert_eq!(reference.get("$ref"), Some(&serde_json::json!("#/$defs/BatchConfig")));
    let batch = &generator.definitions()["BatchConfig"];
    assert_eq!(batch["properties"]["send_batch_size"]["default"], serde_json::json!(8192));
    assert_eq!(batch["properties"]["timeout"]["default"], serde_json::json!("200ms"));
}

#[test]
fn builders_validate_once_and_report_every_problem() {
    let invalid =
        ProcessorConfig::Batch(BatchConfig { send_batch_size: 10, send_batch_max_size: 5, ..BatchConfig::default() });
    let error = ProcessorBuilder::new(&invalid).unwrap_err();
    assert!(matches!(&error, BuildError::Invalid { kind: "batch", errors } if errors[0].path == "send_batch_max_size"));
    assert!(error.to_string().contains("send_batch_max_size"), "{error}");
    let limiter = ProcessorKind::MemoryLimiter.default_config();
    assert!(matches!(ProcessorBuilder::new(&limiter), Err(BuildError::Invalid { .. })));
    let valid_limiter = ProcessorKind::MemoryLimiter
        .deserialize_config(serde_json::json!({"check_interval": "1s", "limit_mib": 100}))
        .unwrap();
    assert!(matches!(ProcessorBuilder::new(&valid_limiter), Err(BuildError::AdmissionControl)));
}

#[test]
fn built_instances_are_independent_and_dispatch_through_the_enum() {
    let config = ProcessorConfig::Batch(BatchConfig { send_batch_size: 100, ..BatchConfig::default() });
    let builder = ProcessorBuilder::new(&config).unwrap();
    let mut core_a = builder.build();
    let mut core_b = builder.build();
    let now = Instant::now();
    let mut out = Output::new();
    core_a.process(batch_of(&request_of("svc", vec![span([1; 16], 1)])), now, &mut out);
    assert!(out.is_empty());
    assert_eq!(core_a.next_deadline(), Some(now + Duration::from_millis(200)));
    assert_eq!(core_b.next_deadline(), None);
    core_a.tick(now + Duration::from_millis(200), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(core_a.stats().spans_out, 1);
    assert_eq!(core_b.stats().spans_in, 0);
    let mut total = ProcessorStats::default();
    total.add(core_a.stats());
    total.add(core_b.stats());
    assert_eq!(total.spans_in, 1);
    core_b.flush(&mut out);
    assert_eq!(out.len(), 1);
}

/// A processor from outside the crate: duplicates every batch to the default route.
#[derive(Debug, Default)]
struct Duplicate {
    stats: ProcessorStats,
}

impl Processor for Duplicate {
    fn process(&mut self, batch: SpanBatch, _now: Instant, out: &mut Output) {
        out.push_routed(Route::Default, batch.clone());
        out.push(batch);
    }

    fn stats(&self) -> &ProcessorStats {
        &self.stats
    }
}

#[test]
fn custom_processors_plug_in() {
    let mut custom = BuiltinProcessor::Custom(Box::new(Duplicate::default()));
    let mut out = Output::new();
    custom.process(batch_of(&request_of("svc", vec![span([1; 16], 1)])), Instant::now(), &mut out);
    let routes: Vec<Route> = out.drain().map(|routed| routed.route).collect();
    assert_eq!(routes, [Route::Default, Route::Continue]);
    assert_eq!(custom.next_deadline(), None);
}
