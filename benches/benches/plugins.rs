//! What running a processor as a plugin costs: the `redact` example plugin (plugins/examples,
//! built here in the release profile and loaded with the plugin host) as a pipeline stage, against
//! the same processing compiled into spanpipe as a built-in processor would be written — the
//! same attributes replaced and stamped, the same re-framing — on the same realistic batches.
//!
//! The plugin path pays what the boundary adds: the span table handed across, the calls through
//! function pointers, the SDK's views re-reading the bytes, the replacement runs copied back into
//! host memory, the supervisor's bookkeeping and the thread CPU clock read around each call.
//! Setup checks that both produce identical bytes, so the two measure the same work.
//!
//! Run: `cargo bench -p spanpipe-benches --bench plugins` (`-- --warm-up-time 1
//! --measurement-time 3` on a shared machine). Under `cargo test` the examples are built in the
//! debug profile (shared with the tests) and each benchmark runs once.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use spanpipe_core::wire::Fields;
use spanpipe_core::{Attributes, SpanAttributesWriter, SpanBatch};
use spanpipe_plugin_testing::{build_examples_with, shared_examples, shared_target_dir, Profile};
use spanpipe_plugins::{load, PluginProcessor, PluginRegistry, PluginStageConfig};
use spanpipe_processors::{Output, Processor, ProcessorStats, Rebuild, SpanEdit};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What the redact example is configured with: keys the realistic spans carry.
const REDACTED_KEYS: [&str; 2] = ["url.full", "user_agent.original"];
const REPLACEMENT: &str = "***";
/// The stamp the example adds; its value is the example's default version.
const VERSION_KEY: &str = "spanpipe.plugin.redact.version";
const VERSION: &str = "1.0.0";
/// `Span.attributes`.
const SPAN_ATTRIBUTES: u32 = 9;

/// The redact example's processing written as a built-in processor: core views and the
/// processors' rebuild, no boundary.
#[derive(Debug, Default)]
struct CompiledRedact {
    stats: ProcessorStats,
    attributes: Vec<u8>,
}

impl Processor for CompiledRedact {
    fn process(&mut self, batch: SpanBatch, _now: Instant, out: &mut Output) {
        let mut rebuild = Rebuild::with_capacity(batch.len());
        for span in batch.spans() {
            let body = span.encoded();
            self.attributes.clear();
            for (field, key_value) in Fields::new(body)
                .filter(|field| field.number == SPAN_ATTRIBUTES)
                .map(|field| &body[field.whole])
                .zip(span.attributes())
            {
                let key = key_value.key;
                if key == VERSION_KEY {
                    continue;
                }
                if REDACTED_KEYS.contains(&key) {
                    SpanAttributesWriter::new(&mut self.attributes).str_attribute(key, REPLACEMENT);
                } else {
                    self.attributes.extend_from_slice(field);
                }
            }
            SpanAttributesWriter::new(&mut self.attributes).str_attribute(VERSION_KEY, VERSION);
            rebuild.replace(body, SpanEdit { attributes: Some(&self.attributes), ..SpanEdit::default() });
        }
        if let Ok(rebuilt) = rebuild.finish(&batch) {
            out.push(rebuilt);
        }
    }

    fn stats(&self) -> &ProcessorStats {
        &self.stats
    }
}

/// The redact example loaded into a registry, as the host's watcher would publish it.
fn plugin_stage() -> PluginProcessor {
    let measuring = std::env::args().any(|argument| argument == "--bench");
    let redact = if measuring {
        let target = std::path::PathBuf::from(format!("{}-release", shared_target_dir().display()));
        build_examples_with(&target, None, Profile::Release)
            .unwrap_or_else(|error| panic!("building the examples: {error}"))
            .redact
    } else {
        shared_examples().redact.clone()
    };
    let state = std::env::temp_dir().join(format!("spanpipe-plugin-bench-{}", std::process::id()));
    let registry = Arc::new(PluginRegistry::new(Arc::new(|_| {})));
    registry.publish(load(&redact, &state).unwrap_or_else(|error| panic!("loading {}: {error}", redact.display())));
    let config = PluginStageConfig {
        config_json: format!(r#"{{"keys": {REDACTED_KEYS:?}, "replacement": "{REPLACEMENT}"}}"#),
        ..PluginStageConfig::new("redact")
    };
    PluginProcessor::new(&config, registry)
}

/// Runs one batch through `processor`; the batch it emitted.
fn run(processor: &mut impl Processor, batch: &SpanBatch, output: &mut Output) -> SpanBatch {
    processor.process(batch.clone(), Instant::now(), output);
    let mut emitted = output.drain();
    let batch = emitted.next().expect("one batch emitted").batch;
    assert!(emitted.next().is_none(), "one batch emitted");
    batch
}

fn plugin_call(c: &mut Criterion) {
    let mut plugin = plugin_stage();
    let mut compiled = CompiledRedact::default();
    let mut output = Output::new();
    let mut group = c.benchmark_group("plugin_processor");
    for spans in [1usize, 100, 1000] {
        let batch = SpanBatch::decode(Bytes::from(spanpipe_testkit::realistic::encoded(spans, 11)))
            .expect("the testkit request indexes");
        let from_plugin = run(&mut plugin, &batch, &mut output);
        let from_compiled = run(&mut compiled, &batch, &mut output);
        assert_eq!(from_plugin.bytes(), from_compiled.bytes(), "both do the same work ({spans} spans)");
        let stamped = from_plugin.spans().filter(|span| span.attributes().any(|kv| kv.key == VERSION_KEY)).count();
        assert_eq!(stamped, spans, "the plugin ran on every span");

        group.throughput(Throughput::Elements(spans as u64));
        group.bench_function(BenchmarkId::new("compiled_in", spans), |b| {
            b.iter(|| black_box(run(&mut compiled, &batch, &mut output)));
        });
        group.bench_function(BenchmarkId::new("plugin", spans), |b| {
            b.iter(|| black_box(run(&mut plugin, &batch, &mut output)));
        });
    }
    group.finish();
}

criterion_group!(benches, plugin_call);
criterion_main!(benches);
