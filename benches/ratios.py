#!/usr/bin/env python3
"""Prints the ratio table of the last `cargo bench -p spanpipe-benches --bench codecs` run.

Reads criterion's estimates (target/criterion/<group>/<function>/<spans>/new/estimates.json) and,
for every pair of our path and its baseline, prints baseline time / our time (how many times
faster our path is; above 1 is better) with the median times as context. Standard library only.

    python3 benches/ratios.py [target/criterion]
"""

import json
import pathlib
import sys

# (group, our function, baseline function)
PAIRS = [
    ("index_build", "spanpipe", "prost"),
    ("index_build", "spanpipe", "quick-protobuf"),
    ("attribute_walk", "spanpipe", "prost"),
    ("attribute_walk", "spanpipe_decode+walk", "prost_decode+walk"),
    ("reframe_half", "spanpipe_filter", "prost_drop+encode"),
    ("reframe_half", "spanpipe_decode+filter", "prost_decode+drop+encode"),
    ("json_decode", "spanpipe", "serde_json"),
    ("json_encode", "spanpipe", "serde_json"),
]
SIZES = [1, 100, 8192]


def median_ns(root, group, function, spans):
    # criterion replaces characters it cannot use in directory names ('+' stays as it is).
    path = root / group / function / str(spans) / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"]


def human(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
    print("| group | ours vs baseline | spans | ours (median) | baseline (median) | ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for group, ours, baseline in PAIRS:
        for spans in SIZES:
            a = median_ns(root, group, ours, spans)
            b = median_ns(root, group, baseline, spans)
            if a is None or b is None:
                continue
            print(f"| {group} | {ours} vs {baseline} | {spans} | {human(a)} | {human(b)} | {b / a:.2f}× |")


if __name__ == "__main__":
    main()
