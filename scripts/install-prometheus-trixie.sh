#!/usr/bin/env bash
# Install Debian 13 (trixie)'s Prometheus 2.53 binary into .peers/prometheus-trixie/ under the
# repository (gitignored), without touching the system: the .deb is unpacked with dpkg-deb -x,
# not installed. Prints the binary's path on stdout.
#
# Why: Strata's OTLP metrics translation matches Prometheus 2.53 (src/ingest/otlp/metrics), and
# tests/otlp_prometheus.rs checks what that version stores. Debian 12 only has 2.42.
#
# Known limit: Debian builds Prometheus without its OTLP receiver (trixie's 2.53.3 carries
# debian/patches/0019-Disable-OTLP-Ingestion-endpoint.patch; sid's 3.5.3 has no receiver flag
# either), so this binary cannot ingest OTLP itself. It runs fine on Debian 12 (static Go
# binary but for libc >= 2.34).
#
# Steps: fetch trixie's Packages.xz, take the `prometheus` stanza's Filename and SHA256, fetch
# the .deb, verify the SHA256, unpack. Idempotent: does nothing when the binary is there and
# reports version 2.53.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST="$ROOT/.peers/prometheus-trixie"
BIN="$DEST/usr/bin/prometheus"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
WANTED_VERSION_PREFIX="2.53."

log() { printf '[install-prometheus-trixie] %s\n' "$*" >&2; }

binary_ok() {
  [[ -x "$BIN" ]] && "$BIN" --version 2>&1 | head -n1 | grep -q "version ${WANTED_VERSION_PREFIX}"
}

if binary_ok; then
  log "already present: $("$BIN" --version 2>&1 | head -n1)"
  echo "$BIN"
  exit 0
fi

for tool in curl xz dpkg-deb sha256sum awk; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "missing tool: $tool (install curl and xz-utils)"
    exit 1
  fi
done

WORK=$(mktemp -d /tmp/strata-prometheus-trixie.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

fetch() { curl -fsS --retry 3 --retry-delay 2 --connect-timeout 10 --max-time 300 -o "$2" "$1"; }

log "fetching $MIRROR/dists/trixie/main/binary-amd64/Packages.xz"
fetch "$MIRROR/dists/trixie/main/binary-amd64/Packages.xz" "$WORK/Packages.xz"

# The stanza of the binary package named exactly `prometheus`.
read -r VERSION FILENAME SHA256 < <(
  xz -dc "$WORK/Packages.xz" | awk '
    /^$/ { if (pkg == "prometheus") { print ver, file, sha; found = 1; exit } pkg = ""; ver = ""; file = ""; sha = "" }
    /^Package: / { pkg = $2 }
    /^Version: / { ver = $2 }
    /^Filename: / { file = $2 }
    /^SHA256: / { sha = $2 }
    END { if (!found && pkg == "prometheus") print ver, file, sha }'
) || true
if [[ -z "${FILENAME:-}" || -z "${SHA256:-}" ]]; then
  log "no prometheus package in trixie's Packages.xz"
  exit 1
fi
if [[ "$VERSION" != ${WANTED_VERSION_PREFIX}* ]]; then
  log "trixie's prometheus is $VERSION, not ${WANTED_VERSION_PREFIX}x: update this script and the tests"
  exit 1
fi

log "fetching $FILENAME ($VERSION)"
fetch "$MIRROR/$FILENAME" "$WORK/prometheus.deb"
echo "$SHA256  $WORK/prometheus.deb" | sha256sum -c --quiet - || {
  log "sha256 mismatch for $FILENAME"
  exit 1
}

dpkg-deb -x "$WORK/prometheus.deb" "$WORK/root"
if ! "$WORK/root/usr/bin/prometheus" --version >/dev/null 2>&1; then
  log "unpacked binary does not run here"
  exit 1
fi
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST"
mv "$WORK/root" "$DEST"

binary_ok || { log "installed binary does not report version ${WANTED_VERSION_PREFIX}x"; exit 1; }
log "installed: $("$BIN" --version 2>&1 | head -n1)"
echo "$BIN"
