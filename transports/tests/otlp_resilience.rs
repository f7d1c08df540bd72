//! Clients that are slow, silent or many: each gets the answer the limits promise, and other
//! clients are served meanwhile. Timeouts here are around a second (see `common::test_config`);
//! every loop is bounded.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");

/// Sends `bytes` one per `pace` until the server closes the connection; returns what it
/// answered and when it closed (`None` if it never did while bytes remained).
fn trickle(address: std::net::SocketAddr, bytes: &[u8], pace: Duration) -> (Vec<u8>, Option<Duration>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(pace)).unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    for byte in bytes {
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            return (answer, Some(start.elapsed()));
        }
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) => return (answer, Some(start.elapsed())),
            Ok(read) => {
                answer.extend_from_slice(&buffer[..read]);
                // The server answered; read what remains until it closes.
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = stream.read_to_end(&mut answer);
                return (answer, Some(start.elapsed()));
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (answer, Some(start.elapsed())),
        }
    }
    (answer, None)
}

#[test]
fn headers_sent_one_byte_a_second_are_cut_off_while_another_client_is_served() {
    let server = TestServer::start(SinkMode::Accept);
    let http = server.http;
    let slow = std::thread::spawn(move || {
        trickle(
            http,
            b"POST /v1/traces HTTP/1.1\r\nhost: slow\r\ncontent-type: application/x-protobuf\r\n",
            Duration::from_secs(1),
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    let reply = http1(server.http, "POST", "/v1/traces", &[PROTOBUF], request(5));
    assert_eq!(reply.status, 200, "a second client is served while the slow one trickles");
    let (answer, closed_after) = slow.join().unwrap();
    assert!(answer.is_empty(), "no response to a request that never completed its headers");
    let closed_after = closed_after.expect("the server closed the slow connection");
    assert!(closed_after < Duration::from_secs(5), "closed after {closed_after:?}, header timeout is 1s");
    let (_, stats) = server.finish();
    assert_eq!(stats.header_timeouts, 1);
}

#[test]
fn a_body_sent_one_byte_a_second_is_answered_408_while_another_client_is_served() {
    let server = TestServer::start(SinkMode::Accept);
    let http = server.http;
    let slow = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(http).unwrap();
        stream
            .write_all(b"POST /v1/traces HTTP/1.1\r\nhost: slow\r\ncontent-type: application/x-protobuf\r\ncontent-length: 1000\r\n\r\n")
            .unwrap();
        let start = Instant::now();
        let mut rest = vec![0u8; 1000].into_iter();
        stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut answer = Vec::new();
        while start.elapsed() < Duration::from_secs(8) {
            let Some(byte) = rest.next() else { break };
            if stream.write_all(&[byte]).is_err() {
                break;
            }
            let mut buffer = [0u8; 1024];
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => answer.extend_from_slice(&buffer[..read]),
                Err(_) => {}
            }
            if !answer.is_empty() {
                break;
            }
        }
        (String::from_utf8_lossy(&answer).into_owned(), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(http1(server.http, "POST", "/v1/traces", &[PROTOBUF], request(5)).status, 200);
    let (answer, elapsed) = slow.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(elapsed < Duration::from_secs(5), "answered after {elapsed:?}, read timeout is 1.5s");
    let (_, stats) = server.finish();
    assert_eq!(stats.body_timeouts, 1);
}

#[test]
fn a_grpc_message_sent_one_byte_a_second_is_answered_deadline_exceeded() {
    let server = TestServer::start(SinkMode::Accept);
    let address = server.grpc;
    let slow = std::thread::spawn(move || grpc_message_trickled(address, EXPORT_PATH));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(grpc(server.grpc, EXPORT_PATH, &[], grpc_frame(false, &request(3))).grpc_status(), Some(0));
    let (status, elapsed) = slow.join().unwrap();
    assert_eq!(status.as_deref(), Some("4"), "DEADLINE_EXCEEDED");
    assert!(elapsed < Duration::from_secs(5), "answered after {elapsed:?}");
}

#[test]
fn a_thousand_idle_connections_do_not_keep_another_client_waiting() {
    let server = TestServer::start(SinkMode::Accept);
    let idle: Vec<TcpStream> = (0..1000)
        .map(|i| TcpStream::connect(if i % 2 == 0 { server.http } else { server.grpc }).expect("connects"))
        .collect();
    for round in 0..10 {
        assert_eq!(http1(server.http, "POST", "/v1/traces", &[PROTOBUF], request(5)).status, 200, "round {round}");
        assert_eq!(grpc(server.grpc, EXPORT_PATH, &[], grpc_frame(false, &request(5))).grpc_status(), Some(0));
    }
    assert_eq!(server.spans_received(), 100);
    // Every idle connection is still open (none is dropped for others' sake)...
    let (grpc_stats, http_stats) = server.finish();
    assert!(grpc_stats.connections_opened + http_stats.connections_opened >= 1020);
    // ...and shutdown closed them all (HTTP/2 ones after their SETTINGS and GOAWAY frames).
    for mut stream in idle {
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        let outcome = stream.read_to_end(&mut rest).map_err(|error| error.kind());
        assert!(
            matches!(outcome, Ok(_) | Err(ErrorKind::ConnectionReset)),
            "closed by shutdown, not left open: {outcome:?}"
        );
    }
}

#[test]
fn an_idle_keepalive_connection_is_closed_after_the_idle_timeout() {
    let mut config = test_config();
    config.protocols.http.as_mut().unwrap().idle_timeout = Some(spanpipe_config::GoDuration::from_millis(300));
    let server = TestServer::start_with(config, SinkMode::Accept);
    let body = request(2);
    let mut stream = TcpStream::connect(server.http).unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    assert!(start.elapsed() < Duration::from_secs(4), "closed after {:?}", start.elapsed());
    let (_, stats) = server.finish();
    assert_eq!(stats.idle_timeouts, 1);
}

#[test]
fn shutdown_finishes_in_flight_requests_and_stops_accepting() {
    let server = TestServer::start(SinkMode::Accept);
    let address = server.http;
    let body = request(8);
    let half = body.len() / 2;
    let mut stream = TcpStream::connect(address).unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body[..half]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let received = std::sync::Arc::clone(&server.received);
    let finishing = std::thread::spawn(move || server.finish());
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body[half..]).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    let (_, stats) = finishing.join().unwrap();
    assert_eq!(stats.requests_accepted, 1);
    assert_eq!(received.lock().unwrap().iter().map(spanpipe_core::SpanBatch::len).sum::<usize>(), 8);
    assert_eq!(TcpStream::connect(address).map_err(|e| e.kind()).err(), Some(ErrorKind::ConnectionRefused));
}
