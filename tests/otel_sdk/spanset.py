"""The set of spans every SDK-driven end-to-end test sends, shared by the scripts beside it.

Two services with their own resources, three instrumentation scopes, every span kind,
attributes of every type the SDK supports (string, bool, int, double and arrays of each), events
with and without attributes, links with attributes, a remote parent carrying a W3C trace state,
and each status code (an error with a message).

It runs on every SDK version the tests install: the current one (OTLP and Zipkin exporters) and
1.21, the last one the Jaeger Thrift exporter supports, whose `get_tracer` takes no scope
attributes (those are then left out: neither Zipkin nor Jaeger carries them).
"""

import inspect
import random
import time

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"

SERVICES = [
    ("checkout", {"service.version": "4.1.0", "deployment.environment.name": "e2e", "host.cpu.count": 2}),
    ("inventory", {"service.version": "0.3.0-rc.1", "inventory.replica": True, "inventory.weight": 0.5}),
]


def get_tracer(provider, name, version, schema_url=None, attributes=None):
    """`provider.get_tracer`, passing scope attributes only to SDKs that take them."""
    if attributes is not None and "attributes" in inspect.signature(provider.get_tracer).parameters:
        return provider.get_tracer(name, version, schema_url=schema_url, attributes=attributes)
    return provider.get_tracer(name, version, schema_url=schema_url)


def emit_checkout(provider, base):
    """The `checkout` service: a server span under a remote parent, and its children."""
    http = get_tracer(provider, "checkout.http", "2.3.1", schema_url=SCHEMA_URL, attributes={"scope.role": "server"})
    database = get_tracer(provider, "checkout.db", "0.9.0")
    ids = random.Random()
    remote_parent = SpanContext(
        trace_id=ids.getrandbits(128) or 1,
        span_id=ids.getrandbits(64) or 1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("congo", "t61rcWkgMzE"), ("rojo", "00f067aa0ba902b7")]),
    )
    server = http.start_span(
        "POST /checkout",
        context=trace.set_span_in_context(NonRecordingSpan(remote_parent)),
        kind=SpanKind.SERVER,
        start_time=base,
        attributes={
            "http.request.method": "POST",
            "http.response.status_code": 200,
            "url.path": "/checkout",
            "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) \"quoted\" \\ back\\slash",
            "checkout.express": True,
            "checkout.total": 1234.56,
            "checkout.discount": -0.25,
            "checkout.items": ["sku-1", "sku-2", "sku-ÄÖÜ"],
            "checkout.quantities": [1, 2, -3, 2**62],
            "checkout.prices": [9.99, 0.5, 1e-9, 6.02214076e23],
            "checkout.gift_flags": [True, False, True],
            "checkout.note": "",
        },
    )
    server.add_event(
        "request.received",
        attributes={"message.size": 512, "message.compressed": False, "message.ratio": 0.75},
        timestamp=base + 1_000,
    )
    server.add_event("cache.miss", timestamp=base + 2_000)
    parent = trace.set_span_in_context(server)

    validate = http.start_span("validate cart", context=parent, kind=SpanKind.INTERNAL, start_time=base + 10_000)
    validate.set_attribute("cart.lines", 3)
    validate.set_status(Status(StatusCode.OK))
    validate.end(end_time=base + 50_000)

    query = database.start_span(
        "SELECT orders",
        context=parent,
        kind=SpanKind.CLIENT,
        start_time=base + 60_000,
        attributes={
            "db.system.name": "postgresql",
            "db.query.text": "SELECT id, total FROM orders WHERE customer = $1\nLIMIT 10",
            "db.response.returned_rows": 10,
        },
    )
    query.end(end_time=base + 900_000)

    other_trace = SpanContext(
        trace_id=ids.getrandbits(128) or 1,
        span_id=ids.getrandbits(64) or 1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "linked-value")]),
    )
    charge = http.start_span(
        "charge card",
        context=parent,
        kind=SpanKind.CLIENT,
        start_time=base + 1_000_000,
        links=[Link(other_trace, attributes={"link.reason": "retry-of", "link.attempt": 2})],
        attributes={"payment.provider": "acme-pay", "payment.amount": 1234.56},
    )
    charge.add_event(
        "exception",
        attributes={
            "exception.type": "CardExpired",
            "exception.message": "card expired in 2023-09",
            "exception.escaped": True,
        },
        timestamp=base + 1_500_000,
    )
    charge.set_status(Status(StatusCode.ERROR, "payment declined: card expired"))
    charge.end(end_time=base + 2_000_000)

    publish = http.start_span(
        "publish order.created",
        context=parent,
        kind=SpanKind.PRODUCER,
        start_time=base + 2_100_000,
        links=[Link(query.get_span_context())],
        attributes={"messaging.system": "kafka", "messaging.destination.name": "orders"},
    )
    publish.end(end_time=base + 2_200_000)

    server.end(end_time=base + 3_000_000)
    return publish.get_span_context()


def emit_inventory(provider, base, producer_context):
    """The `inventory` service: a consumer root linked to the producer, and two more spans."""
    tracer = get_tracer(provider, "inventory.worker", "1.0.0", schema_url=SCHEMA_URL)
    consume = tracer.start_span(
        "process order.created",
        kind=SpanKind.CONSUMER,
        start_time=base + 4_000_000,
        links=[Link(producer_context, attributes={"messaging.operation.type": "process"})],
        attributes={"messaging.system": "kafka", "messaging.batch.message_count": 1},
    )
    parent = trace.set_span_in_context(consume)
    reserve = tracer.start_span(
        "reserve stock",
        context=parent,
        kind=SpanKind.INTERNAL,
        start_time=base + 4_100_000,
        attributes={
            "stock.sku": "sku-ÄÖÜ ✓ 日本",
            "stock.delta": -3,
            "stock.max": 9_223_372_036_854_775_807,
            "stock.min": -9_223_372_036_854_775_808,
            "stock.warehouses": ["eu-1", ""],
            "stock.reserved": True,
        },
    )
    reserve.end(end_time=base + 4_200_000)
    consume.end(end_time=base + 4_300_000)

    lookup = tracer.start_span(
        "GET /stock/{sku}",
        kind=SpanKind.SERVER,
        start_time=base + 5_000_000,
        attributes={"http.request.method": "GET", "http.route": "/stock/{sku}", "http.response.status_code": 404},
    )
    lookup.add_event("lookup.done", attributes={"found": False, "elapsed.ms": 0.125}, timestamp=base + 5_500_000)
    lookup.end(end_time=base + 6_000_000)


def send_span_set(target, exporter_for_service):
    """Emits the whole set through one TracerProvider per service, each exporting through
    `exporter_for_service(service)`, and flushes. Every service's resource carries `e2e.target`."""
    base = time.time_ns()
    providers = []
    for service, extra in SERVICES:
        resource = Resource.create({"service.name": service, "e2e.target": target, **extra}, schema_url=SCHEMA_URL)
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(exporter_for_service(service), schedule_delay_millis=100))
        providers.append(provider)
    producer = emit_checkout(providers[0], base)
    emit_inventory(providers[1], base, producer)
    for provider in providers:
        if not provider.force_flush(timeout_millis=30_000):
            raise SystemExit(f"{target}: the SDK could not flush its spans within 30 s")
        provider.shutdown()
