#!/usr/bin/env bash
# Regenerates benches/src/quick/ (quick-protobuf types for the OTLP trace protos, the borrowed
# `Cow<str>` baseline of the `index_build` benchmark) from the .proto files beside this script.
#
# The generated Rust is committed so that a fresh clone builds without pb-rs (a CLI with its own
# dependency tree) and without running code generation in a build script on every clean build.
# Run this only after updating the .proto files:
#
#   cargo install pb-rs --version 0.10.0 --locked
#   benches/proto/regenerate.sh
#
# The .proto files are copied unchanged (license headers intact) from the opentelemetry-proto
# crate's source, 0.33.1: src/proto/opentelemetry-proto/opentelemetry/proto/, which is
# open-telemetry/opentelemetry-proto; its LICENSE is beside this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../src/quick"
rm -rf "$out"
mkdir -p "$out"
# pb-rs resolves a relative include path against each file's own directory, so pass it absolute.
pb-rs --include "$here" --output_directory "$out" \
  "$here/opentelemetry/proto/collector/trace/v1/trace_service.proto" \
  "$here/opentelemetry/proto/trace/v1/trace.proto" \
  "$here/opentelemetry/proto/common/v1/common.proto" \
  "$here/opentelemetry/proto/resource/v1/resource.proto"
