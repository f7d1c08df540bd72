//! The generic `extern "C"` entry points and descriptor builders that the export macros
//! instantiate for a plugin type.
//!
//! They live here, as ordinary generic functions, rather than in the macros, so that they are
//! written once, type-checked once and tested without building a shared library: the macros only
//! name them with the plugin's type. They are public for the macros' sake and for hand-built
//! descriptors (a test plugin that must lie about its compatibility, for instance); a plugin
//! author does not call them.
//!
//! Every entry point runs the plugin's code inside [`std::panic::catch_unwind`]: a panic becomes
//! [`abi::STATUS_PANIC`] with its message, an `Err(message)` becomes [`abi::STATUS_ERROR`], both
//! messages written to the host's [`abi::MessageSink`]. Unwinding into the host's frames would be
//! undefined behaviour (and Rust aborts the process when a panic reaches an `extern "C"` frame),
//! so nothing the plugin does may escape. This relies on the plugin being built with
//! `panic = "unwind"`, Rust's default: with `panic = "abort"` a panic ends the host.

use std::any::Any;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::abi::{
    self, BatchRef, ByteSink, BytesRef, CodecVTable, Compatibility, MessageSink, PluginDescriptor, PluginKind,
    ProcessorOutput, ProcessorVTable, RequestSink, SourceVTable, Status, StrRef,
};
use crate::batch::raw_slice;
use crate::{Batch, Codec, Decisions, Emitter, Processor, Source};

/// What the host's instance pointer points at: the plugin and the scratch buffer the SDK reuses
/// across its calls (replacement attribute runs, encoder output).
#[derive(Debug)]
struct Instance<T> {
    plugin: T,
    scratch: Vec<u8>,
}

/// Makes a value with raw pointers (which are not `Sync`) usable as a `static`. For the ABI's
/// tables, which live in the plugin's static memory and are only ever read.
#[derive(Debug)]
#[repr(transparent)]
pub struct Shared<T>(pub T);

// SAFETY: `Shared` only wraps the ABI's read-only static tables (content types, the codec vtable),
// whose pointers point at other statics; nothing ever writes through them.
unsafe impl<T> Sync for Shared<T> {}

/// The message of a panic payload: `panic!` gives a `&str` or a `String`.
#[must_use]
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

/// The host's message sink for one call, vouched for once, when the call comes in.
#[derive(Clone, Copy, Debug)]
struct HostSink(*const MessageSink);

impl HostSink {
    /// # Safety
    /// `sink` must be null or the host's live [`MessageSink`] for the rest of the call.
    unsafe fn new(sink: *const MessageSink) -> Self {
        Self(sink)
    }

    /// Writes `message` to the host's sink, if it gave one.
    fn report(self, message: &str) {
        // SAFETY: `new`'s caller vouched that a non-null pointer is the live sink; the host copies
        // the message before returning.
        if let Some(sink) = unsafe { self.0.as_ref() } {
            // SAFETY: as above.
            unsafe { (sink.set)(sink.context, StrRef { ptr: message.as_ptr(), len: message.len() }) }
        }
    }
}

/// Runs `call`, turning its `Err` and its panic into a status and a message for the host.
fn guard(error: HostSink, call: impl FnOnce() -> Result<(), String>) -> Status {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(())) => abi::STATUS_OK,
        Ok(Err(message)) => {
            error.report(&message);
            abi::STATUS_ERROR
        }
        Err(payload) => {
            error.report(panic_message(&*payload));
            // A payload whose destructor panics must not unwind out of here either.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            abi::STATUS_PANIC
        }
    }
}

/// Builds an instance with `new` from the host's config text and stores it in `*instance`.
///
/// # Safety
/// `config` must point at `config.len` readable bytes, `instance` must be null or writable, and
/// `error` null or the host's live [`MessageSink`].
unsafe fn create_instance<T>(
    config: StrRef,
    instance: *mut *mut c_void,
    error: *const MessageSink,
    new: fn(&str) -> Result<T, String>,
) -> Status {
    // SAFETY: the caller vouches for `error`.
    let error = unsafe { HostSink::new(error) };
    guard(error, || {
        if instance.is_null() {
            return Err("the host passed no place for the new instance".to_owned());
        }
        // SAFETY: the caller vouches for the config text.
        let config = unsafe { raw_slice(config.ptr, config.len) };
        let config = std::str::from_utf8(config).map_err(|e| format!("the config is not UTF-8: {e}"))?;
        let plugin = new(config)?;
        let created = Box::into_raw(Box::new(Instance { plugin, scratch: Vec::new() }));
        // SAFETY: checked non-null above; the caller vouches that it is writable.
        unsafe { *instance = created.cast() };
        Ok(())
    })
}

/// Runs `call` on the instance behind the host's pointer.
///
/// # Safety
/// `instance` must be null or a pointer [`create_instance`] made for a `T`, not destroyed, and
/// not in use by another call; `error` null or the host's live [`MessageSink`].
unsafe fn with_instance<T>(
    instance: *mut c_void,
    error: *const MessageSink,
    call: impl FnOnce(&mut Instance<T>) -> Result<(), String>,
) -> Status {
    // SAFETY: the caller vouches for `error`.
    let error = unsafe { HostSink::new(error) };
    guard(error, || {
        // SAFETY: the caller vouches that a non-null `instance` is a live, unshared `Instance<T>`.
        let instance = unsafe { instance.cast::<Instance<T>>().as_mut() }
            .ok_or_else(|| "the host passed no instance".to_owned())?;
        call(instance)
    })
}

/// [`abi::DestroyFn`] for any plugin type: drops the instance (its `Drop` may panic; that is
/// reported like any panic).
///
/// # Safety
/// `instance` must be null or a pointer this SDK's `create` made for a `T`, not yet destroyed and
/// not in use; `error` null or the host's live sink.
pub unsafe extern "C" fn destroy<T>(instance: *mut c_void, error: *const MessageSink) -> Status {
    // SAFETY: the caller vouches for `error`.
    let error = unsafe { HostSink::new(error) };
    guard(error, || {
        if !instance.is_null() {
            // SAFETY: the caller vouches that this is our live `Instance<T>`, handed back once.
            drop(unsafe { Box::from_raw(instance.cast::<Instance<T>>()) });
        }
        Ok(())
    })
}

/// [`abi::CreateFn`] of a processor.
///
/// # Safety
/// As [`abi::CreateFn`] requires: `config` readable, `instance` writable, `error` null or live.
pub unsafe extern "C" fn processor_create<T: Processor>(
    config: StrRef,
    instance: *mut *mut c_void,
    error: *const MessageSink,
) -> Status {
    // SAFETY: the caller's guarantees are the ones `create_instance` needs.
    unsafe { create_instance(config, instance, error, T::new) }
}

/// [`ProcessorVTable::process`].
///
/// # Safety
/// `instance` from [`processor_create`] for `T`; `batch` and `output` null or valid as the ABI
/// describes them, for the duration of the call; `error` null or live.
pub unsafe extern "C" fn processor_process<T: Processor>(
    instance: *mut c_void,
    batch: *const BatchRef,
    output: *mut ProcessorOutput,
    error: *const MessageSink,
) -> Status {
    let call = |instance: &mut Instance<T>| {
        // SAFETY: the caller vouches that non-null `batch` and `output` are valid for the call.
        let (batch, output) = unsafe { (batch.as_ref(), output.as_mut()) };
        let (Some(batch), Some(output)) = (batch, output) else {
            return Err("the host passed no batch or no output".to_owned());
        };
        // SAFETY: as above, the batch's pointers are valid for the call.
        let batch = unsafe { Batch::from_raw(batch) };
        // SAFETY: as above, the output's pointers are valid for the call.
        let mut decisions = unsafe { Decisions::from_raw(output, &mut instance.scratch) };
        instance.plugin.process(&batch, &mut decisions)
    };
    // SAFETY: the caller vouches for `instance` and `error`.
    unsafe { with_instance(instance, error, call) }
}

/// [`abi::CreateFn`] of a source.
///
/// # Safety
/// As [`processor_create`].
pub unsafe extern "C" fn source_create<T: Source>(
    config: StrRef,
    instance: *mut *mut c_void,
    error: *const MessageSink,
) -> Status {
    // SAFETY: the caller's guarantees are the ones `create_instance` needs.
    unsafe { create_instance(config, instance, error, T::new) }
}

/// Turns the host's request sink into an [`Emitter`].
///
/// # Safety
/// `sink` null or the host's live sink for `'s`.
unsafe fn emitter<'s>(sink: *const RequestSink) -> Result<Emitter<'s>, String> {
    // SAFETY: the caller vouches that a non-null `sink` is live.
    let sink = unsafe { sink.as_ref() }.ok_or_else(|| "the host passed no request sink".to_owned())?;
    // SAFETY: as above.
    Ok(unsafe { Emitter::from_raw(sink) })
}

/// [`SourceVTable::emit`].
///
/// # Safety
/// `instance` from [`source_create`] for `T`; `sink` and `error` null or live for the call.
pub unsafe extern "C" fn source_emit<T: Source>(
    instance: *mut c_void,
    sink: *const RequestSink,
    error: *const MessageSink,
) -> Status {
    let call = |instance: &mut Instance<T>| {
        // SAFETY: the caller vouches for `sink`.
        instance.plugin.emit(&mut unsafe { emitter(sink) }?)
    };
    // SAFETY: the caller vouches for `instance` and `error`.
    unsafe { with_instance(instance, error, call) }
}

/// [`abi::CreateFn`] of a codec.
///
/// # Safety
/// As [`processor_create`].
pub unsafe extern "C" fn codec_create<T: Codec>(
    config: StrRef,
    instance: *mut *mut c_void,
    error: *const MessageSink,
) -> Status {
    // SAFETY: the caller's guarantees are the ones `create_instance` needs.
    unsafe { create_instance(config, instance, error, T::new) }
}

/// [`CodecVTable::decode`].
///
/// # Safety
/// `instance` from [`codec_create`] for `T`; `body` readable, `sink` and `error` null or live,
/// for the call.
pub unsafe extern "C" fn codec_decode<T: Codec>(
    instance: *mut c_void,
    body: BytesRef,
    sink: *const RequestSink,
    error: *const MessageSink,
) -> Status {
    let call = |instance: &mut Instance<T>| {
        // SAFETY: the caller vouches for `sink`.
        let mut out = unsafe { emitter(sink) }?;
        // SAFETY: the caller vouches for the body's bytes.
        let body = unsafe { raw_slice(body.ptr, body.len) };
        instance.plugin.decode(body, &mut out)
    };
    // SAFETY: the caller vouches for `instance` and `error`.
    unsafe { with_instance(instance, error, call) }
}

/// [`CodecVTable::encode`]: the plugin appends to the instance's scratch buffer, which goes to the
/// host in one write once the encoder succeeds (nothing is written on failure).
///
/// # Safety
/// `instance` from [`codec_create`] for `T`; `batch`, `out` and `error` null or valid for the
/// call.
pub unsafe extern "C" fn codec_encode<T: Codec>(
    instance: *mut c_void,
    batch: *const BatchRef,
    out: *const ByteSink,
    error: *const MessageSink,
) -> Status {
    let call = |instance: &mut Instance<T>| {
        // SAFETY: the caller vouches that non-null `batch` and `out` are valid for the call.
        let (batch, out) = unsafe { (batch.as_ref(), out.as_ref()) };
        let (Some(batch), Some(out)) = (batch, out) else {
            return Err("the host passed no batch or no output".to_owned());
        };
        // SAFETY: as above.
        let batch = unsafe { Batch::from_raw(batch) };
        instance.scratch.clear();
        instance.plugin.encode(&batch, &mut instance.scratch)?;
        let bytes = BytesRef { ptr: instance.scratch.as_ptr(), len: instance.scratch.len() };
        // SAFETY: `out` is the host's live sink; it copies the bytes before returning.
        unsafe { (out.write)(out.context, bytes) };
        Ok(())
    };
    // SAFETY: the caller vouches for `instance` and `error`.
    unsafe { with_instance(instance, error, call) }
}

/// A `'static` string as the ABI's [`StrRef`].
#[must_use]
pub const fn str_ref(text: &'static str) -> StrRef {
    StrRef { ptr: text.as_ptr(), len: text.len() }
}

/// `texts` as an array of [`StrRef`]s, for a codec's static content-type table. `N` must be
/// `texts.len()` (checked at compile time when used in a `static`).
#[must_use]
pub const fn str_refs<const N: usize>(texts: &[&'static str]) -> [StrRef; N] {
    assert!(texts.len() == N, "the array length must be the number of texts");
    let mut refs = [StrRef { ptr: std::ptr::null(), len: 0 }; N];
    let mut i = 0;
    while i < N {
        refs[i] = str_ref(texts[i]);
        i += 1;
    }
    refs
}

/// The [`Compatibility`] header of this SDK build: what the host checks first.
#[must_use]
pub const fn compatibility() -> Compatibility {
    Compatibility {
        magic: abi::DESCRIPTOR_MAGIC,
        abi_version: abi::ABI_VERSION,
        reserved: 0,
        interface_hash: crate::INTERFACE_HASH,
        sdk_version: str_ref(crate::SDK_VERSION),
        rustc_version: str_ref(crate::RUSTC_VERSION),
    }
}

/// The entry points of processor type `T`.
#[must_use]
pub const fn processor_vtable<T: Processor>() -> ProcessorVTable {
    ProcessorVTable { create: processor_create::<T>, process: processor_process::<T>, destroy: destroy::<T> }
}

/// The entry points of source type `T`.
#[must_use]
pub const fn source_vtable<T: Source>() -> SourceVTable {
    SourceVTable { create: source_create::<T>, emit: source_emit::<T>, destroy: destroy::<T> }
}

/// The entry points of codec type `T`, with its content types as a static table (see
/// [`str_refs`]).
#[must_use]
pub const fn codec_vtable<T: Codec>(content_types: &'static [StrRef]) -> CodecVTable {
    CodecVTable {
        content_types: content_types.as_ptr(),
        content_type_count: content_types.len(),
        create: codec_create::<T>,
        decode: codec_decode::<T>,
        encode: codec_encode::<T>,
        destroy: destroy::<T>,
    }
}

/// A descriptor with this SDK's compatibility header and no vtable yet.
const fn descriptor(name: &'static str, version: &'static str, kind: PluginKind) -> PluginDescriptor {
    PluginDescriptor {
        compatibility: compatibility(),
        name: str_ref(name),
        version: str_ref(version),
        kind,
        processor: std::ptr::null(),
        source: std::ptr::null(),
        codec: std::ptr::null(),
    }
}

/// The descriptor of a processor plugin.
#[must_use]
pub const fn processor_descriptor(
    name: &'static str,
    version: &'static str,
    vtable: &'static ProcessorVTable,
) -> PluginDescriptor {
    PluginDescriptor { processor: vtable, ..descriptor(name, version, abi::KIND_PROCESSOR) }
}

/// The descriptor of a source plugin.
#[must_use]
pub const fn source_descriptor(
    name: &'static str,
    version: &'static str,
    vtable: &'static SourceVTable,
) -> PluginDescriptor {
    PluginDescriptor { source: vtable, ..descriptor(name, version, abi::KIND_SOURCE) }
}

/// The descriptor of a codec plugin.
#[must_use]
pub const fn codec_descriptor(
    name: &'static str,
    version: &'static str,
    vtable: &'static CodecVTable,
) -> PluginDescriptor {
    PluginDescriptor { codec: vtable, ..descriptor(name, version, abi::KIND_CODEC) }
}

#[cfg(test)]
mod tests {
    use spanpipe_core::{Attributes, BatchWriter, EncodedSpanView, SpanBatch};

    use super::*;
    use crate::span_refs;

    /// What the host side of a test saw: messages, pushed requests, replacements, written bytes.
    #[derive(Debug, Default)]
    struct Host {
        messages: Vec<String>,
        requests: Vec<Vec<u8>>,
        replaced: Vec<(usize, Vec<u8>)>,
        written: Vec<u8>,
        refuse: bool,
    }

    impl Host {
        fn messages(&mut self) -> MessageSink {
            unsafe extern "C" fn set(context: *mut c_void, message: StrRef) {
                // SAFETY: the test passes its `Host` as the context and a valid message.
                let (host, message) = unsafe { (&mut *context.cast::<Host>(), raw_slice(message.ptr, message.len)) };
                host.messages.push(String::from_utf8_lossy(message).into_owned());
            }
            MessageSink { context: std::ptr::from_mut(self).cast(), set }
        }

        fn requests(&mut self) -> RequestSink {
            unsafe extern "C" fn push(context: *mut c_void, request: BytesRef) -> Status {
                // SAFETY: as in `messages`.
                let host = unsafe { &mut *context.cast::<Host>() };
                // SAFETY: as in `messages`.
                host.requests.push(unsafe { raw_slice(request.ptr, request.len) }.to_vec());
                if host.refuse {
                    abi::STATUS_ERROR
                } else {
                    abi::STATUS_OK
                }
            }
            RequestSink { context: std::ptr::from_mut(self).cast(), push }
        }

        fn bytes(&mut self) -> ByteSink {
            unsafe extern "C" fn write(context: *mut c_void, bytes: BytesRef) {
                // SAFETY: as in `messages`.
                let host = unsafe { &mut *context.cast::<Host>() };
                // SAFETY: as in `messages`.
                host.written.extend_from_slice(unsafe { raw_slice(bytes.ptr, bytes.len) });
            }
            ByteSink { context: std::ptr::from_mut(self).cast(), write }
        }

        fn output(&mut self, keep: &mut [u8]) -> ProcessorOutput {
            unsafe extern "C" fn replace(context: *mut c_void, span: usize, attributes: BytesRef) -> Status {
                // SAFETY: as in `messages`.
                let host = unsafe { &mut *context.cast::<Host>() };
                // SAFETY: as in `messages`.
                host.replaced.push((span, unsafe { raw_slice(attributes.ptr, attributes.len) }.to_vec()));
                if host.refuse {
                    abi::STATUS_ERROR
                } else {
                    abi::STATUS_OK
                }
            }
            ProcessorOutput {
                keep: keep.as_mut_ptr(),
                keep_len: keep.len(),
                context: std::ptr::from_mut(self).cast(),
                replace_attributes: replace,
            }
        }
    }

    /// A processor whose config says what to do with each batch.
    #[derive(Debug)]
    struct Scripted {
        action: String,
    }

    impl Processor for Scripted {
        fn new(config: &str) -> Result<Self, String> {
            match config {
                "refuse" => Err("bad config: refuse".to_owned()),
                "panic in new" => panic!("panicked building"),
                action => Ok(Self { action: action.to_owned() }),
            }
        }

        fn process(&mut self, batch: &Batch<'_>, decisions: &mut Decisions<'_>) -> Result<(), String> {
            match self.action.as_str() {
                "panic str" => panic!("static message"),
                "panic string" => panic!("span {} refused", batch.len()),
                "panic other" => std::panic::panic_any(42_u32),
                "err" => Err("cannot".to_owned()),
                "out of range" => {
                    decisions.drop(batch.len());
                    Ok(())
                }
                _ => {
                    decisions.drop(1);
                    decisions.replace_attributes(0, &[("user.email", "***".into())])?;
                    Ok(())
                }
            }
        }
    }

    fn text(text: &str) -> StrRef {
        StrRef { ptr: text.as_ptr(), len: text.len() }
    }

    fn two_spans() -> SpanBatch {
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.scope_spans(|ss| {
                for id in 1..=2 {
                    ss.span(|s| {
                        s.trace_id(&[id; 16]).span_id(&[id; 8]).name("s").str_attribute("user.email", "a@b.c");
                    });
                }
            });
        });
        writer.finish().expect("valid")
    }

    /// Creates a `Scripted` through the vtable, runs one batch through it, destroys it.
    fn run_processor(config: &str, host: &mut Host, keep: &mut [u8; 2]) -> Status {
        let vtable = processor_vtable::<Scripted>();
        let sink = host.messages();
        let mut instance = std::ptr::null_mut();
        // SAFETY: valid config, place and sink.
        let created = unsafe { (vtable.create)(text(config), &mut instance, &sink) };
        if created != abi::STATUS_OK {
            return created;
        }
        let batch = two_spans();
        let refs = span_refs(&batch);
        let batch_ref = BatchRef {
            bytes: BytesRef { ptr: batch.bytes().as_ptr(), len: batch.bytes().len() },
            spans: refs.as_ptr(),
            span_count: refs.len(),
        };
        let mut output = host.output(keep);
        let sink = host.messages();
        // SAFETY: everything lives across the call.
        let status = unsafe { (vtable.process)(instance, &batch_ref, &mut output, &sink) };
        // SAFETY: the instance came from `create` and is destroyed once.
        assert_eq!(unsafe { (vtable.destroy)(instance, &sink) }, abi::STATUS_OK);
        status
    }

    #[test]
    fn decisions_and_replacements_reach_the_host() {
        let (mut host, mut keep) = (Host::default(), [1; 2]);
        assert_eq!(run_processor("redact", &mut host, &mut keep), abi::STATUS_OK);
        assert_eq!(keep, [1, 0]);
        assert_eq!(host.replaced.len(), 1);
        let (span, run) = &host.replaced[0];
        let attributes: Vec<_> = EncodedSpanView::new(run).attributes().map(|kv| (kv.key, kv.value.as_str())).collect();
        assert_eq!((*span, attributes), (0, vec![("user.email", Some("***"))]));
        assert!(host.messages.is_empty());
    }

    #[test]
    fn a_refused_replacement_is_an_error_with_its_message() {
        let (mut host, mut keep) = (Host { refuse: true, ..Host::default() }, [1; 2]);
        assert_eq!(run_processor("redact", &mut host, &mut keep), abi::STATUS_ERROR);
        assert_eq!(host.messages, ["the host refused the replacement attributes of span 0"]);
    }

    #[test]
    fn panics_become_status_panic_with_their_message() {
        for (config, message) in [
            ("panic str", "static message"),
            ("panic string", "span 2 refused"),
            ("panic other", "non-string panic payload"),
            ("panic in new", "panicked building"),
        ] {
            let (mut host, mut keep) = (Host::default(), [1; 2]);
            assert_eq!(run_processor(config, &mut host, &mut keep), abi::STATUS_PANIC, "{config}");
            assert_eq!(host.messages, [message], "{config}");
        }
        let (mut host, mut keep) = (Host::default(), [1; 2]);
        assert_eq!(run_processor("out of range", &mut host, &mut keep), abi::STATUS_PANIC);
        assert!(host.messages[0].contains("out of range"), "{:?}", host.messages);
    }

    #[test]
    fn errors_become_status_error_with_their_message() {
        for (config, message) in [("err", "cannot"), ("refuse", "bad config: refuse")] {
            let (mut host, mut keep) = (Host::default(), [1; 2]);
            assert_eq!(run_processor(config, &mut host, &mut keep), abi::STATUS_ERROR, "{config}");
            assert_eq!(host.messages, [message], "{config}");
        }
    }

    #[test]
    fn null_pointers_and_bad_config_text_are_errors_not_crashes() {
        let mut host = Host::default();
        let sink = host.messages();
        let vtable = processor_vtable::<Scripted>();
        let not_utf8 = StrRef { ptr: [0xff_u8].as_ptr(), len: 1 };
        let mut instance = std::ptr::null_mut();
        // SAFETY: the pointers are valid or null, as the entry points allow.
        unsafe {
            assert_eq!((vtable.create)(not_utf8, &mut instance, &sink), abi::STATUS_ERROR);
            assert_eq!((vtable.create)(text("x"), std::ptr::null_mut(), &sink), abi::STATUS_ERROR);
            let status = (vtable.process)(std::ptr::null_mut(), std::ptr::null(), std::ptr::null_mut(), &sink);
            assert_eq!(status, abi::STATUS_ERROR);
            assert_eq!((vtable.destroy)(std::ptr::null_mut(), std::ptr::null()), abi::STATUS_OK);
        }
        assert!(instance.is_null());
        assert_eq!(host.messages.len(), 3);
        assert!(host.messages[0].starts_with("the config is not UTF-8"), "{:?}", host.messages);
    }

    /// Emits one span per call; `{"fail"}` makes it fail after pushing.
    #[derive(Debug)]
    struct Ticker {
        sequence: u8,
    }

    impl Source for Ticker {
        fn new(_config: &str) -> Result<Self, String> {
            Ok(Self { sequence: 0 })
        }

        fn emit(&mut self, out: &mut Emitter<'_>) -> Result<(), String> {
            self.sequence += 1;
            let mut writer = BatchWriter::new();
            writer.resource_spans(|rs| {
                rs.scope_spans(|ss| {
                    ss.span(|s| {
                        s.trace_id(&[self.sequence; 16]).span_id(&[1; 8]).name("tick").kind(1);
                    })
                })
            });
            out.push(writer)?;
            Ok(())
        }
    }

    #[test]
    fn a_source_pushes_requests_and_reports_refusals() {
        let mut host = Host::default();
        let vtable = source_vtable::<Ticker>();
        let sink = host.messages();
        let requests = host.requests();
        let mut instance = std::ptr::null_mut();
        // SAFETY: valid pointers throughout; the instance is destroyed once.
        unsafe {
            assert_eq!((vtable.create)(text("{}"), &mut instance, &sink), abi::STATUS_OK);
            assert_eq!((vtable.emit)(instance, &requests, &sink), abi::STATUS_OK);
            host.refuse = true;
            assert_eq!((vtable.emit)(instance, &requests, &sink), abi::STATUS_ERROR);
            assert_eq!((vtable.destroy)(instance, &sink), abi::STATUS_OK);
        }
        assert_eq!(host.requests.len(), 2);
        let first = SpanBatch::decode(host.requests[0].clone().into()).expect("a valid request");
        assert_eq!(first.span(0).map(|s| *s.trace_id()), Some([1; 16]));
        assert_eq!(host.messages, ["the host refused the request"]);
    }

    /// Writes span names one per line; decodes lines back into spans.
    #[derive(Debug)]
    struct Names;

    impl Codec for Names {
        const CONTENT_TYPES: &'static [&'static str] = &["text/x-span-names", "text/plain"];

        fn new(_config: &str) -> Result<Self, String> {
            Ok(Self)
        }

        fn decode(&mut self, body: &[u8], out: &mut Emitter<'_>) -> Result<(), String> {
            let body = std::str::from_utf8(body).map_err(|e| e.to_string())?;
            let mut writer = BatchWriter::new();
            writer.resource_spans(|rs| {
                rs.scope_spans(|ss| {
                    for (line, name) in (1_u8..).zip(body.lines()) {
                        ss.span(|s| {
                            s.trace_id(&[line; 16]).span_id(&[line; 8]).name(name).kind(1);
                        });
                    }
                })
            });
            Ok(out.push(writer)?)
        }

        fn encode(&mut self, batch: &Batch<'_>, out: &mut Vec<u8>) -> Result<(), String> {
            for span in batch.spans() {
                if span.name() == "unencodable" {
                    return Err("cannot encode".to_owned());
                }
                out.extend_from_slice(span.name().as_bytes());
                out.push(b'\n');
            }
            Ok(())
        }
    }

    #[test]
    fn a_codec_decodes_into_requests_and_encodes_into_the_byte_sink() {
        static TYPES: Shared<[StrRef; 2]> = Shared(str_refs(Names::CONTENT_TYPES));
        let vtable = codec_vtable::<Names>(&TYPES.0);
        // SAFETY: the table points at two static strings.
        let types: Vec<&str> = unsafe { raw_slice(vtable.content_types, vtable.content_type_count) }
            .iter()
            // SAFETY: each points at a static string.
            .map(|t| std::str::from_utf8(unsafe { raw_slice(t.ptr, t.len) }).expect("UTF-8"))
            .collect();
        assert_eq!(types, ["text/x-span-names", "text/plain"]);

        let mut host = Host::default();
        let (sink, requests, bytes) = (host.messages(), host.requests(), host.bytes());
        let mut instance = std::ptr::null_mut();
        let body = "first\nsecond\nunencodable";
        // SAFETY: valid pointers throughout; the instance is destroyed once.
        unsafe {
            assert_eq!((vtable.create)(text("{}"), &mut instance, &sink), abi::STATUS_OK);
            let body = BytesRef { ptr: body.as_ptr(), len: body.len() };
            assert_eq!((vtable.decode)(instance, body, &requests, &sink), abi::STATUS_OK);
        }
        let batch = SpanBatch::decode(host.requests[0].clone().into()).expect("a valid request");
        let mut refs = span_refs(&batch);
        let batch_ref = |refs: &[abi::SpanRef]| BatchRef {
            bytes: BytesRef { ptr: batch.bytes().as_ptr(), len: batch.bytes().len() },
            spans: refs.as_ptr(),
            span_count: refs.len(),
        };
        // SAFETY: as above.
        unsafe {
            assert_eq!((vtable.encode)(instance, &batch_ref(&refs[..2]), &bytes, &sink), abi::STATUS_OK);
            refs.rotate_left(2);
            assert_eq!((vtable.encode)(instance, &batch_ref(&refs), &bytes, &sink), abi::STATUS_ERROR);
            assert_eq!((vtable.destroy)(instance, &sink), abi::STATUS_OK);
        }
        assert_eq!(host.written, b"first\nsecond\n", "nothing is written for a failed encode");
        assert_eq!(host.messages, ["cannot encode"]);
    }

    #[test]
    fn descriptors_carry_this_sdks_compatibility_and_their_vtable() {
        static VTABLE: ProcessorVTable = processor_vtable::<Scripted>();
        static DESCRIPTOR: PluginDescriptor = processor_descriptor("scripted", "3.1.4", &VTABLE);
        let compatibility = DESCRIPTOR.compatibility;
        assert_eq!(compatibility.magic, u64::from_be_bytes(*b"SPANPIPE"));
        assert_eq!(
            (compatibility.abi_version, compatibility.interface_hash),
            (abi::ABI_VERSION, crate::INTERFACE_HASH)
        );
        // SAFETY: both point at static strings.
        let (sdk, rustc) = unsafe {
            (
                raw_slice(compatibility.sdk_version.ptr, compatibility.sdk_version.len),
                raw_slice(compatibility.rustc_version.ptr, compatibility.rustc_version.len),
            )
        };
        assert_eq!(sdk, crate::SDK_VERSION.as_bytes());
        assert!(rustc.starts_with(b"rustc "), "{}", String::from_utf8_lossy(rustc));
        // SAFETY: as above.
        let (name, version) = unsafe {
            (
                raw_slice(DESCRIPTOR.name.ptr, DESCRIPTOR.name.len),
                raw_slice(DESCRIPTOR.version.ptr, DESCRIPTOR.version.len),
            )
        };
        assert_eq!((name, version), (&b"scripted"[..], &b"3.1.4"[..]));
        assert_eq!(DESCRIPTOR.kind, abi::KIND_PROCESSOR);
        assert!(std::ptr::eq(DESCRIPTOR.processor, &VTABLE));
        assert!(DESCRIPTOR.source.is_null() && DESCRIPTOR.codec.is_null());
    }
}
