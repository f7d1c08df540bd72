#!/usr/bin/env python3
"""Sends the span set of spanset.py with the OpenTelemetry Python SDK's Zipkin or Jaeger exporters
and prints, as JSON on standard output, the spans the SDK handed to the exporter for every export
that succeeded, so that tests/legacy_protocols.rs can check what arrived through spanpipe
against the OpenTelemetry specification's mapping of each protocol.

Usage (each target runs in the venv holding its exporter):
    send_legacy.py --target zipkin-json=http://127.0.0.1:9411/api/v2/spans
    send_legacy.py --target zipkin-v1-json=http://127.0.0.1:9411/api/v1/spans
    send_legacy.py --target zipkin-proto=http://127.0.0.1:9411/api/v2/spans
    send_legacy.py --target jaeger-agent=127.0.0.1:6831
    send_legacy.py --target jaeger-collector=http://127.0.0.1:14268/api/traces
    send_legacy.py --target jaeger-grpc=127.0.0.1:14250

The Zipkin targets use opentelemetry-exporter-zipkin-json (v2 or v1 JSON) and
opentelemetry-exporter-zipkin-proto-http; the Jaeger targets opentelemetry-exporter-jaeger-thrift
1.21 in agent mode (compact Thrift over UDP) or collector mode (binary Thrift over HTTP), and
opentelemetry-exporter-jaeger-proto-grpc 1.21 (protobuf over gRPC, the collector's port 14250).

Printed: {"targets": [{"target": "...", "spans": [SPAN, ...]}]}, SPAN holding what the SDK
recorded — not what the exporter encoded, since the point is to check the whole path from the
SDK's span to what comes out of spanpipe: ids in lowercase hex, the OTLP span kind and status
code numbers, times in Unix nanoseconds, attributes as ordered [key, value] pairs tagged with
their type ({"string": s}, {"bool": b}, {"int": i}, {"double": "repr"}, {"array": [...]}),
events, links, the resource's attributes and the instrumentation scope's name and version.

Exits with status 1, naming the target, when any export did not succeed.
"""

import argparse
import json
import sys
import warnings

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanset import send_span_set

# Longer than any value of the span set, so no tag is truncated by the Zipkin encoders.
MAX_TAG_LENGTH = 65536

# The Jaeger exporter announces its deprecation on every construction; the tests know.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=__name__)


class RecordingExporter(SpanExporter):
    """Passes spans to the real exporter and keeps those of every export that succeeded."""

    def __init__(self, inner):
        self.inner = inner
        self.spans = []
        self.failures = 0

    def export(self, spans):
        try:
            result = self.inner.export(spans)
        except Exception:
            # Some exporters raise instead of reporting failure; the SDK would only log it.
            self.failures += 1
            raise
        if result == SpanExportResult.SUCCESS:
            self.spans.extend(spans)
        else:
            self.failures += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def make_exporter(target):
    protocol, _, endpoint = target.partition("=")
    if protocol in ("zipkin-json", "zipkin-v1-json"):
        from opentelemetry.exporter.zipkin.encoder import Protocol
        from opentelemetry.exporter.zipkin.json import ZipkinExporter

        version = Protocol.V2 if protocol == "zipkin-json" else Protocol.V1
        # An explicit tag length limit: the v1 encoder of this exporter fails on its default (None).
        return ZipkinExporter(version=version, endpoint=endpoint, max_tag_value_length=MAX_TAG_LENGTH, timeout=20)
    if protocol == "zipkin-proto":
        from opentelemetry.exporter.zipkin.proto.http import ZipkinExporter

        return ZipkinExporter(endpoint=endpoint, max_tag_value_length=MAX_TAG_LENGTH, timeout=20)
    if protocol == "jaeger-agent":
        from opentelemetry.exporter.jaeger.thrift import JaegerExporter

        host, _, port = endpoint.rpartition(":")
        return JaegerExporter(agent_host_name=host, agent_port=int(port), udp_split_oversized_batches=True)
    if protocol == "jaeger-collector":
        from opentelemetry.exporter.jaeger.thrift import JaegerExporter

        return JaegerExporter(collector_endpoint=endpoint, timeout=20)
    if protocol == "jaeger-grpc":
        from opentelemetry.exporter.jaeger.proto.grpc import JaegerExporter

        return JaegerExporter(collector_endpoint=endpoint, insecure=True, timeout=20)
    raise SystemExit(f"unknown protocol in --target {target!r}")


def typed(value):
    """A Python attribute value as a type-tagged JSON value (bool before int: bool is an int)."""
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, float):
        return {"double": repr(value)}
    if isinstance(value, str):
        return {"string": value}
    if isinstance(value, (list, tuple)):
        return {"array": [typed(item) for item in value]}
    raise TypeError(f"unexpected attribute value {value!r}")


def pairs(attributes):
    return [[key, typed(value)] for key, value in (attributes or {}).items()]


def scope_of(span):
    # SDK 1.21 names it instrumentation_info as well; both carry name and version.
    scope = getattr(span, "instrumentation_scope", None) or span.instrumentation_info
    return scope.name, scope.version or ""


def describe(span):
    context = span.get_span_context()
    scope_name, scope_version = scope_of(span)
    return {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else "",
        "trace_state": context.trace_state.to_header(),
        "name": span.name,
        # The SDK numbers kinds from INTERNAL = 0; OTLP from UNSPECIFIED = 0.
        "kind": span.kind.value + 1,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "attributes": pairs(span.attributes),
        "events": [
            {"name": event.name, "time_unix_nano": event.timestamp, "attributes": pairs(event.attributes)}
            for event in span.events
        ],
        "links": [
            {
                "trace_id": f"{link.context.trace_id:032x}",
                "span_id": f"{link.context.span_id:016x}",
                "attributes": pairs(link.attributes),
            }
            for link in span.links
        ],
        "status_code": span.status.status_code.value,
        "status_message": span.status.description or "",
        "resource_attributes": pairs(span.resource.attributes),
        "scope_name": scope_name,
        "scope_version": scope_version,
    }


def send(target):
    recorders = []

    def exporter_for_service(_service):
        recorder = RecordingExporter(make_exporter(target))
        recorders.append(recorder)
        return recorder

    send_span_set(target, exporter_for_service)
    for recorder in recorders:
        if recorder.failures:
            raise SystemExit(f"{target}: {recorder.failures} export(s) failed (see the SDK's log above)")
    return {"target": target, "spans": [describe(span) for recorder in recorders for span in recorder.spans]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", required=True, help="protocol=endpoint, see above")
    arguments = parser.parse_args()
    report = {"targets": [send(target) for target in arguments.target]}
    json.dump(report, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
