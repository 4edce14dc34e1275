#!/usr/bin/env bash
# What carrying signatures and referrers costs a copy: `booster copy` of one signed image
# (everything tests/fixtures/sign-image.sh attaches: two cosign signatures, two
# attestations, an oras SBOM, a notation signature) between two loopback docker-registry
# instances, with `--referrers all` against `--referrers none`, each into a fresh store and
# a fresh destination, RUNS times; prints the medians and their ratio.
#
#   bench/referrers.sh            # RUNS=5; needs scripts/sig-tools.sh and a built booster
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
BOOSTER=${BOOSTER:-${CARGO_TARGET_DIR:-/var/tmp/booster-target}/debug/booster}
. "${BOOSTER_SIG_TOOLS:-/var/tmp/booster-sigtools}/tools.env"
W=$(mktemp -d); pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$W"' EXIT
start_registry() {  # NAME → sets REG_NAME=HOST:PORT
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$W/$1" "$port" > "$W/$1.yml"
  docker-registry serve "$W/$1.yml" > "$W/$1.log" 2>&1 & pids+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  printf -v "REG_$1" '127.0.0.1:%s' "$port"
}
start_registry src
# A two-layer image (8 MiB of text and binary-ish data, gzip -6), pushed by skopeo.
python3 - "$W/layout" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile
d = sys.argv[1]; os.makedirs(f"{d}/blobs/sha256")
def put(data):
    h = hashlib.sha256(data).hexdigest(); open(f"{d}/blobs/sha256/{h}", "wb").write(data); return "sha256:" + h, len(data)
rnd = random.Random(7); layers = []; diffs = []
for n in range(2):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        for i in range(40):
            data = (" ".join(rnd.choice(["alpha", "beta", "gamma", "delta"]) for _ in range(10000))).encode() + rnd.randbytes(50000)
            ti = tarfile.TarInfo(f"usr/share/l{n}/f{i}"); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    tar = b.getvalue(); diffs.append("sha256:" + hashlib.sha256(tar).hexdigest())
    dg, sz = put(gzip.compress(tar, 6, mtime=0)); layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg, "size": sz})
cd, cs = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diffs}}).encode())
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs}, "layers": layers}).encode()
md, ms = put(m)
open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, open(f"{d}/index.json", "w"))
PY
skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$W/layout:v1" "docker://$REG_src/bench/app:v1"
TOOLS=$BIN REG=$REG_src REPO=bench/app TAG=v1 WORK=$W/keys bash tests/fixtures/sign-image.sh > /dev/null 2>&1
one() {  # MODE RUN → seconds
  start_registry "dst$2$1"; local dst=REG_dst$2$1
  local t0 t1; t0=$(date +%s%N)
  "$BOOSTER" -q --store "$W/store-$1-$2" copy --referrers "$1" "docker://$REG_src/bench/app:v1" "docker://${!dst}/bench/app:v1"
  t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 ))   # milliseconds
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
none=$(for k in $(seq "$RUNS"); do one none "$k"; done | median)
all=$(for k in $(seq "$RUNS"); do one all "$k"; done | median)
echo "| copy of one signed image (8 MiB, 6 attached) | --referrers none | --referrers all | ratio |"
echo "|---|---|---|---|"
python3 -c "import sys; n, a = int(sys.argv[2]), int(sys.argv[3]); print(f'| median of {sys.argv[1]} runs | {n/1000:.2f} s | {a/1000:.2f} s | {a/n:.2f}× |')" "$RUNS" "$none" "$all"
