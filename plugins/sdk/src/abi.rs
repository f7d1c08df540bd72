//! Every type that crosses the boundary between spanpipe and a plugin library.
//!
//! The rules that keep this boundary sound:
//!
//! - Only `repr(C)` structs, fixed-size integers, raw pointers and `extern "C"` function pointers
//!   cross. No Rust `String`, `Vec`, `Box`, trait object, `Option` of a non-pointer or enum with
//!   data does: their layout is not stable between compilers.
//! - Memory is freed by whoever allocated it. Plugins never free host memory and the host never
//!   frees plugin memory: everything passed in is borrowed for the duration of the call, and
//!   everything passed out is copied by the receiving side through a callback (`MessageSink`,
//!   `RequestSink`, `ByteSink`, `ProcessorOutput::replace_attributes`).
//! - No panic crosses: every entry point a plugin exports returns a [`Status`], and the SDK's
//!   export macro turns a panic into [`STATUS_PANIC`] with the panic message.
//! - [`Compatibility`] is the first field of the descriptor and its layout never changes, so any
//!   host can read any plugin's compatibility fields and refuse it before touching anything else.
//!
//! `build.rs` hashes this file's text (comments and whitespace removed) into
//! [`crate::INTERFACE_HASH`]: a change to any type here changes the hash, and a host refuses a
//! plugin built against a different one. Bump [`ABI_VERSION`] with any such change.

use std::ffi::c_void;

/// The version of this interface. Bumped whenever a type in this file changes.
pub const ABI_VERSION: u32 = 1;

/// `b"SPANPIPE"` as a big-endian `u64`: marks a descriptor as spanpipe's.
pub const DESCRIPTOR_MAGIC: u64 = u64::from_be_bytes(*b"SPANPIPE");

/// The name of the one symbol the host looks up, a [`DescriptorFn`], nul-terminated.
pub const DESCRIPTOR_SYMBOL: &[u8] = b"spanpipe_plugin_descriptor\0";

/// The function every plugin exports under [`DESCRIPTOR_SYMBOL`]. It must do nothing but return
/// a pointer to a descriptor in static memory: the host calls it before any compatibility check.
pub type DescriptorFn = unsafe extern "C" fn() -> *const PluginDescriptor;

/// The outcome of a call into a plugin.
pub type Status = u32;
/// The call did what it was asked.
pub const STATUS_OK: Status = 0;
/// The call refused its input (a bad config, an undecodable body); the message says why.
pub const STATUS_ERROR: Status = 1;
/// The plugin panicked; the message is the panic's. The instance must not be called again but
/// to destroy it.
pub const STATUS_PANIC: Status = 2;

/// What a plugin provides.
pub type PluginKind = u32;
/// A processor: sees each batch and decides per span.
pub const KIND_PROCESSOR: PluginKind = 1;
/// A source: emits spans on an interval the host sets.
pub const KIND_SOURCE: PluginKind = 2;
/// A codec: decodes (and may encode) a wire format for the receivers and exporters.
pub const KIND_CODEC: PluginKind = 3;

/// Borrowed UTF-8 text.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StrRef {
    /// First byte; may dangle when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

/// Borrowed bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BytesRef {
    /// First byte; may dangle when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

/// What the host checks before it trusts anything else in a library. Its layout is frozen: every
/// version of the interface starts its descriptor with exactly these fields.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Compatibility {
    /// [`DESCRIPTOR_MAGIC`].
    pub magic: u64,
    /// [`ABI_VERSION`] of the SDK the plugin was built with.
    pub abi_version: u32,
    /// Zero. Makes the padding before `interface_hash` explicit, so the frozen layout has no
    /// bytes a compiler could fill differently.
    pub reserved: u32,
    /// [`crate::INTERFACE_HASH`] of the SDK the plugin was built with.
    pub interface_hash: u64,
    /// The SDK crate's version.
    pub sdk_version: StrRef,
    /// `rustc --version` of the compiler that built the SDK (and so the plugin).
    pub rustc_version: StrRef,
}

/// A plugin library's description of itself, in static memory.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDescriptor {
    /// Checked first; see [`Compatibility`].
    pub compatibility: Compatibility,
    /// The plugin's name: what configs call it by.
    pub name: StrRef,
    /// The plugin's own version, for logs and metrics.
    pub version: StrRef,
    /// [`KIND_PROCESSOR`], [`KIND_SOURCE`] or [`KIND_CODEC`].
    pub kind: PluginKind,
    /// Set when `kind` is [`KIND_PROCESSOR`], null otherwise.
    pub processor: *const ProcessorVTable,
    /// Set when `kind` is [`KIND_SOURCE`], null otherwise.
    pub source: *const SourceVTable,
    /// Set when `kind` is [`KIND_CODEC`], null otherwise.
    pub codec: *const CodecVTable,
}

// SAFETY: the descriptor lives in the plugin's static memory and is only read.
unsafe impl Sync for PluginDescriptor {}

/// Where a plugin writes the message of an error or panic. The host copies the text during the
/// call.
#[repr(C)]
#[derive(Debug)]
pub struct MessageSink {
    /// The host's state, passed back to `set`.
    pub context: *mut c_void,
    /// Records the message.
    pub set: unsafe extern "C" fn(context: *mut c_void, message: StrRef),
}

/// Creates an instance from its config (JSON text; `{}` when the config gives none). On
/// [`STATUS_OK`] `*instance` holds the new instance.
pub type CreateFn =
    unsafe extern "C" fn(config: StrRef, instance: *mut *mut c_void, error: *const MessageSink) -> Status;

/// Ends an instance, releasing what it holds.
pub type DestroyFn = unsafe extern "C" fn(instance: *mut c_void, error: *const MessageSink) -> Status;

/// One span of a batch as the host's index knows it. Ranges are byte offsets into
/// [`BatchRef::bytes`], end exclusive; an absent field has the range `0..0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpanRef {
    /// The encoded `Span` message, without its tag and length.
    pub body_start: u32,
    /// End of the span's body.
    pub body_end: u32,
    /// The encoded `Resource` message of the span's resource.
    pub resource_start: u32,
    /// End of the resource.
    pub resource_end: u32,
    /// The encoded `InstrumentationScope` message of the span's scope.
    pub scope_start: u32,
    /// End of the scope.
    pub scope_end: u32,
    /// The span's name.
    pub name_start: u32,
    /// End of the name.
    pub name_end: u32,
    /// `Span.trace_id`.
    pub trace_id: [u8; 16],
    /// `Span.span_id`.
    pub span_id: [u8; 8],
    /// `Span.parent_span_id`; all zero for a root span.
    pub parent_span_id: [u8; 8],
    /// `Span.kind`.
    pub kind: i32,
    /// `Span.status.code`.
    pub status_code: i32,
    /// `Span.start_time_unix_nano`.
    pub start_time_unix_nano: u64,
    /// `Span.end_time_unix_nano`.
    pub end_time_unix_nano: u64,
    /// `Span.flags`.
    pub flags: u32,
    /// 1 when the span has a parent, 0 for a root.
    pub has_parent: u32,
}

/// A batch lent to a plugin for one call: OTLP `ExportTraceServiceRequest` bytes and its spans.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BatchRef {
    /// The whole encoded request.
    pub bytes: BytesRef,
    /// The spans, in wire order.
    pub spans: *const SpanRef,
    /// How many spans.
    pub span_count: usize,
}

/// What a processor decides about a batch, filled during [`ProcessorVTable::process`].
#[repr(C)]
#[derive(Debug)]
pub struct ProcessorOutput {
    /// One byte per span, 1 on entry; the plugin writes 0 to drop a span.
    pub keep: *mut u8,
    /// Length of `keep` (the batch's span count).
    pub keep_len: usize,
    /// The host's state, passed back to `replace_attributes`.
    pub context: *mut c_void,
    /// Replaces every attribute of span `span` with `attributes`: a run of whole encoded
    /// `Span.attributes` fields (field 9: tag, length, `KeyValue`). The host copies them; it
    /// returns [`STATUS_ERROR`] for a span out of range or bytes that are not such fields.
    pub replace_attributes: unsafe extern "C" fn(context: *mut c_void, span: usize, attributes: BytesRef) -> Status,
}

/// The entry points of a processor plugin.
#[repr(C)]
#[derive(Debug)]
pub struct ProcessorVTable {
    /// Creates an instance. The host creates one per core and calls each from one thread only.
    pub create: CreateFn,
    /// Decides about one batch.
    pub process: unsafe extern "C" fn(
        instance: *mut c_void,
        batch: *const BatchRef,
        output: *mut ProcessorOutput,
        error: *const MessageSink,
    ) -> Status,
    /// Ends an instance.
    pub destroy: DestroyFn,
}

/// Where a source or codec hands spans to the host: each call passes one encoded OTLP
/// `ExportTraceServiceRequest`, which the host copies and validates. Returns [`STATUS_ERROR`] for
/// bytes that are not a valid request with at least one span.
#[repr(C)]
#[derive(Debug)]
pub struct RequestSink {
    /// The host's state, passed back to `push`.
    pub context: *mut c_void,
    /// Hands over one request.
    pub push: unsafe extern "C" fn(context: *mut c_void, request: BytesRef) -> Status,
}

/// The entry points of a source plugin.
#[repr(C)]
#[derive(Debug)]
pub struct SourceVTable {
    /// Creates an instance. The host creates one, on one core.
    pub create: CreateFn,
    /// One cycle: called every interval (the host's config), emits what it has into `sink`.
    pub emit:
        unsafe extern "C" fn(instance: *mut c_void, sink: *const RequestSink, error: *const MessageSink) -> Status,
    /// Ends an instance.
    pub destroy: DestroyFn,
}

/// Where an encoder writes its output; the host copies each piece.
#[repr(C)]
#[derive(Debug)]
pub struct ByteSink {
    /// The host's state, passed back to `write`.
    pub context: *mut c_void,
    /// Appends bytes.
    pub write: unsafe extern "C" fn(context: *mut c_void, bytes: BytesRef),
}

/// The entry points of a codec plugin.
#[repr(C)]
#[derive(Debug)]
pub struct CodecVTable {
    /// The MIME types this codec answers to, lower case (e.g. `application/x-acme-spans`).
    pub content_types: *const StrRef,
    /// How many content types.
    pub content_type_count: usize,
    /// Creates an instance. The host creates one per core and calls each from one thread only.
    pub create: CreateFn,
    /// Decodes one request body into one or more OTLP requests pushed into `sink`.
    pub decode: unsafe extern "C" fn(
        instance: *mut c_void,
        body: BytesRef,
        sink: *const RequestSink,
        error: *const MessageSink,
    ) -> Status,
    /// Encodes a batch into `out`.
    pub encode: unsafe extern "C" fn(
        instance: *mut c_void,
        batch: *const BatchRef,
        out: *const ByteSink,
        error: *const MessageSink,
    ) -> Status,
    /// Ends an instance.
    pub destroy: DestroyFn,
}
