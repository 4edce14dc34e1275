#!/usr/bin/env bash
# Bit-exact rebuild per encoder: one layer, compressed by each real encoder, pulled into a
# fresh store (analysis: which rung of the ladder claims it, and its correction bytes) and
# pushed back out to an OCI layout (rebuild from the store + sha256 verification + write).
#
#   bench/encoders.sh [TAR]
#
# TAR defaults to the Debian layer of the ../shared/bench test bed (/tmp/bench/tars/
# debian-old-L0.tar, 121 MB) when it exists, else a 100 MB tar of /usr/lib. Prints one
# Markdown table: per encoder the blob size, the method booster recorded, correction bytes
# as % of the blob, the encoder's own time, and booster's analysis and rebuild throughput
# (plain MB per second of wall time, 2 cores). Checks that every pushed manifest has the
# digest of the original.
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
(cd tests/go/goflate-ref && GO111MODULE=off go build -o "$GOFLATE" .)
(cd tests/go/pgzip-ref && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$PGZIP" .)

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
zstd -3|zstd|zstd -3 -q -c
zstd -19|zstd|zstd -19 -q -c
EOF
)

layout() {  # DIR BLOB MEDIA → an OCI layout with one single-layer image tagged "t"
  python3 - "$1" "$2" "$3" "$TAR" <<'PY'
import hashlib, json, os, sys
d, blob, media, tar = sys.argv[1:]
def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
    return h.hexdigest()
def put(data=None, path=None):
    h = hashlib.sha256(data).hexdigest() if data is not None else digest(path)
    os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
    dest = f"{d}/blobs/sha256/{h}"
    if data is None: os.link(path, dest)
    else: open(dest, "wb").write(data)
    return "sha256:" + h
cfg = json.dumps({"architecture": "amd64", "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + digest(tar)]}}).encode()
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
    "layers": [{"mediaType": f"application/vnd.oci.image.layer.v1.tar+{media}", "digest": put(path=blob),
                "size": os.path.getsize(blob)}]}).encode()
md = put(m)
open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": md, "size": len(m), "annotations": {"org.opencontainers.image.ref.name": "t"}}]},
    open(f"{d}/index.json", "w"))
PY
}
secs() { /usr/bin/time -f %e -o "$1" "${@:2}"; }
manifest_digest() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['manifests'][0]['digest'])" "$1/index.json"; }

PLAIN=$(stat -c %s "$TAR")
echo "Input: $TAR ($(awk "BEGIN{printf \"%.1f\", $PLAIN/1e6}") MB plain), booster $("$BOOSTER" --version | cut -d' ' -f2)"
echo
echo "| encoder | blob | method recorded | correction bytes | encoder time | analysis (pull) | rebuild (push) |"
echo "|---|---|---|---|---|---|---|"
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
t = lambda f: float(open(f"{d}/{f}").read().split()[-1])
layer = json.load(open(f"{d}/inspect.json"))["manifests"][0]["layers"][0]
blob = os.path.getsize(f"{d}/blob")
corr = layer.get("correction_bytes", 0)
mbs = lambda s: f"{plain / 1e6 / s:.0f} MB/s" if s > 0 else "–"
print(f"| {name} | {blob / 1e6:.1f} MB | {layer.get('method', '?')} | {corr} B ({100 * corr / blob:.4f} %) "
      f"| {t('enc.t'):.1f} s | {t('pull.t'):.1f} s ({mbs(t('pull.t'))}) | {t('push.t'):.1f} s ({mbs(t('push.t'))}) |")
PY
  rm -rf "$d"
done <<< "$ENCODERS"
