#!/usr/bin/env bash
# Range-query speed, Strata vs Prometheus, same data, same run (issue 5, figure 8).
#
#   STRATA=path/to/release/strata scripts/bench-query.sh [RUNS]    env: SERIES ROUNDS PROMETHEUS
#
# Loads the same loadgen remote-write stream (SERIES series, ROUNDS × 15 s ending now, default
# 80,000 series × 65 min) into a fresh Strata all-in-one and a fresh Prometheus, then times each
# query of the corpus as a 1 h range query at a 15 s step (241 steps) over HTTP, RUNS times per
# server after one warm-up, alternating servers, and prints the medians. Each server is pinned
# to core 1 and curl to core 0. Result sizes are compared so a fast wrong answer cannot win.
#
# Then the rule-group cost: one group of 1,000 rules (500 recording, 500 alerting, one pod each
# over the same loadgen metrics, every 15 s) is loaded into both with /-/reload, and after RULE_WAIT seconds
# each server's own `evaluationTime` of the group (from /api/v1/rules) is read RULE_SAMPLES
# times, one interval apart; medians are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-7}
SERIES=${SERIES:-80000}
ROUNDS=${ROUNDS:-260}
LOADGEN_DIR=${LOADGEN_DIR:-../shared/tools/loadgen}
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
OUT=${OUT:-/tmp/strata-bench-query}
rm -rf "$OUT"; mkdir -p "$OUT"

if [ -z "${STRATA:-}" ]; then
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target} cargo build --release --quiet
fi
cargo build --release --quiet --manifest-path "$LOADGEN_DIR/Cargo.toml" --target-dir /tmp/loadgen-target
LOADGEN=/tmp/loadgen-target/release/loadgen
STRATA=${STRATA:-${CARGO_TARGET_DIR:-target}/release/strata}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_http() { for _ in $(seq 1 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }

mkdir -p "$OUT/rules"
printf 'server: {http_listen_address: 127.0.0.1:19700}\nstorage: {path: %s}\nrules: {rule_files: ["%s/rules/*.yml"]}\n' \
  "$OUT/strata-data" "$OUT" > "$OUT/strata.yml"
taskset -c 1 "$STRATA" run --config "$OUT/strata.yml" --log-level warn & pids+=($!)
printf 'global: {evaluation_interval: 15s}\nrule_files: ["%s/rules/*.yml"]\nscrape_configs: []\n' "$OUT" > "$OUT/prom.yml"
taskset -c 1 "$PROMETHEUS" --config.file="$OUT/prom.yml" --storage.tsdb.path="$OUT/prom-data" \
  --web.listen-address=127.0.0.1:19090 --web.enable-remote-write-receiver --log.level=warn \
  --web.enable-lifecycle \
  --query.max-samples=200000000 2>"$OUT/prom.log" & pids+=($!)
wait_http http://127.0.0.1:19700/-/ready
wait_http http://127.0.0.1:19090/-/ready

START_MS=$(( $(date +%s) * 1000 - ROUNDS * 15000 ))
for url in http://127.0.0.1:19700/api/v1/write http://127.0.0.1:19090/api/v1/write; do
  taskset -c 0 "$LOADGEN" remote-write --url "$url" --series "$SERIES" --rounds "$ROUNDS" \
    --duration 0 --interval-ms 15000 --start-ms "$START_MS" --batch-samples 4000 \
    --concurrency 2 --json -q | tail -n 1 > "$OUT/load-$(echo "$url" | cut -d: -f3 | cut -d/ -f1).json"
done
LAST_MS=$(python3 -c "import json,sys; print(json.load(open('$OUT/load-19700.json'))['last_sent_ts_ms'])")
END=$(( LAST_MS / 1000 - 60 ))
BEGIN=$(( END - 3600 ))

QUERIES=(
  'sum by (job) (rate(http_requests_total[5m]))'
  'histogram_quantile(0.9, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))'
  'sum by (job) (rate(http_requests_total{code="500"}[5m])) / sum by (job) (rate(http_requests_total[5m]))'
  'topk(5, sum by (pod) (rate(container_cpu_usage_seconds_total[5m])))'
)

time_query() { # base query -> seconds
  taskset -c 0 curl -sS -o "$OUT/answer.json" -w '%{time_total}' "$1/api/v1/query_range" \
    --data-urlencode "query=$2" --data-urlencode "start=$BEGIN" --data-urlencode "end=$END" \
    --data-urlencode "step=15"
}
shape() { python3 -c "
import json; d=json.load(open('$OUT/answer.json'))
r=d['data']['result'] if d['status']=='success' else []
print(d['status'], len(r), sum(len(s['values']) for s in r))"; }
count() { curl -sS "$1/api/v1/query" --data-urlencode "query=count($2)" --data-urlencode "time=$END" \
  | python3 -c "import json,sys; r=json.load(sys.stdin)['data']['result']; print(r[0]['value'][1] if r else 0)"; }

echo "data: $SERIES series x $ROUNDS samples; range $BEGIN..$END step 15s (241 steps)"
echo "selected series: http_requests_total=$(count http://127.0.0.1:19700 http_requests_total)" \
  "buckets=$(count http://127.0.0.1:19700 http_request_duration_seconds_bucket)"
printf '| query | strata median s | prometheus median s | speed-up | strata shape | prometheus shape |\n|---|---:|---:|---:|---|---|\n'
for q in "${QUERIES[@]}"; do
  time_query http://127.0.0.1:19700 "$q" >/dev/null; s_shape=$(shape)
  time_query http://127.0.0.1:19090 "$q" >/dev/null; p_shape=$(shape)
  s=(); p=()
  for _ in $(seq 1 "$RUNS"); do
    s+=("$(time_query http://127.0.0.1:19700 "$q")")
    p+=("$(time_query http://127.0.0.1:19090 "$q")")
  done
  sm=$(printf '%s\n' "${s[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  pm=$(printf '%s\n' "${p[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '| `%s` | %s | %s | %.2fx | %s | %s |\n' "$q" "$sm" "$pm" "$(python3 -c "print($pm / $sm)")" "$s_shape" "$p_shape"
done

# --- rule-group evaluation cost: 1,000 rules ---
RULE_WAIT=${RULE_WAIT:-50}
RULE_SAMPLES=${RULE_SAMPLES:-5}
curl -sS http://127.0.0.1:19700/api/v1/label/pod/values > "$OUT/pods.json"
python3 - "$OUT/rules/bench.yml" "$OUT/pods.json" <<'PY'
import json, sys
# Per-service rules, as a platform has them: each selects one pod's series (18 request
# counters, 72 latency buckets), 500 recording and 500 alerting rules in one group.
pods = json.load(open(sys.argv[2]))["data"][:500]
lines = ["groups:", "  - name: bench-1000", "    interval: 15s", "    rules:"]
for i, pod in enumerate(pods):
    lines += [f"      - record: pod:http_requests:rate5m_{i}",
              f"        expr: sum by (pod, handler) (rate(http_requests_total{{pod=\"{pod}\"}}[5m]))"]
for i, pod in enumerate(pods):
    lines += [f"      - alert: PodSlow{i}",
              f"        expr: histogram_quantile(0.99, sum by (pod, le) (rate(http_request_duration_seconds_bucket{{pod=\"{pod}\"}}[5m]))) > 0.5",
              "        for: 5m",
              "        labels: {severity: warning}",
              "        annotations: {summary: '{{ $labels.pod }} p99 at {{ $value | humanize }}s'}"]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
curl -fsS -X POST http://127.0.0.1:19700/-/reload >/dev/null
curl -fsS -X POST http://127.0.0.1:19090/-/reload >/dev/null
sleep "$RULE_WAIT"
eval_time() { curl -sS "$1/api/v1/rules" | python3 -c "
import json,sys; g=json.load(sys.stdin)['data']['groups']; print(g[0]['evaluationTime'], len(g[0]['rules']))"; }
s=(); p=()
for _ in $(seq 1 "$RULE_SAMPLES"); do
  s+=("$(eval_time http://127.0.0.1:19700 | cut -d' ' -f1)")
  p+=("$(eval_time http://127.0.0.1:19090 | cut -d' ' -f1)")
  sleep 15
done
sm=$(printf '%s\n' "${s[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
pm=$(printf '%s\n' "${p[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo
echo "rule group of $(eval_time http://127.0.0.1:19700 | cut -d' ' -f2) rules, evaluationTime (s): strata ${s[*]} | prometheus ${p[*]}"
printf '| 1,000-rule group evaluation | %s s | %s s | %.2fx |\n' "$sm" "$pm" "$(python3 -c "print($pm / $sm)")"
