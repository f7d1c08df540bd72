//! What the end-to-end tests share: the `spanpipe` binary run as a child process from a config in
//! a temporary directory, loopback ports for it, a small HTTP/1.1 client (for OTLP/HTTP and the
//! telemetry endpoint), requests with span ids the test chooses, and a reader for the file
//! exporter's OTLP/JSON lines.
//!
//! Everything here is bounded: every wait has a deadline and ends the test with a message saying
//! what it waited for, and a child is killed when its handle is dropped (also when a test fails),
//! after printing its log so that a failure in CI can be read without re-running it.

#![allow(dead_code, reason = "each test file uses a different part of this module")]

pub mod sdk;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

/// The binary under test.
pub const SPANPIPE: &str = env!("CARGO_BIN_EXE_spanpipe");

/// How long a collector may take to become ready. Generous: the tests share two cores with
/// each other and with builds.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the collectors' `service.shutdown_timeout` is set to, and how long a test waits for an
/// exit after SIGTERM (a little longer, so that a drain that runs out of time is reported by the
/// collector itself).
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a test waits for spans to arrive at their destination.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(40);

/// Polls `condition` every 25 ms until it holds; panics naming `what` after `timeout`.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A loopback port nobody listens on, for a collector to bind.
///
/// Chosen below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`): a port from that
/// range could be handed to some client's outgoing connection while the test has it reserved
/// but not bound — for instance while a killed collector is down before its restart on the same
/// port — and the restart would then fail. Candidates are drawn pseudo-randomly (from the time,
/// the process id and a counter) so that tests running in parallel do not probe the same ports,
/// and each is checked free by binding it. That check (std's bind, with `SO_REUSEADDR`) admits
/// exactly the ports a collector can bind: its listeners set `SO_REUSEADDR` as well as
/// `SO_REUSEPORT`, so connections an earlier test's server left in `TIME_WAIT` on a port bar
/// neither (with `SO_REUSEPORT` alone they barred the collector and not the check).
///
/// A port that is free when drawn can still be taken by another test before this one's collector
/// binds it. Each port handed out is therefore also reserved: an exclusive `flock` on a file
/// named after it in a shared directory, held until this test process exits. Tests (each its own
/// process under nextest) skip ports another holds, so no two running tests get the same port.
pub fn free_port() -> u16 {
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_start.max(12_000));
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_nanos() as u64);
    let mut state = nanos ^ (u64::from(std::process::id()) << 32);
    for _ in 0..1000 {
        // SplitMix64 over (state + draw number): cheap and well spread.
        let mut mixed = state.wrapping_add(DRAWS.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^= mixed >> 31;
        state = mixed;
        let port = low + (mixed % u64::from(high - low)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && reserve_port(port) {
            return port;
        }
    }
    panic!("no free loopback port found in {low}..{high} after 1000 tries");
}

/// Takes the reservation of `port` for the rest of this process (see [`free_port`]): false when
/// another test, or an earlier call in this one, holds it.
fn reserve_port(port: u16) -> bool {
    use std::os::fd::AsRawFd as _;
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    let directory = std::env::temp_dir().join("spanpipe-test-ports");
    if std::fs::create_dir_all(&directory).is_err() {
        return true; // No shared directory: fall back to the bind check alone.
    }
    let Ok(file) =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(directory.join(port.to_string()))
    else {
        return true;
    };
    // SAFETY: flock(2) on a descriptor this function owns; no memory is involved. Locks belong to
    // the open file description, so a second open of the same file in this process is refused too.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if locked {
        HELD.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(file);
    }
    locked
}

/// A loopback address with a [`free_port`].
pub fn free_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A loopback address free for both TCP and UDP (the Jaeger agent ports are UDP), reserved as
/// [`free_port`] reserves it.
pub fn free_udp_address() -> SocketAddr {
    for _ in 0..100 {
        let address = free_address();
        if std::net::UdpSocket::bind(address).is_ok() {
            return address;
        }
    }
    panic!("no loopback port free for UDP after 100 tries");
}

/// A `spanpipe run` child process.
///
/// The config given to [`Spanpipe::start`] holds the components; the `service` section is
/// added here: one data-plane core (keeps the tests light on a shared machine), a shutdown
/// deadline, the telemetry endpoint on a free port (the test reads `/readyz` and `/metrics`
/// there), and the pipelines given.
#[derive(Debug)]
pub struct Spanpipe {
    name: String,
    dir: PathBuf,
    config: PathBuf,
    telemetry: SocketAddr,
    child: Option<Child>,
    starts: u32,
    /// More arguments for `spanpipe run`.
    args: Vec<String>,
}

impl Spanpipe {
    /// Writes the config to `dir/<name>.yaml`, starts the collector and waits until `/readyz`
    /// answers 200. `components` holds the `receivers`, `processors` and `exporters` sections;
    /// `pipelines` the entries under `service.pipelines`, one per line.
    pub fn start(dir: &Path, name: &str, components: &str, pipelines: &str) -> Self {
        Self::start_with_service(dir, name, components, "", pipelines)
    }

    /// [`Spanpipe::start`] with more `service` settings (`service_settings`: lines such as
    /// `health_log: {path: …}`, indented as keys of `service`).
    pub fn start_with_service(
        dir: &Path,
        name: &str,
        components: &str,
        service_settings: &str,
        pipelines: &str,
    ) -> Self {
        Self::start_with_args(dir, name, components, service_settings, pipelines, &[])
    }

    /// [`Spanpipe::start_with_service`] with more command-line arguments for `spanpipe run`.
    pub fn start_with_args(
        dir: &Path,
        name: &str,
        components: &str,
        service_settings: &str,
        pipelines: &str,
        args: &[&str],
    ) -> Self {
        let telemetry = free_address();
        let path = dir.join(format!("{name}.yaml"));
        let mut collector = Self {
            name: name.to_owned(),
            dir: dir.to_owned(),
            config: path,
            telemetry,
            child: None,
            starts: 0,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        };
        std::fs::write(&collector.config, collector.config_text(components, service_settings, pipelines))
            .expect("writing the config");
        collector.launch();
        collector
    }

    /// A config with these sections and the `service` settings this collector was started with
    /// (one core, the shutdown deadline, its telemetry address): what a test writes to reload.
    pub fn config_text(&self, components: &str, service_settings: &str, pipelines: &str) -> String {
        let mut config = String::from(components.trim_end());
        write!(
            config,
            "\nservice:\n  cores: 1\n  shutdown_timeout: {}s\n  telemetry:\n    metrics:\n      address: {}\n",
            SHUTDOWN_TIMEOUT.as_secs(),
            self.telemetry
        )
        .expect("writing to a String");
        for line in service_settings.trim().lines() {
            config.push_str("  ");
            config.push_str(line.trim());
            config.push('\n');
        }
        config.push_str("  pipelines:\n");
        for line in pipelines.trim().lines() {
            config.push_str("    ");
            config.push_str(line.trim());
            config.push('\n');
        }
        config
    }

    /// The config file the collector runs.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`) to the running collector.
    pub fn signal(&mut self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child_mut().id()).expect("a pid fits pid_t");
        // SAFETY: kill(2) only sends a signal; `pid` is our own child, not yet reaped (we hold
        // its `Child`), so the id cannot have been reused by another process.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "sending signal {signal} to {}: {}", self.name, std::io::Error::last_os_error());
    }

    /// Starts the collector again with the same config (the same ports and files), after it was
    /// killed or stopped, and waits until it is ready.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is still running", self.name);
        self.launch();
    }

    fn launch(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path()).expect("creating the log file");
        let child = Command::new(SPANPIPE)
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicating the log file"))
            .stderr(log)
            .spawn()
            .expect("starting spanpipe");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("polling the child") {
                self.child = None;
                panic!("{} exited while starting ({status}):\n{}", self.name, self.log());
            }
            if matches!(http_get(self.telemetry, "/readyz"), Ok(reply) if reply.status == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "{} not ready after {START_TIMEOUT:?}:\n{}", self.name, self.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().unwrap_or_else(|| panic!("{} is not running", self.name))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}-{}.log", self.name, self.starts))
    }

    /// What the current (or last) run wrote to standard output and error.
    /// The collector's peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        let child = self.child.as_ref().expect("the collector is running");
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("reading /proc/<pid>/status");
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM in /proc/<pid>/status");
        kib * 1024
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn telemetry_address(&self) -> SocketAddr {
        self.telemetry
    }

    /// `/status` (readiness, the running config, the latest health records) as JSON.
    pub fn status(&self) -> serde_json::Value {
        let reply =
            http_get(self.telemetry, "/status").unwrap_or_else(|error| panic!("GET {}'s /status: {error}", self.name));
        assert_eq!(reply.status, 200, "{}'s /status answered {}", self.name, reply.status);
        serde_json::from_slice(&reply.body).expect("/status is JSON")
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self) -> String {
        let reply = http_get(self.telemetry, "/metrics")
            .unwrap_or_else(|error| panic!("scraping {}'s /metrics: {error}", self.name));
        assert_eq!(reply.status, 200, "{}'s /metrics answered {}", self.name, reply.status);
        String::from_utf8(reply.body).expect("metrics are UTF-8")
    }

    /// The sum of every sample of `name` whose labels include all of `labels` (0 when none is
    /// published yet: cores publish their counters periodically).
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_sum(&self.metrics(), name, labels)
    }

    /// SIGKILL: the process ends at once, losing whatever it held in memory.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap_or_else(|| panic!("{} is not running", self.name));
        child.kill().expect("sending SIGKILL");
        child.wait().expect("reaping the child");
    }

    /// SIGTERM, then waits for the exit (a graceful shutdown drains and flushes first).
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let status = wait_for_exit(self.child_mut(), EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!("{} did not exit within {EXIT_TIMEOUT:?} of SIGTERM:\n{}", self.name, self.log())
        });
        self.child = None;
        status
    }

    /// SIGTERM, and asserts the exit is clean (status 0: everything accepted was delivered).
    #[track_caller]
    pub fn stop_cleanly(&mut self) {
        let status = self.terminate();
        assert!(status.success(), "{} exited with {status} after SIGTERM:\n{}", self.name, self.log());
    }
}

impl Drop for Spanpipe {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("----- log of {} (run {}) -----\n{}", self.name, self.starts, self.log());
        }
    }
}

/// Waits up to `timeout` for `child` to exit; `None` (and the child killed) when it did not.
pub fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("polling the child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sums the samples of `name` (exactly that metric, not `name_suffix`) whose labels include all
/// of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (label_text, value) = match rest.strip_prefix('{') {
                Some(inner) => inner.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            let present = labels.iter().all(|(key, wanted)| label_text.contains(&format!("{key}=\"{wanted}\"")));
            present.then(|| value.trim().parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// An HTTP/1.1 answer.
#[derive(Debug)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: BTreeMap<String, String>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// A header's value by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// `GET path` on a fresh connection.
pub fn http_get(address: SocketAddr, path: &str) -> std::io::Result<HttpReply> {
    http_request(address, "GET", path, &[], &[])
}

/// One request on a fresh connection (`Connection: close`), answer read to the end. Reads and
/// writes time out after 10 s so that a server that never answers fails the test instead of
/// hanging it.
pub fn http_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpReply> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    parse_http_reply(&answer)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP answer"))
}

fn parse_http_reply(answer: &[u8]) -> Option<HttpReply> {
    let split = answer.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let rest = &answer[split + 4..];
    let body = if headers.get("transfer-encoding").is_some_and(|coding| coding.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(length) = headers.get("content-length") {
        rest.get(..length.parse::<usize>().ok()?)?.to_vec()
    } else {
        rest.to_vec()
    };
    Some(HttpReply { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data.windows(2).position(|window| window == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Span ids a test chooses, so that what arrives can be matched to what was sent: ids count up
/// from 1, which no real exporter would produce, and are unique within one test.
#[derive(Debug, Default)]
pub struct SpanIds {
    next: u64,
}

impl SpanIds {
    /// Ids counting up from `last + 1`: a second source of ids in the same test.
    pub fn after(last: u64) -> Self {
        Self { next: last }
    }

    /// A realistic OTLP request of `spans` spans (spanpipe-testkit's payload for `seed`) with
    /// fresh span ids; returns its protobuf bytes and the ids.
    pub fn request(&mut self, spans: usize, seed: u64) -> (Vec<u8>, Vec<u64>) {
        let mut request = spanpipe_testkit::realistic::request(spans, seed);
        let mut ids = Vec::with_capacity(spans);
        for span in request
            .resource_spans
            .iter_mut()
            .flat_map(|resource| &mut resource.scope_spans)
            .flat_map(|scope| &mut scope.spans)
        {
            self.next += 1;
            span.span_id = self.next.to_be_bytes().to_vec();
            ids.push(self.next);
        }
        assert_eq!(ids.len(), spans, "the testkit payload has the requested number of spans");
        (request.encode_to_vec(), ids)
    }
}

/// POSTs an OTLP protobuf request to `/v1/traces` until it is accepted: an answer of 429 or 503
/// (the pipeline pushing back) is retried after its `Retry-After` (at most 1 s), as an OTLP
/// client does; any other answer fails the test. Returns how many refusals it met.
#[track_caller]
pub fn post_until_accepted(address: SocketAddr, body: &[u8], timeout: Duration) -> u32 {
    let deadline = Instant::now() + timeout;
    let mut refusals = 0;
    loop {
        let reply = http_request(address, "POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], body)
            .unwrap_or_else(|error| panic!("POST to {address}: {error}"));
        match reply.status {
            200 => return refusals,
            429 | 503 => {
                refusals += 1;
                let wait = reply
                    .header("retry-after")
                    .and_then(|seconds| seconds.parse::<u64>().ok())
                    .map_or(Duration::from_millis(100), Duration::from_secs)
                    .min(Duration::from_secs(1));
                assert!(Instant::now() + wait < deadline, "{address} kept refusing the request for {timeout:?}");
                std::thread::sleep(wait);
            }
            status => panic!("{address} answered {status}: {}", String::from_utf8_lossy(&reply.body)),
        }
    }
}

/// The export requests in a file exporter's OTLP/JSON-lines output. Only complete lines count
/// (the exporter may be writing the last one); a missing file is empty. A complete line that
/// is not an OTLP/JSON request fails the test.
pub fn read_export_requests(path: &Path) -> Vec<ExportTraceServiceRequest> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => panic!("reading {}: {error}", path.display()),
    };
    complete_lines(&text)
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_slice(line).unwrap_or_else(|error| {
                panic!(
                    "{} line {}: not an OTLP/JSON export request ({error}): {}",
                    path.display(),
                    index + 1,
                    String::from_utf8_lossy(&line[..line.len().min(300)])
                )
            })
        })
        .collect()
}

/// The bytes up to and including the last newline.
fn complete_lines(text: &[u8]) -> &[u8] {
    text.iter().rposition(|&byte| byte == b'\n').map_or(&[], |end| &text[..=end])
}

/// How often each span id occurs in a file exporter's output (ids of 8 bytes, as `u64`).
pub fn span_id_counts(path: &Path) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for request in read_export_requests(path) {
        for span in
            request.resource_spans.iter().flat_map(|resource| &resource.scope_spans).flat_map(|scope| &scope.spans)
        {
            let id: [u8; 8] = span.span_id.as_slice().try_into().expect("span ids are 8 bytes");
            *counts.entry(u64::from_be_bytes(id)).or_default() += 1;
        }
    }
    counts
}

/// Asserts that the file holds every id of `sent` exactly once and nothing else.
#[track_caller]
pub fn assert_delivered_exactly_once(path: &Path, sent: &[u64]) {
    let counts = span_id_counts(path);
    let sent_set: BTreeSet<u64> = sent.iter().copied().collect();
    let missing: Vec<u64> = sent.iter().copied().filter(|id| !counts.contains_key(id)).collect();
    let duplicated: Vec<(u64, usize)> =
        counts.iter().filter(|(_, &count)| count > 1).map(|(&id, &n)| (id, n)).collect();
    let unexpected: Vec<u64> = counts.keys().copied().filter(|id| !sent_set.contains(id)).collect();
    assert!(
        missing.is_empty() && duplicated.is_empty() && unexpected.is_empty(),
        "{}: {} spans sent; missing {missing:?}; duplicated (id, times) {duplicated:?}; never sent {unexpected:?}",
        path.display(),
        sent.len()
    );
}

/// Whether the file holds every id of `sent` (at least once).
pub fn holds_all(path: &Path, sent: &[u64]) -> bool {
    let counts = span_id_counts(path);
    sent.iter().all(|id| counts.contains_key(id))
}
