#!/usr/bin/env bash
# eStargz layers (stargz-snapshotter's estargz.Build: one gzip member per file chunk, the
# TOC in its own member, a footer member; what `ctr-remote image optimize` and BuildKit's
# compression=estargz write) against their plain-gzip twin: what booster records for them,
# whether the pushed digest is the original's, pull time, and the patch of a small update.
#
#   bench/estargz.sh
#
# The encoder is bench/estargz/main.go built in GOPATH mode against Debian's
# golang-github-containerd-stargz-snapshotter-dev (fetched with apt-get download, not
# installed). The image is a tar of /usr/lib/python3.11; v2 edits five files.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/booster-target}"
if [ -z "${BOOSTER:-}" ]; then
  cargo build --release --quiet --bin booster
  BOOSTER=$CARGO_TARGET_DIR/release/booster
fi
W=$(mktemp -d /tmp/booster-estargz.XXXXXX)
trap 'rm -rf "$W"' EXIT

(cd "$W" && apt-get download -q golang-github-containerd-stargz-snapshotter-dev \
   golang-github-opencontainers-go-digest-dev golang-github-vbatts-tar-split-dev \
   golang-github-pkg-errors-dev golang-golang-x-sync-dev >/dev/null 2>&1)
for f in "$W"/*.deb; do dpkg -x "$f" "$W/root"; done
(cd bench/estargz && GO111MODULE=off GOCACHE="$W/gocache" \
   GOPATH="$W/root/usr/share/gocode:/usr/share/gocode" go build -o "$W/estargz" .)

python3 - "$W" <<'PY'
import io, os, sys, tarfile
w = sys.argv[1]
files = []
for root, dirs, names in os.walk("/usr/lib/python3.11"):
    dirs.sort()
    for n in sorted(names):
        p = os.path.join(root, n)
        if os.path.isfile(p) and not os.path.islink(p):
            files.append(p)
def write(tag, edit):
    with tarfile.open(f"{w}/{tag}.tar", "w", format=tarfile.PAX_FORMAT) as t:
        for i, p in enumerate(files):
            data = open(p, "rb").read()
            if edit and i % (len(files) // 5) == 7:
                data += b"\n# changed in v2\n"
            ti = tarfile.TarInfo(p.lstrip("/")); ti.size = len(data); ti.mtime = 1700000000; ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
write("v1", False)
write("v2", True)
PY

layout() {  # DIR TAG BLOB TAR
  python3 - "$@" <<'PY'
import hashlib, json, os, sys
d, tag, blob, tar = sys.argv[1:]
def put(data):
    h = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
    open(f"{d}/blobs/sha256/{h}", "wb").write(data)
    return "sha256:" + h
b = open(blob, "rb").read()
cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
    "diff_ids": ["sha256:" + hashlib.sha256(open(tar, "rb").read()).hexdigest()]}}).encode()
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(b), "size": len(b)}]}).encode()
md = put(m)
open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": md, "size": len(m), "annotations": {"org.opencontainers.image.ref.name": tag}}]},
    open(f"{d}/index.json", "w"))
PY
}
manifest_digest() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['manifests'][0]['digest'])" "$1/index.json"; }

echo "Input: a tar of /usr/lib/python3.11 ($(( $(stat -c %s "$W/v1.tar") / 1000000 )) MB), v2 edits five files; booster $("$BOOSTER" --version | cut -d' ' -f2)"
echo
echo "| layers | blob | method recorded | correction bytes | pull | pushed digest | pull update | patch |"
echo "|---|---|---|---|---|---|---|---|"
for flavour in "gzip -6|gzip -6 -n -c" "eStargz (estargz.Build defaults)|$W/estargz"; do
  name=${flavour%%|*} cmd=${flavour#*|} d=$W/${name%% *}
  mkdir -p "$d"
  for tag in v1 v2; do
    $cmd < "$W/$tag.tar" > "$d/$tag.blob" 2>/dev/null
    layout "$d/$tag" "$tag" "$d/$tag.blob" "$W/$tag.tar"
  done
  /usr/bin/time -f "%e" -o "$d/pull.t" "$BOOSTER" -q --store "$d/store" pull "oci:$d/v2:v2"
  "$BOOSTER" -q --store "$d/store" push "oci:$d/v2:v2" --to "oci:$d/out:v2"
  same=no; [ "$(manifest_digest "$d/v2")" = "$(manifest_digest "$d/out")" ] && same=yes
  "$BOOSTER" --store "$d/store" --json inspect "oci:$d/v2:v2" > "$d/inspect.json"
  echo "oci:$d/v1:v1" > "$d/old.txt"; echo "oci:$d/v2:v2" > "$d/new.txt"
  "$BOOSTER" -q --store "$d/sender" --json diff "$d/old.txt" "$d/new.txt" -o "$d/patch" > "$d/diff.json"
  python3 - "$name" "$d" "$same" <<'PY'
import json, sys
name, d, same = sys.argv[1:]
layer = json.load(open(f"{d}/inspect.json"))["manifests"][0]["layers"][0]
diff = json.load(open(f"{d}/diff.json"))
corr = layer["correction_bytes"]
print(f"| {name} | {layer['compressed_size'] / 1e6:.1f} MB | {layer['method']} | {corr} B "
      f"| {float(open(f'{d}/pull.t').read().split()[-1]):.1f} s | {same} "
      f"| {diff['pull_update_bytes'] / 1e6:.1f} MB | {diff['patch_bytes'] / 1e3:.1f} kB |")
PY
done
