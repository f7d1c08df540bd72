//! What the plugin host's tests share: a registry that records its events, and batches to feed
//! the plugins.

#![allow(dead_code)] // Each test file uses its own part of this module.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spanpipe_core::{Attributes, BatchWriter, SpanBatch};
use spanpipe_plugin_testing::{shared_examples, ExamplePlugins};
use spanpipe_plugins::{PluginEvent, PluginRegistry};

/// The attribute the `redact` example stamps on every span it handles.
pub const REDACT_VERSION_KEY: &str = "spanpipe.plugin.redact.version";

/// A registry whose events are kept for the test to inspect.
pub struct Recorded {
    pub registry: Arc<PluginRegistry>,
    pub events: Arc<Mutex<Vec<PluginEvent>>>,
}

impl Recorded {
    pub fn new() -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let registry = Arc::new(PluginRegistry::new(Arc::new(move |event| sink.lock().unwrap().push(event))));
        Self { registry, events }
    }

    pub fn events(&self) -> Vec<PluginEvent> {
        self.events.lock().unwrap().clone()
    }

    pub fn count(&self, matches: impl Fn(&PluginEvent) -> bool) -> usize {
        self.events.lock().unwrap().iter().filter(|event| matches(event)).count()
    }
}

/// The examples at their default version (`redact` is "1.0.0").
pub fn examples() -> &'static ExamplePlugins {
    shared_examples()
}

/// The examples built with version "2.0.0".
pub fn examples_v2() -> &'static ExamplePlugins {
    spanpipe_plugin_testing::shared_examples_v2()
}

/// A batch of `count` spans of service `checkout`, each with the string attributes given, trace
/// ids spread over the id space (for the sampler) and span ids 1, 2, …
pub fn batch(count: usize, attributes: &[(&str, &str)]) -> SpanBatch {
    batch_with(count, |writer, _| {
        for (key, value) in attributes {
            writer.str_attribute(key, value);
        }
    })
}

/// A batch whose span `position` gets `plugin.panic = true` (what the `panicky` example panics on).
pub fn panicking_batch(count: usize, position: usize) -> SpanBatch {
    batch_with(count, |writer, index| {
        if index == position {
            writer.attribute("plugin.panic", |value| value.bool(true));
        }
    })
}

fn batch_with(count: usize, mut attributes: impl FnMut(&mut spanpipe_core::SpanWriter<'_>, usize)) -> SpanBatch {
    let mut writer = BatchWriter::new();
    writer.resource_spans(|resource_spans| {
        resource_spans.resource(|resource| resource.str_attribute("service.name", "checkout"));
        resource_spans.scope_spans(|scope_spans| {
            for index in 0..count {
                scope_spans.span(|span| {
                    let mut trace_id = [1u8; 16];
                    let spread = (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    trace_id[..8].copy_from_slice(&spread.to_be_bytes());
                    let mut span_id = [0u8; 8];
                    span_id.copy_from_slice(&(index as u64 + 1).to_be_bytes());
                    span.trace_id(&trace_id)
                        .span_id(&span_id)
                        .name("GET /cart")
                        .start_time_unix_nano(1_700_000_000_000_000_000)
                        .end_time_unix_nano(1_700_000_000_000_500_000);
                    attributes(span, index);
                });
            }
        });
    });
    writer.finish().expect("the writer's batches scan")
}

/// The string value of attribute `key` of every span of `batch`.
pub fn attribute_values(batch: &SpanBatch, key: &str) -> Vec<Option<String>> {
    batch.spans().map(|span| span.attributes().get(key).and_then(|value| value.as_str().map(str::to_owned))).collect()
}

/// Waits (polling, up to `limit`) until `condition` holds; returns whether it did.
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}
