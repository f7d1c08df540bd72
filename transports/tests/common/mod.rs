//! A receiver on its own glommio thread, a scriptable sink, and small clients (hyper on a tokio
//! current-thread runtime, raw sockets for what a well-behaved client would not send).

#![allow(dead_code)] // Each test binary uses a different part of the harness.

pub mod tls;

use std::future::Future as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};

use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use spanpipe_codecs::CodecRegistry;
use spanpipe_core::SpanBatch;
use spanpipe_transports::otlp::{
    Accepted, GrpcServerConfig, HttpServerConfig, OtlpReceiver, OtlpReceiverConfig, Protocol, Protocols,
    ReceiverStatsSnapshot, Refusal, SpanSink,
};
use spanpipe_transports::{BoundReceiver, ReceiverError};

pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// What the test sink does with requests.
#[derive(Clone, Debug)]
pub enum SinkMode {
    /// Take everything.
    Accept,
    /// Refuse at admission: the pipeline is full.
    Full,
    /// Refuse at admission: the pipeline is not taking data (shutting down).
    Unavailable,
    /// Take the batch but reject this many spans.
    RejectSpans(u64),
    /// Take everything, but block the core for this long in the first `submit` (a core busy
    /// elsewhere), so that what arrives meanwhile queues in the kernel.
    StallOnce(Duration),
}

/// The codecs the runtime gives the OTLP receiver: the built-ins and MessagePack.
pub fn codecs() -> CodecRegistry {
    let mut registry = CodecRegistry::with_builtins();
    registry.register(std::sync::Arc::new(spanpipe_msgpack::OtlpMsgpack)).expect("msgpack's names are free");
    registry
}

/// Records every batch it is given; behaves as its mode says.
pub struct TestSink {
    mode: SinkMode,
    received: Arc<Mutex<Vec<SpanBatch>>>,
    /// How many times `admit` was asked.
    asked: Arc<AtomicUsize>,
}

impl TestSink {
    pub fn new(mode: SinkMode, received: Arc<Mutex<Vec<SpanBatch>>>) -> Self {
        Self { mode, received, asked: Arc::default() }
    }
}

impl SpanSink for TestSink {
    type Admission = usize;

    fn admit(&self, encoded_len: usize) -> Result<usize, Refusal> {
        self.asked.fetch_add(1, Ordering::AcqRel);
        match self.mode {
            SinkMode::Full => Err(Refusal::Exhausted {
                reason: "memory limit reached".into(),
                retry_after: Duration::from_millis(2500),
            }),
            SinkMode::Unavailable => {
                Err(Refusal::Unavailable { reason: "shutting down".into(), retry_after: Duration::from_millis(2500) })
            }
            _ => Ok(encoded_len),
        }
    }

    fn submit(&self, batch: SpanBatch, _admission: usize) -> Result<Accepted, Refusal> {
        let first = {
            let mut received = self.received.lock().unwrap();
            received.push(batch);
            received.len() == 1
        };
        if let (SinkMode::StallOnce(stall), true) = (&self.mode, first) {
            std::thread::sleep(*stall);
        }
        match self.mode {
            SinkMode::RejectSpans(count) => Ok(Accepted::partial(count, "spans refused by a test processor")),
            _ => Ok(Accepted::all()),
        }
    }
}

/// Both protocols on 127.0.0.1:0 with short timeouts, so that timeout tests finish quickly.
pub fn test_config() -> OtlpReceiverConfig {
    let mut grpc = GrpcServerConfig { endpoint: "127.0.0.1:0".into(), max_recv_msg_size_mib: 1, ..Default::default() };
    grpc.read_header_timeout = spanpipe_config::GoDuration::from_millis(1000);
    grpc.read_timeout = spanpipe_config::GoDuration::from_millis(1500);
    let mut http =
        HttpServerConfig { endpoint: "127.0.0.1:0".into(), max_request_body_size: 1 << 20, ..Default::default() };
    http.read_header_timeout = spanpipe_config::GoDuration::from_millis(1000);
    http.read_timeout = spanpipe_config::GoDuration::from_millis(1500);
    OtlpReceiverConfig { protocols: Protocols { grpc: Some(grpc), http: Some(http) } }
}

/// A receiver running on a glommio executor thread.
pub struct TestServer {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub received: Arc<Mutex<Vec<SpanBatch>>>,
    stop: Arc<AtomicBool>,
    thread: Option<glommio::ExecutorJoinHandle<(ReceiverStatsSnapshot, ReceiverStatsSnapshot)>>,
}

impl TestServer {
    pub fn start(mode: SinkMode) -> Self {
        Self::start_with(test_config(), mode)
    }

    pub fn start_with(config: OtlpReceiverConfig, mode: SinkMode) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (addresses, addresses_rx) = mpsc::channel();
        let sink_received = Arc::clone(&received);
        let stop_flag = Arc::clone(&stop);
        let thread = glommio::LocalExecutorBuilder::default()
            .name("otlp-test-receiver")
            .spawn(move || async move {
                let sink = Rc::new(TestSink::new(mode, sink_received));
                let receiver = OtlpReceiver::bind(&config, sink, &codecs()).expect("binds");
                let running = receiver.start();
                addresses.send((running.local_address(Protocol::Grpc), running.local_address(Protocol::Http))).unwrap();
                while !stop_flag.load(Ordering::Acquire) {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
                let (grpc, http) = (running.stats(Protocol::Grpc), running.stats(Protocol::Http));
                running.shutdown().await;
                let snapshot = |stats: Option<Rc<spanpipe_transports::otlp::ReceiverStats>>| {
                    stats.map(|s| s.snapshot()).unwrap_or_default()
                };
                (snapshot(grpc), snapshot(http))
            })
            .expect("glommio executor starts");
        let (grpc, http) = addresses_rx.recv_timeout(Duration::from_secs(10)).expect("receiver reports addresses");
        let unbound = SocketAddr::from(([127, 0, 0, 1], 9));
        Self { grpc: grpc.unwrap_or(unbound), http: http.unwrap_or(unbound), received, stop, thread: Some(thread) }
    }

    /// Stops the receiver, waits for its connections to close and returns its counters (gRPC, HTTP).
    pub fn finish(mut self) -> (ReceiverStatsSnapshot, ReceiverStatsSnapshot) {
        self.stop.store(true, Ordering::Release);
        self.thread.take().unwrap().join().expect("receiver thread")
    }

    pub fn spans_received(&self) -> usize {
        self.received.lock().unwrap().iter().map(SpanBatch::len).sum()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// A realistic OTLP protobuf request of `spans` spans.
pub fn request(spans: usize) -> Bytes {
    Bytes::from(spanpipe_testkit::realistic::encoded(spans, 7))
}

pub fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    Bytes::from(encoder.finish().unwrap())
}

pub fn zstd(data: &[u8]) -> Bytes {
    Bytes::from(zstd::encode_all(data, 1).unwrap())
}

/// A gRPC length-prefixed message.
pub fn grpc_frame(compressed: bool, message: &[u8]) -> Bytes {
    let mut framed = vec![u8::from(compressed)];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    Bytes::from(framed)
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub trailers: Option<http::HeaderMap>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `grpc-status` from the trailers or (trailers-only responses) the headers.
    pub fn grpc_status(&self) -> Option<u8> {
        let value =
            self.trailers.as_ref().and_then(|t| t.get("grpc-status")).or_else(|| self.headers.get("grpc-status"));
        value.and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn collect(response: http::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.expect("response body");
    let trailers = collected.trailers().cloned();
    Reply { status: parts.status, headers: parts.headers, body: collected.to_bytes(), trailers }
}

fn build_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> http::Request<Full<Bytes>> {
    let mut builder = http::Request::builder().method(method).uri(format!("http://{address}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(body)).unwrap()
}

/// A request to send: method, path, headers, body.
pub type Outgoing<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Bytes);

/// One HTTP/1.1 request on a new connection.
pub fn http1(address: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Bytes) -> Reply {
    runtime().block_on(async {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        let response = sender.send_request(build_request(address, method, path, headers, body)).await.unwrap();
        collect(response).await
    })
}

/// Several HTTP/1.1 requests on one keep-alive connection.
pub fn http1_keepalive(address: SocketAddr, requests: Vec<Outgoing<'_>>) -> Vec<Reply> {
    runtime().block_on(async {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        let mut replies = Vec::new();
        for (method, path, headers, body) in requests {
            sender.ready().await.unwrap();
            let response = sender.send_request(build_request(address, method, path, &headers, body)).await.unwrap();
            replies.push(collect(response).await);
        }
        replies
    })
}

/// Requests over one HTTP/2 (prior knowledge, cleartext) connection, sent concurrently.
pub fn http2(address: SocketAddr, requests: Vec<Outgoing<'_>>) -> Vec<Reply> {
    runtime().block_on(async {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        let mut pending = Vec::new();
        for (method, path, headers, body) in requests {
            let mut sender = sender.clone();
            let request = build_request(address, method, path, &headers, body);
            pending.push(tokio::spawn(async move { collect(sender.send_request(request).await.unwrap()).await }));
        }
        let mut replies = Vec::new();
        for reply in pending {
            replies.push(reply.await.unwrap());
        }
        replies
    })
}

/// One OTLP/gRPC Export call with an already framed body.
pub fn grpc(address: SocketAddr, path: &str, headers: &[(&str, &str)], framed: Bytes) -> Reply {
    let mut all_headers = vec![("content-type", "application/grpc"), ("te", "trailers")];
    all_headers.extend_from_slice(headers);
    http2(address, vec![("POST", path, all_headers, framed)]).pop().unwrap()
}

/// Sends `bytes` on a raw connection and returns everything the server answers until it
/// closes (or `wait` passes).
pub fn raw_exchange(address: SocketAddr, bytes: &[u8], wait: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// Any receiver, bound by `bind` on its own glommio executor thread (which may be pinned to a
/// CPU to stand for one data-plane core).
pub struct TestReceiver {
    pub listening: Vec<(Protocol, SocketAddr)>,
    pub received: Arc<Mutex<Vec<SpanBatch>>>,
    /// How many requests or datagrams asked the sink for admission.
    pub asked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<glommio::ExecutorJoinHandle<Vec<(Protocol, ReceiverStatsSnapshot)>>>,
}

/// How a test binds its receiver on the executor's thread.
pub type Bind = Box<dyn FnOnce(Rc<TestSink>) -> Result<BoundReceiver<TestSink>, ReceiverError> + Send>;

impl TestReceiver {
    pub fn start(bind: Bind, mode: SinkMode) -> Self {
        Self::try_start(bind, mode).expect("binds")
    }

    /// Starts the receiver, or returns why it could not bind.
    pub fn try_start(bind: Bind, mode: SinkMode) -> Result<Self, String> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (addresses, addresses_rx) = mpsc::channel();
        let asked = Arc::new(AtomicUsize::new(0));
        let sink = TestSink { mode, received: Arc::clone(&received), asked: Arc::clone(&asked) };
        let stop_flag = Arc::clone(&stop);
        let thread = glommio::LocalExecutorBuilder::default()
            .name("test-receiver")
            .spawn(move || async move {
                let sink = Rc::new(sink);
                let bound = match bind(sink) {
                    Ok(bound) => bound,
                    Err(error) => {
                        addresses.send(Err(error.to_string())).unwrap();
                        return Vec::new();
                    }
                };
                let running = bound.start();
                addresses.send(Ok(running.listeners().map(|(p, a, _)| (p, a)).collect::<Vec<_>>())).unwrap();
                while !stop_flag.load(Ordering::Acquire) {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
                let stats: Vec<_> = running.listeners().map(|(p, _, s)| (p, Rc::clone(s))).collect();
                running.shutdown().await;
                stats.into_iter().map(|(p, s)| (p, s.snapshot())).collect()
            })
            .expect("glommio executor starts");
        let listening = addresses_rx.recv_timeout(Duration::from_secs(10)).expect("receiver reports addresses");
        match listening {
            Ok(listening) => Ok(Self { listening, received, asked, stop, thread: Some(thread) }),
            Err(error) => {
                let _ = thread.join();
                Err(error)
            }
        }
    }

    pub fn address(&self, protocol: Protocol) -> SocketAddr {
        self.listening.iter().find(|(p, _)| *p == protocol).map(|(_, a)| *a).expect("listener bound")
    }

    /// Stops the receiver and returns each listener's counters.
    pub fn finish(mut self) -> Vec<(Protocol, ReceiverStatsSnapshot)> {
        self.stop.store(true, Ordering::Release);
        self.thread.take().unwrap().join().expect("receiver thread")
    }

    /// Stops the receiver and returns one listener's counters.
    pub fn finish_one(self, protocol: Protocol) -> ReceiverStatsSnapshot {
        self.finish().into_iter().find(|(p, _)| *p == protocol).map(|(_, s)| s).expect("listener counted")
    }

    pub fn spans_received(&self) -> usize {
        self.received.lock().unwrap().iter().map(SpanBatch::len).sum()
    }

    /// Waits (at most `limit`) until the sink was asked `times` times; returns how many it was.
    pub fn wait_for_asked(&self, times: usize, limit: Duration) -> usize {
        let deadline = std::time::Instant::now() + limit;
        while self.asked.load(Ordering::Acquire) < times && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.asked.load(Ordering::Acquire)
    }

    /// Waits (at most `limit`) until `spans` spans have arrived; returns how many did.
    pub fn wait_for_spans(&self, spans: usize, limit: Duration) -> usize {
        let deadline = std::time::Instant::now() + limit;
        while self.spans_received() < spans && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.spans_received()
    }
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// A realistic OTLP/JSON request of `spans` spans.
pub fn json_request(spans: usize) -> Bytes {
    use spanpipe_codecs::Codec as _;
    let batch = spanpipe_codecs::OtlpProto.decode(request(spans)).unwrap();
    spanpipe_codecs::OtlpJson.encode(&batch).unwrap()
}

/// Sends `bytes` one at a time, `pace` apart, on a raw connection (stopping early when the
/// server answers or closes); returns the answer, read until the server closes.
pub fn trickle_bytes(address: SocketAddr, head: &[u8], trickled: &[u8], pace: Duration) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(head).unwrap();
    stream.set_read_timeout(Some(pace)).unwrap();
    let mut answer = Vec::new();
    for byte in trickled {
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            break;
        }
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => {
                answer.extend_from_slice(&buffer[..read]);
                break;
            }
            Err(_) => {}
        }
    }
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A request body that sends one byte per second, forever.
struct OneBytePerSecond {
    sleep: Pin<Box<tokio::time::Sleep>>,
    sent_prefix: bool,
}

impl Body for OneBytePerSecond {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if !self.sent_prefix {
            self.sent_prefix = true;
            // A gRPC prefix announcing a 1000-byte message.
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 3, 232])))));
        }
        std::task::ready!(self.sleep.as_mut().poll(cx));
        let next = tokio::time::Instant::now() + Duration::from_secs(1);
        self.sleep.as_mut().reset(next);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
    }
}

/// Sends one gRPC call to `path` whose message (1000 bytes announced) arrives one byte a second,
/// forever; returns the `grpc-status` it was answered with and how long that took (bounded at 8
/// seconds by the test).
pub fn grpc_message_trickled(address: SocketAddr, path: &str) -> (Option<String>, Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        let body = OneBytePerSecond { sleep: Box::pin(tokio::time::sleep(Duration::from_secs(1))), sent_prefix: false };
        let request = http::Request::post(format!("http://{address}{path}"))
            .header("content-type", "application/grpc")
            .body(body)
            .unwrap();
        let start = std::time::Instant::now();
        let response = tokio::time::timeout(Duration::from_secs(8), sender.send_request(request)).await;
        let status = response.expect("answered before the test's bound").expect("response");
        (status.headers().get("grpc-status").map(|v| v.to_str().unwrap().to_owned()), start.elapsed())
    })
}
