//! A glommio TCP stream as hyper IO.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncBufRead, AsyncWrite};
use glommio::net::{Preallocated, TcpStream};

/// Receive buffer size when none is configured: 256 KiB. A probe on the workload found
/// an HTTP/2 server on glommio twice as cheap per span with this size as with glommio's default
/// 8 KiB, because a 50 KB request then arrives in one or two `recv`s instead of seven. The
/// buffer is allocated zeroed (`calloc`), so an idle connection only costs the pages it touched.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 256 * 1024;

/// A glommio TCP connection that hyper can drive, client or server side.
///
/// Reads are served from a receive buffer of the size given to [`GlommioIo::new`]: the kernel
/// fills as much of it as it has in one `recv`, and hyper's reads copy out of it. Writes are
/// vectored: [`hyper::rt::Write::poll_write_vectored`] sends all slices with one `sendmsg`.
#[derive(Debug)]
pub struct GlommioIo {
    stream: TcpStream<Preallocated>,
}

impl GlommioIo {
    /// Wraps a connected (or accepted) stream, with a receive buffer of `read_buffer_size` bytes
    /// (at least 1 KiB whatever is asked, so that a misconfiguration cannot make reads byte by
    /// byte).
    #[must_use]
    pub fn new(stream: TcpStream, read_buffer_size: usize) -> Self {
        Self { stream: stream.buffered_with(Preallocated::new(read_buffer_size.max(1024))) }
    }

    /// The address of the other end.
    ///
    /// # Errors
    /// When the socket is no longer connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr().map_err(io::Error::from)
    }

    /// The local address of the connection.
    ///
    /// # Errors
    /// When the socket is no longer valid.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr().map_err(io::Error::from)
    }

    /// Enables or disables `TCP_NODELAY`.
    ///
    /// # Errors
    /// When the kernel refuses the option.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.stream.set_nodelay(nodelay).map_err(io::Error::from)
    }

    /// Turns on TCP keep-alive probes after `idle` without traffic (then every `idle / 3`, the
    /// kernel's retry count), so a peer that disappeared without a FIN is detected.
    ///
    /// # Errors
    /// When the kernel refuses the option.
    pub fn set_tcp_keepalive(&self, idle: Duration) -> io::Result<()> {
        let keepalive =
            socket2::TcpKeepalive::new().with_time(idle).with_interval((idle / 3).max(Duration::from_secs(1)));
        socket2::SockRef::from(&self.borrowed_fd()).set_tcp_keepalive(&keepalive)
    }

    /// The wrapped glommio stream.
    #[must_use]
    pub fn stream(&self) -> &TcpStream<Preallocated> {
        &self.stream
    }

    fn borrowed_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor belongs to `self.stream`, which stays open for at least as long
        // as the returned borrow of `self`.
        unsafe { BorrowedFd::borrow_raw(self.stream.as_raw_fd()) }
    }
}

impl hyper::rt::Read for GlommioIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let stream = Pin::new(&mut self.stream);
        let received = ready!(stream.poll_fill_buf(cx))?;
        // An empty slice is the end of the stream: nothing is put, which hyper reads as EOF.
        let taken = received.len().min(buf.remaining());
        buf.put_slice(&received[..taken]);
        Pin::new(&mut self.stream).consume(taken);
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for GlommioIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Some(first) = bufs.iter().find(|slice| !slice.is_empty()) else {
            return Poll::Ready(Ok(0));
        };
        // Try every slice at once without blocking; if the socket buffer is full, fall back to
        // glommio's write of the first slice, which waits for writability through io_uring.
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        match socket2::SockRef::from(&self.borrowed_fd()).send_vectored_with_flags(bufs, flags) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                let first: &[u8] = first;
                Pin::new(&mut self.stream).poll_write(cx, first)
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            result => Poll::Ready(result),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}
