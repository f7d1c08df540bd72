//! The `spanpipe` command line as an operator meets it: `validate`, `schema` and `health`, a host
//! where io_uring cannot get its locked memory, and a SIGTERM that must not lose what was accepted.

mod common;

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{
    assert_delivered_exactly_once, free_address, post_until_accepted, span_id_counts, SpanIds, Spanpipe, SPANPIPE,
};

/// Runs `spanpipe <arguments>` to completion (every command here ends by itself: `run` only
/// when it fails to start) and returns its output.
fn spanpipe(arguments: &[&str], dir: &Path) -> Output {
    Command::new(SPANPIPE).args(arguments).current_dir(dir).output().expect("running spanpipe")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config as a user writes it for the Collector, with every port on loopback and free.
fn good_config(output: &Path) -> String {
    format!(
        r#"receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "{grpc}"}}
      http: {{endpoint: "{http}"}}
processors:
  batch:
    send_batch_size: 512
    timeout: 200ms
  probabilistic_sampler:
    sampling_percentage: 100
exporters:
  file:
    path: "{output}"
service:
  telemetry:
    metrics:
      address: "{metrics}"
  pipelines:
    traces:
      receivers: [otlp]
      processors: [probabilistic_sampler, batch]
      exporters: [file]
"#,
        grpc = free_address(),
        http = free_address(),
        metrics = free_address(),
        output = output.display()
    )
}

#[test]
fn validate_accepts_a_good_config_and_says_so() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("good.yaml");
    std::fs::write(&config, good_config(&dir.path().join("spans.jsonl"))).expect("writing the config");
    let output = spanpipe(&["validate", "--config", "good.yaml"], dir.path());
    assert!(output.status.success(), "validate failed ({}):\n{}", output.status, text(&output.stderr));
    assert_eq!(text(&output.stdout), "good.yaml: valid\n");
    assert!(!dir.path().join("spans.jsonl").exists(), "validate must not build the exporters");
}

/// One file with a mistake of every kind validation knows: each is reported, at once, by the
/// path of the key to change, and `run` refuses the same file before it starts anything.
#[test]
fn validate_and_run_name_the_path_of_every_bad_field() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_address();
    let config = format!(
        r#"receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "{port}"}}
  otlp/second:
    protocols:
      http: {{endpoint: "{port}"}}
  kafka:
processors:
  batch:
    timeout: 5 parsecs
  memory_limiter:
    check_interval: 1s
    limit_mib: 100
    spike_limit_mib: 200
exporters:
  otlp:
    endpoitn: 127.0.0.1:4317
  file:
service:
  pipelines:
    traces:
      receivers: [otlp, otlp/second]
      processors: [memory_limiter, batch, attributes/missing]
      exporters: [otlp, file, debug]
"#
    );
    std::fs::write(dir.path().join("bad.yaml"), config).expect("writing the config");
    let expected_paths = [
        "receivers.otlp/second.protocols.http.endpoint",
        "receivers.kafka",
        "processors.batch.timeout",
        "processors.memory_limiter.spike_limit_mib",
        "exporters.otlp.endpoitn",
        "exporters.file.path",
        "service.pipelines.traces.processors[2]",
        "service.pipelines.traces.exporters[2]",
    ];
    for command in ["validate", "run"] {
        let output = spanpipe(&[command, "--config", "bad.yaml"], dir.path());
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "`{command}` of a bad config:\n{stderr}");
        assert!(stderr.starts_with("bad.yaml: "), "`{command}` names the file first:\n{stderr}");
        for path in expected_paths {
            assert!(
                stderr.lines().any(|line| line.trim_start().starts_with(path)),
                "`{command}` does not report `{path}`:\n{stderr}"
            );
        }
        assert!(stderr.contains("did you mean `endpoint`?"), "the misspelt key gets a suggestion:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(text(&output.stdout).is_empty(), "`{command}` printed to stdout: {}", text(&output.stdout));
    }
}

#[test]
fn validate_explains_a_missing_file_and_broken_yaml() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("broken.yaml"), "receivers: [\n").expect("writing the config");
    for (file, expected) in [("absent.yaml", "No such file or directory"), ("broken.yaml", "YAML syntax error")] {
        let output = spanpipe(&["validate", "--config", file], dir.path());
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{file}:\n{stderr}");
        assert!(stderr.starts_with(&format!("{file}: ")) && stderr.contains(expected), "{file}:\n{stderr}");
    }
}

/// Every `$ref` in `value` points at a definition that exists.
fn assert_refs_resolve(value: &serde_json::Value, root: &serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(serde_json::Value::as_str) {
                let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {reference}"));
                assert!(root.pointer(pointer).is_some(), "$ref {reference} points nowhere");
            }
            map.values().for_each(|child| assert_refs_resolve(child, root));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|child| assert_refs_resolve(child, root)),
        _ => {}
    }
}

#[test]
fn schema_is_a_json_schema_covering_every_component() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = spanpipe(&["schema"], dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the schema is JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let components = [
        ("receivers", &["otlp"][..]),
        (
            "processors",
            &["batch", "probabilistic_sampler", "adaptive_sampler", "attributes", "routing", "memory_limiter"][..],
        ),
        ("exporters", &["otlp", "otlphttp", "file", "debug", "blackhole"][..]),
    ];
    for (section, types) in components {
        let patterns = schema["properties"][section]["patternProperties"]
            .as_object()
            .unwrap_or_else(|| panic!("`{section}` has no per-type schemas"));
        for component in types {
            let pattern = format!("^{component}(/.+)?$");
            assert!(patterns.contains_key(&pattern), "`{section}` has no schema for `{component}`");
        }
    }
    assert!(schema["properties"]["service"].is_object(), "the schema describes `service`");
    assert_refs_resolve(&schema, &schema);
}

/// io_uring's rings live in locked memory; with a tiny memlock limit spanpipe must say so in
/// one line that names the cause and the fix, and exit non-zero — not panic with a backtrace,
/// even with RUST_BACKTRACE set.
#[test]
fn run_with_too_little_locked_memory_prints_one_line_with_cause_and_fix() {
    const MEMLOCK_LIMIT: libc::rlim_t = 64 * 1024;
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("good.yaml"), good_config(&dir.path().join("spans.jsonl")))
        .expect("writing the config");
    let mut command = Command::new(SPANPIPE);
    command.args(["run", "--config", "good.yaml"]).current_dir(dir.path()).env("RUST_BACKTRACE", "1");
    // SAFETY: the hook runs in the forked child before exec, where only async-signal-safe calls
    // are allowed: setrlimit is one, and the hook neither allocates nor takes locks (building an
    // io::Error from an errno does neither).
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: MEMLOCK_LIMIT, rlim_max: MEMLOCK_LIMIT };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting spanpipe");
    // A spanpipe that does start would run until signalled: bound the wait.
    let status = common::wait_for_exit(&mut child, Duration::from_secs(30))
        .expect("spanpipe kept running with a 64 KiB memlock limit");
    let output = child.wait_with_output().expect("reading the output");
    let stderr = text(&output.stderr);
    assert_eq!(status.code(), Some(1), "exit status ({status}); stderr:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line:\n{stderr}");
    let line = lines[0];
    assert!(line.starts_with("spanpipe: "), "{line}");
    assert!(line.contains("locked memory") && line.contains("64 KiB"), "the line names the cause: {line}");
    assert!(line.contains("Fix:") && line.contains("ulimit -l"), "the line names the fix: {line}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    assert!(text(&output.stdout).is_empty(), "{}", text(&output.stdout));
}

/// Spans still inside the batch processor and the file exporter's buffer (both set to hold them
/// for a minute) when SIGTERM arrives are written out before spanpipe exits with status 0.
#[test]
fn sigterm_drains_the_pipeline_and_flushes_the_file_before_a_clean_exit() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = dir.path().join("spans.jsonl");
    let listen = free_address();
    let components = format!(
        "receivers:\n  otlp:\n    protocols:\n      http: {{endpoint: \"{listen}\"}}\n\
         processors:\n  batch:\n    send_batch_size: 100000\n    timeout: 60s\n\
         exporters:\n  file:\n    path: \"{}\"\n    flush_interval: 60s\n",
        output.display()
    );
    let mut collector = Spanpipe::start(
        dir.path(),
        "spanpipe",
        &components,
        "traces: {receivers: [otlp], processors: [batch], exporters: [file]}",
    );
    let healthz = common::http_get(collector.telemetry_address(), "/healthz").expect("GET /healthz");
    assert_eq!((healthz.status, healthz.body.as_slice()), (200, &b"ok\n"[..]));

    let mut ids = SpanIds::default();
    let mut sent = Vec::new();
    for seed in 0..3 {
        let (body, request_ids) = ids.request(25, seed);
        assert_eq!(post_until_accepted(listen, &body, Duration::from_secs(10)), 0, "an idle collector refused");
        sent.extend(request_ids);
    }
    assert!(span_id_counts(&output).is_empty(), "spans were written before SIGTERM: the test would prove nothing");
    collector.stop_cleanly();
    assert_delivered_exactly_once(&output, &sent);
}

#[test]
fn health_prints_the_log_filtered_by_since_and_follows_appends() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("health.log");
    let log = spanpipe_health::HealthLog::open(&path, 64 * 1024).expect("creating a health log");
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let nanos = |time: std::time::SystemTime| {
        u64::try_from(time.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()).unwrap()
    };
    log.append(spanpipe_health::HealthRecord::new("plugins/redact", "file_added", "loaded").at(nanos(hour_ago)))
        .unwrap();
    log.append(
        spanpipe_health::HealthRecord::new("plugins/panicky", "panic", "restart_scheduled").detail("asked to panic"),
    )
    .unwrap();
    let file = path.to_str().unwrap();

    let all = spanpipe(&["health", "--file", file], dir.path());
    assert!(all.status.success(), "{}", text(&all.stderr));
    let lines: Vec<String> = text(&all.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("#1 plugins/redact: file_added") && lines[0].contains("loaded"), "{lines:?}");
    assert!(lines[1].contains("#2 plugins/panicky: panic") && lines[1].contains("asked to panic"), "{lines:?}");

    let recent = spanpipe(&["health", "--file", file, "--since", "10m"], dir.path());
    assert_eq!(text(&recent.stdout).lines().count(), 1, "{}", text(&recent.stdout));
    let bad = spanpipe(&["health", "--file", file, "--since", "yesterday"], dir.path());
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("--since yesterday: neither a duration"), "{}", text(&bad.stderr));
    let no_path = spanpipe(&["health"], dir.path());
    assert!(text(&no_path.stderr).contains("sets no `service.health_log.path`"), "{}", text(&no_path.stderr));

    // --follow prints what is there, then each record appended, until it is stopped.
    let mut follow = Command::new(SPANPIPE)
        .args(["health", "--file", file, "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting spanpipe health --follow");
    let mut stdout = std::io::BufReader::new(follow.stdout.take().expect("piped stdout"));
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut stdout, &mut line).is_ok_and(|read| read > 0) {
            if sender.send(std::mem::take(&mut line)).is_err() {
                break;
            }
        }
    });
    for _ in 0..2 {
        receiver.recv_timeout(Duration::from_secs(10)).expect("the existing records");
    }
    log.append(spanpipe_health::HealthRecord::new("plugins/slow", "cpu_budget", "breaker_open")).unwrap();
    let appended = receiver.recv_timeout(Duration::from_secs(10)).expect("the appended record");
    assert!(appended.contains("#3 plugins/slow: cpu_budget") && appended.contains("breaker_open"), "{appended}");
    follow.kill().expect("stopping --follow");
    follow.wait().expect("reaping it");
}
