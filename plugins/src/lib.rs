//! # spanpipe-plugins
//!
//! Extends spanpipe at run time with shared libraries: processors, sources and codecs compiled
//! against the plugin SDK (`spanpipe-plugin-sdk`) and its stable `repr(C)` ABI.
//!
//! ## Pieces
//!
//! - [`load()`] opens a library (from a private copy) and checks its descriptor — magic, ABI
//!   version, interface hash, SDK version, compiler version, in that order — before anything else
//!   of it runs. A refusal is a typed [`LoadError`] naming the field, expected and found.
//! - [`PluginRegistry`] holds the current version of every plugin by name, with a generation
//!   number; data-plane cores read it without locks.
//! - [`PluginHost`] loads the plugin directory at start and watches it (inotify): complete new
//!   or replaced files are loaded and published, removed ones retired.
//! - [`PluginProcessor`] is a pipeline stage ([`spanpipe_processors::Processor`], one per core),
//!   [`PluginSource`] a timer-driven source, [`PluginCodec`] a [`spanpipe_codecs::Codec`].
//! - Everything that happens is a [`PluginEvent`], logged and handed to the caller's
//!   [`EventSink`].
//!
//! ## Isolation, and its limits
//!
//! A plugin runs in the collector's process, on the core's thread: it is as fast as built-in code
//! and exactly as able to corrupt memory. What the host isolates is what the ABI makes
//! recoverable. A panic never unwinds into the host (the SDK turns it into `STATUS_PANIC`); the
//! instance is destroyed, restarted after an exponential backoff, and the batch passes through or
//! is dropped as the stage's `on_failure` says. Repeated failures open a circuit breaker that
//! bypasses the plugin for a cool-down, then lets one trial call decide. A CPU budget per call,
//! measured on the thread's CPU clock, cuts off a plugin that is too slow (it cannot be
//! interrupted mid-call; consecutive overruns open the breaker). Threads a plugin leaves running
//! after its instance is destroyed are noticed and reported. A segfault or an abort takes the
//! process down; that needs process isolation, which this design trades for zero-copy speed.
//!
//! ## Swapping versions
//!
//! Each stage instance compares the registry's generation for its plugin with the one it runs, at
//! every batch (a source: every cycle). When they differ it creates an instance of the new version
//! and destroys the old one there — so each batch is processed by exactly one version, and none is
//! lost. The old library stays mapped until the last instance made from it is gone (reference
//! counting through `Arc`), so no code is unmapped under a running call.

mod codec;
mod error;
mod events;
mod failure;
mod ffi;
mod host;
mod load;
mod processor;
mod registry;
mod source;
mod supervisor;

pub use codec::PluginCodec;
pub use error::{CallError, CompatibilityField, HostError, LoadError};
pub use events::{EventSink, PluginEvent, TripReason};
pub use failure::{Backoff, BackoffConfig, BreakerConfig, BreakerState, CircuitBreaker, FailureConfig, OnFailure};
pub use ffi::{thread_count, thread_cpu_time};
pub use host::{PluginHost, PluginHostConfig};
pub use load::{default_state_dir, load, LoadedPlugin, PluginKind};
pub use processor::{PluginProcessor, PluginStageConfig, PluginStageStats};
pub use registry::{PluginRegistry, Published};
pub use source::{PluginSource, PluginSourceConfig, PluginSourceStats};
pub use supervisor::FailureStats;
