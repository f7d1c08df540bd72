//! One accepted connection: hyper serving it, and a watchdog enforcing the timeouts hyper does
//! not — header read, idle, write and connection age — so a slow or silent client holds nothing
//! but its own connection, and only for a bounded time.
//!
//! The IO wrapper and the request service note what happens in an [`Activity`] (plain `Cell`s);
//! the watchdog sleeps until the earliest deadline that could apply and re-evaluates. It never
//! needs waking from the request path: while a deadline cannot have started yet, it sleeps at
//! most one timeout period, so a deadline that starts during that sleep is still met exactly
//! when the watchdog wakes (a deadline starting at `t > now` ends after `now + timeout`).

use std::cell::Cell;
use std::future::Future;
use std::io::IoSlice;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use glommio::timer::Timer;

use crate::otlp::stats::{ReceiverEvent, ReceiverStats, TimeoutKind};
use crate::rt::GlommioIo;

/// The start of the HTTP/2 connection preface, enough to tell HTTP/2 from HTTP/1.
const H2_PREFACE_START: &[u8] = b"PRI * HTTP/2.0";

/// What the first bytes of a connection say about its protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    /// The bytes so far (this many) match the HTTP/2 preface; not decided yet. A client
    /// trickling the preface is held to the HTTP/1 header timeout until it is complete.
    Undecided(usize),
    Http1,
    Http2,
}
/// The timeouts a connection is held to; `None` disables one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectionLimits {
    /// First byte of a request (or connection start) to complete headers, HTTP/1 only.
    pub(crate) header: Option<Duration>,
    /// No request in flight for this long closes the connection gracefully.
    pub(crate) idle: Option<Duration>,
    /// A response write blocked for this long closes the connection.
    pub(crate) write: Option<Duration>,
    /// Connection age after which it is closed gracefully.
    pub(crate) max_age: Option<Duration>,
    /// After a graceful close starts, how long in-flight requests may still take.
    pub(crate) grace: Duration,
}

/// What a connection is doing, as far as its timeouts care.
#[derive(Debug)]
pub(crate) struct Activity {
    opened_at: Instant,
    in_flight: Cell<u32>,
    idle_since: Cell<Instant>,
    /// When the first byte of a request not yet dispatched arrived.
    request_bytes_since: Cell<Option<Instant>>,
    write_blocked_since: Cell<Option<Instant>>,
    dialect: Cell<Dialect>,
}

impl Activity {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            opened_at: now,
            in_flight: Cell::new(0),
            idle_since: Cell::new(now),
            request_bytes_since: Cell::new(None),
            write_blocked_since: Cell::new(None),
            dialect: Cell::new(Dialect::Undecided(0)),
        }
    }

    /// A request was dispatched; returns when its first byte arrived (its start for the
    /// whole-request deadline). The guard ends it.
    pub(crate) fn request_started(self: &Rc<Self>) -> (Instant, InFlight) {
        let now = Instant::now();
        let started = if self.is_http2() { now } else { self.request_bytes_since.take().unwrap_or(now) };
        self.in_flight.set(self.in_flight.get() + 1);
        (started, InFlight { activity: Rc::clone(self) })
    }

    fn bytes_read(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if let Dialect::Undecided(matched) = self.dialect.get() {
            let expected = &H2_PREFACE_START[matched..];
            let compared = data.len().min(expected.len());
            self.dialect.set(if data[..compared] != expected[..compared] {
                Dialect::Http1
            } else if matched + compared == H2_PREFACE_START.len() {
                Dialect::Http2
            } else {
                Dialect::Undecided(matched + compared)
            });
        }
        if self.in_flight.get() == 0 && self.request_bytes_since.get().is_none() {
            self.request_bytes_since.set(Some(Instant::now()));
        }
    }

    fn is_http2(&self) -> bool {
        self.dialect.get() == Dialect::Http2
    }

    fn write_result<T>(&self, poll: &Poll<T>) {
        match poll {
            Poll::Pending if self.write_blocked_since.get().is_none() => {
                self.write_blocked_since.set(Some(Instant::now()));
            }
            Poll::Ready(_) => self.write_blocked_since.set(None),
            Poll::Pending => {}
        }
    }
}

/// A request in flight; dropping it marks the end.
#[derive(Debug)]
pub(crate) struct InFlight {
    activity: Rc<Activity>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let remaining = self.activity.in_flight.get().saturating_sub(1);
        self.activity.in_flight.set(remaining);
        if remaining == 0 {
            self.activity.idle_since.set(Instant::now());
        }
    }
}

/// [`GlommioIo`] that reports reads and blocked writes to the connection's [`Activity`].
#[derive(Debug)]
pub(crate) struct MonitoredIo {
    io: GlommioIo,
    activity: Rc<Activity>,
}

impl hyper::rt::Read for MonitoredIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        // Read into a view of the cursor so that the bytes just read can be inspected.
        let before = buf.remaining();
        // SAFETY: `ReadBuf::uninit` over the cursor's unfilled part; `GlommioIo` only writes
        // initialised bytes into it (through `put_slice`), and the advance below covers exactly
        // the bytes it filled.
        let unfilled = unsafe { buf.as_mut() };
        let mut inner = hyper::rt::ReadBuf::uninit(unfilled);
        let poll = Pin::new(&mut self.io).poll_read(cx, inner.unfilled());
        let filled = inner.filled();
        let count = filled.len();
        self.activity.bytes_read(filled);
        debug_assert!(count <= before);
        // SAFETY: the first `count` bytes of the cursor were initialised by the read above.
        unsafe { buf.advance(count) };
        poll
    }
}

impl hyper::rt::Write for MonitoredIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, data);
        self.activity.write_result(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, slices);
        self.activity.write_result(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        hyper::rt::Write::is_write_vectored(&self.io)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl MonitoredIo {
    pub(crate) fn new(io: GlommioIo, activity: Rc<Activity>) -> Self {
        Self { io, activity }
    }
}

/// What the watchdog decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Finish in-flight requests, then close (HTTP/2 GOAWAY; HTTP/1 closes when idle).
    Graceful(Option<TimeoutKind>),
    /// Close now, counting the timeout that caused it (none when a graceful close overran).
    Close(Option<TimeoutKind>),
}

struct Watchdog {
    activity: Rc<Activity>,
    limits: ConnectionLimits,
    graceful_deadline: Option<Instant>,
    armed: Option<(Instant, Timer)>,
}

impl Watchdog {
    /// The verdict due at `now`, or the moment to look again.
    fn evaluate(&self, now: Instant) -> Result<Verdict, Instant> {
        let activity = &self.activity;
        let limits = &self.limits;
        let mut due: Vec<(Instant, Verdict)> = Vec::with_capacity(4);
        // However the state changes while asleep, no new deadline ends before now + its timeout.
        let mut look_again = [limits.header, limits.idle, limits.write].into_iter().flatten().min().map(|t| now + t);

        if let Some(deadline) = self.graceful_deadline {
            due.push((deadline, Verdict::Close(None)));
        } else if let Some(age) = limits.max_age {
            due.push((activity.opened_at + age, Verdict::Graceful(None)));
        }
        if let (Some(since), Some(timeout)) = (activity.write_blocked_since.get(), limits.write) {
            due.push((since + timeout, Verdict::Close(Some(TimeoutKind::Write))));
        }
        if activity.in_flight.get() == 0 {
            match (activity.request_bytes_since.get(), limits.header) {
                (Some(since), Some(timeout)) if !activity.is_http2() => {
                    due.push((since + timeout, Verdict::Close(Some(TimeoutKind::Header))));
                }
                _ => {
                    if let (Some(timeout), None) = (limits.idle, self.graceful_deadline) {
                        due.push((activity.idle_since.get() + timeout, Verdict::Graceful(Some(TimeoutKind::Idle))));
                    }
                }
            }
        }
        if let Some((_, verdict)) = due.iter().filter(|(deadline, _)| *deadline <= now).min_by_key(|(d, _)| *d) {
            return Ok(*verdict);
        }
        for (deadline, _) in due {
            look_again = Some(look_again.map_or(deadline, |at| at.min(deadline)));
        }
        // With every timeout disabled there is nothing to watch; look again in an hour anyway.
        Err(look_again.unwrap_or(now + Duration::from_secs(3600)))
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Verdict> {
        loop {
            let wake_at = match self.evaluate(Instant::now()) {
                Ok(verdict) => return Poll::Ready(verdict),
                Err(wake_at) => wake_at,
            };
            if self.armed.as_ref().is_none_or(|(armed_for, _)| *armed_for != wake_at) {
                let timer = Timer::new(wake_at.saturating_duration_since(Instant::now()));
                self.armed = Some((wake_at, timer));
            }
            let fired = self.armed.as_mut().is_some_and(|(_, timer)| Pin::new(timer).poll(cx).is_ready());
            if !fired {
                return Poll::Pending;
            }
            self.armed = None;
        }
    }
}

/// A hyper connection that can be asked to finish gracefully.
pub(crate) trait GracefulConnection: Future {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

/// Drives `connection` until it ends, a timeout closes it, or `shutdown` asks it to finish.
pub(crate) async fn drive<C, F>(
    connection: C,
    activity: Rc<Activity>,
    limits: ConnectionLimits,
    shutdown: F,
    stats: &ReceiverStats,
) where
    C: GracefulConnection,
    F: Future<Output = ()>,
{
    let mut connection = pin!(connection);
    let mut shutdown = pin!(shutdown);
    let mut watchdog = Watchdog { activity, limits, graceful_deadline: None, armed: None };
    std::future::poll_fn(|cx| loop {
        if connection.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let asked_to_stop = watchdog.graceful_deadline.is_none() && shutdown.as_mut().poll(cx).is_ready();
        let verdict = if asked_to_stop { Poll::Ready(Verdict::Graceful(None)) } else { watchdog.poll(cx) };
        match verdict {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Verdict::Close(kind)) => {
                if let Some(kind) = kind {
                    stats.record(ReceiverEvent::TimedOut(kind));
                }
                return Poll::Ready(());
            }
            Poll::Ready(Verdict::Graceful(kind)) => {
                if let Some(kind) = kind {
                    stats.record(ReceiverEvent::TimedOut(kind));
                }
                watchdog.graceful_deadline = Some(Instant::now() + limits.grace);
                connection.as_mut().graceful_shutdown();
                // Poll the connection again: it has work to do (GOAWAY, closing).
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header: Some(Duration::from_secs(2)),
            idle: Some(Duration::from_secs(10)),
            write: Some(Duration::from_secs(3)),
            max_age: None,
            grace: Duration::from_secs(5),
        }
    }

    fn watchdog(activity: Activity) -> Watchdog {
        Watchdog { activity: Rc::new(activity), limits: limits(), graceful_deadline: None, armed: None }
    }

    #[test]
    fn idle_connection_closes_gracefully_after_the_idle_timeout() {
        let start = Instant::now();
        let dog = watchdog(Activity::new(start));
        assert_eq!(dog.evaluate(start + Duration::from_secs(1)), Err(start + Duration::from_secs(3)));
        assert_eq!(dog.evaluate(start + Duration::from_secs(10)), Ok(Verdict::Graceful(Some(TimeoutKind::Idle))));
    }

    #[test]
    fn partial_http1_headers_close_after_the_header_timeout() {
        let start = Instant::now();
        let activity = Activity::new(start);
        activity.bytes_read(b"POST /v1/tr");
        let since = activity.request_bytes_since.get().unwrap();
        let dog = watchdog(activity);
        assert!(dog.evaluate(since + Duration::from_millis(1999)).is_err());
        assert_eq!(dog.evaluate(since + Duration::from_secs(2)), Ok(Verdict::Close(Some(TimeoutKind::Header))));
    }

    #[test]
    fn http2_connections_are_held_to_the_idle_timeout_not_the_header_timeout() {
        let start = Instant::now();
        let activity = Activity::new(start);
        activity.bytes_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        let dog = watchdog(activity);
        assert!(dog.evaluate(start + Duration::from_secs(5)).is_err());
        assert_eq!(dog.evaluate(start + Duration::from_secs(10)), Ok(Verdict::Graceful(Some(TimeoutKind::Idle))));
    }

    #[test]
    fn a_preface_trickled_byte_by_byte_is_held_to_the_header_timeout_until_complete() {
        let start = Instant::now();
        let activity = Activity::new(start);
        for byte in b"PRI * HTTP/2." {
            activity.bytes_read(std::slice::from_ref(byte));
        }
        assert_eq!(activity.dialect.get(), Dialect::Undecided(13));
        let since = activity.request_bytes_since.get().unwrap();
        let dog = watchdog(activity);
        assert_eq!(dog.evaluate(since + Duration::from_secs(2)), Ok(Verdict::Close(Some(TimeoutKind::Header))));
        dog.activity.bytes_read(b"0\r\n\r\nSM\r\n\r\n");
        assert!(dog.activity.is_http2());
        let other = Activity::new(start);
        other.bytes_read(b"P");
        other.bytes_read(b"OST / HTTP/1.1\r\n");
        assert_eq!(other.dialect.get(), Dialect::Http1);
    }

    #[test]
    fn a_request_in_flight_suspends_idle_and_header_deadlines_but_not_write() {
        let start = Instant::now();
        let activity = Rc::new(Activity::new(start));
        let (_, in_flight) = activity.request_started();
        let dog = Watchdog { activity: Rc::clone(&activity), limits: limits(), graceful_deadline: None, armed: None };
        assert!(dog.evaluate(start + Duration::from_secs(60)).is_err());
        activity.write_result::<()>(&Poll::Pending);
        let blocked = activity.write_blocked_since.get().unwrap();
        assert_eq!(dog.evaluate(blocked + Duration::from_secs(3)), Ok(Verdict::Close(Some(TimeoutKind::Write))));
        activity.write_result(&Poll::Ready(()));
        drop(in_flight);
        let idle = activity.idle_since.get();
        assert_eq!(dog.evaluate(idle + Duration::from_secs(10)), Ok(Verdict::Graceful(Some(TimeoutKind::Idle))));
    }

    #[test]
    fn a_graceful_close_that_overruns_its_grace_is_closed() {
        let start = Instant::now();
        let mut dog = watchdog(Activity::new(start));
        dog.graceful_deadline = Some(start + Duration::from_secs(5));
        assert_eq!(dog.evaluate(start + Duration::from_secs(5)), Ok(Verdict::Close(None)));
    }
}
