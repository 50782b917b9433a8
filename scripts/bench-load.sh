#!/usr/bin/env bash
# End-to-end load runs with ../shared/tools/loadgen, Strata and Prometheus side by side on the
# same payloads in the same run. Strata (or Prometheus) is pinned to core 1, loadgen and the sink
# to core 0; loadgen reads the server's CPU seconds from /proc (--target-pid).
#
#   scripts/bench-load.sh [RUNS]      env: SERIES BATCH CONC DURATION WARMUP VERSION
#
# Scenarios per run:
#   ingest   loadgen → strata all-in-one (no forward target): receive, decode, validate,
#            relabel, WAL append, head (what Prometheus' receiver does: WAL + head)
#   relay    loadgen → strata agent → loadgen sink: the full path with the WAL as disk buffer
#   prom     loadgen → prometheus --web.enable-remote-write-receiver (the peer to beat)
# Prints one JSON line per scenario and run, then the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SERIES=${SERIES:-100000}
BATCH=${BATCH:-2000}
CONC=${CONC:-4}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
VERSION=${VERSION:-1}
LOADGEN_DIR=${LOADGEN_DIR:-../shared/tools/loadgen}
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
OUT=${OUT:-/tmp/strata-bench}
mkdir -p "$OUT"

# STRATA=path/to/strata skips the build (e.g. a binary built earlier).
if [ -z "${STRATA:-}" ]; then
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target} cargo build --release --quiet
fi
cargo build --release --quiet --manifest-path "$LOADGEN_DIR/Cargo.toml" --target-dir /tmp/loadgen-target
LOADGEN=/tmp/loadgen-target/release/loadgen
STRATA=${STRATA:-${CARGO_TARGET_DIR:-target}/release/strata}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_http() { for _ in $(seq 1 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }

load() { # url pid
  taskset -c 0 "$LOADGEN" remote-write --version "$VERSION" --url "$1" --series "$SERIES" \
    --batch-samples "$BATCH" --concurrency "$CONC" --duration "$DURATION" --warmup "$WARMUP" \
    --target-pid "$2" --json -q | tail -n 1
}

run_strata() { # scenario config
  local cfg="$OUT/$1.yml"; printf '%s\n' "$2" > "$cfg"
  # Every run starts on an empty data directory (WAL, head, blocks).
  rm -rf "$OUT/data"; printf 'storage: {path: %s}\n' "$OUT/data" >> "$cfg"
  taskset -c 1 "$STRATA" run --config "$cfg" --log-level warn & local pid=$!; pids+=("$pid")
  wait_http http://127.0.0.1:19700/-/ready
  load http://127.0.0.1:19700/api/v1/write "$pid"
  kill "$pid"; wait "$pid" || true
}

for run in $(seq 1 "$RUNS"); do
  r=$(run_strata ingest "server: {http_listen_address: 127.0.0.1:19700}")
  echo "{\"scenario\":\"ingest\",\"run\":$run,\"result\":$r}" | tee -a "$OUT/results.jsonl"

  taskset -c 0 "$LOADGEN" sink --listen 127.0.0.1:19291 -q > "$OUT/sink.out" & sink=$!; pids+=("$sink")
  wait_http http://127.0.0.1:19291/-/ready
  r=$(run_strata relay "server: {http_listen_address: 127.0.0.1:19700}
role: agent
forward:
  remote_write:
    - name: sink
      url: http://127.0.0.1:19291/api/v1/write
      protocol_version: $VERSION
      queue_config: {capacity: 20000, shards: 4, max_samples_per_send: 2000}")
  echo "{\"scenario\":\"relay\",\"run\":$run,\"result\":$r,\"sink\":$(curl -fsS http://127.0.0.1:19291/stats)}" | tee -a "$OUT/results.jsonl"
  kill "$sink"; wait "$sink" 2>/dev/null || true

  if [ -x "$PROMETHEUS" ] && [ "$VERSION" = 1 ]; then
    rm -rf "$OUT/prom-data"; printf 'global: {}\nscrape_configs: []\n' > "$OUT/prom.yml"
    taskset -c 1 "$PROMETHEUS" --config.file="$OUT/prom.yml" --storage.tsdb.path="$OUT/prom-data" \
      --web.listen-address=127.0.0.1:19090 --web.enable-remote-write-receiver --log.level=warn \
      2>"$OUT/prom.log" & prom=$!; pids+=("$prom")
    wait_http http://127.0.0.1:19090/-/ready
    r=$(load http://127.0.0.1:19090/api/v1/write "$prom")
    echo "{\"scenario\":\"prom\",\"run\":$run,\"result\":$r}" | tee -a "$OUT/results.jsonl"
    kill "$prom"; wait "$prom" 2>/dev/null || true
  fi
done

python3 - "$OUT/results.jsonl" "$RUNS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][-int(sys.argv[2]) * 3:]
med = {}
for scenario in ("ingest", "relay", "prom"):
    vals = [r["result"]["samples_per_server_cpu_sec"] for r in rows if r["scenario"] == scenario]
    errs = [r["result"]["err_4xx"] + r["result"]["err_5xx"] + r["result"]["errors"] for r in rows if r["scenario"] == scenario]
    if vals:
        med[scenario] = statistics.median(vals)
        print(f"{scenario:7s} samples per server CPU-second: median {med[scenario]:>12,.0f}  runs {[round(v) for v in vals]}  non-2xx {errs}")
if "relay" in med and "prom" in med:
    print(f"relay / prometheus ratio: {med['relay'] / med['prom']:.2f}x")
PY
