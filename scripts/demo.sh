#!/usr/bin/env bash
# booster end to end, on this machine, in a few minutes:
#   1. installs what it needs (Debian packages) and builds booster;
#   2. starts three registries on loopback (docker-registry, temp dirs, free ports);
#   3. builds two versions of an image from real Debian packages (old and new package
#      versions from bookworm and its updates/security suites) with umoci, and pushes them
#      to the "upstream" registry with skopeo;
#   4. registry to registry: `booster diff` + `booster apply` into a mirror holding v1;
#   5. air gap: a site's inventory, `booster export --since site.inv` in USB-sized volumes,
#      `booster import --push` at the site;
#   6. checks that every manifest digest matches upstream, prints the savings, and stops
#      everything it started.
#
# Options: --local   build the images from files of this machine instead of downloading
#                    Debian packages (no network needed; what the CI test runs)
#          --keep    keep the work directory (printed at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SOURCE=debs
KEEP=0
for a in "$@"; do
  case $a in
    --local) SOURCE=local ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done

if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
  say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
else
  say() { printf '\n== %s\n' "$*" >&2; }
fi

# --- 1. what the demo needs -------------------------------------------------------------
need=(docker-registry skopeo umoci clang libclang-dev pkg-config libssl-dev zlib1g-dev libzstd-dev ca-certificates)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/booster-target}"
if [ -z "${BOOSTER:-}" ]; then
  say "building booster (the first build compiles RocksDB: about 15 minutes on 2 cores)"
  cargo build --quiet --bin booster
  BOOSTER="$CARGO_TARGET_DIR/debug/booster"
fi

WORK=$(mktemp -d /tmp/booster-demo.XXXXXX)
W_PIDS=$WORK/pids
: > "$W_PIDS"
cleanup() {
  while read -r p; do kill "$p" 2>/dev/null || true; done < "$W_PIDS"
  wait 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- 2. registries ----------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() {  # NAME → prints HOST:PORT
  local name=$1 port; port=$(free_port)
  mkdir -p "$WORK/$name"
  cat > "$WORK/$name/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/$name/data
http:
  addr: 127.0.0.1:$port
EOF
  docker-registry serve "$WORK/$name/config.yml" > "$WORK/$name/log" 2>&1 &
  # Called in $( ): record the pid in a file, the parent's array would not see it.
  echo $! >> "$W_PIDS"
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && { echo "127.0.0.1:$port"; return; }
    sleep 0.1
  done
  echo "registry $name did not start: $(cat "$WORK/$name/log")" >&2; exit 1
}
UPSTREAM=$(start_registry upstream)
MIRROR=$(start_registry mirror)
SITE=$(start_registry site)
say "registries: upstream $UPSTREAM, mirror $MIRROR, air-gapped site $SITE"

# --- 3. two versions of a real image ---------------------------------------------------
fill_rootfs() {  # VERSION ROOTFS
  local v=$1 rootfs=$2
  if [ "$SOURCE" = local ]; then
    # Files of this machine: v2 changes a few of them, removes one and adds one.
    mkdir -p "$rootfs/usr/share" "$rootfs/usr/lib" "$rootfs/etc"
    cp -a /usr/share/doc "$rootfs/usr/share/" 2>/dev/null || true
    cp -a /usr/share/zoneinfo "$rootfs/usr/share/" 2>/dev/null || true
    for f in /usr/lib/x86_64-linux-gnu/libcrypto.so.3 /usr/lib/x86_64-linux-gnu/libssl.so.3 /usr/bin/bash /usr/bin/tar; do
      [ -e "$f" ] && cp -L "$f" "$rootfs/usr/lib/" || true
    done
    echo "demo $v" > "$rootfs/etc/demo-release"
    if [ "$v" = 2 ]; then
      printf 'patched in v2\n' >> "$rootfs/usr/lib/bash"
      rm -rf "$rootfs/usr/share/doc/bash"
      date -u +%F > "$rootfs/etc/built-on"
    fi
    return
  fi
  # Real Debian packages: v1 from bookworm, v2 with the newer versions that
  # bookworm-updates and bookworm-security carry (a typical point refresh).
  local pkgs=(libssl3 openssl libcurl4 curl tzdata python3.11-minimal libpython3.11-minimal libc6 libc-bin)
  mkdir -p "$WORK/debs-$v"
  (
    cd "$WORK/debs-$v"
    for p in "${pkgs[@]}"; do
      versions=$(apt-cache madison "$p" | awk '{print $3}' | sort -V)
      if [ "$v" = 1 ]; then ver=$(echo "$versions" | head -1); else ver=$(echo "$versions" | tail -1); fi
      apt-get download -qq "$p=$ver" >/dev/null 2>&1 || apt-get download -qq "$p" >/dev/null
    done
  )
  for d in "$WORK/debs-$v"/*.deb; do dpkg-deb -x "$d" "$rootfs"; done
  ls "$WORK/debs-$v" > "$rootfs/etc/demo-packages"
}

say "building demo/app:1 and demo/app:2 with umoci (source: $SOURCE)"
L="$WORK/layout"
umoci init --layout "$L"
umoci new --image "$L:empty"
for v in 1 2; do
  umoci unpack --rootless --image "$L:empty" "$WORK/unpack-$v" >/dev/null 2>&1 || umoci unpack --image "$L:empty" "$WORK/unpack-$v" >/dev/null
  fill_rootfs "$v" "$WORK/unpack-$v/rootfs"
  umoci repack --image "$L:app-$v" "$WORK/unpack-$v" >/dev/null
  skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$L:app-$v" "docker://$UPSTREAM/demo/app:$v"
done
# The mirror and the site have v1.
for r in "$MIRROR" "$SITE"; do
  skopeo copy -q --insecure-policy --src-tls-verify=false --dest-tls-verify=false "docker://$UPSTREAM/demo/app:1" "docker://$r/demo/app:1"
done
echo "$UPSTREAM/demo/app:1" > "$WORK/old.txt"
echo "$UPSTREAM/demo/app:2" > "$WORK/new.txt"
digest() { skopeo inspect --tls-verify=false --raw "docker://$1" | sha256sum | cut -d' ' -f1; }
WANT=$(digest "$UPSTREAM/demo/app:2")

# --- 4. registry to registry -----------------------------------------------------------
say "booster diff old.txt new.txt"
"$BOOSTER" --store "$WORK/sender" diff "$WORK/old.txt" "$WORK/new.txt" -o "$WORK/old-to-new.patch"
say "booster apply old.txt new.txt old-to-new.patch $MIRROR"
"$BOOSTER" --store "$WORK/mirror-store" apply "$WORK/old.txt" "$WORK/new.txt" "$WORK/old-to-new.patch" "$MIRROR"
GOT=$(digest "$MIRROR/demo/app:2")
[ "$GOT" = "$WANT" ] || { echo "digest mismatch on the mirror: $GOT != $WANT" >&2; exit 1; }
echo "mirror has demo/app:2 with the upstream digest sha256:$WANT" >&2

# --- 5. air gap --------------------------------------------------------------------------
say "site: booster pull its images, booster inventory"
"$BOOSTER" --store "$WORK/site-store" pull "$SITE/demo/app:1"
"$BOOSTER" --store "$WORK/site-store" inventory -o "$WORK/site.inv"
say "sender: booster export --since site.inv (4 MiB volumes, as for small media)"
mkdir -p "$WORK/usb"
"$BOOSTER" --store "$WORK/sender" export --since "$WORK/site.inv" "$WORK/new.txt" -o "$WORK/usb/bundle.bkp" --split-size 4M
ls -l "$WORK/usb" >&2
say "site: booster import --push $SITE"
"$BOOSTER" --store "$WORK/site-store" verify "$WORK/usb/bundle.bkp.001"
"$BOOSTER" --store "$WORK/site-store" import "$WORK/usb/bundle.bkp.001" --push "$SITE"
GOT=$(digest "$SITE/demo/app:2")
[ "$GOT" = "$WANT" ] || { echo "digest mismatch at the site: $GOT != $WANT" >&2; exit 1; }

# --- 6. summary --------------------------------------------------------------------------
pull_update=$(skopeo inspect --tls-verify=false --raw "docker://$UPSTREAM/demo/app:2" | python3 -c '
import json, sys, subprocess
m = json.load(sys.stdin)
old = json.loads(subprocess.run(["skopeo","inspect","--tls-verify=false","--raw","docker://'"$UPSTREAM"'/demo/app:1"], capture_output=True).stdout)
have = {l["digest"] for l in old["layers"]} | {old["config"]["digest"]}
print(sum(l["size"] for l in m["layers"] if l["digest"] not in have) + (m["config"]["size"] if m["config"]["digest"] not in have else 0))')
patch=$(stat -c %s "$WORK/old-to-new.patch")
bundle=$(cat "$WORK"/usb/bundle.bkp.* | wc -c)
say "done: every digest matches upstream"
python3 - "$pull_update" "$patch" "$bundle" <<'EOF'
import sys
pull, patch, bundle = map(int, sys.argv[1:])
mb = lambda n: f"{n/1e6:.2f} MB"
print(f"pull update (docker pull / skopeo sync): {mb(pull)}")
print(f"booster patch:                            {mb(patch)}  ({100*patch/pull:.2f} % of the pull update)")
print(f"booster bundle for the air-gapped site:   {mb(bundle)}  ({100*bundle/pull:.2f} %)")
EOF
