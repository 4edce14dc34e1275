#!/usr/bin/env bash
# The long differential sweep of booster's klauspost port (crates/recompress/src/kpflate)
# against Go + klauspost/compress 1.15.12 + pgzip 1.2.5.
#
# Usage: bench/kp-sweep.sh [CASES] [SEED]
#   CASES  inputs per flate level and per pgzip block size (default 1000)
#   SEED   input seed (default: random, printed so a failure can be rerun)
#
# 1. tests/kpflate_differential.rs with BOOSTER_DIFF_CASES=CASES, in release
#    mode (every level -2..9 through flate.Writer, pgzip at 256 KiB, 1 MiB and
#    100003-byte blocks, pgzip_block in parallel threads).
# 2. Streams too long for the test: one flate stream of > 2 GiB per level
#    1-6 (the fast encoders rebase their table offsets past ~2 GiB) and of
#    > 256 MiB per level 7-9 (their hash chains rebase past 2^28), compared
#    by SHA-256 with Go. Skip with KP_SWEEP_HUGE=0.
#
# Environment: CARGO_TARGET_DIR, BENCH_DIR (default /var/tmp/kpflate-bench),
#   BOOSTER_DIR (crate to test; default this repo), GOPATH_KP (default
#   /usr/share/gocode), BOOSTER_DIFF_TAR (a tar to slice inputs from).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
booster_dir=${BOOSTER_DIR:-$here}
bench_dir=${BENCH_DIR:-/var/tmp/kpflate-bench}
gopath=${GOPATH_KP:-/usr/share/gocode}
cases=${1:-1000}
seed=${2:-$(((RANDOM << 15) | RANDOM))}
mkdir -p "$bench_dir"

cargo=cargo
command -v lcargo >/dev/null && cargo=lcargo
command -v go >/dev/null || { echo "go not found (Debian: golang-go)" >&2; exit 1; }

echo "== differential test: $cases cases per level and block size, BOOSTER_DIFF_SEED=$seed"
start=$SECONDS
# Build under the build lock (lcargo), then run outside it, so the sweep does
# not hold up other people's builds.
# (Not `tee /dev/stderr`: with stderr redirected to a file, that reopens the
# file at offset 0 and overwrites the start of the log.)
build_log=$(cd "$booster_dir" && $cargo test --release -p recompress --test kpflate_differential --no-run 2>&1) || {
    echo "$build_log" >&2
    exit 1
}
bin=$(sed -n 's|.*Executable tests/kpflate_differential.rs (\(.*\))|\1|p' <<<"$build_log")
[ -x "$bin" ] || { echo "could not build tests/kpflate_differential.rs" >&2; exit 1; }
# (The test builds the Go references itself, in the target's tmp dir.)
if ! BOOSTER_DIFF_CASES=$cases BOOSTER_DIFF_SEED=$seed BOOSTER_GOPATH=$gopath "$bin" --test-threads 2; then
    echo "== differential test FAILED (reproduce with: $0 $cases $seed)" >&2
    exit 1
fi
echo "differential test: $((SECONDS - start)) s"

[ "${KP_SWEEP_HUGE:-1}" != 0 ] || exit 0

echo "== long single streams (flate.Writer, raw deflate)"
go_bin=$bench_dir/kpflate-ref
(cd "$here/crates/recompress/tests/go/kpflate-ref" && GO111MODULE=off GOPATH=$gopath GOFLAGS= go build -o "$go_bin" .)
(cd "$booster_dir" && $cargo build --release --quiet -p recompress --example kpflate_speed)
target=${CARGO_TARGET_DIR:-$booster_dir/target}
rust_bin=$target/release/examples/kpflate_speed

base=$bench_dir/usr.tar
if [ ! -s "$base" ]; then
    echo "generating $base" >&2
    tar -cf - /usr/lib/x86_64-linux-gnu 2>/dev/null | head -c 100M >"$base" || true
fi

# stream N: N copies of the base tar, each with a different 16-byte prefix so
# no two copies are byte-identical.
stream() {
    for i in $(seq "$1"); do
        printf '%016d' "$i"
        cat "$base"
    done
}

status=0
for level in 1 2 3 4 5 6 7 8 9; do
    copies=23 # 2.4 GB: past the 2^31 - 393 KiB offset rebase
    [ "$level" -ge 7 ] && copies=3 # 315 MB: past the 2^28 chain rebase
    start=$SECONDS
    # Go and Rust read the same generated stream at the same time.
    fifo=$bench_dir/go.fifo
    rm -f "$fifo"
    mkfifo "$fifo"
    "$go_bin" -level "$level" <"$fifo" | sha256sum >"$bench_dir/go.sha" &
    go_pid=$!
    stream "$copies" | tee "$fifo" | "$rust_bin" -raw -level "$level" 2>/dev/null |
        sha256sum >"$bench_dir/rust.sha"
    wait "$go_pid"
    rm -f "$fifo"
    if cmp -s "$bench_dir/go.sha" "$bench_dir/rust.sha"; then
        result="identical $(cut -c1-16 "$bench_dir/rust.sha")"
    else
        result=DIFFERENT
        status=1
    fi
    echo "level $level, $copies copies of $(stat -c %s "$base") bytes: $result ($((SECONDS - start)) s)"
    rm -f "$bench_dir/go.sha" "$bench_dir/rust.sha"
done
exit $status
