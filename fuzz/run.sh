#!/usr/bin/env bash
# Run booster's fuzz targets (cargo-fuzz, libFuzzer).
#
#   fuzz/run.sh --ci                      the CI share: deterministic (below)
#   fuzz/run.sh [SECONDS] [TARGET...]     exploration: default 600 seconds for every target
#   fuzz/run.sh --make-seeds              rewrite fuzz/seeds/ from real files
#
# The CI share never explores at random: every target starts from the committed seeds
# (fuzz/seeds/TARGET) and the inputs earlier runs found (tests/fixtures/fuzz/TARGET-*), with
# a fixed libFuzzer seed and a fixed number of runs, so the same code gives the same verdict
# on every run and a submission cannot fail for code it never touched. Exploration keeps
# its corpus in fuzz/corpus/TARGET (not committed); what it finds becomes a regression
# input in tests/fixtures/fuzz and a test in tests/fuzz_regressions.rs.
#
# The stable toolchain runs cargo-fuzz with RUSTC_BOOTSTRAP=1. RocksDB is linked from the
# main build (ROCKSDB_LIB_DIR) instead of being compiled again with fuzzing flags; the
# fuzzed code never calls it. Prints, per target, the executions run and whether it crashed.
set -euo pipefail
cd "$(dirname "$0")"
MODE=explore
case "${1:-}" in
  --ci) MODE=ci; shift ;;
  --make-seeds) MODE=seeds; shift ;;
esac
SECS=600
if [ "$MODE" = explore ] && [ $# -gt 0 ]; then SECS=$1; shift; fi
ROOT=$(cd .. && pwd)
MAIN_TARGET=${CARGO_TARGET_DIR:-/var/tmp/booster-target}
ALL=(bundle bundle_sections inventory records method reference manifest gzip tar_walker delta_frame signature zip_archive)
# Runs per target in the CI share: a few seconds each on 2 cores.
declare -A CI_RUNS=(
  [bundle]=20000 [bundle_sections]=200000 [inventory]=200000 [records]=200000 [method]=20000
  [reference]=200000 [manifest]=200000 [gzip]=5000 [tar_walker]=200000 [delta_frame]=50000
  [signature]=100000 [zip_archive]=20000
)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

make_seeds() {
  local BOOSTER=$MAIN_TARGET/debug/booster
  [ -x "$BOOSTER" ] || (cd "$ROOT" && CARGO_TARGET_DIR=$MAIN_TARGET cargo build --quiet --bin booster)
  rm -rf seeds && mkdir -p seeds
  seed() { mkdir -p "seeds/$1"; cp "$2" "seeds/$1/$(basename "$2")"; }
  python3 - "$W" <<'PY'
import hashlib, io, json, os, sys, tarfile, gzip
w = sys.argv[1]
def put(d, data):
    h = hashlib.sha256(data).hexdigest(); os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
    open(f"{d}/blobs/sha256/{h}", "wb").write(data); return "sha256:" + h
for v, extra in (("v1", b""), ("v2", b"changed")):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.GNU_FORMAT) as t:
        for n, data in ((f"etc/f{i}", (b"line %d\n" % i) * 300 + extra) for i in range(20)):
            ti = tarfile.TarInfo(n); ti.size = len(data); ti.mtime = 0; t.addfile(ti, io.BytesIO(data))
        # Machine code, changed in v2: the patch gets a filtered (x86) payload group.
        elf = open("/usr/bin/ls", "rb").read() if os.path.exists("/usr/bin/ls") else b""
        data = elf[:len(elf) // 2] + extra + elf[len(elf) // 2:]
        ti = tarfile.TarInfo("usr/bin/tool"); ti.size = len(data); ti.mtime = 0; t.addfile(ti, io.BytesIO(data))
        data = gzip.compress(b"changelog\n" * 500 + extra, mtime=0)
        ti = tarfile.TarInfo("usr/share/doc/x/changelog.gz"); ti.size = len(data); ti.mtime = 0; t.addfile(ti, io.BytesIO(data))
    tar = b.getvalue(); open(f"{w}/{v}.tar", "wb").write(tar)
    layer = gzip.compress(tar, mtime=0)
    d = f"{w}/{v}"
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]}}).encode()
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(d, cfg), "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(d, layer), "size": len(layer)}]}).encode()
    md = put(d, m); open(f"{w}/{v}.manifest.json", "wb").write(m)
    open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
        "size": len(m), "annotations": {"org.opencontainers.image.ref.name": v}}]}, open(f"{d}/index.json", "w"))
open(f"{w}/refs.txt", "w").write("# images\nubuntu:22.04\ndocker://127.0.0.1:5000/bench/app:new\nquay.io/a/b@sha256:" + "ab" * 32 + "\noci:/tmp/x:v1\ndocker-archive:a.tar:app:1\n")
PY
  "$BOOSTER" --store "$W/s" export --since "oci:$W/v1:v1" "oci:$W/v2:v2" -o "$W/patch.bkp" --level 3 >/dev/null 2>&1
  "$BOOSTER" --store "$W/s" export "oci:$W/v1:v1" -o "$W/full.bkp" --level 3 >/dev/null 2>&1
  "$BOOSTER" --store "$W/s" inventory -o "$W/site.inv" >/dev/null 2>&1
  seed bundle "$W/patch.bkp"; seed bundle "$W/full.bkp"
  seed inventory "$W/site.inv"
  seed manifest "$W/v1.manifest.json"; seed manifest "$W/v1/index.json"
  seed manifest "$ROOT/tests/fixtures/formats/artifact-manifest-v1.json"
  seed manifest "$ROOT/tests/golden/cosign/bundle-sig-manifest.json"
  seed manifest "$ROOT/tests/golden/cosign/legacy-sig-manifest.json"
  # Signature checks: an attached manifest ‖ 0xff ‖ its layer (real cosign 3.1.1 output).
  mkdir -p seeds/signature
  for k in legacy-sig:legacy-sig-payload bundle-sig:bundle-sig-layer bundle-att:bundle-att-layer; do
    { cat "$ROOT/tests/golden/cosign/${k%%:*}-manifest.json"; printf '\xff'; cat "$ROOT/tests/golden/cosign/${k#*:}.json"; } > "seeds/signature/${k%%:*}"
  done
  seed reference "$W/refs.txt"
  seed tar_walker "$W/v1.tar"
  gzip -c "$W/v1.tar" > "$W/gnu.tar.gz"; seed gzip "$W/gnu.tar.gz"
  # Archives: a jar by OpenJDK's jar tool (nested STORED jar) and its expansion; zips by
  # Python's zipfile with zip64 records and with data descriptors (written to a pipe).
  seed zip_archive "$ROOT/tests/fixtures/formats/jar-openjdk17.jar"
  seed zip_archive "$ROOT/tests/fixtures/formats/jar-openjdk17.expansion"
  python3 - "$W" <<'PY'
import io, sys, zipfile
w = sys.argv[1]
with zipfile.ZipFile(f"{w}/zip64.zip", "w", zipfile.ZIP_DEFLATED) as z:
    with z.open("a.txt", "w", force_zip64=True) as f: f.write(b"zip64 member " * 40)
    z.comment = b"comment"
class Pipe(io.RawIOBase):
    def __init__(self): self.buf = bytearray()
    def writable(self): return True
    def write(self, b): self.buf += b; return len(b)
p = Pipe()
with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("x/Y.class", b"\xca\xfe\xba\xbe" + b"streamed " * 50); z.writestr("empty", b"")
open(f"{w}/streamed.zip", "wb").write(bytes(p.buf))
PY
  seed zip_archive "$W/zip64.zip"; seed zip_archive "$W/streamed.zip"

  # Binary records booster writes: every rebuild method kind, blob records, a tar index.
  (cd "$ROOT" && CARGO_TARGET_DIR=$MAIN_TARGET cargo run --quiet --example fuzz_seeds -- fuzz/seeds)
  # These targets start from nothing but the regression inputs.
  mkdir -p seeds/bundle_sections seeds/delta_frame
  for t in bundle_sections delta_frame; do touch "seeds/$t/.keep"; done
  echo "fuzz: wrote $(find seeds -type f | wc -l) seeds ($(du -sh seeds | cut -f1))" >&2
}

if [ "$MODE" = seeds ]; then make_seeds; exit 0; fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
LIB=$(ls -t "$MAIN_TARGET"/*/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1 || true)
if [ -z "$LIB" ]; then
  (cd "$ROOT" && CARGO_TARGET_DIR=$MAIN_TARGET cargo build --quiet)
  LIB=$(ls -t "$MAIN_TARGET"/*/build/librocksdb-sys-*/out/librocksdb.a | head -1)
fi
mkdir -p /var/tmp/booster-fuzz/rocksdb
cp -u "$LIB" /var/tmp/booster-fuzz/rocksdb/
export ROCKSDB_LIB_DIR=/var/tmp/booster-fuzz/rocksdb ROCKSDB_STATIC=1
# The method target runs preflate rebuilds as the CLI does, in `booster preflate-worker`
# child processes that are killed at their deadline (see fuzz_targets/method.rs).
BOOSTER=$MAIN_TARGET/debug/booster
[ -x "$BOOSTER" ] || (cd "$ROOT" && CARGO_TARGET_DIR=$MAIN_TARGET cargo build --quiet --bin booster)
export BOOSTER_PREFLATE_WORKER=$BOOSTER
export CARGO_TARGET_DIR=/var/tmp/booster-fuzz/target

TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
flock /tmp/rust-build.lock cargo fuzz build -O "${TARGETS[@]:0:0}" >/dev/null 2>&1 || flock /tmp/rust-build.lock cargo fuzz build -O
status=0
for t in "${TARGETS[@]}"; do
  log=$W/$t.log
  # Read-only inputs: the committed seeds and the regression inputs of this target.
  mkdir -p "$W/regress-$t" "$W/new-$t"
  cp "$ROOT"/tests/fixtures/fuzz/"$t"-* "$W/regress-$t/" 2>/dev/null || true
  # The gzip target also starts from the committed layers of real Go encoders.
  [ "$t" = gzip ] && cp "$ROOT"/tests/fixtures/layers/*.gz "$W/regress-$t/"
  if [ "$MODE" = ci ]; then
    # A fresh corpus directory first: libFuzzer writes what it finds there, never into seeds/.
    dirs=("$W/new-$t" "seeds/$t" "$W/regress-$t")
    opts=(-seed=1 -runs="${CI_RUNS[$t]}")
    what="${CI_RUNS[$t]} runs, seed 1"
  else
    mkdir -p "corpus/$t"
    dirs=("corpus/$t" "seeds/$t" "$W/regress-$t")
    opts=(-max_total_time="$SECS")
    what="${SECS}s"
  fi
  mkdir -p "seeds/$t"
  if cargo fuzz run -O "$t" "${dirs[@]}" -- "${opts[@]}" -max_len=1048576 -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 > "$log" 2>&1; then
    result=ok
  else
    result="CRASH (see fuzz/artifacts/$t)"; status=1
    tail -40 "$log" >&2
  fi
  execs=$(grep -m1 "stat::number_of_executed_units" "$log" | awk '{print $2}')
  echo "$t: ${execs:-?} executions ($what), $result"
done
exit $status
