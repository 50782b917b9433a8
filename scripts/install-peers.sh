#!/usr/bin/env bash
# Install the real peer systems the black-box tests run against (DESIGN.md §9):
#   prometheus (2.42), prometheus-node-exporter, prometheus-alertmanager, curl
# from Debian 12's packages.
#
# Idempotent and fast when everything is already installed. Package scripts are kept from
# starting system services (temporary /usr/sbin/policy-rc.d that exits 101), and any peer
# daemon that appeared during the install anyway is killed by pid, so nothing is left
# listening. Runs as root (CI) or through sudo.
set -euo pipefail

PACKAGES=(prometheus prometheus-node-exporter prometheus-alertmanager curl)
# Binaries whose daemons must not be left running by the install.
DAEMON_BINS=(/usr/bin/prometheus /usr/bin/prometheus-node-exporter /usr/bin/prometheus-alertmanager)

log() { printf '[install-peers] %s\n' "$*" >&2; }

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

echo "prometheus:      $(/usr/bin/prometheus --version 2>&1 | head -n1)"
echo "prometheus 2.53: $("$PROMETHEUS_253" --version 2>&1 | head -n1) ($PROMETHEUS_253)"
echo "promtool:        $(/usr/bin/promtool --version 2>&1 | head -n1)"
echo "node_exporter:   $(/usr/bin/prometheus-node-exporter --version 2>&1 | head -n1)"
echo "alertmanager:    $(/usr/bin/prometheus-alertmanager --version 2>&1 | head -n1)"
echo "curl:            $(/usr/bin/curl --version 2>&1 | head -n1)"
