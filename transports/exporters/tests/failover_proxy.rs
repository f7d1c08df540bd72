//! Failover and failback through a TCP proxy that keeps disconnecting the exporter, in front of a
//! fake OTLP backend, with a second, healthy backend as the fallback endpoint (all on loopback).
//!
//! - `otlp` (gRPC, one multiplexed HTTP/2 connection): the proxy cuts every connection after its
//!   first bytes, so every attempt fails with a dropped connection.
//! - `otlphttp` with a connection per request: the proxy cuts every other connection, so every
//!   other request still gets through. Successes in between do not save the endpoint: failures
//!   are counted per window.
//!
//! In both, the exporter fails over once `failover.failures` disconnects fall within the window,
//! delivers every batch exactly once (a cut connection never reaches the backend, so a retry
//! cannot duplicate), does not return while the primary still flaps, and returns once the proxy
//! passes everything through — but only after probes have succeeded for `failover.healthy_for`,
//! not at the first good probe. Every move is checked in the counters and in the health records.

mod support;

use std::io::Read as _;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use spanpipe_config::GoDuration;
use spanpipe_core::SpanBatch;
use spanpipe_exporters::{
    ExporterBuilder, FailoverConfig, OtlpExporterConfig, OtlpHttpExporterConfig, QueueConfig, TlsClientConfig,
};
use spanpipe_health::{HealthRecord, HealthSink, MemoryHealthSink};
use support::{batch, eventually, fast_retry, on_glommio, FakeServer, Received};

const WAIT: Duration = Duration::from_secs(10);
const BATCHES: u64 = 20;
const WINDOW: GoDuration = GoDuration::from_secs(10);
const PROBE_INTERVAL: GoDuration = GoDuration::from_millis(50);
const HEALTHY_FOR: GoDuration = GoDuration::from_millis(500);

/// What the proxy does with the connections it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Every connection is closed after its first bytes arrive; nothing reaches the backend.
    Disconnect,
    /// Connections alternate: the first is cut as in `Disconnect`, the next passes through, and
    /// so on.
    Flap,
    /// Every connection passes through.
    PassThrough,
}

#[derive(Debug)]
struct ProxyState {
    mode: Mutex<Mode>,
    /// When each cut connection was closed.
    cuts: Mutex<Vec<Instant>>,
    stopping: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A TCP proxy on a loopback port in front of `backend`, with a thread per connection direction.
#[derive(Debug)]
struct DisconnectingProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    acceptor: Option<JoinHandle<()>>,
}

impl DisconnectingProxy {
    fn start(backend: SocketAddr, mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("bound address");
        let state = Arc::new(ProxyState {
            mode: Mutex::new(mode),
            cuts: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&state);
        let acceptor = std::thread::spawn(move || accept(&listener, backend, &accepting));
        Self { addr, state, acceptor: Some(acceptor) }
    }

    /// How the connections accepted from now on are treated.
    fn set_mode(&self, mode: Mode) {
        *lock(&self.state.mode) = mode;
    }

    /// When the last cut connection was closed.
    fn last_cut(&self) -> Option<Instant> {
        lock(&self.state.cuts).last().copied()
    }
}

impl Drop for DisconnectingProxy {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::Release);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Accepts until the proxy is dropped, polling so that the stop flag is seen within milliseconds.
fn accept(listener: &TcpListener, backend: SocketAddr, state: &Arc<ProxyState>) {
    let mut accepted = 0_usize;
    while !state.stopping.load(Ordering::Acquire) {
        let Ok((client, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        let cut = match *lock(&state.mode) {
            Mode::Disconnect => true,
            Mode::Flap => accepted % 2 == 0,
            Mode::PassThrough => false,
        };
        accepted += 1;
        if cut {
            let state = Arc::clone(state);
            std::thread::spawn(move || cut_after_first_bytes(client, &state));
        } else {
            pass_through(client, backend);
        }
    }
}

/// Reads a little of what the client sends, then closes the connection under it.
fn cut_after_first_bytes(mut client: TcpStream, state: &ProxyState) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = client.read(&mut [0_u8; 16]);
    // Noted before the close, so that every failure the client sees comes after it.
    lock(&state.cuts).push(Instant::now());
    let _ = client.shutdown(Shutdown::Both);
}

/// Copies both ways between the client and a new connection to `backend` until either side
/// closes.
fn pass_through(client: TcpStream, backend: SocketAddr) {
    let _ = client.set_nonblocking(false);
    let Ok(upstream) = TcpStream::connect(backend) else {
        return;
    };
    let (Ok(client_reader), Ok(upstream_reader)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    for (mut from, mut to) in [(client_reader, upstream), (upstream_reader, client)] {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}

/// The default rate (6 failures, more than 5, per window) with a short window, probes and healthy
/// period.
fn failover() -> FailoverConfig {
    FailoverConfig {
        window: WINDOW,
        probe_interval: PROBE_INTERVAL,
        healthy_for: HEALTHY_FOR,
        ..FailoverConfig::default()
    }
}

/// One sender, so that attempts reach the proxy one at a time and in order.
fn one_sender() -> QueueConfig {
    QueueConfig { num_consumers: 1, ..QueueConfig::default() }
}

/// Requests that reached `backend` carrying spans, as the protobuf bytes of their batches.
fn export_bytes(backend: &FakeServer) -> Vec<bytes::Bytes> {
    backend.exports().into_iter().map(|received| received.request).collect()
}

/// Probes (export requests without spans) that reached `backend` after `after`.
fn probes_after(backend: &FakeServer, after: Instant) -> Vec<Received> {
    backend.received().into_iter().filter(|received| received.spans() == 0 && received.at > after).collect()
}

/// The scenario the module docs describe. `flapping` is the proxy's mode until the test heals it;
/// `exporter` builds the exporter from the proxy's and the fallback's addresses.
fn fails_over_from_a_disconnecting_endpoint_and_back_once_healthy_for_passed(
    name: &'static str,
    flapping: Mode,
    exporter: impl FnOnce(SocketAddr, SocketAddr) -> ExporterBuilder,
) {
    let primary = FakeServer::start();
    let fallback = FakeServer::start();
    let proxy = DisconnectingProxy::start(primary.addr, flapping);
    let builder = exporter(proxy.addr, fallback.addr);
    let healthy_for = HEALTHY_FOR.0;
    on_glommio(move || async move {
        let health = Arc::new(MemoryHealthSink::new());
        let sink = Arc::clone(&health) as Arc<dyn HealthSink>;
        let exporter = builder.build_reporting_to(Some(sink)).unwrap();
        let sent: Vec<_> = (0..=BATCHES).map(|seed| batch(5, seed)).collect();
        let (last, during_flapping) = sent.split_last().expect("batches");
        for batch in during_flapping {
            exporter.try_send(batch.clone()).unwrap();
        }
        assert!(eventually(WAIT, || exporter.stats().snapshot().failovers == 1).await, "no failover");
        assert_eq!(exporter.active_endpoint(), Some(1));
        if flapping == Mode::Flap {
            assert!(
                !primary.exports().is_empty(),
                "requests passed between the disconnects, and it failed over anyway"
            );
        }
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == BATCHES).await);

        // While the primary still flaps, probes keep going (some pass) but the exporter stays.
        let flapping_since = Instant::now();
        glommio::timer::sleep(healthy_for + Duration::from_millis(300)).await;
        assert_eq!((exporter.active_endpoint(), exporter.stats().snapshot().failbacks), (Some(1), 0));
        if flapping == Mode::Flap {
            assert!(!probes_after(&primary, flapping_since).is_empty(), "some probes passed");
        }

        proxy.set_mode(Mode::PassThrough);
        assert!(eventually(WAIT, || exporter.active_endpoint() == Some(0)).await, "no failback once healthy");
        let failed_back = Instant::now();
        let last_cut = proxy.last_cut().expect("the proxy cut connections");
        assert!(
            failed_back - last_cut >= healthy_for,
            "returned {:?} after the last disconnect, before failover.healthy_for",
            failed_back - last_cut
        );
        let good_probes = probes_after(&primary, last_cut).len();
        assert!(good_probes >= 2, "not on the first good probe: {good_probes} probes passed before the return");
        assert_eq!(exporter.stats().snapshot().failbacks, 1);

        let exports_before = primary.exports().len();
        exporter.try_send(last.clone()).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == BATCHES + 1).await);
        assert_eq!(primary.exports().len(), exports_before + 1, "back on the primary");
        assert_eq!(exporter.flush(Instant::now() + WAIT).await, Default::default());

        let mut delivered: Vec<_> = export_bytes(&primary).into_iter().chain(export_bytes(&fallback)).collect();
        let mut expected: Vec<_> = sent.into_iter().map(SpanBatch::into_bytes).collect();
        delivered.sort();
        expected.sort();
        assert_eq!(delivered, expected, "every batch arrived exactly once, at one backend or the other");
        assert_health_records(&health.records(), name, proxy.addr, fallback.addr);
    });
}

/// One failover from the proxy to the fallback, then one failback, each with its threshold.
fn assert_health_records(records: &[HealthRecord], name: &str, proxy: SocketAddr, fallback: SocketAddr) {
    let moves: Vec<_> = records.iter().map(|record| record.action.as_str()).collect();
    assert_eq!(moves, ["failover", "failback"], "{records:?}");
    let component = format!("exporters/{name}");
    assert!(records.iter().all(|record| record.component == component), "{records:?}");
    let (failover, failback) = (&records[0], &records[1]);
    let names = |endpoint: &Option<String>, addr: SocketAddr| {
        endpoint.as_deref().is_some_and(|endpoint| endpoint.contains(&addr.port().to_string()))
    };
    assert!(names(&failover.before, proxy) && names(&failover.after, fallback), "{failover:?}");
    assert_eq!(failover.threshold.as_deref(), Some("6 failures within 10s"));
    assert_eq!((&failback.before, &failback.after), (&failover.after, &failover.before), "{failback:?}");
    assert_eq!(failback.threshold.as_deref(), Some("probes succeeded for 500ms"));
}

#[test]
fn otlp_exporter_fails_over_from_an_endpoint_that_drops_every_connection_and_returns_after_healthy_for() {
    fails_over_from_a_disconnecting_endpoint_and_back_once_healthy_for_passed(
        "otlp",
        Mode::Disconnect,
        |proxy, fallback| {
            let config = OtlpExporterConfig {
                endpoints: vec![proxy.to_string(), fallback.to_string()],
                tls: TlsClientConfig { insecure: true, ..TlsClientConfig::default() },
                timeout: GoDuration::from_secs(2),
                retry_on_failure: fast_retry(),
                sending_queue: one_sender(),
                failover: failover(),
                ..OtlpExporterConfig::default()
            };
            ExporterBuilder::otlp("otlp", &config).unwrap()
        },
    );
}

#[test]
fn otlphttp_exporter_fails_over_from_a_flapping_endpoint_although_requests_pass_in_between() {
    fails_over_from_a_disconnecting_endpoint_and_back_once_healthy_for_passed(
        "otlphttp",
        Mode::Flap,
        |proxy, fallback| {
            let config = OtlpHttpExporterConfig {
                endpoints: vec![format!("http://{proxy}"), format!("http://{fallback}")],
                // A connection per request: the proxy's alternation is then one per request.
                disable_keep_alives: true,
                timeout: GoDuration::from_secs(2),
                retry_on_failure: fast_retry(),
                sending_queue: one_sender(),
                failover: failover(),
                ..OtlpHttpExporterConfig::default()
            };
            ExporterBuilder::otlp_http("otlphttp", &config).unwrap()
        },
    );
}
