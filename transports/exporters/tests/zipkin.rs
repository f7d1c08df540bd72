//! The `zipkin` exporter against a scripted Zipkin server on loopback that decodes what arrives
//! with the `spanpipe_zipkin` codecs: JSON and protobuf bodies, the mapping of service names,
//! gzip, 202 and 200, retried 503/429 (with `Retry-After`), a final 400, a server that comes up
//! late, keep-alive, and config errors that name their key.

mod support;

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;
use spanpipe_codecs::Codec as _;
use spanpipe_config::{ComponentConfig, ComponentRegistry, GoDuration};
use spanpipe_core::SpanBatch;
use spanpipe_exporters::{
    BuildError, Compression, DropReason, Exporter, ExporterBuilder, QueueConfig, ZipkinExporterConfig, ZipkinFormat,
    ZIPKIN_SPANS_PATH,
};
use support::{eventually, fast_retry, free_port, on_glommio, LoopbackServer};

const WAIT: Duration = Duration::from_secs(10);
const MISSING_SERVICE: &str = "<missing service name>";

/// What the server received in one request.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    /// The body decoded by the codec its `Content-Type` names, or why it could not be.
    spans: Result<SpanBatch, String>,
    /// The status the server answered with.
    answered: u16,
    at: Instant,
    /// The client's address: one per connection.
    peer: SocketAddr,
}

/// How the server answers one request.
#[derive(Clone, Copy, Debug)]
struct Answer {
    status: u16,
    retry_after: Option<&'static str>,
}

impl Answer {
    const fn status(status: u16) -> Self {
        Self { status, retry_after: None }
    }
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Answer>,
    received: Vec<Received>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A Zipkin server on loopback (tokio in its own thread): answers follow the script, then
/// `202 Accepted` with an empty body, as Zipkin does. Dropping it closes it.
struct ZipkinServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _server: LoopbackServer,
}

impl ZipkinServer {
    fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("loopback"))
    }

    fn start_on(addr: SocketAddr) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let served = Arc::clone(&state);
        let server =
            LoopbackServer::start(addr, None, || {}, move |peer, request| handle(Arc::clone(&served), peer, request));
        Self { addr: server.addr, state, _server: server }
    }

    fn url(&self) -> String {
        format!("http://{}{ZIPKIN_SPANS_PATH}", self.addr)
    }

    fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        lock(&self.state).script.extend(answers);
    }

    fn received(&self) -> Vec<Received> {
        lock(&self.state).received.clone()
    }

    /// `(span id, service name)` of every span the server accepted (answered 2xx), in arrival
    /// order, repeats included.
    fn accepted_spans(&self) -> Vec<(Vec<u8>, String)> {
        let mut spans = Vec::new();
        for received in self.received() {
            if (200..300).contains(&received.answered) {
                let batch = received.spans.unwrap_or_else(|error| panic!("an accepted body did not decode: {error}"));
                spans.extend(spans_with_services(&batch, None));
            }
        }
        spans
    }
}

/// The body as the Zipkin receiver would read it: gunzipped if so declared, then decoded by the
/// codec of its `Content-Type`.
fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<SpanBatch, String> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("");
    let raw = match header("content-encoding") {
        "" => body.to_vec(),
        "gzip" => {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out)
                .map_err(|error| format!("gzip: {error}"))?;
            out
        }
        other => return Err(format!("unexpected Content-Encoding {other:?}")),
    };
    let decoded = match header("content-type") {
        "application/json" => spanpipe_zipkin::ZipkinV2Json::default().decode(Bytes::from(raw)),
        "application/x-protobuf" => spanpipe_zipkin::ZipkinV2Proto::default().decode(Bytes::from(raw)),
        other => return Err(format!("unexpected Content-Type {other:?}")),
    };
    decoded.map_err(|error| error.to_string())
}

async fn handle(
    state: Arc<Mutex<State>>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
    let answer = {
        let mut state = lock(&state);
        let answer = state.script.pop_front().unwrap_or(Answer::status(202));
        state.received.push(Received {
            path: parts.uri.path().to_owned(),
            spans: decode_body(&parts.headers, &body),
            headers: parts.headers,
            answered: answer.status,
            at: Instant::now(),
            peer,
        });
        answer
    };
    let mut response = Response::builder().status(answer.status);
    if let Some(retry_after) = answer.retry_after {
        response = response.header("retry-after", retry_after);
    }
    Ok(response.body(Full::new(Bytes::new())).expect("valid response"))
}

/// `(span id, service name)` of every span of `batch`; a resource without `service.name` gets
/// `default_service`, or the empty string when that is `None`.
fn spans_with_services(batch: &SpanBatch, default_service: Option<&str>) -> Vec<(Vec<u8>, String)> {
    let request = ExportTraceServiceRequest::decode(batch.bytes().as_ref()).expect("a batch is a valid request");
    let mut spans = Vec::new();
    for resource_spans in &request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|resource| &resource.attributes)
            .find(|attribute| attribute.key == "service.name")
            .and_then(|attribute| match attribute.value.as_ref()?.value.as_ref()? {
                Value::StringValue(name) => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_else(|| default_service.unwrap_or_default().to_owned());
        for scope_spans in &resource_spans.scope_spans {
            spans.extend(scope_spans.spans.iter().map(|span| (span.span_id.clone(), service.clone())));
        }
    }
    spans
}

/// A realistic batch of `spans` spans whose first resource has no `service.name`, so both the
/// mapped and the default service name are exercised.
fn batch_with_an_unnamed_service(spans: usize, seed: u64) -> SpanBatch {
    let mut request = spanpipe_testkit::realistic::request(spans, seed);
    assert!(request.resource_spans.len() >= 2, "the testkit spreads spans over several resources");
    if let Some(resource) = request.resource_spans[0].resource.as_mut() {
        resource.attributes.retain(|attribute| attribute.key != "service.name");
    }
    SpanBatch::decode(Bytes::from(request.encode_to_vec())).expect("a valid request")
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

fn config(endpoint: &str) -> ZipkinExporterConfig {
    ZipkinExporterConfig {
        endpoint: endpoint.to_owned(),
        timeout: GoDuration::from_secs(2),
        retry_on_failure: fast_retry(),
        ..ZipkinExporterConfig::default()
    }
}

fn exporter(config: &ZipkinExporterConfig) -> Exporter {
    ExporterBuilder::zipkin("zipkin", config).expect("a valid config").build().expect("builds")
}

/// Sends `batch` through an exporter made from `config` and waits until it is delivered.
fn deliver(config: ZipkinExporterConfig, batch: SpanBatch) {
    on_glommio(move || async move {
        let exporter = exporter(&config);
        exporter.try_send(batch).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
    });
}

/// Posts one batch in `format` with `compression` and checks what the server got: the path as
/// configured, the `Content-Type`, the `Content-Encoding`, and every span once with its service
/// (`default_service` where the resource has none).
fn check_delivery(format: ZipkinFormat, compression: Compression, default_service: Option<&str>) {
    let server = ZipkinServer::start();
    let batch = batch_with_an_unnamed_service(40, 11);
    let mut config = ZipkinExporterConfig { format, compression, ..config(&server.url()) };
    if let Some(name) = default_service {
        config.default_service_name = name.to_owned();
    }
    deliver(config, batch.clone());

    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, ZIPKIN_SPANS_PATH, "the endpoint as written, nothing appended");
    assert_eq!(received[0].headers["content-type"], format.content_type());
    assert_eq!(
        received[0].headers.get("content-encoding").map(|value| value.to_str().unwrap()),
        compression.encoding_name()
    );
    let expected = spans_with_services(&batch, Some(default_service.unwrap_or(MISSING_SERVICE)));
    assert!(expected.iter().any(|(_, service)| service == default_service.unwrap_or(MISSING_SERVICE)));
    assert_eq!(sorted(server.accepted_spans()), sorted(expected), "every span once, with its service");
}

#[test]
fn posts_json_with_every_span_and_its_service_name() {
    check_delivery(ZipkinFormat::Json, Compression::None, None);
}

#[test]
fn posts_proto_with_the_configured_default_service_name() {
    check_delivery(ZipkinFormat::Proto, Compression::None, Some("unknown-service"));
}

#[test]
fn gzips_json_and_proto_bodies_when_configured() {
    check_delivery(ZipkinFormat::Json, Compression::Gzip, None);
    check_delivery(ZipkinFormat::Proto, Compression::Gzip, Some("unknown-service"));
}

#[test]
fn accepted_and_ok_are_both_success() {
    let server = ZipkinServer::start();
    server.script([Answer::status(200)]);
    let config = config(&server.url());
    on_glommio(move || async move {
        let exporter = exporter(&config);
        exporter.try_send(batch_with_an_unnamed_service(3, 1)).unwrap();
        exporter.try_send(batch_with_an_unnamed_service(4, 2)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 2).await);
        let stats = exporter.stats().snapshot();
        assert_eq!((stats.retries, stats.dropped_batches_total()), (0, 0));
    });
    let mut answered: Vec<_> = server.received().iter().map(|received| received.answered).collect();
    answered.sort_unstable();
    assert_eq!(answered, [200, 202]);
    assert_eq!(server.accepted_spans().len(), 7);
}

#[test]
fn unavailable_and_throttled_answers_are_retried_and_the_batch_delivered_once() {
    let server = ZipkinServer::start();
    server.script([Answer::status(503), Answer { status: 429, retry_after: Some("1") }]);
    let batch = batch_with_an_unnamed_service(9, 3);
    let expected = spans_with_services(&batch, Some(MISSING_SERVICE));
    let config = config(&server.url());
    deliver(config, batch);
    let received = server.received();
    assert_eq!(received.iter().map(|received| received.answered).collect::<Vec<_>>(), [503, 429, 202]);
    let waited = received[2].at - received[1].at;
    assert!(waited >= Duration::from_secs(1), "Retry-After: 1 was answered after {waited:?}");
    assert_eq!(sorted(server.accepted_spans()), sorted(expected), "delivered once");
}

#[test]
fn bad_request_drops_and_counts_the_batch_without_retrying() {
    let server = ZipkinServer::start();
    server.script([Answer { status: 400, retry_after: Some("1") }]);
    let config = config(&server.url());
    on_glommio(move || async move {
        let exporter = exporter(&config);
        exporter.try_send(batch_with_an_unnamed_service(6, 4)).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().dropped_batches_total() == 1).await);
        // Long enough for a retry at `initial_interval` (10 ms) to have been sent.
        glommio::timer::sleep(Duration::from_millis(100)).await;
        let stats = exporter.stats().snapshot();
        assert_eq!(stats.dropped_spans_for(DropReason::Rejected), 6);
        assert_eq!((stats.retries, stats.batches_sent), (0, 0));
    });
    assert_eq!(server.received().len(), 1);
}

#[test]
fn a_server_that_comes_up_late_gets_the_batch() {
    let addr = free_port();
    let config = config(&format!("http://{addr}{ZIPKIN_SPANS_PATH}"));
    let batch = batch_with_an_unnamed_service(5, 5);
    let expected = spans_with_services(&batch, Some(MISSING_SERVICE));
    on_glommio(move || async move {
        let exporter = exporter(&config);
        exporter.try_send(batch).unwrap();
        assert!(eventually(WAIT, || exporter.stats().snapshot().retries >= 3).await);
        let server = ZipkinServer::start_on(addr);
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 1).await);
        assert_eq!(exporter.flush(Instant::now() + WAIT).await, Default::default());
        assert_eq!(sorted(server.accepted_spans()), sorted(expected));
    });
}

#[test]
fn many_batches_share_one_kept_alive_connection() {
    let server = ZipkinServer::start();
    let config = ZipkinExporterConfig {
        sending_queue: QueueConfig { num_consumers: 1, ..QueueConfig::default() },
        ..config(&server.url())
    };
    on_glommio(move || async move {
        let exporter = exporter(&config);
        for seed in 0..8 {
            exporter.try_send(batch_with_an_unnamed_service(2, seed)).unwrap();
        }
        assert!(eventually(WAIT, || exporter.stats().snapshot().batches_sent == 8).await);
    });
    let received = server.received();
    assert_eq!(received.len(), 8);
    assert!(received.iter().all(|request| request.peer == received[0].peer), "one reused connection");
}

#[test]
fn config_errors_name_the_key_to_change() {
    let error = ExporterBuilder::zipkin("zipkin/backend", &ZipkinExporterConfig::default()).unwrap_err();
    let BuildError::Invalid { name, errors } = &error else { panic!("{error}") };
    assert_eq!(name, "zipkin/backend");
    assert_eq!(errors.iter().map(|error| error.path.as_str()).collect::<Vec<_>>(), ["endpoint"]);

    let registry = ComponentRegistry::new().exporter::<ZipkinExporterConfig>("zipkin").expect("one registration");
    let load = |exporter_block: &str| -> String {
        let text = format!("exporters:\n  zipkin:\n{exporter_block}\n");
        match spanpipe_config::load_str(&text, &registry) {
            Ok(_) => String::new(),
            Err(errors) => errors.to_string(),
        }
    };
    let bad_format = load("    endpoint: http://zipkin:9411/api/v2/spans\n    format: thrift");
    assert!(bad_format.contains("exporters.zipkin.format"), "{bad_format}");
    assert!(bad_format.contains("thrift"), "{bad_format}");
    let missing_endpoint = load("    format: proto");
    assert!(missing_endpoint.contains("exporters.zipkin.endpoint"), "{missing_endpoint}");
    let unknown_key = load("    endpoint: http://zipkin:9411/api/v2/spans\n    url: http://zipkin:9411");
    assert!(unknown_key.contains("url"), "{unknown_key}");
}

#[test]
fn collector_configs_load_unchanged() {
    let config: ZipkinExporterConfig = serde_json::from_str(
        r#"{
            "endpoint": "https://zipkin.internal:9411/api/v2/spans",
            "format": "proto",
            "default_service_name": "unknown-service",
            "tls": {"insecure_skip_verify": true},
            "timeout": "10s",
            "headers": {"x-scope-orgid": "tenant-1"},
            "compression": "gzip",
            "sending_queue": {"enabled": true, "num_consumers": 2, "queue_size": 500},
            "retry_on_failure": {"enabled": true, "initial_interval": "1s", "max_elapsed_time": "1m"}
        }"#,
    )
    .unwrap();
    assert_eq!(config.validate(), []);
    assert_eq!((config.format, config.compression), (ZipkinFormat::Proto, Compression::Gzip));
    assert_eq!(config.headers, BTreeMap::from([("x-scope-orgid".to_owned(), "tenant-1".to_owned())]));
    assert_eq!(config.timeout.0, Duration::from_secs(10));
}
