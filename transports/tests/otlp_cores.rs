//! Thread per core: every core binds the same port (`SO_REUSEPORT`) and the kernel spreads
//! connections across them; each core counts its own and the sums add up.

mod common;

use common::*;
use spanpipe_transports::otlp::{OtlpReceiverConfig, Protocols, ReceiverStatsSnapshot};

#[test]
fn two_cores_share_one_port_and_their_counters_add_up() {
    let first = TestServer::start(SinkMode::Accept);
    let mut http = test_config().protocols.http.unwrap();
    http.endpoint = first.http.to_string();
    let second_config = OtlpReceiverConfig { protocols: Protocols { grpc: None, http: Some(http) } };
    let second = TestServer::start_with(second_config, SinkMode::Accept);
    assert_eq!(second.http, first.http, "both cores listen on the same address");

    for _ in 0..20 {
        let reply = http1(first.http, "POST", "/v1/traces", &[("content-type", "application/x-protobuf")], request(3));
        assert_eq!(reply.status, 200);
    }
    assert_eq!(first.spans_received() + second.spans_received(), 60);
    let (_, first_http) = first.finish();
    let (_, second_http) = second.finish();
    let total: ReceiverStatsSnapshot = [first_http, second_http].into_iter().sum();
    assert_eq!((total.connections_opened, total.requests_accepted, total.spans_accepted), (20, 20, 60));
}

/// A collector taking over a port from another server binds it at once, though the connections
/// that server closed still wait in `TIME_WAIT` on it (a minute on Linux). Listeners set
/// `SO_REUSEADDR` as well as `SO_REUSEPORT` for this: with `SO_REUSEPORT` alone the bind is
/// refused ("address already in use") while any of them is left from a socket without it.
#[test]
fn a_port_another_server_just_closed_connections_on_is_bound_at_once() {
    use std::io::Read as _;
    // std's listener sets SO_REUSEADDR and not SO_REUSEPORT, like most servers.
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the other server");
    let address = other.local_addr().unwrap();
    let mut client = std::net::TcpStream::connect(address).unwrap();
    let (served, _) = other.accept().unwrap();
    drop(served); // The server closes first, so its end of the connection is the one in TIME_WAIT.
    assert_eq!(client.read(&mut [0; 1]).unwrap(), 0, "the client sees the close");
    drop(client);
    drop(other);
    assert!(time_wait_on(address.port()), "a connection on {address} waits in TIME_WAIT, the premise of this test");

    let mut http = test_config().protocols.http.unwrap();
    http.endpoint = address.to_string();
    let server = TestServer::start_with(
        OtlpReceiverConfig { protocols: Protocols { grpc: None, http: Some(http) } },
        SinkMode::Accept,
    );
    assert_eq!(server.http, address);
    let reply = http1(address, "POST", "/v1/traces", &[("content-type", "application/x-protobuf")], request(2));
    assert_eq!(reply.status, 200);
    assert_eq!(server.spans_received(), 2);
}

/// Whether some IPv4 TCP socket with local port `port` is in `TIME_WAIT` (state 06 in
/// `/proc/net/tcp`).
fn time_wait_on(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("reading /proc/net/tcp");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields.get(1).and_then(|local| local.rsplit(':').next());
        local_port.and_then(|hex| u16::from_str_radix(hex, 16).ok()) == Some(port) && fields.get(3) == Some(&"06")
    })
}
