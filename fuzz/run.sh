#!/usr/bin/env bash
# Runs every fuzz target of rdg for ${FUZZ_SECONDS:-60} seconds each, after replaying the
# regression inputs in fuzz/regressions/<target>/. Exits non-zero on any crash, leak, timeout,
# OOM or build failure. Works from any directory: `bash fuzz/run.sh`.
#
# Environment:
#   FUZZ_SECONDS   seconds of fuzzing per target (default 60)
#   FUZZ_TARGETS   space-separated subset of targets (default: all)
#   FUZZ_CARGO     override the cargo-fuzz command, e.g. "cargo +nightly fuzz"
set -u -o pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$FUZZ_DIR"

SECS="${FUZZ_SECONDS:-60}"
ALL_TARGETS="wire_decode carousel_frame group_config crd_spec role_file status_reply"
read -r -a TARGETS <<<"${FUZZ_TARGETS:-$ALL_TARGETS}"
# -O: dependencies without debug assertions; Cargo.toml turns them (and overflow checks) back
# on for the rdg crates and the targets. Must be the same for `build` and `run` (no rebuild).
BUILD_FLAGS=(-O)
LOGS="$FUZZ_DIR/logs"
SCRATCH="$FUZZ_DIR/corpus-run"
mkdir -p "$LOGS" "$SCRATCH"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "run.sh: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)" >&2
    exit 2
fi

# The toolchain: the machine's default (stable) with RUSTC_BOOTSTRAP=1, which allows the
# nightly-only flags cargo-fuzz passes (sanitizers, coverage passes); FUZZ_CARGO overrides it
# (e.g. "cargo +nightly fuzz").
build_start=$(date +%s)
if [[ -n "${FUZZ_CARGO:-}" ]]; then
    read -r -a CARGO <<<"$FUZZ_CARGO"
else
    CARGO=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
fi
"${CARGO[@]}" build "${BUILD_FLAGS[@]}" || { echo "run.sh: build failed with: ${CARGO[*]}" >&2; exit 2; }
build_secs=$(( $(date +%s) - build_start ))
echo "run.sh: built with '${CARGO[*]} build ${BUILD_FLAGS[*]}' in ${build_secs}s"

# Classifies a libFuzzer log; prints ok|crash|leak|timeout|oom|fail.
classify() { # log exit_code
    local log="$1" rc="$2"
    if grep -q "ERROR: libFuzzer: timeout" "$log"; then echo timeout
    elif grep -qE "ERROR: libFuzzer: out-of-memory|ERROR: libFuzzer: malloc limit" "$log"; then echo oom
    elif grep -q "ERROR: LeakSanitizer" "$log"; then echo leak
    elif grep -qE "ERROR: libFuzzer: deadly signal|ERROR: AddressSanitizer|panicked at|ERROR: libFuzzer:" "$log"; then echo crash
    elif [[ "$rc" -ne 0 ]]; then echo fail
    else echo ok
    fi
}

failed=0
summary=()
json_rows=()
for t in "${TARGETS[@]}"; do
    # 1. Regressions: every saved input must run clean.
    reg_result=ok
    if [[ -d "regressions/$t" ]]; then
        for f in "regressions/$t"/*; do
            [[ -f "$f" ]] || continue
            rlog="$LOGS/$t.regression.log"
            "${CARGO[@]}" run "${BUILD_FLAGS[@]}" "$t" "$f" -- -rss_limit_mb=2048 -timeout=10 >"$rlog" 2>&1
            rrc=$?
            r=$(classify "$rlog" "$rrc")
            if [[ "$r" != ok ]]; then
                reg_result="regression-$r"
                echo "run.sh: $t: regression input $FUZZ_DIR/$f fails ($r); log: $rlog" >&2
                grep -E "panicked at|ERROR:|SUMMARY" "$rlog" | head -5 >&2
            fi
        done
    fi

    # 2. Fuzz on a scratch copy of the checked-in corpus.
    rm -rf "${SCRATCH:?}/$t"
    mkdir -p "$SCRATCH/$t"
    [[ -d "corpus/$t" ]] && cp -r "corpus/$t/." "$SCRATCH/$t/"
    log="$LOGS/$t.log"
    echo "run.sh: fuzzing $t for ${SECS}s (log: $log)"
    "${CARGO[@]}" run "${BUILD_FLAGS[@]}" "$t" "$SCRATCH/$t" -- \
        -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    result=$(classify "$log" "$rc")
    last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -1)
    runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
    [[ -z "$runs" ]] && runs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$last")
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+')
    ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+')
    artifact=""
    if [[ "$result" != ok ]]; then
        artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -1 | sed 's/Test unit written to //')
        [[ -n "$artifact" && "$artifact" != /* ]] && artifact="$FUZZ_DIR/${artifact#./}"
        echo "run.sh: $t: $result; artifact: ${artifact:-none}; log: $log" >&2
        grep -E "panicked at|ERROR:|SUMMARY" "$log" | head -5 >&2
    fi
    if [[ "$reg_result" != ok && "$result" == ok ]]; then result="$reg_result"; fi
    [[ "$result" != ok ]] && failed=1
    summary+=("$(printf '%-15s %4ss  runs=%-9s cov=%-6s ft=%-6s %s%s' "$t" "$SECS" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$result" "${artifact:+  artifact=$artifact}")")
    json_rows+=("$(printf '{"target":"%s","seconds":%s,"runs":%s,"cov":%s,"ft":%s,"result":"%s"%s}' \
        "$t" "$SECS" "${runs:-null}" "${cov:-null}" "${ft:-null}" "$result" "${artifact:+,\"artifact\":\"$artifact\"}")")
done

echo
echo "== fuzz summary (build ${build_secs}s) =="
printf '%s\n' "${summary[@]}"
echo
( IFS=,; echo "[${json_rows[*]}]" )
exit "$failed"
