//! The HTTP client the network exporters send with: one connection pool per endpoint and core,
//! hyper 1.x driven on glommio through `spanpipe_transports::rt`.
//!
//! - HTTP/2 (gRPC): one connection per endpoint, shared by every sender of the core (requests are
//!   multiplexed as streams), re-opened when it closes. Keep-alive PINGs as the `keepalive` block
//!   says, so a dead peer is noticed without waiting for a request to time out.
//! - HTTP/1.1 (OTLP/HTTP): a connection per request in flight; idle connections are kept for
//!   reuse up to `max_idle_conns` and for at most `idle_conn_timeout`.
//!
//! An endpoint with TLS ([`EndpointTls`]) gets its TLS handshake right after the TCP connect,
//! within the connect timeout, offering by ALPN what its exporter speaks: gRPC offers `h2` only;
//! OTLP/HTTP offers `h2` and `http/1.1`, and when the server picks `h2` the pool switches that
//! endpoint to one multiplexed HTTP/2 connection, as Go's HTTP client (and so the Collector's
//! `otlphttp` exporter) does. Requests are given their wire form here: the absolute URI with
//! `https`/`http` and `:authority` for HTTP/2, the path and a `Host` header for HTTP/1.1.
//!
//! Every connection gets `TCP_NODELAY` (requests are latency-bound, not throughput-bound) and TCP
//! keep-alive probes. Names are resolved with the system resolver at connect time; that call
//! blocks the core for a lookup that is not an IP literal, once per new connection, which is why
//! connections are kept rather than opened per request.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::client::conn::{http1, http2};
use spanpipe_transports::rt::{
    connect, with_deadline, ConnectOptions, GlommioExecutor, GlommioIo, GlommioTimer, SocketError, TlsErrorSlot,
};
use spanpipe_transports::tls::{rustls, HandshakeError, TlsClientConfig, TlsError, ALPN_H2};

use crate::settings::KeepaliveConfig;

/// Responses larger than this are cut off: an export response is a few bytes, an error status a
/// few hundred. The Collector reads at most 64 KiB of them.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Where requests go: one entry of `endpoint` / `endpoints`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// As the config wrote it, for logs.
    pub label: String,
    /// Host name or IP literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `host:port`, for the `Host` header and `:authority`.
    pub authority: http::uri::Authority,
    /// Path (and query) of the request.
    pub path: http::uri::PathAndQuery,
    /// The endpoint was written with `https://`.
    pub https: bool,
    /// TLS for its connections, when they use it.
    pub tls: Option<EndpointTls>,
}

/// How an endpoint's connections are secured: the client configuration (shared by every core's
/// connections) and the name the server's certificate must carry.
#[derive(Clone, Debug)]
pub struct EndpointTls {
    /// The rustls client configuration, ALPN included.
    pub config: Arc<rustls::ClientConfig>,
    /// The name to verify and send as SNI.
    pub server_name: rustls::pki_types::ServerName<'static>,
}

impl PartialEq for EndpointTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.server_name == other.server_name
    }
}

impl Eq for EndpointTls {}

/// When an exporter's endpoints use TLS, as the Collector decides for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsRule {
    /// gRPC (`configgrpc`): TLS with the `tls` block unless it is `insecure` without a CA (the
    /// scheme does not matter); then TLS only for an `https://` endpoint, with Go's zero
    /// `tls.Config` (the system's CAs and nothing else).
    UnlessInsecure,
    /// OTLP/HTTP (Go's HTTP client): the URL's scheme decides; `https://` uses the `tls` block,
    /// or Go's zero `tls.Config` when it is `insecure` without a CA.
    ByScheme,
}

/// Which TLS settings an endpoint's connections use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsChoice {
    /// No TLS.
    Plaintext,
    /// The exporter's `tls` block.
    Configured,
    /// Defaults only: the system's CAs, the host as server name.
    Defaults,
}

impl TlsRule {
    /// The choice for an endpoint, given whether the `tls` block asks for TLS
    /// ([`TlsClientConfig::enables_tls`]) and whether the endpoint says `https://`.
    pub(crate) fn choose(self, block_enables_tls: bool, https: bool) -> TlsChoice {
        match (self, block_enables_tls, https) {
            (Self::UnlessInsecure, true, _) | (Self::ByScheme, true, true) => TlsChoice::Configured,
            (_, false, true) => TlsChoice::Defaults,
            (_, _, false) => TlsChoice::Plaintext,
        }
    }
}

/// Gives each endpoint that uses TLS its [`EndpointTls`], loading each configuration it needs
/// (certificate files, the system's CAs) once for all of them.
///
/// # Errors
/// [`TlsError`] naming the key (`tls.ca_file`, …) or the endpoint that cannot be used.
pub(crate) fn secure_endpoints(
    mut endpoints: Vec<Endpoint>,
    settings: &TlsClientConfig,
    rule: TlsRule,
    alpn: &[&[u8]],
) -> Result<Vec<Endpoint>, TlsError> {
    let defaults = TlsClientConfig::default();
    let mut configured_loaded: Option<Arc<rustls::ClientConfig>> = None;
    let mut defaults_loaded: Option<Arc<rustls::ClientConfig>> = None;
    for endpoint in &mut endpoints {
        let (in_force, loaded) = match rule.choose(settings.enables_tls(), endpoint.https) {
            TlsChoice::Plaintext => continue,
            TlsChoice::Configured => (settings, &mut configured_loaded),
            TlsChoice::Defaults => (&defaults, &mut defaults_loaded),
        };
        let config = match loaded {
            Some(config) => Arc::clone(config),
            None => Arc::clone(loaded.insert(in_force.load(alpn).map_err(|error| error.within("tls"))?)),
        };
        // A bad override is a `tls` key; a bad host is the endpoint's own.
        let server_name = in_force.server_name(&endpoint.host).map_err(|error| {
            if error.field == "server_name_override" {
                error.within("tls")
            } else {
                error
            }
        })?;
        endpoint.tls = Some(EndpointTls { config, server_name });
    }
    Ok(endpoints)
}

impl Endpoint {
    /// The full URI HTTP/2 requests carry: `https` or `http`, the authority, the path.
    pub(crate) fn absolute_uri(&self) -> http::Uri {
        let scheme = if self.tls.is_some() { http::uri::Scheme::HTTPS } else { http::uri::Scheme::HTTP };
        http::Uri::builder()
            .scheme(scheme)
            .authority(self.authority.clone())
            .path_and_query(self.path.clone())
            .build()
            .unwrap_or_else(|_| http::Uri::from_static("/"))
    }

    fn resolve(&self) -> Result<SocketAddr, ClientError> {
        let resolve_error = |source| ClientError::Resolve { endpoint: self.label.clone(), source };
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(resolve_error)?
            .next()
            .ok_or_else(|| resolve_error(std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

/// A request that failed below HTTP: no status was received.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host name did not resolve.
    #[error("resolving {endpoint}: {source}")]
    Resolve {
        /// The endpoint as configured.
        endpoint: String,
        /// What the resolver said.
        source: std::io::Error,
    },
    /// The TCP connection could not be opened or tuned.
    #[error(transparent)]
    Connect(#[from] SocketError),
    /// TLS failed: the server's certificate was refused (wrong CA, wrong name), the handshake did
    /// not complete in time, or the server refused this side's certificate (with TLS 1.3 that
    /// alert comes after the handshake completed here, and fails the first request).
    #[error("TLS with {endpoint}: {source}")]
    Tls {
        /// The endpoint as configured.
        endpoint: String,
        /// What went wrong.
        source: HandshakeError,
    },
    /// The HTTP handshake (the HTTP/2 preface and settings) failed.
    #[error("HTTP handshake with {endpoint}: {source}")]
    Handshake {
        /// The endpoint as configured.
        endpoint: String,
        /// What hyper said.
        source: hyper::Error,
    },
    /// The connection failed while the request was sent or the response read.
    #[error("request to {endpoint}: {source}")]
    Exchange {
        /// The endpoint as configured.
        endpoint: String,
        /// What hyper said.
        source: hyper::Error,
    },
    /// The response body was larger than any export response can be.
    #[error("response from {endpoint} exceeds {MAX_RESPONSE_BYTES} bytes")]
    ResponseTooLarge {
        /// The endpoint as configured.
        endpoint: String,
    },
}

/// A complete response: status, headers, the whole (bounded) body and any trailers.
#[derive(Debug)]
pub(crate) struct ClientResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

#[cfg(test)]
impl ClientResponse {
    /// A response as a server would send it, for the tests of how each exporter reads answers.
    pub(crate) fn for_test(
        status: u16,
        headers: &[(&str, &str)],
        trailers: Option<&[(&str, &str)]>,
        body: impl Into<Bytes>,
    ) -> Self {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(name, value)| {
                    (
                        http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        http::header::HeaderValue::from_str(value).unwrap(),
                    )
                })
                .collect::<HeaderMap>()
        };
        Self {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map(headers),
            body: body.into(),
            trailers: trailers.map(map),
        }
    }
}

/// A request body made of up to two shared chunks (a gRPC frame header and the message), written
/// without being joined: hyper hands both to one vectored write.
#[derive(Debug, Default)]
pub(crate) struct ChunkedBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl ChunkedBody {
    pub(crate) fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|chunk| !chunk.is_empty()).collect();
        let remaining = chunks.iter().map(|chunk| chunk.len() as u64).sum();
        Self { chunks, remaining }
    }
}

impl Body for ChunkedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let chunk = self.chunks.pop_front();
        if let Some(chunk) = &chunk {
            self.remaining -= chunk.len() as u64;
        }
        Poll::Ready(chunk.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Which HTTP version a pool speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HttpVersion {
    /// HTTP/1.1 with keep-alive, or HTTP/2 when a TLS server selects `h2` by ALPN.
    Http1,
    /// HTTP/2 only: with prior knowledge (h2c) in plaintext, `h2` by ALPN with TLS (gRPC).
    Http2,
}

/// A connection ready for a request.
enum Sender {
    Http1(http1::SendRequest<ChunkedBody>),
    Http2(http2::SendRequest<ChunkedBody>),
}

/// How a pool opens and keeps connections.
#[derive(Clone, Debug)]
pub(crate) struct PoolSettings {
    pub version: HttpVersion,
    pub connect: ConnectOptions,
    /// HTTP/2 PINGs.
    pub keepalive: Option<KeepaliveConfig>,
    /// HTTP/1: how long an idle connection may be reused.
    pub idle_timeout: Duration,
    /// HTTP/1: how many idle connections are kept.
    pub max_idle: usize,
    /// HTTP/1: whether connections are reused at all.
    pub reuse: bool,
}

/// The connections of one core to one endpoint.
pub(crate) struct Pool {
    endpoint: Endpoint,
    settings: PoolSettings,
    http2: RefCell<Option<http2::SendRequest<ChunkedBody>>>,
    /// An HTTP/2 connection is being opened; others wait for it instead of opening their own.
    http2_connecting: Cell<bool>,
    http2_opened: event_listener::Event,
    idle_http1: RefCell<Vec<(http1::SendRequest<ChunkedBody>, Instant)>>,
    /// The server selected `h2` by ALPN for an HTTP/1.1 pool: from then on, HTTP/2.
    negotiated_http2: Cell<bool>,
    /// TLS errors that ended this pool's connections after their handshake.
    tls_errors: TlsErrorSlot,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("endpoint", &self.endpoint.label)
            .field("version", &self.settings.version)
            .field("negotiated_http2", &self.negotiated_http2.get())
            .field("http2_open", &self.http2.borrow().is_some())
            .field("idle_http1", &self.idle_http1.borrow().len())
            .finish()
    }
}

impl Pool {
    pub(crate) fn new(endpoint: Endpoint, settings: PoolSettings) -> Self {
        Self {
            endpoint,
            settings,
            http2: RefCell::new(None),
            http2_connecting: Cell::new(false),
            http2_opened: event_listener::Event::new(),
            idle_http1: RefCell::new(Vec::new()),
            negotiated_http2: Cell::new(false),
            tls_errors: TlsErrorSlot::default(),
        }
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `request` (its method, path, headers and body; the pool gives it the URI and
    /// `Host` its HTTP version needs) and reads the whole response. Must run on a glommio
    /// executor.
    pub(crate) async fn send(&self, mut request: Request<ChunkedBody>) -> Result<ClientResponse, ClientError> {
        let sender =
            if self.speaks_http2() { Sender::Http2(self.http2_sender().await?) } else { self.http1_sender().await? };
        match sender {
            Sender::Http2(mut sender) => {
                *request.uri_mut() = self.endpoint.absolute_uri();
                request.headers_mut().remove(HOST);
                let response = sender.send_request(request).await;
                let response = response.map_err(|source| {
                    // A broken connection is not reused: the next request opens a new one, and
                    // an HTTP/1.1 pool asks the server again by ALPN which version to speak.
                    self.http2.borrow_mut().take();
                    self.negotiated_http2.set(false);
                    self.exchange_error(source)
                })?;
                self.read(response).await
            }
            Sender::Http1(mut sender) => {
                *request.uri_mut() = http::Uri::from(self.endpoint.path.clone());
                if let Ok(host) = HeaderValue::from_str(self.endpoint.authority.as_str()) {
                    request.headers_mut().insert(HOST, host);
                }
                let response = sender.send_request(request).await.map_err(|source| self.exchange_error(source))?;
                let response = self.read(response).await?;
                self.return_http1(sender);
                Ok(response)
            }
        }
    }

    fn speaks_http2(&self) -> bool {
        self.settings.version == HttpVersion::Http2 || self.negotiated_http2.get()
    }

    /// A failed exchange: a TLS failure if the connection recorded one (hyper's error then
    /// holds only its text), else the HTTP error.
    fn exchange_error(&self, source: hyper::Error) -> ClientError {
        match self.tls_errors.take() {
            Some(tls) => ClientError::Tls { endpoint: self.endpoint.label.clone(), source: HandshakeError::Tls(tls) },
            None => ClientError::Exchange { endpoint: self.endpoint.label.clone(), source },
        }
    }

    async fn read(&self, response: http::Response<hyper::body::Incoming>) -> Result<ClientResponse, ClientError> {
        let (parts, body) = response.into_parts();
        let collected =
            http_body_util::Limited::new(body, MAX_RESPONSE_BYTES).collect().await.map_err(|error| match error
                .downcast::<hyper::Error>(
            ) {
                Ok(source) => self.exchange_error(*source),
                Err(_) => ClientError::ResponseTooLarge { endpoint: self.endpoint.label.clone() },
            })?;
        let trailers = collected.trailers().cloned();
        Ok(ClientResponse { status: parts.status, headers: parts.headers, body: collected.to_bytes(), trailers })
    }

    /// Connects, and runs the TLS handshake if the endpoint uses TLS.
    async fn open(&self) -> Result<GlommioIo, ClientError> {
        let address = self.endpoint.resolve()?;
        let io = connect(address, &self.settings.connect).await?;
        let Some(tls) = &self.endpoint.tls else {
            return Ok(io);
        };
        let tls_error = |source| ClientError::Tls { endpoint: self.endpoint.label.clone(), source };
        let session = rustls::ClientConnection::new(Arc::clone(&tls.config), tls.server_name.clone())
            .map_err(|error| tls_error(HandshakeError::Tls(error)))?;
        let mut io = io.with_tls(session);
        let timeout = self.settings.connect.connect_timeout.filter(|timeout| !timeout.is_zero());
        match with_deadline(timeout.map(|timeout| Instant::now() + timeout), io.handshake()).await {
            Ok(Ok(())) => {
                io.record_tls_errors_in(self.tls_errors.clone());
                Ok(io)
            }
            Ok(Err(error)) => Err(tls_error(error)),
            Err(_) => Err(tls_error(HandshakeError::TimedOut(timeout.unwrap_or_default()))),
        }
    }

    async fn http2_sender(&self) -> Result<http2::SendRequest<ChunkedBody>, ClientError> {
        loop {
            if let Some(sender) = self.http2.borrow().as_ref().filter(|sender| !sender.is_closed()) {
                return Ok(sender.clone());
            }
            if !self.http2_connecting.get() {
                break;
            }
            let opened = self.http2_opened.listen();
            if !self.http2_connecting.get() {
                continue;
            }
            opened.await;
        }
        self.http2_connecting.set(true);
        let result = self.open_http2().await;
        self.http2_connecting.set(false);
        self.http2_opened.notify(usize::MAX);
        let sender = result?;
        *self.http2.borrow_mut() = Some(sender.clone());
        Ok(sender)
    }

    async fn open_http2(&self) -> Result<http2::SendRequest<ChunkedBody>, ClientError> {
        let io = self.open().await?;
        self.http2_handshake(io).await
    }

    async fn http2_handshake(&self, io: GlommioIo) -> Result<http2::SendRequest<ChunkedBody>, ClientError> {
        let mut builder = http2::Builder::new(GlommioExecutor::new());
        builder.timer(GlommioTimer::new());
        if let Some(keepalive) = &self.settings.keepalive {
            builder
                .keep_alive_interval(keepalive.time.0)
                .keep_alive_timeout(keepalive.timeout.0)
                .keep_alive_while_idle(keepalive.permit_without_stream);
        }
        let (sender, connection) = builder.handshake(io).await.map_err(|source| self.handshake_failed(source))?;
        self.drive(connection, "HTTP/2");
        Ok(sender)
    }

    fn handshake_failed(&self, source: hyper::Error) -> ClientError {
        ClientError::Handshake { endpoint: self.endpoint.label.clone(), source }
    }

    /// Runs a connection's I/O on this core until it closes.
    fn drive(
        &self,
        connection: impl std::future::Future<Output = Result<(), hyper::Error>> + 'static,
        version: &'static str,
    ) {
        let endpoint = self.endpoint.label.clone();
        glommio::spawn_local(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%endpoint, %error, "{version} connection closed");
            }
        })
        .detach();
    }

    /// An idle HTTP/1.1 connection, or a new one — which is HTTP/2 when the server selected `h2`
    /// by ALPN. The new HTTP/2 connection becomes the pool's (senders that were opening
    /// connections at the same moment use theirs for one request, then let them close).
    async fn http1_sender(&self) -> Result<Sender, ClientError> {
        let reusable = {
            let mut idle = self.idle_http1.borrow_mut();
            let now = Instant::now();
            idle.retain(|(sender, since)| {
                sender.is_ready() && now.saturating_duration_since(*since) < self.settings.idle_timeout
            });
            idle.pop()
        };
        if let Some((sender, _)) = reusable {
            return Ok(Sender::Http1(sender));
        }
        let io = self.open().await?;
        if io.alpn_protocol() == Some(ALPN_H2) {
            self.negotiated_http2.set(true);
            let sender = self.http2_handshake(io).await?;
            let mut shared = self.http2.borrow_mut();
            if shared.as_ref().is_none_or(http2::SendRequest::is_closed) {
                *shared = Some(sender.clone());
            }
            return Ok(Sender::Http2(sender));
        }
        let (sender, connection) =
            http1::Builder::new().handshake(io).await.map_err(|source| self.handshake_failed(source))?;
        self.drive(connection, "HTTP/1.1");
        Ok(Sender::Http1(sender))
    }

    fn return_http1(&self, sender: http1::SendRequest<ChunkedBody>) {
        let mut idle = self.idle_http1.borrow_mut();
        if self.settings.reuse && idle.len() < self.settings.max_idle && !sender.is_closed() {
            idle.push((sender, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_chosen_per_endpoint_as_the_collector_does() {
        use TlsChoice::{Configured, Defaults, Plaintext};
        // (rule, the block enables TLS, https://) → choice
        let table = [
            (TlsRule::UnlessInsecure, true, false, Configured),
            (TlsRule::UnlessInsecure, true, true, Configured),
            (TlsRule::UnlessInsecure, false, false, Plaintext),
            (TlsRule::UnlessInsecure, false, true, Defaults),
            (TlsRule::ByScheme, true, false, Plaintext),
            (TlsRule::ByScheme, true, true, Configured),
            (TlsRule::ByScheme, false, false, Plaintext),
            (TlsRule::ByScheme, false, true, Defaults),
        ];
        for (rule, enables, https, choice) in table {
            assert_eq!(rule.choose(enables, https), choice, "{rule:?}, enables TLS: {enables}, https: {https}");
        }
        let insecure = TlsClientConfig { insecure: true, ..TlsClientConfig::default() };
        assert!(TlsClientConfig::default().enables_tls());
        assert!(!insecure.enables_tls());
        let insecure_with_ca = TlsClientConfig { ca_file: "ca.pem".into(), ..insecure };
        assert!(insecure_with_ca.enables_tls(), "a CA turns TLS on even with insecure, as in the Collector");
    }

    #[test]
    fn chunked_body_yields_its_chunks_in_order_and_knows_its_length() {
        let mut body =
            ChunkedBody::new([Bytes::from_static(b"\0\0\0\0\x03"), Bytes::new(), Bytes::from_static(b"abc")]);
        assert_eq!(body.size_hint().exact(), Some(8));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut frames = Vec::new();
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
            frames.push(frame.into_data().unwrap());
        }
        assert_eq!(frames, [Bytes::from_static(b"\0\0\0\0\x03"), Bytes::from_static(b"abc")]);
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
    }
}
