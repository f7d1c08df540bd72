//! A glommio TCP stream as hyper IO, in plaintext or TLS.

use std::cell::RefCell;
use std::io::{self, BufRead as _, IoSlice, Write as _};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncBufRead, AsyncWrite};
use glommio::net::{Preallocated, TcpStream};

use crate::tls::HandshakeError;

/// Receive buffer size when none is configured: 256 KiB. A probe on the workload found
/// an HTTP/2 server on glommio twice as cheap per span with this size as with glommio's default
/// 8 KiB, because a 50 KB request then arrives in one or two `recv`s instead of seven. The
/// buffer is allocated zeroed (`calloc`), so an idle connection only costs the pages it touched.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 256 * 1024;

/// A glommio TCP connection that hyper can drive, client or server side, in plaintext or TLS.
///
/// Reads are served from a receive buffer of the size given to [`GlommioIo::new`]: the kernel
/// fills as much of it as it has in one `recv`. In plaintext hyper's reads copy out of it; with
/// TLS, rustls takes the records from it and hyper's reads copy out the decrypted bytes, so
/// neither path zeroes or allocates anything per read. Writes are vectored:
/// [`hyper::rt::Write::poll_write_vectored`] sends all slices with one `sendmsg` (with TLS, the
/// slices are encrypted into records first and the records leave together).
///
/// TLS is a rustls session attached with [`GlommioIo::with_tls`] and completed with
/// [`GlommioIo::handshake`]; a plaintext connection pays one branch per call for it.
#[derive(Debug)]
pub struct GlommioIo {
    stream: TcpStream<Preallocated>,
    /// The TLS session; `None` in plaintext.
    tls: Option<Box<TlsSession>>,
}

#[derive(Debug)]
struct TlsSession {
    connection: rustls::Connection,
    /// Where TLS errors met while reading are recorded, if anyone asked.
    errors: Option<TlsErrorSlot>,
}

/// Where connections record the TLS error that ended them after their handshake — typically a
/// server's alert refusing this side's certificate, which TLS 1.3 sends only after the client
/// has finished its side. hyper reports such an error by its text alone (its HTTP/2 errors keep
/// no source), so the owner of the connections reads the typed error here. Cheap to clone; all
/// clones share the slot.
#[derive(Clone, Debug, Default)]
pub struct TlsErrorSlot(Rc<RefCell<Option<rustls::Error>>>);

impl TlsErrorSlot {
    /// The last error recorded since the last call, if any.
    #[must_use]
    pub fn take(&self) -> Option<rustls::Error> {
        self.0.borrow_mut().take()
    }

    fn record(&self, error: &io::Error) {
        if let Some(tls) = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            *self.0.borrow_mut() = Some(tls.clone());
        }
    }
}

impl GlommioIo {
    /// Wraps a connected (or accepted) stream, in plaintext, with a receive buffer of
    /// `read_buffer_size` bytes (at least 1 KiB whatever is asked, so that a misconfiguration
    /// cannot make reads byte by byte).
    #[must_use]
    pub fn new(stream: TcpStream, read_buffer_size: usize) -> Self {
        Self { stream: stream.buffered_with(Preallocated::new(read_buffer_size.max(1024))), tls: None }
    }

    /// The connection with a TLS session (a `rustls::ServerConnection` or `ClientConnection`)
    /// over it; bytes already received are the session's first input. Call
    /// [`GlommioIo::handshake`] before handing it to hyper.
    #[must_use]
    pub fn with_tls(mut self, session: impl Into<rustls::Connection>) -> Self {
        self.tls = Some(Box::new(TlsSession { connection: session.into(), errors: None }));
        self
    }

    /// Records in `slot` the TLS errors met while reading, from now on (a no-op in plaintext).
    pub fn record_tls_errors_in(&mut self, slot: TlsErrorSlot) {
        if let Some(session) = self.tls.as_deref_mut() {
            session.errors = Some(slot);
        }
    }

    /// Runs the TLS handshake to its end (a no-op in plaintext). Bound it with
    /// [`with_deadline`](crate::rt::with_deadline): a peer that sends nothing is waited for.
    ///
    /// # Errors
    /// [`HandshakeError`]: refused by either side (after rustls' alert was offered to the
    /// peer), the socket failed, or the peer closed the connection.
    pub async fn handshake(&mut self) -> Result<(), HandshakeError> {
        std::future::poll_fn(|cx| {
            let Some(TlsSession { connection: session, .. }) = self.tls.as_deref_mut() else {
                return Poll::Ready(Ok(()));
            };
            loop {
                ready!(poll_flush_tls(&mut self.stream, session, cx)).map_err(HandshakeError::from_io)?;
                if !session.is_handshaking() {
                    return Poll::Ready(Ok(()));
                }
                match ready!(poll_receive_tls(&mut self.stream, session, cx)) {
                    Ok(false) => {}
                    Ok(true) => return Poll::Ready(Err(HandshakeError::Closed)),
                    Err(error) => return Poll::Ready(Err(HandshakeError::from_io(error))),
                }
            }
        })
        .await
    }

    /// The first byte the peer sent, waiting for it; `None` when it closed without sending
    /// anything. Nothing is consumed. A receiver uses it to tell a TLS client (a handshake record
    /// starts with 22) from one speaking plain HTTP to a TLS port.
    ///
    /// # Errors
    /// When the socket fails.
    pub async fn peek_first_byte(&mut self) -> io::Result<Option<u8>> {
        std::future::poll_fn(|cx| {
            Pin::new(&mut self.stream).poll_fill_buf(cx).map_ok(|received| received.first().copied())
        })
        .await
    }

    /// The application protocol the TLS handshake agreed on (`h2`, `http/1.1`), if any.
    #[must_use]
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls.as_ref().and_then(|session| session.connection.alpn_protocol())
    }

    /// Whether the connection is encrypted.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
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
        socket2::SockRef::from(&borrowed_fd(&self.stream)).set_tcp_keepalive(&keepalive)
    }

    /// The wrapped glommio stream (below TLS, if any).
    #[must_use]
    pub fn stream(&self) -> &TcpStream<Preallocated> {
        &self.stream
    }
}

impl hyper::rt::Read for GlommioIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let this = self.get_mut();
        let Some(TlsSession { connection: session, errors }) = this.tls.as_deref_mut() else {
            let received = ready!(Pin::new(&mut this.stream).poll_fill_buf(cx))?;
            // An empty slice is the end of the stream: nothing is put, which hyper reads as EOF.
            let taken = received.len().min(buf.remaining());
            buf.put_slice(&received[..taken]);
            Pin::new(&mut this.stream).consume(taken);
            return Poll::Ready(Ok(()));
        };
        loop {
            let mut plaintext = session.reader();
            match plaintext.fill_buf() {
                Ok(decrypted) => {
                    // Empty after the peer's close_notify: the end of the stream.
                    let taken = decrypted.len().min(buf.remaining());
                    buf.put_slice(&decrypted[..taken]);
                    plaintext.consume(taken);
                    return Poll::Ready(Ok(()));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed TCP without a close_notify. HTTP's own framing tells a complete
                // message from a truncated one, so this ends the stream like a clean close.
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(())),
                Err(error) => return Poll::Ready(Err(error)),
            }
            // What rustls owes the peer (an answer to a key update) leaves now if the socket
            // takes it, else with the next write or flush.
            if let Poll::Ready(Err(error)) = poll_flush_tls(&mut this.stream, session, cx) {
                return Poll::Ready(Err(error));
            }
            if let Err(error) = ready!(poll_receive_tls(&mut this.stream, session, cx)) {
                if let Some(slot) = errors {
                    slot.record(&error);
                }
                return Poll::Ready(Err(error));
            }
        }
    }
}

impl hyper::rt::Write for GlommioIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.tls.as_deref_mut() {
            None => Pin::new(&mut this.stream).poll_write(cx, buf),
            Some(session) => poll_write_tls(&mut this.stream, &mut session.connection, cx, &[IoSlice::new(buf)]),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.tls.as_deref_mut() {
            None => poll_send(&mut this.stream, cx, bufs),
            Some(session) => poll_write_tls(&mut this.stream, &mut session.connection, cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(TlsSession { connection: session, .. }) = this.tls.as_deref_mut() {
            ready!(poll_flush_tls(&mut this.stream, session, cx))?;
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(TlsSession { connection: session, .. }) = this.tls.as_deref_mut() {
            // Idempotent: rustls queues the alert once.
            session.send_close_notify();
            ready!(poll_flush_tls(&mut this.stream, session, cx))?;
        }
        Pin::new(&mut this.stream).poll_close(cx)
    }
}

fn borrowed_fd(stream: &TcpStream<Preallocated>) -> BorrowedFd<'_> {
    // SAFETY: the descriptor belongs to `stream`, which stays open for at least as long as the
    // returned borrow of it.
    unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) }
}

/// Writes `bufs` to the socket: every slice at once with one `sendmsg` if the socket buffer
/// takes them without blocking; if it is full, glommio's write of the first slice, which waits
/// for writability through io_uring.
fn poll_send(
    stream: &mut TcpStream<Preallocated>,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let Some(first) = bufs.iter().find(|slice| !slice.is_empty()) else {
        return Poll::Ready(Ok(0));
    };
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    match socket2::SockRef::from(&borrowed_fd(stream)).send_vectored_with_flags(bufs, flags) {
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
            let first: &[u8] = first;
            Pin::new(stream).poll_write(cx, first)
        }
        Err(error) if error.kind() == io::ErrorKind::Interrupted => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        result => Poll::Ready(result),
    }
}

/// The socket as the `io::Write` rustls writes its records to; "would block" means the write
/// is pending and the task will be woken when the socket takes more.
struct SocketWriter<'a, 'b> {
    stream: &'a mut TcpStream<Preallocated>,
    cx: &'a mut Context<'b>,
}

impl io::Write for SocketWriter<'_, '_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(data)])
    }

    fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        match poll_send(self.stream, self.cx, slices) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encrypts `bufs` (as much as rustls takes) and sends the records.
fn poll_write_tls(
    stream: &mut TcpStream<Preallocated>,
    session: &mut rustls::Connection,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    // Push out what rustls already holds first, so its buffer never grows past one batch of
    // records and a slow reader slows the writer down.
    ready!(poll_flush_tls(stream, session, cx))?;
    let accepted = session.writer().write_vectored(bufs)?;
    // Send at once; what the socket cannot take now leaves with the next write or flush.
    if let Poll::Ready(Err(error)) = poll_flush_tls(stream, session, cx) {
        return Poll::Ready(Err(error));
    }
    Poll::Ready(Ok(accepted))
}

/// Sends every TLS record rustls holds.
fn poll_flush_tls(
    stream: &mut TcpStream<Preallocated>,
    session: &mut rustls::Connection,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while session.wants_write() {
        match session.write_tls(&mut SocketWriter { stream, cx }) {
            Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(error) => return Poll::Ready(Err(error)),
        }
    }
    Poll::Ready(Ok(()))
}

/// Hands rustls what the socket received (ciphertext, straight from the receive buffer) and
/// lets it decrypt; `true` when the peer closed the connection. A TLS error comes back as
/// `InvalidData` wrapping the `rustls::Error`, after rustls' alert was offered to the socket.
fn poll_receive_tls(
    stream: &mut TcpStream<Preallocated>,
    session: &mut rustls::Connection,
    cx: &mut Context<'_>,
) -> Poll<io::Result<bool>> {
    let received = ready!(Pin::new(&mut *stream).poll_fill_buf(cx))?;
    let closed = received.is_empty();
    let mut unread = received;
    // An empty read tells rustls the peer closed the connection.
    let taken = session.read_tls(&mut unread)?;
    if taken == 0 && !closed {
        return Poll::Ready(Err(io::Error::other("rustls took no bytes from a non-empty receive buffer")));
    }
    Pin::new(&mut *stream).consume(taken);
    if let Err(error) = session.process_new_packets() {
        // Tell the peer why, if the socket takes the alert now; the connection ends either way.
        let _ = poll_flush_tls(stream, session, cx);
        return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, error)));
    }
    Poll::Ready(Ok(closed))
}
