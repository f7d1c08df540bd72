//! The host's side of the calls into a plugin: the callbacks it lends (message, request and byte
//! sinks), instances and their destruction, and the measurements taken around calls.
//!
//! Every callback here is an `extern "C"` function called by plugin code. None may unwind (an
//! unwind out of an `extern "C"` function aborts the process), so none of them can panic: they copy
//! what they are given and return.

use std::ffi::c_void;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use spanpipe_core::SpanBatch;
use spanpipe_plugin_sdk::abi::{self, ByteSink, BytesRef, MessageSink, RequestSink, Status, StrRef};

use crate::error::CallError;
use crate::load::LoadedPlugin;

/// Borrows `bytes.len` bytes at `bytes.ptr` for the duration of a callback; empty for a null
/// pointer or zero length.
///
/// # Safety
/// The plugin must lend `len` readable bytes at `ptr` for the duration of the call, as the ABI says.
pub(crate) unsafe fn borrowed<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

unsafe extern "C" fn set_message(context: *mut c_void, message: StrRef) {
    // SAFETY: `context` is the `String` that `with_message_sink` lent for this call; the plugin
    // lends `message` for the duration of the call.
    let (target, text) = unsafe { (&mut *context.cast::<String>(), borrowed(message.ptr, message.len)) };
    target.clear();
    target.push_str(&String::from_utf8_lossy(text));
}

/// Calls `call` with a message sink and turns its status into a result carrying the message.
pub(crate) fn with_message_sink(call: impl FnOnce(*const MessageSink) -> Status) -> Result<(), CallError> {
    let mut message = String::new();
    let sink = MessageSink { context: (&raw mut message).cast(), set: set_message };
    let status = call(&sink);
    match status {
        abi::STATUS_OK => Ok(()),
        abi::STATUS_ERROR => Err(CallError::Refused(message)),
        abi::STATUS_PANIC => Err(CallError::Panicked(message)),
        other => Err(CallError::UnknownStatus(other)),
    }
}

/// One plugin instance. Destroyed exactly once: by [`Instance::retire`], or on drop.
///
/// It keeps its plugin (and so the library) alive: see the lifetime notes in [`crate::load`].
#[derive(Debug)]
pub(crate) struct Instance {
    handle: *mut c_void,
    plugin: Arc<LoadedPlugin>,
    threads_at_create: Option<usize>,
    destroyed: bool,
}

// SAFETY: an instance is owned by one holder and only used through `&mut self`, so it is called
// from one thread at a time, which is what the ABI asks of the host. Moving it between threads
// between calls (the codec's pool) keeps that.
unsafe impl Send for Instance {}

/// What became of an instance's resources when it was destroyed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Retirement {
    /// The destroy call's own failure, if any.
    pub destroy_error: Option<CallError>,
    /// Threads in the process before the instance was created and after it was destroyed, when
    /// there are more afterwards: threads the plugin started and left running.
    pub threads_left: Option<(usize, usize)>,
}

impl Instance {
    /// Creates an instance of `plugin` from `config` (JSON text).
    pub(crate) fn create(plugin: &Arc<LoadedPlugin>, config: &str) -> Result<Self, CallError> {
        let create = plugin.entry_points().create();
        let threads_at_create = thread_count();
        let mut handle = std::ptr::null_mut();
        let config = StrRef { ptr: config.as_ptr(), len: config.len() };
        // SAFETY: `create` comes from the plugin's vtable and the library is mapped while `plugin`
        // lives; the config and the out pointer are valid for the call.
        with_message_sink(|error| unsafe { create(config, &raw mut handle, error) })?;
        Ok(Self { handle, plugin: Arc::clone(plugin), threads_at_create, destroyed: false })
    }

    pub(crate) fn handle(&self) -> *mut c_void {
        self.handle
    }

    pub(crate) fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// Destroys the instance now and reports whether it left threads behind.
    pub(crate) fn retire(mut self) -> Retirement {
        let destroy_error = self.destroy().err();
        let threads_left = match (self.threads_at_create, thread_count()) {
            (Some(before), Some(after)) if after > before => Some((before, after)),
            _ => None,
        };
        Retirement { destroy_error, threads_left }
    }

    fn destroy(&mut self) -> Result<(), CallError> {
        if std::mem::replace(&mut self.destroyed, true) {
            return Ok(());
        }
        let destroy = self.plugin.entry_points().destroy();
        let handle = self.handle;
        // SAFETY: the handle came from this plugin's `create` and is destroyed once; the library is
        // mapped while `self.plugin` lives.
        with_message_sink(|error| unsafe { destroy(handle, error) })
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Err(error) = self.destroy() {
            tracing::warn!(plugin = %self.plugin.name(), %error, "plugin instance failed to destroy");
        }
    }
}

/// Requests a source or codec pushed during one call, each copied and validated.
#[derive(Debug, Default)]
pub(crate) struct RequestCollector {
    pub batches: Vec<SpanBatch>,
    /// Requests refused because they do not scan or hold no spans.
    pub rejected: u64,
    /// The first refusal's reason, for error messages.
    pub first_rejection: Option<String>,
}

unsafe extern "C" fn push_request(context: *mut c_void, request: BytesRef) -> Status {
    // SAFETY: `context` is the collector `RequestCollector::sink` lent for this call; the plugin
    // lends the request bytes for the duration of the call.
    let (collector, bytes) = unsafe { (&mut *context.cast::<RequestCollector>(), borrowed(request.ptr, request.len)) };
    match SpanBatch::decode(Bytes::copy_from_slice(bytes)) {
        Ok(batch) => {
            collector.batches.push(batch);
            abi::STATUS_OK
        }
        Err(error) => {
            collector.rejected += 1;
            collector.first_rejection.get_or_insert_with(|| error.to_string());
            abi::STATUS_ERROR
        }
    }
}

impl RequestCollector {
    /// A sink that pushes into this collector. It borrows the collector through a raw pointer, so
    /// it must not outlive it, nor be used while the collector is otherwise borrowed.
    pub(crate) fn sink(&mut self) -> RequestSink {
        RequestSink { context: (self as *mut Self).cast(), push: push_request }
    }
}

unsafe extern "C" fn write_bytes(context: *mut c_void, bytes: BytesRef) {
    // SAFETY: `context` is the `Vec<u8>` lent by `byte_sink` for this call; the plugin lends the
    // bytes for the duration of the call.
    let (target, bytes) = unsafe { (&mut *context.cast::<Vec<u8>>(), borrowed(bytes.ptr, bytes.len)) };
    target.extend_from_slice(bytes);
}

/// A sink appending to `target`; must not outlive it.
pub(crate) fn byte_sink(target: &mut Vec<u8>) -> ByteSink {
    ByteSink { context: (target as *mut Vec<u8>).cast(), write: write_bytes }
}

/// CPU time this thread has used, from `CLOCK_THREAD_CPUTIME_ID`: what a call costs the core,
/// whatever else the machine does meanwhile (wall time would charge the plugin for preemption).
#[must_use]
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a valid out pointer.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut now) };
    if result != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Runs `call` and returns its result with the thread CPU time it took.
pub(crate) fn measure_cpu<R>(call: impl FnOnce() -> R) -> (R, Duration) {
    let before = thread_cpu_time();
    let result = call();
    (result, thread_cpu_time().saturating_sub(before))
}

/// Threads in this process (`/proc/self/task` entries), or `None` where that cannot be read.
#[must_use]
pub fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(Iterator::count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_counts_this_threads_work_only() {
        // Work advances the clock (on a busy machine, more slowly than the wall clock)...
        let wall = std::time::Instant::now();
        let (_, spent) = measure_cpu(|| {
            let start = thread_cpu_time();
            while thread_cpu_time() - start < Duration::from_millis(20) && wall.elapsed() < Duration::from_secs(10) {
                std::hint::spin_loop();
            }
        });
        assert!(spent >= Duration::from_millis(20), "{spent:?}");
        // ...sleeping does not.
        let (_, slept) = measure_cpu(|| std::thread::sleep(Duration::from_millis(30)));
        assert!(slept < Duration::from_millis(10), "{slept:?}");
    }

    #[test]
    fn thread_count_sees_a_thread_that_is_running() {
        let (started, stop) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|scope| {
            scope.spawn(|| {
                started.wait();
                stop.wait();
            });
            started.wait();
            // Other tests' threads come and go, so only "this one and the spawned one" is certain.
            assert!(thread_count().unwrap() >= 2);
            stop.wait();
        });
    }

    #[test]
    fn message_sink_maps_statuses_and_copies_the_message() {
        let text = "bad config: keys missing";
        let refused = with_message_sink(|sink| {
            // SAFETY: the sink is valid for this call and the text is borrowed for it.
            unsafe { ((*sink).set)((*sink).context, StrRef { ptr: text.as_ptr(), len: text.len() }) };
            abi::STATUS_ERROR
        });
        assert_eq!(refused, Err(CallError::Refused(text.to_owned())));
        assert_eq!(with_message_sink(|_| abi::STATUS_OK), Ok(()));
        assert_eq!(with_message_sink(|_| 7), Err(CallError::UnknownStatus(7)));
        assert!(with_message_sink(|_| abi::STATUS_PANIC).unwrap_err().poisons_instance());
    }

    #[test]
    fn request_collector_rejects_invalid_requests() {
        let mut collector = RequestCollector::default();
        let sink = collector.sink();
        let junk = [0xffu8, 0xff, 0xff];
        // SAFETY: the sink's collector outlives the call; the bytes are borrowed for it.
        let status = unsafe { (sink.push)(sink.context, BytesRef { ptr: junk.as_ptr(), len: junk.len() }) };
        assert_eq!(status, abi::STATUS_ERROR);
        // SAFETY: as above; an empty request holds no spans and is refused too.
        let status = unsafe { (sink.push)(sink.context, BytesRef { ptr: std::ptr::null(), len: 0 }) };
        assert_eq!(status, abi::STATUS_ERROR);
        assert_eq!(collector.rejected, 2);
        assert!(collector.batches.is_empty());
        assert!(collector.first_rejection.is_some());
    }
}
