//! `export_source!` generates the descriptor symbol, and each cycle's requests reach the host.

use spanpipe_plugin_sdk::core::{Attributes, BatchWriter};
use spanpipe_plugin_sdk::{abi, export_source, testing, Emitter, Source};

/// Emits one span per cycle, numbered; fails on the third cycle.
struct Counter {
    cycle: i64,
}

impl Source for Counter {
    fn new(_config: &str) -> Result<Self, String> {
        Ok(Self { cycle: 0 })
    }

    fn emit(&mut self, out: &mut Emitter<'_>) -> Result<(), String> {
        self.cycle += 1;
        if self.cycle == 3 {
            return Err("third cycle".to_owned());
        }
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.scope_spans(|ss| {
                ss.span(|s| {
                    s.trace_id(&[7; 16]).span_id(&[9; 8]).name("tick").int_attribute("cycle", self.cycle);
                });
            });
        });
        Ok(out.push(writer)?)
    }
}

export_source!(Counter, name = "counter", version = "1.0.0");

#[test]
fn each_cycle_pushes_its_request_and_errors_are_reported() {
    // SAFETY: the generated function returns a pointer to a static descriptor.
    let descriptor = unsafe { &*spanpipe_plugin_descriptor() };
    assert_eq!(descriptor.kind, abi::KIND_SOURCE);
    assert!(descriptor.processor.is_null() && !descriptor.source.is_null() && descriptor.codec.is_null());
    let mut source = testing::source(descriptor, "{}").expect("created");
    for cycle in 1..=2 {
        let requests = source.emit().expect("emitted");
        assert_eq!(requests.len(), 1);
        let span = requests[0].span(0).expect("one span");
        assert_eq!(span.attributes().get("cycle").map(|v| format!("{v:?}")), Some(format!("Int({cycle})")));
    }
    assert_eq!(source.emit().expect_err("third").message, "third cycle");
}
