//! Config hot reload of the real binary: the file watch (inotify, a rename-write as editors do),
//! SIGHUP and `POST /-/reload`; a partial reload under spangen load that loses nothing and keeps
//! unchanged listeners' connections; invalid configs of every kind refused with the field named
//! while the running pipeline goes on.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser as _;
use common::{assert_delivered_exactly_once, free_address, http_get, http_request, wait_until, SpanIds, Spanpipe};

/// How long a reload may take to be seen at `/status` (the watch's debounce, the load, two cores
/// shared with other tests).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(20);

fn revision(collector: &Spanpipe) -> u64 {
    collector.status()["config"]["revision"].as_u64().expect("config.revision at /status")
}

fn refusals(collector: &Spanpipe) -> u64 {
    collector.status()["config"]["reloads_refused"].as_u64().expect("config.reloads_refused at /status")
}

/// Replaces the config file the way editors save: a new file renamed over the old one.
fn rename_write(path: &Path, text: &str) {
    let temporary = path.with_extension("yaml.tmp");
    std::fs::write(&temporary, text).expect("writing the new config");
    std::fs::rename(&temporary, path).expect("renaming the new config into place");
}

/// One HTTP/1.1 connection kept open across requests: the client of an unchanged listener, whose
/// connection must survive a reload.
struct KeepAliveClient {
    stream: TcpStream,
    address: SocketAddr,
}

impl KeepAliveClient {
    fn connect(address: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).expect("connecting");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("a read timeout");
        Self { stream, address }
    }

    /// POSTs an OTLP protobuf request on the open connection; the status code, or the error
    /// that shows the connection was lost.
    fn post(&mut self, body: &[u8]) -> std::io::Result<u16> {
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            self.address,
            body.len()
        );
        self.stream.write_all(head.as_bytes())?;
        self.stream.write_all(body)?;
        // The answer's head, then exactly its Content-Length of body: the connection stays usable.
        let mut answer = Vec::new();
        let mut byte = [0u8; 1];
        while !answer.ends_with(b"\r\n\r\n") {
            if self.stream.read(&mut byte)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the collector closed the connection",
                ));
            }
            answer.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
        let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body)?;
        Ok(status)
    }
}

/// The sections of the reload test's config, per revision.
struct LoadConfig {
    grpc: SocketAddr,
    http: SocketAddr,
    moving: SocketAddr,
    load_file: String,
    conn_file: String,
    extra_file: String,
}

impl LoadConfig {
    /// `batch_size`: the batch processor's setting; `extra`: whether the `file/extra` exporter
    /// is in the connection pipeline.
    fn components(&self, batch_size: u32, extra: bool) -> String {
        let extra_exporter = if extra {
            format!("  file/extra: {{path: \"{}\", flush_interval: 20ms}}\n", self.extra_file)
        } else {
            String::new()
        };
        format!(
            "receivers:\n  otlp: {{protocols: {{grpc: {{endpoint: \"{}\"}}}}}}\n  \
             otlp/conn: {{protocols: {{http: {{endpoint: \"{}\"}}}}}}\n  \
             otlp/moving: {{protocols: {{http: {{endpoint: \"{}\"}}}}}}\n\
             processors:\n  batch: {{send_batch_size: {batch_size}, timeout: 100ms}}\n\
             exporters:\n  file/load: {{path: \"{}\", flush_interval: 20ms}}\n  \
             file/conn: {{path: \"{}\", flush_interval: 20ms}}\n{extra_exporter}",
            self.grpc, self.http, self.moving, self.load_file, self.conn_file
        )
    }

    fn pipelines(extra: bool) -> String {
        let exporters = if extra { "[file/conn, file/extra]" } else { "[file/conn]" };
        format!(
            "traces/load: {{receivers: [otlp], processors: [batch], exporters: [file/load]}}\n\
             traces/conn: {{receivers: [otlp/conn, otlp/moving], processors: [batch], exporters: {exporters}}}"
        )
    }
}

/// Under spangen's load on the gRPC receiver and a client that keeps one HTTP connection open:
/// a reload changes the batch processor and adds an exporter (file watch), another removes it and
/// moves a receiver to a new port (SIGHUP). Every accepted span arrives exactly once, the
/// unchanged listeners keep their connections, the revision goes 1 → 2 → 3, and shutdown leaves
/// nothing undelivered.
#[test]
fn reload_under_load_loses_nothing_and_keeps_unchanged_connections() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = |name: &str| dir.path().join(name).display().to_string();
    let mut config = LoadConfig {
        grpc: free_address(),
        http: free_address(),
        moving: free_address(),
        load_file: path("load.jsonl"),
        conn_file: path("conn.jsonl"),
        extra_file: path("extra.jsonl"),
    };
    let mut collector =
        Spanpipe::start(dir.path(), "reload", &config.components(512, false), &LoadConfig::pipelines(false));
    assert_eq!(revision(&collector), 1);

    let load_file = config.load_file.clone();
    let grpc = config.grpc;
    let spangen = std::thread::spawn(move || {
        let line = format!(
            "--endpoint {grpc} --protocol grpc --rate 3000 --duration 8s --in-flight 4 --no-progress \
             --verify {load_file} --verify-timeout 30s"
        );
        let args = spangen::Args::try_parse_from(std::iter::once("spangen").chain(line.split_whitespace()))
            .unwrap_or_else(|error| panic!("`spangen {line}`: {error}"));
        spangen::run(&args).unwrap_or_else(|error| panic!("`spangen {line}`: {error}"))
    });
    let sending = Arc::new(AtomicBool::new(true));
    let http = config.http;
    let client = {
        let sending = Arc::clone(&sending);
        std::thread::spawn(move || {
            let mut client = KeepAliveClient::connect(http);
            let mut ids = SpanIds::default();
            let mut accepted = Vec::new();
            let mut requests = 0u32;
            while sending.load(Ordering::Acquire) {
                let (body, sent) = ids.request(5, u64::from(requests));
                requests += 1;
                match client.post(&body) {
                    Ok(200) => accepted.extend(sent),
                    // Pushed back (a full queue): the same connection carries the retry.
                    Ok(429 | 503) => std::thread::sleep(Duration::from_millis(50)),
                    Ok(status) => panic!("the kept connection got {status}"),
                    Err(error) => panic!("the kept connection was lost after {requests} requests: {error}"),
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (accepted, requests)
        })
    };

    std::thread::sleep(Duration::from_secs(2));
    // Revision 2, through the file watch: a processor's settings change, an exporter is added.
    rename_write(
        collector.config_path(),
        &collector.config_text(&config.components(256, true), "", &LoadConfig::pipelines(true)),
    );
    wait_until("revision 2 after the file changed", RELOAD_TIMEOUT, || revision(&collector) == 2);
    wait_until("the added exporter to write", RELOAD_TIMEOUT, || {
        std::fs::metadata(&config.extra_file).is_ok_and(|meta| meta.len() > 0)
    });

    std::thread::sleep(Duration::from_secs(2));
    // Revision 3: the exporter removed and a receiver moved, written in place and applied by
    // SIGHUP (the watch may apply it first; either way it is applied once).
    let old_moving = config.moving;
    config.moving = free_address();
    std::fs::write(
        collector.config_path(),
        collector.config_text(&config.components(256, false), "", &LoadConfig::pipelines(false)),
    )
    .expect("writing the config");
    collector.signal(libc::SIGHUP);
    wait_until("revision 3", RELOAD_TIMEOUT, || revision(&collector) == 3);
    // Ids far from the keep-alive client's, so both sets are told apart in the same file.
    let mut moved_ids = SpanIds::after(1 << 40);
    let (body, moved) = moved_ids.request(3, 7);
    let reply = http_request(config.moving, "POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], &body)
        .expect("POST to the moved receiver");
    assert_eq!(reply.status, 200, "the receiver answers on its new port");
    wait_until("the old port to close", RELOAD_TIMEOUT, || TcpStream::connect(old_moving).is_err());

    let finished = spangen.join().expect("spangen's thread");
    sending.store(false, Ordering::Release);
    let (accepted, requests) = client.join().expect("the keep-alive client's thread");
    assert!(requests > 100 && !accepted.is_empty(), "{requests} requests on the kept connection");

    let report = &finished.report;
    assert!(!report.has_request_errors(), "spangen saw errors across the reloads:\n{}", report.text());
    let verify = report.verify.as_ref().expect("--verify reports");
    assert!(verify.is_exact(), "spans lost or duplicated across the reloads:\n{}", report.text());
    collector.stop_cleanly();
    let mut expected = accepted;
    expected.extend(moved);
    assert_delivered_exactly_once(Path::new(&config.conn_file), &expected);
    let log = collector.log();
    assert!(log.contains("config reload applied"), "{log}");
}

/// Components of the invalid-config test: one OTLP/HTTP receiver to a file.
fn simple_components(http: SocketAddr, file: &str, batch: &str) -> String {
    format!(
        "receivers:\n  otlp: {{protocols: {{http: {{endpoint: \"{http}\"}}}}}}\n\
         processors:\n  batch: {batch}\n\
         exporters:\n  file: {{path: \"{file}\", flush_interval: 20ms}}\n"
    )
}

const SIMPLE_PIPELINE: &str = "traces: {receivers: [otlp], processors: [batch], exporters: [file]}";

/// Writes `text` and waits until the collector refused it; returns the reasons `/status` gives.
fn refused(collector: &Spanpipe, text: &str, write: impl Fn(&Path, &str)) -> Vec<String> {
    let before = refusals(collector);
    write(collector.config_path(), text);
    // The first `/status` answer that counts the refusal: its health log must hold it already.
    let mut status = serde_json::Value::Null;
    wait_until("the reload to be refused", RELOAD_TIMEOUT, || {
        status = collector.status();
        status["config"]["reloads_refused"].as_u64().expect("config.reloads_refused at /status") > before
    });
    assert_eq!(status["config"]["revision"], 1, "a refused config is not applied: {status}");
    let in_health_log = status["health"]
        .as_array()
        .expect("health records")
        .iter()
        .filter(|record| record["action"] == "reload_refused")
        .count() as u64;
    assert_eq!(
        Some(in_health_log),
        status["config"]["reloads_refused"].as_u64(),
        "every refusal that shows is in the health log: {status}"
    );
    status["config"]["last_refusal"]["errors"]
        .as_array()
        .expect("last_refusal.errors")
        .iter()
        .map(|error| error.as_str().unwrap_or_default().to_owned())
        .collect()
}

#[track_caller]
fn assert_names(reasons: &[String], expected: &[&str]) {
    let text = reasons.join("\n");
    for fragment in expected {
        assert!(text.contains(fragment), "expected `{fragment}` in the refusal:\n{text}");
    }
}

/// Schema errors, unknown references, a port already taken, bad YAML, a half-written file and a
/// restart-only setting: each refused with a message naming the problem, recorded in the health
/// log and at `/status`, counted, while the running pipeline keeps delivering.
#[test]
fn invalid_configs_are_refused_by_name_and_the_running_pipeline_stays() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("spans.jsonl").display().to_string();
    let http = free_address();
    let good = |collector: &Spanpipe, batch: &str| {
        collector.config_text(&simple_components(http, &file, batch), "", SIMPLE_PIPELINE)
    };
    let mut collector =
        Spanpipe::start(dir.path(), "invalid", &simple_components(http, &file, "{timeout: 50ms}"), SIMPLE_PIPELINE);
    let mut ids = SpanIds::default();
    let mut sent = Vec::new();
    let mut send = |sent: &mut Vec<u64>| {
        let (body, new) = ids.request(4, 1);
        common::post_until_accepted(http, &body, Duration::from_secs(20));
        sent.extend(new);
    };
    send(&mut sent);

    let schema = good(&collector, "{send_batch_size: many}");
    assert_names(&refused(&collector, &schema, rename_write), &["processors.batch.send_batch_size"]);
    send(&mut sent);

    let unknown = good(&collector, "{}").replace("exporters: [file]", "exporters: [file/nowhere]");
    assert_names(&refused(&collector, &unknown, rename_write), &["file/nowhere"]);

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let clash = good(&collector, "{}").replace(&http.to_string(), &taken.local_addr().unwrap().to_string());
    assert_names(&refused(&collector, &clash, rename_write), &["receivers.otlp", "in use"]);
    drop(taken);
    send(&mut sent);

    assert_names(&refused(&collector, "receivers: [otlp\nexporters: {", rename_write), &["YAML syntax error"]);

    let cores = good(&collector, "{}").replace("cores: 1", "cores: 2");
    assert_names(&refused(&collector, &cores, rename_write), &["service.cores cannot change"]);

    // Half a file, as a writer that stopped mid-way leaves it (written in place, no rename): refused;
    // the rest arrives and the whole file is applied.
    let whole = good(&collector, "{timeout: 20ms}");
    let half = &whole[..whole.len() / 2];
    let reasons = refused(&collector, half, |path, text| std::fs::write(path, text).expect("writing"));
    assert!(!reasons.is_empty());
    std::fs::write(collector.config_path(), &whole).expect("writing the rest");
    let mut first_at_revision_2 = serde_json::Value::Null;
    wait_until("the completed file to be applied", RELOAD_TIMEOUT, || {
        first_at_revision_2 = collector.status();
        first_at_revision_2["config"]["revision"] == 2
    });
    // The health record is written before the revision shows at `/status`, so the first answer
    // that shows revision 2 holds it already.
    let applied: Vec<&serde_json::Value> = first_at_revision_2["health"]
        .as_array()
        .expect("health records")
        .iter()
        .filter(|record| record["action"] == "reload_applied")
        .collect();
    assert_eq!(applied.len(), 1, "{first_at_revision_2}");
    let state = |record: &serde_json::Value, key: &str| record[key].as_str().unwrap_or_default().to_owned();
    assert!(state(applied[0], "before").starts_with("revision 1 ("), "{first_at_revision_2}");
    assert!(state(applied[0], "after").starts_with("revision 2 ("), "{first_at_revision_2}");
    send(&mut sent);

    let status = collector.status();
    let refused_records = status["health"]
        .as_array()
        .expect("health records")
        .iter()
        .filter(|record| record["action"] == "reload_refused" && record["component"] == "config")
        .count();
    assert_eq!(refused_records, 6, "every refusal is in the health log: {status}");
    assert_eq!(collector.metric("spanpipe_config_reloads_total", &[("result", "refused")]), 6.0);
    assert_eq!(collector.metric("spanpipe_config_revision", &[]), 2.0);
    collector.stop_cleanly();
    assert_delivered_exactly_once(Path::new(&file), &sent);

    // Without `service.health_log.path` the log is kept beside the config, where `spanpipe
    // health --config` finds it after the process is gone.
    assert!(dir.path().join("invalid.health.log").exists());
    let printed = std::process::Command::new(common::SPANPIPE)
        .args(["health", "--config"])
        .arg(collector.config_path())
        .output()
        .expect("running spanpipe health");
    let text = String::from_utf8_lossy(&printed.stdout);
    assert_eq!(text.matches("reload_refused").count(), 6, "{text}{}", String::from_utf8_lossy(&printed.stderr));
    assert_eq!(text.matches("reload_applied").count(), 1, "{text}");
}

/// Without the file watch, an edit does nothing until SIGHUP or `POST /-/reload` asks; the
/// endpoint answers with the outcome, a refusal with its reasons.
#[test]
fn sighup_and_the_reload_endpoint_apply_the_file_when_not_watching() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("spans.jsonl").display().to_string();
    let http = free_address();
    let mut collector = Spanpipe::start_with_args(
        dir.path(),
        "signals",
        &simple_components(http, &file, "{}"),
        "",
        SIMPLE_PIPELINE,
        &["--no-watch-config"],
    );
    let text = |collector: &Spanpipe, batch: &str| {
        collector.config_text(&simple_components(http, &file, batch), "", SIMPLE_PIPELINE)
    };
    rename_write(collector.config_path(), &text(&collector, "{timeout: 10ms}"));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(revision(&collector), 1, "no watch: the edit waits to be asked for");

    collector.signal(libc::SIGHUP);
    wait_until("revision 2 after SIGHUP", RELOAD_TIMEOUT, || revision(&collector) == 2);

    rename_write(collector.config_path(), &text(&collector, "{timeout: 20ms}"));
    let telemetry = collector.telemetry_address();
    let reply = http_request(telemetry, "POST", "/-/reload", &[], &[]).expect("POST /-/reload");
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let answer: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(answer["applied"]["revision"], 3, "{answer}");
    assert_eq!(answer["applied"]["changes"]["changed"], serde_json::json!(["pipelines/traces"]), "{answer}");

    // The same file again: nothing changes, the revision stays.
    let reply = http_request(telemetry, "POST", "/-/reload", &[], &[]).expect("POST /-/reload");
    assert_eq!(reply.status, 200);
    let answer: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(answer["applied"]["revision"], 3, "{answer}");

    std::fs::write(collector.config_path(), text(&collector, "{timeout: soon}")).expect("writing");
    let reply = http_request(telemetry, "POST", "/-/reload", &[], &[]).expect("POST /-/reload");
    assert_eq!(reply.status, 400);
    let answer: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    let reasons = answer["refused"].to_string();
    assert!(reasons.contains("processors.batch.timeout"), "{answer}");

    let reply = http_get(telemetry, "/-/reload").expect("GET /-/reload");
    assert_eq!(reply.status, 405);
    assert_eq!(revision(&collector), 3);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && collector.metric("spanpipe_config_reloads_total", &[("result", "applied")]) < 2.0
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(collector.metric("spanpipe_config_reloads_total", &[("result", "applied")]), 2.0);
    collector.stop_cleanly();
}

/// A forwarder whose `otlphttp` exporter points at an address where nothing listens, so the
/// batches it accepted wait in its queue and in retry backoffs.
fn forwarder_components(listen: SocketAddr, endpoint: SocketAddr) -> String {
    format!(
        "receivers:\n  otlp: {{protocols: {{http: {{endpoint: \"{listen}\"}}}}}}\n\
         processors:\n  batch: {{send_batch_size: 20, timeout: 20ms}}\n\
         exporters:\n  otlphttp:\n    endpoint: \"http://{endpoint}\"\n    timeout: 2s\n    \
         retry_on_failure: {{initial_interval: 200ms, max_interval: 1s, max_elapsed_time: 120s}}\n    \
         sending_queue: {{queue_size: 100, num_consumers: 2}}\n"
    )
}

/// A changed exporter drains into its replacement: batches queued or waiting to be retried by an
/// exporter whose endpoint is down are sent by the exporter the reload builds for the new
/// endpoint — exactly once, none left behind.
#[test]
fn a_changed_exporter_hands_its_undelivered_batches_to_its_replacement() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = dir.path().join("destination.jsonl");
    let destination_http = free_address();
    let mut destination = Spanpipe::start(
        dir.path(),
        "destination",
        &format!(
            "receivers:\n  otlp: {{protocols: {{http: {{endpoint: \"{destination_http}\"}}}}}}\n\
             exporters:\n  file: {{path: \"{}\", flush_interval: 20ms}}\n",
            output.display()
        ),
        "traces: {receivers: [otlp], exporters: [file]}",
    );
    let listen = free_address();
    let down = free_address();
    let pipeline = "traces: {receivers: [otlp], processors: [batch], exporters: [otlphttp]}";
    let mut forwarder = Spanpipe::start(dir.path(), "forwarder", &forwarder_components(listen, down), pipeline);
    let mut ids = SpanIds::default();
    let mut sent = Vec::new();
    for request in 0..30 {
        let (body, request_ids) = ids.request(5, request);
        common::post_until_accepted(listen, &body, Duration::from_secs(20));
        sent.extend(request_ids);
    }
    wait_until("the forwarder to retry against the dead endpoint", RELOAD_TIMEOUT, || {
        forwarder.metric("spanpipe_exporter_retries_total", &[]) > 0.0
    });
    assert!(!output.exists() || common::span_id_counts(&output).is_empty(), "nothing can have arrived yet");

    rename_write(
        forwarder.config_path(),
        &forwarder.config_text(&forwarder_components(listen, destination_http), "", pipeline),
    );
    wait_until("revision 2", RELOAD_TIMEOUT, || revision(&forwarder) == 2);
    wait_until("every span at the new endpoint", Duration::from_secs(40), || common::holds_all(&output, &sent));
    forwarder.stop_cleanly();
    destination.stop_cleanly();
    assert_delivered_exactly_once(&output, &sent);
    let log = forwarder.log();
    assert!(log.contains("undelivered batches move to its replacement"), "{log}");
}
