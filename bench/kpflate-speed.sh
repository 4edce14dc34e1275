#!/usr/bin/env bash
# Speed of booster's klauspost port (crates/recompress/src/kpflate) against Go's
# klauspost/pgzip 1.2.5 + klauspost/compress 1.15.12 on the same input, plus a
# byte-for-byte check of the deflate body.
#
# Usage: bench/kpflate-speed.sh [INPUT] [LEVEL...]
#   INPUT   file to compress (default: a 100 MB tar of /usr/lib/x86_64-linux-gnu,
#           generated once in $BENCH_DIR)
#   LEVEL   pgzip levels to measure (default: -1 1 6; -1 = 5 is what
#           containers/image and umoci write)
# Environment: BLOCK (pgzip block size, default 1048576; umoci: 262144),
#   BENCH_DIR (default /var/tmp/kpflate-bench), CARGO_TARGET_DIR,
#   BOOSTER_DIR (crate to build the example from; default this repo),
#   GOPATH_KP (default /usr/share/gocode, Debian's Go packages).
#
# One core each: Go runs with GOMAXPROCS=1 and SetConcurrency(block, 1), the
# port single-threaded; both are pinned to CPU 0 when taskset exists. MB/s is
# input bytes per second of CPU time (user + sys), each process reading the
# input from a file in the page cache and writing to a file.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
booster_dir=${BOOSTER_DIR:-$here}
bench_dir=${BENCH_DIR:-/var/tmp/kpflate-bench}
block=${BLOCK:-1048576}
gopath=${GOPATH_KP:-/usr/share/gocode}
mkdir -p "$bench_dir"

input=${1:-}
shift || true
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(-1 1 6)

if [ -z "$input" ]; then
    input=$bench_dir/usr.tar
    if [ ! -s "$input" ]; then
        echo "generating $input" >&2
        tar -cf - /usr/lib/x86_64-linux-gnu 2>/dev/null | head -c 100M >"$input" || true
    fi
fi

command -v go >/dev/null || { echo "go not found (Debian: golang-go)" >&2; exit 1; }
go_bin=$bench_dir/pgzip-ref
(cd "$here/crates/recompress/tests/go/pgzip-ref" && GO111MODULE=off GOPATH=$gopath GOFLAGS= go build -o "$go_bin" .)

cargo=cargo
command -v lcargo >/dev/null && cargo=lcargo
(cd "$booster_dir" && $cargo build --release --quiet -p recompress --example kpflate_speed)
target=${CARGO_TARGET_DIR:-$booster_dir/target}
rust_bin=$target/release/examples/kpflate_speed

pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)

size=$(stat -c %s "$input")
cat "$input" >/dev/null # warm the page cache

# cpu_seconds CMD...: runs CMD with stdin from $input, stdout to $out; prints
# user+sys seconds.
cpu_seconds() {
    /usr/bin/time -o "$bench_dir/time" -f '%U %S' "${pin[@]}" "$@" <"$input" >"$out" 2>/dev/null
    awk '{ printf "%.3f", $1 + $2 }' "$bench_dir/time"
}

printf '%s: %d bytes, pgzip block %d\n' "$input" "$size" "$block"
printf '%-6s %10s %10s %8s  %s\n' level 'Go MB/s' 'Rust MB/s' 'Rust/Go' 'deflate body'
status=0
for level in "${levels[@]}"; do
    out=$bench_dir/go.gz
    go_s=$(GOMAXPROCS=1 cpu_seconds "$go_bin" -procs 1 -block "$block" -level "$level")
    # Strip the 10-byte header and the 8-byte trailer: the port writes bodies.
    tail -c +11 "$out" | head -c -8 >"$bench_dir/go.body"
    out=$bench_dir/rust.body
    rust_s=$(cpu_seconds "$rust_bin" -block "$block" -level "$level")
    if cmp -s "$bench_dir/go.body" "$out"; then
        same="identical ($(stat -c %s "$out") bytes)"
    else
        same=DIFFERENT
        status=1
    fi
    awk -v l="$level" -v n="$size" -v g="$go_s" -v r="$rust_s" -v s="$same" 'BEGIN {
        printf "%-6s %10.1f %10.1f %8.2f  %s\n", l, n / g / 1e6, n / r / 1e6, g / r, s }'
done
exit $status
