//! Plugins in the running collector: the example plugins (plugins/examples, built by this test
//! with cargo into a directory of its own) dropped into a watched `plugins.dir` while spangen or
//! the test sends spans. Hot add, replace and remove under load lose and duplicate nothing and
//! every span is processed by exactly one version; a panicking plugin is restarted and its
//! breaker opens and closes; incompatible and truncated libraries are refused with the reason; a
//! slow plugin is cut off by its CPU budget; a source and a codec plugin serve as receiver and
//! content type. Every loop is bounded by a deadline.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser as _;
use common::{
    assert_delivered_exactly_once, free_address, http_get, http_request, post_until_accepted, read_export_requests,
    wait_until, SpanIds, Spanpipe, DELIVERY_TIMEOUT,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use spanpipe_health::{HealthLogReader, HealthRecord};
use spanpipe_plugin_testing::{shared_examples, shared_examples_v2, SECOND_VERSION};

/// How long a plugin event may take to show: the settle time, the load, a metric scrape.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Installs a library as users are told to: copied under a hidden temporary name in the same
/// directory, then renamed into place, so the watcher never sees a partial file.
fn install(library: &Path, dir: &Path, name: &str) {
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::copy(library, &temporary).unwrap_or_else(|error| panic!("copying {}: {error}", library.display()));
    std::fs::rename(&temporary, dir.join(name)).expect("renaming the library into place");
}

/// A collector with an OTLP/HTTP receiver, `processors` (a YAML flow list) in front of a file
/// exporter, watching `plugins` and keeping a health log. `extra` adds components (indented YAML
/// sections' entries are not supported: whole top-level sections only).
struct Setup {
    _dir: tempfile::TempDir,
    plugins: PathBuf,
    output: PathBuf,
    health_log: PathBuf,
    http: std::net::SocketAddr,
    collector: Spanpipe,
}

impl Setup {
    fn start(processors_section: &str, processors: &str) -> Self {
        Self::start_with(processors_section, processors, "", "")
    }

    fn start_with(processors_section: &str, processors: &str, extra_receivers: &str, extra_pipelines: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).expect("creating the plugin directory");
        let output = dir.path().join("spans.jsonl");
        let health_log = dir.path().join("health.log");
        let http = free_address();
        let components = format!(
            "receivers:\n  otlp:\n    protocols:\n      http: {{endpoint: \"{http}\"}}\n{extra_receivers}\
             processors:\n{processors_section}\
             exporters:\n  file:\n    path: \"{}\"\n    flush_interval: 20ms\n\
             plugins:\n  dir: \"{}\"\n  settle: 100ms\n",
            output.display(),
            plugins.display()
        );
        let collector = Spanpipe::start_with_service(
            dir.path(),
            "collector",
            &components,
            &format!("health_log: {{path: \"{}\", size: 1048576}}", health_log.display()),
            &format!("traces: {{receivers: [otlp], processors: {processors}, exporters: [file]}}\n{extra_pipelines}"),
        );
        Self { _dir: dir, plugins, output, health_log, http, collector }
    }

    fn event_count(&self, plugin: &str, event: &str) -> f64 {
        self.collector.metric("spanpipe_plugin_events_total", &[("plugin", plugin), ("event", event)])
    }

    #[track_caller]
    fn wait_for_event(&self, plugin: &str, event: &str, count: f64) {
        wait_until(&format!("{count} `{event}` events of {plugin}"), EVENT_TIMEOUT, || {
            self.event_count(plugin, event) >= count
        });
    }

    fn health_records(&self) -> Vec<HealthRecord> {
        HealthLogReader::open(&self.health_log)
            .and_then(|reader| reader.records())
            .unwrap_or_else(|error| panic!("reading {}: {error}", self.health_log.display()))
    }

    /// Every span of the file exporter's output, in the order written.
    fn spans(&self) -> Vec<Span> {
        read_export_requests(&self.output)
            .into_iter()
            .flat_map(|request| request.resource_spans)
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans)
            .collect()
    }
}

fn string_values<'a>(span: &'a Span, key: &str) -> Vec<&'a str> {
    span.attributes
        .iter()
        .filter(|attribute| attribute.key == key)
        .filter_map(|attribute| match attribute.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn spangen(line: &str) -> spangen::Finished {
    let args = spangen::Args::try_parse_from(std::iter::once("spangen").chain(line.split_whitespace()))
        .unwrap_or_else(|error| panic!("`spangen {line}`: {error}"));
    spangen::run(&args).unwrap_or_else(|error| panic!("`spangen {line}`: {error}"))
}

#[test]
fn hot_add_replace_and_remove_under_load_lose_nothing_and_each_span_meets_one_version() {
    let v1 = &shared_examples().redact;
    let v2 = &shared_examples_v2().redact;
    let setup = Setup::start("  plugin/redact: {config: {keys: [user.email]}}\n", "[plugin/redact]");
    let endpoint = setup.http;
    let load = std::thread::spawn(move || {
        spangen(&format!(
            "--endpoint {endpoint} --protocol http-protobuf --rate 4000 --duration 9s --batch-size 50 \
             --in-flight 4 --max-retries 20 --no-progress"
        ))
    });
    std::thread::sleep(Duration::from_millis(1500));
    install(v1, &setup.plugins, "libredact.so");
    setup.wait_for_event("redact", "loaded", 1.0);
    std::thread::sleep(Duration::from_millis(1500));
    install(v2, &setup.plugins, "libredact.so");
    setup.wait_for_event("redact", "loaded", 2.0);
    setup.wait_for_event("redact", "swapped", 2.0);
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::remove_file(setup.plugins.join("libredact.so")).expect("removing the library");
    setup.wait_for_event("redact", "retired", 1.0);
    let finished = load.join().expect("the load thread");
    let report = &finished.report;
    assert!(!report.has_request_errors(), "{}", report.text());
    assert_eq!(report.counts.spans_accepted, report.counts.spans_sent, "{}", report.text());
    let accepted = report.counts.spans_accepted as usize;
    assert!(accepted > 10_000, "too little load to mean anything: {}", report.text());

    wait_until("every accepted span in the file", DELIVERY_TIMEOUT, || setup.spans().len() >= accepted);
    let spans = setup.spans();
    assert_eq!(spans.len(), accepted, "spans written vs accepted");
    let unique: BTreeSet<&[u8]> = spans.iter().map(|span| span.span_id.as_slice()).collect();
    assert_eq!(unique.len(), accepted, "a span was written twice");

    // In the order written: spans before the library arrived carry no stamp, then the first
    // version's, then the second's, then none again after the file was removed. Each span has at
    // most one.
    let mut phases: Vec<&str> = Vec::new();
    for span in &spans {
        let stamps = string_values(span, "spanpipe.plugin.redact.version");
        assert!(stamps.len() <= 1, "span {:02x?} processed by {stamps:?}", span.span_id);
        let phase = stamps.first().copied().unwrap_or("none");
        if phases.last() != Some(&phase) {
            phases.push(phase);
        }
    }
    // The shared build has the example's default version, the second build SECOND_VERSION.
    assert_eq!(phases, ["none", "1.0.0", SECOND_VERSION, "none"], "the versions that processed the spans, in order");
    let stamped = spans.iter().filter(|span| !string_values(span, "spanpipe.plugin.redact.version").is_empty());
    for span in stamped {
        for email in string_values(span, "user.email") {
            assert_eq!(email, "***", "a processed span keeps no e-mail address");
        }
    }
    let actions: Vec<String> = setup.health_records().iter().map(|record| record.action.clone()).collect();
    for expected in ["loaded", "swapped", "retired"] {
        assert!(actions.iter().any(|action| action == expected), "health log lacks `{expected}`: {actions:?}");
    }
}

/// A realistic request with fresh ids; when `panic` is set its first span asks the panicky
/// plugin to panic.
fn request(ids: &mut SpanIds, spans: usize, panic: bool) -> (Vec<u8>, Vec<u64>) {
    let (body, sent) = ids.request(spans, 7);
    if !panic {
        return (body, sent);
    }
    let mut decoded =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(body.as_slice())
            .expect("the testkit request decodes");
    let span = &mut decoded.resource_spans[0].scope_spans[0].spans[0];
    span.attributes.push(KeyValue {
        key: "plugin.panic".to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::BoolValue(true)) }),
        ..KeyValue::default()
    });
    (decoded.encode_to_vec(), sent)
}

#[test]
fn a_panicking_plugin_is_restarted_then_bypassed_by_its_breaker_which_closes_again() {
    let setup = Setup::start(
        "  plugin/panicky:\n    breaker: {failures: 3, window: 60s, cool_down: 2s}\n    \
         restart_backoff: {initial: 50ms, max: 100ms}\n",
        "[plugin/panicky]",
    );
    install(&shared_examples().panicky, &setup.plugins, "libpanicky.so");
    setup.wait_for_event("panicky", "loaded", 1.0);
    let mut ids = SpanIds::default();
    let mut sent = Vec::new();
    let mut send = |panic: bool| {
        let (body, spans) = request(&mut ids, 20, panic);
        post_until_accepted(setup.http, &body, DELIVERY_TIMEOUT);
        sent.extend(spans);
    };
    for round in 1..=3 {
        send(true);
        setup.wait_for_event("panicky", "panicked", f64::from(round));
        // Past the restart backoff, so that the next batch meets a new instance.
        std::thread::sleep(Duration::from_millis(250));
    }
    setup.wait_for_event("panicky", "breaker_opened", 1.0);
    assert_eq!(setup.event_count("panicky", "restarted"), 2.0, "restarted after the first two panics");
    send(false);
    send(true);
    assert_eq!(setup.event_count("panicky", "panicked"), 3.0, "the open breaker bypasses the plugin");
    std::thread::sleep(Duration::from_millis(2200));
    send(false);
    setup.wait_for_event("panicky", "breaker_closed", 1.0);

    // `on_failure` is `pass_through`: every span arrived, none twice.
    wait_until("every span in the file", DELIVERY_TIMEOUT, || common::holds_all(&setup.output, &sent));
    assert_delivered_exactly_once(&setup.output, &sent);
    // Three panicking batches, two while the breaker was open.
    wait_until("the passed-through spans counted", EVENT_TIMEOUT, || {
        setup.collector.metric("spanpipe_processor_bypassed_spans_total", &[("processor", "plugin/panicky")]) == 100.0
    });
    let log = setup.collector.log();
    assert!(log.contains("panicky: asked to panic by span"), "the panic message is logged:\n{log}");
    let records = setup.health_records();
    let panics: Vec<&HealthRecord> = records.iter().filter(|record| record.trigger == "panic").collect();
    assert_eq!(panics.len(), 3, "{records:#?}");
    assert!(panics[0].detail.as_deref().unwrap_or_default().contains("asked to panic"), "{:?}", panics[0]);
    for action in ["breaker_open", "breaker_closed", "restarted"] {
        assert!(records.iter().any(|record| record.action == action), "health log lacks `{action}`: {records:#?}");
    }
    assert_eq!(http_get(setup.collector.telemetry_address(), "/healthz").expect("healthz").status, 200);
    // `/status` shows the latest actions, newest last.
    let status = setup.collector.status();
    let shown: Vec<&str> =
        status["health"].as_array().expect("health records").iter().filter_map(|r| r["action"].as_str()).collect();
    assert_eq!(shown.last(), Some(&"breaker_closed"), "{status}");
    assert!(shown.contains(&"breaker_open") && shown.contains(&"restart_scheduled"), "{status}");
    assert_eq!(status["ready"], true);
}

#[test]
fn incompatible_and_truncated_libraries_are_refused_with_the_reason_and_nothing_else_changes() {
    let setup = Setup::start("  plugin/redact:\n", "[plugin/redact]");
    install(&shared_examples().mismatched, &setup.plugins, "libmismatched.so");
    let library = std::fs::read(&shared_examples().redact).expect("reading the redact library");
    let truncated = setup.plugins.join(".libtruncated.so.tmp");
    std::fs::write(&truncated, &library[..library.len() / 3]).expect("writing a truncated copy");
    std::fs::rename(&truncated, setup.plugins.join("libtruncated.so")).expect("renaming it into place");

    wait_until("both refusals counted", EVENT_TIMEOUT, || {
        setup.collector.metric(
            "spanpipe_plugin_events_total",
            &[("plugin", "libmismatched.so"), ("event", "refused"), ("reason", "interface_hash")],
        ) == 1.0
            && setup
                .collector
                .metric("spanpipe_plugin_events_total", &[("plugin", "libtruncated.so"), ("event", "refused")])
                == 1.0
    });
    let log = setup.collector.log();
    let line = log.lines().find(|line| line.contains("libmismatched.so refused")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("interface_hash differs (expected 0x") && line.contains(", found 0x"), "{line}");
    assert!(log.contains("libtruncated.so"), "{log}");
    let refusals: Vec<HealthRecord> =
        setup.health_records().into_iter().filter(|record| record.action == "refused").collect();
    assert_eq!(refusals.len(), 2, "{refusals:#?}");

    // Nothing was loaded: the stage passes spans through, and the collector serves on.
    let mut ids = SpanIds::default();
    let (body, sent) = ids.request(10, 3);
    post_until_accepted(setup.http, &body, DELIVERY_TIMEOUT);
    wait_until("the spans in the file", DELIVERY_TIMEOUT, || common::holds_all(&setup.output, &sent));
    assert_eq!(setup.event_count("redact", "loaded"), 0.0);
    wait_until("the passed-through spans counted", EVENT_TIMEOUT, || {
        setup.collector.metric("spanpipe_processor_bypassed_spans_total", &[("processor", "plugin/redact")]) == 10.0
    });
}

#[test]
fn a_slow_plugin_is_cut_off_by_its_cpu_budget() {
    let setup = Setup::start(
        "  plugin/slow:\n    config: {spin_ms: 40}\n    cpu_budget: 5ms\n    budget_strikes: 2\n    \
         breaker: {cool_down: 60s}\n",
        "[plugin/slow]",
    );
    install(&shared_examples().slow, &setup.plugins, "libslow.so");
    setup.wait_for_event("slow", "loaded", 1.0);
    let mut ids = SpanIds::default();
    let mut sent = Vec::new();
    for _ in 0..2 {
        let (body, spans) = ids.request(10, 5);
        post_until_accepted(setup.http, &body, DELIVERY_TIMEOUT);
        sent.extend(spans);
    }
    wait_until("the breaker opened for the budget", EVENT_TIMEOUT, || {
        setup.collector.metric(
            "spanpipe_plugin_events_total",
            &[("plugin", "slow"), ("event", "breaker_opened"), ("reason", "cpu_budget")],
        ) == 1.0
    });
    assert_eq!(setup.event_count("slow", "budget_exceeded"), 2.0);
    // Bypassed from now on: more batches cost no plugin call and no strike.
    for _ in 0..5 {
        let (body, spans) = ids.request(10, 6);
        post_until_accepted(setup.http, &body, DELIVERY_TIMEOUT);
        sent.extend(spans);
    }
    wait_until("every span in the file", DELIVERY_TIMEOUT, || common::holds_all(&setup.output, &sent));
    assert_delivered_exactly_once(&setup.output, &sent);
    assert_eq!(setup.event_count("slow", "budget_exceeded"), 2.0, "no call after the breaker opened");
    let records = setup.health_records();
    let trip = records.iter().find(|record| record.action == "breaker_open").unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(trip.trigger, "cpu_budget");
    let strike = records.iter().find(|record| record.trigger == "cpu_budget" && record.action == "strike");
    let strike = strike.unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(strike.threshold.as_deref(), Some("5ms"), "{strike:?}");
}

/// An ndjson line (the codec example's format) for a span of `trace_id`.
fn ndjson_line(trace_id: &str, span_id: &str) -> String {
    format!(
        r#"{{"trace_id":"{trace_id}","span_id":"{span_id}","name":"GET /","start":1700000000000000000,"end":1700000000100000000,"service":"web","attributes":{{"http.method":"GET"}}}}"#
    )
}

#[test]
fn a_source_plugin_feeds_its_pipeline_and_a_codec_plugin_serves_its_content_type() {
    let setup = Setup::start_with(
        "  plugin/sample: {config: {percent: 50}}\n",
        "[plugin/sample]",
        "  plugin/heartbeat: {interval: 100ms, config: {service: beat}}\n",
        "traces/beats: {receivers: [plugin/heartbeat], exporters: [file]}",
    );
    let content_type = [("Content-Type", "application/x-ndjson-spans")];
    let body = format!(
        "{}\n{}\n",
        ndjson_line("00000000000000010000000000000001", "0000000000000001"),
        ndjson_line("ffffffffffffff000000000000000002", "0000000000000002")
    );
    let before = http_request(setup.http, "POST", "/v1/traces", &content_type, body.as_bytes()).expect("POST");
    assert_eq!(before.status, 415, "no codec serves the type before the plugin: {before:?}");

    for (library, name) in [
        (&shared_examples().heartbeat, "libheartbeat.so"),
        (&shared_examples().ndjson, "libndjson.so"),
        (&shared_examples().sample, "libsample.so"),
    ] {
        install(library, &setup.plugins, name);
    }
    for plugin in ["heartbeat", "ndjson", "sample"] {
        setup.wait_for_event(plugin, "loaded", 1.0);
    }
    let deadline = Instant::now() + EVENT_TIMEOUT;
    let reply = loop {
        // The codec is offered from the moment it is published.
        let reply = http_request(setup.http, "POST", "/v1/traces", &content_type, body.as_bytes()).expect("POST");
        if reply.status != 415 || Instant::now() > deadline {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(reply.status, 200, "{reply:?}");
    let malformed =
        http_request(setup.http, "POST", "/v1/traces", &content_type, b"{\"trace_id\": 1}\n").expect("POST");
    assert_eq!(malformed.status, 400, "{malformed:?}");
    assert!(String::from_utf8_lossy(&malformed.body).contains("line 1"), "{malformed:?}");

    wait_until("three heartbeats and the sampled ndjson span", DELIVERY_TIMEOUT, || {
        let spans = setup.spans();
        spans.iter().filter(|span| span.name == "heartbeat").count() >= 3
            && spans.iter().any(|span| span.span_id == [0, 0, 0, 0, 0, 0, 0, 1])
    });
    let spans = setup.spans();
    let sequences: Vec<i64> = spans
        .iter()
        .filter(|span| span.name == "heartbeat")
        .flat_map(|span| &span.attributes)
        .filter(|attribute| attribute.key == "heartbeat.sequence")
        .filter_map(|attribute| match attribute.value.as_ref()?.value.as_ref()? {
            any_value::Value::IntValue(value) => Some(*value),
            _ => None,
        })
        .collect();
    assert!(sequences.windows(2).all(|pair| pair[0] < pair[1]) && sequences.len() >= 3, "{sequences:?}");
    assert!(
        !spans.iter().any(|span| span.span_id == [0, 0, 0, 0, 0, 0, 0, 2]),
        "the sample plugin keeps the low trace id and drops the high one"
    );
    // Cores publish their counters every 250 ms: the file may be ahead of the metrics.
    wait_until("the heartbeats counted as accepted by their receiver", EVENT_TIMEOUT, || {
        setup.collector.metric("spanpipe_receiver_accepted_spans_total", &[("receiver", "plugin/heartbeat")]) >= 3.0
    });
}

#[test]
fn a_cpu_burning_plugin_makes_the_watchdog_lower_the_sampling_rate_and_calm_restores_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("creating the plugin directory");
    let health_log = dir.path().join("health.log");
    let http = free_address();
    let components = format!(
        "receivers:\n  otlp:\n    protocols:\n      http: {{endpoint: \"{http}\"}}\n\
         processors:\n  plugin/slow: {{config: {{spin_ms: 30}}}}\n  \
         adaptive_sampler: {{base_sampling_percentage: 100, latency_threshold: 1h}}\n\
         exporters:\n  blackhole:\n\
         plugins:\n  dir: \"{}\"\n  settle: 100ms\n",
        plugins.display()
    );
    let collector = Spanpipe::start_with_service(
        dir.path(),
        "collector",
        &components,
        &format!(
            "health_log: {{path: \"{}\"}}\n\
             watchdog: {{cpu: {{interval: 200ms, high: 0.3, high_for: 1s, low: 0.1, low_for: 1s, steps: [1, 0.5]}}}}",
            health_log.display()
        ),
        "traces: {receivers: [otlp], processors: [plugin/slow, adaptive_sampler], exporters: [blackhole]}",
    );
    install(&shared_examples().slow, &plugins, "libslow.so");
    wait_until("the slow plugin loaded", EVENT_TIMEOUT, || {
        collector.metric("spanpipe_plugin_events_total", &[("plugin", "slow"), ("event", "loaded")]) == 1.0
    });
    let actions = || -> Vec<String> {
        HealthLogReader::open(&health_log)
            .and_then(|reader| reader.records())
            .map(|records| records.into_iter().filter(|r| r.trigger == "cpu").map(|r| r.action).collect())
            .unwrap_or_default()
    };
    // 50 batches a second, 30 ms of spinning each: more than the one core the data plane has. The
    // thresholds are low so that a busy test machine, which lends the collector less than a whole
    // core (a third of one with CI's other tests beside it), still counts as pressure; an idle
    // collector stays far under `low`.
    let load = std::thread::spawn(move || {
        spangen(&format!(
            "--endpoint {http} --protocol http-protobuf --rate 2500 --duration 10s --batch-size 50 \
             --in-flight 4 --max-retries 20 --allow-errors --no-progress"
        ))
    });
    wait_until("the rate lowered under real CPU pressure", EVENT_TIMEOUT, || {
        actions().first().map(String::as_str) == Some("sampling_downgraded")
    });
    let utilization = collector.metric("spanpipe_watchdog_cpu_utilization", &[]);
    load.join().expect("the load thread");
    wait_until("the rate restored once the load stopped", EVENT_TIMEOUT, || {
        actions() == ["sampling_downgraded", "sampling_restored"]
    });
    let reply = http_get(collector.telemetry_address(), "/v1/adaptive_sampler").expect("GET the rates");
    assert_eq!(String::from_utf8_lossy(&reply.body).trim(), "adaptive_sampler 100", "restored: no factor shown");
    assert!(utilization >= 0.2, "the measured CPU use while loaded: {utilization}");
}
