#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and fails on any crash, panic, leak,
# oversized allocation or hang.   tools/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
#
# Works with the stable toolchain: cargo-fuzz passes unstable rustc flags (sanitizer, coverage),
# which RUSTC_BOOTSTRAP=1 lets stable accept. FUZZ_SANITIZER=none skips AddressSanitizer (faster,
# but single huge allocations are then only caught by the RSS limit). Crash inputs land in
# fuzz/artifacts/<target>/; replay one with `cargo fuzz run --fuzz-dir fuzz <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh

seconds="${1:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
# Instrumented builds must not share the workspace's target dir (different flags, nightly-only
# options); cargo-fuzz's own default is fuzz/target, which git ignores.
export CARGO_TARGET_DIR="$PWD/fuzz/target"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

fuzz=(cargo fuzz)
build_flags=(--fuzz-dir fuzz --sanitizer "$sanitizer" --debug-assertions)
echo "== building fuzz targets (sanitizer: $sanitizer)"
"${fuzz[@]}" build "${build_flags[@]}"

logs="$CARGO_TARGET_DIR/fuzz-logs"
mkdir -p "$logs"
failed=()
total=0
for target in $("${fuzz[@]}" list --fuzz-dir fuzz); do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus" "fuzz/artifacts/$target"
    log="$logs/$target.log"
    echo "== $target: ${seconds}s"
    # New inputs go to the first (ignored) corpus dir; the committed seeds are read only.
    # -malloc_limit_mb: one allocation over 512 MB is a bug here (the largest legitimate one is a
    # worker frame body, whose reader grows with the bytes that actually arrive).
    if "${fuzz[@]}" run "${build_flags[@]}" "$target" "$corpus" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    execs=${execs:-0}
    total=$((total + execs))
    echo "   $status: $execs execs, corpus $(ls "$corpus" | wc -l) inputs (log: $log)"
    if [ "$status" = FAILED ]; then
        grep -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer)|SUMMARY|Test unit written' "$log" | head -8 | sed 's/^/   /'
    fi
done

echo "== total: $total execs"
if [ ${#failed[@]} -gt 0 ]; then
    echo "== crashes in: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "== no crashes"
