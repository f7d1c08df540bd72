#!/usr/bin/env python3
"""Writes the MessagePack test vectors from their expected OTLP (OTLP/JSON, `*.expected.json`).

The encoder is Python's `msgpack` package (1.x: `use_bin_type=True`, doubles as float 64, the
smallest integer forms), independent of spanpipe's Rust code. This script applies the mapping
documented in the crate docs by itself:

- `<name>.canonical.msgpack`: what spanpipe writes — lowerCamelCase keys in protobuf field-number
  order, ids as bin, times/counts/int64 as integers, enums as integers, bytes as bin. The codec's
  encoder must reproduce these bytes exactly.
- `<name>.alternative.msgpack`: every leniency the decoder documents — snake_case keys in reverse
  order (so a KeyValue's value precedes its key), ids as hex strings of upper case, 64-bit
  integers and counts as decimal strings, enums by name, bytes as unpadded URL-safe base64,
  doubles as float 32 where exact or as strings, nil for absent fields, unknown keys holding
  nested values and ext values.

Run from this directory: `python3 generate.py` (needs `pip install msgpack`).
"""

import base64
import glob
import json
import math
import os
import struct

import msgpack

# Field name -> kind, in protobuf field-number order, per message.
SCHEMA = {
    "Request": [("resourceSpans", "[ResourceSpans")],
    "ResourceSpans": [("resource", "Resource"), ("scopeSpans", "[ScopeSpans"), ("schemaUrl", "string")],
    "Resource": [("attributes", "[KeyValue"), ("droppedAttributesCount", "uint"), ("entityRefs", "[EntityRef")],
    "EntityRef": [("schemaUrl", "string"), ("type", "string"), ("idKeys", "[string"), ("descriptionKeys", "[string")],
    "ScopeSpans": [("scope", "Scope"), ("spans", "[Span"), ("schemaUrl", "string")],
    "Scope": [("name", "string"), ("version", "string"), ("attributes", "[KeyValue"),
              ("droppedAttributesCount", "uint")],
    "Span": [("traceId", "id"), ("spanId", "id"), ("traceState", "string"), ("parentSpanId", "id"),
             ("name", "string"), ("kind", "SpanKind"), ("startTimeUnixNano", "uint"), ("endTimeUnixNano", "uint"),
             ("attributes", "[KeyValue"), ("droppedAttributesCount", "uint"), ("events", "[Event"),
             ("droppedEventsCount", "uint"), ("links", "[Link"), ("droppedLinksCount", "uint"),
             ("status", "Status"), ("flags", "uint")],
    "Event": [("timeUnixNano", "uint"), ("name", "string"), ("attributes", "[KeyValue"),
              ("droppedAttributesCount", "uint")],
    "Link": [("traceId", "id"), ("spanId", "id"), ("traceState", "string"), ("attributes", "[KeyValue"),
             ("droppedAttributesCount", "uint"), ("flags", "uint")],
    "Status": [("message", "string"), ("code", "StatusCode")],
    "KeyValue": [("key", "string"), ("value", "AnyValue")],
    "AnyValue": [("stringValue", "string"), ("boolValue", "bool"), ("intValue", "int"), ("doubleValue", "double"),
                 ("arrayValue", "ArrayValue"), ("kvlistValue", "KeyValueList"), ("bytesValue", "bytes")],
    "ArrayValue": [("values", "[AnyValue")],
    "KeyValueList": [("values", "[KeyValue")],
}
ENUMS = {
    "SpanKind": ["SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT",
                 "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"],
    "StatusCode": ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"],
}


def snake(name):
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def double(value):
    if isinstance(value, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value) or float(value)
    return float(value)


def convert(value, kind, alternative):
    if kind.startswith("["):
        return [convert(item, kind[1:], alternative) for item in value]
    if kind in SCHEMA:
        return message(value, kind, alternative)
    if kind == "id":
        return value.upper() if alternative else bytes.fromhex(value)
    if kind in ("uint", "int"):
        return str(int(value)) if alternative else int(value)
    if kind in ENUMS:
        return ENUMS[kind][value] if alternative and 0 <= value < len(ENUMS[kind]) else value
    if kind == "double":
        number = double(value)
        if alternative:
            if not math.isfinite(number):
                return value if isinstance(value, str) else json.dumps(number)
            if struct.unpack("<f", struct.pack("<f", number))[0] == number:
                return Float32(number)
            return repr(number)
        return number
    if kind == "bytes":
        raw = base64.b64decode(value)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=") if alternative else raw
    return value


class Float32(float):
    """A double that the alternative form writes as float 32 (exact for these values)."""


def message(value, kind, alternative):
    fields = SCHEMA[kind]
    out = {}
    for name, field_kind in fields:
        if name in value:
            key = snake(name) if alternative else name
            out[key] = convert(value[name], field_kind, alternative)
        elif alternative and kind in ("Span", "Link") and name == "traceState":
            out[snake(name)] = None  # nil is an absent field
    if alternative:
        out = dict(reversed(list(out.items())))
        if kind in ("Span", "ResourceSpans", "Scope"):
            out["x_unknown"] = {"nested": [1, {"deep": [None, True, 2.5, b"\x00", msgpack.ExtType(5, b"ext")]}]}
    return out


def encode(value):
    """msgpack.packb, except that Float32 values are written as float 32."""
    if isinstance(value, Float32):
        return b"\xca" + struct.pack(">f", value)
    if isinstance(value, dict):
        out = bytearray(header(len(value), 0x80, 0xDE, 0xDF))
        for key, item in value.items():
            out += encode(key) + encode(item)
        return bytes(out)
    if isinstance(value, list):
        return bytes(header(len(value), 0x90, 0xDC, 0xDD)) + b"".join(encode(item) for item in value)
    return msgpack.packb(value, use_bin_type=True)


def header(length, fix, sixteen, thirty_two):
    if length < 16:
        return bytes([fix | length])
    if length < 1 << 16:
        return bytes([sixteen]) + struct.pack(">H", length)
    return bytes([thirty_two]) + struct.pack(">I", length)


def main():
    for path in sorted(glob.glob("*.expected.json")):
        name = path[: -len(".expected.json")]
        with open(path, encoding="utf-8") as file:
            expected = json.load(file)
        canonical = message(expected, "Request", alternative=False)
        # Canonical vectors come from msgpack.packb alone: no hand-written framing at all.
        with open(f"{name}.canonical.msgpack", "wb") as file:
            file.write(msgpack.packb(canonical, use_bin_type=True))
        with open(f"{name}.alternative.msgpack", "wb") as file:
            file.write(encode(message(expected, "Request", alternative=True)))
        print(f"wrote {name}.canonical.msgpack and {name}.alternative.msgpack")


if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    main()
