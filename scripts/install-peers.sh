#!/usr/bin/env bash
# Install the real peer systems the black-box tests run against (DESIGN.md §9):
#   prometheus (2.42), prometheus-node-exporter, prometheus-alertmanager, curl
# from Debian 12's packages, and the real clients of the log and trace endpoints under the
# repository's gitignored .peers/:
#   .peers/venv  Python venv (Debian python3 + python3-venv) with the OpenTelemetry SDK and
#                OTLP exporters (gRPC, HTTP protobuf) and python-logging-loki, pinned in
#                tests/clients/requirements.txt
#   .peers/node  winston-loki (protobuf + snappy) and pino-loki (JSON), pinned by
#                tests/clients/node/package-lock.json and installed with `npm ci`
# Node.js and npm come from the machine when present (pino-loki 3 wants Node >= 20), else
# from Debian's nodejs/npm packages.
#
# Idempotent and fast when everything is already installed. Package scripts are kept from
# starting system services (temporary /usr/sbin/policy-rc.d that exits 101), and any peer
# daemon that appeared during the install anyway is killed by pid, so nothing is left
# listening. Runs as root (CI) or through sudo.
set -euo pipefail

PACKAGES=(prometheus prometheus-node-exporter prometheus-alertmanager curl python3-venv)
# Binaries whose daemons must not be left running by the install.
DAEMON_BINS=(/usr/bin/prometheus /usr/bin/prometheus-node-exporter /usr/bin/prometheus-alertmanager)

log() { printf '[install-peers] %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS="$ROOT/.peers"
CLIENTS="$ROOT/tests/clients"

if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo -E bash "$0" "$@"
  fi
  log "must run as root (or with sudo available)"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == "installed" ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
  is_installed "$p" || missing+=("$p")
done
# Node.js and npm: a machine may carry its own build (e.g. NodeSource's nodejs, which bundles
# npm); only when the commands are missing do Debian's packages provide them.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

# Pids of running peer daemons (matched by exact executable path, never by name pattern).
peer_pids() {
  local pid exe b
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    [[ -n "$exe" ]] || continue
    exe=${exe% (deleted)}
    for b in "${DAEMON_BINS[@]}"; do
      if [[ "$exe" == "$b" ]]; then
        echo "$pid"
      fi
    done
  done
}

if ((${#missing[@]} > 0)); then
  log "installing: ${missing[*]}"
  before_pids=" $(peer_pids | tr '\n' ' ') "

  # Keep maintainer scripts from starting services. Preserve an existing policy-rc.d.
  policy=/usr/sbin/policy-rc.d
  backup=""
  if [[ -e "$policy" ]]; then
    backup=$(mktemp /tmp/policy-rc.d.XXXXXX)
    cp -p "$policy" "$backup"
  fi
  restore_policy() {
    if [[ -n "$backup" ]]; then
      mv -f "$backup" "$policy"
    else
      rm -f "$policy"
    fi
  }
  trap restore_policy EXIT
  printf '#!/bin/sh\n# temporary, from strata scripts/install-peers.sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"

  apt_opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef
    -o Dpkg::Options::=--force-confold)

  # `apt-get update` only if a package has no install candidate (empty or stale lists).
  need_update=0
  for p in "${missing[@]}"; do
    cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [[ -z "$cand" || "$cand" == "(none)" ]]; then
      need_update=1
    fi
  done
  if ((need_update)); then
    log "apt-get update"
    apt-get update -q
  fi
  if ! apt-get install "${apt_opts[@]}" "${missing[@]}"; then
    # Lists may be stale (404 on a superseded .deb): refresh once and retry.
    log "install failed; apt-get update and retry"
    apt-get update -q
    apt-get install "${apt_opts[@]}" "${missing[@]}"
  fi

  restore_policy
  trap - EXIT

  # Kill any peer daemon that the package scripts started despite the policy.
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    new=()
    for pid in $(peer_pids); do
      [[ "$before_pids" == *" $pid "* ]] || new+=("$pid")
    done
    ((${#new[@]} == 0)) && break
    log "stopping daemons started by the install (attempt $attempt): ${new[*]}"
    kill -KILL "${new[@]}" 2>/dev/null || true
    sleep 0.5
  done
else
  log "all peer packages already installed"
fi

for b in "${DAEMON_BINS[@]}" /usr/bin/promtool /usr/bin/curl; do
  if [[ ! -x "$b" ]]; then
    log "expected binary missing after install: $b"
    exit 1
  fi
done

# --- Prometheus 2.53 from Debian 13, unpacked under .peers/ (tests/otlp_prometheus.rs) ---
PROMETHEUS_253=$(bash "$(dirname "${BASH_SOURCE[0]}")/install-prometheus-trixie.sh")
# --- end Prometheus 2.53 ---

# ---------------------------------------------------------------------------------------------
# Client libraries under .peers/ (not root-owned when run through sudo). Each is reinstalled
# only when its pin file changed (a stamp holds the pin file's hash) or the install is broken.
# ---------------------------------------------------------------------------------------------
mkdir -p "$PEERS"

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

venv="$PEERS/venv"
py_pins="$CLIENTS/requirements.txt"
py_hash=$(hash_of "$py_pins")
py_check='import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http, logging_loki'
if [[ "$(cat "$venv/.strata-pins" 2>/dev/null || true)" == "$py_hash" ]] &&
  "$venv/bin/python" -c "$py_check" 2>/dev/null; then
  log "python clients already installed ($venv)"
else
  log "creating $venv from $py_pins"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$py_pins"
  "$venv/bin/python" -c "$py_check"
  echo "$py_hash" >"$venv/.strata-pins"
fi

node_dir="$PEERS/node"
node_pins=("$CLIENTS/node/package.json" "$CLIENTS/node/package-lock.json")
node_hash=$(hash_of "${node_pins[@]}")
node_check='for (const m of ["winston", "winston-loki", "pino", "pino-loki", "snappy"]) require.resolve(m)'
if [[ "$(cat "$node_dir/.strata-pins" 2>/dev/null || true)" == "$node_hash" ]] &&
  (cd "$node_dir" && node -e "$node_check") 2>/dev/null; then
  log "node clients already installed ($node_dir)"
else
  log "installing node clients into $node_dir (npm ci)"
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  cp "${node_pins[@]}" "$node_dir/"
  npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error
  (cd "$node_dir" && node -e "$node_check")
  echo "$node_hash" >"$node_dir/.strata-pins"
fi

if [[ -n "${SUDO_UID:-}" && -n "${SUDO_GID:-}" ]]; then
  chown -R "$SUDO_UID:$SUDO_GID" "$PEERS"
fi

echo "prometheus:      $(/usr/bin/prometheus --version 2>&1 | head -n1)"
echo "prometheus 2.53: $("$PROMETHEUS_253" --version 2>&1 | head -n1) ($PROMETHEUS_253)"
echo "promtool:        $(/usr/bin/promtool --version 2>&1 | head -n1)"
echo "node_exporter:   $(/usr/bin/prometheus-node-exporter --version 2>&1 | head -n1)"
echo "alertmanager:    $(/usr/bin/prometheus-alertmanager --version 2>&1 | head -n1)"
echo "curl:            $(/usr/bin/curl --version 2>&1 | head -n1)"
echo "python clients:  $("$venv/bin/python" -c 'import importlib.metadata as m; print(" ".join(f"{p}=={m.version(p)}" for p in ["opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-grpc", "opentelemetry-exporter-otlp-proto-http", "python-logging-loki"]))')"
echo "node clients:    node $(node --version) $(cd "$node_dir" && node -e 'console.log(["winston-loki", "pino-loki"].map(m => m + "@" + require(m + "/package.json").version).join(" "))')"
