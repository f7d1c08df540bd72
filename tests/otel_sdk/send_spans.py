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
error with a message): the span set of spanset.py.

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
import sys

import grpc
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanset import send_span_set


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
    recorders = []

    def exporter_for_service(_service):
        recorder = RecordingExporter(make_exporter(target, ca_file))
        recorders.append(recorder)
        return recorder

    send_span_set(target, exporter_for_service)
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
