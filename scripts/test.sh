#!/usr/bin/env bash
# The project's test command (README; CI runs `bash .ci/run`, which runs this).
#   1. install the real peers (Prometheus, node_exporter, Alertmanager from Debian packages;
#      the OTel SDK, Loki push clients and Prometheus 2.53 under .peers/)
#   2. build ../shared/tools/loadgen (the crash tests drive load with it)
#   2. cargo fmt --check
#   3. cargo clippy --all-targets -- -D warnings
#   4. cargo test --all-targets
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Shared conformance material used by later tests (default: ../shared/conformance).
if [[ -z "${STRATA_CONFORMANCE_DIR:-}" ]]; then
  STRATA_CONFORMANCE_DIR="$(cd "$ROOT/.." && pwd)/shared/conformance"
fi
export STRATA_CONFORMANCE_DIR
# The peers are installed below, so a missing peer is a failure, not a skip
# (tests/common/mod.rs `require_peer` treats CI=true that way).
export CI="${CI:-true}"

SECTION_START=$SECONDS
TOTAL_START=$SECONDS
CURRENT_SECTION="start"
section() {
  CURRENT_SECTION="$*"
  printf '\n==================== %s ====================\n' "$*"
  SECTION_START=$SECONDS
}
trap 'printf "\n==================== FAILED: %s (exit %d) ====================\n" \
  "$CURRENT_SECTION" "$?" >&2' ERR
done_section() {
  printf -- '---- ok (%ds) ----\n' "$((SECONDS - SECTION_START))"
}

section "environment"
echo "repo:                    $ROOT"
echo "STRATA_CONFORMANCE_DIR:  $STRATA_CONFORMANCE_DIR"
echo "CI:                      $CI"
cargo --version
rustc --version
done_section

section "install peers (scripts/install-peers.sh)"
bash scripts/install-peers.sh
done_section

section "build loadgen (../shared/tools/loadgen) for the crash tests"
LOADGEN_DIR=${LOADGEN_DIR:-"$ROOT/../shared/tools/loadgen"}
if [[ ! -f "$LOADGEN_DIR/Cargo.toml" ]]; then
  echo "loadgen not found at $LOADGEN_DIR (set LOADGEN_DIR)" >&2
  exit 1
fi
cargo build --release --quiet --manifest-path "$LOADGEN_DIR/Cargo.toml" \
  --target-dir "$ROOT/.peers/loadgen-target"
export STRATA_LOADGEN="$ROOT/.peers/loadgen-target/release/loadgen"
done_section

section "cargo fmt --check"
cargo fmt --all -- --check
done_section

section "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
done_section

section "cargo test --all-targets"
cargo test --all-targets
done_section

printf '\n==================== all checks passed (%ds) ====================\n' \
  "$((SECONDS - TOTAL_START))"
