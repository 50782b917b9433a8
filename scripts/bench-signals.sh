#!/usr/bin/env bash
# End-to-end load runs for logs and traces with ../shared/tools/loadgen: loadgen → strata →
# `loadgen sink` (the full relay path: decode, validate, relabel, queue, encode, send).
# Strata is pinned to core 1, loadgen and the sink to core 0; loadgen reads strata's CPU
# seconds from /proc (--target-pid), so the figure is items per strata CPU-second.
#
#   scripts/bench-signals.sh [RUNS]      env: DURATION WARMUP CONC SCENARIOS
#
# Scenarios (SCENARIOS, space separated; default all):
#   loki-proto   Loki push protobuf+snappy, ~200-byte lines → forward.loki → sink
#   loki-json    Loki push JSON → forward.loki → sink
#   otlp-http    OTLP/HTTP protobuf traces (loadgen: ≥10 attributes per span) → forward.otlp (gRPC) → sink
#   otlp-grpc    OTLP/gRPC traces → forward.otlp (gRPC) → sink
# Prints one JSON line per scenario and run, then the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
CONC=${CONC:-4}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
SCENARIOS=${SCENARIOS:-loki-proto loki-json otlp-http otlp-grpc}
LOADGEN_DIR=${LOADGEN_DIR:-../shared/tools/loadgen}
OUT=${OUT:-/tmp/strata-bench-signals}
mkdir -p "$OUT"
: > "$OUT/results.jsonl"

CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target} cargo build --release --quiet
cargo build --release --quiet --manifest-path "$LOADGEN_DIR/Cargo.toml" --target-dir /tmp/loadgen-target
LOADGEN=/tmp/loadgen-target/release/loadgen
STRATA=${CARGO_TARGET_DIR:-target}/release/strata

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_http() { for _ in $(seq 1 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }

CONFIG="server: {http_listen_address: 127.0.0.1:19700}
ingest:
  otlp: {grpc_listen_address: 127.0.0.1:14317, http_listen_address: 127.0.0.1:14318}
forward:
  loki:
    - name: loki-sink
      url: http://127.0.0.1:19291/loki/api/v1/push
      queue_config: {capacity: 20000, shards: 4, max_samples_per_send: 2000}
  otlp:
    - name: otlp-sink
      endpoint: http://127.0.0.1:19317
      protocol: grpc
      queue_config: {capacity: 20000, shards: 4, max_samples_per_send: 2000}"

load() { # scenario pid
  case "$1" in
    loki-proto) set -- loki --url http://127.0.0.1:19700/loki/api/v1/push --format proto --line-bytes 200 --target-pid "$2" ;;
    loki-json) set -- loki --url http://127.0.0.1:19700/loki/api/v1/push --format json --line-bytes 200 --target-pid "$2" ;;
    otlp-http) set -- otlp-traces --url http://127.0.0.1:14318/v1/traces --protocol http --target-pid "$2" ;;
    otlp-grpc) set -- otlp-traces --url http://127.0.0.1:14317 --protocol grpc --target-pid "$2" ;;
  esac
  taskset -c 0 "$LOADGEN" "$@" --concurrency "$CONC" --duration "$DURATION" --warmup "$WARMUP" \
    -H 'X-Scope-OrgID: bench' --json -q | tail -n 1
}

for run in $(seq 1 "$RUNS"); do
  for scenario in $SCENARIOS; do
    taskset -c 0 "$LOADGEN" sink --listen 127.0.0.1:19291 --grpc-listen 127.0.0.1:19317 -q > "$OUT/sink.out" & sink=$!; pids+=("$sink")
    wait_http http://127.0.0.1:19291/-/ready
    printf '%s\n' "$CONFIG" > "$OUT/strata.yml"
    taskset -c 1 "$STRATA" run --config "$OUT/strata.yml" --log-level warn & strata=$!; pids+=("$strata")
    wait_http http://127.0.0.1:19700/-/ready
    r=$(load "$scenario" "$strata")
    kill "$strata"; wait "$strata" || true
    echo "{\"scenario\":\"$scenario\",\"run\":$run,\"result\":$r,\"sink\":$(curl -fsS http://127.0.0.1:19291/stats)}" | tee -a "$OUT/results.jsonl"
    kill "$sink"; wait "$sink" 2>/dev/null || true
  done
done

python3 - "$OUT/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for scenario in dict.fromkeys(r["scenario"] for r in rows):
    runs = [r["result"] for r in rows if r["scenario"] == scenario]
    vals = [r["samples_per_server_cpu_sec"] for r in runs]
    errs = [r["err_4xx"] + r["err_5xx"] + r["errors"] for r in runs]
    print(f"{scenario:10s} items per strata CPU-second: median {statistics.median(vals):>12,.0f}  runs {[round(v) for v in vals]}  non-2xx {errs}")
PY
