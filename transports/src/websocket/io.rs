//! The upgraded connection as the `futures-io` stream async-tungstenite reads and writes, noting
//! when the bytes of a message started to arrive so that a trickling client can be timed out.

use std::cell::Cell;
use std::io;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use futures_lite::io::{AsyncRead, AsyncWrite};

/// A connection after its upgrade. hyper's IO traits are turned into `futures-io`'s (a safe
/// `ReadBuf` over the caller's initialised buffer; writes, flushes and the close pass through),
/// and every read that brings bytes while no message is in progress marks the start of the next
/// message, which [`SessionIo::message_started`] reports until [`SessionIo::message_complete`].
#[derive(Debug)]
pub(crate) struct SessionIo<T> {
    io: T,
    message_started: Cell<Option<Instant>>,
}

impl<T> SessionIo<T> {
    pub(crate) fn new(io: T) -> Self {
        Self { io, message_started: Cell::new(None) }
    }

    /// When the first byte of a message not yet complete arrived.
    pub(crate) fn message_started(&self) -> Option<Instant> {
        self.message_started.get()
    }

    /// A whole frame was taken; the next byte starts the next one.
    pub(crate) fn message_complete(&self) {
        self.message_started.set(None);
    }

    fn bytes_arrived(&self, count: usize) {
        if count > 0 && self.message_started.get().is_none() {
            self.message_started.set(Some(Instant::now()));
        }
    }
}

impl<T: hyper::rt::Read + Unpin> AsyncRead for SessionIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut read = hyper::rt::ReadBuf::new(buf);
        ready!(Pin::new(&mut this.io).poll_read(cx, read.unfilled()))?;
        let count = read.filled().len();
        this.bytes_arrived(count);
        Poll::Ready(Ok(count))
    }
}

impl<T: hyper::rt::Write + Unpin> AsyncWrite for SessionIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, slices)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
