//! Test peers and helpers for the exporter tests: a loopback HTTP server that any fake receiver
//! can answer through (HTTP/1.1 and HTTP/2, in plaintext or over TLS with tokio-rustls, on a tokio
//! current-thread runtime in its own thread), the scripted OTLP server built on it (gRPC and HTTP),
//! a way to run a test body on a glommio executor, and bounded waiting.

#![allow(dead_code)] // Each test file uses a different part.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;
use spanpipe_codecs::Codec as _;
use spanpipe_core::SpanBatch;
use spanpipe_transports::grpc_status::{ProtoAny, ProtoDuration, RetryInfo, RpcStatus};

/// Quick retries for tests: 10 ms, doubling up to 50 ms, no jitter, 5 s budget.
pub fn fast_retry() -> spanpipe_exporters::RetryConfig {
    spanpipe_exporters::RetryConfig {
        initial_interval: spanpipe_config::GoDuration::from_millis(10),
        randomization_factor: 0.0,
        multiplier: 2.0,
        max_interval: spanpipe_config::GoDuration::from_millis(50),
        max_elapsed_time: spanpipe_config::GoDuration::from_secs(5),
        ..spanpipe_exporters::RetryConfig::default()
    }
}

/// A realistic batch of `spans` spans.
pub fn batch(spans: usize, seed: u64) -> SpanBatch {
    SpanBatch::decode(Bytes::from(spanpipe_testkit::realistic::encoded(spans, seed))).expect("testkit payloads scan")
}

/// Runs `body` on a fresh glommio executor in this thread's place and waits for it.
pub fn on_glommio<F: Future<Output = ()> + 'static>(body: impl FnOnce() -> F + Send + 'static) {
    glommio::LocalExecutorBuilder::default().spawn(body).expect("glommio starts").join().expect("test body");
}

/// Polls `condition` every 5 ms until it holds or `limit` passes; whether it held.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    condition()
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> SocketAddr {
    StdListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free loopback port")
}

/// How the fake server answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Success without partial success.
    Ok,
    /// Success, with `rejected` spans rejected.
    PartialSuccess { rejected: i64, message: &'static str },
    /// A gRPC status other than OK, optionally with a `RetryInfo` delay.
    GrpcStatus { code: i32, message: &'static str, retry_delay: Option<Duration> },
    /// An HTTP status with an optional `Retry-After` and a `google.rpc.Status` body.
    HttpStatus { status: u16, retry_after: Option<&'static str>, message: &'static str },
    /// Waits, then answers.
    Delayed(Duration, Box<Reply>),
}

/// What the server received in one request.
#[derive(Clone, Debug)]
pub struct Received {
    /// Request path.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// The export request as protobuf bytes: unframed, decompressed and (for JSON) re-encoded.
    pub request: Bytes,
    /// When it arrived.
    pub at: Instant,
    /// The client's address: one per connection.
    pub peer: SocketAddr,
    /// The HTTP version of the request.
    pub version: http::Version,
    /// The `:authority` (HTTP/2) or `Host` (HTTP/1.1) the request named.
    pub authority: Option<String>,
}

impl Received {
    /// Spans in the request.
    pub fn spans(&self) -> usize {
        if self.request.is_empty() {
            return 0;
        }
        SpanBatch::decode(self.request.clone()).map_or(0, |batch| batch.len())
    }
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Reply>,
    received: Vec<Received>,
    /// TLS handshakes the server saw fail.
    failed_handshakes: usize,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A scripted OTLP server speaking gRPC (HTTP/2 prior knowledge) and OTLP/HTTP (HTTP/1.1) on one
/// loopback port. Answers follow the script, then `Reply::Ok`. Dropping it closes the listener
/// and every connection.
#[derive(Debug)]
pub struct FakeServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _server: LoopbackServer,
}

impl FakeServer {
    /// A server on a fresh loopback port.
    pub fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("loopback"))
    }

    /// A server on `addr` (e.g. a port an exporter already tries to reach).
    pub fn start_on(addr: SocketAddr) -> Self {
        Self::serve_on(addr, None)
    }

    /// A server on a fresh loopback port that speaks TLS only, with `config`.
    pub fn start_tls(config: Arc<tokio_rustls::rustls::ServerConfig>) -> Self {
        Self::serve_on("127.0.0.1:0".parse().expect("loopback"), Some(tokio_rustls::TlsAcceptor::from(config)))
    }

    fn serve_on(addr: SocketAddr, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let (served, failures) = (Arc::clone(&state), Arc::clone(&state));
        let server = LoopbackServer::start(
            addr,
            tls,
            move || lock(&failures).failed_handshakes += 1,
            move |peer, request| handle(Arc::clone(&served), peer, request),
        );
        Self { addr: server.addr, state, _server: server }
    }

    /// Answers for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state).script.extend(replies);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state).received.clone()
    }

    /// TLS handshakes that failed so far.
    pub fn failed_handshakes(&self) -> usize {
        lock(&self.state).failed_handshakes
    }

    /// Requests carrying spans (not probes).
    pub fn exports(&self) -> Vec<Received> {
        self.received().into_iter().filter(|received| received.spans() > 0).collect()
    }

    /// `host:port`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A loopback HTTP server on its own thread and tokio runtime, speaking HTTP/1.1 and HTTP/2 (by
/// preface) on one port, in plaintext or TLS only. Each request is answered by the handler it was
/// started with. Dropping it closes the listener and every connection.
#[derive(Debug)]
pub struct LoopbackServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopbackServer {
    /// Serves on `addr` (port 0 for a fresh one): `handle(peer, request)` answers every request;
    /// `failed_handshake` runs for each TLS handshake that fails.
    pub fn start<H, F, B>(
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
        failed_handshake: impl Fn() + Send + Sync + 'static,
        handle: H,
    ) -> Self
    where
        H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
        B: Body<Data = Bytes, Error = Infallible> + Send + 'static,
    {
        let listener = StdListener::bind(addr).expect("bind the loopback server");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
            runtime.block_on(serve(listener, stopped, tls, Arc::new(failed_handshake), handle));
        });
        Self { addr, stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve<H, F, B>(
    listener: StdListener,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    failed_handshake: Arc<dyn Fn() + Send + Sync>,
    handle: H,
) where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let (tls, failed_handshake, handle) = (tls.clone(), Arc::clone(&failed_handshake), handle.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| handle(peer, request));
                    let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(secured) => {
                                let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(secured), service).await;
                            }
                            Err(_) => failed_handshake(),
                        },
                    }
                });
            }
        }
    }
}

/// Turns the request body back into export-request protobuf bytes.
fn decode_request(headers: &HeaderMap, body: Bytes) -> Bytes {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
    let grpc = header("content-type").starts_with("application/grpc");
    let (compressed, payload) = if grpc {
        let payload = body.slice(5.min(body.len())..);
        (body.first() == Some(&1), payload)
    } else {
        (!header("content-encoding").is_empty(), body)
    };
    let encoding = if grpc { header("grpc-encoding") } else { header("content-encoding") };
    let raw = if compressed {
        match encoding.as_str() {
            "gzip" => {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(payload.as_ref()), &mut out)
                    .expect("valid gzip");
                Bytes::from(out)
            }
            "zstd" => Bytes::from(zstd::decode_all(payload.as_ref()).expect("valid zstd")),
            other => panic!("unexpected encoding {other:?}"),
        }
    } else {
        payload
    };
    if header("content-type").starts_with("application/json") {
        if raw.as_ref() == b"{}" {
            return Bytes::new();
        }
        return spanpipe_codecs::OtlpJson.decode(raw).expect("valid OTLP/JSON").into_bytes();
    }
    if is_msgpack(headers) {
        // The codec under test decodes what the exporter sent; an empty map is a probe.
        return spanpipe_msgpack::decode(&raw).expect("valid OTLP MessagePack").into_bytes();
    }
    raw
}

/// Whether a request is MessagePack (then the fake server answers in MessagePack too, as the
/// receiver should).
fn is_msgpack(headers: &HeaderMap) -> bool {
    headers.get("content-type").is_some_and(|value| value.as_bytes() == b"application/msgpack")
}

async fn handle(
    state: Arc<Mutex<State>>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<ReplyBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
    let grpc = parts.headers.get("content-type").is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
    let msgpack = is_msgpack(&parts.headers);
    let authority = parts
        .uri
        .authority()
        .map(ToString::to_string)
        .or_else(|| parts.headers.get("host").and_then(|host| host.to_str().ok()).map(str::to_owned));
    let received = Received {
        version: parts.version,
        authority,
        path: parts.uri.path().to_owned(),
        request: decode_request(&parts.headers, body),
        headers: parts.headers,
        at: Instant::now(),
        peer,
    };
    let reply = {
        let mut state = lock(&state);
        state.received.push(received);
        state.script.pop_front().unwrap_or(Reply::Ok)
    };
    let mut reply = reply;
    while let Reply::Delayed(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    Ok(if grpc { grpc_response(&reply) } else { http_response(&reply, msgpack) })
}

/// A response body: data frames, then optional trailers.
pub struct ReplyBody(VecDeque<Frame<Bytes>>);

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
}

fn partial_response(rejected: i64, message: &str) -> Vec<u8> {
    ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: rejected,
            error_message: message.to_owned(),
        }),
    }
    .encode_to_vec()
}

fn grpc_response(reply: &Reply) -> Response<ReplyBody> {
    let mut trailers = HeaderMap::new();
    let message = match reply {
        Reply::Ok => Some(Vec::new()),
        Reply::PartialSuccess { rejected, message } => Some(partial_response(*rejected, message)),
        Reply::GrpcStatus { code, message, retry_delay } => {
            trailers.insert("grpc-status", HeaderValue::from(*code));
            trailers.insert("grpc-message", HeaderValue::from_str(&message.replace(' ', "%20")).expect("ascii"));
            if let Some(delay) = retry_delay {
                let info = RetryInfo {
                    retry_delay: Some(ProtoDuration {
                        seconds: i64::try_from(delay.as_secs()).expect("small"),
                        nanos: i32::try_from(delay.subsec_nanos()).expect("small"),
                    }),
                };
                let status = RpcStatus {
                    code: *code,
                    message: (*message).to_owned(),
                    details: vec![ProtoAny {
                        type_url: "type.googleapis.com/google.rpc.RetryInfo".to_owned(),
                        value: info.encode_to_vec(),
                    }],
                };
                let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(status.encode_to_vec());
                trailers.insert("grpc-status-details-bin", HeaderValue::from_str(&encoded).expect("base64"));
            }
            None
        }
        Reply::HttpStatus { status, .. } => {
            return Response::builder().status(*status).body(ReplyBody(VecDeque::new())).expect("valid response");
        }
        Reply::Delayed(_, inner) => return grpc_response(inner),
    };
    let mut frames = VecDeque::new();
    if let Some(message) = message {
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let mut framed = vec![0u8];
        framed.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
        framed.extend_from_slice(&message);
        frames.push_back(Frame::data(Bytes::from(framed)));
    }
    frames.push_back(Frame::trailers(trailers));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/grpc")
        .body(ReplyBody(frames))
        .expect("valid response")
}

/// An OTLP/HTTP answer, in protobuf or (for a MessagePack request) in MessagePack.
fn http_response(reply: &Reply, msgpack: bool) -> Response<ReplyBody> {
    let (status, retry_after, body) = match reply {
        Reply::Ok => (200, None, Vec::new()),
        Reply::PartialSuccess { rejected, message } if msgpack => {
            let partial =
                spanpipe_msgpack::PartialSuccess { rejected_spans: *rejected, error_message: (*message).into() };
            (200, None, spanpipe_msgpack::ExportResponse { partial_success: Some(partial) }.encode())
        }
        Reply::PartialSuccess { rejected, message } => (200, None, partial_response(*rejected, message)),
        Reply::HttpStatus { status, retry_after, message } if msgpack => {
            let body = spanpipe_msgpack::Status { code: 0, message: (*message).to_owned(), details: Vec::new() };
            (*status, *retry_after, body.encode())
        }
        Reply::HttpStatus { status, retry_after, message } => {
            let body = RpcStatus { code: 0, message: (*message).to_owned(), details: Vec::new() }.encode_to_vec();
            (*status, *retry_after, body)
        }
        Reply::GrpcStatus { .. } => (500, None, Vec::new()),
        Reply::Delayed(_, inner) => return http_response(inner, msgpack),
    };
    let content_type = if msgpack { "application/msgpack" } else { "application/x-protobuf" };
    let mut response = Response::builder().status(status).header("content-type", content_type);
    if let Some(retry_after) = retry_after {
        response = response.header("retry-after", retry_after);
    }
    response.body(ReplyBody(VecDeque::from([Frame::data(Bytes::from(body))]))).expect("valid response")
}
