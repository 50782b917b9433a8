#!/usr/bin/env bash
# Storage efficiency and ingest cost end to end, on loadgen's realistic payloads (Kubernetes
# pod/node metrics, application log lines, OTel-style spans with ~10 attributes):
#
#   loadgen → strata all-in-one (WAL + head) → POST /api/v1/admin/storage/flush → Parquet blocks
#
# then reads /api/v1/status/storage and /metrics and prints stored bytes per sample, stored log
# bytes as a share of the raw line bytes, and bytes per span.
#
#   scripts/bench-storage.sh          env: SERIES ROUNDS STREAMS LOKI_ROUNDS SPAN_REQUESTS
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES=${SERIES:-10000}
ROUNDS=${ROUNDS:-240}          # samples per series (15 s apart: one hour)
STREAMS=${STREAMS:-1000}
LOKI_ROUNDS=${LOKI_ROUNDS:-100} # lines per stream = LOKI_ROUNDS * 10
SPAN_REQUESTS=${SPAN_REQUESTS:-400}
LOADGEN_DIR=${LOADGEN_DIR:-../shared/tools/loadgen}
OUT=${OUT:-/tmp/strata-bench-storage}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}

# STRATA=path/to/strata skips the build (e.g. a binary built earlier).
[ -n "${STRATA:-}" ] || cargo build --release --quiet
cargo build --release --quiet --manifest-path "$LOADGEN_DIR/Cargo.toml" --target-dir /tmp/loadgen-target
LOADGEN=/tmp/loadgen-target/release/loadgen
STRATA=${STRATA:-$CARGO_TARGET_DIR/release/strata}

rm -rf "$OUT"; mkdir -p "$OUT"
printf 'server: {http_listen_address: 127.0.0.1:19700}\nstorage: {path: %s/data}\n' "$OUT" > "$OUT/strata.yml"
"$STRATA" run --config "$OUT/strata.yml" --log-level warn & pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:19700/-/ready >/dev/null 2>&1 && break; sleep 0.1; done

BASE=http://127.0.0.1:19700
"$LOADGEN" remote-write --url $BASE/api/v1/write --series "$SERIES" --batch-samples 2000 \
  --rounds "$ROUNDS" --duration 0 --concurrency 2 --json -q | tail -n 1 > "$OUT/rw.json"
"$LOADGEN" loki --url $BASE/loki/api/v1/push --streams "$STREAMS" --lines-per-request 1000 \
  --rounds "$LOKI_ROUNDS" --duration 0 --concurrency 2 --json -q | tail -n 1 > "$OUT/loki.json"
"$LOADGEN" otlp-traces --url $BASE/v1/traces --protocol http --spans-per-request 512 \
  --max-requests "$SPAN_REQUESTS" --duration 0 --concurrency 2 --json -q | tail -n 1 > "$OUT/otlp.json"
curl -fsS -X POST $BASE/api/v1/admin/storage/flush > "$OUT/flush.json"
for _ in $(seq 1 600); do
  curl -fsS $BASE/api/v1/status/storage > "$OUT/status.json"
  python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["data"]["spool_blocks"]==0 else 1)' "$OUT/status.json" && break
  sleep 0.5
done
curl -fsS $BASE/metrics > "$OUT/metrics.txt"

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
status = json.load(open(f"{out}/status.json"))["data"]
blocks = {b["signal"]: b for b in status["blocks"]}
def metric(name):
    total = 0.0
    for line in open(f"{out}/metrics.txt"):
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total
rw = json.load(open(f"{out}/rw.json")); loki = json.load(open(f"{out}/loki.json")); otlp = json.load(open(f"{out}/otlp.json"))
m, l, t = blocks["metrics"], blocks["logs"], blocks["traces"]
raw_log_bytes = metric("strata_ingest_log_received_bytes_total")
print(json.dumps({
  "samples_ok": rw["items_ok"], "metric_rows": m["rows"], "metric_block_bytes": m["bytes"],
  "bytes_per_sample": round(m["bytes"] / m["rows"], 3),
  "wire_bytes_per_sample": rw["bytes_per_sample_wire"],
  "lines_ok": loki["items_ok"], "log_rows": l["rows"], "log_block_bytes": l["bytes"],
  "raw_log_line_bytes": raw_log_bytes, "log_stored_over_raw_pct": round(100 * l["bytes"] / raw_log_bytes, 2),
  "spans_ok": otlp["items_ok"], "span_rows": t["rows"], "trace_block_bytes": t["bytes"],
  "bytes_per_span": round(t["bytes"] / t["rows"], 1),
  "wire_bytes_per_span": otlp["bytes_per_sample_wire"],
}, indent=1))
PY
