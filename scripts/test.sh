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

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Go references for the differential tests (Debian trixie/sid, private apt configuration)"
scripts/go-refs.sh

step "signing clients for the referrer tests: cosign, oras, notation, crane (Debian sid, private apt configuration)"
scripts/sig-tools.sh

step "the recompression crate stands alone (no store, no async runtime, no network) and its layers have no import cycles"
# crates/recompress is tested on its own (`cargo test -p recompress` builds no RocksDB); a
# dependency on any of these would undo that.
if cargo tree -p recompress -e normal --prefix none --locked | grep -E '^(rocksdb|librocksdb-sys|tokio|hyper|reqwest|oci-client|axum) '; then
  echo "crates/recompress depends on the store, the runtime or the network" >&2; exit 1
fi
echo ok
scripts/module-cycles.py crates/recompress/src

step "cargo test (booster and crates/recompress)"
cargo test --locked --workspace --all-targets -- --test-threads 2

step "one RocksDB build shared by the demo's cargo build, clippy and the tests"
# librocksdb-sys takes most of a cold build: a second copy means some step's build
# configuration drifted from the others (issue 24). Each command below is already built.
rocksdb_out_dirs() {
  cargo "$@" --locked --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "#librocksdb-sys@" in m["package_id"]:
        print(m["out_dir"])'
}
dirs=$( { rocksdb_out_dirs build --bin booster; rocksdb_out_dirs clippy --workspace --all-targets;
          rocksdb_out_dirs test --workspace --all-targets --no-run; } | sort -u)
if [ "$(grep -c . <<< "$dirs")" -ne 1 ]; then
  echo "librocksdb-sys is built more than once (or not at all):" >&2; echo "$dirs" >&2; exit 1
fi
echo "ok: $dirs"

step "fuzz, CI share: fixed seed and runs, committed seeds and regression inputs (fuzz/run.sh for long runs)"
fuzz/run.sh --ci

step "benchmark harness on tiny images (bench/run.sh for the real table)"
bench/run.sh --quick

step "store soak, CI share: 60 sessions and 12 replica syncs (bench/store-soak.py for 1,000 and 200)"
bench/store-soak.py --quick --out "$(mktemp -d)/soak"

echo; echo "all tests passed"
