//! # spanpipe-plugin-sdk
//!
//! What a spanpipe plugin library links against. See `docs/PLUGINS.md`.

pub mod abi;

/// Digest of the ABI's type definitions (`src/abi.rs`), computed at build time.
pub const INTERFACE_HASH: u64 = match u64::from_str_radix(env!("SPANPIPE_PLUGIN_INTERFACE_HASH"), 10) {
    Ok(hash) => hash,
    Err(_) => panic!("build.rs writes a decimal hash"),
};

/// This SDK's version.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The compiler that built this SDK, as `rustc --version` prints it.
pub const RUSTC_VERSION: &str = env!("SPANPIPE_PLUGIN_RUSTC_VERSION");
