//! Datagram listeners: one UDP socket per core, each datagram one request.
//!
//! Jaeger's agent protocol sends a whole `Agent.emitBatch` call in one datagram of up to 65,000
//! bytes, and a client with a big batch sends many back to back. UDP has no flow control: what
//! the kernel cannot queue it drops, and a receiver cannot tell the client to slow down. So the
//! design is about not losing a burst and counting whatever is lost:
//!
//! - **A socket per core**, all bound to the same port with `SO_REUSEPORT` (as the TCP
//!   listeners are), so the kernel spreads senders across cores and no socket is shared.
//! - **A large receive buffer**: the kernel queues a burst while the core is busy. spanpipe asks
//!   for [`DEFAULT_SOCKET_BUFFER_SIZE`] unless configured otherwise, with `SO_RCVBUFFORCE` when
//!   the process may (root or `CAP_NET_ADMIN`, which lifts the `net.core.rmem_max` cap) and
//!   `SO_RCVBUF` otherwise, reads back what the kernel granted and warns, naming
//!   `net.core.rmem_max`, when it is less (once per listener and answer, not once per core).
//! - **Drained in a tight loop**: `recvmsg(MSG_DONTWAIT)` until the socket is empty, and only
//!   then wait for readiness (a 1-byte `MSG_PEEK` through glommio's io_uring, which completes
//!   when a datagram is queued without taking it). glommio's own `recv` cannot say that a
//!   datagram was truncated nor deliver ancillary data, hence the direct `recvmsg`.
//! - **Each datagram admitted, decoded and submitted** on the spot, through the same intake as
//!   the HTTP listeners. A refusal cannot be answered: the datagram is dropped and counted.
//!
//! Counted per socket in [`ReceiverStats`]: datagrams and their bytes, spans accepted, malformed
//! datagrams, datagrams over `max_packet_size` (found with `MSG_TRUNC`, which makes `recvmsg`
//! return a datagram's full length even when the buffer is smaller), datagrams dropped because
//! the pipeline refused them, and the kernel's own drop counter for the socket. That counter
//! comes from `SO_RXQ_OVFL`: the kernel attaches the socket's running drop total to every
//! datagram it delivers, so reading it costs nothing extra per datagram and it is exactly this
//! socket's count (the `drops` column of `/proc/net/udp` would need a file read and a parse, and a
//! match on the socket's inode, to say the same). Its one limit: drops are learned with the next
//! datagram received, so drops after the last datagram of a burst show up with the next one.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::pin::pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use socket2::{Socket, Type};
use spanpipe_codecs::Codec;

use crate::otlp::shutdown::ShutdownSignal;
use crate::otlp::{Intake, Protocol, ReceiverError, ReceiverEvent, ReceiverStats, SpanSink};

/// The receive buffer spanpipe asks for when `socket_buffer_size` is 0: 4 MiB, which the kernel
/// doubles for its bookkeeping. A burst of 20 back-to-back 64 KB datagrams (what Jaeger clients
/// send for a big batch) takes about 1.3 MB of payload plus the kernel's per-datagram overhead;
/// 4 MiB leaves room for a burst several times that while the core is busy elsewhere.
pub const DEFAULT_SOCKET_BUFFER_SIZE: usize = 4 * 1024 * 1024;

/// Ancillary data room for one `SO_RXQ_OVFL` value, with `u64` alignment as `cmsghdr` needs.
const CONTROL_WORDS: usize = 8;

/// How a UDP listener receives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DatagramSettings {
    /// Largest datagram decoded; larger ones are counted and dropped.
    pub(crate) max_packet_size: usize,
    /// Receive buffer to ask the kernel for, in bytes.
    pub(crate) socket_buffer_size: usize,
}

/// One core's UDP socket for one protocol, bound but not yet receiving.
pub(crate) struct DatagramListener<S: SpanSink> {
    protocol: Protocol,
    socket: glommio::net::UdpSocket,
    address: SocketAddr,
    intake: Intake<S>,
    codec: Arc<dyn Codec>,
    max_packet_size: usize,
}

impl<S: SpanSink> std::fmt::Debug for DatagramListener<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramListener")
            .field("protocol", &self.protocol)
            .field("address", &self.address)
            .field("codec", &self.codec.name())
            .field("max_packet_size", &self.max_packet_size)
            .finish_non_exhaustive()
    }
}

impl<S: SpanSink + 'static> DatagramListener<S> {
    /// Binds `endpoint` (set by the config key `key`) with `SO_REUSEPORT` and the receive buffer
    /// of `settings`; each datagram will be decoded by `codec` and submitted to `sink`.
    pub(crate) fn bind(
        protocol: Protocol,
        key: &'static str,
        endpoint: &str,
        settings: DatagramSettings,
        codec: Arc<dyn Codec>,
        sink: Rc<S>,
    ) -> Result<Self, ReceiverError> {
        let (socket, wanted) = crate::otlp::reuse_port_socket(key, endpoint, Type::DGRAM)?;
        let bind_error = |source: io::Error| ReceiverError::Bind { key, address: wanted, source };
        socket.set_nonblocking(true).map_err(bind_error)?;
        set_receive_buffer(&socket, settings.socket_buffer_size, protocol, wanted).map_err(bind_error)?;
        enable_drop_counter(&socket).map_err(bind_error)?;
        socket.bind(&wanted.into()).map_err(bind_error)?;
        let address = socket
            .local_addr()
            .map_err(bind_error)?
            .as_socket()
            .ok_or_else(|| bind_error(io::Error::other("bound address is not an IP address")))?;
        // SAFETY: `into_raw_fd` hands over sole ownership of an open UDP socket, which the glommio
        // socket then owns and closes. (glommio takes a socket2 `Socket`, but of another socket2
        // version than this crate's.)
        let socket = unsafe { glommio::net::UdpSocket::from_raw_fd(socket.into_raw_fd()) };
        Ok(Self {
            protocol,
            socket,
            address,
            intake: Intake::new(sink),
            codec,
            max_packet_size: settings.max_packet_size,
        })
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub(crate) fn local_address(&self) -> SocketAddr {
        self.address
    }

    pub(crate) fn stats(&self) -> Rc<ReceiverStats> {
        Rc::clone(&self.intake.stats)
    }

    /// Receives until `shutdown`: drains the socket, then waits for the next datagram. Yields to
    /// the core's other tasks when glommio says they have waited long enough, so a flood of
    /// datagrams cannot starve the core's connections.
    pub(crate) async fn receive(self, shutdown: Rc<ShutdownSignal>) {
        let mut buffer = BytesMut::new();
        let mut stop = pin!(shutdown.wait());
        while !shutdown.is_triggered() {
            // Reclaims the previous datagram's memory when nothing holds on to it any more.
            buffer.reserve(self.max_packet_size);
            let room = &mut buffer.spare_capacity_mut()[..self.max_packet_size];
            match receive_datagram(self.socket.as_raw_fd(), room) {
                Ok(received) => {
                    self.handle(received, &mut buffer);
                    glommio::executor().yield_if_needed().await;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    let mut probe = [0u8; 1];
                    let ready = self.socket.peek_from(&mut probe);
                    match futures_lite::future::or(async { Some(ready.await) }, async {
                        stop.as_mut().await;
                        None
                    })
                    .await
                    {
                        None => break,
                        Some(Ok(_)) => {}
                        Some(Err(error)) => self.pause_after(&error.into()).await,
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => self.pause_after(&error).await,
            }
        }
    }

    /// After an error other than "nothing to read" (out of memory, a pending ICMP error): log
    /// it and pause briefly instead of spinning; the socket is tried again after.
    async fn pause_after(&self, error: &io::Error) {
        tracing::debug!(protocol = self.protocol.as_str(), %error, "receiving a datagram failed");
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }

    /// Counts a received datagram and, when it fits, admits, decodes and submits it.
    fn handle(&self, received: Received, buffer: &mut BytesMut) {
        let stats = &self.intake.stats;
        stats.record(ReceiverEvent::DatagramReceived { bytes: received.len as u64 });
        if let Some(total) = received.kernel_drops {
            stats.record(ReceiverEvent::KernelDrops(u64::from(total)));
        }
        if received.truncated || received.len > self.max_packet_size {
            stats.record(ReceiverEvent::TooLarge);
            return;
        }
        // SAFETY: `recvmsg` wrote `received.len` bytes (not truncated, so all of them fitted in
        // the spare capacity it was given) at the start of the buffer's spare capacity.
        unsafe { buffer.set_len(received.len) };
        let datagram = buffer.split().freeze();
        let outcome = self
            .intake
            .admit_now(datagram.len())
            .and_then(|admission| self.intake.deliver(self.codec.as_ref(), datagram, received.len, admission));
        if let Err(failure) = outcome {
            tracing::debug!(protocol = self.protocol.as_str(), ?failure, "datagram dropped");
            stats.record(failure.event());
        }
    }
}

/// What one `recvmsg` returned.
#[derive(Clone, Copy, Debug)]
struct Received {
    /// The datagram's full length (with `MSG_TRUNC`, also when it did not fit).
    len: usize,
    /// The datagram did not fit in the buffer and was cut.
    truncated: bool,
    /// The socket's running total of datagrams the kernel dropped (`SO_RXQ_OVFL`).
    kernel_drops: Option<u32>,
}

/// Receives one datagram into `room` without blocking.
fn receive_datagram(fd: std::os::fd::RawFd, room: &mut [MaybeUninit<u8>]) -> io::Result<Received> {
    let mut iov = libc::iovec { iov_base: room.as_mut_ptr().cast(), iov_len: room.len() };
    let mut control = [0u64; CONTROL_WORDS];
    // SAFETY: an all-zero `msghdr` is valid (null pointers, zero lengths); the fields set below
    // point at `iov` and `control`, which outlive the call.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `message` describes one buffer of `room.len()` writable bytes and a control buffer
    // of its declared size; the kernel writes within those bounds.
    let read = unsafe { libc::recvmsg(fd, &mut message, libc::MSG_DONTWAIT | libc::MSG_TRUNC) };
    let len = usize::try_from(read).map_err(|_| io::Error::last_os_error())?;
    let mut kernel_drops = None;
    // SAFETY: `message` was filled by a successful `recvmsg`; the CMSG macros walk its control
    // buffer within `msg_controllen`, and the data of an `SO_RXQ_OVFL` message is one `u32`,
    // read unaligned.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SO_RXQ_OVFL {
                kernel_drops = Some(std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<u32>()));
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
    }
    Ok(Received { len, truncated: message.msg_flags & libc::MSG_TRUNC != 0, kernel_drops })
}

/// Asks the kernel to report the socket's drop count with every datagram.
fn enable_drop_counter(socket: &Socket) -> io::Result<()> {
    set_int_option(socket, libc::SO_RXQ_OVFL, 1)
}

/// Sets the receive buffer to `size` bytes: `SO_RCVBUFFORCE` when permitted (it ignores
/// `net.core.rmem_max`), `SO_RCVBUF` otherwise. Warns when the kernel granted less, unless that
/// was already said of this listener's address (see [`first_report`]).
fn set_receive_buffer(socket: &Socket, size: usize, protocol: Protocol, address: SocketAddr) -> io::Result<()> {
    let wanted = i32::try_from(size).unwrap_or(i32::MAX);
    match set_int_option(socket, libc::SO_RCVBUFFORCE, wanted) {
        Ok(()) => {}
        Err(error) if error.raw_os_error() == Some(libc::EPERM) => set_int_option(socket, libc::SO_RCVBUF, wanted)?,
        Err(error) => return Err(error),
    }
    // Linux doubles the value it is given (the other half is its own bookkeeping) and reports
    // the doubled value.
    let granted = socket.recv_buffer_size()? / 2;
    if granted < size && first_report(ShortBuffer { protocol, address, requested: size, granted }) {
        tracing::warn!(
            protocol = protocol.as_str(),
            %address,
            requested = size,
            granted,
            "the kernel granted a smaller UDP receive buffer than configured (`socket_buffer_size`), so bursts \
             may be dropped: raise the sysctl net.core.rmem_max to at least the requested size, or run with \
             CAP_NET_ADMIN"
        );
    }
    Ok(())
}

/// A receive buffer the kernel granted short of the configured size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ShortBuffer {
    protocol: Protocol,
    address: SocketAddr,
    requested: usize,
    granted: usize,
}

/// Whether `short` has not been warned about yet in this process. Every core binds its own
/// socket with the same settings and gets the same answer from the kernel, so one warning per
/// core would repeat one fact (128 identical lines at start on a 64-core host running both
/// Jaeger UDP receivers). A reload that changes the size, or a kernel limit changed in between,
/// is a new answer and is warned about again.
fn first_report(short: ShortBuffer) -> bool {
    static REPORTED: Mutex<Vec<ShortBuffer>> = Mutex::new(Vec::new());
    let mut reported = REPORTED.lock().unwrap_or_else(PoisonError::into_inner);
    if reported.contains(&short) {
        return false;
    }
    reported.push(short);
    true
}

fn set_int_option(socket: &Socket, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a live `c_int` and its size is passed with it.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_buffer_is_reported_once_per_listener_and_answer() {
        // A port no other test reports on, so the process-wide record is this test's own.
        let address: SocketAddr = "127.0.0.1:1".parse().expect("an address");
        let short =
            ShortBuffer { protocol: Protocol::JaegerThriftCompact, address, requested: 1 << 24, granted: 1 << 20 };
        assert!(first_report(short), "the first core's socket warns");
        assert!(!first_report(short), "the next cores' sockets, with the same answer, do not");
        assert!(first_report(ShortBuffer { granted: 1 << 21, ..short }), "a changed kernel limit warns again");
        assert!(first_report(ShortBuffer { requested: 1 << 25, ..short }), "a reloaded size warns again");
        assert!(
            first_report(ShortBuffer { protocol: Protocol::JaegerThriftBinary, ..short }),
            "another listener warns"
        );
    }
}
