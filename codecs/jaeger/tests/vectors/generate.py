#!/usr/bin/env python3
"""Writes the Jaeger Thrift test vectors with Apache Thrift's own Python library.

The vectors check spanpipe's hand-written reader against someone else's writer, so they are
made with the `thrift` package (Debian: python3-thrift) and code that the Thrift compiler
(Debian: thrift-compiler) generates from jaeger-idl's jaeger.thrift and agent.thrift:

    thrift -r --gen py -out GEN ../../benches/idl/agent.thrift
    PYTHONPATH=GEN python3 generate.py

The expected OTLP of each vector (`*.otlp.json`) is written by hand from the mapping in the
crate docs, not by this script.
"""

import os

from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.transport import TTransport
from thrift.Thrift import TMessageType

from jaeger.ttypes import Batch, Log, Process, Span, SpanRef, SpanRefType, Tag, TagType
from agent.Agent import emitBatch_args

HERE = os.path.dirname(os.path.abspath(__file__))


def tag(key, **value):
    kind, v = next(iter(value.items()))
    vtype = {"vStr": TagType.STRING, "vDouble": TagType.DOUBLE, "vBool": TagType.BOOL,
             "vLong": TagType.LONG, "vBinary": TagType.BINARY}[kind]
    return Tag(key=key, vType=vtype, **value)


def full_batch():
    """128-bit ids, every tag type, logs, references, status, scope, trace state."""
    process = Process(serviceName="checkout", tags=[
        tag("hostname", vStr="host-1"),
        tag("jaeger.version", vStr="Python-4.8.0"),
        tag("ip", vStr="10.0.0.7"),
        tag("process.pid", vLong=4242),
    ])
    root = Span(
        traceIdLow=-0x0123456789abcdf0,  # 0xfedcba9876543210 as i64
        traceIdHigh=0x0af7651916cd43dd,
        spanId=-0x1000000000000000,     # 0xf000000000000000
        parentSpanId=0,
        operationName="GET /cart",
        flags=1,
        startTime=1_700_000_000_000_123,
        duration=2_500,
        tags=[
            tag("span.kind", vStr="server"),
            tag("http.method", vStr="GET"),
            tag("ratio", vDouble=0.25),
            tag("cache.hit", vBool=False),
            tag("http.status_code", vLong=503),
            tag("payload", vBinary=b"\x00\x01\xfe\xff"),
            tag("otel.status_code", vStr="ERROR"),
            tag("error", vBool=True),
            tag("otel.status_description", vStr="upstream unavailable"),
            tag("w3c.tracestate", vStr="vendor=abc,other=1"),
            tag("otel.scope.name", vStr="io.opentelemetry.http"),
            tag("otel.scope.version", vStr="1.2.3"),
        ],
        logs=[
            Log(timestamp=1_700_000_000_000_200, fields=[
                tag("event", vStr="retry"),
                tag("attempt", vLong=2),
                tag("backoff.ok", vBool=True),
            ]),
            Log(timestamp=1_700_000_000_000_300, fields=[tag("message", vStr="no name here")]),
        ],
    )
    child = Span(
        traceIdLow=-0x0123456789abcdf0,
        traceIdHigh=0x0af7651916cd43dd,
        spanId=0x0000000000000002,
        parentSpanId=-0x1000000000000000,
        operationName="SELECT cart",
        references=[
            SpanRef(refType=SpanRefType.CHILD_OF, traceIdLow=-0x0123456789abcdf0,
                    traceIdHigh=0x0af7651916cd43dd, spanId=-0x1000000000000000),
            SpanRef(refType=SpanRefType.FOLLOWS_FROM, traceIdLow=7, traceIdHigh=0, spanId=9),
            SpanRef(refType=SpanRefType.CHILD_OF, traceIdLow=7, traceIdHigh=0, spanId=10),
        ],
        flags=3,
        startTime=1_700_000_000_000_150,
        duration=1_000,
        tags=[
            tag("span.kind", vStr="client"),
            tag("db.system", vStr="postgresql"),
            tag("otel.status_code", vStr="ok"),
        ],
    )
    return Batch(process=process, spans=[root, child])


def minimal_batch():
    """64-bit ids (traceIdHigh 0), parent only as a CHILD_OF reference, optional fields absent."""
    span = Span(
        traceIdLow=0x00000000075bcd15,
        traceIdHigh=0,
        spanId=0x0000000000000abc,
        parentSpanId=0,
        operationName="poll",
        references=[SpanRef(refType=SpanRefType.CHILD_OF, traceIdLow=0x00000000075bcd15,
                            traceIdHigh=0, spanId=0x0000000000000def)],
        flags=0,
        startTime=1_600_000_000_000_000,
        duration=0,
    )
    return Batch(process=Process(serviceName="worker"), spans=[span])


def http_batch():
    """The collector's HTTP body: deprecated scope tags, HTTP status fallback, dropped counts."""
    span = Span(
        traceIdLow=1, traceIdHigh=2, spanId=3, parentSpanId=4,
        operationName="POST /pay", flags=1, startTime=1_650_000_000_000_000, duration=42,
        tags=[
            tag("otel.library.name", vStr="payments"),
            tag("otel.library.version", vStr="0.9"),
            tag("span.kind", vStr="client"),
            tag("http.status_code", vLong=404),
            tag("otel.dropped_attributes_count", vLong=3),
            tag("otel.dropped_events_count", vLong=1),
            tag("otel.dropped_links_count", vLong=2),
            tag("peer.service", vStr="bank"),
        ],
        logs=[Log(timestamp=1_650_000_000_000_010, fields=[
            tag("event", vStr="sent"),
            tag("otel.event.dropped_attributes_count", vLong=5),
        ])],
    )
    second = Span(
        traceIdLow=1, traceIdHigh=2, spanId=5, parentSpanId=3,
        operationName="sign", flags=1, startTime=1_650_000_000_000_001, duration=7,
    )
    return Batch(process=Process(serviceName="payments-api", tags=[tag("ratio", vDouble=-1.5)]),
                 spans=[span, second])


def repeated_keys_batch():
    """Tag keys given twice, in the process, the span and a log: the last value of each counts
    (the Collector reads them into maps), and a process's `service.name` tag counts over its
    `serviceName`, as in the Collector."""
    process = Process(serviceName="cart", tags=[
        tag("service.name", vStr="shop"),
        tag("ip", vStr="10.0.0.1"),
        tag("ip", vStr="10.0.0.2"),
        tag("hostname", vStr="h1"),
        tag("hostname", vStr="h2"),
    ])
    span = Span(
        traceIdLow=1, traceIdHigh=0, spanId=2, parentSpanId=0,
        operationName="op", flags=1, startTime=1_700_000_000_000_000, duration=5,
        tags=[
            tag("http.method", vStr="GET"),
            tag("component", vStr="a"),
            tag("http.method", vStr="POST"),
            tag("span.kind", vStr="client"),
            tag("span.kind", vStr="server"),
            tag("retries", vLong=1),
            tag("retries", vLong=2),
            tag("error", vBool=False),
            tag("error", vBool=True),
        ],
        logs=[Log(timestamp=1_700_000_000_000_001, fields=[
            tag("event", vStr="retry"),
            tag("k", vStr="1"),
            tag("k", vStr="2"),
            tag("event", vStr="again"),
        ])],
    )
    return Batch(process=process, spans=[span])


def message(protocol_factory, batch, kind=TMessageType.ONEWAY):
    buf = TTransport.TMemoryBuffer()
    proto = protocol_factory(buf)
    proto.writeMessageBegin("emitBatch", kind, 7)
    emitBatch_args(batch=batch).write(proto)
    proto.writeMessageEnd()
    return buf.getvalue()


def bare(protocol_factory, batch):
    buf = TTransport.TMemoryBuffer()
    batch.write(protocol_factory(buf))
    return buf.getvalue()


def main():
    compact = TCompactProtocol.TCompactProtocol
    strict = TBinaryProtocol.TBinaryProtocol
    non_strict = lambda t: TBinaryProtocol.TBinaryProtocol(t, strictWrite=False)  # noqa: E731
    vectors = {
        "agent_compact_full.bin": message(compact, full_batch()),
        "agent_binary_full.bin": message(strict, full_batch()),
        "agent_compact_minimal.bin": message(compact, minimal_batch()),
        "agent_binary_minimal.bin": message(strict, minimal_batch()),
        "agent_binary_minimal_non_strict_call.bin": message(non_strict, minimal_batch(), TMessageType.CALL),
        "http_binary.bin": bare(strict, http_batch()),
        "agent_compact_repeated_keys.bin": message(compact, repeated_keys_batch()),
    }
    for name, data in vectors.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
