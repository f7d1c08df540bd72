//! The `websocket` receiver: OTLP requests over one long-lived, full-duplex connection, each
//! answered with an acknowledgement that names it.
//!
//! Clients that keep one connection open — browsers, edge agents behind proxies that pass
//! WebSocket but not HTTP/2 — send request after request without a round trip each, and learn
//! from the acknowledgements exactly which were accepted. The receiver runs one listener per core
//! like the others (`SO_REUSEPORT`), shares their TLS, connection tracking, graceful shutdown and
//! counters ([`Protocol::WebSocket`]), and hands each message to the core's [`SpanSink`] through
//! the same admission, decoding and submission as OTLP/HTTP.
//!
//! Why hyper for the upgrade and tungstenite for the frames: the upgrade request is an ordinary
//! HTTP/1.1 request, and hyper already parses those for the other receivers, under the same
//! header timeout, answering 404/405/426/400 with proper HTTP. hyper's own upgrade API needs a
//! `Send` connection, which a glommio connection is not, so the handshake connection is driven
//! with `without_shutdown`-style polling and taken back whole (buffered bytes included) once the
//! 101 is written. The frames are then tungstenite's (through async-tungstenite's
//! runtime-neutral `futures-io` binding): masking, fragmentation, control frames interleaved in
//! fragmented messages, UTF-8 validation, close handshakes and size limits are where WebSocket
//! implementations go wrong, and tungstenite is the maintained, widely used Rust implementation
//! that passes the Autobahn suite. Its messages hand over `bytes::Bytes`, so a binary message's
//! payload reaches the codec as a slice of what was read, not a copy.
//!
//! # Protocol (for client authors)
//!
//! **Connect** with an ordinary WebSocket handshake (RFC 6455) to `ws://host:4319/v1/traces/ws`
//! (`wss://` when the receiver has a `tls` block; the path is `path` in the config). No
//! subprotocol or extension is negotiated; the `Origin` header is not checked. A request for
//! another path is answered 404, another method 405, a request that is not a WebSocket upgrade
//! (or asks for a WebSocket version other than 13) 426, a malformed `Sec-WebSocket-Key` 400; each
//! of these answers closes the connection.
//!
//! **Send** each OTLP `ExportTraceServiceRequest` as one WebSocket message, prefixed with a
//! sequence number of your choice (the server echoes it and checks neither order nor
//! uniqueness; counting up from 0 is the natural choice):
//!
//! - a **binary** message is 8 bytes of sequence number (unsigned, big-endian) followed by the
//!   request in OTLP protobuf;
//! - a **text** message is the sequence number in decimal ASCII (1 to 20 digits, at most
//!   18446744073709551615), one line feed (`\n`, 0x0A), then the request in OTLP/JSON.
//!
//! Both count against `max_message_size` (20 MiB by default) whole, prefix included. Requests
//! may be sent back to back without waiting for acknowledgements; the server reads and answers
//! them one at a time, in order.
//!
//! **Acknowledgements** are text messages, one per request, in the order the requests were
//! sent, each a JSON object carrying the request's `seq`:
//!
//! - accepted: `{"seq":17,"accepted":120,"rejected":0}` — `accepted` spans went into the
//!   pipeline; `rejected` spans were refused by it and will not be delivered (do not resend
//!   them), with a `"message"` saying why (a `"message"` may also come as a warning with
//!   `"rejected":0`). A request without spans is acknowledged with `"accepted":0`.
//! - failed: `{"seq":17,"error":{"code":"INVALID_ARGUMENT","message":"..."}}` — nothing of the
//!   request was accepted. `code` is `INVALID_ARGUMENT` (the request does not decode, or the
//!   pipeline refuses it for good: do not resend), `RESOURCE_EXHAUSTED` or `UNAVAILABLE` (resend
//!   after `"retry_after_ms"`, which these two always carry). The connection stays open.
//!
//! Messages are at most 1024 bytes long; keys may be added in later versions, so ignore
//! unknown ones. JavaScript clients: JSON numbers above 2^53 lose precision, keep `seq` below.
//!
//! **Flow control.** When the pipeline is full and configured to make senders wait, the server
//! withholds the acknowledgement and reads nothing more from the connection until there is
//! room, so TCP flow control slows the sender; if there is no room within
//! `max_backpressure_wait` (10 s by default) it closes the connection with **1013 (Try Again
//! Later)**: reconnect after a pause and resend everything not acknowledged. A client that does
//! not read its acknowledgements likewise stops the server reading, and is disconnected after
//! `write_timeout`.
//!
//! **Close codes** the server uses (the close frame's reason says more):
//!
//! | Code | When | What to do |
//! |------|------|------------|
//! | 1001 Going Away | the server is shutting down (every request read before was acknowledged) | reconnect, resend what was not acknowledged |
//! | 1002 Protocol Error | a frame broke RFC 6455 (an unmasked frame, a bad opcode…) | fix the client |
//! | 1007 Invalid Payload | a message without a valid sequence number, or a text message that is not UTF-8 | fix the client |
//! | 1008 Policy Violation | a message trickled in slower than `read_timeout`, or no answer to a ping within `pong_timeout` | reconnect, resend |
//! | 1009 Message Too Big | a message over `max_message_size` | split the request, resend |
//! | 1013 Try Again Later | the pipeline stayed full for `max_backpressure_wait` | reconnect later, resend |
//!
//! Whatever the reason, a request without an acknowledgement was not accepted; requests the
//! client sends after the server's close frame are discarded.
//!
//! **Keep-alive.** After `ping_interval` (30 s) without hearing from the client the server sends
//! a ping; WebSocket clients answer pings with pongs on their own (browsers do). If nothing at
//! all comes back within `pong_timeout` (20 s), the connection is closed with 1008. Clients may
//! ping the server; it answers.
//!
//! **Example.** The client sends a binary message whose first 8 bytes are
//! `00 00 00 00 00 00 00 07` followed by a protobuf request with 3 spans, then the text message
//! `8\n{"resourceSpans":[]}`, then the text message `9\n{"resourceSpans":[` (truncated JSON). The
//! server answers with three text messages:
//!
//! ```text
//! {"seq":7,"accepted":3,"rejected":0}
//! {"seq":8,"accepted":0,"rejected":0}
//! {"seq":9,"error":{"code":"INVALID_ARGUMENT","message":"..."}}
//! ```
//!
//! [`Envelope`] builds and parses the messages and [`Ack`] the acknowledgements, for Rust clients.
//!
//! # Counters
//!
//! The listener's [`ReceiverStats`] count per message what the other receivers count per
//! request: `requests_accepted` / `spans_accepted` / `spans_rejected` / `bytes_accepted` for
//! messages whose spans went to the pipeline, `requests_empty`, `requests_malformed` (a request
//! that does not decode, a message without a sequence number, a frame breaking RFC 6455, a
//! handshake that is not a WebSocket upgrade), `requests_too_large` (1009), `requests_refused`
//! (error acknowledgements from the pipeline and 1013 closes), `requests_not_found` and
//! `requests_method_not_allowed` for handshakes, `requests_forbidden` for a handshake from a
//! page whose origin `allowed_origins` does not list; `body_timeouts` (`read_timeout`),
//! `write_timeouts`, `idle_timeouts` (no pong) and `header_timeouts` / `idle_timeouts` before the
//! upgrade; connections and TLS handshakes as everywhere.

mod config;
mod frame;
mod handshake;
mod io;
mod session;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use async_tungstenite::WebSocketStream;
use glommio::net::{TcpListener, TcpStream};
use spanpipe_codecs::{CodecRegistry, OtlpJson, OtlpProto};

use crate::cors::AllowedOrigins;
use crate::otlp::connection::{self, Activity, ConnectionLimits, MonitoredIo};
use crate::otlp::shutdown::{ConnectionTracker, ShutdownSignal};
use crate::otlp::{
    accept_connections, bind_socket, load_tls, open_connection, BoundReceiver, Intake, Protocol, ReceiverError,
    ReceiverStats, SpanSink,
};
use crate::tls::ALPN_HTTP1;
use io::SessionIo;
use session::Endpoint;

pub use config::WebSocketReceiverConfig;
pub use frame::{
    close_reason, Ack, AckError, AckErrorCode, Envelope, EnvelopeError, PayloadEncoding, MAX_ACK_MESSAGE_LEN,
    MAX_CLOSE_REASON_LEN, MAX_SEQUENCE_DIGITS, SEQUENCE_LEN,
};
pub use session::CLOSING_HANDSHAKE_TIMEOUT;

/// The `websocket` receiver.
#[derive(Debug)]
pub struct WebSocketReceiver;

impl WebSocketReceiver {
    /// Validates `config`, loads its TLS certificate and binds its listener on the current
    /// glommio executor's core. Nothing is accepted until [`BoundReceiver::start`]; the running
    /// receiver reports the listener as [`Protocol::WebSocket`].
    ///
    /// # Errors
    /// [`ReceiverError::InvalidConfig`] listing every problem; [`ReceiverError::Tls`] when the
    /// certificate, key or CA cannot be loaded; [`ReceiverError::Bind`] when the port cannot be
    /// bound; [`ReceiverError::MissingCodec`] when `codecs` lacks `otlp_proto` or `otlp_json`.
    pub fn bind<S: SpanSink + 'static>(
        config: &WebSocketReceiverConfig,
        sink: Rc<S>,
        codecs: &CodecRegistry,
    ) -> Result<BoundReceiver<S>, ReceiverError> {
        ReceiverError::unless_valid(config)?;
        Ok(BoundReceiver::websocket(WebSocketListener::bind(config, sink, codecs)?))
    }
}

impl WebSocketReceiverConfig {
    /// Binds `address` instead of `endpoint` (the runtime's other cores bind the port the first
    /// one got). Returns whether the receiver has a listener for `protocol`.
    pub fn set_endpoint(&mut self, protocol: Protocol, address: SocketAddr) -> bool {
        let serves = protocol == Protocol::WebSocket;
        if serves {
            self.endpoint = address.to_string();
        }
        serves
    }

    /// Reads the `tls` block's certificate, key and CA, as binding will, so that a config whose
    /// files cannot be used is refused before anything starts; binding reads them again.
    ///
    /// # Errors
    /// [`ReceiverError::Tls`] naming the key and file that cannot be used.
    pub fn load_certificates(&self) -> Result<(), ReceiverError> {
        load_tls("tls", self.tls.as_ref(), &[ALPN_HTTP1]).map(drop)
    }
}

/// What the connections of one listener share.
struct Shared<S: SpanSink> {
    endpoint: Endpoint<S>,
    upgrades: Rc<handshake::Upgrades>,
    tls: Option<Arc<rustls::ServerConfig>>,
    handshake_timeout: Option<Duration>,
    handshake_limits: ConnectionLimits,
    frames: WebSocketConfig,
}

/// The bound WebSocket listener of one core.
pub(crate) struct WebSocketListener<S: SpanSink> {
    socket: TcpListener,
    address: SocketAddr,
    shared: Rc<Shared<S>>,
}

impl<S: SpanSink + 'static> WebSocketListener<S> {
    fn bind(config: &WebSocketReceiverConfig, sink: Rc<S>, codecs: &CodecRegistry) -> Result<Self, ReceiverError> {
        let protobuf = Arc::clone(codecs.by_name(OtlpProto::NAME).map_err(ReceiverError::MissingCodec)?);
        let json = Arc::clone(codecs.by_name(OtlpJson::NAME).map_err(ReceiverError::MissingCodec)?);
        // Certificates first: a config that cannot serve TLS binds nothing.
        let tls = load_tls("tls", config.tls.as_ref(), &[ALPN_HTTP1])?;
        let (socket, address) = bind_socket("endpoint", &config.endpoint)?;
        let max_message_size = config.message_limit();
        let limits = config.session_limits();
        let handshake_timeout = config.handshake_timeout();
        Ok(Self {
            socket,
            address,
            shared: Rc::new(Shared {
                endpoint: Endpoint {
                    intake: Intake::new(Rc::clone(&sink)),
                    sink,
                    protobuf,
                    json,
                    limits,
                    max_message_size,
                },
                upgrades: Rc::new(handshake::Upgrades {
                    path: config.served_path(),
                    origins: Some(&config.allowed_origins)
                        .filter(|origins| !origins.is_empty())
                        .map(|origins| AllowedOrigins::new(origins)),
                }),
                tls,
                handshake_timeout,
                handshake_limits: ConnectionLimits {
                    header: handshake_timeout,
                    // A connection that has not started its upgrade is closed as promptly.
                    idle: handshake_timeout,
                    write: limits.write_timeout,
                    max_age: None,
                    grace: CLOSING_HANDSHAKE_TIMEOUT,
                },
                frames: frame_limits(max_message_size),
            }),
        })
    }

    /// The bound address (with the real port when 0 was asked).
    pub(crate) fn local_address(&self) -> SocketAddr {
        self.address
    }

    /// The listener's counters.
    pub(crate) fn stats(&self) -> Rc<ReceiverStats> {
        Rc::clone(&self.shared.endpoint.intake.stats)
    }

    /// Accepts until shutdown; each connection runs in its own task, counted by `tracker`.
    pub(crate) async fn accept(self, shutdown: Rc<ShutdownSignal>, tracker: Rc<ConnectionTracker>) {
        let shared = &self.shared;
        accept_connections(&self.socket, &shared.endpoint.intake.stats, &shutdown, &tracker, |stream| {
            serve(stream, Rc::clone(shared), Rc::clone(&shutdown))
        })
        .await;
    }
}

/// tungstenite's limits: one message, and so one frame, up to `max_message_size`.
fn frame_limits(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(max_message_size)).max_frame_size(Some(max_message_size))
}

async fn serve<S: SpanSink + 'static>(stream: TcpStream, shared: Rc<Shared<S>>, shutdown: Rc<ShutdownSignal>) {
    let stats = &shared.endpoint.intake.stats;
    let tls = shared.tls.as_ref().map(|tls| (tls, shared.handshake_timeout));
    let Some(io) =
        open_connection(stream, crate::rt::DEFAULT_READ_BUFFER_SIZE, tls, Protocol::WebSocket, stats, &shutdown).await
    else {
        return;
    };
    if let Some(ws) = upgrade(io, &shared, &shutdown).await {
        session::run(ws, &shared.endpoint, &shutdown).await;
    }
    stats.record(crate::otlp::ReceiverEvent::ConnectionClosed);
}

/// Serves the connection's HTTP/1.1 upgrade request; the WebSocket stream when it was accepted.
async fn upgrade<S: SpanSink>(
    io: crate::rt::GlommioIo,
    shared: &Shared<S>,
    shutdown: &Rc<ShutdownSignal>,
) -> Option<WebSocketStream<SessionIo<MonitoredIo>>> {
    let stats = &shared.endpoint.intake.stats;
    let activity = Rc::new(Activity::new(Instant::now()));
    let io = MonitoredIo::new(io, Rc::clone(&activity));
    let service = handshake::HandshakeService::new(Rc::clone(&shared.upgrades), Rc::clone(stats), Rc::clone(&activity));
    let accepted = service.accepted_flag();
    let mut builder = hyper::server::conn::http1::Builder::new();
    // One request per connection: an upgrade, or an answer saying why not with
    // `Connection: close` (not hyper's `keep_alive(false)`, which would add `close` to the 101's
    // `Connection: Upgrade` too). Header reads are timed by the connection watchdog.
    builder.header_read_timeout(None);
    let mut connection = handshake::UpgradeConnection::new(builder.serve_connection(io, service));
    connection::drive(&mut connection, activity, shared.handshake_limits, shutdown.wait(), stats).await;
    let parts = connection.into_parts()?;
    if !accepted.get() {
        return None;
    }
    let buffered = parts.read_buf.to_vec();
    Some(
        WebSocketStream::from_partially_read(SessionIo::new(parts.io), buffered, Role::Server, Some(shared.frames))
            .await,
    )
}
