//! The Jaeger listeners on real loopback sockets: the collector's gRPC and HTTP endpoints and the
//! agent's UDP ports. The Jaeger codecs are not this crate's: OTLP protobuf stands in for the
//! codecs of `grpc`, `thrift_http` and `thrift_compact`, OTLP/JSON for `thrift_binary` (so that
//! each port is seen to use its own codec). Every wait is bounded.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use spanpipe_codecs::{Codec, OtlpJson, OtlpProto};
use spanpipe_config::GoDuration;
use spanpipe_transports::jaeger::{
    JaegerCodecs, JaegerGrpcConfig, JaegerProtocols, JaegerReceiver, JaegerReceiverConfig, ThriftHttpConfig,
    UdpServerConfig,
};
use spanpipe_transports::otlp::{GrpcServerConfig, HttpServerConfig};
use spanpipe_transports::Protocol;

const THRIFT: (&str, &str) = ("content-type", "application/x-thrift");
const PATH: &str = "/api/traces?format=jaeger.thrift";
const WAIT: Duration = Duration::from_secs(10);
const POST_SPANS: &str = "/jaeger.api_v2.CollectorService/PostSpans";

fn udp(max_packet_size: usize, socket_buffer_size: usize) -> UdpServerConfig {
    UdpServerConfig {
        endpoint: Some("127.0.0.1:0".into()),
        max_packet_size,
        socket_buffer_size,
        ..UdpServerConfig::default()
    }
}

fn config() -> JaegerReceiverConfig {
    let mut http =
        HttpServerConfig { endpoint: "127.0.0.1:0".into(), max_request_body_size: 64 * 1024, ..Default::default() };
    http.read_header_timeout = GoDuration::from_millis(1000);
    http.read_timeout = GoDuration::from_millis(1500);
    let grpc = GrpcServerConfig {
        endpoint: "127.0.0.1:0".into(),
        max_recv_msg_size_mib: 1,
        read_header_timeout: GoDuration::from_millis(1000),
        read_timeout: GoDuration::from_millis(1500),
        ..Default::default()
    };
    JaegerReceiverConfig {
        protocols: JaegerProtocols {
            grpc: Some(JaegerGrpcConfig(grpc)),
            thrift_http: Some(ThriftHttpConfig(http)),
            thrift_compact: Some(udp(65_000, 0)),
            thrift_binary: Some(udp(65_000, 0)),
        },
    }
}

fn codecs() -> JaegerCodecs {
    JaegerCodecs {
        grpc: Arc::new(OtlpProto) as Arc<dyn Codec>,
        thrift_http: Arc::new(OtlpProto),
        thrift_compact: Arc::new(OtlpProto),
        thrift_binary: Arc::new(OtlpJson),
    }
}

fn start_with(config: JaegerReceiverConfig, mode: SinkMode) -> TestReceiver {
    TestReceiver::start(Box::new(move |sink| JaegerReceiver::bind(&config, sink, &codecs())), mode)
}

fn start(mode: SinkMode) -> TestReceiver {
    start_with(config(), mode)
}

/// A client socket that sends `datagrams` to `to`, back to back.
fn send_datagrams(to: SocketAddr, datagrams: &[Bytes]) {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    for datagram in datagrams {
        assert_eq!(client.send_to(datagram, to).unwrap(), datagram.len());
    }
}

/// `message` grown to exactly `size` bytes with an unknown top-level field (number 15, bytes),
/// which protobuf decoders skip.
fn padded(message: &[u8], size: usize) -> Bytes {
    let filler = size - message.len() - 3;
    assert!((128..16_384).contains(&filler), "the filler's length takes a 2-byte varint");
    let mut padded = message.to_vec();
    padded.push((15 << 3) | 2);
    padded.extend_from_slice(&[(filler as u8 & 0x7f) | 0x80, (filler >> 7) as u8]);
    padded.resize(size, b'x');
    Bytes::from(padded)
}

/// The largest realistic request that fits in `size` bytes, padded to exactly `size`.
fn request_of_size(size: usize) -> (Bytes, usize) {
    let spans = (1..).take_while(|&spans| request(spans).len() + 200 < size).last().unwrap();
    (padded(&request(spans), size), spans)
}

#[test]
fn thrift_http_batches_reach_the_sink_and_are_answered_202() {
    let server = start(SinkMode::Accept);
    let address = server.address(Protocol::JaegerThriftHttp);
    let binary = ("content-type", "application/vnd.apache.thrift.binary");
    for content_type in [THRIFT, binary] {
        let reply = http1(address, "POST", PATH, &[content_type], request(3));
        assert_eq!(reply.status, 202, "{reply:?}");
        assert!(reply.body.is_empty());
    }
    let reply = http1(address, "POST", "/api/traces", &[THRIFT, ("content-encoding", "gzip")], gzip(&request(2)));
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(server.spans_received(), 8);
    let stats = server.finish_one(Protocol::JaegerThriftHttp);
    assert_eq!((stats.requests_accepted, stats.spans_accepted), (3, 8));
}

#[test]
fn grpc_post_spans_reach_the_sink_and_are_answered_with_an_empty_response() {
    let server = start(SinkMode::Accept);
    let address = server.address(Protocol::JaegerGrpc);
    let reply = grpc(address, POST_SPANS, &[], grpc_frame(false, &request(3)));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.grpc_status(), Some(0), "{reply:?}");
    assert_eq!(&reply.body[..], [0, 0, 0, 0, 0], "one empty PostSpansResponse");
    let reply = grpc(address, POST_SPANS, &[("grpc-encoding", "gzip")], grpc_frame(true, &gzip(&request(2))));
    assert_eq!(reply.grpc_status(), Some(0), "{reply:?}");
    assert_eq!(server.spans_received(), 5);
    let stats = server.finish_one(Protocol::JaegerGrpc);
    assert_eq!((stats.requests_accepted, stats.spans_accepted), (2, 5));
}

#[test]
fn grpc_answers_malformed_truncated_oversized_and_misdirected_calls_and_keeps_serving() {
    let server = start(SinkMode::Accept);
    let address = server.address(Protocol::JaegerGrpc);
    let whole = request(3);
    let status = |path: &str, framed: Bytes| grpc(address, path, &[], framed).grpc_status();
    // INVALID_ARGUMENT: a message that does not decode, a frame cut short, two messages.
    assert_eq!(status(POST_SPANS, grpc_frame(false, &whole[..whole.len() - 5])), Some(3));
    let framed = grpc_frame(false, &whole);
    assert_eq!(status(POST_SPANS, framed.slice(..framed.len() - 10)), Some(3));
    assert_eq!(status(POST_SPANS, [framed.clone(), framed.clone()].concat().into()), Some(3));
    // RESOURCE_EXHAUSTED: past `max_recv_msg_size_mib` (1 MiB here).
    assert_eq!(status(POST_SPANS, grpc_frame(false, &vec![0; (1 << 20) + 1])), Some(8));
    // UNIMPLEMENTED: OTLP's method on Jaeger's port, and a method Jaeger's collector does not have.
    let otlp = grpc(address, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &[], framed.clone());
    assert_eq!(otlp.grpc_status(), Some(12));
    assert!(otlp.header("grpc-message").unwrap().contains("unknown service"), "{otlp:?}");
    let other = grpc(address, "/jaeger.api_v2.CollectorService/GetTrace", &[], framed.clone());
    assert_eq!(other.grpc_status(), Some(12));
    assert!(other.header("grpc-message").unwrap().contains("unknown method GetTrace"), "{other:?}");
    assert_eq!(status(POST_SPANS, framed), Some(0), "still serving");
    let stats = server.finish_one(Protocol::JaegerGrpc);
    assert_eq!((stats.requests_malformed, stats.requests_too_large, stats.requests_not_found), (3, 1, 2));
    assert_eq!(stats.requests_accepted, 1);
}

#[test]
fn a_grpc_message_trickled_past_the_read_timeout_is_answered_deadline_exceeded_while_others_are_served() {
    let server = start(SinkMode::Accept);
    let address = server.address(Protocol::JaegerGrpc);
    let slow = std::thread::spawn(move || grpc_message_trickled(address, POST_SPANS));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(grpc(address, POST_SPANS, &[], grpc_frame(false, &request(2))).grpc_status(), Some(0));
    let (status, elapsed) = slow.join().unwrap();
    assert_eq!(status.as_deref(), Some("4"), "DEADLINE_EXCEEDED");
    assert!(elapsed < Duration::from_secs(5), "answered after {elapsed:?}, read timeout is 1.5s");
}

#[test]
fn grpc_is_answered_resource_exhausted_when_the_pipeline_is_full() {
    let server = start(SinkMode::Full);
    let reply = grpc(server.address(Protocol::JaegerGrpc), POST_SPANS, &[], grpc_frame(false, &request(1)));
    assert_eq!(reply.grpc_status(), Some(8), "{reply:?}");
    assert!(reply.header("grpc-status-details-bin").is_some(), "retry information for the client");
    assert_eq!(server.finish_one(Protocol::JaegerGrpc).requests_refused, 1);
}

#[test]
fn grpc_over_tls_negotiates_h2_and_a_plaintext_client_is_refused() {
    let pki = spanpipe_testkit::tls::Pki::new(&["localhost", "127.0.0.1"]);
    let mut tls = config();
    tls.protocols.grpc.as_mut().unwrap().0.tls = Some(common::tls::server_tls(&pki.server));
    let server = start_with(tls, SinkMode::Accept);
    let address = server.address(Protocol::JaegerGrpc);
    let client = common::tls::client(&pki.ca.ca_file(), None, &[b"h2"]);
    let reply = common::tls::tls_request(address, client, true, Some(POST_SPANS), 40).unwrap();
    assert_eq!(reply.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!((reply.status, reply.grpc_status.as_deref()), (http::StatusCode::OK, Some("0")));
    // gRPC without TLS (HTTP/2 prior knowledge) on the TLS port.
    let answer = raw_exchange(address, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", WAIT);
    assert!(answer.starts_with(b"HTTP/1.0 400"), "{}", String::from_utf8_lossy(&answer));
    assert_eq!(server.spans_received(), 40);
    let stats = server.finish_one(Protocol::JaegerGrpc);
    assert_eq!((stats.spans_accepted, stats.tls_handshake_failures), (40, 1));
}

#[test]
fn thrift_http_answers_bad_requests_as_jaegers_collector_and_keeps_serving() {
    let mut small = config();
    small.protocols.thrift_http.as_mut().unwrap().0.max_request_body_size = 4096;
    let server = start_with(small, SinkMode::Accept);
    let address = server.address(Protocol::JaegerThriftHttp);
    let whole = request(3);
    let malformed = http1(address, "POST", PATH, &[THRIFT], whole.slice(..whole.len() - 5));
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(http1(address, "POST", PATH, &[], request(1)).status, 415, "no content type");
    assert_eq!(http1(address, "POST", PATH, &[("content-type", "application/json")], request(1)).status, 415);
    assert_eq!(http1(address, "POST", "/api/spans", &[THRIFT], request(1)).status, 404);
    assert_eq!(http1(address, "PUT", PATH, &[THRIFT], request(1)).status, 405);
    assert_eq!(http1(address, "POST", PATH, &[THRIFT], request(60)).status, 413);
    assert_eq!(http1(address, "POST", PATH, &[THRIFT], request(1)).status, 202);
    let stats = server.finish_one(Protocol::JaegerThriftHttp);
    assert_eq!((stats.requests_malformed, stats.requests_unsupported_media_type), (1, 2));
    assert_eq!((stats.requests_not_found, stats.requests_method_not_allowed, stats.requests_too_large), (1, 1, 1));
    assert_eq!(stats.requests_accepted, 1);
}

#[test]
fn thrift_http_is_answered_429_with_retry_after_when_the_pipeline_is_full() {
    let server = start(SinkMode::Full);
    let full = http1(server.address(Protocol::JaegerThriftHttp), "POST", PATH, &[THRIFT], request(1));
    assert_eq!(full.status, 429);
    assert_eq!(full.header("retry-after"), Some("3"));
    assert_eq!(server.finish_one(Protocol::JaegerThriftHttp).requests_refused, 1);
}

#[test]
fn a_thrift_http_body_trickled_past_the_read_timeout_is_answered_408_while_others_are_served() {
    let server = start(SinkMode::Accept);
    let address = server.address(Protocol::JaegerThriftHttp);
    let slow = std::thread::spawn(move || {
        let head = b"POST /api/traces HTTP/1.1\r\nhost: slow\r\ncontent-type: application/x-thrift\r\ncontent-length: 100\r\n\r\n";
        trickle_bytes(address, head, &[0; 100], Duration::from_millis(200))
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(http1(address, "POST", PATH, &[THRIFT], request(1)).status, 202);
    let answer = slow.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(server.finish_one(Protocol::JaegerThriftHttp).body_timeouts, 1);
}

#[test]
fn a_burst_of_20_back_to_back_64000_byte_datagrams_sent_while_the_core_is_busy_all_arrive_with_the_default_buffer() {
    let server = start(SinkMode::StallOnce(Duration::from_millis(500)));
    let address = server.address(Protocol::JaegerThriftCompact);
    send_datagrams(address, &[request(1)]);
    assert_eq!(server.wait_for_spans(1, WAIT), 1, "the first datagram is being submitted: the core stalls");
    let (datagram, spans) = request_of_size(64_000);
    assert_eq!(datagram.len(), 64_000);
    // All 20 are sent while the core cannot read: the socket's buffer must hold them.
    send_datagrams(address, &vec![datagram; 20]);
    assert_eq!(server.wait_for_spans(1 + 20 * spans, WAIT), 1 + 20 * spans);
    let stats = server.finish_one(Protocol::JaegerThriftCompact);
    assert_eq!((stats.datagrams_received, stats.requests_accepted, stats.kernel_drops), (21, 21, 0));
    assert_eq!(stats.datagram_bytes_received, stats.bytes_accepted);
    assert_eq!(stats.bytes_accepted, 20 * 64_000 + request(1).len() as u64);
}

#[test]
fn oversized_truncated_empty_and_garbage_datagrams_are_counted_and_the_socket_keeps_serving() {
    let mut small = config();
    small.protocols.thrift_compact = Some(udp(4096, 0));
    let server = start_with(small, SinkMode::Accept);
    let address = server.address(Protocol::JaegerThriftCompact);
    let oversized = request(40);
    assert!(oversized.len() > 4096);
    let valid = request(1);
    assert!(valid.len() < 4096 - 200);
    let truncated = valid.slice(..valid.len() - 3);
    let garbage = Bytes::from_static(b"\xff\xff\xff\xff not thrift");
    let exactly_the_limit = padded(&valid, 4096);
    send_datagrams(address, &[oversized, truncated, Bytes::new(), garbage, exactly_the_limit, valid]);
    assert_eq!(server.wait_for_spans(2, WAIT), 2);
    let stats = server.finish_one(Protocol::JaegerThriftCompact);
    assert_eq!(stats.datagrams_received, 6);
    assert_eq!(stats.requests_too_large, 1, "over max_packet_size");
    assert_eq!(stats.requests_malformed, 2, "truncated and garbage");
    assert_eq!(stats.requests_empty, 1);
    assert_eq!(stats.requests_accepted, 2, "one of exactly max_packet_size, one smaller");
}

#[test]
fn each_udp_port_decodes_with_its_own_codec() {
    let server = start(SinkMode::Accept);
    send_datagrams(server.address(Protocol::JaegerThriftBinary), &[json_request(2), request(2)]);
    send_datagrams(server.address(Protocol::JaegerThriftCompact), &[request(3)]);
    assert_eq!(server.wait_for_spans(5, WAIT), 5);
    let stats = server.finish();
    let binary = stats.iter().find(|(p, _)| *p == Protocol::JaegerThriftBinary).unwrap().1;
    assert_eq!(
        (binary.requests_accepted, binary.requests_malformed),
        (1, 1),
        "protobuf is not the binary port's format"
    );
}

#[test]
fn datagrams_the_pipeline_refuses_are_dropped_and_counted() {
    let server = start(SinkMode::Full);
    send_datagrams(server.address(Protocol::JaegerThriftCompact), &[request(1), request(2), request(3)]);
    assert_eq!(server.wait_for_asked(3, WAIT), 3);
    assert_eq!(server.spans_received(), 0);
    let stats = server.finish_one(Protocol::JaegerThriftCompact);
    assert_eq!((stats.datagrams_received, stats.requests_refused, stats.requests_accepted), (3, 3, 0));
}

#[test]
fn datagrams_the_kernel_drops_while_the_core_is_busy_are_counted_from_so_rxq_ovfl() {
    let mut tiny = config();
    // The smallest buffer the kernel allows: a couple of datagrams.
    tiny.protocols.thrift_compact = Some(udp(65_000, 1));
    let server = start_with(tiny, SinkMode::StallOnce(Duration::from_millis(800)));
    let address = server.address(Protocol::JaegerThriftCompact);
    send_datagrams(address, &[request(1)]);
    assert_eq!(server.wait_for_spans(1, WAIT), 1, "the first datagram is being submitted: the core stalls");
    let burst: Vec<Bytes> = (0..30).map(|_| request(1)).collect();
    send_datagrams(address, &burst);
    assert!(server.wait_for_asked(2, WAIT) >= 2, "the core is back and draining what the kernel kept");
    // The kernel reports its running drop count with the next datagram it delivers; this one
    // (3 spans, unlike the others) is known to have been handled when its spans arrive.
    send_datagrams(address, &[request(3)]);
    let deadline = std::time::Instant::now() + WAIT;
    while !server.received.lock().unwrap().iter().any(|batch| batch.len() == 3) {
        assert!(std::time::Instant::now() < deadline, "the last datagram arrives");
        std::thread::sleep(Duration::from_millis(5));
    }
    let batches = server.received.lock().unwrap().len() as u64;
    let stats = server.finish_one(Protocol::JaegerThriftCompact);
    assert!(stats.kernel_drops > 0, "{stats:?}");
    assert_eq!(stats.datagrams_received + stats.kernel_drops, 32, "every datagram arrived or was counted: {stats:?}");
    assert_eq!(batches, stats.datagrams_received);
}

#[test]
fn port_0_binds_one_port_for_every_executor_and_each_serves_it() {
    let first = start(SinkMode::Accept);
    let mut same_ports = config();
    for (protocol, address) in &first.listening {
        assert!(same_ports.set_endpoint(*protocol, *address), "{protocol:?}");
    }
    let second = start_with(same_ports, SinkMode::Accept);
    let mut second_ports = second.listening.clone();
    let mut first_ports = first.listening.clone();
    second_ports.sort_by_key(|(p, _)| p.as_str());
    first_ports.sort_by_key(|(p, _)| p.as_str());
    assert_eq!(first_ports, second_ports);
    // Many senders (source ports), so that the kernel spreads them over both sockets.
    let compact = first.address(Protocol::JaegerThriftCompact);
    for _ in 0..16 {
        send_datagrams(compact, &[request(1)]);
    }
    let deadline = std::time::Instant::now() + WAIT;
    while first.spans_received() + second.spans_received() < 16 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(first.spans_received() + second.spans_received(), 16);
    let http = first.address(Protocol::JaegerThriftHttp);
    assert_eq!(http1(http, "POST", PATH, &[THRIFT], request(1)).status, 202);
    let stats: u64 = [first, second]
        .into_iter()
        .map(|server| server.finish_one(Protocol::JaegerThriftCompact).datagrams_received)
        .sum();
    assert_eq!(stats, 16);
}

/// Whether this process holds `CAP_NET_ADMIN` (bit 12 of its effective capability set), which
/// lets `SO_RCVBUFFORCE` lift a socket buffer past the sysctl `net.core.rmem_max`.
fn holds_cap_net_admin() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let effective = status.lines().find_map(|line| line.strip_prefix("CapEff:")).expect("CapEff line");
    u64::from_str_radix(effective.trim(), 16).expect("hex capability set") & (1 << 12) != 0
}

/// A process without `CAP_NET_ADMIN` (a container's usual root, or any other user) is refused
/// `SO_RCVBUFFORCE`: the UDP listener must fall back to `SO_RCVBUF`, get what `net.core.rmem_max`
/// allows, warn naming that sysctl, and serve. The test below runs in a child process whose
/// capability bounding set lacks `CAP_NET_ADMIN` (util-linux's `setpriv`; run directly when the
/// capability is not held anyway), so the tests run as root here still cover that path.
#[test]
fn without_cap_net_admin_a_udp_buffer_past_rmem_max_is_capped_with_a_warning_and_the_port_serves() {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let mut child = if holds_cap_net_admin() {
        let mut setpriv = std::process::Command::new("setpriv");
        setpriv.args(["--bounding-set=-net_admin", "--inh-caps=-net_admin", "--"]).arg(test_binary);
        setpriv
    } else {
        std::process::Command::new(test_binary)
    };
    child.args(["--exact", "a_udp_buffer_past_rmem_max_without_cap_net_admin", "--ignored", "--nocapture"]);
    let output = child.output().expect("setpriv (util-linux) runs the test binary");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the child test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child ran the test:\n{stdout}");
}

/// Run by the test above, without `CAP_NET_ADMIN`.
#[test]
#[ignore = "run without CAP_NET_ADMIN by the test above"]
fn a_udp_buffer_past_rmem_max_without_cap_net_admin() {
    assert!(!holds_cap_net_admin(), "this test is about a process without CAP_NET_ADMIN");
    let rmem_max: usize =
        std::fs::read_to_string("/proc/sys/net/core/rmem_max").expect("procfs").trim().parse().expect("a number");
    // Twice the cap, within what a socket option can ask (a host whose cap is past that has no
    // size to be refused).
    let wanted = (rmem_max * 2).min(1 << 30);
    let log = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let writer = {
        let log = Arc::clone(&log);
        move || CapturedLog(Arc::clone(&log))
    };
    let subscriber = tracing_subscriber::fmt().with_writer(writer).with_ansi(false).finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber in this process");

    let mut capped = config();
    capped.protocols.thrift_compact = Some(udp(65_000, wanted));
    let server = start_with(capped, SinkMode::Accept);
    send_datagrams(server.address(Protocol::JaegerThriftCompact), &[request(2)]);
    assert_eq!(server.wait_for_spans(2, WAIT), 2, "the port serves with the buffer it got");
    assert_eq!(server.finish_one(Protocol::JaegerThriftCompact).requests_accepted, 1);

    let log = String::from_utf8(log.lock().unwrap().clone()).expect("UTF-8 log");
    if wanted <= rmem_max {
        assert!(!log.contains("net.core.rmem_max"), "granted in full, nothing to warn about: {log}");
        return;
    }
    let warning = log.lines().find(|line| line.contains("net.core.rmem_max")).unwrap_or_else(|| panic!("{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("protocol=\"thrift_compact\""), "{warning}");
    assert!(warning.contains(&format!("requested={wanted}")), "{warning}");
    assert!(warning.contains(&format!("granted={rmem_max}")), "what the sysctl allows: {warning}");
}

/// A `tracing` writer appending to a shared buffer.
struct CapturedLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
