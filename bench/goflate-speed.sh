#!/usr/bin/env bash
# Speed of booster's Go-flate port (crates/recompress/src/goflate) against Go's own
# compress/flate on the same input, plus a byte-for-byte check of the output.
#
# Usage: bench/goflate-speed.sh [INPUT] [LEVEL...]
#   INPUT   file to compress (default: a 100 MB tar of /usr/lib/x86_64-linux-gnu,
#           generated once in $BENCH_DIR)
#   LEVEL   Go levels to measure (default: -1 1, i.e. moby's and crane's)
# Environment: BENCH_DIR (default /var/tmp/goflate-bench), CARGO_TARGET_DIR,
#   BOOSTER_DIR (crate to build the example from; default this repo),
#   NO_BUILD=1 (use the example binary already built).
#
# Both sides run one core's worth of work: Go with GOMAXPROCS=1, the port
# single-threaded. MB/s is input bytes per second of CPU time (user + sys),
# each process reading the input from a file in the page cache.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
booster_dir=${BOOSTER_DIR:-$here}
bench_dir=${BENCH_DIR:-/var/tmp/goflate-bench}
mkdir -p "$bench_dir"

input=${1:-}
shift || true
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(-1 1)

if [ -z "$input" ]; then
    input=$bench_dir/usr.tar
    if [ ! -s "$input" ]; then
        echo "generating $input" >&2
        tar -cf - /usr/lib/x86_64-linux-gnu 2>/dev/null | head -c 100M >"$input" || true
    fi
fi

command -v go >/dev/null || { echo "go not found (Debian: golang-go)" >&2; exit 1; }
go_bin=$bench_dir/goflate-ref
(cd "$here/crates/recompress/tests/go/goflate-ref" && GO111MODULE=off go build -o "$go_bin" .)

cargo=cargo
command -v lcargo >/dev/null && cargo=lcargo
[ -n "${NO_BUILD:-}" ] || (cd "$booster_dir" && $cargo build --release --quiet -p recompress --example goflate_speed)
target=${CARGO_TARGET_DIR:-$booster_dir/target}
rust_bin=$target/release/examples/goflate_speed

size=$(stat -c %s "$input")
cat "$input" >/dev/null # warm the page cache

# cpu_seconds CMD...: runs CMD with stdin from $input, stdout to $out; prints
# user+sys seconds.
cpu_seconds() {
    /usr/bin/time -o "$bench_dir/time" -f '%U %S' "$@" <"$input" >"$out" 2>/dev/null
    awk '{ printf "%.3f", $1 + $2 }' "$bench_dir/time"
}

printf '%s: %d bytes\n' "$input" "$size"
printf '%-6s %10s %10s %8s  %s\n' level 'Go MB/s' 'Rust MB/s' 'Rust/Go' output
status=0
for level in "${levels[@]}"; do
    out=$bench_dir/go.out
    go_s=$(GOMAXPROCS=1 cpu_seconds "$go_bin" -level "$level")
    go_out=$bench_dir/go-$level.out
    mv "$out" "$go_out"
    out=$bench_dir/rust.out
    rust_s=$(cpu_seconds "$rust_bin" -level "$level")
    if cmp -s "$go_out" "$out"; then same="identical ($(stat -c %s "$out") bytes)"; else same=DIFFERENT; status=1; fi
    awk -v l="$level" -v n="$size" -v g="$go_s" -v r="$rust_s" -v s="$same" 'BEGIN {
        printf "%-6s %10.1f %10.1f %8.2f  %s\n", l, n / g / 1e6, n / r / 1e6, g / r, s }'
done
exit $status
