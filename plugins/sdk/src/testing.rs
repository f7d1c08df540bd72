//! Drives a plugin's exported entry points in-process, as the host would, for tests.
//!
//! A plugin's own tests can call the `spanpipe_plugin_descriptor` its export macro generated and
//! run batches through the descriptor's vtable, without building a shared library or loading it:
//! everything crosses the same `extern "C"` functions, sinks and status codes as in spanpipe.
//!
//! ```
//! # use spanpipe_plugin_sdk::{export_processor, Batch, Decisions, Processor};
//! # struct KeepAll;
//! # impl Processor for KeepAll {
//! #     fn new(_config: &str) -> Result<Self, String> { Ok(Self) }
//! #     fn process(&mut self, _: &Batch<'_>, _: &mut Decisions<'_>) -> Result<(), String> { Ok(()) }
//! # }
//! # export_processor!(KeepAll, name = "keep-all", version = "1.0.0");
//! use spanpipe_plugin_sdk::testing;
//!
//! // SAFETY: the descriptor function returns a pointer to a static descriptor.
//! let descriptor = unsafe { &*spanpipe_plugin_descriptor() };
//! let mut processor = testing::processor(descriptor, "{}").expect("created");
//! # let mut writer = spanpipe_plugin_sdk::core::BatchWriter::new();
//! # writer.resource_spans(|rs| rs.scope_spans(|ss| { ss.span(|s| { s.trace_id(&[1; 16]).span_id(&[2; 8]); }); }));
//! # let batch = writer.finish().unwrap();
//! let processed = processor.process(&batch).expect("processed");
//! assert_eq!(processed.keep, [true]);
//! ```

use std::ffi::c_void;

use spanpipe_core::{EncodedSpanView, KeyValues, SpanBatch};

use crate::abi::{
    self, BatchRef, ByteSink, BytesRef, CodecVTable, MessageSink, PluginDescriptor, ProcessorOutput, ProcessorVTable,
    RequestSink, SourceVTable, Status, StrRef,
};
use crate::batch::raw_slice;
use crate::span_refs;

/// A call that did not return [`abi::STATUS_OK`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("status {status}: {message}")]
pub struct Failure {
    /// [`abi::STATUS_ERROR`] or [`abi::STATUS_PANIC`] (or whatever else the plugin returned).
    pub status: Status,
    /// The message the plugin wrote, empty if none.
    pub message: String,
}

impl Failure {
    fn refused(message: &str) -> Self {
        Self { status: abi::STATUS_ERROR, message: message.to_owned() }
    }
}

/// The text of a borrowed ABI string (lossy: a test wants to see it whatever it is).
///
/// # Safety
/// `text` must point at `text.len` readable bytes.
#[must_use]
pub unsafe fn text(text: StrRef) -> String {
    // SAFETY: the caller vouches for the bytes.
    String::from_utf8_lossy(unsafe { raw_slice(text.ptr, text.len) }).into_owned()
}

fn str_ref(text: &str) -> StrRef {
    StrRef { ptr: text.as_ptr(), len: text.len() }
}

fn bytes_ref(bytes: &[u8]) -> BytesRef {
    BytesRef { ptr: bytes.as_ptr(), len: bytes.len() }
}

/// Runs one call with a message sink, turning its status into a `Result`.
fn call(entry: impl FnOnce(&MessageSink) -> Status) -> Result<(), Failure> {
    unsafe extern "C" fn set(context: *mut c_void, message: StrRef) {
        // SAFETY: `call` passes its `String` as the context; the plugin passes a valid message.
        unsafe { *context.cast::<String>() = text(message) };
    }
    let mut message = String::new();
    let sink = MessageSink { context: std::ptr::from_mut(&mut message).cast(), set };
    match entry(&sink) {
        abi::STATUS_OK => Ok(()),
        status => Err(Failure { status, message }),
    }
}

/// An instance behind its destroy function, destroyed on drop; refuses every call after a panic,
/// as the host does.
#[derive(Debug)]
struct Instance {
    pointer: *mut c_void,
    destroy: abi::DestroyFn,
    panicked: bool,
}

impl Instance {
    fn create(create: abi::CreateFn, destroy: abi::DestroyFn, config: &str) -> Result<Self, Failure> {
        let mut pointer = std::ptr::null_mut();
        // SAFETY: the config, the place for the instance and the sink live across the call.
        call(|sink| unsafe { create(str_ref(config), &mut pointer, sink) })?;
        Ok(Self { pointer, destroy, panicked: false })
    }

    /// Runs one call on the instance.
    fn call(&mut self, entry: impl FnOnce(*mut c_void, &MessageSink) -> Status) -> Result<(), Failure> {
        if self.panicked {
            return Err(Failure::refused("the instance panicked before; only destroy may be called"));
        }
        let result = call(|sink| entry(self.pointer, sink));
        self.panicked = matches!(&result, Err(failure) if failure.status == abi::STATUS_PANIC);
        result
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: the pointer came from the matching create and is destroyed once. A failure to
        // destroy has nowhere to go from a destructor; tests see it in the plugin's own output.
        let _ = call(|sink| unsafe { (self.destroy)(self.pointer, sink) });
    }
}

/// The batch's bytes and span table, lent as the host lends them.
fn lend<R>(batch: &SpanBatch, body: impl FnOnce(&BatchRef) -> R) -> R {
    let refs = span_refs(batch);
    body(&BatchRef { bytes: bytes_ref(batch.bytes()), spans: refs.as_ptr(), span_count: refs.len() })
}

/// A request sink that collects each request as a batch (the host's check: it must index and
/// hold a span).
fn collecting(requests: &mut Vec<SpanBatch>) -> RequestSink {
    unsafe extern "C" fn push(context: *mut c_void, request: BytesRef) -> Status {
        // SAFETY: the context is the caller's `Vec<SpanBatch>`; the plugin passes valid bytes.
        let (requests, request) =
            unsafe { (&mut *context.cast::<Vec<SpanBatch>>(), raw_slice(request.ptr, request.len)) };
        match SpanBatch::decode(bytes::Bytes::copy_from_slice(request)) {
            Ok(batch) => {
                requests.push(batch);
                abi::STATUS_OK
            }
            Err(_) => abi::STATUS_ERROR,
        }
    }
    RequestSink { context: std::ptr::from_mut(requests).cast(), push }
}

/// A processor instance created from a descriptor.
#[derive(Debug)]
pub struct TestProcessor {
    vtable: &'static ProcessorVTable,
    instance: Instance,
}

/// What a processor decided about one batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Processed {
    /// One flag per span: whether it is kept.
    pub keep: Vec<bool>,
    /// Each replacement run of attributes, with its span's position, in call order.
    pub replaced: Vec<(usize, Vec<u8>)>,
}

impl Processed {
    /// The attributes the last replacement of span `span` set, if it was replaced.
    #[must_use]
    pub fn replaced_attributes(&self, span: usize) -> Option<KeyValues<'_>> {
        let (_, run) = self.replaced.iter().rev().find(|(position, _)| *position == span)?;
        Some(EncodedSpanView::new(run).attributes())
    }
}

/// Creates an instance of the processor `descriptor` describes.
///
/// # Errors
/// The plugin's failure to create, or a refusal when the descriptor is not a processor's.
pub fn processor(descriptor: &'static PluginDescriptor, config: &str) -> Result<TestProcessor, Failure> {
    // SAFETY: a descriptor's non-null vtable pointer points at its static vtable.
    let vtable = unsafe { descriptor.processor.as_ref() }.ok_or_else(|| Failure::refused("not a processor"))?;
    Ok(TestProcessor { vtable, instance: Instance::create(vtable.create, vtable.destroy, config)? })
}

impl TestProcessor {
    /// Runs one batch through the processor.
    ///
    /// # Errors
    /// The plugin's error or panic.
    pub fn process(&mut self, batch: &SpanBatch) -> Result<Processed, Failure> {
        unsafe extern "C" fn replace(context: *mut c_void, span: usize, attributes: BytesRef) -> Status {
            // SAFETY: the context is the `Processed` being filled; the plugin passes valid bytes.
            let (processed, attributes) =
                unsafe { (&mut *context.cast::<Processed>(), raw_slice(attributes.ptr, attributes.len)) };
            if span >= processed.keep.len() {
                return abi::STATUS_ERROR;
            }
            processed.replaced.push((span, attributes.to_vec()));
            abi::STATUS_OK
        }
        let process = self.vtable.process;
        let mut keep = vec![1_u8; batch.len()];
        let mut processed = Processed { keep: vec![true; batch.len()], replaced: Vec::new() };
        lend(batch, |lent| {
            let mut output = ProcessorOutput {
                keep: keep.as_mut_ptr(),
                keep_len: keep.len(),
                context: std::ptr::from_mut(&mut processed).cast(),
                replace_attributes: replace,
            };
            // SAFETY: the batch, output and sink live across the call.
            self.instance.call(|instance, sink| unsafe { process(instance, lent, &mut output, sink) })
        })?;
        processed.keep = keep.iter().map(|&flag| flag != 0).collect();
        Ok(processed)
    }
}

/// A source instance created from a descriptor.
#[derive(Debug)]
pub struct TestSource {
    vtable: &'static SourceVTable,
    instance: Instance,
}

/// Creates an instance of the source `descriptor` describes.
///
/// # Errors
/// The plugin's failure to create, or a refusal when the descriptor is not a source's.
pub fn source(descriptor: &'static PluginDescriptor, config: &str) -> Result<TestSource, Failure> {
    // SAFETY: a descriptor's non-null vtable pointer points at its static vtable.
    let vtable = unsafe { descriptor.source.as_ref() }.ok_or_else(|| Failure::refused("not a source"))?;
    Ok(TestSource { vtable, instance: Instance::create(vtable.create, vtable.destroy, config)? })
}

impl TestSource {
    /// Runs one cycle, returning the requests pushed.
    ///
    /// # Errors
    /// The plugin's error or panic.
    pub fn emit(&mut self) -> Result<Vec<SpanBatch>, Failure> {
        let emit = self.vtable.emit;
        let mut requests = Vec::new();
        let sink = collecting(&mut requests);
        // SAFETY: the sinks live across the call.
        self.instance.call(|instance, messages| unsafe { emit(instance, &sink, messages) })?;
        Ok(requests)
    }
}

/// A codec instance created from a descriptor.
#[derive(Debug)]
pub struct TestCodec {
    vtable: &'static CodecVTable,
    instance: Instance,
}

/// Creates an instance of the codec `descriptor` describes.
///
/// # Errors
/// The plugin's failure to create, or a refusal when the descriptor is not a codec's.
pub fn codec(descriptor: &'static PluginDescriptor, config: &str) -> Result<TestCodec, Failure> {
    // SAFETY: a descriptor's non-null vtable pointer points at its static vtable.
    let vtable = unsafe { descriptor.codec.as_ref() }.ok_or_else(|| Failure::refused("not a codec"))?;
    Ok(TestCodec { vtable, instance: Instance::create(vtable.create, vtable.destroy, config)? })
}

impl TestCodec {
    /// The content types the codec's vtable lists.
    #[must_use]
    pub fn content_types(&self) -> Vec<String> {
        // SAFETY: the vtable's table holds `content_type_count` static strings.
        unsafe { raw_slice(self.vtable.content_types, self.vtable.content_type_count) }
            .iter()
            // SAFETY: as above.
            .map(|content_type| unsafe { text(*content_type) })
            .collect()
    }

    /// Decodes one body, returning the requests pushed.
    ///
    /// # Errors
    /// The plugin's error or panic.
    pub fn decode(&mut self, body: &[u8]) -> Result<Vec<SpanBatch>, Failure> {
        let decode = self.vtable.decode;
        let mut requests = Vec::new();
        let sink = collecting(&mut requests);
        // SAFETY: the body and sinks live across the call.
        self.instance.call(|instance, messages| unsafe { decode(instance, bytes_ref(body), &sink, messages) })?;
        Ok(requests)
    }

    /// Encodes one batch, returning what the codec wrote.
    ///
    /// # Errors
    /// The plugin's error or panic.
    pub fn encode(&mut self, batch: &SpanBatch) -> Result<Vec<u8>, Failure> {
        unsafe extern "C" fn write(context: *mut c_void, bytes: BytesRef) {
            // SAFETY: the context is the output `Vec`; the plugin passes valid bytes.
            unsafe { (*context.cast::<Vec<u8>>()).extend_from_slice(raw_slice(bytes.ptr, bytes.len)) };
        }
        let encode = self.vtable.encode;
        let mut written = Vec::new();
        let sink = ByteSink { context: std::ptr::from_mut(&mut written).cast(), write };
        lend(batch, |lent| {
            // SAFETY: the batch and sinks live across the call.
            self.instance.call(|instance, messages| unsafe { encode(instance, lent, &sink, messages) })
        })?;
        Ok(written)
    }
}
