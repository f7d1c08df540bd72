#!/usr/bin/env bash
# End-to-end probe: CPU time per span of the release binary for OTLP in -> blackhole, and
# OTLP in -> batch -> OTLP/gRPC out (no compression, gzip level 1, gzip default) to a second
# spanpipe acting as the sink, beside the ceiling: the same load straight into the sink.
#
# The collector under test is pinned to CPU 0 (`service.cores: 1` takes the first CPU of the
# affinity mask); h2load and the sink share CPU 1. CPU time is read from /proc/<pid>/stat
# (user + system) around the load, so it counts every thread of the process (executor, telemetry,
# file writer); spans/s is h2load's requests/s times the spans per request; peak RSS is VmHWM.
# Each scenario checks through /metrics that every span was accepted and sent.
#
#   benches/e2e_probe.sh [requests] [spans per request]     # defaults: 20000 100
# Needs h2load (Debian: apt-get install nghttp2-client) and at least 2 CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-20000}"
spans="${2:-100}"
command -v h2load >/dev/null || { echo "e2e_probe: h2load is missing (apt-get install nghttp2-client)" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release --quiet -p spanpipe
cargo run --release --quiet -p spanpipe-benches --example otlp_payload -- "$work" "$spans"
bin=${CARGO_TARGET_DIR:-target}/release/spanpipe
tck=$(getconf CLK_TCK)

config() { # name exporter-yaml processors
  cat > "$work/$1.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:14317}
      http: {endpoint: 127.0.0.1:14318}
processors:
  batch:
  batch/bounded: {send_batch_size: 2048}
exporters:
$2
service:
  cores: 1
  telemetry: {metrics: {address: 127.0.0.1:18888}}
  pipelines:
    traces: {receivers: [otlp], processors: [$3], exporters: [out]}
YAML
}
config blackhole "  blackhole/out:" ""
sed -i 's/exporters: \[out\]/exporters: [blackhole\/out]/' "$work/blackhole.yaml"
otlp_out() { printf '  otlp/out:\n    endpoint: 127.0.0.1:24317\n    tls: {insecure: true}\n    compression: %s\n%s' "$1" "$2"; }
config forward-none "$(otlp_out none '')" batch
config forward-gzip1 "$(otlp_out gzip '    compression_params: {level: 1}')" batch
config forward-gzip "$(otlp_out gzip '')" batch
# Memory-bounded forwarding: batches of 2048 spans, two export requests in flight, the queue
# measured in bytes (8 MiB a core) and, when it is full, receivers make clients wait instead of
# refusing them (`block_on_overflow`). The default config bounds the queue at 1000 batches of
# 8192 spans (the Collector's defaults), which a sink slower than the collector fills.
bounded_queue='    sending_queue: {sizer: bytes, queue_size: 8388608, num_consumers: 2, block_on_overflow: true}'
config forward-none-bounded "$(otlp_out none "$bounded_queue")" batch/bounded
config forward-gzip-bounded "$(otlp_out gzip "$bounded_queue")" batch/bounded
for file in forward-none forward-gzip1 forward-gzip forward-none-bounded forward-gzip-bounded; do sed -i 's/exporters: \[out\]/exporters: [otlp\/out]/' "$work/$file.yaml"; done
cat > "$work/sink.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:24317, max_recv_msg_size_mib: 64}
exporters:
  blackhole:
service:
  cores: 1
  telemetry: {metrics: {address: 127.0.0.1:28888}}
  pipelines:
    traces: {receivers: [otlp], exporters: [blackhole]}
YAML

wait_ready() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.1; done; echo "not ready" >&2; exit 1; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" 'index($0, m) == 1 { sum += $NF } END { printf "%d", sum }'; }

# load <port> <kind>: prints requests/s
load() {
  if [ "$2" = grpc ]; then
    taskset -c 1 h2load -n "$requests" -c 4 -m 8 -d "$work/request.grpc" -H 'content-type: application/grpc' \
      -H 'te: trailers' "http://127.0.0.1:$1/opentelemetry.proto.collector.trace.v1.TraceService/Export" > "$work/h2load.log"
  else
    taskset -c 1 h2load --h1 -n "$requests" -c 4 -d "$work/request.pb" -H 'content-type: application/x-protobuf' \
      "http://127.0.0.1:$1/v1/traces" > "$work/h2load.log"
  fi
  grep -q "$requests succeeded" "$work/h2load.log" || { cat "$work/h2load.log" >&2; exit 1; }
  awk '/^finished in/ { gsub(",", ""); print $4 }' "$work/h2load.log"
}

taskset -c 1 "$bin" run --config "$work/sink.yaml" > "$work/sink.log" 2>&1 &
sink=$!
wait_ready 28888

echo "| scenario | spans/s | CPU µs/span | peak RSS MiB | share of ceiling |"
echo "| --- | ---: | ---: | ---: | ---: |"
before=$(metric 28888 spanpipe_receiver_accepted_spans_total)
ceiling=$(load 24317 grpc)
echo "| ceiling: h2load → sink (gRPC) | $(awk -v r="$ceiling" -v s="$spans" 'BEGIN { printf "%.0f", r * s }') | | | 100% |"
scenarios=${SCENARIOS:-blackhole:grpc blackhole:http forward-none:grpc forward-gzip1:grpc forward-gzip:grpc forward-none-bounded:grpc forward-gzip-bounded:grpc}
for scenario in $scenarios; do
  name=${scenario%%:*}; kind=${scenario##*:}
  "$bin" run --config "$work/$name.yaml" > "$work/$name.log" 2>&1 &
  pid=$!
  wait_ready 18888
  t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  port=14317; [ "$kind" = http ] && port=14318
  rate=$(load "$port" "$kind")
  t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  rss=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
  sleep 0.6 # one metrics publication interval
  accepted=$(metric 18888 spanpipe_receiver_accepted_spans_total)
  sent=$(metric 18888 spanpipe_exporter_sent_spans_total)
  kill -TERM "$pid"; wait "$pid"
  expected=$((requests * spans))
  [ "$accepted" = "$expected" ] && [ "$sent" = "$expected" ] || { echo "$name: accepted $accepted, sent $sent of $expected" >&2; exit 1; }
  awk -v n="$name ($kind)" -v r="$rate" -v s="$spans" -v a="$t0" -v b="$t1" -v t="$tck" -v q="$requests" -v m="$rss" -v c="$ceiling" \
    'BEGIN { printf "| %s | %.0f | %.2f | %.1f | %.0f%% |\n", n, r * s, (b - a) / t * 1e6 / (q * s), m / 1024, 100 * r / c }'
done
after=$(metric 28888 spanpipe_receiver_accepted_spans_total)
forwarded=$(echo "$scenarios" | grep -o 'forward' | wc -l)
[ $((after - before)) = $((requests * spans * (forwarded + 1))) ] || { echo "sink received $((after - before)) spans" >&2; exit 1; }
