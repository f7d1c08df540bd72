//! Loading Collector-style config files: what loads and how, and every kind of error with its
//! exact path and line.

mod common;

use std::time::Duration;

use common::{
    fixture, registry, ActionKind, AttributesConfig, BatchConfig, DebugConfig, HealthCheckConfig, OtlpExporterConfig,
    OtlpReceiverConfig, Verbosity,
};
use spanpipe_config::{
    ComponentId, ComponentKind, Config, ConfigError, ConfigErrorKind, ConfigErrors, Loaded, Loader, Location, LogLevel,
    MetricsLevel, PipelineId, Warning, WarningKind,
};

fn id(text: &str) -> ComponentId {
    text.parse().unwrap()
}

fn env(name: &str) -> Option<String> {
    match name {
        "BATCH_SIZE" => Some("1024".to_owned()),
        "DEPLOYMENT" => Some("production".to_owned()),
        "TENANT" => Some("0042".to_owned()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Loaded, ConfigErrors> {
    let registry = registry();
    let result = Loader::new(&registry).with_env(env).load_str(text);
    result
}

fn load_ok(text: &str) -> (Config, Vec<Warning>) {
    load(text).unwrap_or_else(|errors| panic!("{errors}"))
}

fn load_err(text: &str) -> Vec<ConfigError> {
    match load(text) {
        Ok(_) => panic!("the config should be refused"),
        Err(errors) => errors.errors,
    }
}

/// The only error of a config, as (path, line, message).
fn single_error(text: &str) -> (String, Option<usize>, String) {
    let errors = load_err(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let error = &errors[0];
    (error.path.clone(), error.location.map(|location| location.line), error.kind.to_string())
}

/// Components followed by a `service` with one `traces` pipeline.
fn with_pipeline(components: &str, pipeline: &str) -> String {
    format!("{components}\nservice:\n  pipelines:\n    traces:\n{pipeline}")
}

const COMPONENTS: &str =
    "receivers:\n  otlp:\n    protocols:\n      grpc:\nprocessors:\n  batch:\nexporters:\n  debug:\n";
const PIPELINE: &str = "      receivers: [otlp]\n      processors: [batch]\n      exporters: [debug]\n";

#[test]
fn loads_a_collector_gateway_config() {
    let registry = registry();
    let (config, warnings) = Loader::new(&registry)
        .with_env(env)
        .load_file(fixture("collector_full.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:#?}");

    let otlp = config.receivers.config::<OtlpReceiverConfig>(&id("otlp")).unwrap();
    let grpc = otlp.protocols.grpc.as_ref().unwrap();
    assert_eq!((grpc.endpoint.as_str(), grpc.max_recv_msg_size_mib), ("0.0.0.0:4317", 16));
    assert_eq!(otlp.protocols.http.as_ref().unwrap().endpoint, "0.0.0.0:4318");
    let internal = config.receivers.config::<OtlpReceiverConfig>(&id("otlp/internal")).unwrap();
    assert!(internal.protocols.http.is_none());

    let batch = config.processors.config::<BatchConfig>(&id("batch")).unwrap();
    assert_eq!((batch.send_batch_size, batch.send_batch_max_size), (1024, 16384));
    assert_eq!(batch.timeout.0, Duration::from_secs(5));
    let small = config.processors.config::<BatchConfig>(&id("batch/small")).unwrap();
    assert_eq!((small.send_batch_size, small.timeout.0), (512, Duration::from_millis(200)));
    let redact = config.processors.config::<AttributesConfig>(&id("attributes/redact")).unwrap();
    assert_eq!((redact.actions[0].key.as_str(), redact.actions[0].action), ("user.email", ActionKind::Hash));
    assert_eq!(redact.actions[1].value.as_deref(), Some("production"));

    let primary = config.exporters.config::<OtlpExporterConfig>(&id("otlp/primary")).unwrap();
    assert_eq!(primary.headers["X-Scope-OrgID"], "0042", "a quoted reference keeps the variable's text");
    let secondary = config.exporters.config::<OtlpExporterConfig>(&id("otlp/secondary")).unwrap();
    assert_eq!(secondary.endpoint, "jaeger.observability:4317");
    assert!(secondary.tls.insecure, "merged from the anchor");
    assert_eq!(secondary.timeout.map(|t| t.0), Some(Duration::from_secs(10)));
    assert_eq!(config.exporters.config::<DebugConfig>(&id("debug")).unwrap().verbosity, Verbosity::Detailed);
    // The same id in two kinds is two components; a downcast to the wrong type is refused.
    assert!(config.exporters.config::<OtlpReceiverConfig>(&id("otlp/primary")).is_none());

    let health = config.extensions.config::<HealthCheckConfig>(&id("health_check")).unwrap();
    assert_eq!(health.endpoint, "0.0.0.0:13133");

    let service = &config.service;
    assert_eq!(service.extensions, [id("health_check")]);
    assert_eq!(service.telemetry.logs.level, LogLevel::Debug);
    assert_eq!(service.telemetry.metrics.level, MetricsLevel::Detailed);
    assert_eq!(service.telemetry.metrics.endpoints()[0].host, "0.0.0.0");
    assert_eq!(service.cores, Some(2));
    assert_eq!(service.shutdown_timeout.0, Duration::from_secs(45));
    let ids: Vec<String> = service.pipelines.keys().map(PipelineId::to_string).collect();
    assert_eq!(ids, ["traces", "traces/internal"]);
    let traces = &service.pipelines[&PipelineId::traces()];
    assert_eq!(traces.processors, [id("attributes/redact"), id("batch")]);
    assert_eq!(traces.exporters, [id("otlp/primary"), id("otlp/secondary")]);
}

#[test]
fn empty_bodies_take_every_default() {
    let registry = registry();
    let (config, warnings) = Loader::new(&registry).load_file(fixture("collector_minimal.yaml")).unwrap();
    assert!(warnings.is_empty());
    let otlp = config.receivers.config::<OtlpReceiverConfig>(&id("otlp")).unwrap();
    assert_eq!(otlp.protocols.grpc.as_ref().unwrap().endpoint, "localhost:4317");
    assert_eq!(otlp.protocols.http.as_ref().unwrap().endpoint, "localhost:4318");
    let batch = config.processors.config::<BatchConfig>(&id("batch")).unwrap();
    assert_eq!((batch.send_batch_size, batch.timeout.0), (8192, Duration::from_millis(200)));
    assert_eq!(config.exporters.config::<DebugConfig>(&id("debug")).unwrap().verbosity, Verbosity::Basic);
    // The service's own defaults.
    assert_eq!(config.service.cores, None);
    assert_eq!(config.service.shutdown_timeout.0, Duration::from_secs(30));
    assert_eq!(config.service.telemetry.logs.level, LogLevel::Info);
    let metrics = config.service.telemetry.metrics.endpoints();
    assert_eq!((metrics[0].host.as_str(), metrics[0].port), ("localhost", 8888));
}

#[test]
fn expands_environment_variables_as_the_collector_does() {
    let text = "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: ${HOST:-0.0.0.0}:${env:GRPC_PORT}\n\
                processors:\n  batch:\n    send_batch_size: ${env:BATCH_SIZE}\n    timeout: ${env:TIMEOUT:-2s}\n\
                exporters:\n  otlp:\n    endpoint: ${env:BACKEND}\n    headers:\n      authorization: \"Bearer $${TOKEN}\"\n\
                service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      processors: [batch]\n      exporters: [otlp]\n";
    let registry = registry();
    let lookup = |name: &str| match name {
        "GRPC_PORT" => Some("14317".to_owned()),
        "BATCH_SIZE" => Some("0x400".to_owned()),
        "BACKEND" => Some("tempo:4317".to_owned()),
        _ => None,
    };
    let (config, warnings) = Loader::new(&registry).with_env(lookup).load_str(text).unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:#?}");
    let otlp = config.receivers.config::<OtlpReceiverConfig>(&id("otlp")).unwrap();
    assert_eq!(otlp.protocols.grpc.as_ref().unwrap().endpoint, "0.0.0.0:14317");
    let batch = config.processors.config::<BatchConfig>(&id("batch")).unwrap();
    assert_eq!((batch.send_batch_size, batch.timeout.0), (1024, Duration::from_secs(2)));
    let exporter = config.exporters.config::<OtlpExporterConfig>(&id("otlp")).unwrap();
    assert_eq!(exporter.endpoint, "tempo:4317");
    assert_eq!(exporter.headers["authorization"], "Bearer ${TOKEN}");
}

#[test]
fn an_unset_variable_is_a_warning_and_an_empty_value() {
    let text = format!(
        "{}\n",
        with_pipeline(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: ${env:OTLP_ENDPOINT}\nprocessors:\n  batch:\nexporters:\n  debug:\n",
            PIPELINE
        )
    );
    let registry = registry();
    let errors = Loader::new(&registry).with_env(|_| None).load_str(&text).unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    assert_eq!(errors.errors[0].path, "receivers.otlp.protocols.grpc.endpoint");
    assert!(errors.errors[0].kind.to_string().starts_with("empty value where a string is expected"));
    assert_eq!(
        errors.warnings,
        [Warning {
            path: "receivers.otlp.protocols.grpc.endpoint".to_owned(),
            location: Some(Location { line: 5, column: 19 }),
            kind: WarningKind::UnsetEnvironmentVariable {
                name: "OTLP_ENDPOINT".to_owned(),
                reference: "${env:OTLP_ENDPOINT}".to_owned()
            },
        }]
    );
    assert!(errors.to_string().contains("\n  warning: receivers.otlp.protocols.grpc.endpoint (line 5, column 19): environment variable `OTLP_ENDPOINT` is not set"));
}

#[test]
fn refuses_unsupported_expansions_at_their_key() {
    let text = with_pipeline(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\nprocessors:\n  batch:\nexporters:\n  otlp:\n    endpoint: ${file:/etc/endpoint}\n",
        "      receivers: [otlp]\n      exporters: [otlp]\n",
    );
    let (path, line, message) = single_error(&text);
    assert_eq!((path.as_str(), line), ("exporters.otlp.endpoint", Some(9)));
    assert!(message.starts_with("`${file:/etc/endpoint}` uses the `file` config provider"), "{message}");
}

#[test]
fn unknown_component_types_name_what_spanpipe_has() {
    let text = with_pipeline(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\nprocessors:\n  batch:\n  tail_sampling:\n    decision_wait: 10s\nexporters:\n  debug:\n",
        PIPELINE,
    );
    let errors = load_err(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].path, "processors.tail_sampling");
    assert_eq!(errors[0].location, Some(Location { line: 7, column: 3 }));
    assert_eq!(
        errors[0].kind.to_string(),
        "unknown processor type `tail_sampling`; spanpipe has `attributes`, `batch`"
    );
    assert!(matches!(
        &errors[0].kind,
        ConfigErrorKind::UnknownComponentType { kind: ComponentKind::Processor, type_name, .. } if type_name == "tail_sampling"
    ));
    // A pipeline naming it is not also told that it is missing: the type error says it all.
    let text = text.replace("processors: [batch]", "processors: [batch, tail_sampling]");
    assert_eq!(load_err(&text).len(), 1);

    let text = with_pipeline(&COMPONENTS.replace("  debug:", "  debgu:"), &PIPELINE.replace("[debug]", "[debgu]"));
    let (_, _, message) = single_error(&text);
    assert_eq!(message, "unknown exporter type `debgu` (did you mean `debug`?); spanpipe has `debug`, `otlp`");
}

#[test]
fn unknown_keys_are_errors_naming_the_key_and_its_line() {
    let text = with_pipeline(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpiont: 0.0.0.0:4317\nprocessors:\n  batch:\nexporters:\n  debug:\n",
        PIPELINE,
    );
    let (path, line, message) = single_error(&text);
    assert_eq!((path.as_str(), line), ("receivers.otlp.protocols.grpc.endpiont", Some(5)));
    assert_eq!(
        message,
        "unknown key `endpiont` (did you mean `endpoint`?); valid keys here: `endpoint`, `max_recv_msg_size_mib`"
    );

    let errors = load_err(&with_pipeline(COMPONENTS, PIPELINE).replacen("receivers:", "recievers:", 1));
    assert_eq!((errors[0].path.as_str(), errors[0].location.map(|l| l.line)), ("recievers", Some(1)));
    let message = errors[0].kind.to_string();
    assert!(message.starts_with("unknown key `recievers` (did you mean `receivers`?)"), "{message}");
    assert!(matches!(errors[1].kind, ConfigErrorKind::UndefinedComponent { kind: ComponentKind::Receiver, .. }));
    assert_eq!(errors.len(), 2);

    let (path, _, message) = single_error(&format!(
        "{}\n  telemetry:\n    traces:\n      level: none\n",
        with_pipeline(COMPONENTS, PIPELINE).trim_end()
    ));
    assert_eq!(path, "service.telemetry.traces");
    assert!(message.starts_with("unknown key `traces`; valid keys here: `logs`, `metrics`"), "{message}");

    let (path, _, message) =
        single_error(&format!("{}\n  worker_threads: 4\n", with_pipeline(COMPONENTS, PIPELINE).trim_end()));
    assert_eq!(path, "service.worker_threads");
    assert_eq!(
        message,
        "unknown key `worker_threads`; valid keys here: `pipelines`, `extensions`, `telemetry`, `cores`, `shutdown_timeout`, `health_log`, `watchdog`"
    );
}

#[test]
fn value_errors_name_the_full_path_and_line() {
    let text = with_pipeline(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\nprocessors:\n  batch:\n    send_batch_size: -1\n    timeout: 5 seconds\nexporters:\n  debug:\n    verbosity: loud\n",
        PIPELINE,
    );
    let errors = load_err(&text);
    let summary: Vec<(&str, Option<usize>)> =
        errors.iter().map(|e| (e.path.as_str(), e.location.map(|l| l.line))).collect();
    // One error per component: serde stops inside a component at its first error.
    assert_eq!(summary, [("processors.batch.send_batch_size", Some(7)), ("exporters.debug.verbosity", Some(11))]);
    assert_eq!(errors[0].kind.to_string(), "invalid value: integer `-1`, expected u32");
    assert_eq!(errors[1].kind.to_string(), "unknown value `loud`; expected one of `basic`, `normal`, `detailed`");
    assert_eq!(errors[0].location.unwrap().column, 22, "points at the value");

    let text = with_pipeline(&COMPONENTS.replace("  batch:\n", "  batch:\n    timeout: 5 seconds\n"), PIPELINE);
    let (path, _, message) = single_error(&text);
    assert_eq!(path, "processors.batch.timeout");
    assert!(message.starts_with("invalid duration \"5 seconds\""), "{message}");
}

#[test]
fn missing_required_keys_are_reported_at_the_component() {
    let text = with_pipeline(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  otlp/backend:\n    tls:\n      insecure: true\n",
        "      receivers: [otlp]\n      exporters: [otlp/backend]\n",
    );
    let (path, line, message) = single_error(&text);
    assert_eq!(
        (path.as_str(), line, message.as_str()),
        ("exporters.otlp/backend", Some(7), "missing required key `endpoint`")
    );
}

#[test]
fn pipelines_must_reference_configured_components_once() {
    let text = with_pipeline(
        COMPONENTS,
        "      receivers: [otlp, otlp]\n      processors: [batch, memory_limiter]\n      exporters: [debug, otlp/backend]\n",
    );
    let errors = load_err(&text);
    let found: Vec<(String, Option<Location>, String)> =
        errors.iter().map(|e| (e.path.clone(), e.location, e.kind.to_string())).collect();
    assert_eq!(
        found,
        [
            (
                "service.pipelines.traces.receivers[1]".to_owned(),
                Some(Location { line: 13, column: 25 }),
                "lists receiver `otlp` more than once".to_owned()
            ),
            (
                "service.pipelines.traces.processors[1]".to_owned(),
                Some(Location { line: 14, column: 27 }),
                "references processor `memory_limiter`, which is not configured under `processors`".to_owned()
            ),
            (
                "service.pipelines.traces.exporters[1]".to_owned(),
                Some(Location { line: 15, column: 26 }),
                "references exporter `otlp/backend`, which is not configured under `exporters`".to_owned()
            ),
        ]
    );
    assert!(matches!(
        &errors[2].kind,
        ConfigErrorKind::UndefinedComponent { kind: ComponentKind::Exporter, id } if id.to_string() == "otlp/backend"
    ));
}

#[test]
fn pipelines_need_receivers_and_exporters() {
    let text = with_pipeline(COMPONENTS, "      processors: [batch]\n");
    let errors = load_err(&text);
    let found: Vec<(&str, String)> = errors.iter().map(|e| (e.path.as_str(), e.kind.to_string())).collect();
    assert_eq!(
        found,
        [
            ("service.pipelines.traces.receivers", "a pipeline needs at least one receiver".to_owned()),
            ("service.pipelines.traces.exporters", "a pipeline needs at least one exporter".to_owned()),
        ]
    );
    // Reported at the pipeline, the nearest place written.
    assert_eq!(errors[0].location, Some(Location { line: 12, column: 5 }));

    let (path, _, message) = single_error(COMPONENTS);
    assert_eq!(path, "service.pipelines");
    assert_eq!(message, "no pipelines: add `service.pipelines.traces` with `receivers` and `exporters`");
}

#[test]
fn unused_components_are_warnings() {
    let components = format!("{COMPONENTS}  otlp/spare:\n    endpoint: backup:4317\nextensions:\n  health_check:\n");
    let (config, warnings) = load_ok(&with_pipeline(&components, PIPELINE));
    assert!(config.exporters.contains(&id("otlp/spare")), "still loaded and validated");
    let found: Vec<(&str, String)> = warnings.iter().map(|w| (w.path.as_str(), w.kind.to_string())).collect();
    assert_eq!(
        found,
        [
            (
                "exporters.otlp/spare",
                "exporter `otlp/spare` is configured but not used by any pipeline; it will not start".to_owned()
            ),
            (
                "extensions.health_check",
                "extension `health_check` is configured but not used in `service.extensions`; it will not start"
                    .to_owned()
            ),
        ]
    );
    assert_eq!(warnings[0].location, Some(Location { line: 9, column: 3 }));
}

#[test]
fn service_extensions_must_be_configured() {
    let text = format!(
        "{}\n  extensions: [health_check, pprof]\n",
        with_pipeline(&format!("{COMPONENTS}extensions:\n  health_check:\n"), PIPELINE).trim_end()
    );
    let (path, _, message) = single_error(&text);
    assert_eq!(path, "service.extensions[1]");
    assert_eq!(message, "references extension `pprof`, which is not configured under `extensions`");
}

#[test]
fn components_bound_to_one_port_are_refused() {
    let components = "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 0.0.0.0:4317\n  otlp/local:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:4317\n      http:\n        endpoint: localhost:8888\n  otlp/unused:\n    protocols:\n      grpc:\n        endpoint: 0.0.0.0:4317\nexporters:\n  debug:\n";
    let pipeline = "      receivers: [otlp, otlp/local]\n      exporters: [debug]\n";
    let errors = load_err(&with_pipeline(components, pipeline));
    let found: Vec<(&str, Option<usize>, String)> =
        errors.iter().map(|e| (e.path.as_str(), e.location.map(|l| l.line), e.kind.to_string())).collect();
    assert_eq!(
        found,
        [
            (
                "receivers.otlp/local.protocols.grpc.endpoint",
                Some(9),
                "127.0.0.1:4317 is also bound by `receivers.otlp.protocols.grpc.endpoint` (0.0.0.0:4317); give one of them another port".to_owned()
            ),
            (
                // Not written: reported at `service`, the nearest key that is.
                "service.telemetry.metrics.readers",
                Some(19),
                "127.0.0.1:8888 is also bound by `receivers.otlp/local.protocols.http.endpoint` (127.0.0.1:8888); give one of them another port".to_owned()
            ),
        ]
    );
}

#[test]
fn extension_ports_count_when_the_extension_starts() {
    let components = format!("{COMPONENTS}extensions:\n  health_check:\n    endpoint: 0.0.0.0:4317\n");
    let mut text = with_pipeline(
        &components.replace("      grpc:\n", "      grpc:\n        endpoint: localhost:4317\n"),
        PIPELINE,
    );
    assert!(load(&text).is_ok(), "an extension that does not start binds nothing");
    text.push_str("  extensions: [health_check]\n");
    let (path, _, message) = single_error(&text);
    assert_eq!(path, "extensions.health_check.endpoint");
    assert!(message.starts_with("0.0.0.0:4317 is also bound by `receivers.otlp.protocols.grpc.endpoint`"), "{message}");
}

#[test]
fn component_checks_are_reported_under_the_component_path() {
    let text = with_pipeline(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        max_recv_msg_size_mib: 0\n      http:\n        endpoint: collector.internal:4318\nprocessors:\n  batch:\n    send_batch_size: 100\n    send_batch_max_size: 10\n  attributes:\n    actions:\n      - {key: a, action: delete}\n      - {key: b, action: insert}\nexporters:\n  debug:\n",
        "      receivers: [otlp]\n      processors: [attributes, batch]\n      exporters: [debug]\n",
    );
    let errors = load_err(&text);
    let found: Vec<(&str, Option<usize>, String)> =
        errors.iter().map(|e| (e.path.as_str(), e.location.map(|l| l.line), e.kind.to_string())).collect();
    assert_eq!(
        found,
        [
            ("receivers.otlp.protocols.grpc.max_recv_msg_size_mib", Some(5), "must be at least 1".to_owned()),
            (
                "receivers.otlp.protocols.http.endpoint",
                Some(7),
                "`collector.internal` is a host name; listen on an IP address (`0.0.0.0` for every interface) or `localhost`".to_owned()
            ),
            ("processors.batch.send_batch_max_size", Some(11), "must be 0 or at least `send_batch_size`".to_owned()),
            // `value` is not written: the error points at the action.
            ("processors.attributes.actions[1].value", Some(15), "`insert` needs a `value`".to_owned()),
        ]
    );
    assert!(errors.iter().all(|e| matches!(e.kind, ConfigErrorKind::Component { .. })));
}

#[test]
fn the_plugins_section_names_the_directory_and_refuses_unknown_keys() {
    let base = with_pipeline(COMPONENTS, PIPELINE);
    let (config, _) = load_ok(&format!("{base}plugins:\n  dir: /var/lib/spanpipe/plugins\n  settle: 1s\n"));
    assert_eq!(config.plugins.dir.as_deref(), Some(std::path::Path::new("/var/lib/spanpipe/plugins")));
    assert_eq!(config.plugins.settle.0, Duration::from_secs(1));
    assert_eq!(config.plugins.load_dir, None);
    let (config, _) = load_ok(&base);
    assert_eq!(config.plugins.dir, None, "no plugins section: no plugin directory");
    let (path, _, message) = single_error(&format!("{base}plugins:\n  directory: /tmp\n"));
    assert_eq!(path, "plugins.directory");
    assert!(message.contains("unknown key `directory`"), "{message}");
}

#[test]
fn service_settings_are_checked() {
    let base = with_pipeline(COMPONENTS, PIPELINE);
    let cases = [
        ("  cores: 0\n", "service.cores", "must be at least 1; leave `cores` out to use every core the process may use"),
        ("  cores: -2\n", "service.cores", "invalid value: integer `-2`, expected usize"),
        (
            "  shutdown_timeout: 0s\n",
            "service.shutdown_timeout",
            "must be more than 0s: shutdown needs time to drain queues and flush exporters",
        ),
        (
            "  telemetry:\n    metrics:\n      readers: []\n",
            "service.telemetry.metrics.readers",
            "no metric reader while `level` is not `none`: add a reader or set `level: none`",
        ),
        (
            "  telemetry:\n    metrics:\n      address: 0.0.0.0:8888\n      readers:\n        - pull: {exporter: {prometheus: {port: 9090}}}\n",
            "service.telemetry.metrics.address",
            "set either `address` or `readers`, not both",
        ),
        (
            "  telemetry:\n    metrics:\n      readers:\n        - periodic:\n            interval: 1000\n",
            "service.telemetry.metrics.readers[0].periodic",
            "unknown key `periodic`; valid keys here: `pull`",
        ),
        ("  health_log:\n    size: 100\n", "service.health_log.size", "100 is out of range: from 1024 bytes to 1 GiB"),
        ("  watchdog:\n    cpu: {high: 0.5, low: 0.7}\n", "service.watchdog.cpu.high", "need 0 < low (0.7) < high (0.5) <= 1"),
        ("  watchdog:\n    cpu: {steps: [1, 0.5, 0.5]}\n", "service.watchdog.cpu.steps", "[1.0, 0.5, 0.5]: must start at 1 and go down strictly to a floor above 0"),
        ("  watchdog:\n    memory: {soft_limit: 0.6}\n", "service.watchdog.memory.soft_limit", "need 0 < restore_below (0.7) < soft_limit (0.6) <= 1"),
        ("  watchdog:\n    memory: {retry_after: 0s}\n", "service.watchdog.memory.retry_after", "must be more than 0s"),
        ("  telemetry:\n    logs:\n      level: verbose\n", "service.telemetry.logs.level", "unknown value `verbose`; expected one of `debug`, `info`, `warn`, `error`"),
    ];
    for (extra, expected_path, expected_message) in cases {
        let (path, _, message) = single_error(&format!("{base}{extra}"));
        assert_eq!((path.as_str(), message.as_str()), (expected_path, expected_message), "{extra}");
    }
    let (config, _) = load_ok(&format!("{base}  telemetry:\n    logs:\n      level: WARN\n    metrics:\n      level: none\n      readers: []\n  cores: ~\n"));
    assert!(config.service.telemetry.metrics.endpoints().is_empty());
    assert_eq!(config.service.telemetry.logs.level, LogLevel::Warn);
}

#[test]
fn other_signals_are_refused_as_traces_only() {
    let text = format!(
        "{}    metrics/host:\n      receivers: [otlp]\n      exporters: [debug]\n",
        with_pipeline(COMPONENTS, PIPELINE)
    );
    let (path, line, message) = single_error(&text);
    assert_eq!((path.as_str(), line), ("service.pipelines.metrics/host", Some(16)));
    assert_eq!(
        message,
        "spanpipe handles traces only; remove the `metrics` pipeline or run it in an OpenTelemetry Collector"
    );

    let (path, _, message) =
        single_error(&format!("{}    trace:\n      receivers: [otlp]\n", with_pipeline(COMPONENTS, PIPELINE)));
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("service.pipelines.trace", "invalid pipeline id `trace`: write `traces` or `traces/<name>`")
    );
}

#[test]
fn connectors_are_refused_unless_empty() {
    let base = with_pipeline(COMPONENTS, PIPELINE);
    assert!(load(&format!("connectors:\n{base}")).is_ok());
    assert!(load(&format!("connectors: {{}}\n{base}")).is_ok());
    let (path, line, message) = single_error(&format!("connectors:\n  spanmetrics:\n  forward:\n{base}"));
    assert_eq!((path.as_str(), line), ("connectors", Some(1)));
    assert!(
        message.starts_with("connectors are not supported by spanpipe yet (found `spanmetrics`, `forward`)"),
        "{message}"
    );
}

#[test]
fn invalid_and_duplicate_component_ids_are_refused() {
    let text = with_pipeline(&COMPONENTS.replace("  batch:\n", "  batch/:\n  batch:\n  \"batch \":\n"), PIPELINE);
    let errors = load_err(&text);
    let found: Vec<(&str, String)> = errors.iter().map(|e| (e.path.as_str(), e.kind.to_string())).collect();
    assert_eq!(
        found,
        [
            ("processors.batch/", "invalid component id `batch/`: the name after `/` is empty".to_owned()),
            ("processors.batch ", "`batch` is configured twice in this section (as `batch` and `batch `)".to_owned()),
        ]
    );
}

#[test]
fn sections_of_the_wrong_shape_are_refused() {
    let (path, _, message) = single_error(&with_pipeline(
        &COMPONENTS.replace("processors:\n  batch:\n", "processors: [batch]\n"),
        "      receivers: [otlp]\n      exporters: [debug]\n",
    ));
    assert_eq!(path, "processors");
    assert_eq!(message, "expected a mapping of components by id (`type` or `type/name`), found a sequence");
    let (path, _, message) = single_error("just text\n");
    assert_eq!(path, "");
    assert_eq!(message, "expected a mapping of sections, found a string");
}

#[test]
fn every_error_is_reported_at_once_in_file_order() {
    let text = "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpiont: x\nprocessors:\n  batch:\n    send_batch_size: many\n  tail_sampling:\nexporters:\n  debug:\n    verbosity: loud\nservice:\n  cores: 0\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug, zipkin]\n    logs:\n      receivers: [otlp]\n";
    let errors = load(text).unwrap_err();
    let paths: Vec<&str> = errors.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "receivers.otlp.protocols.grpc.endpiont",
            "processors.batch.send_batch_size",
            "processors.tail_sampling",
            "exporters.debug.verbosity",
            "service.cores",
            "service.pipelines.traces.exporters[1]",
            "service.pipelines.logs",
        ]
    );
    let printed = errors.to_string();
    assert!(
        printed
            .starts_with("config: 7 errors\n  receivers.otlp.protocols.grpc.endpiont (line 5, column 9): unknown key"),
        "{printed}"
    );
    let error_lines = printed.lines().skip(1).filter(|line| !line.starts_with("  warning: ")).count();
    assert_eq!(error_lines, 7, "one line per error after the summary:\n{printed}");
    // `batch` and `tail_sampling` are in no pipeline, but both are already errors: no warning
    // repeats them.
    assert_eq!(errors.warnings, []);
}

#[test]
fn yaml_syntax_errors_carry_the_line() {
    let errors = load("receivers:\n  otlp:\n    protocols: {grpc: \n  bad\n").unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    assert!(matches!(errors.errors[0].kind, ConfigErrorKind::Syntax { .. }));
    assert!(errors.errors[0].location.is_some_and(|location| location.line >= 3), "{errors}");
    assert!(errors.to_string().contains("YAML syntax error"), "{errors}");
}

#[test]
fn a_missing_file_names_the_file() {
    let registry = registry();
    let path = fixture("does-not-exist.yaml");
    let errors = Loader::new(&registry).load_file(&path).unwrap_err();
    assert!(matches!(&errors.errors[0].kind, ConfigErrorKind::Read { file, .. } if *file == path));
    assert!(errors.to_string().starts_with(&format!(
        "{}: 1 error\n  cannot read config file {}",
        path.display(),
        path.display()
    )));
}

/// A `.jsonc` file: JSON with `//` and `/* */` comments, trailing commas and tab indentation
/// loads like the YAML it stands for, and its errors name the line in the `.jsonc` file.
#[test]
fn json_with_comments_loads_and_reports_lines_of_the_file() {
    let dir = std::env::temp_dir().join(format!("spanpipe-config-jsonc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = "{\n\t// OTLP in, batched, printed\n\t\"receivers\": {\"otlp\": {\"protocols\": {\"grpc\": null,},},},\n\t/* defaults */ \"processors\": {\"batch\": {\"send_batch_size\": 64}},\n\t\"exporters\": {\"debug\": null},\n\t\"service\": {\"pipelines\": {\"traces\": {\n\t\t\"receivers\": [\"otlp\"], \"processors\": [\"batch\"], \"exporters\": [\"debug\"],\n\t}}},\n}\n";
    let path = dir.join("spanpipe.jsonc");
    std::fs::write(&path, text).unwrap();
    let registry = registry();
    let (config, warnings) = Loader::new(&registry).load_file(&path).unwrap_or_else(|errors| panic!("{errors}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.processors.config::<BatchConfig>(&id("batch")).unwrap().send_batch_size, 64);
    assert_eq!(config.service.pipelines[&PipelineId::traces()].exporters, vec![id("debug")]);

    std::fs::write(&path, text.replace("\"send_batch_size\": 64", "\"send_batch_size\": \"many\"")).unwrap();
    let errors = Loader::new(&registry).load_file(&path).expect_err("a string is not a size").errors;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].path, "processors.batch.send_batch_size");
    assert_eq!(errors[0].location.map(|location| location.line), Some(4));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What a reload compares: a component's settings as written, so an edit anywhere in its section
/// marks it changed and a file that only moves it does not.
#[test]
fn unchanged_components_are_told_apart_from_changed_ones() {
    let minimal = std::fs::read_to_string(fixture("collector_minimal.yaml")).unwrap();
    let before = load_ok(&minimal).0;
    let edited = minimal.replace("  batch:\n", "  batch:\n    send_batch_size: 10\n");
    let after = load_ok(&edited).0;
    assert!(before.receivers.unchanged_in(&after.receivers, &id("otlp")));
    assert!(before.exporters.unchanged_in(&after.exporters, &id("debug")));
    assert!(!before.processors.unchanged_in(&after.processors, &id("batch")));
    assert!(!before.processors.unchanged_in(&after.processors, &id("batch/other")));
}
