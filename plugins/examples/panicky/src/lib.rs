//! Example processor plugin that panics when a span asks it to: what the host's panic isolation
//! is tested with.
//!
//! Config: `{"panic_on_attribute": "plugin.panic"}` (the default). A batch with a span whose
//! attribute of that name is `true` (bool or string) makes the plugin panic with
//! `panicky: asked to panic by span <span id hex>`; every other batch is kept as it is.

use serde::Deserialize;
use spanpipe_plugin_sdk::core::AnyValueView;
use spanpipe_plugin_sdk::{export_processor, Batch, Decisions, Processor};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// The attribute that triggers the panic. Defaults to `plugin.panic`.
    panic_on_attribute: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { panic_on_attribute: "plugin.panic".to_owned() }
    }
}

/// The panicking processor.
#[derive(Debug)]
struct Panicky {
    config: Config,
}

impl Processor for Panicky {
    fn new(config: &str) -> Result<Self, String> {
        let config = serde_json::from_str(config).map_err(|e| format!("invalid panicky config: {e}"))?;
        Ok(Self { config })
    }

    fn process(&mut self, batch: &Batch<'_>, _decisions: &mut Decisions<'_>) -> Result<(), String> {
        for span in batch.spans() {
            let asked = match span.attribute(&self.config.panic_on_attribute) {
                Some(AnyValueView::Bool(flag)) => flag,
                Some(AnyValueView::String(text)) => text == "true",
                _ => false,
            };
            if asked {
                panic!("panicky: asked to panic by span {}", hex::encode(span.span_id()));
            }
        }
        Ok(())
    }
}

export_processor!(Panicky, name = "panicky", version = "1.0.0");

#[cfg(test)]
mod tests {
    use spanpipe_plugin_sdk::core::{Attributes, BatchWriter, SpanBatch};
    use spanpipe_plugin_sdk::{abi, testing};

    use super::*;

    fn batch(flag: impl Fn(&mut spanpipe_plugin_sdk::core::SpanWriter<'_>)) -> SpanBatch {
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.scope_spans(|ss| {
                ss.span(|s| {
                    s.trace_id(&[1; 16]).span_id(&[0xab; 8]);
                    flag(s);
                });
            });
        });
        writer.finish().expect("valid")
    }

    #[test]
    fn panics_only_when_a_span_asks() {
        // SAFETY: the generated function returns a pointer to a static descriptor.
        let descriptor = unsafe { &*spanpipe_plugin_descriptor() };
        let mut processor = testing::processor(descriptor, "{}").expect("created");
        assert_eq!(processor.process(&batch(|s| s.bool_attribute("plugin.panic", false))).expect("kept").keep, [true]);
        assert_eq!(processor.process(&batch(|s| s.str_attribute("plugin.panic", "yes"))).expect("kept").keep, [true]);
        for asking in
            [batch(|s| s.bool_attribute("plugin.panic", true)), batch(|s| s.str_attribute("plugin.panic", "true"))]
        {
            let mut processor = testing::processor(descriptor, "{}").expect("created");
            let failure = processor.process(&asking).expect_err("panicked");
            assert_eq!(failure.status, abi::STATUS_PANIC);
            assert_eq!(failure.message, "panicky: asked to panic by span abababababababab");
        }
    }
}
