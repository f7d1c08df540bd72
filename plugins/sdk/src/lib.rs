//! # spanpipe-plugin-sdk
//!
//! What a spanpipe plugin library links against: the stable ABI ([`abi`]), safe traits for the
//! three kinds of plugin ([`Processor`], [`Source`], [`Codec`]) and the macros that export a type
//! implementing one of them ([`export_processor!`], [`export_source!`], [`export_codec!`]). See
//! `docs/PLUGINS.md` for how to write, build and install a plugin.
//!
//! A plugin sees spans as spanpipe does: OTLP protobuf bytes, read through spanpipe-core's
//! borrowed views ([`Batch`], [`Span`]) and written with its [`spanpipe_core::BatchWriter`].
//! Nothing is decoded into owned structs on either side of the boundary.
//!
//! ```
//! use spanpipe_plugin_sdk::{export_processor, Batch, Decisions, Processor};
//!
//! /// Drops spans named "healthz".
//! struct DropHealthChecks;
//!
//! impl Processor for DropHealthChecks {
//!     fn new(_config: &str) -> Result<Self, String> {
//!         Ok(Self)
//!     }
//!
//!     fn process(&mut self, batch: &Batch<'_>, decisions: &mut Decisions<'_>) -> Result<(), String> {
//!         for span in batch.spans().filter(|span| span.name() == "healthz") {
//!             decisions.drop(span.position());
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_processor!(DropHealthChecks, name = "drop-health-checks", version = "1.0.0");
//! ```

pub mod abi;
mod batch;
mod decisions;
mod emitter;
pub mod glue;
mod plugin;
pub mod testing;

pub use batch::{span_ref, span_refs, Batch, EncodedAttribute, Span};
pub use decisions::{AttributeRun, AttributeValue, Decisions, ReplaceError};
pub use emitter::{EmitError, Emitter};
pub use plugin::{Codec, Processor, Source};
/// spanpipe-core, for its views and writer: a plugin names the same version the SDK uses.
pub use spanpipe_core as core;

/// Digest of the ABI's type definitions (`src/abi.rs`), computed at build time.
pub const INTERFACE_HASH: u64 = match u64::from_str_radix(env!("SPANPIPE_PLUGIN_INTERFACE_HASH"), 10) {
    Ok(hash) => hash,
    Err(_) => panic!("build.rs writes a decimal hash"),
};

/// This SDK's version.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The compiler that built this SDK, as `rustc --version` prints it.
pub const RUSTC_VERSION: &str = env!("SPANPIPE_PLUGIN_RUSTC_VERSION");

/// Exports a [`Processor`] type as the library's plugin:
/// `export_processor!(MyProcessor, name = "my-processor", version = "1.0.0");`
///
/// Generates the one symbol the host looks up, `spanpipe_plugin_descriptor`, returning a
/// descriptor in static memory with this SDK's compatibility header and the entry points of
/// [`glue`] for the type. `name` and `version` are `&'static str` constant expressions. A
/// library exports exactly one plugin: a second export in the same library fails to link.
#[macro_export]
macro_rules! export_processor {
    ($plugin:ty, name = $name:expr, version = $version:expr $(,)?) => {
        /// The plugin's descriptor, looked up by the host.
        #[no_mangle]
        pub extern "C" fn spanpipe_plugin_descriptor() -> *const $crate::abi::PluginDescriptor {
            static VTABLE: $crate::abi::ProcessorVTable = $crate::glue::processor_vtable::<$plugin>();
            static DESCRIPTOR: $crate::abi::PluginDescriptor =
                $crate::glue::processor_descriptor($name, $version, &VTABLE);
            &DESCRIPTOR
        }
    };
}

/// Exports a [`Source`] type as the library's plugin:
/// `export_source!(MySource, name = "my-source", version = "1.0.0");` (see [`export_processor!`]).
#[macro_export]
macro_rules! export_source {
    ($plugin:ty, name = $name:expr, version = $version:expr $(,)?) => {
        /// The plugin's descriptor, looked up by the host.
        #[no_mangle]
        pub extern "C" fn spanpipe_plugin_descriptor() -> *const $crate::abi::PluginDescriptor {
            static VTABLE: $crate::abi::SourceVTable = $crate::glue::source_vtable::<$plugin>();
            static DESCRIPTOR: $crate::abi::PluginDescriptor =
                $crate::glue::source_descriptor($name, $version, &VTABLE);
            &DESCRIPTOR
        }
    };
}

/// Exports a [`Codec`] type as the library's plugin:
/// `export_codec!(MyCodec, name = "my-codec", version = "1.0.0");` (see [`export_processor!`]).
/// The content types come from [`Codec::CONTENT_TYPES`], copied into a static table.
#[macro_export]
macro_rules! export_codec {
    ($plugin:ty, name = $name:expr, version = $version:expr $(,)?) => {
        /// The plugin's descriptor, looked up by the host.
        #[no_mangle]
        pub extern "C" fn spanpipe_plugin_descriptor() -> *const $crate::abi::PluginDescriptor {
            const TYPES: &[&str] = <$plugin as $crate::Codec>::CONTENT_TYPES;
            static CONTENT_TYPES: $crate::glue::Shared<[$crate::abi::StrRef; TYPES.len()]> =
                $crate::glue::Shared($crate::glue::str_refs(TYPES));
            static VTABLE: $crate::glue::Shared<$crate::abi::CodecVTable> =
                $crate::glue::Shared($crate::glue::codec_vtable::<$plugin>(&CONTENT_TYPES.0));
            static DESCRIPTOR: $crate::abi::PluginDescriptor =
                $crate::glue::codec_descriptor($name, $version, &VTABLE.0);
            &DESCRIPTOR
        }
    };
}
