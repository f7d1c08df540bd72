//! Deterministic, realistic OTLP trace payloads for benchmarks and size-sensitive tests.
//!
//! Benchmarks need inputs that look like production traffic, because encoder and decoder cost
//! depends on the mix of attribute types, string lengths and nesting; random noise would
//! measure the wrong thing. They also need the *same* input on every run and every machine, so
//! that numbers can be compared across commits. [`request`] therefore derives everything from a
//! seed through a small built-in PRNG (no `rand` dependency whose output could change between
//! versions): the same `(spans, seed)` always yields the same bytes.
//!
//! The shape follows what OpenTelemetry SDKs export: two or three services per batch, each with
//! the usual resource attributes and one instrumentation scope; spans that form traces (a
//! server or consumer root with internal, HTTP client, database client and producer children),
//! some traces continuing a client call made by the previous service; semantic-convention
//! attributes of mixed types; an event on about every third span, a link on about every fifth
//! and an error status on about one span in twenty. The encoded size is roughly 400–600 bytes
//! per span, in line with typical instrumented HTTP services.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

/// A realistic export request with exactly `spans` spans, fully determined by `seed`.
///
/// Spans are spread over two or three resources (one when `spans == 1`; none when
/// `spans == 0`), each with a single instrumentation scope.
pub fn request(spans: usize, seed: u64) -> ExportTraceServiceRequest {
    PayloadBuilder::new(seed).request(spans)
}

/// The protobuf encoding of [`request`]`(spans, seed)`: what an OTLP/gRPC or OTLP/HTTP
/// protobuf exporter would put on the wire.
pub fn encoded(spans: usize, seed: u64) -> Vec<u8> {
    request(spans, seed).encode_to_vec()
}

/// Timestamps start near this instant (November 2023) so that they have the magnitude, and
/// therefore the varint length, of real wall-clock nanoseconds.
const EPOCH_UNIX_NANO: u64 = 1_700_000_000_000_000_000;
const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
const SECONDS_PER_DAY: u64 = 86_400;
/// Shortest and longest span durations generated.
const MIN_DURATION_NANOS: u64 = 10 * NANOS_PER_MICRO;
const MAX_DURATION_NANOS: u64 = 2 * NANOS_PER_SECOND;
/// Largest number of spans in one trace.
const MAX_TRACE_SIZE: u64 = 8;

/// W3C trace flag "sampled".
const FLAG_SAMPLED: u32 = 0x01;
/// OTLP span flag: whether the parent is remote is known.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
/// OTLP span flag: the parent is remote.
const FLAG_IS_REMOTE: u32 = 0x200;

const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.26.0";

/// SplitMix64: tiny, fast, and good enough to make payloads look varied. Its output is fixed
/// by its definition, which is what makes the payloads reproducible.
#[derive(Debug, Clone)]
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in `0..bound` (Lemire's multiply-shift; the tiny bias is irrelevant here).
    /// Returns 0 when `bound` is 0.
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// Uniform index into a collection of length `len` (0 when `len` is 0).
    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `1 / denominator`.
    fn one_in(&mut self, denominator: u64) -> bool {
        self.below(denominator) == 0
    }

    /// Uniform in `[0, 1)`.
    fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniformly chosen element. Only called on the non-empty constant tables below.
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// A random non-zero id of `N` bytes (all-zero ids are invalid in OTLP).
    fn id<const N: usize>(&mut self) -> Vec<u8> {
        let mut id = [0u8; N];
        for chunk in id.chunks_mut(8) {
            let random = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&random[..chunk.len()]);
        }
        if id.iter().all(|&byte| byte == 0) {
            id[N - 1] = 1;
        }
        id.to_vec()
    }

    /// `len` lowercase hex digits.
    fn hex(&mut self, len: usize) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        (0..len).map(|_| char::from(DIGITS[self.index(DIGITS.len())])).collect()
    }

    /// A UUID-formatted string, as used for instance and message ids.
    fn uuid(&mut self) -> String {
        format!("{}-{}-4{}-a{}-{}", self.hex(8), self.hex(4), self.hex(3), self.hex(3), self.hex(12))
    }
}

/// A service that can appear as a resource, with the instrumentation its SDK would report.
#[derive(Debug)]
struct ServiceProfile {
    name: &'static str,
    language: &'static str,
    scope_name: &'static str,
    scope_version: &'static str,
    port: i64,
}

const SERVICES: &[ServiceProfile] = &[
    ServiceProfile {
        name: "frontend",
        language: "nodejs",
        scope_name: "@opentelemetry/instrumentation-http",
        scope_version: "0.57.2",
        port: 8080,
    },
    ServiceProfile {
        name: "checkout",
        language: "go",
        scope_name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
        scope_version: "0.59.0",
        port: 5050,
    },
    ServiceProfile {
        name: "payment",
        language: "java",
        scope_name: "io.opentelemetry.spring-webmvc-6.0",
        scope_version: "2.12.0-alpha",
        port: 8443,
    },
    ServiceProfile {
        name: "inventory",
        language: "rust",
        scope_name: "opentelemetry-instrumentation-actix-web",
        scope_version: "0.22.0",
        port: 7070,
    },
    ServiceProfile {
        name: "shipping",
        language: "python",
        scope_name: "opentelemetry.instrumentation.flask",
        scope_version: "0.51b0",
        port: 50051,
    },
    ServiceProfile {
        name: "cart",
        language: "dotnet",
        scope_name: "OpenTelemetry.Instrumentation.AspNetCore",
        scope_version: "1.11.1",
        port: 7070,
    },
    ServiceProfile {
        name: "recommendation",
        language: "python",
        scope_name: "opentelemetry.instrumentation.django",
        scope_version: "0.51b0",
        port: 9001,
    },
];

/// `(method, route template, concrete path prefix)`; a numeric id is appended to the prefix.
const SERVER_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/orders/{order_id}", "/api/v1/orders/"),
    ("POST", "/api/v1/cart/{cart_id}/items", "/api/v1/cart/"),
    ("GET", "/api/v1/products/{product_id}", "/api/v1/products/"),
    ("PUT", "/api/v1/customers/{customer_id}/address", "/api/v1/customers/"),
    ("POST", "/api/v1/checkout/{session_id}/confirm", "/api/v1/checkout/"),
    ("GET", "/api/v1/shipments/{shipment_id}/tracking", "/api/v1/shipments/"),
];

/// `(method, host, path prefix, query)` for outgoing HTTP calls.
const CLIENT_CALLS: &[(&str, &str, &str, &str)] = &[
    ("GET", "inventory.prod.svc.cluster.local", "/api/v1/items/", "?include=stock,reservations&warehouse=eu-west-1a"),
    ("POST", "payment.prod.svc.cluster.local", "/api/v1/payments/", "?idempotency=true"),
    ("GET", "api.currencyconverter.example.com", "/v2/rates/", "?base=EUR&symbols=USD,GBP,JPY"),
    ("POST", "shipping.prod.svc.cluster.local", "/api/v1/quotes/", "?carrier=any&service_level=standard"),
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "okhttp/4.12.0",
    "Go-http-client/2.0",
    "python-requests/2.31.0",
];

const ACCEPT_HEADERS: &[&str] = &["application/json", "text/plain;q=0.9", "application/problem+json", "*/*;q=0.8"];

/// `(db.system.name, db.namespace, db.operation.name, db.collection.name, port, query text)`.
const DATABASE_QUERIES: &[(&str, &str, &str, &str, i64, &str)] = &[
    (
        "postgresql",
        "inventory",
        "SELECT",
        "items",
        5432,
        "SELECT id, sku, quantity, reserved, updated_at FROM items WHERE sku = ANY($1) AND warehouse_id = $2",
    ),
    (
        "postgresql",
        "orders",
        "UPDATE",
        "orders",
        5432,
        "UPDATE orders SET status = $1, updated_at = now() WHERE id = $2 AND version = $3",
    ),
    (
        "postgresql",
        "payments",
        "INSERT",
        "payments",
        5432,
        "INSERT INTO payments (order_id, amount_cents, currency, provider, idempotency_key) VALUES ($1, $2, $3, $4, $5)",
    ),
    (
        "redis",
        "0",
        "HGETALL",
        "cart",
        6379,
        "HGETALL cart:session:?",
    ),
];

/// `(code.function.name, code.file.path)` for internal spans.
const INTERNAL_FUNCTIONS: &[(&str, &str)] = &[
    ("compute_shipping_quote", "src/shipping/quote.rs"),
    ("apply_promotions", "src/checkout/promotions.go"),
    ("validate_cart", "com/example/cart/CartValidator.java"),
    ("render_product_page", "src/pages/product.ts"),
    ("score_recommendations", "recommendation/ranking.py"),
];

const TOPICS: &[&str] = &["orders.created", "payments.settled", "inventory.reserved", "shipments.dispatched"];

/// `(error.type / exception.type, status message)` for failed spans.
const FAILURES: &[(&str, &str)] = &[
    ("java.net.SocketTimeoutException", "Read timed out after 2000 ms waiting for upstream response"),
    ("ConnectionRefusedError", "upstream connect error or disconnect/reset before headers: connection refused"),
    ("context.DeadlineExceeded", "context deadline exceeded while calling payment provider"),
    ("sqlx::Error::PoolTimedOut", "timed out while waiting for an open connection"),
];

/// `(event name, attributes as (key, example value))`; events get a prefix of the attributes.
const EVENT_TEMPLATES: &[(&str, &[(&str, EventValue)])] = &[
    (
        "cache.miss",
        &[
            ("cache.key", EventValue::Text("product:detail:v3:")),
            ("cache.name", EventValue::Text("redis-product-cache")),
            ("cache.ttl_seconds", EventValue::Int(300)),
        ],
    ),
    (
        "retry.scheduled",
        &[
            ("retry.attempt", EventValue::Int(1)),
            ("retry.delay_ms", EventValue::Double(125.0)),
            ("error.type", EventValue::Text("UNAVAILABLE")),
        ],
    ),
    (
        "feature_flag.evaluation",
        &[
            ("feature_flag.key", EventValue::Text("new-checkout-flow")),
            ("feature_flag.result.variant", EventValue::Text("treatment")),
            ("feature_flag.provider.name", EventValue::Text("flagd")),
        ],
    ),
    (
        "log",
        &[
            ("log.message", EventValue::Text("reservation extended because payment is still pending")),
            ("log.severity", EventValue::Text("INFO")),
        ],
    ),
];

/// Example values for event attributes; numbers are jittered when used.
#[derive(Debug, Clone, Copy)]
enum EventValue {
    Text(&'static str),
    Int(i64),
    Double(f64),
}

/// What a span does, which decides its kind, name and attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    HttpServer,
    HttpClient,
    DatabaseClient,
    Internal,
    Producer,
    Consumer,
}

impl Operation {
    fn kind(self) -> SpanKind {
        match self {
            Self::HttpServer => SpanKind::Server,
            Self::HttpClient | Self::DatabaseClient => SpanKind::Client,
            Self::Internal => SpanKind::Internal,
            Self::Producer => SpanKind::Producer,
            Self::Consumer => SpanKind::Consumer,
        }
    }

    /// Spans that do local work can have local children; client and producer spans end in a
    /// remote call and do not.
    fn can_have_local_children(self) -> bool {
        matches!(self, Self::HttpServer | Self::Internal | Self::Consumer)
    }
}

/// A client span of the previous service that the next service can continue as a trace.
#[derive(Debug, Clone)]
struct RemoteParent {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    start_unix_nano: u64,
    end_unix_nano: u64,
}

/// Context shared by all spans of one trace.
#[derive(Debug)]
struct TraceContext {
    trace_id: Vec<u8>,
    trace_state: String,
}

/// Builds one payload; holds the PRNG and a clock that advances from trace to trace.
#[derive(Debug)]
struct PayloadBuilder {
    rng: SplitMix64,
    clock_unix_nano: u64,
}

impl PayloadBuilder {
    fn new(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let clock_unix_nano = EPOCH_UNIX_NANO + rng.below(SECONDS_PER_DAY * NANOS_PER_SECOND);
        Self { rng, clock_unix_nano }
    }

    fn request(&mut self, spans: usize) -> ExportTraceServiceRequest {
        let resource_count = match spans {
            0 => 0,
            1 => 1,
            2 => 2,
            _ => 2 + self.rng.index(2),
        };
        let first_service = self.rng.index(SERVICES.len());
        let mut remote_parents = Vec::new();
        let resource_spans = (0..resource_count)
            .map(|resource_index| {
                let service = &SERVICES[(first_service + resource_index) % SERVICES.len()];
                let span_count = spans / resource_count + usize::from(resource_index < spans % resource_count);
                self.resource_spans(service, span_count, &mut remote_parents)
            })
            .collect();
        ExportTraceServiceRequest { resource_spans }
    }

    /// One service's spans. Some of its traces continue the client calls in `remote_parents`
    /// (made by the previous service); its own client calls replace them for the next service.
    fn resource_spans(
        &mut self,
        service: &ServiceProfile,
        span_count: usize,
        remote_parents: &mut Vec<RemoteParent>,
    ) -> ResourceSpans {
        let resource = self.resource(service);
        let mut spans = Vec::with_capacity(span_count);
        let mut outgoing_calls = Vec::new();
        while spans.len() < span_count {
            let trace_size = self.rng.between(1, MAX_TRACE_SIZE).min((span_count - spans.len()) as u64) as usize;
            let remote_parent = if !remote_parents.is_empty() && self.rng.one_in(2) {
                let chosen = self.rng.index(remote_parents.len());
                Some(remote_parents.swap_remove(chosen))
            } else {
                None
            };
            self.trace(service, trace_size, remote_parent, &mut spans, &mut outgoing_calls);
        }
        *remote_parents = outgoing_calls;
        ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: service.scope_name.to_owned(),
                    version: service.scope_version.to_owned(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: SCHEMA_URL.to_owned(),
        }
    }

    fn resource(&mut self, service: &ServiceProfile) -> Resource {
        let rng = &mut self.rng;
        let version = format!("{}.{}.{}", rng.between(1, 4), rng.below(30), rng.below(20));
        let host =
            format!("ip-10-{}-{}-{}.eu-west-1.compute.internal", rng.below(256), rng.below(256), rng.between(1, 254));
        Resource {
            attributes: vec![
                text_attribute("service.name", service.name),
                text_attribute("service.version", version),
                text_attribute("service.instance.id", rng.uuid()),
                text_attribute("host.name", host),
                text_attribute("os.type", "linux"),
                int_attribute("process.pid", rng.between(1_000, 60_000) as i64),
                text_attribute("telemetry.sdk.language", service.language),
                text_attribute("telemetry.sdk.name", "opentelemetry"),
            ],
            ..Resource::default()
        }
    }

    /// Appends one trace of `size` spans: a root, then children of earlier spans that can have
    /// local children. HTTP client spans are recorded in `outgoing_calls`.
    fn trace(
        &mut self,
        service: &ServiceProfile,
        size: usize,
        remote_parent: Option<RemoteParent>,
        spans: &mut Vec<Span>,
        outgoing_calls: &mut Vec<RemoteParent>,
    ) {
        self.clock_unix_nano += self.rng.below(50 * NANOS_PER_MILLI);
        let trace_state =
            if self.rng.one_in(10) { format!("rojo={},congo=t61rcWkgMzE", self.rng.hex(16)) } else { String::new() };
        let context = TraceContext {
            trace_id: remote_parent.as_ref().map_or_else(|| self.rng.id::<16>(), |parent| parent.trace_id.clone()),
            trace_state,
        };

        let (root_operation, root_start, root_end, parent_span_id, root_flags) = match &remote_parent {
            Some(parent) => {
                // Network latency before the server sees the request, and the server
                // finishes before the client does.
                let start = parent.start_unix_nano + self.rng.between(50 * NANOS_PER_MICRO, 500 * NANOS_PER_MICRO);
                let end = parent
                    .end_unix_nano
                    .saturating_sub(self.rng.below(100 * NANOS_PER_MICRO))
                    .max(start + MIN_DURATION_NANOS);
                let flags = FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE;
                (Operation::HttpServer, start, end, parent.span_id.clone(), flags)
            }
            None => {
                let operation = if self.rng.one_in(8) { Operation::Consumer } else { Operation::HttpServer };
                let start = self.clock_unix_nano;
                let end = start + self.duration_nanos();
                let flags = FLAG_SAMPLED | FLAG_HAS_IS_REMOTE;
                (operation, start, end, Vec::new(), flags)
            }
        };

        let trace_start_index = spans.len();
        // Indices into `spans` of this trace's spans that may have local children.
        let mut parent_candidates = vec![trace_start_index];
        spans.push(self.span(service, &context, root_operation, parent_span_id, root_flags, (root_start, root_end)));

        for _ in 1..size {
            let parent_index = *self.rng.pick(&parent_candidates);
            let parent = &spans[parent_index];
            let (parent_span_id, parent_start, parent_end) =
                (parent.span_id.clone(), parent.start_time_unix_nano, parent.end_time_unix_nano);
            let operation = match self.rng.below(100) {
                0..=29 => Operation::Internal,
                30..=59 => Operation::HttpClient,
                60..=84 => Operation::DatabaseClient,
                _ => Operation::Producer,
            };
            let start = parent_start + self.rng.below((parent_end - parent_start) / 2 + 1);
            let end = start + self.duration_nanos().min(parent_end.saturating_sub(start)).max(MIN_DURATION_NANOS);
            let span = self.span(
                service,
                &context,
                operation,
                parent_span_id,
                FLAG_SAMPLED | FLAG_HAS_IS_REMOTE,
                (start, end),
            );
            if operation == Operation::HttpClient {
                outgoing_calls.push(RemoteParent {
                    trace_id: context.trace_id.clone(),
                    span_id: span.span_id.clone(),
                    start_unix_nano: start,
                    end_unix_nano: end,
                });
            }
            if operation.can_have_local_children() {
                parent_candidates.push(spans.len());
            }
            spans.push(span);
        }
    }

    /// A span duration between 10µs and 2s, skewed towards short spans as in real services.
    fn duration_nanos(&mut self) -> u64 {
        let rng = &mut self.rng;
        match rng.below(100) {
            0..=29 => rng.between(MIN_DURATION_NANOS, 200 * NANOS_PER_MICRO),
            30..=69 => rng.between(200 * NANOS_PER_MICRO, 5 * NANOS_PER_MILLI),
            70..=91 => rng.between(5 * NANOS_PER_MILLI, 100 * NANOS_PER_MILLI),
            _ => rng.between(100 * NANOS_PER_MILLI, MAX_DURATION_NANOS),
        }
    }

    fn span(
        &mut self,
        service: &ServiceProfile,
        context: &TraceContext,
        operation: Operation,
        parent_span_id: Vec<u8>,
        flags: u32,
        (start_time_unix_nano, end_time_unix_nano): (u64, u64),
    ) -> Span {
        let span_id = self.rng.id::<8>();
        let failure = self.rng.one_in(20).then(|| *self.rng.pick(FAILURES));
        let (name, attributes) = self.name_and_attributes(service, operation, failure.is_some());

        let mut events = Vec::new();
        if self.rng.one_in(3) {
            for _ in 0..self.rng.between(1, 2) {
                let time = self.rng.between(start_time_unix_nano, end_time_unix_nano);
                events.push(self.event(time));
            }
        }
        if let Some((error_type, message)) = failure {
            events.push(Event {
                time_unix_nano: end_time_unix_nano,
                name: "exception".to_owned(),
                attributes: vec![
                    text_attribute("exception.type", error_type),
                    text_attribute("exception.message", message),
                ],
                dropped_attributes_count: 0,
            });
        }

        let links = if self.rng.one_in(5) {
            vec![Link {
                trace_id: self.rng.id::<16>(),
                span_id: self.rng.id::<8>(),
                trace_state: String::new(),
                attributes: vec![text_attribute("link.reason", "batched_with")],
                dropped_attributes_count: 0,
                flags: FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE,
            }]
        } else {
            Vec::new()
        };

        Span {
            trace_id: context.trace_id.clone(),
            span_id,
            trace_state: context.trace_state.clone(),
            parent_span_id,
            flags,
            name,
            kind: operation.kind() as i32,
            start_time_unix_nano,
            end_time_unix_nano,
            attributes,
            dropped_attributes_count: 0,
            events,
            dropped_events_count: 0,
            links,
            dropped_links_count: 0,
            status: failure.map(|(_, message)| Status { message: message.to_owned(), code: StatusCode::Error as i32 }),
        }
    }

    fn event(&mut self, time_unix_nano: u64) -> Event {
        let (name, template) = *self.rng.pick(EVENT_TEMPLATES);
        let attribute_count = self.rng.between(1, template.len() as u64) as usize;
        let attributes = template[..attribute_count]
            .iter()
            .map(|&(key, value)| match value {
                EventValue::Text(text) => text_attribute(key, text),
                EventValue::Int(base) => int_attribute(key, base + self.rng.below(5) as i64),
                EventValue::Double(base) => double_attribute(key, base * (1.0 + self.rng.unit_f64())),
            })
            .collect();
        Event { time_unix_nano, name: name.to_owned(), attributes, dropped_attributes_count: 0 }
    }

    /// The span name and its ~10 semantic-convention attributes for `operation`.
    fn name_and_attributes(
        &mut self,
        service: &ServiceProfile,
        operation: Operation,
        failed: bool,
    ) -> (String, Vec<KeyValue>) {
        let rng = &mut self.rng;
        match operation {
            Operation::HttpServer => {
                let &(method, route, path_prefix) = rng.pick(SERVER_ROUTES);
                let status = if failed {
                    *rng.pick(&[500, 502, 503, 504])
                } else {
                    *rng.pick(&[200, 200, 200, 200, 201, 204, 304, 404])
                };
                let mut attributes = vec![
                    text_attribute("http.request.method", method),
                    text_attribute("http.route", route),
                    text_attribute("url.path", format!("{path_prefix}{}", rng.below(1_000_000))),
                    text_attribute("server.address", format!("{}.example.com", service.name)),
                    int_attribute("server.port", service.port),
                    text_attribute(
                        "client.address",
                        format!("10.{}.{}.{}", rng.below(256), rng.below(256), rng.below(256)),
                    ),
                    text_attribute("user_agent.original", *rng.pick(USER_AGENTS)),
                    int_attribute("http.response.status_code", status),
                    bool_attribute("app.cache.hit", rng.one_in(3)),
                    double_attribute("app.request.queue_ms", rng.unit_f64() * 40.0),
                ];
                if rng.one_in(3) {
                    let count = rng.between(1, ACCEPT_HEADERS.len() as u64) as usize;
                    attributes.push(text_array_attribute("http.request.header.accept", &ACCEPT_HEADERS[..count]));
                }
                (format!("{method} {route}"), attributes)
            }
            Operation::HttpClient => {
                let &(method, host, path_prefix, query) = rng.pick(CLIENT_CALLS);
                let status = if failed { *rng.pick(&[500, 503, 504]) } else { *rng.pick(&[200, 200, 200, 201, 404]) };
                let mut attributes = vec![
                    text_attribute("http.request.method", method),
                    text_attribute("url.full", format!("https://{host}{path_prefix}{}{query}", rng.below(10_000_000))),
                    text_attribute("server.address", host),
                    int_attribute("server.port", 443),
                    text_attribute("network.protocol.version", *rng.pick(&["1.1", "2"])),
                    int_attribute("http.response.status_code", status),
                    int_attribute("http.response.body.size", rng.between(64, 48_000) as i64),
                    bool_attribute("app.retry.enabled", !rng.one_in(4)),
                    double_attribute("app.timeout.seconds", *rng.pick(&[0.5, 2.0, 5.0, 30.0])),
                ];
                if rng.one_in(4) {
                    attributes.push(int_attribute("http.request.resend_count", rng.between(1, 3) as i64));
                }
                if rng.one_in(3) {
                    attributes.push(text_array_attribute("http.request.header.accept", &ACCEPT_HEADERS[..2]));
                }
                (method.to_owned(), attributes)
            }
            Operation::DatabaseClient => {
                let &(system, namespace, operation_name, collection, port, query) = rng.pick(DATABASE_QUERIES);
                let attributes = vec![
                    text_attribute("db.system.name", system),
                    text_attribute("db.namespace", namespace),
                    text_attribute("db.operation.name", operation_name),
                    text_attribute("db.collection.name", collection),
                    text_attribute("db.query.text", query),
                    text_attribute("server.address", format!("{system}-{namespace}.prod.svc.cluster.local")),
                    int_attribute("server.port", port),
                    int_attribute("db.response.returned_rows", rng.below(200) as i64),
                    bool_attribute("app.db.prepared", !rng.one_in(5)),
                    double_attribute("app.db.pool.wait_ms", rng.unit_f64() * 5.0),
                ];
                (format!("{operation_name} {namespace}.{collection}"), attributes)
            }
            Operation::Internal => {
                let &(function, file) = rng.pick(INTERNAL_FUNCTIONS);
                let mut attributes = vec![
                    text_attribute("code.function.name", function),
                    text_attribute("code.file.path", file),
                    int_attribute("code.line.number", rng.between(20, 900) as i64),
                    int_attribute("thread.id", rng.between(1, 64) as i64),
                    text_attribute("thread.name", format!("worker-{}", rng.below(16))),
                    text_attribute("app.user.id", format!("usr_{}", rng.hex(12))),
                    text_attribute("app.tenant.id", *rng.pick(&["acme-eu", "globex", "initech"])),
                    int_attribute("app.items.count", rng.between(1, 40) as i64),
                    bool_attribute("app.cache.hit", rng.one_in(2)),
                    double_attribute("app.discount.ratio", (rng.below(50) as f64) / 100.0),
                ];
                if rng.one_in(4) {
                    attributes
                        .push(text_array_attribute("app.feature_flags", &["new-checkout-flow", "free-shipping-eu"]));
                }
                (function.to_owned(), attributes)
            }
            Operation::Producer | Operation::Consumer => {
                let topic = *rng.pick(TOPICS);
                let (operation_type, verb) =
                    if operation == Operation::Producer { ("send", "publish") } else { ("process", "process") };
                let attributes = vec![
                    text_attribute("messaging.system", "kafka"),
                    text_attribute("messaging.destination.name", topic),
                    text_attribute("messaging.operation.type", operation_type),
                    text_attribute("messaging.operation.name", verb),
                    text_attribute("messaging.message.id", rng.uuid()),
                    text_attribute("messaging.kafka.message.key", format!("order-{}", rng.below(10_000_000))),
                    int_attribute("messaging.kafka.offset", rng.below(90_000_000) as i64),
                    int_attribute("messaging.message.body.size", rng.between(200, 4_000) as i64),
                    bool_attribute("app.message.compressed", rng.one_in(2)),
                    double_attribute("app.message.lag_seconds", rng.unit_f64() * 3.0),
                ];
                (format!("{verb} {topic}"), attributes)
            }
        }
    }
}

fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
}

fn text_attribute(key: &str, value: impl Into<String>) -> KeyValue {
    attribute(key, Value::StringValue(value.into()))
}

fn int_attribute(key: &str, value: i64) -> KeyValue {
    attribute(key, Value::IntValue(value))
}

fn bool_attribute(key: &str, value: bool) -> KeyValue {
    attribute(key, Value::BoolValue(value))
}

fn double_attribute(key: &str, value: f64) -> KeyValue {
    attribute(key, Value::DoubleValue(value))
}

fn text_array_attribute(key: &str, values: &[&str]) -> KeyValue {
    let values = values.iter().map(|&value| AnyValue { value: Some(Value::StringValue(value.to_owned())) }).collect();
    attribute(key, Value::ArrayValue(ArrayValue { values }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_count(request: &ExportTraceServiceRequest) -> usize {
        request
            .resource_spans
            .iter()
            .flat_map(|resource_spans| &resource_spans.scope_spans)
            .map(|scope_spans| scope_spans.spans.len())
            .sum()
    }

    #[test]
    fn hundred_span_payload_has_realistic_size_per_span() {
        let bytes_per_span = encoded(100, 1).len() / 100;
        assert!((350..=700).contains(&bytes_per_span), "{bytes_per_span} bytes per span");
    }

    #[test]
    fn same_seed_gives_same_bytes() {
        assert_eq!(encoded(100, 42), encoded(100, 42));
    }

    #[test]
    fn different_seeds_give_different_bytes() {
        assert_ne!(encoded(100, 42), encoded(100, 43));
    }

    #[test]
    fn span_count_matches_request() {
        for spans in [0, 1, 2, 3, 100, 8192] {
            assert_eq!(span_count(&request(spans, 7)), spans, "requested {spans}");
        }
    }

    #[test]
    fn single_span_uses_single_resource() {
        assert_eq!(request(1, 3).resource_spans.len(), 1);
    }

    #[test]
    fn spans_spread_over_two_or_three_resources() {
        for seed in 0..20 {
            let resources = request(100, seed).resource_spans.len();
            assert!((2..=3).contains(&resources), "seed {seed}: {resources}");
        }
    }

    #[test]
    fn ids_have_valid_lengths_and_parents_exist() {
        let request = request(500, 9);
        let spans: Vec<&Span> = request
            .resource_spans
            .iter()
            .flat_map(|resource_spans| &resource_spans.scope_spans)
            .flat_map(|scope_spans| &scope_spans.spans)
            .collect();
        for span in &spans {
            assert_eq!(span.trace_id.len(), 16);
            assert_eq!(span.span_id.len(), 8);
            if !span.parent_span_id.is_empty() {
                assert!(spans
                    .iter()
                    .any(|candidate| candidate.span_id == span.parent_span_id && candidate.trace_id == span.trace_id));
            }
            assert!(span.end_time_unix_nano > span.start_time_unix_nano);
        }
        assert!(spans.iter().any(|span| span.parent_span_id.is_empty()));
        assert!(spans.iter().any(|span| !span.parent_span_id.is_empty()));
    }

    #[test]
    fn payload_mixes_kinds_events_links_and_errors() {
        let request = request(1000, 5);
        let spans: Vec<&Span> = request
            .resource_spans
            .iter()
            .flat_map(|resource_spans| &resource_spans.scope_spans)
            .flat_map(|scope_spans| &scope_spans.spans)
            .collect();
        for kind in [SpanKind::Server, SpanKind::Client, SpanKind::Internal, SpanKind::Producer, SpanKind::Consumer] {
            assert!(spans.iter().any(|span| span.kind == kind as i32), "{kind:?}");
        }
        let with_events = spans.iter().filter(|span| !span.events.is_empty()).count();
        let with_links = spans.iter().filter(|span| !span.links.is_empty()).count();
        let errors = spans.iter().filter(|span| span.status.is_some()).count();
        assert!((250..=420).contains(&with_events), "{with_events} with events");
        assert!((140..=260).contains(&with_links), "{with_links} with links");
        assert!((25..=80).contains(&errors), "{errors} errors");
    }
}
