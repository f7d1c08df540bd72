//! The `spanpipe` binary: `run` (the default) starts the collector, `validate` checks a config
//! without starting anything, `schema` prints the config's JSON Schema, `health` prints the
//! health log.
//!
//! A config is an OpenTelemetry Collector config; without `--config`, spanpipe runs its embedded
//! default (OTLP gRPC on 4317 and HTTP on 4318 → batch → debug).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use spanpipe_config::{Config, ConfigErrors, Loaded, Loader, LogEncoding, LogLevel, Warning, DEFAULT_CONFIG};
use spanpipe_runtime::{builtin_registry, RunningCollector, StartOptions};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "spanpipe", version, about = "A collector for distributed-tracing spans.")]
struct Cli {
    /// Config file (an OpenTelemetry Collector config, YAML or `.jsonc`); without it, the
    /// embedded default. `run` reloads it when it changes, on SIGHUP and on `POST /-/reload`.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Do not reload the config when its file changes (SIGHUP and `POST /-/reload` still do).
    #[arg(long, global = true)]
    no_watch_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the collector (the default command).
    Run,
    /// Check a config (schema and semantics) without starting anything.
    Validate,
    /// Print the JSON Schema of the config file.
    Schema,
    /// Print the health log: every self-healing action spanpipe took, oldest first.
    Health(HealthArgs),
}

#[derive(Debug, clap::Args)]
struct HealthArgs {
    /// The health log file; defaults to the config's `service.health_log.path`.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Only records from this long ago (`10m`, `1h30m`) or since this time (RFC 3339, UTC).
    #[arg(long)]
    since: Option<String>,
    /// Keep printing records as they are appended, until interrupted.
    #[arg(long)]
    follow: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(&cli) {
        Ok(code) => code,
        Err(error) => {
            // One line, no backtrace: a message for an operator. Causes are appended unless the
            // message already says them (spanpipe's errors name their cause in their own text).
            let mut line = error.to_string();
            for cause in error.chain().skip(1) {
                let cause = cause.to_string();
                if !line.contains(&cause) {
                    line = format!("{line}: {cause}");
                }
            }
            eprintln!("spanpipe: {line}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: &Cli) -> anyhow::Result<ExitCode> {
    let registry = builtin_registry().context("registering the built-in components")?;
    match cli.command.as_ref().unwrap_or(&Command::Run) {
        Command::Schema => {
            let schema = registry.json_schema();
            let mut text = serde_json::to_string_pretty(&schema).context("rendering the schema")?;
            text.push('\n');
            write_stdout(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate => match load(cli, &registry) {
            Ok(((config, warnings), source)) => {
                print_warnings(&warnings);
                // The checks that need the components themselves (routes to unlisted exporters,
                // attribute patterns) — pure, like the loader's: nothing is opened or bound.
                if let Err(errors) = spanpipe_runtime::CollectorPlan::check(&config) {
                    for error in errors {
                        eprintln!("{source}: {error}");
                    }
                    return Ok(ExitCode::FAILURE);
                }
                write_stdout(&format!("{source}: valid\n"))?;
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => {
                eprintln!("{errors}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Run => run(cli, &registry),
        Command::Health(args) => health(cli, &registry, args),
    }
}

/// How often `health --follow` looks for new records.
const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

fn health(cli: &Cli, registry: &spanpipe_config::ComponentRegistry, args: &HealthArgs) -> anyhow::Result<ExitCode> {
    let path = match &args.file {
        Some(path) => path.clone(),
        None => {
            let ((config, _), source) = match load(cli, registry) {
                Ok(loaded) => loaded,
                Err(errors) => {
                    eprintln!("{errors}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            match (config.service.health_log.path, &cli.config) {
                (Some(path), _) => path,
                (None, Some(file)) => spanpipe_runtime::collector::default_health_log_path(file),
                (None, None) => anyhow::bail!(
                    "{source} sets no `service.health_log.path` and has no file beside which the default log would be: give the log with --file"
                ),
            }
        }
    };
    let since = args.since.as_deref().map(since_unix_nano).transpose()?.unwrap_or(0);
    let reader = spanpipe_health::HealthLogReader::open(&path)?;
    let mut last = 0;
    for record in reader.records_since(since)? {
        last = record.sequence;
        write_stdout(&format!("{}\n", spanpipe_health::format_line(&record)))?;
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Until interrupted (SIGINT ends the process).
    loop {
        std::thread::sleep(FOLLOW_INTERVAL);
        // Reopened each time: the writer may have recreated the file (a new size).
        let reader = spanpipe_health::HealthLogReader::open(&path)?;
        for record in reader.records_after(last)? {
            last = record.sequence;
            write_stdout(&format!("{}\n", spanpipe_health::format_line(&record)))?;
        }
    }
}

/// `--since` as nanoseconds since the Unix epoch: a duration back from now, or a UTC time.
fn since_unix_nano(text: &str) -> anyhow::Result<u64> {
    let time = match spanpipe_config::GoDuration::parse(text) {
        Ok(ago) => std::time::SystemTime::now().checked_sub(ago.0).unwrap_or(std::time::UNIX_EPOCH),
        Err(_) => humantime::parse_rfc3339_weak(text).with_context(|| {
            format!("--since {text}: neither a duration (`10m`) nor a UTC time (`2026-12-02T10:00:00Z`)")
        })?,
    };
    let nanos = time.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    Ok(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Writes to standard output; a reader that went away (`spanpipe schema | head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(error).context("writing to standard output")
        }
        _ => Ok(()),
    }
}

/// The loaded config and a name for where it came from.
fn load(cli: &Cli, registry: &spanpipe_config::ComponentRegistry) -> Result<(Loaded, String), ConfigErrors> {
    let loader = Loader::new(registry);
    match &cli.config {
        Some(path) => loader.load_file(path).map(|loaded| (loaded, path.display().to_string())),
        None => loader.load_str(DEFAULT_CONFIG).map(|loaded| (loaded, "embedded default config".to_owned())),
    }
}

fn print_warnings(warnings: &[Warning]) {
    for warning in warnings {
        eprintln!("spanpipe: warning: {warning}");
    }
}

fn run(cli: &Cli, registry: &spanpipe_config::ComponentRegistry) -> anyhow::Result<ExitCode> {
    // Before the config is read: regions touched from here on are not made resident 2 MiB at a
    // time (the collector does this too, for embedders; by then the loader has allocated).
    spanpipe_runtime::hugepages::disable_transparent_huge_pages();
    let ((config, warnings), source) = match load(cli, registry) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    init_logging(&config);
    print_warnings(&warnings);
    let options = StartOptions {
        telemetry_address: telemetry_address(&config)?,
        config_file: cli.config.clone(),
        watch_config: (!cli.no_watch_config).then_some(CONFIG_WATCH_DEBOUNCE),
        ..StartOptions::default()
    };
    let collector = RunningCollector::start(&config, &options)?;
    tracing::info!(
        config = %source,
        cores = ?collector.cpus(),
        telemetry = ?collector.telemetry_address(),
        "spanpipe is running"
    );
    for receiver in collector.receivers() {
        for (protocol, address) in &receiver.listeners {
            tracing::info!(receiver = %receiver.id, protocol = protocol.as_str(), %address, "receiver listening");
        }
    }
    serve_until_stopped(&collector)?;
    tracing::info!("shutting down: no new requests; draining pipelines and exporters");
    let report = collector.shutdown();
    if report.dropped_while_running > 0 {
        tracing::warn!(
            spans = report.dropped_while_running,
            "exporters dropped spans while running (refused by the backend or retries exhausted); \
             see spanpipe_exporter_dropped_spans_total"
        );
    }
    if report.undelivered_spans > 0 {
        tracing::error!(spans = report.undelivered_spans, "shutdown finished with spans not delivered");
        return Ok(ExitCode::FAILURE);
    }
    tracing::info!("shutdown complete: nothing was left undelivered");
    Ok(ExitCode::SUCCESS)
}

/// How long the config file must stay unchanged after an edit before it is reloaded.
const CONFIG_WATCH_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(300);

/// Blocks until SIGTERM or SIGINT; reloads the config file on each SIGHUP (the outcome is logged
/// by the collector).
fn serve_until_stopped(collector: &RunningCollector) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]).context("installing signal handlers")?;
    for signal in signals.forever() {
        if signal != SIGHUP {
            break;
        }
        if let Ok(outcome) = collector.reload_config_file("sighup") {
            tracing::info!(revision = outcome.revision, hash = %outcome.hash, "SIGHUP: config reloaded");
        }
    }
    Ok(())
}

/// The first metrics endpoint of `service.telemetry.metrics`, resolved.
fn telemetry_address(config: &Config) -> anyhow::Result<Option<SocketAddr>> {
    let Some(endpoint) = config.service.telemetry.metrics.endpoints().into_iter().next() else { return Ok(None) };
    let host = if endpoint.host.is_empty() { "0.0.0.0" } else { endpoint.host.as_str() };
    let address = (host, endpoint.port)
        .to_socket_addrs()
        .with_context(|| format!("resolving service.telemetry.metrics.{} ({host}:{})", endpoint.path, endpoint.port))?
        .next()
        .with_context(|| format!("service.telemetry.metrics.{}: {host} resolves to no address", endpoint.path))?;
    Ok(Some(address))
}

fn init_logging(config: &Config) {
    let level = match config.service.telemetry.logs.level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match config.service.telemetry.logs.encoding {
        LogEncoding::Json => builder.json().init(),
        LogEncoding::Console => builder.init(),
    }
}
