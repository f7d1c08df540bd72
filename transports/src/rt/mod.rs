//! Running hyper on glommio: the glue both directions of spanpipe's HTTP traffic use.
//!
//! hyper 1.x is runtime-agnostic: it asks for an executor to spawn background work (HTTP/2
//! streams and connection tasks), for IO types implementing [`hyper::rt::Read`] and
//! [`hyper::rt::Write`], and for a [`hyper::rt::Timer`] when keep-alive pings or header timeouts
//! are configured. This module provides the three for glommio, whose io_uring executors run one
//! per core and whose futures are `!Send`:
//!
//! - [`GlommioExecutor`] spawns with `glommio::spawn_local`, so hyper's `!Send` futures (services
//!   holding `Rc`s) are fine — the same model as hyper's single-threaded example.
//! - [`GlommioIo`] wraps a glommio [`TcpStream`] with a receive buffer of a configurable size.
//!   Reads go through that buffer: one `recv` fills up to the whole buffer and hyper copies out of
//!   it, so a large request costs few syscalls however small hyper's own read requests are, and
//!   hyper's uninitialised buffers are filled with safe copies (never handed to the kernel as
//!   `&mut [u8]`). Writes are vectored (`sendmsg`), so a response or request made of several
//!   slices leaves in one syscall without being flattened first.
//! - [`GlommioTimer`] implements hyper's timer. hyper requires its sleeps to be `Send + Sync`
//!   while glommio's timers are not, so each sleep is a small shared state driven by a glommio
//!   task on the executor that first polls it; dropping or resetting the sleep wakes that task so
//!   it never outlives its purpose.
//!
//! The same pieces serve the server side (the OTLP receivers in this crate) and the client side
//! (the exporters): [`connect`] opens a tuned connection whose [`GlommioIo`] goes straight into
//! `hyper::client::conn::http1::handshake` or `http2::Builder::new(GlommioExecutor::default())`.
//!
//! Everything here must be used from inside a glommio executor (the thread that runs
//! `LocalExecutor::run`); glommio itself panics otherwise.

mod deadline;
mod io;
mod timer;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use glommio::net::TcpStream;
use glommio::TaskQueueHandle;

pub use deadline::{with_deadline, DeadlineElapsed};
pub use io::{GlommioIo, TlsErrorSlot, DEFAULT_READ_BUFFER_SIZE};
pub use timer::{GlommioSleep, GlommioTimer};

/// Spawns hyper's background futures on the current glommio executor.
///
/// hyper's HTTP/2 server and client spawn one future per stream and the client one per
/// connection; HTTP/1 needs no executor. Futures run on the executor of the thread that calls
/// [`hyper::rt::Executor::execute`], in the given task queue if one was set.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlommioExecutor {
    task_queue: Option<TaskQueueHandle>,
}

impl GlommioExecutor {
    /// An executor that spawns into the executor's default task queue.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An executor that spawns into `task_queue` (created with `glommio::executor().create_task_queue`),
    /// so that the runtime can give, say, receivers and exporters separate CPU shares.
    ///
    /// # Errors
    /// The queue does not exist on the current executor.
    pub fn in_task_queue(task_queue: TaskQueueHandle) -> Result<Self, glommio::GlommioError<()>> {
        glommio::executor().task_queue_stats(task_queue)?;
        Ok(Self { task_queue: Some(task_queue) })
    }
}

impl<F> hyper::rt::Executor<F> for GlommioExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        match self.task_queue {
            Some(queue) => {
                // `in_task_queue` checked that the queue exists. Should it have been removed
                // since, glommio drops the future, which hyper sees as a reset stream.
                if let Ok(task) = glommio::spawn_local_into(future, queue) {
                    task.detach();
                }
            }
            None => {
                glommio::spawn_local(future).detach();
            }
        }
    }
}

/// How [`connect`] opens and tunes a client connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Give up connecting after this long. `None` waits as long as the kernel does.
    pub connect_timeout: Option<Duration>,
    /// Size of the receive buffer of the connection's [`GlommioIo`], in bytes.
    pub read_buffer_size: usize,
    /// Disable Nagle's algorithm (`TCP_NODELAY`), so small requests leave at once.
    pub nodelay: bool,
    /// Send TCP keep-alive probes after the connection has been idle this long, so a peer that
    /// vanished without closing is noticed. `None` leaves the kernel's setting (usually off).
    pub tcp_keepalive: Option<Duration>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Some(Duration::from_secs(10)),
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
            nodelay: true,
            tcp_keepalive: Some(Duration::from_secs(30)),
        }
    }
}

/// A socket operation that failed, with what was being done and to which address.
#[derive(Debug, thiserror::Error)]
#[error("{operation} {address}: {source}")]
pub struct SocketError {
    /// What was being done (`connecting to`, `setting TCP_NODELAY on`, …).
    pub operation: &'static str,
    /// The peer or local address involved.
    pub address: SocketAddr,
    /// What the system said.
    #[source]
    pub source: std::io::Error,
}

impl SocketError {
    pub(crate) fn new(operation: &'static str, address: SocketAddr, source: impl Into<std::io::Error>) -> Self {
        Self { operation, address, source: source.into() }
    }
}

/// Opens a TCP connection to `address` on the current glommio executor and tunes it as
/// `options` says, ready for a hyper client handshake.
///
/// # Errors
/// [`SocketError`] naming the step that failed: connecting (refused, unreachable, timed out)
/// or setting a socket option.
pub async fn connect(address: SocketAddr, options: &ConnectOptions) -> Result<GlommioIo, SocketError> {
    let stream = match options.connect_timeout {
        Some(timeout) if !timeout.is_zero() => TcpStream::connect_timeout(address, timeout).await,
        _ => TcpStream::connect(address).await,
    }
    .map_err(|error| SocketError::new("connecting to", address, error))?;
    stream.set_nodelay(options.nodelay).map_err(|error| SocketError::new("setting TCP_NODELAY on", address, error))?;
    let io = GlommioIo::new(stream, options.read_buffer_size);
    if let Some(idle) = options.tcp_keepalive {
        io.set_tcp_keepalive(idle).map_err(|error| SocketError::new("enabling TCP keep-alive on", address, error))?;
    }
    Ok(io)
}
