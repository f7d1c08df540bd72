//! Config blocks the network exporters (`otlp`, `otlphttp`, `zipkin`) share, with the
//! OpenTelemetry Collector's keys and defaults (`configretry.BackOffConfig`, `exporterhelper` queue
//! config, `configgrpc` keepalive, `configtls`, `configcompression`), plus spanpipe's `failover`
//! block; and [`NetworkExporterConfig`], which checks and loads them the same way for all three.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::{FieldError, GoDuration};
use spanpipe_transports::tls::{TlsError, ALPN_H2, ALPN_HTTP1};

use crate::client::{secure_endpoints, Endpoint, PoolSettings, TlsRule};

/// The config of an exporter built on the network engine (`crate::network`): where it sends, and
/// the client blocks every such exporter has. Their checks and the loading of their endpoints are
/// written once, here; each exporter adds only what is its own (the `otlp` exporter's
/// `keepalive`, for one).
pub(crate) trait NetworkExporterConfig {
    /// The endpoints in failover order, or the errors that name the bad keys.
    fn parsed_endpoints(&self) -> Result<Vec<Endpoint>, Vec<FieldError>>;

    /// The blocks every network exporter has.
    fn client_blocks(&self) -> ClientBlocks<'_>;

    /// The connection pool its keys ask for.
    fn pool(&self) -> PoolSettings;

    /// `endpoints` with their TLS, loaded from the `tls` block now (certificate files are read).
    /// This is HTTP's rule, which the `otlphttp` and `zipkin` exporters follow: the URL's scheme
    /// decides, and ALPN offers HTTP/2 then HTTP/1.1.
    ///
    /// # Errors
    /// [`TlsError`] naming the key or file that cannot be used.
    fn secured_endpoints(&self, endpoints: Vec<Endpoint>) -> Result<Vec<Endpoint>, TlsError> {
        secure_endpoints(endpoints, self.client_blocks().tls, TlsRule::ByScheme, &[ALPN_H2, ALPN_HTTP1])
    }

    /// Every problem of the endpoints and of the shared blocks, each under its key.
    fn network_errors(&self) -> Vec<FieldError> {
        let mut errors = self.parsed_endpoints().err().unwrap_or_default();
        let blocks = self.client_blocks();
        validate_tls(blocks.tls, &mut errors);
        validate_timeout(blocks.timeout, &mut errors);
        spanpipe_transports::config_headers::validate("headers", blocks.headers, &mut errors);
        blocks.compression_params.validate(blocks.compression, &mut errors);
        blocks.retry_on_failure.validate(&mut errors);
        blocks.sending_queue.validate(&mut errors);
        blocks.failover.validate(&mut errors);
        errors
    }
}

/// Borrowed views of the blocks [`NetworkExporterConfig`] checks.
pub(crate) struct ClientBlocks<'a> {
    pub(crate) tls: &'a TlsClientConfig,
    pub(crate) timeout: GoDuration,
    pub(crate) headers: &'a BTreeMap<String, String>,
    pub(crate) compression: Compression,
    pub(crate) compression_params: &'a CompressionParams,
    pub(crate) retry_on_failure: &'a RetryConfig,
    pub(crate) sending_queue: &'a QueueConfig,
    pub(crate) failover: &'a FailoverConfig,
}

/// [`ClientBlocks`] of a config whose blocks have the Collector's key names as field names, as all
/// of them do.
macro_rules! client_blocks {
    ($config:expr) => {
        $crate::settings::ClientBlocks {
            tls: &$config.tls,
            timeout: $config.timeout,
            headers: &$config.headers,
            compression: $config.compression,
            compression_params: &$config.compression_params,
            retry_on_failure: &$config.retry_on_failure,
            sending_queue: &$config.sending_queue,
            failover: &$config.failover,
        }
    };
}
pub(crate) use client_blocks;

/// The keys of spanpipe's `endpoints` failover list, `endpoints[0]` on, with their texts.
pub(crate) fn listed_endpoints(endpoints: &[String]) -> impl Iterator<Item = (String, &str)> {
    endpoints.iter().enumerate().map(|(i, text)| (format!("endpoints[{i}]"), text.as_str()))
}

/// Parses each keyed endpoint with `parse`, naming a bad one by its key. `errors` holds what was
/// found wrong before (conflicting keys, say); the endpoints come back only when there is none.
pub(crate) fn parse_keyed_endpoints<T>(
    keyed: impl IntoIterator<Item = (String, T)>,
    parse: impl Fn(T) -> Result<Endpoint, String>,
    mut errors: Vec<FieldError>,
) -> Result<Vec<Endpoint>, Vec<FieldError>> {
    let mut endpoints = Vec::new();
    for (path, endpoint) in keyed {
        match parse(endpoint) {
            Ok(endpoint) => endpoints.push(endpoint),
            Err(message) => errors.push(FieldError::new(path, message)),
        }
    }
    if errors.is_empty() {
        Ok(endpoints)
    } else {
        Err(errors)
    }
}

/// `retry_on_failure`: exponential backoff between attempts, as the Collector's `configretry`.
///
/// The n-th wait is drawn uniformly from `interval × [1 − randomization_factor, 1 +
/// randomization_factor]`, where `interval` starts at `initial_interval` and is multiplied by
/// `multiplier` after each attempt up to `max_interval`. How this maps to "full jitter": with
/// `randomization_factor: 1` the wait is uniform over `[0, 2 × interval]` — full jitter around the
/// same mean as the un-jittered schedule; the default 0.5 is the Collector's "equal jitter".
/// A delay the server asks for (HTTP `Retry-After`, gRPC `RetryInfo`) replaces a shorter drawn
/// wait, never a longer one.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Whether failed attempts with a retryable answer are retried. Defaults to true.
    pub enabled: bool,
    /// Wait after the first failure. Defaults to 5s.
    pub initial_interval: GoDuration,
    /// How far each wait is randomised around the current interval, as a fraction in `[0, 1]`.
    /// Defaults to 0.5.
    pub randomization_factor: f64,
    /// Factor the interval grows by after each attempt. Defaults to 1.5.
    pub multiplier: f64,
    /// Upper bound of the interval (before randomisation). Defaults to 30s.
    pub max_interval: GoDuration,
    /// Time after which a batch is given up; `0` retries forever. Defaults to 300s.
    pub max_elapsed_time: GoDuration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_interval: GoDuration::from_secs(5),
            randomization_factor: 0.5,
            multiplier: 1.5,
            max_interval: GoDuration::from_secs(30),
            max_elapsed_time: GoDuration::from_secs(300),
        }
    }
}

impl RetryConfig {
    /// The Collector's checks: a factor within `[0, 1]` and a positive multiplier.
    pub(crate) fn validate(&self, errors: &mut Vec<FieldError>) {
        if !self.enabled {
            return;
        }
        if !(0.0..=1.0).contains(&self.randomization_factor) {
            errors.push(FieldError::new(
                "retry_on_failure.randomization_factor",
                format!("must be within [0, 1], got {}", self.randomization_factor),
            ));
        }
        if !(self.multiplier > 0.0 && self.multiplier.is_finite()) {
            errors.push(FieldError::new(
                "retry_on_failure.multiplier",
                format!("must be a positive number, got {}", self.multiplier),
            ));
        }
    }
}

/// How `sending_queue.queue_size` is measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueSizer {
    /// Batches (requests), whatever their size: the Collector's default.
    #[default]
    Requests,
    /// Spans.
    Items,
    /// OTLP protobuf bytes of the batches.
    Bytes,
}

/// `sending_queue`: the bounded queue between the pipeline and the senders, as the Collector's
/// `exporterhelper` queue.
///
/// spanpipe never drops a batch because this queue is full: `try_send` refuses it and the caller
/// (the receiver) answers its client with the OTLP spec's retryable "try later" status. A batch
/// larger than the whole queue is accepted when the queue is empty, so it can still make progress;
/// the Collector would refuse it forever.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Whether batches wait in a queue. When false, a batch is accepted only while one of the
    /// `num_consumers` senders is idle, and nothing waits. Defaults to true.
    pub enabled: bool,
    /// Senders that take batches from the queue and export them concurrently (per core).
    /// Defaults to 10.
    pub num_consumers: usize,
    /// Capacity of the queue per core, in units of `sizer`. Defaults to 1000.
    pub queue_size: u64,
    /// Unit of `queue_size`: `requests` (batches), `items` (spans) or `bytes`. Defaults to
    /// requests.
    pub sizer: QueueSizer,
    /// Whether a caller that may wait (see `Exporter::send`) waits for room instead of being
    /// refused at once. `blocking` is read as an alias, as older Collector configs spell it.
    /// Defaults to false.
    #[serde(alias = "blocking")]
    pub block_on_overflow: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            num_consumers: 10,
            queue_size: 1000,
            sizer: QueueSizer::Requests,
            block_on_overflow: false,
        }
    }
}

impl QueueConfig {
    pub(crate) fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.num_consumers == 0 {
            errors.push(FieldError::new("sending_queue.num_consumers", "must be at least 1"));
        }
        if self.enabled && self.queue_size == 0 {
            errors.push(FieldError::new("sending_queue.queue_size", "must be at least 1 when the queue is enabled"));
        }
    }
}

/// `keepalive`: HTTP/2 PING frames on an otherwise quiet connection, as grpc-go's
/// `keepalive.ClientParameters` that the Collector's gRPC client config exposes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveConfig {
    /// Idle time after which a PING is sent. Defaults to 10s.
    pub time: GoDuration,
    /// Time to wait for the PING's acknowledgement before the connection is closed. Defaults to
    /// 10s.
    pub timeout: GoDuration,
    /// Whether PINGs are also sent while no request is in flight. Defaults to false.
    pub permit_without_stream: bool,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        Self { time: GoDuration::from_secs(10), timeout: GoDuration::from_secs(10), permit_without_stream: false }
    }
}

impl KeepaliveConfig {
    pub(crate) fn validate(&self, errors: &mut Vec<FieldError>) {
        for (key, value) in [("keepalive.time", self.time), ("keepalive.timeout", self.timeout)] {
            if value.0.is_zero() {
                errors.push(FieldError::new(key, "must be greater than zero"));
            }
        }
    }
}

/// `tls`: the Collector's `configtls` client block, shared with the receivers' server block in
/// `spanpipe_transports::tls`, where its keys and loading live.
pub use spanpipe_transports::tls::TlsClientConfig;

/// The `tls` block's own checks, under `tls.`.
pub(crate) fn validate_tls(tls: &TlsClientConfig, errors: &mut Vec<FieldError>) {
    errors
        .extend(tls.validate().into_iter().map(|error| FieldError::new(format!("tls.{}", error.path), error.message)));
}

/// Compression of request bodies (`compression`), as the Collector's `configcompression` names
/// it. `none` and the empty string both mean uncompressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    #[serde(alias = "")]
    None,
    /// gzip (RFC 1952).
    #[default]
    Gzip,
    /// Zstandard (RFC 8878).
    Zstd,
}

impl Compression {
    /// The name in `grpc-encoding` and HTTP `Content-Encoding`.
    #[must_use]
    pub fn encoding_name(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Gzip => Some("gzip"),
            Self::Zstd => Some("zstd"),
        }
    }
}

/// `compression_params`: the level of the chosen compression, as the Collector's HTTP client
/// config spells it (also accepted by spanpipe's `otlp` gRPC exporter, where the Collector has no
/// such key).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionParams {
    /// gzip: 1 (fastest) to 9 (smallest); zstd: 1 to 22. `0` picks the algorithm's default (gzip
    /// 6, zstd 3). Lower levels cost much less CPU per span for somewhat larger requests.
    /// Defaults to 0.
    pub level: i32,
}

impl CompressionParams {
    pub(crate) fn validate(&self, compression: Compression, errors: &mut Vec<FieldError>) {
        let range = match compression {
            Compression::None => return,
            Compression::Gzip => 0..=9,
            Compression::Zstd => 0..=22,
        };
        if !range.contains(&self.level) {
            errors.push(FieldError::new(
                "compression_params.level",
                format!("must be within {}..={} for {compression:?}, got {}", range.start(), range.end(), self.level),
            ));
        }
    }
}

/// `failover` (spanpipe's own): when to leave the active endpoint of `endpoints` for the next one,
/// and when to return to the primary (the first). See `spanpipe_exporters::failover` for the rules
/// and why.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FailoverConfig {
    /// Retryable failures of the active endpoint (error statuses the OTLP specification calls
    /// retryable, timeouts, refused or dropped connections) within any `window` after which the
    /// exporter switches to the next endpoint. Successful requests in between do not reset the
    /// count, so an endpoint that keeps dropping connections is left even while some requests get
    /// through. Defaults to 6 (with the default window: more than 5 failures a minute).
    pub failures: u32,
    /// The sliding window `failures` are counted in. Defaults to 1m.
    pub window: GoDuration,
    /// While away from the primary, how often an empty export request probes it. Defaults to 5s.
    pub probe_interval: GoDuration,
    /// How long probes of the primary must keep succeeding, without a failed one, before the
    /// exporter returns to it; a failed probe starts the period over. Takes at least two probes
    /// whatever its value. Defaults to 30s.
    pub healthy_for: GoDuration,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            failures: 6,
            window: GoDuration::from_secs(60),
            probe_interval: GoDuration::from_secs(5),
            healthy_for: GoDuration::from_secs(30),
        }
    }
}

impl FailoverConfig {
    pub(crate) fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.failures == 0 {
            errors.push(FieldError::new("failover.failures", "must be at least 1"));
        }
        for (key, value) in [
            ("failover.window", self.window),
            ("failover.probe_interval", self.probe_interval),
            ("failover.healthy_for", self.healthy_for),
        ] {
            if value.0.is_zero() {
                errors.push(FieldError::new(key, "must be greater than zero"));
            }
        }
    }
}

/// `timeout` must leave room for a request.
pub(crate) fn validate_timeout(timeout: GoDuration, errors: &mut Vec<FieldError>) {
    if timeout.0 == Duration::ZERO {
        errors.push(FieldError::new("timeout", "must be greater than zero"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(check: impl FnOnce(&mut Vec<FieldError>)) -> Vec<String> {
        let mut errors = Vec::new();
        check(&mut errors);
        errors.into_iter().map(|error| error.path).collect()
    }

    #[test]
    fn retry_refuses_factor_outside_unit_interval_and_non_positive_multiplier() {
        let config = RetryConfig { randomization_factor: 1.5, multiplier: 0.0, ..RetryConfig::default() };
        assert_eq!(
            errors_of(|errors| config.validate(errors)),
            ["retry_on_failure.randomization_factor", "retry_on_failure.multiplier"]
        );
        let disabled = RetryConfig { enabled: false, ..config };
        assert!(errors_of(|errors| disabled.validate(errors)).is_empty());
    }

    #[test]
    fn queue_needs_consumers_and_room() {
        let config = QueueConfig { num_consumers: 0, queue_size: 0, ..QueueConfig::default() };
        assert_eq!(
            errors_of(|errors| config.validate(errors)),
            ["sending_queue.num_consumers", "sending_queue.queue_size"]
        );
    }

    #[test]
    fn compression_level_is_checked_per_algorithm() {
        let params = CompressionParams { level: 12 };
        assert_eq!(errors_of(|errors| params.validate(Compression::Gzip, errors)), ["compression_params.level"]);
        assert!(errors_of(|errors| params.validate(Compression::Zstd, errors)).is_empty());
        assert!(errors_of(|errors| params.validate(Compression::None, errors)).is_empty());
    }

    #[test]
    fn failover_durations_must_be_positive_and_failures_at_least_one() {
        let config = FailoverConfig {
            failures: 0,
            window: GoDuration::from_secs(0),
            probe_interval: GoDuration::from_secs(0),
            healthy_for: GoDuration::from_secs(0),
        };
        assert_eq!(
            errors_of(|errors| config.validate(errors)),
            ["failover.failures", "failover.window", "failover.probe_interval", "failover.healthy_for"]
        );
        assert!(errors_of(|errors| FailoverConfig::default().validate(errors)).is_empty());
    }

    #[test]
    fn failover_defaults_mean_more_than_five_failures_a_minute_and_thirty_healthy_seconds() {
        let config: FailoverConfig = serde_json::from_str(r#"{"healthy_for": "45s"}"#).unwrap();
        assert_eq!((config.failures, config.window), (6, GoDuration::from_secs(60)));
        assert_eq!(config.healthy_for, GoDuration::from_secs(45));
        assert_eq!(FailoverConfig::default().healthy_for, GoDuration::from_secs(30));
    }

    #[test]
    fn blocking_is_read_as_block_on_overflow() {
        let config: QueueConfig = serde_json::from_str(r#"{"blocking": true}"#).unwrap();
        assert!(config.block_on_overflow);
    }

    #[test]
    fn empty_compression_string_means_none() {
        let compression: Compression = serde_json::from_str(r#""""#).unwrap();
        assert_eq!(compression, Compression::None);
    }
}
