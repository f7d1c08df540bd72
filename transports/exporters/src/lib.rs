//! # spanpipe-exporters
//!
//! The last stage of a pipeline: `otlp` (OTLP/gRPC), `otlphttp` (OTLP/HTTP), `zipkin` (Zipkin v2
//! JSON or protobuf over HTTP), `file`, `debug` and `blackhole`, with the OpenTelemetry Collector's component names, keys and defaults so that a
//! Collector config using them runs unchanged.
//!
//! ## Shape
//!
//! Builders are cheap, `Send + Sync` configuration; instances do the work. The runtime makes one
//! [`ExporterBuilder`] per configured exporter (validating the config, and for `file` starting the
//! writer thread), then calls [`ExporterBuilder::build`] once on every data-plane core, on that
//! core's glommio executor. Each [`Exporter`] instance is `!Send`: its queue, sender tasks,
//! connections and failover state belong to its core, shared with nothing. The runtime fans a
//! batch out to every exporter of its pipeline by cloning the [`SpanBatch`] (the bytes are shared,
//! not copied).
//!
//! ## Backpressure, not buffering
//!
//! [`Exporter::try_send`] never waits and never drops: when the bounded queue is full it hands the
//! batch back in [`SendError::Full`], and the receiver answers its client with the OTLP
//! specification's retryable status. Once accepted, a batch ends either delivered or counted in
//! [`ExporterStats`] under a [`DropReason`] — refused by the backend, retries exhausted, shutdown
//! deadline, unencodable, unwritable. [`Exporter::flush`] stops intake and delivers what it can by
//! a deadline, reporting the rest in a [`FlushReport`].
//!
//! ## Network exporters
//!
//! All three run the same engine (the private `network` module), each with its own protocol: how
//! a batch becomes a request and how an answer is read (`zipkin` differs from `otlphttp` in
//! nothing else). `num_consumers` sender tasks per core take batches from the queue; each batch is
//! encoded and compressed once and retried with exponential backoff and jitter ([`backoff`], the Collector's `retry_on_failure` semantics), never for non-retryable
//! answers, at least as long as the server asks (`Retry-After`, gRPC `RetryInfo`). With an
//! `endpoints` list, too many failures within a window (dropped connections included) move the
//! exporter to the next endpoint, and probes that keep succeeding for a while bring it back to the
//! primary ([`failover`]). The decisions are pure state machines with the clock and
//! random source as arguments, tested with property tests; the I/O loop only drives them.
//! Connections are hyper 1.x on glommio (`spanpipe_transports::rt`): HTTP/2 with keep-alive
//! PINGs for gRPC, a keep-alive pool of HTTP/1.1 connections for OTLP/HTTP and Zipkin, TCP
//! keep-alive and `TCP_NODELAY` on all. TLS follows the Collector's `configtls` keys and rules
//! (gRPC uses TLS unless `tls.insecure`; OTLP/HTTP and Zipkin for `https://` URLs): the configuration is loaded once per
//! exporter by its builder, and each core's connections run their handshakes on that core.

pub mod backoff;
mod blackhole;
mod client;
mod compression;
mod debug;
pub mod failover;
mod file;
mod http_post;
mod network;
mod otlp_grpc;
mod otlp_http;
pub mod queue;
mod settings;
mod stats;
mod zipkin;

use std::sync::Arc;
use std::time::{Duration, Instant};

use spanpipe_config::{ComponentConfig, FieldError};
use spanpipe_core::SpanBatch;
use spanpipe_health::HealthSink;
use spanpipe_transports::rt::ConnectOptions;

pub use blackhole::{BlackholeExporter, BlackholeExporterConfig};
pub use client::{ClientError, Endpoint, EndpointTls};
pub use compression::CompressionError;
pub use debug::{render_detailed, render_normal, DebugExporter, DebugExporterConfig, LogSampler, Summary, Verbosity};
pub use file::{
    backup_name, backups, encode_record, split_length_prefixed, FileCompression, FileExporter, FileExporterBuilder,
    FileExporterConfig, FileFormat, OutputFile, RecordError, RotationConfig, RotationPolicy, FILE_QUEUE_BATCHES,
};
pub use network::{EncodeError, ExportError};
pub use otlp_grpc::{OtlpExporterConfig, EXPORT_PATH};
pub use otlp_http::{HttpEncoding, OtlpHttpExporterConfig, TRACES_PATH};
pub use settings::{
    Compression, CompressionParams, FailoverConfig, KeepaliveConfig, QueueConfig, QueueSizer, RetryConfig,
    TlsClientConfig,
};
pub use stats::{DropReason, ExporterStats, StatsSnapshot, LATENCY_BUCKET_BOUNDS};
pub use zipkin::{ZipkinExporterConfig, ZipkinFormat, ZIPKIN_SPANS_PATH};

use crate::client::{HttpVersion, PoolSettings};
use crate::network::{NetworkExporter, NetworkSettings};
use crate::otlp_grpc::GrpcProtocol;
use crate::otlp_http::HttpProtocol;
use crate::settings::NetworkExporterConfig;
use crate::zipkin::ZipkinProtocol;

/// The exporter type names this crate implements, as configs spell them.
pub const EXPORTER_TYPES: [&str; 6] = ["otlp", "otlphttp", "zipkin", "file", "debug", "blackhole"];

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("spanpipe/", env!("CARGO_PKG_VERSION"));

/// TCP keep-alive idle time of exporter connections: Go's `net.Dialer` default, which the
/// Collector's clients inherit.
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);

/// Receive buffer of exporter connections. Responses are a few bytes; requests go the other way.
const CLIENT_READ_BUFFER: usize = 16 * 1024;

/// A batch the exporter did not take; the caller still owns it.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The queue is full: push back (HTTP 429/503, gRPC `UNAVAILABLE`/`RESOURCE_EXHAUSTED`).
    #[error("the exporter's sending queue is full")]
    Full(SpanBatch),
    /// The exporter is shutting down.
    #[error("the exporter is shutting down")]
    Closed(SpanBatch),
}

impl SendError {
    /// The batch that was not taken.
    #[must_use]
    pub fn into_batch(self) -> SpanBatch {
        match self {
            Self::Full(batch) | Self::Closed(batch) => batch,
        }
    }
}

/// What a flush could not deliver by its deadline (also counted as [`DropReason::Shutdown`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Batches given up.
    pub undelivered_batches: u64,
    /// Spans in them.
    pub undelivered_spans: u64,
}

/// Why an exporter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The config failed validation.
    #[error("exporter `{name}`: invalid config: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// The exporter's name in the config (`otlp/backend`).
        name: String,
        /// Every problem, each naming its key.
        errors: Vec<FieldError>,
    },
    /// The output file could not be opened or its directory created.
    #[error("exporter `{name}`: opening `{}`: {source}", path.display())]
    File {
        /// The exporter's name.
        name: String,
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The writer thread could not be started.
    #[error("exporter `{name}`: starting the writer thread: {source}")]
    Thread {
        /// The exporter's name.
        name: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The probe request could not be encoded.
    #[error("exporter `{name}`: {source}")]
    Encode {
        /// The exporter's name.
        name: String,
        /// What failed.
        source: EncodeError,
    },
    /// The `tls` block's certificates could not be loaded.
    #[error("exporter `{name}`: {source}")]
    Tls {
        /// The exporter's name.
        name: String,
        /// The key (`tls.ca_file`, …) and what is wrong with it.
        source: Box<spanpipe_transports::tls::TlsError>,
    },
}

#[derive(Clone, Debug)]
enum BuilderKind {
    Otlp { config: Arc<OtlpExporterConfig>, endpoints: Vec<Endpoint> },
    OtlpHttp { config: Arc<OtlpHttpExporterConfig>, endpoints: Vec<Endpoint> },
    Zipkin { config: Arc<ZipkinExporterConfig>, endpoints: Vec<Endpoint> },
    File(FileExporterBuilder),
    Debug(DebugExporterConfig),
    Blackhole,
}

/// A validated exporter config, ready to build one instance per core. Cheap to clone, `Send +
/// Sync`.
#[derive(Clone, Debug)]
pub struct ExporterBuilder {
    name: String,
    kind: BuilderKind,
}

fn validated<C: ComponentConfig>(name: &str, config: &C) -> Result<(), BuildError> {
    let errors = config.validate();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(BuildError::Invalid { name: name.to_owned(), errors })
    }
}

/// A network exporter's endpoints, once its whole config is valid, with their TLS loaded.
fn ready_endpoints<C: ComponentConfig + NetworkExporterConfig>(
    name: &str,
    config: &C,
) -> Result<Vec<Endpoint>, BuildError> {
    validated(name, config)?;
    let endpoints =
        config.parsed_endpoints().map_err(|errors| BuildError::Invalid { name: name.to_owned(), errors })?;
    config
        .secured_endpoints(endpoints)
        .map_err(|source| BuildError::Tls { name: name.to_owned(), source: Box::new(source) })
}

impl ExporterBuilder {
    /// An `otlp` (gRPC) exporter; its TLS certificates are loaded now.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] with every problem of the config, [`BuildError::Tls`] when a
    /// certificate cannot be loaded.
    pub fn otlp(name: &str, config: &OtlpExporterConfig) -> Result<Self, BuildError> {
        let endpoints = ready_endpoints(name, config)?;
        Ok(Self { name: name.to_owned(), kind: BuilderKind::Otlp { config: Arc::new(config.clone()), endpoints } })
    }

    /// An `otlphttp` exporter; its TLS certificates are loaded now.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] with every problem of the config, [`BuildError::Tls`] when a
    /// certificate cannot be loaded.
    pub fn otlp_http(name: &str, config: &OtlpHttpExporterConfig) -> Result<Self, BuildError> {
        let endpoints = ready_endpoints(name, config)?;
        HttpProtocol::new(config).map_err(|source| BuildError::Encode { name: name.to_owned(), source })?;
        Ok(Self { name: name.to_owned(), kind: BuilderKind::OtlpHttp { config: Arc::new(config.clone()), endpoints } })
    }

    /// A `zipkin` exporter; its TLS certificates are loaded now.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] with every problem of the config, [`BuildError::Tls`] when a
    /// certificate cannot be loaded.
    pub fn zipkin(name: &str, config: &ZipkinExporterConfig) -> Result<Self, BuildError> {
        let endpoints = ready_endpoints(name, config)?;
        ZipkinProtocol::new(config).map_err(|source| BuildError::Encode { name: name.to_owned(), source })?;
        Ok(Self { name: name.to_owned(), kind: BuilderKind::Zipkin { config: Arc::new(config.clone()), endpoints } })
    }

    /// A `file` exporter: opens the file and starts its writer thread now.
    ///
    /// # Errors
    /// An invalid config, or the file or thread could not be set up.
    pub fn file(name: &str, config: &FileExporterConfig) -> Result<Self, BuildError> {
        Ok(Self { name: name.to_owned(), kind: BuilderKind::File(FileExporterBuilder::start(name, config)?) })
    }

    /// A `debug` exporter.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] with every problem of the config.
    pub fn debug(name: &str, config: &DebugExporterConfig) -> Result<Self, BuildError> {
        validated(name, config)?;
        Ok(Self { name: name.to_owned(), kind: BuilderKind::Debug(config.clone()) })
    }

    /// A `blackhole` exporter.
    #[must_use]
    pub fn blackhole(name: &str) -> Self {
        Self { name: name.to_owned(), kind: BuilderKind::Blackhole }
    }

    /// The exporter's name in the config.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The instance for the current core. Network exporters start their sender tasks here, so
    /// this must run on the core's glommio executor.
    ///
    /// # Errors
    /// [`BuildError::Encode`] if the `otlphttp` probe cannot be encoded (compression failing).
    pub fn build(&self) -> Result<Exporter, BuildError> {
        self.build_reporting_to(None)
    }

    /// [`ExporterBuilder::build`], with endpoint failovers and failbacks recorded in `health`.
    ///
    /// # Errors
    /// As [`ExporterBuilder::build`].
    pub fn build_reporting_to(&self, health: Option<Arc<dyn HealthSink>>) -> Result<Exporter, BuildError> {
        let stats = Arc::new(ExporterStats::new());
        let kind = match &self.kind {
            BuilderKind::Otlp { config, endpoints } => {
                let settings = network_settings(&self.name, endpoints, config.as_ref(), &health);
                ExporterKind::Otlp(NetworkExporter::start(settings, GrpcProtocol::new(config), stats))
            }
            BuilderKind::OtlpHttp { config, endpoints } => {
                let protocol = HttpProtocol::new(config)
                    .map_err(|source| BuildError::Encode { name: self.name.clone(), source })?;
                let settings = network_settings(&self.name, endpoints, config.as_ref(), &health);
                ExporterKind::OtlpHttp(NetworkExporter::start(settings, protocol, stats))
            }
            BuilderKind::Zipkin { config, endpoints } => {
                let protocol = ZipkinProtocol::new(config)
                    .map_err(|source| BuildError::Encode { name: self.name.clone(), source })?;
                let settings = network_settings(&self.name, endpoints, config.as_ref(), &health);
                ExporterKind::Zipkin(NetworkExporter::start(settings, protocol, stats))
            }
            BuilderKind::File(builder) => ExporterKind::File(builder.instance()),
            BuilderKind::Debug(config) => ExporterKind::Debug(DebugExporter::new(&self.name, config)),
            BuilderKind::Blackhole => ExporterKind::Blackhole(BlackholeExporter::new()),
        };
        Ok(Exporter { name: self.name.clone(), kind })
    }
}

/// The engine's settings for a network exporter: its endpoints, and the connection pool, timeout,
/// retries, queue and failover of its config.
fn network_settings(
    name: &str,
    endpoints: &[Endpoint],
    config: &impl NetworkExporterConfig,
    health: &Option<Arc<dyn HealthSink>>,
) -> NetworkSettings {
    let blocks = config.client_blocks();
    NetworkSettings {
        name: name.to_owned(),
        endpoints: endpoints.to_vec(),
        pool: config.pool(),
        timeout: blocks.timeout.0,
        retry: blocks.retry_on_failure.clone(),
        queue: blocks.sending_queue.clone(),
        failover: blocks.failover.clone(),
        health: health.clone(),
    }
}

/// The pool of an HTTP/1.1 exporter (HTTP/2 where TLS's ALPN selects it), from the Collector's
/// `confighttp` client keys.
pub(crate) fn http1_pool(
    timeout: Duration,
    idle_conn_timeout: Duration,
    max_idle_conns: usize,
    disable_keep_alives: bool,
) -> PoolSettings {
    PoolSettings {
        version: HttpVersion::Http1,
        connect: connect_options(timeout),
        keepalive: None,
        idle_timeout: idle_conn_timeout,
        max_idle: max_idle_conns,
        reuse: !disable_keep_alives,
    }
}

pub(crate) fn connect_options(timeout: Duration) -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Some(timeout),
        read_buffer_size: CLIENT_READ_BUFFER,
        nodelay: true,
        tcp_keepalive: Some(TCP_KEEPALIVE),
    }
}

#[derive(Debug)]
enum ExporterKind {
    Otlp(NetworkExporter<GrpcProtocol>),
    OtlpHttp(NetworkExporter<HttpProtocol>),
    Zipkin(NetworkExporter<ZipkinProtocol>),
    File(FileExporter),
    Debug(DebugExporter),
    Blackhole(BlackholeExporter),
}

/// One core's instance of an exporter. `!Send`: it lives and works on the core that built it.
#[derive(Debug)]
pub struct Exporter {
    name: String,
    kind: ExporterKind,
}

impl Exporter {
    /// The exporter's name in the config.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes `batch` without waiting: queued for the network and file exporters, handled at once
    /// by `debug` and `blackhole`.
    ///
    /// # Errors
    /// [`SendError::Full`] when there is no room (push back), [`SendError::Closed`] after
    /// shutdown began. The error holds the batch.
    pub fn try_send(&self, batch: SpanBatch) -> Result<(), SendError> {
        match &self.kind {
            ExporterKind::Otlp(exporter) => exporter.try_send(batch),
            ExporterKind::OtlpHttp(exporter) => exporter.try_send(batch),
            ExporterKind::Zipkin(exporter) => exporter.try_send(batch),
            ExporterKind::File(exporter) => exporter.try_send(batch),
            ExporterKind::Debug(exporter) => {
                exporter.export(&batch);
                Ok(())
            }
            ExporterKind::Blackhole(exporter) => {
                exporter.export(&batch);
                Ok(())
            }
        }
    }

    /// Takes `batch`, waiting while the queue is full. For exporters configured with
    /// `sending_queue.block_on_overflow` (see [`Self::blocks_on_overflow`]).
    ///
    /// # Errors
    /// [`SendError::Closed`] after shutdown began.
    pub async fn send(&self, batch: SpanBatch) -> Result<(), SendError> {
        match &self.kind {
            ExporterKind::Otlp(exporter) => exporter.send(batch).await,
            ExporterKind::OtlpHttp(exporter) => exporter.send(batch).await,
            ExporterKind::Zipkin(exporter) => exporter.send(batch).await,
            ExporterKind::File(exporter) => exporter.send(batch).await,
            ExporterKind::Debug(_) | ExporterKind::Blackhole(_) => self.try_send(batch),
        }
    }

    /// Whether the config asks callers to wait for room rather than be refused.
    #[must_use]
    pub fn blocks_on_overflow(&self) -> bool {
        match &self.kind {
            ExporterKind::Otlp(exporter) => exporter.blocks_on_overflow(),
            ExporterKind::OtlpHttp(exporter) => exporter.blocks_on_overflow(),
            ExporterKind::Zipkin(exporter) => exporter.blocks_on_overflow(),
            ExporterKind::File(_) | ExporterKind::Debug(_) | ExporterKind::Blackhole(_) => false,
        }
    }

    /// For an exporter that blocks on overflow, a listener woken when room may have been made in
    /// its queue; `None` for the others (callers are refused instead of waiting).
    #[must_use]
    pub fn listen_for_room(&self) -> Option<event_listener::EventListener> {
        match &self.kind {
            ExporterKind::Otlp(exporter) if exporter.blocks_on_overflow() => Some(exporter.listen_for_room()),
            ExporterKind::OtlpHttp(exporter) if exporter.blocks_on_overflow() => Some(exporter.listen_for_room()),
            ExporterKind::Zipkin(exporter) if exporter.blocks_on_overflow() => Some(exporter.listen_for_room()),
            _ => None,
        }
    }

    /// For network exporters, the endpoint requests go to now (0 is the primary).
    #[must_use]
    pub fn active_endpoint(&self) -> Option<usize> {
        match &self.kind {
            ExporterKind::Otlp(exporter) => Some(exporter.active_endpoint()),
            ExporterKind::OtlpHttp(exporter) => Some(exporter.active_endpoint()),
            ExporterKind::Zipkin(exporter) => Some(exporter.active_endpoint()),
            ExporterKind::File(_) | ExporterKind::Debug(_) | ExporterKind::Blackhole(_) => None,
        }
    }

    /// Stops taking batches and gives back every batch not yet delivered — queued, or being
    /// retried — so that an exporter replacing this one (a config reload) sends them. An
    /// attempt under way is let finish first (at most the exporter's `timeout`). The file
    /// exporter's queue belongs to its writer thread and is written out by [`Self::flush`]
    /// instead; `debug` and `blackhole` hold nothing.
    pub async fn hand_over(&self) -> Vec<SpanBatch> {
        match &self.kind {
            ExporterKind::Otlp(exporter) => exporter.hand_over().await,
            ExporterKind::OtlpHttp(exporter) => exporter.hand_over().await,
            ExporterKind::Zipkin(exporter) => exporter.hand_over().await,
            ExporterKind::File(_) | ExporterKind::Debug(_) | ExporterKind::Blackhole(_) => Vec::new(),
        }
    }

    /// Stops taking batches and delivers what was taken until `deadline`; what could not be
    /// delivered is reported (and counted as dropped for [`DropReason::Shutdown`]).
    pub async fn flush(&self, deadline: Instant) -> FlushReport {
        match &self.kind {
            ExporterKind::Otlp(exporter) => exporter.flush(deadline).await,
            ExporterKind::OtlpHttp(exporter) => exporter.flush(deadline).await,
            ExporterKind::Zipkin(exporter) => exporter.flush(deadline).await,
            ExporterKind::File(exporter) => exporter.flush(deadline).await,
            ExporterKind::Debug(_) | ExporterKind::Blackhole(_) => FlushReport::default(),
        }
    }

    /// This instance's counters; the runtime keeps the `Arc` and sums snapshots of all cores.
    #[must_use]
    pub fn stats(&self) -> &Arc<ExporterStats> {
        match &self.kind {
            ExporterKind::Otlp(exporter) => exporter.stats(),
            ExporterKind::OtlpHttp(exporter) => exporter.stats(),
            ExporterKind::Zipkin(exporter) => exporter.stats(),
            ExporterKind::File(exporter) => exporter.stats(),
            ExporterKind::Debug(exporter) => exporter.stats(),
            ExporterKind::Blackhole(exporter) => exporter.stats(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Collector `otlp` exporter block, as the YAML loader hands it over.
    const COLLECTOR_OTLP: &str = r#"{
        "endpoint": "collector.internal:4317",
        "tls": {"insecure": true},
        "compression": "zstd",
        "timeout": "10s",
        "headers": {"x-api-key": "secret"},
        "keepalive": {"time": "30s", "timeout": "5s", "permit_without_stream": true},
        "retry_on_failure": {"enabled": true, "initial_interval": "1s", "max_interval": "10s", "max_elapsed_time": "1m"},
        "sending_queue": {"enabled": true, "num_consumers": 4, "queue_size": 5000, "sizer": "items"}
    }"#;

    #[test]
    fn collector_configs_load_unchanged_and_unknown_keys_are_named() {
        let config: OtlpExporterConfig = serde_json::from_str(COLLECTOR_OTLP).unwrap();
        assert_eq!(config.validate(), []);
        assert_eq!(config.timeout.0, Duration::from_secs(10));
        assert_eq!(config.sending_queue.sizer, QueueSizer::Items);
        assert_eq!(config.retry_on_failure.multiplier, 1.5, "unset keys keep the Collector's defaults");

        let unknown = serde_json::from_str::<OtlpExporterConfig>(r#"{"endpoint": "a:1", "balancer_name": "x"}"#);
        assert!(unknown.unwrap_err().to_string().contains("balancer_name"));
        let unknown_nested =
            serde_json::from_str::<OtlpHttpExporterConfig>(r#"{"sending_queue": {"storage": "file_storage"}}"#);
        assert!(unknown_nested.unwrap_err().to_string().contains("storage"));
    }

    #[test]
    fn defaults_are_the_collectors() {
        let otlp = OtlpExporterConfig::default();
        assert_eq!((otlp.compression, otlp.timeout.0), (Compression::Gzip, Duration::from_secs(5)));
        let http = OtlpHttpExporterConfig::default();
        assert_eq!((http.encoding, http.timeout.0), (HttpEncoding::Proto, Duration::from_secs(30)));
        let queue = QueueConfig::default();
        assert_eq!((queue.enabled, queue.num_consumers, queue.queue_size), (true, 10, 1000));
        let retry = RetryConfig::default();
        assert_eq!(
            (retry.initial_interval.0, retry.max_interval.0, retry.max_elapsed_time.0),
            (Duration::from_secs(5), Duration::from_secs(30), Duration::from_secs(300))
        );
        let debug = DebugExporterConfig::default();
        assert_eq!((debug.verbosity, debug.sampling_initial, debug.sampling_thereafter), (Verbosity::Basic, 2, 1));
        let rotation = RotationConfig::default();
        assert_eq!((rotation.max_megabytes, rotation.max_days, rotation.max_backups), (100, 0, 100));
        assert_eq!(FileExporterConfig::default().flush_interval.0, Duration::from_secs(1));
    }

    #[test]
    fn every_config_has_a_json_schema_that_denies_unknown_keys() {
        let schemas = [
            schemars::schema_for!(OtlpExporterConfig),
            schemars::schema_for!(OtlpHttpExporterConfig),
            schemars::schema_for!(ZipkinExporterConfig),
            schemars::schema_for!(FileExporterConfig),
            schemars::schema_for!(DebugExporterConfig),
            schemars::schema_for!(BlackholeExporterConfig),
        ];
        for schema in schemas {
            let value = schema.as_value();
            assert_eq!(value["additionalProperties"], serde_json::Value::Bool(false), "{value}");
        }
    }

    #[test]
    fn invalid_configs_are_refused_with_every_problem() {
        let config = OtlpExporterConfig { timeout: spanpipe_config::GoDuration::from_secs(0), ..Default::default() };
        let error = ExporterBuilder::otlp("otlp/backend", &config).unwrap_err();
        let BuildError::Invalid { name, errors } = &error else { panic!("{error}") };
        assert_eq!(name, "otlp/backend");
        let paths: Vec<_> = errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(paths, ["endpoint", "timeout"]);
        assert!(error.to_string().starts_with("exporter `otlp/backend`: invalid config: endpoint: "));
    }
}
