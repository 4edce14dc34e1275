#!/usr/bin/env bash
# booster's benchmark harness: every figure of one table measured in the same run.
#
#   bench/run.sh [--quick] [--skip-2g]
#
# Uses the real-image test bed of ../shared/bench (scenarios A: Debian point refresh, 1
# layer; B: python app update, 3 layers), built into /tmp/bench and served by a registry
# on 127.0.0.1:5000 (both are built/started here if missing), and the JVM images of
# bench/jvm-images.sh (J1: Tomcat 10.1.55 → 10.1.60 jars; J2: a Spring-Boot-style fat jar;
# J3: libguava-java bookworm → trixie, jar and symlink swapping names; each a JRE base layer
# and one changed layer; built into /tmp/bench/jvm and pushed there). For each scenario:
#   - `booster diff` (cold store) wall time vs `gzip -dc` of the same blobs (the read floor)
#   - `booster apply` (fresh store, base pulled from a mirror registry) vs the original
#     encoder recompressing the changed layers' tars (the rebuild floor): pgzip, 256 KiB
#     blocks, as umoci wrote A and B; Go compress/gzip, as Docker writes layers, for J1–J3
#   - patch size vs the pull-update size, `zstd -19 --long --patch-from` and `xdelta3 -9`
#   - peak RSS of each booster command
# and a 2 GiB layer (pgzip, 1 MiB blocks as containers/image writes) pulled, diffed and
# pushed to check memory stays bounded. Writes bench/RESULTS.md. The short measurements
# (floors, applies, diff --level 9) are the median of BENCH_RUNS (default 3) fresh runs.
#
# --quick: tiny synthetic images instead of the test bed (what CI runs to keep this
# script working); no RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
QUICK=0
SKIP_2G=0
for a in "$@"; do
  case $a in
    --quick) QUICK=1 ;;
    --skip-2g) SKIP_2G=1 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/booster-target}"
PROFILE=release
[ "$QUICK" = 1 ] && PROFILE=debug
# A full run writes about 9 GB at its peak (the 2 GiB layer, its gzip, two layouts and a
# store; the JVM images and their stores about 1 GB); failing halfway on a full disk wastes
# the minutes before.
if [ "$QUICK" = 0 ]; then
  need_gb=11; hint="free some space, or pass --skip-2g (about 4 GB)"
  [ "$SKIP_2G" = 1 ] && { need_gb=4; hint="free some space"; }
  free_gb=$(( $(df -Pk /tmp | awk 'NR==2 {print $4}') / 1024 / 1024 ))
  if [ "$free_gb" -lt "$need_gb" ]; then
    echo "bench/run.sh needs about $need_gb GB free under /tmp and $free_gb GB are: $hint" >&2
    exit 1
  fi
fi
if [ -z "${BOOSTER:-}" ]; then
  if [ "$PROFILE" = release ]; then cargo build --release --quiet --bin booster; else cargo build --quiet --bin booster; fi
  BOOSTER=$CARGO_TARGET_DIR/$PROFILE/booster
fi
W=$(mktemp -d /tmp/booster-bench.XXXXXX)
W_PIDS=$W/pids
: > "$W_PIDS"
cleanup() { while read -r p; do kill "$p" 2>/dev/null || true; done < "$W_PIDS"; rm -rf "$W"; }
trap cleanup EXIT

# pgzip reference encoder (klauspost/pgzip 1.2.5 from Debian): the rebuild floor.
PGZIP=$W/pgzip-ref
(cd crates/recompress/tests/go/pgzip-ref && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$PGZIP" .)
# Go compress/gzip as moby writes layers (stdlib only): the rebuild floor of the JVM images.
GOGZIP=$W/gogzip
[ "$QUICK" = 1 ] || (cd "$SHARED_BENCH/encoders/gogzip" && GO111MODULE=off go build -o "$GOGZIP" .)

timed() {  # OUT_PREFIX CMD... → sets $OUT_PREFIX.time (seconds) and .rss (KB); output to $OUT_PREFIX.out/.err
  local p=$1; shift
  /usr/bin/time -f "%e %M" -o "$p.tm" "$@" > "$p.out" 2> "$p.err" || { cat "$p.err" >&2; return 1; }
  read -r secs rss < "$p.tm"; echo "$secs" > "$p.time"; echo "$rss" > "$p.rss"
}

# Short measurements (the floors and the applies) are repeated: each run is complete and
# fresh (its own registry and store), and the run with the median time gives the figures,
# so one noisy second on a shared machine does not decide a ratio. The quick mode runs once.
RUNS=${BENCH_RUNS:-3}
[ "$QUICK" = 1 ] && RUNS=1
case $RUNS in ''|*[!0-9]*|0) echo "BENCH_RUNS must be a positive number (an odd one gives a true median)" >&2; exit 2 ;; esac
median_run() {  # PREFIX FN → runs FN PREFIX-rK for each K, copies the median run's files to PREFIX.*
  local p=$1 fn=$2 k mid
  for k in $(seq "$RUNS"); do "$fn" "$p-r$k"; done
  mid=$(for k in $(seq "$RUNS"); do echo "$(cat "$p-r$k.time") $k"; done | sort -n | awk -v n="$RUNS" 'NR == int((n + 1) / 2) { print $2 }')
  for f in time rss out err; do cp "$p-r$mid.$f" "$p.$f"; done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() {  # → HOST:PORT
  local port; port=$(free_port); local d=$W/reg-$port; mkdir -p "$d"
  printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$d/data" "$port" > "$d/config.yml"
  docker-registry serve "$d/config.yml" > "$d/log" 2>&1 &
  # Called in $( ): record the pid in a file, the parent's array would not see it.
  echo $! >> "$W_PIDS"
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && { echo "127.0.0.1:$port"; return; }; sleep 0.1; done
  echo "registry did not start" >&2; exit 1
}
stop_registry() {  # HOST:PORT from start_registry: stop it and drop its data
  local d=$W/reg-${1##*:}
  pkill -f "$d/config.yml" 2>/dev/null || true
  rm -rf "$d"
}
copy() { skopeo copy -q --insecure-policy --src-tls-verify=false --dest-tls-verify=false "$@"; }
digest() { skopeo inspect --tls-verify=false --raw "docker://$1" | sha256sum | cut -d' ' -f1; }

# --- the test bed ------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
  SRC=$(start_registry)
  python3 - "$W/q" <<'EOF'
import io, os, random, sys, tarfile
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
r = random.Random(7)
def tar(files):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.GNU_FORMAT) as t:
        for n, data in files:
            ti = tarfile.TarInfo(n); ti.size = len(data); ti.mtime = 0; t.addfile(ti, io.BytesIO(data))
    return b.getvalue()
files = [(f"usr/share/f{i}", bytes(r.choice(b"abcdefgh \n") for _ in range(20000))) for i in range(60)]
files.append(("usr/lib/big", r.randbytes(1_500_000)))
open(f"{d}/old.tar", "wb").write(tar(files))
files[5] = (files[5][0], files[5][1] + b"changed")
big = bytearray(files[-1][1]); big[700_000:700_100] = r.randbytes(100); files[-1] = ("usr/lib/big", bytes(big))
open(f"{d}/new.tar", "wb").write(tar(files))
EOF
  umoci init --layout "$W/l" >/dev/null; umoci new --image "$W/l:e" >/dev/null
  for v in old new; do
    umoci unpack --image "$W/l:e" "$W/u-$v" >/dev/null; tar -xf "$W/q/$v.tar" -C "$W/u-$v/rootfs"
    umoci repack --image "$W/l:$v" "$W/u-$v" >/dev/null
    copy "oci:$W/l:$v" "docker://$SRC/bench/quick:$v"
  done
  SCENARIOS="Q:quick"
else
  if ! curl -fs http://127.0.0.1:5000/v2/ >/dev/null; then bash "$SHARED_BENCH/registry.sh" start; fi
  if ! curl -fs http://127.0.0.1:5000/v2/bench/app/tags/list | grep -q new; then
    # The archives this machine's own apt uses; no host is written here.
    MIRROR=${MIRROR:-$("$ROOT"/scripts/debian-archive.sh)}
    SECURITY_MIRROR=${SECURITY_MIRROR:-$("$ROOT"/scripts/debian-archive.sh security)}
    export MIRROR SECURITY_MIRROR
    bash "$SHARED_BENCH/01-rootfs.sh"; bash "$SHARED_BENCH/02-images.sh"; bash "$SHARED_BENCH/03-stats.sh"
  fi
  SRC=127.0.0.1:5000
  # The JVM images: built once (cached in /tmp/bench/jvm), pushed again (a no-op when there).
  bash "$ROOT/bench/jvm-images.sh" "$SRC" >&2
  SCENARIOS="A:debian B:app J1:jvm-tomcat J2:jvm-fatjar J3:jvm-trixie"
fi

ROWS=$W/rows.tsv
: > "$ROWS"
for sc in $SCENARIOS; do
  name=${sc%%:*}; repo=${sc#*:}
  echo "== scenario $name ($repo)" >&2
  echo "$SRC/bench/$repo:old" > "$W/$name-old.txt"
  echo "$SRC/bench/$repo:new" > "$W/$name-new.txt"
  # Blobs of both images, for the read floor and the peers.
  B=$W/blobs-$name; mkdir -p "$B"
  copy "docker://$SRC/bench/$repo:old" "dir:$B/old"
  copy "docker://$SRC/bench/$repo:new" "dir:$B/new"
  python3 - "$B" > "$B/list" <<'EOF'
import json, sys, os
b = sys.argv[1]; seen = {}
for v in ("old", "new"):
    m = json.load(open(f"{b}/{v}/manifest.json"))
    for i, l in enumerate(m["layers"]):
        seen.setdefault(l["digest"][7:], (v, i))
old = {l["digest"] for l in json.load(open(f"{b}/old/manifest.json"))["layers"]}
for d, (v, i) in seen.items():
    changed = int(v == "new")
    print(f"{v}/{d} {changed} {i}")
EOF
  # Read floor: gzip -dc of every distinct blob.
  run_gunzip() { timed "$1" bash -c "while read -r f c i; do gzip -dc \"$B/\$f\" > /dev/null; done < \"$B/list\""; }
  median_run "$W/$name-gunzip" run_gunzip
  comp=$(while read -r f c i; do stat -c %s "$B/$f"; done < "$B/list" | paste -sd+ | bc)
  # Changed layers: their tars (old version at the same index) for the peers and the rebuild floor.
  : > "$B/pairs"; : > "$B/bases"
  while read -r f c i; do
    [ "$c" = 1 ] || continue
    oldf=$(python3 -c "import json,sys; m=json.load(open('$B/old/manifest.json')); print(m['layers'][$i]['digest'][7:])")
    gzip -dc "$B/$f" > "$B/new-$i.tar"; gzip -dc "$B/old/$oldf" > "$B/old-$i.tar"
    echo "$i" >> "$B/pairs"; echo "old/$oldf" >> "$B/bases"
  done < "$B/list"
  # booster diff, cold store.
  timed "$W/$name-diff" "$BOOSTER" --store "$W/$name-sender" --json diff "$W/$name-old.txt" "$W/$name-new.txt" -o "$W/$name.patch"
  # The same at --level 9 (cold store too): the speed end of the size/time trade-off.
  run_diff9() {
    timed "$1" "$BOOSTER" --store "$1-store" --json diff --level 9 "$W/$name-old.txt" "$W/$name-new.txt" -o "$1.patch"
    rm -rf "$1-store"
  }
  median_run "$W/$name-diff9" run_diff9
  # booster apply: a mirror holding the old image, a fresh store.
  run_apply() {
    local mir; mir=$(start_registry)
    copy "docker://$SRC/bench/$repo:old" "docker://$mir/bench/$repo:old"
    timed "$1" "$BOOSTER" --store "$1-store" --json apply "$W/$name-old.txt" "$W/$name-new.txt" "$W/$name.patch" "$mir"
    [ "$(digest "$mir/bench/$repo:new")" = "$(digest "$SRC/bench/$repo:new")" ] || { echo "scenario $name: digest mismatch after apply" >&2; exit 1; }
    rm -rf "$1-store"; stop_registry "$mir"
  }
  median_run "$W/$name-apply" run_apply
  # Again where the store already holds the base (a replica's steady state): import,
  # rebuild and push only.
  run_apply_warm() {
    local mir; mir=$(start_registry)
    copy "docker://$SRC/bench/$repo:old" "docker://$mir/bench/$repo:old"
    "$BOOSTER" -q --store "$1-store" pull "$mir/bench/$repo:old"
    timed "$1" "$BOOSTER" --store "$1-store" --json apply "$W/$name-old.txt" "$W/$name-new.txt" "$W/$name.patch" "$mir"
    [ "$(digest "$mir/bench/$repo:new")" = "$(digest "$SRC/bench/$repo:new")" ] || { echo "scenario $name: digest mismatch after warm apply" >&2; exit 1; }
    rm -rf "$1-store"; stop_registry "$mir"
  }
  median_run "$W/$name-applywarm" run_apply_warm
  # Rebuild floor: the original encoder on the changed layers' tars.
  case $name in
    J*) enc="\"$GOGZIP\"" ;;
    *) enc="\"$PGZIP\" -block 262144" ;;
  esac
  encode_new="for i in \$(cat $B/pairs); do $enc < \"$B/new-\$i.tar\" > /dev/null; done"
  run_encoder() { timed "$1" bash -c "$encode_new"; }
  median_run "$W/$name-encoder" run_encoder
  # What a cold apply cannot avoid on top: reading the bases it takes bytes from (the old
  # versions of the changed layers), then the encoder.
  run_cold_floor() { timed "$1" bash -c "for f in \$(cat $B/bases); do gzip -dc \"$B/\$f\" > /dev/null; done; $encode_new"; }
  median_run "$W/$name-coldfloor" run_cold_floor
  # Peers on the changed layers' tars.
  timed "$W/$name-zstd" bash -c "for i in \$(cat $B/pairs); do zstd -q -f -19 --long=31 --patch-from=\"$B/old-\$i.tar\" \"$B/new-\$i.tar\" -o \"$B/z-\$i\"; done"
  timed "$W/$name-xdelta" bash -c "for i in \$(cat $B/pairs); do xdelta3 -q -f -9 -B 1073741824 -e -s \"$B/old-\$i.tar\" \"$B/new-\$i.tar\" \"$B/x-\$i\"; done"
  zsize=$(cat "$B"/z-* | wc -c); xsize=$(cat "$B"/x-* | wc -c)
  python3 - "$W" "$name" "$comp" "$zsize" "$xsize" >> "$ROWS" <<'EOF'
import json, sys
w, name, comp, zsize, xsize = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rd = lambda k, f: open(f"{w}/{name}-{k}.{f}").read().strip()
d = json.load(open(f"{w}/{name}-diff.out"))
print("\t".join(map(str, [name, comp, d["new"]["uncompressed_bytes"] + d["old"]["uncompressed_bytes"],
    rd("gunzip", "time"), rd("diff", "time"), rd("diff", "rss"), rd("apply", "time"), rd("apply", "rss"),
    rd("encoder", "time"), d["pull_update_bytes"], d["patch_bytes"], zsize, rd("zstd", "time"), xsize,
    rd("xdelta", "time"), d["bundle"]["carried_whole_bytes"], rd("applywarm", "time"), rd("applywarm", "rss"),
    rd("diff9", "time"), rd("diff9", "rss"), json.load(open(f"{w}/{name}-diff9.out"))["patch_bytes"],
    rd("coldfloor", "time")])))
EOF
done

# --- store ingest vs reading and hashing the same tar ---------------------------------------
INGEST=""
if [ "$QUICK" = 0 ]; then
  T=/tmp/bench/tars/app-new-L2.tar
  [ -f "$T" ] || T=$(ls -S /tmp/bench/tars/*.tar | head -1)
  cat "$T" > /dev/null   # warm the page cache for both runs
  timed "$W/hash" sha256sum "$T"
  timed "$W/ingest" "$BOOSTER" --store "$W/ingest-store" ingest "$T"
  INGEST="$(stat -c %s "$T") $(cat "$W/hash.time") $(cat "$W/ingest.time") $(cat "$W/ingest.rss")"
fi

# --- 2 GiB layer: bounded memory ------------------------------------------------------------
BIG=""
if [ "$QUICK" = 0 ] && [ "$SKIP_2G" = 0 ]; then
  echo "== 2 GiB layer" >&2
  python3 - "$W/big.tar" <<'EOF'
import os, random, sys, tarfile
r = random.Random(2)
words = [bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9))) for _ in range(5000)]
class Gen:
    def __init__(self, n, seed): self.left = n; self.r = random.Random(seed)
    def read(self, k):
        k = min(k, self.left)
        if k <= 0: return b""
        out = bytearray()
        while len(out) < k:
            if self.r.random() < 0.3: out += self.r.randbytes(4096)
            else: out += b" ".join(self.r.choice(words) for _ in range(700))
        self.left -= k
        return bytes(out[:k])
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    for i in range(8):
        ti = tarfile.TarInfo(f"data/part{i}.bin"); ti.size = 256 << 20; ti.mtime = 0
        t.addfile(ti, Gen(ti.size, i))
EOF
  "$PGZIP" -block 1048576 < "$W/big.tar" > "$W/big.tar.gz"
  python3 - "$W/biglayout" "$W/big.tar.gz" "$W/big.tar" <<'EOF'
import hashlib, json, os, sys
d, gz, tar = sys.argv[1:]
def put(path=None, data=None):
    h = hashlib.sha256()
    if data is None:
        with open(path, "rb") as f:
            for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
    else: h.update(data)
    dig = h.hexdigest(); os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
    dest = f"{d}/blobs/sha256/{dig}"
    if data is None: os.link(path, dest)
    else: open(dest, "wb").write(data)
    return "sha256:" + dig
h = hashlib.sha256()
with open(tar, "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + h.hexdigest()]}}).encode()
layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": os.path.getsize(gz)}
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(data=cfg), "size": len(cfg)}, "layers": [layer]}).encode()
md = put(data=m)
open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(m),
    "annotations": {"org.opencontainers.image.ref.name": "big"}}]}, open(f"{d}/index.json", "w"))
EOF
  rm -f "$W/big.tar"
  timed "$W/big-pull" "$BOOSTER" --store "$W/big-store" pull "oci:$W/biglayout:big"
  timed "$W/big-push" "$BOOSTER" --store "$W/big-store" push "oci:$W/biglayout:big" --to "oci:$W/bigout:big"
  cmp <(python3 -c "import json;print(json.load(open('$W/biglayout/index.json'))['manifests'][0]['digest'])") \
      <(python3 -c "import json;print(json.load(open('$W/bigout/index.json'))['manifests'][0]['digest'])")
  BIG="$(cat "$W/big-pull.time") $(cat "$W/big-pull.rss") $(cat "$W/big-push.time") $(cat "$W/big-push.rss") $(stat -c %s "$W/big.tar.gz")"
fi

# --- the table ----------------------------------------------------------------------------
TABLE=$(python3 - "$ROWS" "$BIG" "$INGEST" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
mb = lambda n: f"{int(n)/1e6:.2f} MB"
pct = lambda a, b: f"{100*int(a)/int(b):.2f} %"
out = []
out.append("| scenario | blobs (gz) | `gzip -dc` | `booster diff` (cold) | diff vs read floor | diff peak RSS | original encoder (changed layers) | `booster apply` (cold: pulls the base) | apply vs encoder | apply peak RSS | `booster apply` (base in store) | vs encoder | peak RSS |")
out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    name, comp, plain, gz, dt, drss, at, arss, enc = r[:9]
    wt, wrss = r[16], r[17]
    out.append(f"| {name} | {mb(comp)} | {gz} s | {dt} s | {float(gz)/float(dt):.2f}× | {int(drss)//1024} MiB | {enc} s | {at} s | {float(enc)/float(at):.2f}× | {int(arss)//1024} MiB | {wt} s | {float(enc)/float(wt):.2f}× | {int(wrss)//1024} MiB |")
out.append("")
out.append("| scenario | pull update | booster patch | zstd -19 --long --patch-from | xdelta3 -9 | carried whole in patch |")
out.append("|---|---|---|---|---|---|")
for r in rows:
    name = r[0]; upd, patch, z, zt, x, xt, whole = r[9], r[10], r[11], r[12], r[13], r[14], r[15]
    out.append(f"| {name} | {mb(upd)} | {mb(patch)} ({pct(patch, upd)}) | {mb(z)} ({pct(z, upd)}), {zt} s | {mb(x)} ({pct(x, upd)}), {xt} s | {mb(whole)} |")
out.append("")
out.append("| scenario | read + rebuild floor: `gzip -dc` of the bases, then the encoder | `booster apply` (cold) | vs that floor |")
out.append("|---|---|---|---|")
for r in rows:
    name, at, cf = r[0], r[6], r[21]
    out.append(f"| {name} | {cf} s | {at} s | {float(cf)/float(at):.2f}× |")
out.append("")
out.append("| scenario | `booster diff --level 9` (cold) | vs read floor | peak RSS | patch |")
out.append("|---|---|---|---|---|")
for r in rows:
    name, gz, upd = r[0], r[3], r[9]
    t9, rss9, p9 = r[18], r[19], r[20]
    out.append(f"| {name} | {t9} s | {float(gz)/float(t9):.2f}× | {int(rss9)//1024} MiB | {mb(p9)} ({pct(p9, upd)}) |")
if sys.argv[2].strip():
    pt, prss, ut, urss, size = sys.argv[2].split()
    out.append("")
    out.append(f"2 GiB layer (pgzip 1 MiB blocks, {mb(size)} compressed): `booster pull` {pt} s, peak RSS {int(prss)//1024} MiB; `booster push` (rebuild + verify) {ut} s, peak RSS {int(urss)//1024} MiB.")
if len(sys.argv) > 3 and sys.argv[3].strip():
    size, ht, it, irss = sys.argv[3].split()
    size = int(size)
    out.append("")
    out.append(f"Store ingest of a {mb(size)} tar (cold store, FastCDC + BLAKE3 + zstd-1 into RocksDB/BlobDB): {size/1e6/float(it):.0f} MB/s, peak RSS {int(irss)//1024} MiB; `sha256sum` of the same file: {size/1e6/float(ht):.0f} MB/s (ingest computes that sha256 too).")
print("\n".join(out))
EOF
)
echo "$TABLE"
if [ "$QUICK" = 0 ]; then
  # The store's stages in-process (cargo bench target), against sha256 of the same bytes.
  STORE_BENCH=$(cargo bench --quiet --bench store 2>/dev/null)
  {
    echo "# Benchmark results"
    echo
    echo "Measured $(date -u +%F) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/{print $2}') GiB RAM,"
    echo "by \`bench/run.sh\` (every figure in one run; booster $("$BOOSTER" --version | cut -d' ' -f2), release build)."
    echo
    echo "Ratios: diff vs read floor = \`gzip -dc\` time / diff time; apply vs encoder = the original encoder's time (pgzip for A and B, Go compress/gzip for J1–J3) / apply time (1.0 = as fast as the floor). The floors, the applies and \`diff --level 9\` are the median of $RUNS fresh runs each; the level-19 diff and the peers ran once. A cold apply also pulls and ingests the base from the registry; \"base in store\" is a receiver that already holds it (a replica's steady state)."
    echo "Scenario A: Debian bookworm minbase refresh (1 layer). B: python app update (3 layers, one changed). Images built by ../shared/bench."
    echo "J1–J3: JVM images built by \`bench/jvm-images.sh\` (2 layers: a JRE base, unchanged, and one changed layer; Go compress/gzip as Docker writes them). J1: libtomcat10-java 10.1.55 → 10.1.60. J2: /app/app.jar, a Spring-Boot-style fat jar (stored BOOT-INF/lib jars; tomcat10-coyote 10.1.55 → 10.1.60 and two app classes changed). J3: libguava-java bookworm 31.1 → trixie 32.0.1 (the jar and its symlink swap names)."
    echo
    echo "$TABLE"
    echo
    echo "JVM scenarios, the changed layer's tars (\`bench/jvm-images.sh\`, /tmp/bench/jvm/baselines.txt; bytes, % of pull update): \"unpacked\" is \`zstd -19 --long=27 --patch-from\` between both tars with every jar a directory of its members, recursively, the reference for a delta that opens jars."
    echo
    grep '^|' "${JVM_WORK:-/tmp/bench/jvm}/baselines.txt"
    echo
    echo "\`cargo bench --bench store\` (same run):"
    echo
    echo "$STORE_BENCH"
  } > bench/RESULTS.md
  # Measured by other scripts (bench/fleet-load.sh), kept across runs of this one.
  if [ -f bench/RESULTS-fleet.md ]; then
    { echo; grep -v '^<!--' bench/RESULTS-fleet.md; } >> bench/RESULTS.md
  fi
  echo "wrote bench/RESULTS.md" >&2
fi
