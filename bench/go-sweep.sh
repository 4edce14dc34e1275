#!/usr/bin/env bash
# Long differential sweeps of booster's Go compressor ports against Go itself.
# CI runs each differential test with a few cases per level; this runs many.
#
# Usage: bench/go-sweep.sh [NAME...]     (default: every sweep below)
# Environment:
#   BOOSTER_DIFF_CASES  generated inputs per level (default 1000)
#   BOOSTER_DIFF_SEED   base seed (default: random; printed, to reproduce)
#   BOOSTER_DIFF_TAR    an extra real tar to include
#   BOOSTER_DIR         crate to test (default: this repo)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "${BOOSTER_DIR:-$here}"

# The sweeps: name and the integration test (tests/NAME.rs) that runs it.
# Each test reads BOOSTER_DIFF_CASES and BOOSTER_DIFF_SEED. Append new ones.
SWEEPS=(
    "goflate goflate_differential"
)

export BOOSTER_DIFF_CASES=${BOOSTER_DIFF_CASES:-1000}
export BOOSTER_DIFF_SEED=${BOOSTER_DIFF_SEED:-$(((RANDOM << 15) | RANDOM))}
cargo=cargo
command -v lcargo >/dev/null && cargo=lcargo

selected=("$@")
status=0
for sweep in "${SWEEPS[@]}"; do
    read -r name test <<<"$sweep"
    if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " == *" $name "* ]]; then
        continue
    fi
    echo "== $name: $BOOSTER_DIFF_CASES cases per level, BOOSTER_DIFF_SEED=$BOOSTER_DIFF_SEED" >&2
    start=$SECONDS
    # Build under the build lock (lcargo), then run outside it, so a long
    # sweep does not hold up other people's builds.
    bin=$($cargo test --release -p recompress --test "$test" --no-run 2>&1 |
        tee /dev/stderr | sed -n "s|.*Executable tests/$test.rs (\(.*\))|\1|p")
    [ -x "$bin" ] || { echo "== $name: could not build tests/$test.rs" >&2; exit 1; }
    if "$bin" --nocapture; then
        echo "== $name: passed in $((SECONDS - start)) s" >&2
    else
        echo "== $name: FAILED (reproduce with BOOSTER_DIFF_SEED=$BOOSTER_DIFF_SEED)" >&2
        status=1
    fi
done
exit $status
