//! spanpipe → spanpipe while the receiving side goes away: retries and failover deliver
//! everything once a receiver is back, over both network exporters (`otlp`, gRPC, and
//! `otlphttp`).
//!
//! The load is OTLP/HTTP protobuf requests posted to A with span ids chosen by the test, so that
//! B's file (OTLP/JSON lines, `append: true` so that a restarted B keeps what the first one
//! wrote) can be checked span by span: every span sent is there exactly once, and nothing else.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    assert_delivered_exactly_once, free_address, holds_all, post_until_accepted, wait_until, SpanIds, Spanpipe,
    DELIVERY_TIMEOUT,
};

/// Spans per request posted to A, and requests per phase of a test.
const SPANS_PER_REQUEST: usize = 20;
const REQUESTS_PER_PHASE: usize = 10;

/// How long A keeps posting through a refusal before the test fails.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

/// The network exporters, as A's config names them.
#[derive(Clone, Copy, Debug)]
enum Exporter {
    Otlp,
    OtlpHttp,
}

impl Exporter {
    fn name(self) -> &'static str {
        match self {
            Self::Otlp => "otlp",
            Self::OtlpHttp => "otlphttp",
        }
    }

    /// How this exporter addresses a receiver that serves gRPC on `grpc` and HTTP on `http`.
    fn endpoint(self, receiver: Receiver) -> String {
        match self {
            Self::Otlp => receiver.grpc.to_string(),
            Self::OtlpHttp => format!("http://{}", receiver.http),
        }
    }

    /// A's exporter section: the Collector's `retry_on_failure` and `sending_queue` keys with
    /// short intervals, and either `endpoint` or spanpipe's `endpoints` failover list.
    fn config(self, endpoints: &[String]) -> String {
        let target = match endpoints {
            [single] => format!("endpoint: \"{single}\""),
            several => format!(
                "endpoints: [{}]\n    failover: {{failures: 2, window: 30s, probe_interval: 500ms, healthy_for: 1s}}",
                several.iter().map(|endpoint| format!("\"{endpoint}\"")).collect::<Vec<_>>().join(", ")
            ),
        };
        let tls = match self {
            Self::Otlp => "\n    tls: {insecure: true}",
            Self::OtlpHttp => "",
        };
        format!(
            "exporters:\n  {name}:\n    {target}{tls}\n    timeout: 5s\n    retry_on_failure:\n      \
             initial_interval: 50ms\n      max_interval: 500ms\n      max_elapsed_time: 60s\n    sending_queue:\n      \
             queue_size: 100\n      num_consumers: 2\n",
            name = self.name()
        )
    }
}

/// The addresses a receiving spanpipe listens on.
#[derive(Clone, Copy, Debug)]
struct Receiver {
    grpc: SocketAddr,
    http: SocketAddr,
}

impl Receiver {
    fn on_free_ports() -> Self {
        Self { grpc: free_address(), http: free_address() }
    }

    /// Starts a spanpipe on these addresses that writes what it receives to `output`.
    fn start(self, dir: &Path, name: &str, output: &Path) -> Spanpipe {
        let components = format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc: {{endpoint: \"{}\"}}\n      http: {{endpoint: \"{}\"}}\n\
             exporters:\n  file:\n    path: \"{}\"\n    append: true\n    flush_interval: 20ms\n",
            self.grpc,
            self.http,
            output.display()
        );
        Spanpipe::start(dir, name, &components, "traces: {receivers: [otlp], exporters: [file]}")
    }
}

/// Starts A: OTLP/HTTP in, batched, out through `exporter` to `endpoints`. Returns it and the
/// address the load goes to.
fn start_forwarder(dir: &Path, exporter: Exporter, endpoints: &[String]) -> (Spanpipe, SocketAddr) {
    let listen = free_address();
    let components = format!(
        "receivers:\n  otlp:\n    protocols:\n      http: {{endpoint: \"{listen}\"}}\n\
         processors:\n  batch:\n    send_batch_size: 50\n    timeout: 50ms\n{}",
        exporter.config(endpoints)
    );
    let pipeline = format!("traces: {{receivers: [otlp], processors: [batch], exporters: [{}]}}", exporter.name());
    (Spanpipe::start(dir, "a", &components, &pipeline), listen)
}

/// Posts one phase of load to `address`; returns the ids of the spans it accepted.
fn post_phase(address: SocketAddr, ids: &mut SpanIds, phase: u64) -> Vec<u64> {
    let mut sent = Vec::new();
    for request in 0..REQUESTS_PER_PHASE as u64 {
        let (body, request_ids) = ids.request(SPANS_PER_REQUEST, phase * 1000 + request);
        post_until_accepted(address, &body, POST_TIMEOUT);
        sent.extend(request_ids);
        std::thread::sleep(Duration::from_millis(20));
    }
    sent
}

/// Load in three phases: B up, B killed (A keeps accepting and retries), B restarted on the same
/// ports. In the end B's file holds every span exactly once.
///
/// Why B is killed only once its file holds everything A delivered so far: B acknowledges a
/// request when its pipeline has taken it, before the file exporter writes it (as the
/// Collector does; neither has a persistent queue), so a SIGKILL at an arbitrary instant may
/// lose spans B acknowledged — no retry by A can bring those back. Killing B at such an instant
/// would make the test fail at random and prove nothing about A. What the test asserts is A's
/// side: everything A accepted while B was down, or while its connection to B broke, is
/// retried until the restarted B has it. For the same reason no span can be duplicated here —
/// a duplicate needs a request B accepted whose answer A lost, and no request is in flight at
/// the kill — so the check is exactly once, not merely at least once.
fn delivers_everything_after_the_receiver_is_killed_and_restarted(exporter: Exporter) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = dir.path().join("b.jsonl");
    let receiver = Receiver::on_free_ports();
    let mut b = receiver.start(dir.path(), "b", &output);
    let (mut a, load) = start_forwarder(dir.path(), exporter, &[exporter.endpoint(receiver)]);
    let mut ids = SpanIds::default();

    let mut sent = post_phase(load, &mut ids, 1);
    wait_until("B to write the first phase", DELIVERY_TIMEOUT, || holds_all(&output, &sent));
    b.kill();
    let killed_at = Instant::now();

    sent.extend(post_phase(load, &mut ids, 2));
    std::thread::sleep(Duration::from_secs(1).saturating_sub(killed_at.elapsed()));
    wait_until("A to retry the export to the dead B", DELIVERY_TIMEOUT, || {
        a.metric("spanpipe_exporter_retries_total", &[("exporter", exporter.name())]) > 0.0
    });
    b.restart();

    sent.extend(post_phase(load, &mut ids, 3));
    wait_until("B to hold every span sent", DELIVERY_TIMEOUT, || holds_all(&output, &sent));
    a.stop_cleanly();
    b.stop_cleanly();
    assert_delivered_exactly_once(&output, &sent);
}

#[test]
fn otlp_exporter_delivers_everything_after_the_receiver_is_killed_and_restarted() {
    delivers_everything_after_the_receiver_is_killed_and_restarted(Exporter::Otlp);
}

#[test]
fn otlphttp_exporter_delivers_everything_after_the_receiver_is_killed_and_restarted() {
    delivers_everything_after_the_receiver_is_killed_and_restarted(Exporter::OtlpHttp);
}

/// The port of an endpoint as the config writes it (`host:port` or `http://host:port/...`).
fn endpoint_port(endpoint: &str) -> String {
    let authority = endpoint.trim_start_matches("http://").split('/').next().unwrap_or_default();
    authority.rsplit(':').next().unwrap_or_default().to_owned()
}

/// `endpoints: [B1, B2]` with nothing listening at B1: A fails over and B2 gets everything.
/// Then B1 starts: A's probe finds it healthy, A returns to it, and later load lands there.
/// Across both files every span is there exactly once (a failed connection to B1 delivers
/// nothing, so nothing can be duplicated).
fn fails_over_to_the_second_endpoint_and_back(exporter: Exporter) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (primary_output, secondary_output) = (dir.path().join("b1.jsonl"), dir.path().join("b2.jsonl"));
    let (primary, secondary) = (Receiver::on_free_ports(), Receiver::on_free_ports());
    let mut b2 = secondary.start(dir.path(), "b2", &secondary_output);
    let endpoints = [exporter.endpoint(primary), exporter.endpoint(secondary)];
    let (mut a, load) = start_forwarder(dir.path(), exporter, &endpoints);
    let mut ids = SpanIds::default();
    let exporter_label = [("exporter", exporter.name())];

    let before_primary = post_phase(load, &mut ids, 1);
    wait_until("B2 to hold the spans sent while B1 is down", DELIVERY_TIMEOUT, || {
        holds_all(&secondary_output, &before_primary)
    });
    wait_until("A to count its failover", Duration::from_secs(5), || {
        a.metric("spanpipe_exporter_failovers_total", &exporter_label) >= 1.0
    });

    let mut b1 = primary.start(dir.path(), "b1", &primary_output);
    wait_until("A to return to B1 after a successful probe", DELIVERY_TIMEOUT, || {
        a.metric("spanpipe_exporter_failbacks_total", &exporter_label) >= 1.0
    });
    let after_primary = post_phase(load, &mut ids, 2);
    wait_until("B1 to hold the spans sent after A returned to it", DELIVERY_TIMEOUT, || {
        holds_all(&primary_output, &after_primary)
    });
    // Both moves are self-healing actions in A's health log, shown at `/status`.
    let status = a.status();
    let moves: Vec<(&str, &str, &str, &str)> = status["health"]
        .as_array()
        .expect("health records")
        .iter()
        .map(|record| {
            let field = |key: &str| record[key].as_str().unwrap_or_default();
            (field("component"), field("action"), field("before"), field("after"))
        })
        .collect();
    let component = format!("exporters/{}", exporter.name());
    assert!(!moves.is_empty() && moves.iter().all(|(on, ..)| *on == component), "{status}");
    let (_, first, from, to) = moves[0];
    assert_eq!(first, "failover", "{status}");
    assert!(from.contains(&endpoint_port(&endpoints[0])) && to.contains(&endpoint_port(&endpoints[1])), "{status}");
    assert_eq!(moves.last().map(|m| m.1), Some("failback"), "{status}");
    a.stop_cleanly();
    b1.stop_cleanly();
    b2.stop_cleanly();

    assert_delivered_exactly_once(&secondary_output, &before_primary);
    assert_delivered_exactly_once(&primary_output, &after_primary);
}

#[test]
fn otlp_exporter_fails_over_to_the_second_endpoint_and_back() {
    fails_over_to_the_second_endpoint_and_back(Exporter::Otlp);
}

#[test]
fn otlphttp_exporter_fails_over_to_the_second_endpoint_and_back() {
    fails_over_to_the_second_endpoint_and_back(Exporter::OtlpHttp);
}
