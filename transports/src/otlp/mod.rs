//! The OTLP receivers: OTLP/gRPC and OTLP/HTTP on glommio, one instance per core — and the
//! server machinery the other receivers reuse ([`crate::zipkin`], [`crate::jaeger`]): listeners,
//! the HTTP server and its route table, admission through the [`SpanSink`], timeouts, TLS and
//! shutdown, all bound into one [`BoundReceiver`] shape.
//!
//! [`OtlpReceiver::bind`] opens the configured listeners on the calling core (glommio sets
//! `SO_REUSEPORT`, so every core binds the same port and the kernel spreads connections across
//! them); [`BoundReceiver::start`] spawns their accept loops and returns a [`RunningReceiver`],
//! whose [`RunningReceiver::shutdown`] stops accepting, lets in-flight requests finish and waits
//! for the connections to close. Decoded batches go to the core's [`SpanSink`].
//!
//! Both protocols answer as the OTLP specification says: success (with `partial_success` when
//! the pipeline rejected spans), malformed data → `INVALID_ARGUMENT` / 400 with a message, over
//! the size limit → `RESOURCE_EXHAUSTED` / 413, pipeline full → `RESOURCE_EXHAUSTED` with
//! `RetryInfo` / 429 with `Retry-After`, pipeline unavailable → `UNAVAILABLE` / 503.
//!
//! A request is read within bounds before anything is decoded: the body may not exceed the
//! limit as sent nor after decompression, and must arrive before `read_timeout`; connections
//! are held to header, idle and write timeouts by a per-connection watchdog (see
//! `connection.rs`), so no client can hold more than its own connection for a bounded time.
//!
//! With a `tls` block a port speaks TLS only. The rustls configuration is loaded when the
//! receiver binds; each connection's handshake runs on its core before hyper sees the
//! connection, bounded by the header timeout (or the read timeout), and raced with shutdown. A
//! handshake that fails — refused certificate, plain HTTP sent to the TLS port (answered with a
//! plaintext 400, as Go's servers do), a client that goes silent — closes that connection,
//! counts [`ReceiverEvent::TlsHandshakeFailed`] and is logged at debug level; nothing else is
//! affected.

mod body;
pub(crate) mod config;
pub(crate) mod connection;
mod otlp_grpc;
pub(crate) mod otlp_http;
mod proto;
pub(crate) mod shutdown;
mod sink;
mod stats;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::net::{TcpListener, TcpStream};
use hyper::body::Incoming;
use hyper_util::server::conn::auto;
use spanpipe_codecs::{Codec, CodecRegistry, OtlpProto, RegistryError};
use spanpipe_config::{ComponentConfig, FieldError};

use crate::compression::Encoding;
use crate::cors::CorsConfig;
use crate::rt::{with_deadline, GlommioExecutor, GlommioIo, GlommioTimer};
use crate::tls::{HandshakeError, TlsError, TlsServerConfig, ALPN_H2, ALPN_HTTP1};
use connection::{Activity, ConnectionLimits, GracefulConnection, MonitoredIo};
use otlp_http::{AnswerStyle, HttpSettings, Route, RouteCodecs};
use shutdown::{ConnectionTracker, ShutdownSignal};

pub use body::ResponseBody;
pub use config::{
    GrpcKeepaliveConfig, GrpcKeepaliveServerParameters, GrpcServerConfig, HttpKeepaliveConfig, HttpServerConfig,
    NotImplemented, OtlpReceiverConfig, Protocols,
};
pub(crate) use otlp_grpc::{GrpcMethod, JAEGER_POST_SPANS};
pub use proto::GrpcCode;
pub use sink::{Accepted, Refusal, RoomWait, SpanSink};
pub use stats::{Protocol, ReceiverEvent, ReceiverStats, ReceiverStatsSnapshot, TimeoutKind};

/// HTTP/2 window a stream starts with: 1 MiB, so a typical request arrives without waiting for
/// a window update (h2's default, 64 KiB, costs a round trip per 64 KiB).
pub const HTTP2_STREAM_WINDOW: u32 = 1024 * 1024;
/// HTTP/2 connection window: 4 MiB, room for several concurrent requests.
pub const HTTP2_CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;
/// Largest HTTP/2 frame the receiver accepts: 256 KiB, fewer frames per request than the
/// default 16 KiB.
pub const HTTP2_MAX_FRAME_SIZE: u32 = 256 * 1024;
/// Largest header block accepted, in bytes (per request, HTTP/2).
pub const MAX_HEADER_LIST_SIZE: u32 = 64 * 1024;
/// Concurrent streams per h2c connection on the OTLP/HTTP port (which has no config key for it).
pub const H2C_MAX_CONCURRENT_STREAMS: u32 = 100;

/// Why a receiver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The configuration does not validate.
    #[error("invalid receiver config: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidConfig(Vec<FieldError>),
    /// A listener could not be opened.
    #[error("cannot listen on {address} (set by `{key}`): {source}")]
    Bind {
        /// The config key of the address.
        key: &'static str,
        /// The address.
        address: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// OTLP/gRPC bodies are OTLP protobuf, and the registry has no codec for it.
    #[error("OTLP/gRPC needs the `otlp_proto` codec: {0}")]
    MissingCodec(#[source] RegistryError),
    /// A `tls` block's certificate, key or CA could not be loaded (the error's field is the full
    /// path, `protocols.grpc.tls.cert_file`).
    #[error("{0}")]
    Tls(#[source] Box<TlsError>),
}

impl ReceiverError {
    /// Every problem `config` has, as [`ReceiverError::InvalidConfig`]; the first step of each
    /// receiver's `bind`.
    pub(crate) fn unless_valid(config: &impl ComponentConfig) -> Result<(), Self> {
        let problems = config.validate();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Self::InvalidConfig(problems))
        }
    }
}

/// Why a request failed, before it is phrased in its protocol.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The body could not be decompressed or decoded.
    Malformed(String),
    /// Over the size limit.
    TooLarge(String),
    /// Content type or encoding not handled.
    UnsupportedMediaType(String),
    /// Path or method not served.
    NotFound(String),
    /// Not a POST.
    MethodNotAllowed,
    /// The request did not arrive before its deadline.
    TimedOut(String),
    /// The client's stream broke while the body was read.
    Broken(String),
    /// The pipeline did not take the request.
    Refused(sink::Refusal),
}

impl Failure {
    pub(crate) fn event(&self) -> ReceiverEvent {
        match self {
            Self::Malformed(_) | Self::Broken(_) => ReceiverEvent::Malformed,
            Self::TooLarge(_) => ReceiverEvent::TooLarge,
            Self::UnsupportedMediaType(_) => ReceiverEvent::UnsupportedMediaType,
            Self::NotFound(_) => ReceiverEvent::NotFound,
            Self::MethodNotAllowed => ReceiverEvent::MethodNotAllowed,
            Self::TimedOut(_) => ReceiverEvent::TimedOut(TimeoutKind::Body),
            Self::Refused(_) => ReceiverEvent::Refused,
        }
    }

    fn from_body_error(error: body::BodyError, limit: usize, read_timeout: Option<Duration>) -> Self {
        match error {
            body::BodyError::TooLarge => Self::TooLarge(format!("request body exceeds the limit of {limit} bytes")),
            body::BodyError::TimedOut => Self::TimedOut(format!(
                "request not received within the read timeout of {}",
                spanpipe_config::GoDuration(read_timeout.unwrap_or_default())
            )),
            body::BodyError::Broken(error) => Self::Broken(format!("request body could not be read: {error}")),
        }
    }
}

/// Protocol-specific settings of a server.
enum ServerKind {
    Grpc(otlp_grpc::GrpcSettings),
    /// Boxed: its route table, CORS policy and response headers are several times the gRPC
    /// settings, and a listener holds one.
    Http(Box<otlp_http::HttpSettings>),
}

/// What every connection of one listener shares.
struct Server<S: SpanSink> {
    intake: Intake<S>,
    read_timeout: Option<Duration>,
    kind: ServerKind,
}

/// The way from a listener to the pipeline, the same for every protocol: admission (and
/// waiting for room), decoding, submitting, and the listener's counters.
pub(crate) struct Intake<S: SpanSink> {
    sink: Rc<S>,
    pub(crate) stats: Rc<ReceiverStats>,
}

impl<S: SpanSink> Intake<S> {
    /// An intake into `sink` with counters of its own.
    pub(crate) fn new(sink: Rc<S>) -> Self {
        Self { sink, stats: Rc::default() }
    }

    /// Asks the sink once, without waiting for room: for listeners that cannot make their
    /// clients wait (UDP).
    pub(crate) fn admit_now(&self, encoded_len: usize) -> Result<S::Admission, Failure> {
        self.sink.admit(encoded_len).map_err(Failure::Refused)
    }

    /// Asks the sink to admit a request of `encoded_len` bytes. When it is full but asks callers
    /// to wait, waits for room until `deadline` (the read deadline, or the client's own when
    /// earlier) and asks again; the last refusal is the answer when time runs out.
    pub(crate) async fn admit(&self, encoded_len: usize, deadline: Option<Instant>) -> Result<S::Admission, Failure> {
        loop {
            let refusal = match self.sink.admit(encoded_len) {
                Ok(admission) => return Ok(admission),
                Err(refusal @ Refusal::Exhausted { .. }) => refusal,
                Err(refusal) => return Err(Failure::Refused(refusal)),
            };
            let Some(room) = self.sink.wait_for_room() else {
                return Err(Failure::Refused(refusal));
            };
            // Asked again now that the wait is registered, so room made in between is not missed.
            if let Ok(admission) = self.sink.admit(encoded_len) {
                return Ok(admission);
            }
            if with_deadline(deadline, room).await.is_err() {
                return Err(Failure::Refused(refusal));
            }
        }
    }

    /// Decodes `payload` and hands it to the sink; an empty request is a success.
    pub(crate) fn deliver(
        &self,
        codec: &dyn Codec,
        payload: Bytes,
        wire_len: usize,
        admission: S::Admission,
    ) -> Result<sink::Accepted, Failure> {
        self.deliver_counted(codec, payload, wire_len, admission).map(|(_, outcome)| outcome)
    }

    /// [`Intake::deliver`], also returning how many spans the request held (for answers that
    /// report accepted spans, as the WebSocket acknowledgements do).
    pub(crate) fn deliver_counted(
        &self,
        codec: &dyn Codec,
        payload: Bytes,
        wire_len: usize,
        admission: S::Admission,
    ) -> Result<(u64, sink::Accepted), Failure> {
        let batch = match codec.decode(payload) {
            Ok(batch) => batch,
            Err(error) if error.is_empty_request() => {
                self.stats.record(ReceiverEvent::Empty);
                return Ok((0, sink::Accepted::all()));
            }
            Err(error) => return Err(Failure::Malformed(error.to_string())),
        };
        let spans = batch.len() as u64;
        let outcome = self.sink.submit(batch, admission).map_err(Failure::Refused)?;
        let rejected = outcome.rejected_spans.min(spans);
        self.stats.record(ReceiverEvent::Accepted { spans, rejected, bytes: wire_len as u64 });
        Ok((spans, outcome))
    }
}

/// hyper's service for one connection: dispatches each request to its protocol's handler.
struct RequestService<S: SpanSink> {
    server: Rc<Server<S>>,
    activity: Rc<Activity>,
}

impl<S: SpanSink + 'static> hyper::service::Service<http::Request<Incoming>> for RequestService<S> {
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>>>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let server = Rc::clone(&self.server);
        let (started, in_flight) = self.activity.request_started();
        Box::pin(async move {
            let deadline = server.read_timeout.map(|timeout| started + timeout);
            let response = match &server.kind {
                ServerKind::Grpc(settings) => otlp_grpc::handle(&server, settings, request, deadline).await,
                ServerKind::Http(settings) => otlp_http::handle(&server, settings, request, deadline).await,
            };
            drop(in_flight);
            Ok(response)
        })
    }
}

impl<S: SpanSink + 'static> GracefulConnection
    for auto::Connection<'_, MonitoredIo, RequestService<S>, GlommioExecutor>
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        auto::Connection::graceful_shutdown(self);
    }
}

/// One bound listener and what its connections need.
pub(crate) struct Listener<S: SpanSink> {
    protocol: Protocol,
    socket: TcpListener,
    address: SocketAddr,
    server: Rc<Server<S>>,
    builder: auto::Builder<GlommioExecutor>,
    limits: ConnectionLimits,
    read_buffer_size: usize,
    /// The TLS configuration, when the port speaks TLS.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// How long a TLS handshake may take.
    handshake_timeout: Option<Duration>,
}

impl<S: SpanSink + 'static> Listener<S> {
    /// Binds the OTLP/gRPC listener.
    fn otlp_grpc(grpc: &GrpcServerConfig, sink: Rc<S>, codecs: &CodecRegistry) -> Result<Self, ReceiverError> {
        let codec = Arc::clone(codecs.by_name(OtlpProto::NAME).map_err(ReceiverError::MissingCodec)?);
        let keys = ListenerKeys { endpoint: "protocols.grpc.endpoint", tls: "protocols.grpc.tls" };
        Self::grpc(Protocol::Grpc, keys, grpc, &otlp_grpc::OTLP_EXPORT, codec, sink)
    }

    /// Binds a gRPC listener serving the one `method`, its request messages decoded by `codec`:
    /// HTTP/2 only, with gRPC's keep-alive pings.
    pub(crate) fn grpc(
        protocol: Protocol,
        keys: ListenerKeys,
        grpc: &GrpcServerConfig,
        method: &'static GrpcMethod,
        codec: Arc<dyn Codec>,
        sink: Rc<S>,
    ) -> Result<Self, ReceiverError> {
        // Certificates first: a config that cannot serve TLS binds nothing.
        let tls = load_tls(keys.tls, grpc.tls.as_ref(), &[ALPN_H2])?;
        let (socket, address) = bind_socket(keys.endpoint, &grpc.endpoint)?;
        let mut builder = auto::Builder::new(GlommioExecutor::new()).http2_only();
        tune_http2(&mut builder, grpc.concurrent_streams());
        builder.http2().keep_alive_interval(grpc.keepalive_time()).keep_alive_timeout(grpc.keepalive_timeout());
        let read_timeout = non_zero(grpc.read_timeout.0);
        let settings = otlp_grpc::GrpcSettings { max_message_size: grpc.max_message_size(), codec, method };
        Ok(Self {
            protocol,
            socket,
            address,
            server: Rc::new(Server { intake: Intake::new(sink), read_timeout, kind: ServerKind::Grpc(settings) }),
            builder,
            limits: ConnectionLimits {
                header: non_zero(grpc.read_header_timeout.0),
                idle: Some(grpc.max_connection_idle()),
                write: None,
                max_age: grpc.max_connection_age(),
                grace: grpc.max_connection_age_grace().or(read_timeout).unwrap_or(Duration::from_secs(30)),
            },
            read_buffer_size: grpc.read_buffer_size,
            tls,
            handshake_timeout: non_zero(grpc.read_header_timeout.0).or(read_timeout),
        })
    }

    /// Binds the OTLP/HTTP listener: `traces_url_path` with every codec of the registry.
    fn otlp_http(http: &HttpServerConfig, sink: Rc<S>, codecs: &CodecRegistry) -> Result<Self, ReceiverError> {
        let path = config::sanitized_url_path(&http.traces_url_path);
        let not_found = format!("404 page not found: traces are received at {path}");
        let route = Route { path, codecs: RouteCodecs::Registry(codecs.clone()), style: AnswerStyle::Otlp };
        let keys = ListenerKeys { endpoint: "protocols.http.endpoint", tls: "protocols.http.tls" };
        Self::http(Protocol::Http, keys, http, vec![route], not_found, sink)
    }

    /// Binds an HTTP listener serving `routes`: HTTP/1.1 and h2c (told apart by the HTTP/2
    /// preface), or both over TLS with a `tls` block. `not_found` is the message of a 404.
    pub(crate) fn http(
        protocol: Protocol,
        keys: ListenerKeys,
        http: &HttpServerConfig,
        routes: Vec<Route>,
        not_found: String,
        sink: Rc<S>,
    ) -> Result<Self, ReceiverError> {
        let tls = load_tls(keys.tls, http.tls.as_ref(), &[ALPN_H2, ALPN_HTTP1])?;
        let (socket, address) = bind_socket(keys.endpoint, &http.endpoint)?;
        let mut builder = auto::Builder::new(GlommioExecutor::new());
        // Header reads are timed by the connection watchdog, which also covers idle connections.
        builder.http1().keep_alive(http.keep_alive_enabled()).header_read_timeout(None);
        tune_http2(&mut builder, H2C_MAX_CONCURRENT_STREAMS);
        let read_timeout = non_zero(http.read_timeout.0);
        let settings = HttpSettings {
            routes,
            not_found,
            max_body_size: http.max_body_size(),
            encodings: http.compression_algorithms.iter().filter_map(|name| Encoding::from_name(name)).collect(),
            cors: http.cors.as_ref().and_then(CorsConfig::policy),
            response_headers: crate::config_headers::header_map(&http.response_headers),
        };
        Ok(Self {
            protocol,
            socket,
            address,
            server: Rc::new(Server {
                intake: Intake::new(sink),
                read_timeout,
                kind: ServerKind::Http(Box::new(settings)),
            }),
            builder,
            limits: ConnectionLimits {
                header: non_zero(http.read_header_timeout.0),
                idle: http.idle_timeout_in_force(),
                write: non_zero(http.write_timeout.0),
                max_age: None,
                grace: read_timeout.unwrap_or(Duration::from_secs(30)),
            },
            read_buffer_size: crate::rt::DEFAULT_READ_BUFFER_SIZE,
            tls,
            handshake_timeout: non_zero(http.read_header_timeout.0).or(read_timeout),
        })
    }
}

/// The config keys a listener's errors name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListenerKeys {
    /// The key of its address (`protocols.http.endpoint`).
    pub(crate) endpoint: &'static str,
    /// The key of its `tls` block (`protocols.http.tls`).
    pub(crate) tls: &'static str,
}

/// A receiver of one core, bound but not yet accepting: its TCP listeners (HTTP and gRPC) and
/// its UDP sockets. Every receiver kind binds into this one shape, so the runtime holds OTLP,
/// Zipkin, Jaeger and WebSocket receivers alike.
pub struct BoundReceiver<S: SpanSink + 'static> {
    listeners: Vec<Listener<S>>,
    datagram_listeners: Vec<crate::udp::DatagramListener<S>>,
    websocket_listeners: Vec<crate::websocket::WebSocketListener<S>>,
}

impl<S: SpanSink + 'static> std::fmt::Debug for BoundReceiver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundReceiver").field("listening", &self.listening()).finish()
    }
}

/// The `otlp` receiver: OTLP/gRPC and OTLP/HTTP.
#[derive(Debug)]
pub struct OtlpReceiver;

fn non_zero(duration: Duration) -> Option<Duration> {
    Some(duration).filter(|d| !d.is_zero())
}

impl OtlpReceiverConfig {
    /// Reads every `tls` block's certificates, keys and CAs, as binding will, so that a config
    /// whose files cannot be used is refused before anything starts (`spanpipe validate`
    /// included); binding reads them again.
    ///
    /// # Errors
    /// [`ReceiverError::Tls`] naming the first key and file that cannot be used.
    pub fn load_certificates(&self) -> Result<(), ReceiverError> {
        if let Some(grpc) = &self.protocols.grpc {
            load_tls("protocols.grpc.tls", grpc.tls.as_ref(), &[ALPN_H2])?;
        }
        if let Some(http) = &self.protocols.http {
            load_tls("protocols.http.tls", http.tls.as_ref(), &[ALPN_H2, ALPN_HTTP1])?;
        }
        Ok(())
    }
}

pub(crate) fn load_tls(
    key: &str,
    tls: Option<&TlsServerConfig>,
    alpn: &[&[u8]],
) -> Result<Option<Arc<rustls::ServerConfig>>, ReceiverError> {
    tls.map(|tls| tls.load(alpn).map_err(|error| ReceiverError::Tls(Box::new(error.within(key))))).transpose()
}

/// How many finished handshakes a listener's kernel queue holds before the core accepts them (the
/// kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: i32 = 1024;

/// A socket of `kind` (TCP or UDP) for `endpoint`, set by the config key `key`, not yet bound,
/// and the address it is to bind. It has `SO_REUSEPORT`, so that every core binds the same port
/// and the kernel spreads connections or datagrams over them.
pub(crate) fn reuse_port_socket(
    key: &'static str,
    endpoint: &str,
    kind: socket2::Type,
) -> Result<(socket2::Socket, SocketAddr), ReceiverError> {
    let wanted = config::parse_endpoint(endpoint)
        .map_err(|message| ReceiverError::InvalidConfig(vec![FieldError::new(key, message)]))?;
    let socket = socket2::Socket::new(socket2::Domain::for_address(wanted), kind, None)
        .and_then(|socket| socket.set_reuse_port(true).map(|()| socket))
        .map_err(|source| ReceiverError::Bind { key, address: wanted, source })?;
    Ok((socket, wanted))
}

/// Binds a TCP listener on `endpoint` (set by the config key `key`) for the current core: a
/// [`reuse_port_socket`] that also sets `SO_REUSEADDR`.
///
/// `SO_REUSEADDR` lets the port be bound while connections some earlier server on it closed are
/// still in `TIME_WAIT` (a minute on Linux): without it, a collector taking over a port from
/// another server, or from a process that bound it without `SO_REUSEPORT`, fails with "address
/// already in use" until they expire. It does not let two servers listen on one port: Linux
/// refuses that unless both set `SO_REUSEPORT`. (glommio's own `TcpListener::bind` sets only
/// `SO_REUSEPORT`, hence the socket is made here.)
pub(crate) fn bind_socket(key: &'static str, endpoint: &str) -> Result<(TcpListener, SocketAddr), ReceiverError> {
    use std::os::fd::{FromRawFd as _, IntoRawFd as _};
    let (socket, wanted) = reuse_port_socket(key, endpoint, socket2::Type::STREAM)?;
    let bind_error = |source: std::io::Error| ReceiverError::Bind { key, address: wanted, source };
    socket.set_reuse_address(true).map_err(bind_error)?;
    socket.bind(&wanted.into()).map_err(bind_error)?;
    socket.listen(LISTEN_BACKLOG).map_err(bind_error)?;
    // SAFETY: `into_raw_fd` hands over sole ownership of an open, bound and listening TCP socket,
    // which the glommio listener then owns and closes. (glommio takes a socket2 `Socket`, but of
    // another socket2 version than this crate's.)
    let socket = unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) };
    let address = socket.local_addr().map_err(|error| bind_error(error.into()))?;
    Ok((socket, address))
}

impl OtlpReceiver {
    /// Validates `config`, loads its TLS certificates and binds its listeners on the current
    /// glommio executor's core. Nothing is accepted until [`BoundReceiver::start`].
    ///
    /// # Errors
    /// [`ReceiverError::InvalidConfig`] listing every problem; [`ReceiverError::Tls`] when a
    /// certificate, key or CA cannot be loaded; [`ReceiverError::Bind`] when a port cannot be
    /// bound; [`ReceiverError::MissingCodec`] when gRPC is configured and `codecs` has no
    /// `otlp_proto`.
    pub fn bind<S: SpanSink + 'static>(
        config: &OtlpReceiverConfig,
        sink: Rc<S>,
        codecs: &CodecRegistry,
    ) -> Result<BoundReceiver<S>, ReceiverError> {
        ReceiverError::unless_valid(config)?;
        let mut listeners = Vec::new();
        if let Some(grpc) = &config.protocols.grpc {
            listeners.push(Listener::otlp_grpc(grpc, Rc::clone(&sink), codecs)?);
        }
        if let Some(http) = &config.protocols.http {
            listeners.push(Listener::otlp_http(http, sink, codecs)?);
        }
        Ok(BoundReceiver::new(listeners, Vec::new()))
    }
}

impl<S: SpanSink + 'static> BoundReceiver<S> {
    pub(crate) fn new(listeners: Vec<Listener<S>>, datagram_listeners: Vec<crate::udp::DatagramListener<S>>) -> Self {
        Self { listeners, datagram_listeners, websocket_listeners: Vec::new() }
    }

    /// A receiver made of one WebSocket listener.
    pub(crate) fn websocket(listener: crate::websocket::WebSocketListener<S>) -> Self {
        Self { listeners: Vec::new(), datagram_listeners: Vec::new(), websocket_listeners: vec![listener] }
    }

    /// The address a protocol's listener is bound to (with the real port when 0 was asked).
    #[must_use]
    pub fn local_address(&self, protocol: Protocol) -> Option<SocketAddr> {
        self.listening().into_iter().find(|(p, _)| *p == protocol).map(|(_, address)| address)
    }

    /// Every listener with its bound address, in config order (TCP listeners first). The
    /// runtime binds the first core with the configured addresses and every other core with
    /// these, so that port 0 means one port for all cores.
    #[must_use]
    pub fn listening(&self) -> Vec<(Protocol, SocketAddr)> {
        let tcp = self.listeners.iter().map(|l| (l.protocol, l.address));
        let websocket = self.websocket_listeners.iter().map(|l| (Protocol::WebSocket, l.local_address()));
        tcp.chain(websocket).chain(self.datagram_listeners.iter().map(|l| (l.protocol(), l.local_address()))).collect()
    }

    /// Starts accepting on every listener (spawning one accept loop each on this core).
    #[must_use]
    pub fn start(self) -> RunningReceiver {
        let shutdown = Rc::new(ShutdownSignal::default());
        let tracker = Rc::new(ConnectionTracker::default());
        let mut running = RunningReceiver {
            shutdown: Rc::clone(&shutdown),
            tracker: Rc::clone(&tracker),
            accept_loops: Vec::new(),
            listening: Vec::new(),
        };
        for listener in self.listeners {
            running.listening.push((listener.protocol, listener.address, Rc::clone(&listener.server.intake.stats)));
            let accept = accept_loop(Rc::new(listener), Rc::clone(&shutdown), Rc::clone(&tracker));
            running.accept_loops.push(glommio::spawn_local(accept).detach());
        }
        for listener in self.websocket_listeners {
            running.listening.push((Protocol::WebSocket, listener.local_address(), listener.stats()));
            let accept = listener.accept(Rc::clone(&shutdown), Rc::clone(&tracker));
            running.accept_loops.push(glommio::spawn_local(accept).detach());
        }
        for listener in self.datagram_listeners {
            running.listening.push((listener.protocol(), listener.local_address(), listener.stats()));
            running.accept_loops.push(glommio::spawn_local(listener.receive(Rc::clone(&shutdown))).detach());
        }
        running
    }
}

fn tune_http2(builder: &mut auto::Builder<GlommioExecutor>, max_concurrent_streams: u32) {
    builder
        .http2()
        .timer(GlommioTimer::new())
        .initial_stream_window_size(HTTP2_STREAM_WINDOW)
        .initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
        .adaptive_window(false)
        .max_frame_size(HTTP2_MAX_FRAME_SIZE)
        .max_concurrent_streams(max_concurrent_streams)
        .max_header_list_size(MAX_HEADER_LIST_SIZE);
}

/// Accepts until shutdown; each connection runs in its own task.
async fn accept_loop<S: SpanSink + 'static>(
    listener: Rc<Listener<S>>,
    shutdown: Rc<ShutdownSignal>,
    tracker: Rc<ConnectionTracker>,
) {
    accept_connections(&listener.socket, &listener.server.intake.stats, &shutdown, &tracker, |stream| {
        serve_connection(stream, Rc::clone(&listener), Rc::clone(&shutdown))
    })
    .await;
}

/// Accepts on `socket` until shutdown; `serve` makes each connection's future, which runs in a
/// task of its own, counted by `tracker` until it completes. Every TCP listener of the crate
/// accepts through this.
pub(crate) async fn accept_connections<C: Future<Output = ()> + 'static>(
    socket: &TcpListener,
    stats: &ReceiverStats,
    shutdown: &Rc<ShutdownSignal>,
    tracker: &Rc<ConnectionTracker>,
    mut serve: impl FnMut(TcpStream) -> C,
) {
    loop {
        let accepted = {
            let mut accept = pin!(socket.accept());
            let mut stop = pin!(shutdown.wait());
            std::future::poll_fn(|cx| match stop.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(None),
                Poll::Pending => accept.as_mut().poll(cx).map(Some),
            })
            .await
        };
        match accepted {
            None => break,
            Some(Ok(stream)) => {
                let guard = tracker.enter();
                let connection = serve(stream);
                glommio::spawn_local(async move {
                    connection.await;
                    drop(guard);
                })
                .detach();
            }
            Some(Err(_)) => {
                // Out of descriptors or memory: count it and pause instead of spinning; the
                // connections already open keep being served.
                stats.record(ReceiverEvent::AcceptFailed);
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection<S: SpanSink + 'static>(
    stream: TcpStream,
    listener: Rc<Listener<S>>,
    shutdown: Rc<ShutdownSignal>,
) {
    let stats = &listener.server.intake.stats;
    let tls = listener.tls.as_ref().map(|tls| (tls, listener.handshake_timeout));
    let Some(io) = open_connection(stream, listener.read_buffer_size, tls, listener.protocol, stats, &shutdown).await
    else {
        return;
    };
    let activity = Rc::new(Activity::new(Instant::now()));
    let io = MonitoredIo::new(io, Rc::clone(&activity));
    let service = RequestService { server: Rc::clone(&listener.server), activity: Rc::clone(&activity) };
    let connection = listener.builder.serve_connection(io, service);
    connection::drive(connection, activity, listener.limits, shutdown.wait(), stats).await;
    stats.record(ReceiverEvent::ConnectionClosed);
}

/// Counts a new connection and readies its IO: on a TLS port (`tls` holds the configuration
/// and the handshake's time limit) after the TLS handshake, raced with shutdown. `None` when
/// the connection ended there, counted closed.
pub(crate) async fn open_connection(
    stream: TcpStream,
    read_buffer_size: usize,
    tls: Option<(&Arc<rustls::ServerConfig>, Option<Duration>)>,
    protocol: Protocol,
    stats: &ReceiverStats,
    shutdown: &Rc<ShutdownSignal>,
) -> Option<GlommioIo> {
    stats.record(ReceiverEvent::ConnectionOpened);
    // Responses are small and must leave at once; a failure here only costs latency.
    let _ = stream.set_nodelay(true);
    let io = GlommioIo::new(stream, read_buffer_size);
    let Some((tls, handshake_timeout)) = tls else {
        return Some(io);
    };
    let handshake = accept_tls(io, tls, handshake_timeout);
    // Shutdown does not wait for a handshake: the connection has no request in flight yet.
    let stopped = async {
        shutdown.wait().await;
        None
    };
    let secured = match futures_lite::future::or(async { Some(handshake.await) }, stopped).await {
        Some(Ok(secured)) => Some(secured),
        Some(Err((peer, error))) => {
            stats.record(ReceiverEvent::TlsHandshakeFailed);
            tracing::debug!(protocol = protocol.as_str(), ?peer, %error, "TLS handshake failed");
            None
        }
        None => None,
    };
    if secured.is_none() {
        stats.record(ReceiverEvent::ConnectionClosed);
    }
    secured
}

/// What Go's HTTP servers answer a client that sends plain HTTP to a TLS port.
const PLAINTEXT_ON_TLS_PORT: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Runs the server side of the TLS handshake within `timeout`. A client that starts with plain
/// HTTP (a request line begins with an upper-case method, a TLS handshake with byte 22) is
/// answered [`PLAINTEXT_ON_TLS_PORT`] instead. The error comes with the peer's address.
async fn accept_tls(
    mut io: GlommioIo,
    config: &Arc<rustls::ServerConfig>,
    timeout: Option<Duration>,
) -> Result<GlommioIo, (Option<SocketAddr>, HandshakeError)> {
    let peer = io.peer_addr().ok();
    let handshake = async {
        match io.peek_first_byte().await.map_err(HandshakeError::Io)? {
            None => return Err(HandshakeError::Closed),
            Some(first) if first.is_ascii_uppercase() => {
                write_all_and_close(&mut io, PLAINTEXT_ON_TLS_PORT).await.map_err(HandshakeError::Io)?;
                return Err(HandshakeError::PlaintextClient);
            }
            Some(_) => {}
        }
        let session = rustls::ServerConnection::new(Arc::clone(config)).map_err(HandshakeError::Tls)?;
        let mut secured = io.with_tls(session);
        secured.handshake().await?;
        Ok(secured)
    };
    match with_deadline(timeout.map(|timeout| Instant::now() + timeout), handshake).await {
        Ok(Ok(secured)) => Ok(secured),
        Ok(Err(error)) => Err((peer, error)),
        Err(_) => Err((peer, HandshakeError::TimedOut(timeout.unwrap_or_default()))),
    }
}

/// Writes `data` in plaintext and closes the connection.
async fn write_all_and_close(io: &mut GlommioIo, mut data: &[u8]) -> std::io::Result<()> {
    use hyper::rt::Write as _;
    while !data.is_empty() {
        let written = std::future::poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, data)).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        data = &data[written..];
    }
    std::future::poll_fn(|cx| Pin::new(&mut *io).poll_shutdown(cx)).await
}

/// A core's receiver while it accepts connections and datagrams.
pub struct RunningReceiver {
    shutdown: Rc<ShutdownSignal>,
    tracker: Rc<ConnectionTracker>,
    accept_loops: Vec<glommio::task::JoinHandle<()>>,
    listening: Vec<(Protocol, SocketAddr, Rc<ReceiverStats>)>,
}

impl std::fmt::Debug for RunningReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let listening: Vec<_> = self.listening.iter().map(|(p, a, _)| (p, a)).collect();
        f.debug_struct("RunningReceiver")
            .field("listening", &listening)
            .field("open_connections", &self.tracker.open())
            .finish()
    }
}

impl RunningReceiver {
    /// The address a protocol's listener is bound to.
    #[must_use]
    pub fn local_address(&self, protocol: Protocol) -> Option<SocketAddr> {
        self.listening.iter().find(|(p, _, _)| *p == protocol).map(|(_, address, _)| *address)
    }

    /// The counters of a protocol's listener on this core.
    #[must_use]
    pub fn stats(&self, protocol: Protocol) -> Option<Rc<ReceiverStats>> {
        self.listening.iter().find(|(p, _, _)| *p == protocol).map(|(_, _, stats)| Rc::clone(stats))
    }

    /// Every listener of this core: its protocol, bound address and counters.
    pub fn listeners(&self) -> impl Iterator<Item = (Protocol, SocketAddr, &Rc<ReceiverStats>)> + '_ {
        self.listening.iter().map(|(protocol, address, stats)| (*protocol, *address, stats))
    }

    /// Connections currently open on this core, over all protocols.
    #[must_use]
    pub fn open_connections(&self) -> usize {
        self.tracker.open()
    }

    /// Stops accepting (the listening sockets close, UDP sockets stop receiving), asks every connection to finish its
    /// in-flight requests and close (HTTP/2 GOAWAY; HTTP/1 after the current response), and
    /// waits until all have. A connection that overruns its grace period is closed outright, so
    /// this completes; wrap it in a deadline to bound it further.
    pub async fn shutdown(self) {
        self.shutdown.trigger();
        for accept_loop in self.accept_loops {
            accept_loop.await;
        }
        self.tracker.all_closed().await;
    }
}
