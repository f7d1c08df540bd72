//! Per-core receiver counters.
//!
//! Each core's receiver counts into its own [`ReceiverStats`] (plain `Cell`s: no atomics, no
//! sharing on the request path); the runtime reads a [`ReceiverStatsSnapshot`] per core and adds
//! them up. Everything that happens to a request is one [`ReceiverEvent`] recorded through
//! [`ReceiverStats::record`], so the counters and what they mean live in one place.

use std::cell::Cell;
use std::ops::{Add, AddAssign};

/// Which listener a count or an address belongs to: one variant per kind of listener a
/// receiver can open. A receiver has at most one listener of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OTLP/gRPC (`otlp` receiver, `protocols.grpc`).
    Grpc,
    /// OTLP/HTTP (`otlp` receiver, `protocols.http`).
    Http,
    /// Zipkin's HTTP API, v2 and v1 (`zipkin` receiver).
    Zipkin,
    /// Jaeger collector gRPC, `CollectorService/PostSpans` (`jaeger` receiver, `protocols.grpc`).
    JaegerGrpc,
    /// Jaeger collector HTTP, binary Thrift batches (`jaeger` receiver, `protocols.thrift_http`).
    JaegerThriftHttp,
    /// Jaeger agent UDP, compact Thrift (`jaeger` receiver, `protocols.thrift_compact`).
    JaegerThriftCompact,
    /// Jaeger agent UDP, binary Thrift (`jaeger` receiver, `protocols.thrift_binary`).
    JaegerThriftBinary,
    /// The WebSocket receiver.
    WebSocket,
}

impl Protocol {
    /// Every listener kind, for whoever walks a receiver's listeners by kind.
    pub const ALL: [Self; 8] = [
        Self::Grpc,
        Self::Http,
        Self::Zipkin,
        Self::JaegerGrpc,
        Self::JaegerThriftHttp,
        Self::JaegerThriftCompact,
        Self::JaegerThriftBinary,
        Self::WebSocket,
    ];

    /// The metric label (`transport`) and log name: the protocol's section in its receiver's
    /// config (`grpc`, `http`, `thrift_http`, `thrift_compact`, `thrift_binary`); `http` for
    /// Zipkin, whose receiver has one HTTP listener and no protocol sections; `websocket`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc | Self::JaegerGrpc => "grpc",
            Self::Http | Self::Zipkin => "http",
            Self::JaegerThriftHttp => "thrift_http",
            Self::JaegerThriftCompact => "thrift_compact",
            Self::JaegerThriftBinary => "thrift_binary",
            Self::WebSocket => "websocket",
        }
    }

    /// Whether the listener receives datagrams (UDP) rather than connections: its connection
    /// counters stay 0 and its datagram counters count.
    #[must_use]
    pub fn is_datagram(self) -> bool {
        matches!(self, Self::JaegerThriftCompact | Self::JaegerThriftBinary)
    }
}

/// Which timeout cut a connection or request short.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// The request's header block did not arrive in time (`read_header_timeout`).
    Header,
    /// The whole request did not arrive in time (`read_timeout`).
    Body,
    /// The client did not read the response in time (`write_timeout`).
    Write,
    /// No request came for too long (`idle_timeout`, `max_connection_idle`).
    Idle,
}

/// Something that happened in a receiver, counted once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiverEvent {
    /// A connection was accepted.
    ConnectionOpened,
    /// A connection ended.
    ConnectionClosed,
    /// Accepting a connection failed (for example the process ran out of file descriptors).
    AcceptFailed,
    /// A connection to a TLS port was closed because its TLS handshake did not complete: refused
    /// by either side (a certificate, a version, plain HTTP on a TLS port), broken off, or too
    /// slow.
    TlsHandshakeFailed,
    /// A request's spans went to the pipeline; `rejected` of them were refused by it.
    Accepted {
        /// Spans in the request.
        spans: u64,
        /// Of those, spans the pipeline rejected (partial success).
        rejected: u64,
        /// Request body size as received.
        bytes: u64,
    },
    /// A request without spans, answered with success.
    Empty,
    /// The pipeline refused the request (full, unavailable or permanent).
    Refused,
    /// The body could not be decompressed or decoded.
    Malformed,
    /// The body exceeded the size limit, as sent or decompressed.
    TooLarge,
    /// The content type or content encoding is not one the receiver handles.
    UnsupportedMediaType,
    /// The path or gRPC method is not served.
    NotFound,
    /// The HTTP method is not POST.
    MethodNotAllowed,
    /// The request came from a web page whose origin the listener does not allow (a WebSocket
    /// upgrade answered 403).
    Forbidden,
    /// A timeout fired.
    TimedOut(TimeoutKind),
    /// A datagram arrived (UDP listeners), of this many bytes (its full size, also when it is
    /// over the size limit). What became of it is a second event: `Accepted`, `Empty`,
    /// `Malformed`, `Refused` (dropped: UDP cannot push back) or `TooLarge`.
    DatagramReceived {
        /// The datagram's size.
        bytes: u64,
    },
    /// The kernel's count of datagrams it dropped on this socket because its receive buffer was
    /// full, as last reported (a running total: the largest value seen is kept).
    KernelDrops(u64),
}

/// The counters of one receiver protocol on one core.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    connections_opened: Cell<u64>,
    connections_closed: Cell<u64>,
    accept_failures: Cell<u64>,
    tls_handshake_failures: Cell<u64>,
    requests_accepted: Cell<u64>,
    spans_accepted: Cell<u64>,
    spans_rejected: Cell<u64>,
    bytes_accepted: Cell<u64>,
    requests_empty: Cell<u64>,
    requests_refused: Cell<u64>,
    requests_malformed: Cell<u64>,
    requests_too_large: Cell<u64>,
    requests_unsupported_media_type: Cell<u64>,
    requests_not_found: Cell<u64>,
    requests_method_not_allowed: Cell<u64>,
    requests_forbidden: Cell<u64>,
    header_timeouts: Cell<u64>,
    body_timeouts: Cell<u64>,
    write_timeouts: Cell<u64>,
    idle_timeouts: Cell<u64>,
    datagrams_received: Cell<u64>,
    datagram_bytes_received: Cell<u64>,
    kernel_drops: Cell<u64>,
}

fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get().wrapping_add(by));
}

impl ReceiverStats {
    /// Counts `event`.
    pub fn record(&self, event: ReceiverEvent) {
        match event {
            ReceiverEvent::ConnectionOpened => bump(&self.connections_opened, 1),
            ReceiverEvent::ConnectionClosed => bump(&self.connections_closed, 1),
            ReceiverEvent::AcceptFailed => bump(&self.accept_failures, 1),
            ReceiverEvent::TlsHandshakeFailed => bump(&self.tls_handshake_failures, 1),
            ReceiverEvent::Accepted { spans, rejected, bytes } => {
                bump(&self.requests_accepted, 1);
                bump(&self.spans_accepted, spans.saturating_sub(rejected));
                bump(&self.spans_rejected, rejected);
                bump(&self.bytes_accepted, bytes);
            }
            ReceiverEvent::Empty => bump(&self.requests_empty, 1),
            ReceiverEvent::Refused => bump(&self.requests_refused, 1),
            ReceiverEvent::Malformed => bump(&self.requests_malformed, 1),
            ReceiverEvent::TooLarge => bump(&self.requests_too_large, 1),
            ReceiverEvent::UnsupportedMediaType => bump(&self.requests_unsupported_media_type, 1),
            ReceiverEvent::NotFound => bump(&self.requests_not_found, 1),
            ReceiverEvent::MethodNotAllowed => bump(&self.requests_method_not_allowed, 1),
            ReceiverEvent::Forbidden => bump(&self.requests_forbidden, 1),
            ReceiverEvent::TimedOut(TimeoutKind::Header) => bump(&self.header_timeouts, 1),
            ReceiverEvent::TimedOut(TimeoutKind::Body) => bump(&self.body_timeouts, 1),
            ReceiverEvent::TimedOut(TimeoutKind::Write) => bump(&self.write_timeouts, 1),
            ReceiverEvent::TimedOut(TimeoutKind::Idle) => bump(&self.idle_timeouts, 1),
            ReceiverEvent::DatagramReceived { bytes } => {
                bump(&self.datagrams_received, 1);
                bump(&self.datagram_bytes_received, bytes);
            }
            ReceiverEvent::KernelDrops(total) => self.kernel_drops.set(self.kernel_drops.get().max(total)),
        }
    }

    /// The counters as plain numbers, to send to whoever sums the cores.
    #[must_use]
    pub fn snapshot(&self) -> ReceiverStatsSnapshot {
        ReceiverStatsSnapshot {
            connections_opened: self.connections_opened.get(),
            connections_closed: self.connections_closed.get(),
            accept_failures: self.accept_failures.get(),
            tls_handshake_failures: self.tls_handshake_failures.get(),
            requests_accepted: self.requests_accepted.get(),
            spans_accepted: self.spans_accepted.get(),
            spans_rejected: self.spans_rejected.get(),
            bytes_accepted: self.bytes_accepted.get(),
            requests_empty: self.requests_empty.get(),
            requests_refused: self.requests_refused.get(),
            requests_malformed: self.requests_malformed.get(),
            requests_too_large: self.requests_too_large.get(),
            requests_unsupported_media_type: self.requests_unsupported_media_type.get(),
            requests_not_found: self.requests_not_found.get(),
            requests_method_not_allowed: self.requests_method_not_allowed.get(),
            requests_forbidden: self.requests_forbidden.get(),
            header_timeouts: self.header_timeouts.get(),
            body_timeouts: self.body_timeouts.get(),
            write_timeouts: self.write_timeouts.get(),
            idle_timeouts: self.idle_timeouts.get(),
            datagrams_received: self.datagrams_received.get(),
            datagram_bytes_received: self.datagram_bytes_received.get(),
            kernel_drops: self.kernel_drops.get(),
        }
    }
}

/// A copy of one core's [`ReceiverStats`]; snapshots of all cores add up to the process's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiverStatsSnapshot {
    /// Connections accepted.
    pub connections_opened: u64,
    /// Connections ended.
    pub connections_closed: u64,
    /// Accepts that failed.
    pub accept_failures: u64,
    /// Connections closed because their TLS handshake did not complete.
    pub tls_handshake_failures: u64,
    /// Requests whose spans went to the pipeline.
    pub requests_accepted: u64,
    /// Spans the pipeline took.
    pub spans_accepted: u64,
    /// Spans the pipeline rejected (reported as partial success).
    pub spans_rejected: u64,
    /// Body bytes (as received) of accepted requests.
    pub bytes_accepted: u64,
    /// Requests without spans.
    pub requests_empty: u64,
    /// Requests the pipeline refused.
    pub requests_refused: u64,
    /// Requests whose body could not be decompressed or decoded.
    pub requests_malformed: u64,
    /// Requests over the size limit.
    pub requests_too_large: u64,
    /// Requests with an unsupported content type or encoding.
    pub requests_unsupported_media_type: u64,
    /// Requests for a path or method not served.
    pub requests_not_found: u64,
    /// HTTP requests with a method other than POST.
    pub requests_method_not_allowed: u64,
    /// Requests from a web page whose origin is not allowed.
    pub requests_forbidden: u64,
    /// Connections closed because headers came too slowly.
    pub header_timeouts: u64,
    /// Requests whose body came too slowly.
    pub body_timeouts: u64,
    /// Connections closed because the client did not read its response.
    pub write_timeouts: u64,
    /// Connections closed for idling.
    pub idle_timeouts: u64,
    /// Datagrams received (UDP listeners), whatever became of them. Of these,
    /// `requests_accepted` went to the pipeline, `requests_empty` held no spans,
    /// `requests_malformed` could not be decoded, `requests_too_large` exceeded
    /// `max_packet_size` and `requests_refused` were dropped because the pipeline refused them.
    pub datagrams_received: u64,
    /// Bytes of the datagrams received.
    pub datagram_bytes_received: u64,
    /// Datagrams the kernel dropped because the socket's receive buffer was full (from the
    /// socket's `SO_RXQ_OVFL` counter, reported with each datagram received).
    pub kernel_drops: u64,
}

impl ReceiverStatsSnapshot {
    /// Connections open at the time of the snapshot.
    #[must_use]
    pub fn connections_open(&self) -> u64 {
        self.connections_opened.saturating_sub(self.connections_closed)
    }
}

impl AddAssign for ReceiverStatsSnapshot {
    fn add_assign(&mut self, other: Self) {
        let Self {
            connections_opened,
            connections_closed,
            accept_failures,
            tls_handshake_failures,
            requests_accepted,
            spans_accepted,
            spans_rejected,
            bytes_accepted,
            requests_empty,
            requests_refused,
            requests_malformed,
            requests_too_large,
            requests_unsupported_media_type,
            requests_not_found,
            requests_method_not_allowed,
            requests_forbidden,
            header_timeouts,
            body_timeouts,
            write_timeouts,
            idle_timeouts,
            datagrams_received,
            datagram_bytes_received,
            kernel_drops,
        } = other;
        self.connections_opened += connections_opened;
        self.connections_closed += connections_closed;
        self.accept_failures += accept_failures;
        self.tls_handshake_failures += tls_handshake_failures;
        self.requests_accepted += requests_accepted;
        self.spans_accepted += spans_accepted;
        self.spans_rejected += spans_rejected;
        self.bytes_accepted += bytes_accepted;
        self.requests_empty += requests_empty;
        self.requests_refused += requests_refused;
        self.requests_malformed += requests_malformed;
        self.requests_too_large += requests_too_large;
        self.requests_unsupported_media_type += requests_unsupported_media_type;
        self.requests_not_found += requests_not_found;
        self.requests_method_not_allowed += requests_method_not_allowed;
        self.requests_forbidden += requests_forbidden;
        self.header_timeouts += header_timeouts;
        self.body_timeouts += body_timeouts;
        self.write_timeouts += write_timeouts;
        self.idle_timeouts += idle_timeouts;
        self.datagrams_received += datagrams_received;
        self.datagram_bytes_received += datagram_bytes_received;
        self.kernel_drops += kernel_drops;
    }
}

impl Add for ReceiverStatsSnapshot {
    type Output = Self;

    fn add(mut self, other: Self) -> Self {
        self += other;
        self
    }
}

impl std::iter::Sum for ReceiverStatsSnapshot {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_land_in_their_counters_and_snapshots_add_up() {
        let core_a = ReceiverStats::default();
        core_a.record(ReceiverEvent::ConnectionOpened);
        core_a.record(ReceiverEvent::Accepted { spans: 10, rejected: 2, bytes: 500 });
        core_a.record(ReceiverEvent::TimedOut(TimeoutKind::Body));
        let core_b = ReceiverStats::default();
        core_b.record(ReceiverEvent::ConnectionOpened);
        core_b.record(ReceiverEvent::ConnectionClosed);
        core_b.record(ReceiverEvent::Accepted { spans: 5, rejected: 0, bytes: 100 });
        core_b.record(ReceiverEvent::Malformed);
        core_b.record(ReceiverEvent::TlsHandshakeFailed);
        core_b.record(ReceiverEvent::DatagramReceived { bytes: 64 });
        core_b.record(ReceiverEvent::KernelDrops(7));
        core_b.record(ReceiverEvent::KernelDrops(5));

        let total: ReceiverStatsSnapshot = [core_a.snapshot(), core_b.snapshot()].into_iter().sum();
        assert_eq!(total.requests_accepted, 2);
        assert_eq!(total.spans_accepted, 13);
        assert_eq!(total.spans_rejected, 2);
        assert_eq!(total.bytes_accepted, 600);
        assert_eq!(total.body_timeouts, 1);
        assert_eq!(total.requests_malformed, 1);
        assert_eq!(total.tls_handshake_failures, 1);
        assert_eq!(total.connections_open(), 1);
        assert_eq!((total.datagrams_received, total.datagram_bytes_received), (1, 64));
        assert_eq!(total.kernel_drops, 7, "the kernel's counter is a running total: the largest value is kept");
    }
}
