//! spanpipe's own telemetry: counters kept per core, published as snapshots, summed on read,
//! and served in the Prometheus text format on `/metrics`, beside `/healthz`, `/readyz` and
//! `/status` (readiness and the latest health-log records, as JSON).
//!
//! The same endpoint sets the adaptive samplers' base rate at run time: `PUT /v1/<processor id>`
//! (`/v1/adaptive_sampler` or `/v1/adaptive_sampler/<name>`) with the percentage as the body;
//! `GET /v1/adaptive_sampler` lists every rate.
//! Every core's instances read the shared rate at their next batch.
//!
//! Why snapshots: a data-plane core keeps its counters in plain cells that only it writes
//! (no atomics, no shared cache lines on the hot path). Every [`PUBLISH_INTERVAL`], and once more
//! when it stops, a core copies them into its [`CoreSlot`]; the control thread sums the slots
//! when scraped. A scrape therefore sees figures at most one interval old, which is far finer
//! than any scrape interval.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spanpipe_health::HealthSink;
use spanpipe_processors::AdaptiveSamplerHandle;

use crate::reloader::{ReloadError, Reloader};

/// How often a core publishes its counters.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(250);

/// Whether a metric only grows or can go both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows (reset only by a restart).
    Counter,
    /// Goes up and down (queue depth, open connections).
    Gauge,
    /// A distribution: `_bucket` series with cumulative `le` labels, `_sum` and `_count`.
    Histogram,
}

/// One metric: its name, help, kind, labels and value. Several cores' samples with the same name
/// and labels are summed.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Prometheus metric name (`spanpipe_receiver_accepted_spans_total`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// For histograms, the series: `_bucket`, `_sum` or `_count`; empty otherwise.
    pub suffix: &'static str,
    /// Label pairs, already in the order they are printed.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A counter sample.
    #[must_use]
    pub fn counter(name: &'static str, help: &'static str, labels: Vec<(&'static str, String)>, value: u64) -> Self {
        Self { name, help, kind: MetricKind::Counter, suffix: "", labels, value: value as f64 }
    }

    /// A gauge sample.
    #[must_use]
    pub fn gauge(name: &'static str, help: &'static str, labels: Vec<(&'static str, String)>, value: f64) -> Self {
        Self { name, help, kind: MetricKind::Gauge, suffix: "", labels, value }
    }

    /// One series of a histogram (`suffix` is `_bucket`, `_sum` or `_count`).
    #[must_use]
    pub fn histogram(
        name: &'static str,
        help: &'static str,
        suffix: &'static str,
        labels: Vec<(&'static str, String)>,
        value: f64,
    ) -> Self {
        Self { name, help, kind: MetricKind::Histogram, suffix, labels, value }
    }
}

/// What one core last published.
#[derive(Debug, Default)]
pub struct CoreSlot {
    samples: Mutex<Vec<Sample>>,
}

impl CoreSlot {
    /// Replaces this core's published samples.
    pub fn publish(&self, samples: Vec<Sample>) {
        *self.samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = samples;
    }
}

/// The process's telemetry: one slot per core, plus readiness.
#[derive(Debug)]
pub struct Telemetry {
    cores: Vec<Arc<CoreSlot>>,
    /// What the control side publishes (plugin events, the watchdog), one slot per publisher,
    /// summed with the cores' samples.
    control: Mutex<Vec<Arc<CoreSlot>>>,
    cores_ready: AtomicUsize,
    stopping: AtomicBool,
    /// The adaptive samplers' rate handles by processor id, for `/v1/adaptive_sampler`.
    adaptive: Mutex<Vec<(String, AdaptiveSamplerHandle)>>,
    /// The health log, whose latest records `/status` shows.
    health: Mutex<Option<Arc<dyn HealthSink>>>,
    /// Applies `POST /-/reload` and reports the running config's revision at `/status`.
    reloader: Mutex<Option<Arc<Reloader>>>,
}

impl Telemetry {
    /// Telemetry for `cores` data-plane cores.
    #[must_use]
    pub fn new(cores: usize) -> Arc<Self> {
        Arc::new(Self {
            cores: (0..cores).map(|_| Arc::new(CoreSlot::default())).collect(),
            control: Mutex::new(Vec::new()),
            cores_ready: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            adaptive: Mutex::new(Vec::new()),
            health: Mutex::new(None),
            reloader: Mutex::new(None),
        })
    }

    /// The slot core `index` publishes into.
    #[must_use]
    pub fn core_slot(&self, index: usize) -> Arc<CoreSlot> {
        Arc::clone(&self.cores[index])
    }

    /// A new slot for one publisher off the data plane (the plugin host's events, the
    /// watchdog): each publish replaces what that publisher published before.
    #[must_use]
    pub fn control_slot(&self) -> Arc<CoreSlot> {
        let slot = Arc::new(CoreSlot::default());
        self.control.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Arc::clone(&slot));
        slot
    }

    /// Makes the adaptive samplers' base rates readable and settable at run time
    /// (`GET /v1/adaptive_sampler`, `PUT /v1/<processor id>` with the percentage as the body).
    pub fn set_adaptive_samplers(&self, handles: Vec<(String, AdaptiveSamplerHandle)>) {
        *self.adaptive.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = handles;
    }

    /// Makes the health log's latest records visible at `/status`.
    pub fn set_health(&self, health: Arc<dyn HealthSink>) {
        *self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(health);
    }

    /// Serves `POST /-/reload` and the `config` part of `/status`.
    pub fn set_reloader(&self, reloader: Arc<Reloader>) {
        *self.reloader.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reloader);
    }

    fn reloader(&self) -> Option<Arc<Reloader>> {
        self.reloader.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// `/status`: readiness, the running config (revision, hash, the last refused reload) and
    /// the latest self-healing actions (newest last), as JSON.
    #[must_use]
    pub fn status(&self) -> String {
        // The config first: the reloader writes a reload's health record before the reload shows
        // in its status, so read in this order an answer never shows a reload without its record.
        let config = self.reloader().map(|reloader| reloader.status());
        let health = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let records = health.map(|health| health.latest(STATUS_RECORDS)).unwrap_or_default();
        let status = serde_json::json!({ "ready": self.is_ready(), "config": config, "health": records });
        let mut text = status.to_string();
        text.push('\n');
        text
    }

    /// A core has bound its listeners and runs its pipeline.
    pub fn core_ready(&self) {
        self.cores_ready.fetch_add(1, Ordering::Release);
    }

    /// Shutdown began: `/readyz` answers 503 so that load balancers move traffic away.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Every core is serving and shutdown has not begun.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        !self.stopping.load(Ordering::Acquire) && self.cores_ready.load(Ordering::Acquire) >= self.cores.len()
    }

    /// Every core's samples summed by name and labels, in the Prometheus text exposition format.
    #[must_use]
    pub fn render(&self) -> String {
        type Series = BTreeMap<(&'static str, Vec<(&'static str, String)>), f64>;
        let mut families: BTreeMap<&'static str, (&'static str, MetricKind, Series)> = BTreeMap::new();
        let control = self.control.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for slot in self.cores.iter().chain(&control) {
            let samples = slot.samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for sample in samples.iter() {
                let family = families.entry(sample.name).or_insert_with(|| (sample.help, sample.kind, BTreeMap::new()));
                *family.2.entry((sample.suffix, sample.labels.clone())).or_insert(0.0) += sample.value;
            }
        }
        let mut out = String::new();
        for (name, (help, kind, series)) in families {
            let kind = match kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
                MetricKind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((suffix, labels), value) in series {
                out.push_str(name);
                out.push_str(suffix);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (key, value)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{key}=\"{}\"", escape_label(value));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {value}");
            }
        }
        out
    }
}

/// A label value as the exposition format wants it: backslash, quote and newline escaped.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Why the telemetry endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {address} (set `service.telemetry.metrics.address`): {source}")]
pub struct TelemetryServerError {
    address: SocketAddr,
    source: std::io::Error,
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `address` from a thread of its own (off the
/// data-plane cores) until `stop` is set. Returns the bound address (useful with port 0) and the
/// thread.
///
/// # Errors
/// When the address cannot be bound.
pub fn serve(
    telemetry: Arc<Telemetry>,
    address: SocketAddr,
    stop: Arc<AtomicBool>,
) -> Result<(SocketAddr, std::thread::JoinHandle<()>), TelemetryServerError> {
    let listener = std::net::TcpListener::bind(address).map_err(|source| TelemetryServerError { address, source })?;
    let bound = listener.local_addr().map_err(|source| TelemetryServerError { address, source })?;
    listener.set_nonblocking(true).map_err(|source| TelemetryServerError { address, source })?;
    let thread = std::thread::Builder::new()
        .name("spanpipe-telemetry".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, "telemetry endpoint could not start its runtime");
                    return;
                }
            };
            runtime.block_on(accept_loop(telemetry, listener, stop));
        })
        .map_err(|source| TelemetryServerError { address, source })?;
    Ok((bound, thread))
}

async fn accept_loop(telemetry: Arc<Telemetry>, listener: std::net::TcpListener, stop: Arc<AtomicBool>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    while !stop.load(Ordering::Acquire) {
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        let Ok(Ok((stream, _))) = accepted else { continue };
        let telemetry = Arc::clone(&telemetry);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let telemetry = Arc::clone(&telemetry);
                async move { Ok::<_, std::convert::Infallible>(route(&telemetry, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "telemetry connection ended with an error");
            }
        });
    }
}

type Body = http_body_util::Full<bytes::Bytes>;

/// Largest request body the control endpoints read (a percentage).
const MAX_CONTROL_BODY: usize = 64;

/// How many of the latest health-log records `/status` shows.
const STATUS_RECORDS: usize = 20;

/// Path prefix of the adaptive samplers' rate control.
const ADAPTIVE_PREFIX: &str = "/v1/adaptive_sampler";

/// `POST /-/reload`: reads the config file again and applies it; answers with the outcome as
/// JSON (200 applied or unchanged, 400 refused with every reason, 409 when there is no file).
async fn reload(telemetry: &Telemetry) -> hyper::Response<Body> {
    let Some(reloader) = telemetry.reloader() else {
        return json_response(hyper::StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({"error": "not started"}));
    };
    // Waits for every core to prepare and commit: off the telemetry thread's event loop.
    let outcome = tokio::task::spawn_blocking(move || reloader.reload_file("http")).await;
    match outcome {
        Ok(Ok(outcome)) => json_response(hyper::StatusCode::OK, &serde_json::json!({"applied": outcome})),
        Ok(Err(error)) => {
            let status = match error {
                ReloadError::NoFile => hyper::StatusCode::CONFLICT,
                ReloadError::Stopping => hyper::StatusCode::SERVICE_UNAVAILABLE,
                _ => hyper::StatusCode::BAD_REQUEST,
            };
            json_response(status, &serde_json::json!({"refused": error.reasons()}))
        }
        Err(error) => json_response(
            hyper::StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"error": format!("the reload task failed: {error}")}),
        ),
    }
}

fn json_response(status: hyper::StatusCode, body: &serde_json::Value) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(Body::new(format!("{body}\n").into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

async fn route(telemetry: &Telemetry, request: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Body> {
    let path = request.uri().path().to_owned();
    if path == "/-/reload" {
        if request.method() != hyper::Method::POST {
            return text_response(hyper::StatusCode::METHOD_NOT_ALLOWED, "POST to reload the config file\n".to_owned());
        }
        return reload(telemetry).await;
    }
    // The path names the processor by its config id: `/v1/adaptive_sampler` (listing all, or the
    // unnamed one) or `/v1/adaptive_sampler/<name>`.
    if path != ADAPTIVE_PREFIX && !path.starts_with(&format!("{ADAPTIVE_PREFIX}/")) {
        return answer(telemetry, &request);
    }
    let id = path.trim_start_matches("/v1/").to_owned();
    let listing_all = path == ADAPTIVE_PREFIX;
    let text = |status, body: String| text_response(status, body);
    match *request.method() {
        hyper::Method::GET => {
            let rates = telemetry.adaptive.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut body = String::new();
            for (name, handle) in rates.iter().filter(|(name, _)| listing_all || *name == id) {
                // The base rate; while the watchdog has lowered it, the factor and what applies.
                let _ = if handle.factor() < 1.0 {
                    writeln!(
                        body,
                        "{name} {} factor {} effective {}",
                        handle.percentage(),
                        handle.factor(),
                        handle.effective_percentage()
                    )
                } else {
                    writeln!(body, "{name} {}", handle.percentage())
                };
            }
            if body.is_empty() && !listing_all {
                return text(
                    hyper::StatusCode::NOT_FOUND,
                    format!("no adaptive_sampler `{id}` in the running config\n"),
                );
            }
            text(hyper::StatusCode::OK, body)
        }
        hyper::Method::PUT => {
            use http_body_util::BodyExt as _;
            let limited = http_body_util::Limited::new(request.into_body(), MAX_CONTROL_BODY);
            let Ok(body) = limited.collect().await.map(|collected| collected.to_bytes()) else {
                return text(hyper::StatusCode::BAD_REQUEST, "send the percentage as the body, e.g. `25`\n".to_owned());
            };
            let Some(percentage) = std::str::from_utf8(&body).ok().and_then(|text| text.trim().parse::<f32>().ok())
            else {
                return text(hyper::StatusCode::BAD_REQUEST, "the body must be a number from 0 to 100\n".to_owned());
            };
            let rates = telemetry.adaptive.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut matched = false;
            for (_, handle) in rates.iter().filter(|(name, _)| *name == id) {
                matched = true;
                if let Err(error) = handle.set_percentage(percentage) {
                    return text(hyper::StatusCode::BAD_REQUEST, format!("{error}\n"));
                }
            }
            if matched {
                tracing::info!(processor = %id, percentage, "adaptive_sampler base rate changed");
                text(hyper::StatusCode::OK, format!("{id} {percentage}\n"))
            } else {
                text(hyper::StatusCode::NOT_FOUND, format!("no adaptive_sampler `{id}` in the running config\n"))
            }
        }
        _ => text(hyper::StatusCode::METHOD_NOT_ALLOWED, "GET, or PUT with the percentage as the body\n".to_owned()),
    }
}

fn text_response(status: hyper::StatusCode, body: String) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(Body::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    response
}

fn answer<B>(telemetry: &Telemetry, request: &hyper::Request<B>) -> hyper::Response<Body> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&hyper::Method::GET, "/metrics") => {
            (hyper::StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", telemetry.render())
        }
        (&hyper::Method::GET, "/healthz") => (hyper::StatusCode::OK, "text/plain", "ok\n".to_owned()),
        (&hyper::Method::GET, "/status") => (hyper::StatusCode::OK, "application/json", telemetry.status()),
        (&hyper::Method::GET, "/readyz") if telemetry.is_ready() => {
            (hyper::StatusCode::OK, "text/plain", "ready\n".to_owned())
        }
        (&hyper::Method::GET, "/readyz") => {
            (hyper::StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n".to_owned())
        }
        (&hyper::Method::GET, _) => (hyper::StatusCode::NOT_FOUND, "text/plain", "not found\n".to_owned()),
        _ => (hyper::StatusCode::METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n".to_owned()),
    };
    let mut response = hyper::Response::new(Body::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_all_cores_are_summed_by_name_and_labels() {
        let telemetry = Telemetry::new(2);
        let accepted = |core: &str, value| {
            Sample::counter(
                "spanpipe_accepted_spans_total",
                "Spans accepted.",
                vec![("receiver", core.to_owned())],
                value,
            )
        };
        telemetry.core_slot(0).publish(vec![accepted("otlp", 3), accepted("zipkin", 1)]);
        telemetry.core_slot(1).publish(vec![accepted("otlp", 4)]);
        let text = telemetry.render();
        assert!(text.contains("# TYPE spanpipe_accepted_spans_total counter"), "{text}");
        assert!(text.contains("spanpipe_accepted_spans_total{receiver=\"otlp\"} 7\n"), "{text}");
        assert!(text.contains("spanpipe_accepted_spans_total{receiver=\"zipkin\"} 1\n"), "{text}");
        assert_eq!(text.matches("# HELP").count(), 1);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn ready_only_when_every_core_is_up_and_not_stopping() {
        let telemetry = Telemetry::new(2);
        assert!(!telemetry.is_ready());
        telemetry.core_ready();
        telemetry.core_ready();
        assert!(telemetry.is_ready());
        telemetry.set_stopping();
        assert!(!telemetry.is_ready());
    }
}
