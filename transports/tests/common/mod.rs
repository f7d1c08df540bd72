//! A receiver on its own glommio thread, a scriptable sink, and small clients (hyper on a tokio
//! current-thread runtime, raw sockets for what a well-behaved client would not send).

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use spanpipe_codecs::CodecRegistry;
use spanpipe_core::SpanBatch;
use spanpipe_transports::otlp::{
    Accepted, GrpcServerConfig, HttpServerConfig, OtlpReceiver, OtlpReceiverConfig, Protocol, Protocols,
    ReceiverStatsSnapshot, Refusal, SpanSink,
};

pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// What the test sink does with requests.
#[derive(Clone, Debug)]
pub enum SinkMode {
    /// Take everything.
    Accept,
    /// Refuse at admission: the pipeline is full.
    Full,
    /// Take the batch but reject this many spans.
    RejectSpans(u64),
}

/// Records every batch it is given; behaves as its mode says.
pub struct TestSink {
    mode: SinkMode,
    received: Arc<Mutex<Vec<SpanBatch>>>,
}

impl TestSink {
    pub fn new(mode: SinkMode, received: Arc<Mutex<Vec<SpanBatch>>>) -> Self {
        Self { mode, received }
    }
}

impl SpanSink for TestSink {
    type Admission = usize;

    fn admit(&self, encoded_len: usize) -> Result<usize, Refusal> {
        match self.mode {
            SinkMode::Full => Err(Refusal::Exhausted {
                reason: "memory limit reached".into(),
                retry_after: Duration::from_millis(2500),
            }),
            _ => Ok(encoded_len),
        }
    }

    fn submit(&self, batch: SpanBatch, _admission: usize) -> Result<Accepted, Refusal> {
        self.received.lock().unwrap().push(batch);
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
                let receiver = OtlpReceiver::bind(&config, sink, &CodecRegistry::with_builtins()).expect("binds");
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
