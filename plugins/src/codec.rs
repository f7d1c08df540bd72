//! A [`Codec`] backed by a codec plugin.
//!
//! One `PluginCodec` serves every core (the `Codec` trait is `Send + Sync`), while the ABI lets
//! an instance be called by one thread at a time. So the codec keeps idle instances in a pool:
//! a call takes one (creating one when none is idle), uses it alone, and gives it back. The pool
//! grows to the number of threads that decode at once and no further. An instance that panics is
//! destroyed instead of being given back.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use spanpipe_codecs::{Codec, CodecError};
use spanpipe_core::SpanBatch;
use spanpipe_plugin_sdk::abi::{BatchRef, BytesRef, SpanRef};

use crate::error::CallError;
use crate::events::{EventSink, PluginEvent};
use crate::ffi::{byte_sink, with_message_sink, Instance, RequestCollector};
use crate::load::{EntryPoints, LoadedPlugin, PluginKind};
use spanpipe_plugin_sdk::span_ref;

/// Content types as `&'static str`, which [`Codec::content_types`] hands out. Each distinct text is
/// leaked once per process, so reloading a plugin any number of times costs nothing more.
fn intern(text: &str) -> &'static str {
    static INTERNED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut interned = INTERNED.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = interned.get(text) {
        return existing;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    interned.insert(leaked);
    leaked
}

/// A codec plugin as a [`Codec`]. Made by the [`crate::PluginRegistry`] when a codec plugin is
/// published; list them with [`crate::PluginRegistry::codecs`].
pub struct PluginCodec {
    plugin: Arc<LoadedPlugin>,
    content_types: Vec<&'static str>,
    config_json: String,
    idle: Mutex<Vec<Instance>>,
    panics: AtomicU64,
    events: EventSink,
}

impl std::fmt::Debug for PluginCodec {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PluginCodec")
            .field("plugin", &self.plugin)
            .field("content_types", &self.content_types)
            .field("panics", &self.panics)
            .finish_non_exhaustive()
    }
}

impl PluginCodec {
    /// Wraps a loaded codec plugin; instances are created from `config_json` as they are needed.
    #[must_use]
    pub fn new(plugin: Arc<LoadedPlugin>, config_json: &str, events: EventSink) -> Self {
        let content_types = plugin.content_types().iter().map(|text| intern(text)).collect();
        Self {
            plugin,
            content_types,
            config_json: config_json.to_owned(),
            idle: Mutex::default(),
            panics: AtomicU64::new(0),
            events,
        }
    }

    /// The plugin behind the codec.
    #[must_use]
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// Calls that panicked so far.
    #[must_use]
    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Instances waiting in the pool.
    #[must_use]
    pub fn idle_instances(&self) -> usize {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn error(&self, message: impl std::fmt::Display) -> CodecError {
        CodecError::other(self.plugin.name(), message)
    }

    /// Runs `call` on an idle instance (or a new one) and puts the instance back unless the call
    /// poisoned it.
    fn with_instance(&self, call: impl FnOnce(&mut Instance) -> Result<(), CallError>) -> Result<(), CodecError> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => Instance::create(&self.plugin, &self.config_json)
                .map_err(|error| self.error(format!("cannot create an instance: {error}")))?,
        };
        let outcome = call(&mut instance);
        match outcome {
            Err(error) if error.poisons_instance() => {
                self.panics.fetch_add(1, Ordering::Relaxed);
                drop(instance.retire());
                let message = match &error {
                    CallError::Panicked(message) => message.clone(),
                    other => other.to_string(),
                };
                PluginEvent::Panicked {
                    plugin: self.plugin.name().to_owned(),
                    message,
                    restart_in: std::time::Duration::ZERO,
                }
                .emit(&self.events);
                Err(self.error(error))
            }
            other => {
                self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(instance);
                other.map_err(|error| self.error(error))
            }
        }
    }
}

impl Codec for PluginCodec {
    fn name(&self) -> &str {
        self.plugin.name()
    }

    fn content_types(&self) -> &[&str] {
        &self.content_types
    }

    fn decode(&self, body: Bytes) -> Result<SpanBatch, CodecError> {
        let EntryPoints::Codec { decode, .. } = self.plugin.entry_points() else {
            return Err(self.error(CallError::WrongKind { expected: PluginKind::Codec, found: self.plugin.kind() }));
        };
        let mut collector = RequestCollector::default();
        self.with_instance(|instance| {
            let sink = collector.sink();
            let handle = instance.handle();
            let body = BytesRef { ptr: body.as_ptr(), len: body.len() };
            // SAFETY: `decode` belongs to the instance's plugin, kept mapped by the instance; the
            // body and the sink (with its collector) are valid for the call.
            with_message_sink(|error| unsafe { decode(handle, body, &raw const sink, error) })
        })?;
        match collector.batches.len() {
            0 => match collector.first_rejection {
                Some(reason) => Err(self.error(format!("the plugin produced an invalid request: {reason}"))),
                None => Err(CodecError::Empty),
            },
            1 => Ok(collector.batches.swap_remove(0)),
            _ => Ok(SpanBatch::merge(&collector.batches)),
        }
    }

    fn encode(&self, batch: &SpanBatch) -> Result<Bytes, CodecError> {
        let EntryPoints::Codec { encode, .. } = self.plugin.entry_points() else {
            return Err(self.error(CallError::WrongKind { expected: PluginKind::Codec, found: self.plugin.kind() }));
        };
        let span_table: Vec<SpanRef> = batch.spans().map(|span| span_ref(&span)).collect();
        let batch_ref = BatchRef {
            bytes: BytesRef { ptr: batch.bytes().as_ptr(), len: batch.bytes().len() },
            spans: span_table.as_ptr(),
            span_count: span_table.len(),
        };
        let mut encoded = Vec::with_capacity(batch.encoded_len());
        self.with_instance(|instance| {
            let sink = byte_sink(&mut encoded);
            let handle = instance.handle();
            // SAFETY: as in `decode`; the batch and the sink (with its vector) are valid for the call.
            with_message_sink(|error| unsafe { encode(handle, &raw const batch_ref, &raw const sink, error) })
        })?;
        Ok(Bytes::from(encoded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_returns_one_static_str_per_distinct_text() {
        let first = intern("application/x-ndjson-spans");
        let second = intern(&String::from("application/x-ndjson-spans"));
        assert!(std::ptr::eq(first, second));
        assert_ne!(intern("application/x-other"), first);
    }
}
