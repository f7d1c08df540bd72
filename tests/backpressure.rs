//! Backpressure end to end: an exporter that cannot deliver fills its small sending queue, and
//! spanpipe's receivers then refuse new requests with the OTLP specification's retryable
//! answers (HTTP 429 with `Retry-After`, gRPC `RESOURCE_EXHAUSTED` or `UNAVAILABLE` with
//! `RetryInfo`) instead of buffering without bound or dropping. Nothing accepted is lost: once
//! the destination is a real spanpipe, every accepted span arrives there, exactly once, and
//! the refusals are counted in `/metrics`. With `sending_queue.block_on_overflow`, the
//! receivers make clients wait for room instead, up to the client's deadline.

mod common;

use spanpipe_transports::grpc_status::RpcStatus;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use bytes::{BufMut as _, BytesMut};
use common::{
    assert_delivered_exactly_once, free_address, holds_all, http_request, wait_until, SpanIds, Spanpipe,
    DELIVERY_TIMEOUT,
};
use http_body_util::{BodyExt as _, Full};
use prost::Message as _;

/// Requests tried per protocol before the test gives up waiting for a refusal. With one sender
/// and a queue of two, the fifth request at the latest is refused.
const MAX_REQUESTS: usize = 30;

/// Refusals each protocol must see.
const REFUSALS_WANTED: usize = 3;

/// gRPC status codes the OTLP specification lets a server answer when it is overloaded.
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;

/// A TCP listener that accepts connections and never answers on them: an exporter's requests to
/// it hang until their timeout, as towards a backend that stalls.
struct SilentSink {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentSink {
    fn start(address: SocketAddr) -> Self {
        let listener = TcpListener::bind(address).expect("binding the silent sink");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stopping.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(error) => panic!("the silent sink could not accept: {error}"),
                }
            }
            // Dropping closes the listener and every held connection.
        });
        Self { stop, thread: Some(thread) }
    }

    /// Closes the listener and every connection it accepted.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the silent sink's thread");
        }
    }
}

impl Drop for SilentSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a gRPC unary call answered.
#[derive(Debug)]
struct GrpcReply {
    status: i32,
    message: String,
    details: Option<RpcStatus>,
}

/// One OTLP/gRPC `Export` call with `message` on a fresh HTTP/2 connection (prior knowledge,
/// as OTLP/gRPC clients without TLS connect). Bounded by a 10 s timeout.
fn grpc_export(address: SocketAddr, message: &[u8]) -> GrpcReply {
    grpc_export_within(address, message, None)
}

/// [`grpc_export`] with a `grpc-timeout` header telling the server the client's deadline.
fn grpc_export_within(address: SocketAddr, message: &[u8], grpc_timeout: Option<&str>) -> GrpcReply {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime for the client");
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), grpc_call(address, message, grpc_timeout))
            .await
            .unwrap_or_else(|_| panic!("the gRPC call to {address} took over 10 s"))
    })
}

async fn grpc_call(address: SocketAddr, message: &[u8], grpc_timeout: Option<&str>) -> GrpcReply {
    let stream = tokio::net::TcpStream::connect(address).await.expect("connecting to the gRPC receiver");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("an HTTP/2 handshake");
    tokio::spawn(connection);
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).expect("a small message"));
    framed.put_slice(message);
    let mut request =
        http::Request::post(format!("http://{address}/opentelemetry.proto.collector.trace.v1.TraceService/Export"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
    if let Some(timeout) = grpc_timeout {
        request = request.header("grpc-timeout", timeout);
    }
    let request = request.body(Full::new(framed.freeze())).expect("a valid request");
    let response = sender.send_request(request).await.expect("a gRPC response");
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.expect("the response body");
    // A trailers-only answer carries the status in the headers.
    let trailers = collected.trailers().cloned().unwrap_or_else(|| parts.headers.clone());
    let header = |name: &str| trailers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let status = header("grpc-status").and_then(|code| code.parse().ok()).expect("a grpc-status");
    let details = header("grpc-status-details-bin").map(|encoded| {
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .expect("grpc-status-details-bin is base64");
        RpcStatus::decode(bytes.as_slice()).expect("grpc-status-details-bin is a google.rpc.Status")
    });
    GrpcReply { status, message: header("grpc-message").unwrap_or_default(), details }
}

/// Posts requests to A's OTLP/HTTP receiver, once each, until [`REFUSALS_WANTED`] were refused;
/// checks each refusal and returns the ids of the spans of accepted requests.
fn post_until_refused(address: SocketAddr, ids: &mut SpanIds) -> Vec<u64> {
    let mut accepted = Vec::new();
    let mut refusals = 0;
    for seed in 0..MAX_REQUESTS as u64 {
        let (body, request_ids) = ids.request(10, seed);
        let reply = http_request(address, "POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], &body)
            .expect("POST to A");
        match reply.status {
            200 => accepted.extend(request_ids),
            429 | 503 => {
                let retry_after: u64 =
                    reply.header("retry-after").and_then(|value| value.parse().ok()).expect("a Retry-After in seconds");
                assert!(retry_after > 0, "Retry-After: {retry_after}");
                let status = RpcStatus::decode(reply.body.as_slice()).expect("the body is a google.rpc.Status");
                assert!(status.message.contains("queue is full"), "the refusal says why: {status:?}");
                assert!(status.retry_delay().is_some(), "the status carries a RetryInfo: {status:?}");
                refusals += 1;
                if refusals == REFUSALS_WANTED {
                    return accepted;
                }
            }
            other => panic!("A answered {other}: {}", String::from_utf8_lossy(&reply.body)),
        }
    }
    panic!("A accepted {} spans and refused only {refusals} of {MAX_REQUESTS} requests", accepted.len());
}

/// The same over OTLP/gRPC.
fn export_until_refused(address: SocketAddr, ids: &mut SpanIds) -> Vec<u64> {
    let mut accepted = Vec::new();
    let mut refusals = 0;
    for seed in 0..MAX_REQUESTS as u64 {
        let (message, request_ids) = ids.request(10, 100 + seed);
        let reply = grpc_export(address, &message);
        match reply.status {
            0 => accepted.extend(request_ids),
            RESOURCE_EXHAUSTED | UNAVAILABLE => {
                let details = reply.details.as_ref().expect("a refusal carries grpc-status-details-bin");
                assert_eq!(details.code, reply.status, "the details repeat the status");
                assert!(details.retry_delay().is_some_and(|delay| delay > Duration::ZERO), "RetryInfo: {reply:?}");
                assert!(reply.message.contains("queue is full"), "the refusal says why: {reply:?}");
                refusals += 1;
                if refusals == REFUSALS_WANTED {
                    return accepted;
                }
            }
            other => panic!("A answered gRPC status {other}: {reply:?}"),
        }
    }
    panic!("A accepted {} spans and refused only {refusals} of {MAX_REQUESTS} gRPC requests", accepted.len());
}

/// A's `memory_limiter.limit_mib`, which its peak memory must stay under.
const MEMORY_LIMIT_MIB: u64 = 128;

/// Spanpipe A with both OTLP receivers, exporting with `otlp` to a destination that is silent
/// until [`Scene::start_b`] puts spanpipe B (receiver → file) on its address.
struct Scene {
    dir: tempfile::TempDir,
    output: std::path::PathBuf,
    destination: SocketAddr,
    destination_http: SocketAddr,
    sink: SilentSink,
    grpc: SocketAddr,
    http: SocketAddr,
    a: Spanpipe,
}

impl Scene {
    /// A with the exporter's `sending_queue` block and, if given, a `processors` section used by
    /// the pipeline's `processors` list.
    fn start(sending_queue: &str, processors: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let output = dir.path().join("b.jsonl");
        let (destination, destination_http) = (free_address(), free_address());
        let sink = SilentSink::start(destination);
        let (grpc, http) = (free_address(), free_address());
        let (processors_section, processor_list) = processors.unwrap_or_default();
        let components = format!(
            r#"
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "{grpc}"}}
      http: {{endpoint: "{http}"}}
exporters:
  otlp:
    endpoint: "{destination}"
    tls: {{insecure: true}}
    timeout: 2s
    retry_on_failure: {{initial_interval: 50ms, max_interval: 500ms, max_elapsed_time: 120s}}
    sending_queue: {sending_queue}
{processors_section}"#
        );
        let pipeline = format!("traces: {{receivers: [otlp], processors: [{processor_list}], exporters: [otlp]}}");
        let a = Spanpipe::start(dir.path(), "a", &components, &pipeline);
        Self { dir, output, destination, destination_http, sink, grpc, http, a }
    }

    /// Stops the silent destination and starts B in its place.
    fn start_b(&mut self) -> Spanpipe {
        self.sink.stop();
        let components = format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc: {{endpoint: \"{}\"}}\n      \
             http: {{endpoint: \"{}\"}}\n\
             exporters:\n  file:\n    path: \"{}\"\n    flush_interval: 20ms\n",
            self.destination,
            self.destination_http,
            self.output.display()
        );
        Spanpipe::start(self.dir.path(), "b", &components, "traces: {receivers: [otlp], exporters: [file]}")
    }

    /// A's count of refused requests on `transport`.
    fn refused(&self, transport: &str) -> f64 {
        self.a.metric("spanpipe_receiver_refused_requests_total", &[("transport", transport), ("reason", "refused")])
    }
}

#[test]
fn full_sending_queue_refuses_with_retry_info_and_loses_nothing_accepted() {
    let memory_limiter =
        format!("processors:\n  memory_limiter: {{check_interval: 100ms, limit_mib: {MEMORY_LIMIT_MIB}}}\n");
    let mut scene =
        Scene::start("{queue_size: 2, num_consumers: 1}", Some((memory_limiter.as_str(), "memory_limiter")));
    let (grpc, http) = (scene.grpc, scene.http);
    let mut ids = SpanIds::default();

    let mut accepted = post_until_refused(http, &mut ids);
    accepted.extend(export_until_refused(grpc, &mut ids));
    wait_until("A's metrics to count the refusals", Duration::from_secs(5), || {
        scene.refused("http") >= REFUSALS_WANTED as f64 && scene.refused("grpc") >= REFUSALS_WANTED as f64
    });
    assert_eq!((scene.refused("http"), scene.refused("grpc")), (REFUSALS_WANTED as f64, REFUSALS_WANTED as f64));
    let accepted_metric = scene.a.metric("spanpipe_receiver_accepted_spans_total", &[]);
    assert_eq!(accepted_metric, accepted.len() as f64, "A counts the spans it accepted");

    // Refusing, not buffering: while the exporter is stuck, memory stays under the limit.
    let peak = scene.a.peak_rss_bytes();
    assert!(peak < MEMORY_LIMIT_MIB << 20, "A's peak RSS {} MiB is over its {MEMORY_LIMIT_MIB} MiB limit", peak >> 20);

    // The request stuck at the silent destination runs into the exporter's timeout and is
    // retried (to the same silence) rather than given up.
    wait_until("A to retry the request that timed out", Duration::from_secs(15), || {
        scene.a.metric("spanpipe_exporter_retries_total", &[("exporter", "otlp")]) >= 1.0
    });

    // The stalled destination becomes a real spanpipe on the same address.
    let mut b = scene.start_b();
    let output = scene.output.clone();
    wait_until("B to hold every span A accepted", DELIVERY_TIMEOUT, || holds_all(&output, &accepted));

    // With the queue drained, A admits requests again on both protocols.
    let (body, request_ids) = ids.request(10, 1000);
    let reply = http_request(http, "POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], &body)
        .expect("POST to A");
    assert_eq!(reply.status, 200, "A still refuses over HTTP after the queue drained");
    accepted.extend(request_ids);
    let (message, request_ids) = ids.request(10, 1001);
    let reply = grpc_export(grpc, &message);
    assert_eq!(reply.status, 0, "A still refuses over gRPC after the queue drained: {reply:?}");
    accepted.extend(request_ids);
    wait_until("B to hold the spans sent after recovery", DELIVERY_TIMEOUT, || holds_all(&output, &accepted));

    scene.a.stop_cleanly();
    b.stop_cleanly();
    assert_delivered_exactly_once(&output, &accepted);
}

#[test]
fn block_on_overflow_makes_clients_wait_for_room_instead_of_refusing() {
    let mut scene = Scene::start("{queue_size: 1, num_consumers: 1, block_on_overflow: true}", None);
    let (grpc, http) = (scene.grpc, scene.http);
    let mut ids = SpanIds::default();
    let post = move |body: &[u8]| {
        http_request(http, "POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], body)
            .expect("POST to A")
            .status
    };

    // One request in flight to the silent destination, one in the queue, one waiting in the
    // pipeline for the queue: A is full after these three.
    let mut accepted = Vec::new();
    for seed in 0..3 {
        let (body, request_ids) = ids.request(10, seed);
        assert_eq!(post(&body), 200, "request {seed} before A is full");
        accepted.extend(request_ids);
    }
    // The next request waits for room. It cannot get any while the destination is silent.
    let (body, waiting_ids) = ids.request(10, 3);
    let waiting = std::thread::spawn(move || (post(&body), std::time::Instant::now()));
    // A client whose deadline passes while waiting gets the retryable refusal.
    let (message, _) = ids.request(10, 4);
    let reply = grpc_export_within(grpc, &message, Some("300m"));
    assert_eq!(reply.status, RESOURCE_EXHAUSTED, "a client past its deadline is refused: {reply:?}");
    assert!(reply.details.is_some_and(|details| details.retry_delay().is_some()), "with RetryInfo");
    assert!(!waiting.is_finished(), "the waiting request was answered while A had no room");

    // The destination comes up; the waiting request is then admitted, not refused.
    let b_started = std::time::Instant::now();
    let mut b = scene.start_b();
    let (status, answered_at) = waiting.join().expect("the waiting client");
    assert_eq!(status, 200, "the waiting request was refused instead of admitted");
    assert!(answered_at > b_started, "the waiting request was answered before there was room");
    accepted.extend(waiting_ids);
    let output = scene.output.clone();
    wait_until("B to hold every span A accepted", DELIVERY_TIMEOUT, || holds_all(&output, &accepted));
    wait_until("A's metrics to count the refusal", Duration::from_secs(5), || scene.refused("grpc") >= 1.0);
    assert_eq!(
        (scene.refused("http"), scene.refused("grpc")),
        (0.0, 1.0),
        "only the client past its deadline was refused"
    );

    scene.a.stop_cleanly();
    b.stop_cleanly();
    assert_delivered_exactly_once(&output, &accepted);
}
