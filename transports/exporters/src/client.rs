//! The HTTP client the network exporters send with: one connection pool per endpoint and core,
//! hyper 1.x driven on glommio through `spanpipe_transports::rt`.
//!
//! - HTTP/2 (gRPC): one connection per endpoint, shared by every sender of the core (requests are
//!   multiplexed as streams), re-opened when it closes. Keep-alive PINGs as the `keepalive` block
//!   says, so a dead peer is noticed without waiting for a request to time out.
//! - HTTP/1.1 (OTLP/HTTP on `http://`): a connection per request in flight; idle connections are
//!   kept for reuse up to `max_idle_conns` and for at most `idle_conn_timeout`.
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
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::client::conn::{http1, http2};
use spanpipe_transports::rt::{connect, ConnectOptions, GlommioExecutor, GlommioIo, GlommioTimer, SocketError};

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
}

impl Endpoint {
    /// The full `http://authority/path` URI HTTP/2 requests carry.
    pub(crate) fn absolute_uri(&self) -> http::Uri {
        http::Uri::builder()
            .scheme(http::uri::Scheme::HTTP)
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
    /// HTTP/1.1 with keep-alive.
    Http1,
    /// HTTP/2 with prior knowledge (h2c), as gRPC over `http://`.
    Http2,
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
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("endpoint", &self.endpoint.label)
            .field("version", &self.settings.version)
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
        }
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `request` and reads the whole response. Must run on a glommio executor.
    pub(crate) async fn send(&self, request: Request<ChunkedBody>) -> Result<ClientResponse, ClientError> {
        match self.settings.version {
            HttpVersion::Http2 => {
                let mut sender = self.http2_sender().await?;
                let response = sender.send_request(request).await;
                let response = response.map_err(|source| {
                    // A broken connection is not reused: the next request opens a new one.
                    self.http2.borrow_mut().take();
                    self.exchange_error(source)
                })?;
                self.read(response).await
            }
            HttpVersion::Http1 => {
                let mut sender = self.http1_sender().await?;
                let response = sender.send_request(request).await.map_err(|source| self.exchange_error(source))?;
                let response = self.read(response).await?;
                self.return_http1(sender);
                Ok(response)
            }
        }
    }

    fn exchange_error(&self, source: hyper::Error) -> ClientError {
        ClientError::Exchange { endpoint: self.endpoint.label.clone(), source }
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

    async fn open(&self) -> Result<GlommioIo, ClientError> {
        let address = self.endpoint.resolve()?;
        Ok(connect(address, &self.settings.connect).await?)
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

    async fn http1_sender(&self) -> Result<http1::SendRequest<ChunkedBody>, ClientError> {
        let reusable = {
            let mut idle = self.idle_http1.borrow_mut();
            let now = Instant::now();
            idle.retain(|(sender, since)| {
                sender.is_ready() && now.saturating_duration_since(*since) < self.settings.idle_timeout
            });
            idle.pop()
        };
        if let Some((sender, _)) = reusable {
            return Ok(sender);
        }
        let io = self.open().await?;
        let (sender, connection) =
            http1::Builder::new().handshake(io).await.map_err(|source| self.handshake_failed(source))?;
        self.drive(connection, "HTTP/1.1");
        Ok(sender)
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
