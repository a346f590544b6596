#!/usr/bin/env bash
# Fuzz every target briefly (a smoke test; the long runs are done by hand):
#   bash .ci/fuzz.sh [SECONDS_PER_TARGET]      (default 60)
# Needs the nightly toolchain; installs cargo-fuzz if it is missing. New corpus
# entries go to fuzz/corpus/ (not committed); the seeds in fuzz/seeds/ come from the
# test tables. A crash leaves its input in fuzz/artifacts/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo +nightly fuzz build
for target in handshake frame connection credentials; do
    mkdir -p "corpus/$target"
    echo "== fuzz $target for ${secs}s"
    log=$(mktemp)
    if ! cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -60 "$log"
        echo "fuzz target $target failed" >&2
        exit 1
    fi
    grep -E "^(Done|stat::average_exec_per_sec)" "$log" || true
    rm -f "$log"
done
