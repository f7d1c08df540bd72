//! The traits a plugin implements, one per kind.
//!
//! Each is built from its config, the JSON text of its section in spanpipe's config (`{}` when
//! there is none), and its calls return `Err(message)` to refuse their input: the SDK hands the
//! message to the host with [`crate::abi::STATUS_ERROR`]. A panic is caught by the SDK and
//! reported as [`crate::abi::STATUS_PANIC`]; the host then destroys the instance and never calls
//! it again, so a panic is for bugs, an `Err` for bad input.
//!
//! The host creates one instance per core (one for a source) and calls each from one thread at a
//! time, so `&mut self` needs no locking; it may create and call an instance on different threads,
//! hence `Send`.

use crate::{Batch, Decisions, Emitter};

/// Sees each batch and decides per span: keep or drop, and replace attributes.
pub trait Processor: Send + Sized + 'static {
    /// Builds an instance from its config (JSON text).
    ///
    /// # Errors
    /// A message naming what is wrong with the config.
    fn new(config: &str) -> Result<Self, String>;

    /// Decides about one batch. Spans are kept and unchanged unless `decisions` says otherwise.
    ///
    /// # Errors
    /// A message saying why the batch could not be processed; what the host does with the batch
    /// then is its policy (`docs/PLUGINS.md`, "How spanpipe runs plugins"). Decisions recorded
    /// before the error may be ignored.
    fn process(&mut self, batch: &Batch<'_>, decisions: &mut Decisions<'_>) -> Result<(), String>;
}

/// Emits spans on an interval the host sets.
pub trait Source: Send + Sized + 'static {
    /// Builds an instance from its config (JSON text).
    ///
    /// # Errors
    /// A message naming what is wrong with the config.
    fn new(config: &str) -> Result<Self, String>;

    /// One cycle: pushes what the source has (possibly nothing) into `out`.
    ///
    /// # Errors
    /// A message saying why the cycle failed; requests already pushed were handed over.
    fn emit(&mut self, out: &mut Emitter<'_>) -> Result<(), String>;
}

/// Decodes a wire format into spans for receivers, and encodes batches into it for exporters.
pub trait Codec: Send + Sized + 'static {
    /// The MIME types this codec answers to, lower case (e.g. `application/x-acme-spans`). A
    /// constant rather than a method because the host reads them from the plugin's descriptor,
    /// in static memory, before it creates any instance.
    const CONTENT_TYPES: &'static [&'static str];

    /// Builds an instance from its config (JSON text).
    ///
    /// # Errors
    /// A message naming what is wrong with the config.
    fn new(config: &str) -> Result<Self, String>;

    /// Decodes one request body, pushing one or more OTLP requests into `out`.
    ///
    /// # Errors
    /// A message saying where the body is malformed; the receiver answers the client with it.
    fn decode(&mut self, body: &[u8], out: &mut Emitter<'_>) -> Result<(), String>;

    /// Encodes `batch` by appending to `out` (empty on entry).
    ///
    /// # Errors
    /// A message; nothing written is sent.
    fn encode(&mut self, batch: &Batch<'_>, out: &mut Vec<u8>) -> Result<(), String>;
}
