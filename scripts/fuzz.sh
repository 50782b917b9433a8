#!/usr/bin/env bash
# Fuzzes Strata with cargo-fuzz (libFuzzer). NOT part of CI: it is slow by design.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Targets (fuzz/Cargo.toml, `cargo fuzz list`): remote_write_decode, remote_write_receive,
# loki_push, zipkin_decode, otlp_decode (the three OTLP/HTTP decoders: protobuf/JSON, gzip, span
# checks, relabeling), config_parse, relabel, wal_replay (WAL repair and record decoding).
#
# Runs every target of fuzz/ (or the ones named) for SECONDS each (default 60), one after the
# other, one libFuzzer process each, at nice 10. Each run starts from the committed seeds in
# fuzz/seeds/<target>/ and grows a corpus in a temporary directory (removed at the end unless
# FUZZ_KEEP_CORPUS=1). Exits non-zero if any target crashed; the crashing input is in
# fuzz/artifacts/<target>/ and the reproduction command is printed.
#
# Stable Rust only: cargo-fuzz needs nightly flags (-Zsanitizer, -Cpasses=sancov-module), which
# RUSTC_BOOTSTRAP=1 enables on the stable toolchain.
#
# Environment:
#   FUZZ_SANITIZER    address (default) or none (about 2x faster; Strata itself has no unsafe)
#   FUZZ_MAX_LEN      largest input libFuzzer generates, bytes (default 65536)
#   FUZZ_RSS_MB       libFuzzer's memory limit (default 2048)
#   FUZZ_CORPUS_DIR   where corpora go (default: a new temp dir)
#   FUZZ_KEEP_CORPUS  1 keeps the corpus directory
#
# Seeds are regenerated (after an encoder or config change) with
#   cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SECONDS_PER_TARGET=${1:-60}
if ! [[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || ((SECONDS_PER_TARGET < 1)); then
  echo "usage: $0 [SECONDS] [TARGET...]" >&2
  exit 2
fi
shift || true

SANITIZER=${FUZZ_SANITIZER:-address}
MAX_LEN=${FUZZ_MAX_LEN:-65536}
RSS_MB=${FUZZ_RSS_MB:-2048}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz not found; installing it (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi

if (($# > 0)); then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo fuzz list)
fi

if [[ -n ${FUZZ_CORPUS_DIR:-} ]]; then
  CORPUS_ROOT=$FUZZ_CORPUS_DIR
  mkdir -p "$CORPUS_ROOT"
else
  CORPUS_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/strata-fuzz.XXXXXX")
  if [[ ${FUZZ_KEEP_CORPUS:-0} != 1 ]]; then
    trap 'rm -rf "$CORPUS_ROOT"' EXIT
  fi
fi

echo "targets:   ${TARGETS[*]}"
echo "seconds:   $SECONDS_PER_TARGET per target"
echo "sanitizer: $SANITIZER"
echo "corpus:    $CORPUS_ROOT"

# One build for all targets, so build time is not taken from the fuzzing time.
nice -n 10 cargo fuzz build --sanitizer "$SANITIZER"

FAILED=()
for target in "${TARGETS[@]}"; do
  printf '\n==================== %s (%ss) ====================\n' "$target" "$SECONDS_PER_TARGET"
  corpus="$CORPUS_ROOT/$target"
  log="$CORPUS_ROOT/$target.log"
  mkdir -p "$corpus"
  seeds=()
  [[ -d fuzz/seeds/$target ]] && seeds=("fuzz/seeds/$target")
  # New inputs go to the first directory ($corpus); the seeds are only read.
  if nice -n 10 cargo fuzz run --sanitizer "$SANITIZER" "$target" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb="$RSS_MB" -max_len="$MAX_LEN" \
    -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" || tail -3 "$log"
  else
    FAILED+=("$target")
    echo "CRASH in $target; last lines of its log:" >&2
    tail -60 "$log" >&2
  fi
done

if ((${#FAILED[@]} > 0)); then
  printf '\nFAILED: %s\n' "${FAILED[*]}" >&2
  for target in "${FAILED[@]}"; do
    for artifact in fuzz/artifacts/"$target"/*; do
      [[ -e $artifact ]] || continue
      echo "  reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run $target $artifact" >&2
    done
  done
  exit 1
fi
echo
echo "all targets ran ${SECONDS_PER_TARGET}s without a crash"
