#!/usr/bin/env python3
"""Sends one span set with the native (non-OpenTelemetry) Zipkin and Jaeger tracers for Python —
Yelp's py_zipkin and Uber's jaeger-client — and prints each span as the client recorded it, in the
report format of send.js (its header says what is printed), for tests/native_clients.rs.

Usage (in the venv .venv-native that tools/test builds from requirements.txt here):
    send_py.py --target zipkin-v2=http://127.0.0.1:9411/api/v2/spans
    send_py.py --target zipkin-proto=http://127.0.0.1:9411/api/v2/spans
    send_py.py --target zipkin-v1=http://127.0.0.1:9411/api/v1/spans
    send_py.py --target jaeger-agent=127.0.0.1:6831      (compact Thrift over UDP)

Zipkin spans are recorded as py_zipkin's own Zipkin v2 JSON of each span, whichever encoding was
sent. Jaeger spans are recorded from the Thrift span the client encodes: its tags keep their
Thrift type (Python ints are LONG, floats DOUBLE).

Exits with status 1, naming the target, when a request was not accepted.
"""

import argparse
import json
import sys
import time

import requests
import py_zipkin.logging_helper
from py_zipkin.encoding import Encoding
from py_zipkin.transport import BaseTransportHandler
from py_zipkin.zipkin import zipkin_span
import jaeger_client
import opentracing
from jaeger_client import thrift as jaeger_thrift
from jaeger_client.reporter import CompositeReporter, InMemoryReporter
from jaeger_client.thrift_gen.jaeger.ttypes import SpanRefType, TagType

ZIPKIN_ENCODINGS = {
    "zipkin-v2": (Encoding.V2_JSON, "application/json"),
    "zipkin-proto": (Encoding.V2_PROTO3, "application/x-protobuf"),
    "zipkin-v1": (Encoding.V1_JSON, "application/json"),
}


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


class HttpTransport(BaseTransportHandler):
    """Posts each message and keeps the answers that were not 202."""

    def __init__(self, url, content_type):
        self.url, self.content_type, self.failures = url, content_type, []

    def get_max_payload_bytes(self):
        return None

    def send(self, payload):
        body = payload.encode() if isinstance(payload, str) else payload
        answer = requests.post(self.url, data=body, headers={"Content-Type": self.content_type}, timeout=10)
        if answer.status_code != 202:
            self.failures.append(f"{answer.status_code} {answer.text}")


class RecordingEncoders:
    """Makes py_zipkin's encoders also put each span's v2 JSON in `spans`, installed once."""

    def __init__(self):
        self.spans = []
        real_get_encoder = py_zipkin.logging_helper.get_encoder
        v2_json = real_get_encoder(Encoding.V2_JSON)
        recording = self

        class Recording:
            def __init__(self, inner, encoding):
                self.inner, self.encoding = inner, encoding

            def encode_span(self, span):
                record = json.loads(v2_json.encode_span(span))
                if self.encoding == Encoding.V2_PROTO3:
                    # The protobuf encoder turns seconds into microseconds as `x * 1000 * 1000`,
                    # the JSON ones as `x * 1000000`; the two can truncate a microsecond apart.
                    # The record carries the times this encoding sent.
                    micros = lambda seconds: int(seconds * 1000 * 1000)
                    record["timestamp"], record["duration"] = micros(span.timestamp), micros(span.duration)
                    for annotation in record.get("annotations", []):
                        annotation["timestamp"] = micros(span.annotations[annotation["value"]])
                recording.spans.append(record)
                return self.inner.encode_span(span)

            def __getattr__(self, name):
                return getattr(self.inner, name)

        py_zipkin.logging_helper.get_encoder = lambda encoding: Recording(real_get_encoder(encoding), encoding)

    def take(self):
        spans, self.spans = self.spans, []
        return spans


ZIPKIN_RECORDER = RecordingEncoders()


def send_zipkin(kind, url):
    encoding, content_type = ZIPKIN_ENCODINGS[kind]
    ZIPKIN_RECORDER.take()
    transport = HttpTransport(url, content_type)
    # A server span with a local address, a tag, an `error` tag and an annotation; a client
    # child that names the remote service and its address.
    with zipkin_span(
        service_name="shop-cart",
        span_name="GET /cart",
        transport_handler=transport,
        sample_rate=100.0,
        encoding=encoding,
        host="10.1.2.3",
        port=8000,
        binary_annotations={"http.path": "/cart"},
    ) as root:
        root.add_annotation("cache.miss")
        with zipkin_span(service_name="shop-cart", span_name="SELECT cart", kind=py_zipkin.Kind.CLIENT) as child:
            child.update_binary_annotations({"db.statement": "select 1"})
            child.add_sa_binary_annotation(port=5432, service_name="postgres", host="10.1.2.9")
        root.update_binary_annotations({"error": "cart unavailable"})
    if transport.failures:
        fail(f"{kind}: {'; '.join(transport.failures)}")
    return {"service": "", "process_tags": [], "spans": ZIPKIN_RECORDER.take()}


def typed_tag(tag):
    """A Thrift tag as [key, typed value]."""
    if tag.vType == TagType.STRING:
        return [tag.key, {"string": tag.vStr}]
    if tag.vType == TagType.BOOL:
        return [tag.key, {"bool": tag.vBool}]
    if tag.vType == TagType.LONG:
        return [tag.key, {"int": tag.vLong}]
    if tag.vType == TagType.DOUBLE:
        return [tag.key, {"double": repr(tag.vDouble)}]
    return [tag.key, {"bytes": list(tag.vBinary)}]


def hex_id(number):
    return f"{number & 0xFFFFFFFFFFFFFFFF:016x}" if number else ""


def send_jaeger(kind, where):
    host, port = where.rsplit(":", 1)
    config = jaeger_client.Config(
        config={
            "sampler": {"type": "const", "param": 1},
            "local_agent": {"reporting_host": host, "reporting_port": int(port)},
            "tags": {"deployment.environment": "test", "build.number": 42},
        },
        service_name="shop-stock",
        validate=True,
    )
    tracer = config.new_tracer()
    sending = tracer.reporter
    memory = InMemoryReporter()
    tracer.reporter = CompositeReporter(sending, memory)
    with tracer.start_active_span(
        "GET /stock", tags={"span.kind": "server", "http.status_code": 500, "ratio": 0.5, "cached": False}
    ) as scope:
        scope.span.log_kv({"event": "cache.miss", "key": "sku:9"})
        scope.span.log_kv({"message": "stock counted", "items": 3})
        with tracer.start_active_span("UPDATE stock", tags={"span.kind": "client", "peer.service": "postgres"}) as child:
            child.span.set_tag("error", True)
        audit = tracer.start_span("audit", references=[opentracing.follows_from(scope.span.context)])
        audit.finish()
    # Closing the sending reporter flushes its queue on the reporter's own thread and resolves
    # there (the composite's future would resolve on this thread's event loop, which is not
    # running); UDP has no answer to wait for beyond that.
    closed = sending.close()
    deadline = time.monotonic() + 10
    while not closed.done():
        if time.monotonic() > deadline:
            fail(f"{kind}: the tracer did not flush within 10 s")
        time.sleep(0.01)
    time.sleep(0.2)
    batch = jaeger_thrift.make_jaeger_batch(memory.get_spans(), process=None)
    spans = []
    for span in batch.spans:
        spans.append({
            "trace_id": hex_id(span.traceIdLow),
            "span_id": hex_id(span.spanId),
            "parent_span_id": hex_id(span.parentSpanId),
            "name": span.operationName,
            "start_us": span.startTime,
            "duration_us": span.duration,
            "tags": [typed_tag(tag) for tag in span.tags or []],
            "logs": [
                {"timestamp_us": log.timestamp, "fields": [typed_tag(field) for field in log.fields]}
                for log in span.logs or []
            ],
            "references": [
                {
                    "type": "follows_from" if reference.refType == SpanRefType.FOLLOWS_FROM else "child_of",
                    "trace_id": hex_id(reference.traceIdLow),
                    "span_id": hex_id(reference.spanId),
                }
                for reference in span.references or []
            ],
        })
    # The process's tags as the client encodes them for the batch.
    encoded = jaeger_thrift.make_tags(
        tracer.tags, max_length=tracer.max_tag_value_length, max_traceback_length=tracer.max_traceback_length
    )
    process_tags = [typed_tag(tag) for tag in encoded]
    return {"service": tracer.service_name, "process_tags": process_tags, "spans": spans}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", required=True)
    arguments = parser.parse_args()
    report = {"targets": []}
    for target in arguments.target:
        kind, where = target.split("=", 1)
        if kind in ZIPKIN_ENCODINGS:
            sent = send_zipkin(kind, where)
        elif kind == "jaeger-agent":
            sent = send_jaeger(kind, where)
        else:
            fail(f"unknown target kind `{kind}`")
        report["targets"].append({"target": target, **sent})
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
