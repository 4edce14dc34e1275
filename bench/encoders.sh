#!/usr/bin/env bash
# Bit-exact rebuild per encoder: one layer, compressed by each real encoder, pulled into a
# fresh store (analysis: which rung of the ladder claims it, and its correction bytes) and
# pushed back out to an OCI layout (rebuild from the store + sha256 verification + write).
#
#   bench/encoders.sh [TAR]          (ONLY=REGEX: only the rows whose name matches)
#
# TAR defaults to the Debian layer of the ../shared/bench test bed (/tmp/bench/tars/
# debian-old-L0.tar, 121 MB) when it exists, else a 100 MB tar of /usr/lib. Prints one
# Markdown table: per encoder the blob size, the method booster recorded, correction bytes
# as % of the blob, the encoder's own time (wall, and CPU in brackets), booster's analysis
# and rebuild throughput (plain MB per second of wall time, 2 cores), and the CPU time of
# the whole rebuild (push: read the store, recompress, sha256, write) over the encoder's
# own CPU time: below 1 means booster rebuilds faster per core than the encoder compresses.
# Checks that every pushed manifest has the digest of the original.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/booster-target}"
if [ -z "${BOOSTER:-}" ]; then
  cargo build --release --quiet --bin booster
  BOOSTER=$CARGO_TARGET_DIR/release/booster
fi
W=$(mktemp -d /tmp/booster-encoders.XXXXXX)
trap 'rm -rf "$W"' EXIT

TAR=${1:-}
if [ -z "$TAR" ]; then
  TAR=/tmp/bench/tars/debian-old-L0.tar
  if [ ! -s "$TAR" ]; then
    TAR=$W/usr.tar
    tar -cf - /usr/lib 2>/dev/null | head -c 100M > "$TAR" || true
  fi
fi
cat "$TAR" > /dev/null

GOFLATE=$W/goflate-ref PGZIP=$W/pgzip-ref
(cd crates/recompress/tests/go/goflate-ref && GO111MODULE=off go build -o "$GOFLATE" .)
(cd crates/recompress/tests/go/pgzip-ref && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$PGZIP" .)
# Today's encoders: tests/go/layer-enc against Go 1.27 and klauspost/compress 1.18.0 / 1.20.3
# (scripts/go-refs.sh fetches them from Debian's newer suites), and against bookworm's 1.15.12.
. bench/go-encoders.sh
build_layer_encoders "$W"

# name | media type | encoder command (stdin: the tar, stdout: the blob)
ENCODERS=$(cat <<EOF
gzip -1|gzip|gzip -1 -n
gzip -6|gzip|gzip -6
gzip -9|gzip|gzip -9 -n
pigz -6|gzip|pigz -6 -n
python zlib 6|gzip|python3 -c "import sys,zlib;c=zlib.compressobj(6,zlib.DEFLATED,31);sys.stdout.buffer.write(c.compress(sys.stdin.buffer.read())+c.flush())"
Go compress/gzip default (moby)|gzip|$GOFLATE -gzip -level -1
Go compress/gzip 1 (BestSpeed)|gzip|$GOFLATE -gzip -level 1
pgzip 256 KiB (umoci)|gzip|$PGZIP -block 262144
pgzip 1 MiB (containers/image)|gzip|$PGZIP -block 1048576
Go 1.27 compress/gzip default|gzip|$ENC127 -mode stdgzip -level -1
Go 1.27 compress/gzip 1|gzip|$ENC127 -mode stdgzip -level 1
Go 1.27 compress/gzip 9|gzip|$ENC127 -mode stdgzip -level 9
klauspost gzip 1.15.12 default|gzip|$ENC115 -mode kpgzip -level -1
klauspost gzip 1.15.12 1|gzip|$ENC115 -mode kpgzip -level 1
klauspost gzip 1.18.0 default|gzip|$ENC118 -mode kpgzip -level -1
klauspost gzip 1.18.0 1|gzip|$ENC118 -mode kpgzip -level 1
klauspost gzip 1.20.3 default|gzip|$ENC120 -mode kpgzip -level -1
klauspost gzip 1.20.3 1|gzip|$ENC120 -mode kpgzip -level 1
pgzip 1.2.6 on klauspost 1.18.0, 1 MiB|gzip|$ENC118 -mode pgzip -level -1 -block 1048576
pgzip 1.2.6 on klauspost 1.18.0, 256 KiB|gzip|$ENC118 -mode pgzip -level -1 -block 262144
pgzip 1.2.6 on klauspost 1.20.3, 1 MiB|gzip|$ENC120 -mode pgzip -level -1 -block 1048576
pgzip 1.2.6 on klauspost 1.20.3, 256 KiB|gzip|$ENC120 -mode pgzip -level -1 -block 262144
zstd -3|zstd|zstd -3 -q -c
zstd -19|zstd|zstd -19 -q -c
klauspost zstd 1.15.12 fastest (level 1)|zstd|$ENC115 -mode kpzstd -level 1
klauspost zstd 1.15.12 default (level 3)|zstd|$ENC115 -mode kpzstd -level 3
klauspost zstd 1.15.12 better (level 7)|zstd|$ENC115 -mode kpzstd -level 7
klauspost zstd 1.15.12 best (level 11)|zstd|$ENC115 -mode kpzstd -level 11
klauspost zstd 1.18.0 fastest (level 1)|zstd|$ENC118 -mode kpzstd -level 1
klauspost zstd 1.18.0 default (level 3)|zstd|$ENC118 -mode kpzstd -level 3
klauspost zstd 1.18.0 better (level 7)|zstd|$ENC118 -mode kpzstd -level 7
klauspost zstd 1.18.0 best (level 11)|zstd|$ENC118 -mode kpzstd -level 11
klauspost zstd 1.20.3 fastest (level 1)|zstd|$ENC120 -mode kpzstd -level 1
klauspost zstd 1.20.3 default (level 3)|zstd|$ENC120 -mode kpzstd -level 3
klauspost zstd 1.20.3 better (level 7)|zstd|$ENC120 -mode kpzstd -level 7
klauspost zstd 1.20.3 best (level 11)|zstd|$ENC120 -mode kpzstd -level 11
skopeo-style zstd 1.15.12 (first 8 bytes own block)|zstd|$ENC115 -mode kpzstd-peek8 -level 0
zstd -3 --long=27 (no model)|zstd|zstd -3 --long=27 -q -c
zstd -4 --zstd=hlog=20 (no model)|zstd|zstd -4 --zstd=hlog=20 -q -c
EOF
)

# ONLY=REGEX runs the rows whose name matches (and skips the one-core table).
if [ -n "${ONLY:-}" ]; then ENCODERS=$(grep -E "^[^|]*($ONLY)" <<< "$ENCODERS"); fi

layout() {  # DIR BLOB MEDIA → an OCI layout with one single-layer image tagged "t"
  python3 bench/one-layer-layout.py "$1" "$2" "$3" "$TAR"
}
secs() { /usr/bin/time -f "%e %U %S" -o "$1" "${@:2}"; }
manifest_digest() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['manifests'][0]['digest'])" "$1/index.json"; }

PLAIN=$(stat -c %s "$TAR")
echo "Input: $TAR ($(awk "BEGIN{printf \"%.1f\", $PLAIN/1e6}") MB plain), booster $("$BOOSTER" --version | cut -d' ' -f2)"
echo
echo "| encoder | blob | method recorded | correction bytes | encoder time (CPU) | analysis (pull) | rebuild (push) | rebuild CPU ÷ encoder CPU |"
echo "|---|---|---|---|---|---|---|---|"
i=0
while IFS='|' read -r name media cmd; do
  i=$((i + 1)); d=$W/$i; mkdir -p "$d"
  secs "$d/enc.t" bash -c "$cmd" < "$TAR" > "$d/blob"
  layout "$d/in" "$d/blob" "$media"
  secs "$d/pull.t" "$BOOSTER" -q --store "$d/store" pull "oci:$d/in:t"
  secs "$d/push.t" "$BOOSTER" -q --store "$d/store" push "oci:$d/in:t" --to "oci:$d/out:t"
  [ "$(manifest_digest "$d/in")" = "$(manifest_digest "$d/out")" ] || { echo "$name: pushed digest differs" >&2; exit 1; }
  "$BOOSTER" --store "$d/store" --json inspect "oci:$d/in:t" > "$d/inspect.json"
  python3 - "$name" "$d" "$PLAIN" <<'PY'
import json, os, sys
name, d, plain = sys.argv[1], sys.argv[2], int(sys.argv[3])
def times(f):
    wall, user, sys_ = open(f"{d}/{f}").read().split()[-3:]
    return float(wall), float(user) + float(sys_)
t = lambda f: times(f)[0]
cpu = lambda f: times(f)[1]
layer = json.load(open(f"{d}/inspect.json"))["manifests"][0]["layers"][0]
blob = os.path.getsize(f"{d}/blob")
corr = layer.get("correction_bytes", 0)
mbs = lambda s: f"{plain / 1e6 / s:.0f} MB/s" if s > 0 else "–"
ratio = cpu('push.t') / cpu('enc.t') if cpu('enc.t') > 0 else float("nan")
print(f"| {name} | {blob / 1e6:.1f} MB | {layer.get('method', '?')} | {corr} B ({100 * corr / blob:.4f} %) "
      f"| {t('enc.t'):.1f} s ({cpu('enc.t'):.1f} s) | {t('pull.t'):.1f} s ({mbs(t('pull.t'))}) "
      f"| {t('push.t'):.1f} s ({mbs(t('push.t'))}) | {ratio:.2f} |")
PY
  cut -d' ' -f1 "$d/pull.t" | tail -1 > "$W/pull-$i.wall"; echo "$name" > "$W/pull-$i.name"
  rm -rf "$d"
done <<< "$ENCODERS"

# Giving up on a zstd layer no model reproduces must cost about what pulling its gzip twin
# costs (containers/image's pgzip, which the models rebuild): a wrong candidate is dropped
# at its first differing block.
echo
for f in "$W"/pull-*.name; do
  case $(cat "$f") in
    "pgzip 1 MiB (containers/image)") twin=$(cat "${f%.name}.wall") ;;
  esac
done
for f in "$W"/pull-*.name; do
  case $(cat "$f") in
    *"(no model)") awk -v n="$(cat "$f")" -v t="$(cat "${f%.name}.wall")" -v g="$twin" \
      'BEGIN{printf "Pull of %s: %.1f s, %.2f× the pull of its pgzip twin (%.1f s)\n", n, t, t/g, g}' ;;
  esac
done

[ -z "${ONLY:-}" ] || exit 0

# The encoders alone, one core each: the Go program (GOMAXPROCS=1) against booster's model
# of it (examples/kpflate_speed), on the same tar from the page cache. MB/s is plain input
# per second of CPU time; "model ÷ Go" above 1 means the model is the faster of the two.
cargo build --release --quiet -p recompress --example kpflate_speed
SPEED=$CARGO_TARGET_DIR/release/examples/kpflate_speed
echo
echo "Encoders alone, one core:"
echo
echo "| encoder | Go | booster's model | model ÷ Go |"
echo "|---|---|---|---|"
SOLO="Go 1.27 compress/gzip default|$ENC127 -mode stdgzip -level -1|-raw -variant go1.27 -level -1
Go 1.27 compress/gzip 1|$ENC127 -mode stdgzip -level 1|-raw -variant go1.27 -level 1
Go 1.27 compress/gzip 9|$ENC127 -mode stdgzip -level 9|-raw -variant go1.27 -level 9
klauspost gzip 1.15.12 default|$ENC115 -mode kpgzip -level -1|-raw -variant 1.15 -level -1
klauspost gzip 1.18.0 default|$ENC118 -mode kpgzip -level -1|-raw -variant 1.18 -level -1
klauspost gzip 1.20.3 default|$ENC120 -mode kpgzip -level -1|-raw -variant 1.20 -level -1
klauspost gzip 1.20.3 1|$ENC120 -mode kpgzip -level 1|-raw -variant 1.20 -level 1
pgzip 1.2.6 on klauspost 1.20.3, 1 MiB|$ENC120 -mode pgzip -level -1 -block 1048576|-variant 1.20 -level -1 -block 1048576"
pin=""; command -v taskset >/dev/null && pin="taskset -c 0"
while IFS='|' read -r name go model; do
  GOMAXPROCS=1 /usr/bin/time -f "%U %S" -o "$W/go.t" $pin $go < "$TAR" > /dev/null
  /usr/bin/time -f "%U %S" -o "$W/rs.t" $pin "$SPEED" $model < "$TAR" > /dev/null 2>/dev/null
  python3 - "$name" "$W/go.t" "$W/rs.t" "$PLAIN" <<'PY'
import sys
name, go, rs, plain = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cpu = lambda f: sum(float(x) for x in open(f).read().split()[-2:])
g, r = cpu(go), cpu(rs)
print(f"| {name} | {plain / 1e6 / g:.0f} MB/s | {plain / 1e6 / r:.0f} MB/s | {g / r:.2f} |")
PY
done <<< "$SOLO"
