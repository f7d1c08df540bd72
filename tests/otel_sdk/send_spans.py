#!/usr/bin/env python3
"""Sends a known set of spans with the OpenTelemetry Python SDK's OTLP exporters and prints, as
JSON on standard output, exactly what the SDK sent, so that tests/otel_sdk.rs can check field by
field what arrived at the other end of spanpipe.

Usage:
    send_spans.py --target grpc=127.0.0.1:4317 --target http=http://127.0.0.1:4318/v1/traces
    send_spans.py --ca-file ca.pem --target grpc=localhost:4317 --target http=https://localhost:4318/v1/traces

With --ca-file, both exporters use TLS and trust only the CA certificates in that PEM file: the
gRPC exporter with grpc.ssl_channel_credentials (insecure=False), the HTTP exporter with
certificate_file (the URL must then be https://).

Each target gets the whole set with its own trace and span ids (the SDK's random ids), through
the SDK's OTLP/gRPC exporter (`grpc=host:port`, uncompressed: the SDK's default) or its
OTLP/HTTP protobuf exporter (`http=URL`, gzip). The set covers two services with their own
resources, three instrumentation scopes, every span kind, attributes of every type the SDK
supports (string, bool, int, double and arrays of each), events with and without attributes,
links with attributes, a remote parent carrying a W3C trace state, and each status code (an
error with a message).

What is printed is read from the requests the SDK's OTLP encoder built for the exports that
succeeded, not from the spans before encoding: the test compares against what was on the wire
(this SDK, for one, does not encode a link's trace state, and sets span flags from the parent).

Printed: {"targets": [{"target": "grpc=...", "spans": [SPAN, ...]}, ...]}, where SPAN holds
ids in lowercase hex, kinds, status codes and flags as OTLP numbers, times in Unix nanoseconds,
attributes as ordered [key, value] pairs, and each value tagged with its type:
{"string": s}, {"bool": b}, {"int": i}, {"double": "repr"} (the shortest text that reads back
as the same double) or {"array": [value, ...]}.

Exits with status 1, naming the target, when any export did not succeed.
"""

import argparse
import json
import random
import sys
import time

import grpc
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"


class RecordingExporter(SpanExporter):
    """Passes spans to the real exporter and keeps, for each successful export, the request it
    sent: built by the SDK's own encoder, the function both OTLP exporters send the result of."""

    def __init__(self, inner):
        self.inner = inner
        self.requests = []
        self.failures = 0

    def export(self, spans):
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            self.requests.append(encode_spans(spans))
        else:
            self.failures += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


def make_exporter(target, ca_file):
    protocol, _, endpoint = target.partition("=")
    if protocol == "grpc":
        if ca_file is None:
            return GrpcSpanExporter(endpoint=endpoint, insecure=True, timeout=20)
        with open(ca_file, "rb") as pem:
            credentials = grpc.ssl_channel_credentials(root_certificates=pem.read())
        return GrpcSpanExporter(endpoint=endpoint, insecure=False, credentials=credentials, timeout=20)
    if protocol == "http":
        return HttpSpanExporter(
            endpoint=endpoint, compression=HttpCompression.Gzip, timeout=20, certificate_file=ca_file
        )
    raise SystemExit(f"unknown protocol in --target {target!r}: use grpc=host:port or http=URL")


def emit_checkout(provider, base):
    """The `checkout` service: a server span under a remote parent, and its children."""
    http = provider.get_tracer("checkout.http", "2.3.1", schema_url=SCHEMA_URL, attributes={"scope.role": "server"})
    database = provider.get_tracer("checkout.db", "0.9.0")
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
    tracer = provider.get_tracer("inventory.worker", "1.0.0", schema_url=SCHEMA_URL)
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


def typed(value):
    """An OTLP `AnyValue` message as a type-tagged JSON value."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return {"string": value.string_value}
    if kind == "bool_value":
        return {"bool": value.bool_value}
    if kind == "int_value":
        return {"int": value.int_value}
    if kind == "double_value":
        return {"double": repr(value.double_value)}
    if kind == "array_value":
        return {"array": [typed(item) for item in value.array_value.values]}
    raise TypeError(f"the SDK encoded an attribute value of unexpected type {kind}")


def pairs(attributes):
    return [[pair.key, typed(pair.value)] for pair in attributes]


def describe(request):
    """Every span of an OTLP export request, with its resource and scope."""
    for resource_spans in request.resource_spans:
        resource = resource_spans.resource
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            for span in scope_spans.spans:
                yield {
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "trace_state": span.trace_state,
                    "flags": span.flags,
                    "name": span.name,
                    "kind": span.kind,
                    "start_time_unix_nano": span.start_time_unix_nano,
                    "end_time_unix_nano": span.end_time_unix_nano,
                    "attributes": pairs(span.attributes),
                    "events": [
                        {"name": event.name, "time_unix_nano": event.time_unix_nano, "attributes": pairs(event.attributes)}
                        for event in span.events
                    ],
                    "links": [
                        {
                            "trace_id": link.trace_id.hex(),
                            "span_id": link.span_id.hex(),
                            "trace_state": link.trace_state,
                            "flags": link.flags,
                            "attributes": pairs(link.attributes),
                        }
                        for link in span.links
                    ],
                    "status_code": span.status.code,
                    "status_message": span.status.message,
                    "resource_attributes": pairs(resource.attributes),
                    "resource_schema_url": resource_spans.schema_url,
                    "scope_name": scope.name,
                    "scope_version": scope.version,
                    "scope_schema_url": scope_spans.schema_url,
                    "scope_attributes": pairs(scope.attributes),
                }


def send(target, ca_file):
    base = time.time_ns()
    recorders = []
    providers = []
    for service, extra in [
        ("checkout", {"service.version": "4.1.0", "deployment.environment.name": "e2e", "host.cpu.count": 2}),
        ("inventory", {"service.version": "0.3.0-rc.1", "inventory.replica": True, "inventory.weight": 0.5}),
    ]:
        resource = Resource.create({"service.name": service, "e2e.target": target, **extra}, schema_url=SCHEMA_URL)
        provider = TracerProvider(resource=resource)
        recorder = RecordingExporter(make_exporter(target, ca_file))
        provider.add_span_processor(BatchSpanProcessor(recorder, schedule_delay_millis=100))
        recorders.append(recorder)
        providers.append(provider)
    producer = emit_checkout(providers[0], base)
    emit_inventory(providers[1], base, producer)
    for provider in providers:
        if not provider.force_flush(timeout_millis=30_000):
            raise SystemExit(f"{target}: the SDK could not flush its spans within 30 s")
        provider.shutdown()
    for recorder in recorders:
        if recorder.failures:
            raise SystemExit(f"{target}: {recorder.failures} export(s) failed (see the SDK's log above)")
    spans = [span for recorder in recorders for request in recorder.requests for span in describe(request)]
    return {"target": target, "spans": spans}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", required=True, help="grpc=host:port or http=URL")
    parser.add_argument("--ca-file", help="use TLS, trusting the CA certificates in this PEM file")
    arguments = parser.parse_args()
    report = {"targets": [send(target, arguments.ca_file) for target in arguments.target]}
    json.dump(report, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
