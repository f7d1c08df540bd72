//! Example plugin built to be refused: its descriptor is written by hand, not by the export
//! macro, with every field right but the interface hash. The host must refuse it from the
//! compatibility header alone, without calling anything else in the library.

use spanpipe_plugin_sdk::abi::{Compatibility, PluginDescriptor, ProcessorVTable};
use spanpipe_plugin_sdk::{glue, Batch, Decisions, Processor, INTERFACE_HASH};

/// A processor that keeps everything; the host should never get to create it.
#[derive(Debug)]
struct KeepAll;

impl Processor for KeepAll {
    fn new(_config: &str) -> Result<Self, String> {
        Ok(Self)
    }

    fn process(&mut self, _batch: &Batch<'_>, _decisions: &mut Decisions<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// The hash a plugin built against a different ABI would carry.
const WRONG_INTERFACE_HASH: u64 = INTERFACE_HASH ^ 0xdead_beef;

static VTABLE: ProcessorVTable = glue::processor_vtable::<KeepAll>();

static DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    compatibility: Compatibility { interface_hash: WRONG_INTERFACE_HASH, ..glue::compatibility() },
    ..glue::processor_descriptor("mismatched", "1.0.0", &VTABLE)
};

/// The descriptor, looked up by the host.
#[no_mangle]
pub extern "C" fn spanpipe_plugin_descriptor() -> *const PluginDescriptor {
    &DESCRIPTOR
}

#[cfg(test)]
mod tests {
    use spanpipe_plugin_sdk::{abi, testing};

    use super::*;

    #[test]
    fn only_the_interface_hash_is_wrong() {
        // SAFETY: the function returns a pointer to a static descriptor.
        let descriptor = unsafe { &*spanpipe_plugin_descriptor() };
        let right = glue::compatibility();
        let ours = descriptor.compatibility;
        assert_ne!(ours.interface_hash, INTERFACE_HASH);
        assert_eq!((ours.magic, ours.abi_version), (right.magic, right.abi_version));
        // SAFETY: the strings are static.
        unsafe {
            assert_eq!(testing::text(ours.sdk_version), testing::text(right.sdk_version));
            assert_eq!(testing::text(ours.rustc_version), testing::text(right.rustc_version));
        }
        assert_eq!(descriptor.kind, abi::KIND_PROCESSOR);
        assert!(!descriptor.processor.is_null());
    }
}
