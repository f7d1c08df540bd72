#!/usr/bin/env python3
"""Writes the protobuf test vectors (`*.proto.zipkin.pb`) from the descriptions below.

An encoder of its own (plain varints and tags, no protobuf library) so that the vectors do not
come from the code they test. Each vector holds the same spans as the JSON vector of its case and
decodes to the same `<case>.otlp.json`. Run from this directory: `python3 make_proto.py`.
"""
import ipaddress
import struct


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def tag(number, wire):
    return varint(number << 3 | wire)


def length(number, payload):
    return tag(number, 2) + varint(len(payload)) + payload


def fixed64(number, value):
    return tag(number, 1) + struct.pack("<Q", value)


def uint(number, value):
    return tag(number, 0) + varint(value)


def endpoint(service=None, ipv4=None, ipv6=None, port=None):
    out = b""
    if service is not None:
        out += length(1, service.encode())
    if ipv4 is not None:
        out += length(2, ipaddress.IPv4Address(ipv4).packed)
    if ipv6 is not None:
        out += length(3, ipaddress.IPv6Address(ipv6).packed)
    if port is not None:
        out += uint(4, port)
    return out


def span(trace_id, id, parent_id=None, kind=None, name=None, timestamp=None, duration=None,
         local=None, remote=None, annotations=(), tags=(), debug=None, shared=None, extra=b""):
    out = length(1, bytes.fromhex(trace_id))
    if parent_id is not None:
        out += length(2, bytes.fromhex(parent_id))
    out += length(3, bytes.fromhex(id))
    if kind is not None:
        out += uint(4, kind)
    if name is not None:
        out += length(5, name.encode())
    if timestamp is not None:
        out += fixed64(6, timestamp)
    if duration is not None:
        out += uint(7, duration)
    if local is not None:
        out += length(8, local)
    if remote is not None:
        out += length(9, remote)
    for ts, value in annotations:
        out += length(10, fixed64(1, ts) + length(2, value.encode()))
    for key, value in tags:
        out += length(11, length(1, key.encode()) + length(2, value.encode()))
    if debug is not None:
        out += uint(12, debug)
    if shared is not None:
        out += uint(13, shared)
    return out + extra


def list_of_spans(*spans):
    return b"".join(length(1, s) for s in spans)


SERVER = 2

VECTORS = {
    "full.proto.zipkin.pb": list_of_spans(span(
        "463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312", parent_id="0020000000000001",
        kind=SERVER, name="get /api", timestamp=1556604172355737, duration=1431,
        local=endpoint("frontend", ipv4="192.168.99.1", port=8080),
        remote=endpoint("browser", ipv6="2001:db8::c001", port=51234),
        annotations=[(1556604172355800, "wr"), (1556604172356000, '"retry":{"attempt":2,"ok":true}')],
        tags=[("http.method", "GET"), ("http.path", "/api"), ("otel.scope.name", "io.opentelemetry.http"),
              ("otel.scope.version", "1.2.3"), ("otel.status_code", "ERROR"), ("error", "upstream timed out"),
              ("w3c.tracestate", "rojo=00f067aa0ba902b7"), ("otel.dropped_attributes_count", "3"),
              ("otel.dropped_events_count", "1")],
        debug=1, shared=1,
        # An unknown field of every wire type, which a reader must skip.
        extra=uint(99, 7) + fixed64(98, 1) + length(97, b"x") + tag(96, 5) + b"\0\0\0\0",
    )),
    # 64-bit trace id as 8 bytes; no timestamp, no endpoint, no name.
    "minimal.proto.zipkin.pb": list_of_spans(span("48485a3953bb6124", "0000000000000001", duration=5)),
    # Tag keys given twice (map entries repeating a key): the last value of each counts.
    "repeated_keys.proto.zipkin.pb": list_of_spans(
        span("0000000000000001", "000000000000000a", name="A", timestamp=1, duration=1, local=endpoint("cart"),
             annotations=[(1, '"ev":{"k":1,"j":true,"k":2}')],
             tags=[("a", "1"), ("http.route", "/a"), ("a", "2"), ("host.name", "node-1"), ("host.name", "node-2"),
                   ("error", "boom"), ("error", "false")]),
        span("0000000000000001", "000000000000000b", name="B", timestamp=2, duration=1, local=endpoint("cart"),
             tags=[("host.name", "node-2")]),
        span("0000000000000001", "000000000000000c", name="C", local=endpoint("cart"),
             tags=[("otel.zipkin.absentField.startTime", "true"), ("otel.status_code", "ERROR"),
                   ("otel.status_code", "OK")]),
        span("0000000000000001", "000000000000000d", name="D", timestamp=4, duration=1,
             tags=[("service.name", "shop"), ("service.name", "cart")]),
    ),
}

if __name__ == "__main__":
    for name, data in VECTORS.items():
        with open(name, "wb") as f:
            f.write(data)
