//! Thread per core: every core binds the same port (glommio sets `SO_REUSEPORT`) and the
//! kernel spreads connections across them; each core counts its own and the sums add up.

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
