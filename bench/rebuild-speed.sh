#!/usr/bin/env bash
# Rebuild speed against the encoder's own speed, per core, for today's gzip encoders (issue
# 19): Go 1.27 compress/gzip, klauspost/compress gzip 1.15.12 / 1.18.0 / 1.20.3 and pgzip
# 1.2.6 over klauspost 1.18.0 / 1.20.3. bench/encoders.sh times each command once; a 10 %
# question needs better than that on a shared 2-core VM, so every figure here is the median
# of N runs (default 5), the two sides of each ratio run alternately.
#
#   bench/rebuild-speed.sh [TAR]        (N=runs, ONLY=REGEX: rows whose name matches,
#                                        BOOSTER_BIN, SPEED_BIN: time these binaries)
#
# Per encoder, in CPU seconds (user + sys):
#   Go         the Go program alone, one core (GOMAXPROCS=1, taskset), tar in, blob out
#   model      booster's model of it alone (examples/kpflate_speed), one core, same tar: the
#              model `booster inspect` names (1.15.12's gzip writer is recorded as the 1.18
#              model, which writes the same bytes)
#   encoder    the Go program as users run it (all cores), writing the blob to a file
#   push       `booster push` of the layer from a store to an OCI layout: read the store,
#              recompress, verify sha256, write the blob (all cores)
#   store read `booster fsck` of that store: every chunk read, decompressed and re-hashed,
#              which the push also pays before it recompresses
# "model ÷ Go" above 1: the model rebuilds faster per core than Go compresses.
# "push ÷ encoder" below 1: the whole push costs less CPU than the encoder did.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/booster-target}"
# BOOSTER_BIN and SPEED_BIN time other builds (an earlier commit's, for a before/after table).
if [ -z "${BOOSTER_BIN:-}" ] || [ -z "${SPEED_BIN:-}" ]; then
  cargo build --release --quiet --bin booster && cargo build --release --quiet -p recompress --example kpflate_speed
fi
BOOSTER=${BOOSTER_BIN:-$CARGO_TARGET_DIR/release/booster}
SPEED=${SPEED_BIN:-$CARGO_TARGET_DIR/release/examples/kpflate_speed}
N=${N:-5}
W=$(mktemp -d /tmp/booster-rebuild-speed.XXXXXX)
trap 'rm -rf "$W"' EXIT
TAR=${1:-/var/tmp/drift/in/bin.tar}
[ -s "$TAR" ] || { TAR=$W/usr.tar; tar -cf - /usr/lib 2>/dev/null | head -c 100M > "$TAR" || true; }
cat "$TAR" > /dev/null
. bench/go-encoders.sh
build_layer_encoders "$W"
pin=""; command -v taskset > /dev/null && pin="taskset -c 0"

# name | Go program arguments | kpflate_speed arguments
ROWS="Go 1.27 compress/gzip default|$ENC127 -mode stdgzip -level -1|-raw -variant go1.27 -level -1
Go 1.27 compress/gzip 1|$ENC127 -mode stdgzip -level 1|-raw -variant go1.27 -level 1
Go 1.27 compress/gzip 9|$ENC127 -mode stdgzip -level 9|-raw -variant go1.27 -level 9
klauspost gzip 1.15.12 default|$ENC115 -mode kpgzip -level -1|-raw -variant 1.18 -level -1
klauspost gzip 1.15.12 1|$ENC115 -mode kpgzip -level 1|-raw -variant 1.18 -level 1
klauspost gzip 1.18.0 default|$ENC118 -mode kpgzip -level -1|-raw -variant 1.18 -level -1
klauspost gzip 1.18.0 1|$ENC118 -mode kpgzip -level 1|-raw -variant 1.18 -level 1
klauspost gzip 1.20.3 default|$ENC120 -mode kpgzip -level -1|-raw -variant 1.20 -level -1
klauspost gzip 1.20.3 1|$ENC120 -mode kpgzip -level 1|-raw -variant 1.20 -level 1
pgzip 1.2.6 on klauspost 1.18.0, 1 MiB|$ENC118 -mode pgzip -level -1 -block 1048576|-variant 1.18 -level -1 -block 1048576
pgzip 1.2.6 on klauspost 1.18.0, 256 KiB|$ENC118 -mode pgzip -level -1 -block 262144|-variant 1.18 -level -1 -block 262144
pgzip 1.2.6 on klauspost 1.20.3, 1 MiB|$ENC120 -mode pgzip -level -1 -block 1048576|-variant 1.20 -level -1 -block 1048576
pgzip 1.2.6 on klauspost 1.20.3, 256 KiB|$ENC120 -mode pgzip -level -1 -block 262144|-variant 1.20 -level -1 -block 262144"
if [ -n "${ONLY:-}" ]; then ROWS=$(grep -E "^[^|]*($ONLY)" <<< "$ROWS"); fi

cpu() {  # OUTFILE CMD... : appends the CPU seconds of CMD to OUTFILE
  local out=$1; shift
  /usr/bin/time -f "%U %S" -o "$W/t" "$@"
  awk '{printf " %.3f", $1 + $2}' "$W/t" >> "$out"
}
median() { tr ' ' '\n' < "$1" | grep . | sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

PLAIN=$(stat -c %s "$TAR")
echo "Input: $TAR ($(awk "BEGIN{printf \"%.1f\", $PLAIN/1e6}") MB plain), booster $("$BOOSTER" --version | cut -d' ' -f2), median of $N runs, CPU seconds"
echo
echo "| encoder | Go, one core | model, one core | model ÷ Go | encoder | push | store read | push ÷ encoder | (push − store read) ÷ encoder |"
echo "|---|---|---|---|---|---|---|---|---|"
i=0
while IFS='|' read -r name go model; do
  i=$((i + 1)); d=$W/$i; mkdir -p "$d"
  # shellcheck disable=SC2086
  $go < "$TAR" > "$d/blob"
  python3 bench/one-layer-layout.py "$d/in" "$d/blob" gzip "$TAR"
  "$BOOSTER" -q --store "$d/store" pull "oci:$d/in:t"
  for _ in $(seq "$N"); do
    # shellcheck disable=SC2086
    GOMAXPROCS=1 cpu "$d/go" $pin $go < "$TAR" > /dev/null
    # shellcheck disable=SC2086
    cpu "$d/model" $pin "$SPEED" $model < "$TAR" > /dev/null 2> /dev/null
    # shellcheck disable=SC2086
    cpu "$d/enc" $go < "$TAR" > "$d/blob2"
    rm -rf "$d/out"
    cpu "$d/push" "$BOOSTER" -q --store "$d/store" push "oci:$d/in:t" --to "oci:$d/out:t"
    cpu "$d/read" "$BOOSTER" -q --store "$d/store" fsck
  done
  cmp -s "$d/blob" "$(ls -S "$d"/out/blobs/sha256/* | head -1)" || { echo "$name: pushed blob differs" >&2; exit 1; }
  awk -v n="$name" -v g="$(median "$d/go")" -v m="$(median "$d/model")" -v e="$(median "$d/enc")" \
      -v p="$(median "$d/push")" -v r="$(median "$d/read")" \
    'BEGIN{printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", n, g, m, g/m, e, p, r, p/e, (p-r)/e}'
  rm -rf "$d"
done <<< "$ROWS"
