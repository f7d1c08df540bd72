//! The WebSocket receiver on loopback, against an independent client (tokio-tungstenite on a
//! tokio runtime) and raw sockets for what a well-behaved client would not send.

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use spanpipe_codecs::CodecRegistry;
use spanpipe_config::GoDuration;
use spanpipe_core::SpanBatch;
use spanpipe_transports::otlp::{Accepted, Protocol, ReceiverStatsSnapshot, Refusal, RoomWait, SpanSink};
use spanpipe_transports::tls::TlsServerConfig;
use spanpipe_transports::websocket::{Ack, AckErrorCode, Envelope, WebSocketReceiver, WebSocketReceiverConfig};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// What the test pipeline does.
#[derive(Clone, Debug)]
enum Mode {
    /// Takes everything.
    Accept,
    /// Takes everything and answers each batch with this warning.
    Warn(String),
    /// Full, and the refusal is the answer.
    FullNoWait,
    /// Full for this long after the first request, asking callers to wait meanwhile.
    FullFor(Duration),
    /// Full for good, asking callers to wait.
    FullForever,
}

struct TestSink {
    mode: Mode,
    spans: Arc<AtomicUsize>,
    refusals: Arc<AtomicUsize>,
    room_at: Cell<Option<Instant>>,
}

impl TestSink {
    fn full(&self) -> Refusal {
        self.refusals.fetch_add(1, Ordering::SeqCst);
        Refusal::Exhausted { reason: "queue full".into(), retry_after: Duration::from_millis(2500) }
    }
}

impl SpanSink for TestSink {
    type Admission = ();

    fn admit(&self, _: usize) -> Result<(), Refusal> {
        match self.mode {
            Mode::Accept | Mode::Warn(_) => Ok(()),
            Mode::FullNoWait | Mode::FullForever => Err(self.full()),
            Mode::FullFor(period) => {
                let room_at = self.room_at.get().unwrap_or_else(|| Instant::now() + period);
                self.room_at.set(Some(room_at));
                if Instant::now() < room_at {
                    Err(self.full())
                } else {
                    Ok(())
                }
            }
        }
    }

    fn submit(&self, batch: SpanBatch, (): ()) -> Result<Accepted, Refusal> {
        self.spans.fetch_add(batch.len(), Ordering::SeqCst);
        Ok(match &self.mode {
            Mode::Warn(warning) => Accepted { rejected_spans: 0, message: Some(warning.clone()) },
            _ => Accepted::all(),
        })
    }

    fn wait_for_room(&self) -> Option<RoomWait<'_>> {
        match self.mode {
            Mode::FullFor(_) => {
                let left = self.room_at.get().map_or(Duration::ZERO, |at| at.saturating_duration_since(Instant::now()));
                Some(Box::pin(glommio::timer::sleep(left)))
            }
            Mode::FullForever => Some(Box::pin(std::future::pending())),
            _ => None,
        }
    }
}

/// A receiver on its own glommio thread.
struct Server {
    address: SocketAddr,
    spans: Arc<AtomicUsize>,
    refusals: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<glommio::ExecutorJoinHandle<ReceiverStatsSnapshot>>,
}

/// Short timeouts so that the timeout tests finish quickly.
fn config() -> WebSocketReceiverConfig {
    WebSocketReceiverConfig {
        endpoint: "127.0.0.1:0".into(),
        max_message_size: 64 * 1024,
        read_header_timeout: GoDuration::from_millis(1000),
        read_timeout: GoDuration::from_millis(600),
        write_timeout: GoDuration::from_millis(600),
        ping_interval: GoDuration::from_millis(300),
        // Generous, so that a client slowed down by a busy machine still answers in time.
        pong_timeout: GoDuration::from_millis(2000),
        max_backpressure_wait: GoDuration::from_millis(2000),
        ..WebSocketReceiverConfig::default()
    }
}

impl Server {
    fn start(config: WebSocketReceiverConfig, mode: Mode) -> Self {
        let spans = Arc::new(AtomicUsize::new(0));
        let refusals = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (address_tx, address_rx) = mpsc::channel();
        let (sink_spans, sink_refusals, stop_flag) = (Arc::clone(&spans), Arc::clone(&refusals), Arc::clone(&stop));
        let thread = glommio::LocalExecutorBuilder::default()
            .name("websocket-test-receiver")
            .spawn(move || async move {
                let sink =
                    Rc::new(TestSink { mode, spans: sink_spans, refusals: sink_refusals, room_at: Cell::new(None) });
                let bound = WebSocketReceiver::bind(&config, sink, &CodecRegistry::with_builtins()).expect("binds");
                let running = bound.start();
                address_tx.send(running.local_address(Protocol::WebSocket).expect("listening")).unwrap();
                while !stop_flag.load(Ordering::Acquire) {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
                let stats = running.stats(Protocol::WebSocket).expect("counters");
                running.shutdown().await;
                stats.snapshot()
            })
            .expect("glommio executor starts");
        let address = address_rx.recv_timeout(Duration::from_secs(10)).expect("receiver reports its address");
        Self { address, spans, refusals, stop, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("ws://{}/v1/traces/ws", self.address)
    }

    /// Starts shutting down without waiting.
    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Shuts down, waits for every connection to close, returns the counters.
    fn finish(mut self) -> ReceiverStatsSnapshot {
        self.stop();
        self.thread.take().unwrap().join().expect("receiver thread")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

type Client<S = tokio::net::TcpStream> = tokio_tungstenite::WebSocketStream<S>;

/// What a client connection may run over (TCP, TLS).
trait Transport: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin {}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Transport for S {}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn connect(server: &Server) -> Client {
    let tcp = tokio::net::TcpStream::connect(server.address).await.unwrap();
    tokio_tungstenite::client_async(server.url(), tcp).await.expect("handshake").0
}

/// The next message the server sends other than pings and pongs, within 5 s.
async fn next_message(client: &mut Client<impl Transport>) -> Option<Message> {
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), client.next()).await.expect("server answers in time");
        match read {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(message)) => return Some(message),
            Some(Err(_)) | None => return None,
        }
    }
}

async fn next_ack(client: &mut Client<impl Transport>) -> Ack {
    match next_message(client).await {
        Some(Message::Text(text)) => serde_json::from_str(&text).expect("acknowledgements are JSON"),
        other => panic!("expected an acknowledgement, got {other:?}"),
    }
}

/// The close code the server sends next (after any acknowledgements, which are skipped).
async fn close_code(client: &mut Client<impl Transport>) -> Option<CloseCode> {
    loop {
        match next_message(client).await? {
            Message::Close(frame) => return frame.map(|frame| frame.code),
            Message::Text(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn protobuf(seq: u64, spans: usize) -> Message {
    Message::binary(Envelope::binary_message(seq, &spanpipe_testkit::realistic::encoded(spans, 7)))
}

const TWO_SPANS_JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"ws"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a","startTimeUnixNano":"1","endTimeUnixNano":"2"},{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","name":"b","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;

fn accepted(seq: u64, spans: u64) -> Ack {
    Ack::Accepted { seq, accepted: spans, rejected: 0, message: None }
}

#[test]
fn binary_and_text_messages_are_acked_with_their_sequence_numbers() {
    let server = Server::start(config(), Mode::Accept);
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.send(protobuf(7, 3)).await.unwrap();
        client.send(Message::text(Envelope::text_message(8, TWO_SPANS_JSON))).await.unwrap();
        client.send(Message::text(Envelope::text_message(9, r#"{"resourceSpans":[]}"#))).await.unwrap();
        client.send(Message::binary(Envelope::binary_message(u64::MAX, &[]))).await.unwrap();
        assert_eq!(next_ack(&mut client).await, accepted(7, 3));
        assert_eq!(next_ack(&mut client).await, accepted(8, 2));
        assert_eq!(next_ack(&mut client).await, accepted(9, 0));
        assert_eq!(next_ack(&mut client).await, accepted(u64::MAX, 0));
        client.close(None).await.unwrap();
    });
    assert_eq!(server.spans.load(Ordering::SeqCst), 5);
    let stats = server.finish();
    assert_eq!((stats.requests_accepted, stats.spans_accepted, stats.requests_empty), (2, 5, 2));
    assert_eq!((stats.connections_opened, stats.connections_closed), (1, 1));
}

#[test]
fn a_malformed_message_gets_an_error_ack_and_the_connection_keeps_working() {
    let server = Server::start(config(), Mode::Accept);
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.send(Message::text(Envelope::text_message(9, r#"{"resourceSpans":["#))).await.unwrap();
        client.send(Message::binary(Envelope::binary_message(10, b"\xff\xff\xff"))).await.unwrap();
        client.send(protobuf(11, 2)).await.unwrap();
        for seq in [9, 10] {
            let Ack::Failed { seq: acked, error } = next_ack(&mut client).await else { panic!("expected an error") };
            assert_eq!((acked, error.code, error.retry_after_ms), (seq, AckErrorCode::InvalidArgument, None));
            assert!(!error.message.is_empty());
        }
        assert_eq!(next_ack(&mut client).await, accepted(11, 2));
    });
    let stats = server.finish();
    assert_eq!((stats.requests_malformed, stats.requests_accepted), (2, 1));
}

#[test]
fn a_message_without_a_sequence_number_closes_with_1007() {
    let server = Server::start(config(), Mode::Accept);
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.send(Message::text(TWO_SPANS_JSON)).await.unwrap();
        assert_eq!(close_code(&mut client).await, Some(CloseCode::Invalid));
        let mut client = connect(&server).await;
        client.send(Message::binary(vec![1, 2, 3])).await.unwrap();
        assert_eq!(close_code(&mut client).await, Some(CloseCode::Invalid));
    });
    assert_eq!(server.finish().requests_malformed, 2);
}

#[test]
fn an_oversized_message_closes_with_1009_and_the_listener_keeps_serving() {
    let server = Server::start(config(), Mode::Accept);
    runtime().block_on(async {
        let mut client = connect(&server).await;
        let oversized = Envelope::binary_message(1, &vec![0; 100 * 1024]);
        // The server may close before the whole message is sent.
        let _ = client.send(Message::binary(oversized)).await;
        assert_eq!(close_code(&mut client).await, Some(CloseCode::Size));
        let mut client = connect(&server).await;
        client.send(protobuf(2, 1)).await.unwrap();
        assert_eq!(next_ack(&mut client).await, accepted(2, 1));
    });
    assert_eq!(server.finish().requests_too_large, 1);
}

// Raw clients.

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn raw_connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
}

/// Sends `request` and returns everything the server sends until it closes the connection.
fn raw_exchange(server: &Server, request: &[u8]) -> String {
    let mut stream = raw_connect(server);
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A connection upgraded by hand: the tests write frames themselves.
fn raw_upgrade(server: &Server) -> TcpStream {
    let mut stream = raw_connect(server);
    let request = format!(
        "GET /v1/traces/ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    stream
}

/// A client frame: FIN, `opcode`, masked with a zero key (so the payload reads as is).
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(payload);
    frame
}

/// Reads server frames until the server closes the connection (or 5 s pass): (opcode, payload).
fn read_frames(stream: &mut TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    let mut frames = Vec::new();
    let mut rest = &received[..];
    while rest.len() >= 2 {
        let (opcode, short_len) = (rest[0] & 0x0f, usize::from(rest[1] & 0x7f));
        let (len, header) = match short_len {
            126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 => (usize::try_from(u64::from_be_bytes(rest[2..10].try_into().unwrap())).unwrap(), 10),
            len => (len, 2),
        };
        frames.push((opcode, rest[header..header + len].to_vec()));
        rest = &rest[header + len..];
    }
    frames
}

/// Sends `bytes` on an upgraded connection, then stops sending (as a client that got the close
/// frame would) and returns the server's frames.
fn send_then_read(server: &Server, bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut stream = raw_upgrade(server);
    stream.write_all(bytes).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    read_frames(&mut stream)
}

fn close_code_of(frames: &[(u8, Vec<u8>)]) -> Option<u16> {
    frames.iter().find(|(opcode, _)| *opcode == 0x8).map(|(_, payload)| u16::from_be_bytes([payload[0], payload[1]]))
}

#[test]
fn non_websocket_requests_get_http_errors_and_the_listener_keeps_serving() {
    let server = Server::start(config(), Mode::Accept);
    let plain_get = raw_exchange(&server, b"GET /v1/traces/ws HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(plain_get.starts_with("HTTP/1.1 426"), "{plain_get}");
    assert!(plain_get.to_ascii_lowercase().contains("upgrade: websocket"), "{plain_get}");
    let wrong_path = raw_exchange(&server, b"GET /v1/traces HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(wrong_path.starts_with("HTTP/1.1 404"), "{wrong_path}");
    let post = raw_exchange(&server, b"POST /v1/traces/ws HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let garbage = raw_exchange(&server, b"\x16\x03\x01\x00\xff garbage \x00\x00\r\n\r\n");
    assert!(garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.send(protobuf(1, 1)).await.unwrap();
        assert_eq!(next_ack(&mut client).await, accepted(1, 1));
    });
    let stats = server.finish();
    assert_eq!((stats.requests_not_found, stats.requests_method_not_allowed), (1, 1));
    assert_eq!(stats.connections_opened, stats.connections_closed);
}

#[test]
fn with_allowed_origins_pages_from_other_origins_are_answered_403_and_agents_still_connect() {
    let mut config = config();
    config.allowed_origins = vec!["https://*.example.com".to_owned()];
    let server = Server::start(config, Mode::Accept);
    let upgrade = |origin: Option<&str>| {
        let origin = origin.map(|origin| format!("Origin: {origin}\r\n")).unwrap_or_default();
        let request = format!(
            "GET /v1/traces/ws HTTP/1.1\r\nHost: test\r\n{origin}Connection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
        );
        let mut stream = raw_connect(&server);
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = [0; 512];
        let read = stream.read(&mut answer).unwrap();
        String::from_utf8_lossy(&answer[..read]).into_owned()
    };
    let refused = upgrade(Some("https://evil.example"));
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(refused.contains("`https://evil.example`") && refused.contains("allowed_origins"), "{refused}");
    for accepted in [Some("https://app.example.com"), None] {
        let answer = upgrade(accepted);
        assert!(answer.starts_with("HTTP/1.1 101"), "{accepted:?}: {answer}");
    }
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.send(protobuf(1, 2)).await.unwrap();
        assert_eq!(next_ack(&mut client).await, accepted(1, 2), "a client without Origin sends as before");
    });
    let stats = server.finish();
    assert_eq!((stats.requests_forbidden, stats.spans_accepted), (1, 2));
}

#[test]
fn broken_and_truncated_frames_close_the_connection_cleanly() {
    let server = Server::start(config(), Mode::Accept);
    // A frame without the mask every client frame must carry.
    assert_eq!(close_code_of(&send_then_read(&server, &[0x82, 0x03, 1, 2, 3])), Some(1002));
    // A reserved opcode.
    assert_eq!(close_code_of(&send_then_read(&server, &masked_frame(0x3, b"x"))), Some(1002));
    // Text that is not UTF-8.
    assert_eq!(close_code_of(&send_then_read(&server, &masked_frame(0x1, b"1\n\xff\xfe"))), Some(1007));
    // Half a frame, then the client goes away: the server ends the connection without a word.
    let mut truncated = raw_upgrade(&server);
    truncated.write_all(&masked_frame(0x2, &[0; 100])[..50]).unwrap();
    truncated.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(read_frames(&mut truncated).is_empty());
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.send(protobuf(1, 1)).await.unwrap();
        assert_eq!(next_ack(&mut client).await, accepted(1, 1));
    });
    let stats = server.finish();
    assert_eq!(stats.requests_malformed, 3);
    assert_eq!(stats.connections_opened, stats.connections_closed);
}

#[test]
fn a_client_trickling_a_message_is_closed_after_the_read_timeout() {
    let server =
        Server::start(WebSocketReceiverConfig { ping_interval: GoDuration::from_secs(0), ..config() }, Mode::Accept);
    let mut stream = raw_upgrade(&server);
    let frame = masked_frame(0x2, &Envelope::binary_message(1, &[0; 64]));
    let started = Instant::now();
    // One byte every 50 ms: the message would take 4 s, the read timeout is 600 ms.
    for byte in &frame {
        if stream.write_all(std::slice::from_ref(byte)).is_err() || started.elapsed() > Duration::from_millis(1500) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Done sending, as a client that saw the close frame would be.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let frames = read_frames(&mut stream);
    let stats = server.finish();
    assert_eq!(close_code_of(&frames), Some(1008));
    assert_eq!((stats.body_timeouts, stats.requests_accepted), (1, 0));
}

#[test]
fn a_client_that_does_not_read_its_acks_is_closed_after_the_write_timeout() {
    // Large acknowledgements fill the socket buffers quickly.
    let server = Server::start(config(), Mode::Warn("w".repeat(1000)));
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.address.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let request = format!(
        "GET /v1/traces/ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let message = masked_frame(0x2, &Envelope::binary_message(1, &spanpipe_testkit::realistic::encoded(1, 7)));
    // Send, never reading, until the server gives up and closes the connection (a write then
    // fails for good), for at most 20 s. Writes that merely time out are retried, so that every
    // frame goes out whole however slowly the server reads.
    let started = Instant::now();
    let mut sent = 0;
    'sending: while started.elapsed() < Duration::from_secs(20) {
        let mut rest = &message[..];
        while !rest.is_empty() {
            match stream.write(rest) {
                Ok(written) => rest = &rest[written..],
                Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if started.elapsed() > Duration::from_secs(20) {
                        break 'sending;
                    }
                }
                Err(_) => break 'sending,
            }
        }
        sent += 1;
    }
    let stats = server.finish();
    assert_eq!(stats.write_timeouts, 1);
    assert!(stats.requests_accepted > 0 && stats.requests_accepted < sent);
}

#[test]
fn a_full_pipeline_that_asks_to_wait_withholds_the_ack_until_there_is_room() {
    let server = Server::start(config(), Mode::FullFor(Duration::from_millis(300)));
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.send(protobuf(1, 2)).await.unwrap();
        client.send(protobuf(2, 1)).await.unwrap();
        assert_eq!(next_ack(&mut client).await, accepted(1, 2));
        assert_eq!(next_ack(&mut client).await, accepted(2, 1));
    });
    assert!(server.refusals.load(Ordering::SeqCst) > 0, "the first message waited for room");
    let stats = server.finish();
    assert_eq!((stats.requests_accepted, stats.requests_refused), (2, 0));
}

#[test]
fn a_pipeline_full_past_the_backpressure_wait_closes_with_1013() {
    let quick = WebSocketReceiverConfig { max_backpressure_wait: GoDuration::from_millis(200), ..config() };
    let server = Server::start(quick, Mode::FullForever);
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.send(protobuf(1, 1)).await.unwrap();
        assert_eq!(close_code(&mut client).await, Some(CloseCode::Again));
    });
    assert_eq!(server.spans.load(Ordering::SeqCst), 0);
    assert_eq!(server.finish().requests_refused, 1);
}

#[test]
fn a_full_pipeline_that_does_not_wait_is_an_error_ack_with_retry_after() {
    let server = Server::start(config(), Mode::FullNoWait);
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.send(protobuf(5, 1)).await.unwrap();
        let expected = Ack::failed(5, AckErrorCode::ResourceExhausted, "queue full", Some(Duration::from_millis(2500)));
        assert_eq!(next_ack(&mut client).await, expected);
    });
    assert_eq!(server.finish().requests_refused, 1);
}

#[test]
fn a_client_that_never_answers_pings_is_closed_and_one_that_does_stays() {
    let server = Server::start(config(), Mode::Accept);
    // The raw client reads nothing and so answers nothing.
    let mut silent = raw_upgrade(&server);
    let frames = read_frames(&mut silent);
    assert_eq!(frames.first().map(|(opcode, _)| *opcode), Some(0x9), "a ping first");
    assert_eq!(close_code_of(&frames), Some(1008));
    // tokio-tungstenite answers pings while it reads.
    runtime().block_on(async {
        let mut client = connect(&server).await;
        let mut pings = 0;
        while pings < 3 {
            match tokio::time::timeout(Duration::from_secs(5), client.next()).await.unwrap() {
                Some(Ok(Message::Ping(_))) => pings += 1,
                other => panic!("expected pings, got {other:?}"),
            }
        }
        client.send(protobuf(1, 1)).await.unwrap();
        assert_eq!(next_ack(&mut client).await, accepted(1, 1));
    });
    assert_eq!(server.finish().idle_timeouts, 1);
}

#[test]
fn shutdown_acks_what_was_read_and_closes_with_1001() {
    let server = Server::start(config(), Mode::Accept);
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.send(protobuf(1, 2)).await.unwrap();
        assert_eq!(next_ack(&mut client).await, accepted(1, 2));
        server.stop();
        assert_eq!(close_code(&mut client).await, Some(CloseCode::Away));
    });
    let stats = server.finish();
    assert_eq!((stats.spans_accepted, stats.connections_closed), (2, 1));
}

#[test]
fn shutdown_while_a_message_waits_for_room_answers_it_unavailable_then_closes_with_1001() {
    let server = Server::start(config(), Mode::FullForever);
    runtime().block_on(async {
        let mut client = connect(&server).await;
        client.send(protobuf(3, 1)).await.unwrap();
        // Stop once the message is waiting for room.
        for _ in 0..500 {
            if server.refusals.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.stop();
        let Ack::Failed { seq, error } = next_ack(&mut client).await else { panic!("expected an error") };
        assert_eq!((seq, error.code), (3, AckErrorCode::Unavailable));
        assert!(error.retry_after_ms.is_some());
        assert_eq!(close_code(&mut client).await, Some(CloseCode::Away));
    });
    assert_eq!(server.finish().requests_refused, 1);
}

#[test]
fn over_tls_the_same_protocol_works_as_wss() {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;

    let pki = spanpipe_testkit::tls::Pki::new(&["localhost", "127.0.0.1"]);
    let tls = TlsServerConfig {
        cert_file: pki.server.cert_file.display().to_string(),
        key_file: pki.server.key_file.display().to_string(),
        ..TlsServerConfig::default()
    };
    let server = Server::start(WebSocketReceiverConfig { tls: Some(tls), ..config() }, Mode::Accept);
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls::pki_types::CertificateDer::pem_file_iter(pki.ca_file()).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    runtime().block_on(async {
        let tcp = tokio::net::TcpStream::connect(server.address).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let secured = tokio_rustls::TlsConnector::from(Arc::new(client_config)).connect(name, tcp).await.unwrap();
        let url = format!("wss://localhost:{}/v1/traces/ws", server.address.port());
        let (mut client, _) = tokio_tungstenite::client_async(url, secured).await.expect("handshake over TLS");
        client.send(protobuf(1, 2)).await.unwrap();
        assert_eq!(next_ack(&mut client).await, accepted(1, 2));
    });
    // Plain WebSocket on the TLS port is answered as plain HTTP on a TLS port is.
    let plain = raw_exchange(&server, b"GET /v1/traces/ws HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(plain.starts_with("HTTP/1.0 400"), "{plain}");
    let stats = server.finish();
    assert_eq!((stats.spans_accepted, stats.tls_handshake_failures), (2, 1));
}

#[test]
fn bind_refuses_invalid_configs_by_key() {
    let invalid = WebSocketReceiverConfig { max_backpressure_wait: GoDuration::from_secs(0), ..config() };
    let (tx, rx) = mpsc::channel();
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let sink = Rc::new(TestSink {
                mode: Mode::Accept,
                spans: Arc::default(),
                refusals: Arc::default(),
                room_at: Cell::new(None),
            });
            let error = WebSocketReceiver::bind(&invalid, sink, &CodecRegistry::with_builtins()).unwrap_err();
            tx.send(error.to_string()).unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
    let message = rx.recv().unwrap();
    assert!(message.contains("max_backpressure_wait"), "{message}");
}
