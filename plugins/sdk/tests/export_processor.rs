//! `export_processor!` generates the descriptor symbol, and its entry points reach the plugin's
//! code with panics and errors turned into statuses. (One export per test binary: each export
//! defines the same symbol.)

use spanpipe_plugin_sdk::core::{Attributes, BatchWriter, SpanBatch};
use spanpipe_plugin_sdk::{abi, export_processor, testing, Batch, Decisions, Processor};

/// Drops spans named "drop", panics on spans named "panic", fails on spans named "fail", and
/// stamps the rest with `seen = true` while keeping their other attributes.
struct Stamp;

impl Processor for Stamp {
    fn new(config: &str) -> Result<Self, String> {
        if config == "{}" {
            Ok(Self)
        } else {
            Err(format!("unexpected config {config}"))
        }
    }

    fn process(&mut self, batch: &Batch<'_>, decisions: &mut Decisions<'_>) -> Result<(), String> {
        for span in batch.spans() {
            match span.name() {
                "drop" => decisions.drop(span.position()),
                "panic" => panic!("asked to panic by span {}", span.position()),
                "fail" => return Err("asked to fail".to_owned()),
                _ => decisions.replace_attributes_with(span.position(), |run| {
                    span.attribute_fields().for_each(|attribute| run.copy(&attribute));
                    run.writer().bool_attribute("seen", true);
                })?,
            }
        }
        Ok(())
    }
}

export_processor!(Stamp, name = "stamp", version = "0.3.0");

fn batch(names: &[&str]) -> SpanBatch {
    let mut writer = BatchWriter::new();
    writer.resource_spans(|rs| {
        rs.scope_spans(|ss| {
            for (id, name) in (1_u8..).zip(names) {
                ss.span(|s| {
                    s.trace_id(&[id; 16]).span_id(&[id; 8]).name(name).int_attribute("n", i64::from(id));
                });
            }
        });
    });
    writer.finish().expect("valid")
}

fn descriptor() -> &'static abi::PluginDescriptor {
    // SAFETY: the generated function returns a pointer to a static descriptor.
    unsafe { &*spanpipe_plugin_descriptor() }
}

#[test]
fn the_descriptor_describes_this_processor_and_this_sdk() {
    let descriptor = descriptor();
    let compatibility = descriptor.compatibility;
    assert_eq!(compatibility.magic, abi::DESCRIPTOR_MAGIC);
    assert_eq!(compatibility.abi_version, abi::ABI_VERSION);
    assert_eq!(compatibility.interface_hash, spanpipe_plugin_sdk::INTERFACE_HASH);
    // SAFETY: the descriptor's strings are static.
    unsafe {
        assert_eq!(testing::text(compatibility.sdk_version), spanpipe_plugin_sdk::SDK_VERSION);
        assert_eq!(testing::text(compatibility.rustc_version), spanpipe_plugin_sdk::RUSTC_VERSION);
        assert_eq!(
            (testing::text(descriptor.name), testing::text(descriptor.version)),
            ("stamp".into(), "0.3.0".into())
        );
    }
    assert_eq!(descriptor.kind, abi::KIND_PROCESSOR);
    assert!(!descriptor.processor.is_null() && descriptor.source.is_null() && descriptor.codec.is_null());
}

#[test]
fn drops_and_replacements_reach_the_host() {
    let mut processor = testing::processor(descriptor(), "{}").expect("created");
    let processed = processor.process(&batch(&["keep", "drop"])).expect("processed");
    assert_eq!(processed.keep, [true, false]);
    let stamped: Vec<_> = processed
        .replaced_attributes(0)
        .expect("span 0 replaced")
        .map(|kv| (kv.key, format!("{:?}", kv.value)))
        .collect();
    assert_eq!(stamped, [("n", "Int(1)".to_owned()), ("seen", "Bool(true)".to_owned())]);
    assert!(processed.replaced_attributes(1).is_none());
}

#[test]
fn a_panic_is_status_panic_with_its_message_and_ends_the_instance() {
    let mut processor = testing::processor(descriptor(), "{}").expect("created");
    let failure = processor.process(&batch(&["keep", "panic"])).expect_err("panicked");
    assert_eq!(failure, testing::Failure { status: abi::STATUS_PANIC, message: "asked to panic by span 1".into() });
    let after = processor.process(&batch(&["keep"])).expect_err("no call after a panic");
    assert_eq!(after.status, abi::STATUS_ERROR);
}

#[test]
fn errors_are_status_error_with_their_message() {
    let failure = testing::processor(descriptor(), "{\"x\": 1}").expect_err("config refused");
    assert_eq!(failure, testing::Failure { status: abi::STATUS_ERROR, message: "unexpected config {\"x\": 1}".into() });
    let mut processor = testing::processor(descriptor(), "{}").expect("created");
    let failure = processor.process(&batch(&["fail"])).expect_err("failed");
    assert_eq!(failure, testing::Failure { status: abi::STATUS_ERROR, message: "asked to fail".into() });
    assert!(processor.process(&batch(&["keep"])).is_ok(), "an error does not end the instance");
}
