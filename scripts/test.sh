#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (real registries on
# loopback), and the CI share of the differential and fuzz checks.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/booster-target}"
export NO_COLOR=1

step() { echo; echo "== $*"; }

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test"
cargo test --locked --all-targets -- --test-threads 2

echo; echo "all tests passed"
