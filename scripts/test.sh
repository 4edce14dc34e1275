#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (real registries on
# loopback, real encoders, the demo's core), then the CI share of the fuzzers and of the
# benchmark harness (short runs that keep them working).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/booster-target}"
export NO_COLOR=1

step() { echo; echo "== $*"; }

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test"
cargo test --locked --all-targets -- --test-threads 2

step "fuzz smoke run (10 s per target; fuzz/run.sh for long runs)"
FUZZ_SECS=${FUZZ_SECS:-10} fuzz/run.sh "${FUZZ_SECS:-10}"

step "benchmark harness on tiny images (bench/run.sh for the real table)"
bench/run.sh --quick

echo; echo "all tests passed"
