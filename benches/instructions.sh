#!/usr/bin/env bash
# Counts instructions per iteration of every benchmark pair under callgrind and prints the ratios
# (baseline instructions / ours: above 1 means our path executes fewer). Unlike wall-clock time,
# these counts repeat exactly on a shared, noisy machine, which makes them the numbers to gate on.
# Instructions are not time: cache misses and allocation stalls weigh more on the baselines, so the
# wall-clock ratios are usually a little higher. Needs valgrind (apt-get install valgrind).
#
#   benches/instructions.sh [spans] [iterations]     # defaults: 100 spans, 20 iterations
set -euo pipefail
cd "$(dirname "$0")/.."
spans="${1:-100}"
iterations="${2:-20}"
cargo build --release --quiet -p spanpipe-benches --example instructions
bin=target/release/examples/instructions

count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect='instructions::measured' \
    "$bin" "$1" "$spans" "$iterations" 2>&1 | awk -v n="$iterations" '/Collected :/ { printf "%d", $4 / n }'
}

# ours|baseline, as in benches/ratios.py. reframe_half/prost_drop+encode is left out: the benchmark
# clones the decoded request outside its timed region, which a plain instruction count cannot do.
pairs=(
  "index_build/spanpipe|index_build/prost"
  "index_build/spanpipe|index_build/quick-protobuf"
  "attribute_walk/spanpipe|attribute_walk/prost"
  "attribute_walk/spanpipe_decode+walk|attribute_walk/prost_decode+walk"
  "reframe_half/spanpipe_decode+filter|reframe_half/prost_decode+drop+encode"
  "json_decode/spanpipe|json_decode/serde_json"
  "json_encode/spanpipe|json_encode/serde_json"
)
echo "| pair ($spans spans) | ours (instructions) | baseline (instructions) | ratio |"
echo "| --- | ---: | ---: | ---: |"
for pair in "${pairs[@]}"; do
  ours="${pair%%|*}"
  baseline="${pair##*|}"
  a=$(count "$ours")
  b=$(count "$baseline")
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')
  echo "| $ours vs ${baseline#*/} | $a | $b | ${ratio}× |"
done
