#!/usr/bin/env bash
# The primary under a fleet (issues 22, 34): one `booster serve` primary beside a registry,
# and REPLICAS replicas (default 50) asking it at once for their bundle — POST /bundles with
# their inventory, then GET /bundles/KEY — in three states: an empty store, a store with
# v1, a store with v1 and v2 (the registry holds v1, v2, v3). Each replica has its own
# inventory, taken at its own time (as each replica of a fleet makes its own), so the
# primary must tell states apart by what they hold, not by the request's bytes. Loopback
# only. The replicas are bundle fetchers (curl): their own stores and registries are not
# needed to load the primary's side.
#
#   bench/fleet-load.sh          REPLICAS=N  MAX_BUILDS=N (the primary's --max-builds)
#
# Prints one Markdown table: the primary's bundle builds and cache hits, its registry walks
# for the offer, CPU seconds and peak RSS, bytes served, the slowest and the median fetch (a
# fetch: POST, wait for the bundle, download it); then checks that every replica of a state
# got the same, whole bundle (size as announced, sha256 equal, `booster verify` passes).
#
# Then the registry as the distribution engine: the primary ran with `--publish`, so each
# bundle it built is also an OCI artifact in the registry. The primary is stopped, and the
# same REPLICAS fetch again with stock clients only — the tag for their state computed as
# store-format.md 6.6 says, the manifest and volume blobs with curl — and must get the
# same bytes. Exit status 1 if any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/booster-target}"
cargo build --release --quiet --bin booster
B=$CARGO_TARGET_DIR/release/booster
REPLICAS=${REPLICAS:-50}
MAX_BUILDS=${MAX_BUILDS:-2}
W=$(mktemp -d /tmp/booster-fleet.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done; wait 2> /dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A registry on loopback.
RPORT=$(free_port)
cat > "$W/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $W/registry}}
http: {addr: 127.0.0.1:$RPORT}
EOF
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 &
PIDS+=($!)
REG=127.0.0.1:$RPORT
for _ in $(seq 100); do curl -fs "http://$REG/v2/" > /dev/null && break; sleep 0.1; done

# Three versions of a one-layer image from this machine's files: v2 and v3 each change a
# few files, as an update does.
mkdir -p "$W/root/etc"
cp -a /usr/share/doc "$W/root/" 2> /dev/null || true
cp -L /usr/bin/bash /usr/bin/tar "$W/root/etc/" 2> /dev/null || true
for v in 1 2 3; do
  echo "fleet $v" > "$W/root/etc/release"
  [ "$v" -ge 2 ] && printf 'changed in v%s\n' "$v" >> "$W/root/etc/bash"
  [ "$v" -ge 3 ] && date -u +%F > "$W/root/etc/built-on"
  tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$W/root" -cf "$W/v$v.tar" .
  gzip -6 -n -c "$W/v$v.tar" > "$W/v$v.tar.gz"
  python3 bench/one-layer-layout.py "$W/layout-$v" "$W/v$v.tar.gz" gzip "$W/v$v.tar"
  skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$W/layout-$v:t" "docker://$REG/fleet/app:$v"
done
LAYER_MB=$(awk "BEGIN{printf \"%.1f\", $(stat -c %s "$W/v3.tar.gz")/1e6}")

# The replicas' states, and each replica's own inventory of its state, one after the other
# (their timestamps differ: a second or more from the first to the last).
"$B" -q --store "$W/s1" pull "docker://$REG/fleet/app:1" > /dev/null
"$B" -q --store "$W/s2" pull "docker://$REG/fleet/app:1" "docker://$REG/fleet/app:2" > /dev/null
for i in $(seq "$REPLICAS"); do
  "$B" -q --store "$W/s$((i % 3))" inventory -o "$W/r$i.inv"
  [ $((i % 10)) = 0 ] && sleep 0.3
done
BODIES=$(sha256sum "$W"/r*.inv | cut -c1-64 | sort -u | wc -l)

# The primary, cold: nothing pulled, no bundle built.
TOKEN=$(openssl rand -hex 32)
echo "$TOKEN" > "$W/token"
PPORT=$(free_port)
"$B" --store "$W/primary" serve --registry "$REG" --listen "127.0.0.1:$PPORT" \
  --token-file "$W/token" --max-builds "$MAX_BUILDS" --publish "docker://$REG/fleet/bundles" \
  > "$W/primary.log" 2>&1 &
PRIMARY=$!
PIDS+=($PRIMARY)
P=http://127.0.0.1:$PPORT
for _ in $(seq 100); do curl -fs "$P/healthz" > /dev/null && break; sleep 0.1; done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PRIMARY/stat"; }
T0=$(cpu_ticks)

replica() {  # I: POST the state's inventory, GET the bundle; writes $W/r$I.{key,size,got,secs}
  local i=$1 state=$(($1 % 3)) start end
  start=$(date +%s.%N)
  curl -fsS -H "Authorization: Bearer $TOKEN" --data-binary "@$W/r$i.inv" \
    "$P/bundles" > "$W/r$i.json"
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["key"], j["size"])' \
    "$W/r$i.json" > "$W/r$i.key"
  read -r key size < "$W/r$i.key"
  curl -fsS -H "Authorization: Bearer $TOKEN" "$P/bundles/$key" -o "$W/r$i.bkp"
  end=$(date +%s.%N)
  echo "$state $key $size $(stat -c %s "$W/r$i.bkp") $(sha256sum < "$W/r$i.bkp" | cut -c1-64)" > "$W/r$i.got"
  awk -v a="$start" -v b="$end" 'BEGIN{printf "%.2f\n", b - a}' > "$W/r$i.secs"
}
for i in $(seq "$REPLICAS"); do replica "$i" & done
wait_ok=0
for job in $(jobs -p); do [ "$job" = "$PRIMARY" ] && continue; [ "$job" = "${PIDS[0]}" ] && continue; wait "$job" || wait_ok=1; done
CPU=$(awk -v a="$T0" -v b="$(cpu_ticks)" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", (b - a) / hz}')
RSS=$(awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$PRIMARY/status")
METRICS=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$P/metrics")
metric() { awk -v n="$1" '$1 == n {print $2}' <<< "$METRICS"; }

# Checks: every replica answered; in each state one key and one sha256; every file as long
# as announced; each distinct bundle passes `booster verify`.
fail=$wait_ok
[ "$(ls "$W"/r*.got 2> /dev/null | wc -l)" = "$REPLICAS" ] || { echo "only $(ls "$W"/r*.got | wc -l) of $REPLICAS replicas got a bundle" >&2; fail=1; }
cat "$W"/r*.got | awk '$3 != $4 {print "partial bundle: " $0; bad=1} END{exit bad}' >&2 || fail=1
for s in 0 1 2; do
  n=$(awk -v s="$s" '$1 == s {print $2, $5}' "$W"/r*.got | sort -u | wc -l)
  [ "$n" = 1 ] || { echo "state $s: $n different bundles" >&2; fail=1; }
  f=$(grep -l "^$s " "$W"/r*.got | sed -n 1p)
  "$B" -q --store "$W/verify" verify "${f%.got}.bkp" > /dev/null || { echo "state $s: bundle does not verify" >&2; fail=1; }
done
sizes=$(for s in 0 1 2; do cat "$W"/r*.got | awk -v s="$s" '$1 == s && !done {printf "%.2f MB\n", $4/1e6; done = 1}'; done | paste -sd/ | sed 's|/| / |g')
SLOWEST=$(sort -n "$W"/r*.secs | tail -1)
MEDIAN=$(sort -n "$W"/r*.secs | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}')

# Publishing runs after each build's answer: let the last one finish.
for _ in $(seq 600); do
  [ "$(metric booster_bundles_published_total)" = "$(metric booster_bundles_built_total)" ] && break
  sleep 0.5
  METRICS=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$P/metrics")
done
PUBLISHED=$(metric booster_bundles_published_total)
REFRESHES=$(metric booster_offer_refreshes_total)
kill "$PRIMARY"; wait "$PRIMARY" 2> /dev/null || true

# The registry alone. A state's base id: the sha256 of its images' manifest digests
# (sorted, one per line), 16 hex digits; `full` for none. The target id is read from the
# release pointer `current`.
digest_of() { skopeo inspect --raw --tls-verify=false "docker://$REG/fleet/app:$1" | sha256sum | cut -c1-64; }
D1=$(digest_of 1); D2=$(digest_of 2)
base_id() { if [ $# = 0 ]; then echo full; else printf 'b%s' "$(printf 'sha256:%s\n' "$@" | sort | sha256sum | cut -c1-16)"; echo; fi; }
BASE0=$(base_id); BASE1=$(base_id "$D1"); BASE2=$(base_id "$D1" "$D2")
ACCEPT=application/vnd.oci.image.manifest.v1+json
TARGETS=$(curl -fsS -H "Accept: $ACCEPT" "http://$REG/v2/fleet/bundles/manifests/current" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["annotations"]["io.booster.bundle.targets"])')
from_registry() {  # I: the tag for its state, the manifest, every volume; writes $W/g$I.{got,secs}
  local i=$1 state=$(($1 % 3)) start end base tag
  base=$(eval echo "\$BASE$state"); tag="$TARGETS-$base"
  start=$(date +%s.%N)
  mkdir -p "$W/g$i"
  curl -fsS -H "Accept: $ACCEPT" "http://$REG/v2/fleet/bundles/manifests/$tag" > "$W/g$i/manifest.json"
  python3 -c 'import json,sys; [print(l["digest"]) for l in json.load(open(sys.argv[1]))["layers"]]' \
    "$W/g$i/manifest.json" > "$W/g$i/volumes"
  local n=0
  while read -r d; do
    n=$((n + 1)); curl -fsS "http://$REG/v2/fleet/bundles/blobs/$d" -o "$W/g$i/v$n" &
  done < "$W/g$i/volumes"
  wait
  cat $(for k in $(seq "$n"); do echo "$W/g$i/v$k"; done) > "$W/g$i.bkp"
  end=$(date +%s.%N)
  echo "$state $(stat -c %s "$W/g$i.bkp") $(sha256sum < "$W/g$i.bkp" | cut -c1-64)" > "$W/g$i.got"
  awk -v a="$start" -v b="$end" 'BEGIN{printf "%.2f\n", b - a}' > "$W/g$i.secs"
}
for i in $(seq "$REPLICAS"); do from_registry "$i" & done
for job in $(jobs -p); do [ "$job" = "${PIDS[0]}" ] && continue; wait "$job" || fail=1; done
[ "$(ls "$W"/g*.got 2> /dev/null | wc -l)" = "$REPLICAS" ] || { echo "only $(ls "$W"/g*.got | wc -l) of $REPLICAS fetchers got a bundle from the registry" >&2; fail=1; }
for s in 0 1 2; do  # The same bytes as the primary served for that state.
  want=$(awk -v s="$s" '$1 == s {print $5}' "$W"/r*.got | sort -u)
  got=$(awk -v s="$s" '$1 == s {print $3}' "$W"/g*.got | sort -u)
  [ "$want" = "$got" ] || { echo "state $s: the registry's bundle differs from the primary's" >&2; fail=1; }
done
R_BYTES=$(cat "$W"/g*.got | awk '{b += $2} END{printf "%.1f MB", b/1e6}')
R_SLOWEST=$(sort -n "$W"/g*.secs | tail -1)
R_MEDIAN=$(sort -n "$W"/g*.secs | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}')

echo "One primary (--max-builds $MAX_BUILDS, cold, --publish), $REPLICAS replicas at once in 3 states, each with its own inventory ($BODIES distinct inventory files); registry holds 3 versions of a ${LAYER_MB} MB layer"
echo
[ "$(metric booster_bundles_built_total)" = 3 ] || { echo "$(metric booster_bundles_built_total) builds for 3 states" >&2; fail=1; }
echo "| replicas | states | bundle builds | cache hits | offer walks | primary CPU | primary peak RSS | bytes served | bundle per state | median fetch | slowest fetch | wrong or partial |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
echo "| $REPLICAS | 3 | $(metric booster_bundles_built_total) | $(metric booster_bundle_cache_hits_total) | $REFRESHES | $CPU s | $RSS MiB | $(awk -v b="$(metric booster_bytes_out_total)" 'BEGIN{printf "%.1f MB", b/1e6}') | $sizes | $MEDIAN s | $SLOWEST s | $([ "$fail" = 0 ] && echo none || echo SEE ERRORS) |"
echo
echo "Then the primary stopped; the same $REPLICAS fetch from the registry with curl ($PUBLISHED bundles published as OCI artifacts)"
echo
echo "| fetchers | primary | bytes from the registry | median fetch | slowest fetch | same bytes as the primary's |"
echo "|---|---|---|---|---|---|"
echo "| $REPLICAS | stopped | $R_BYTES | $R_MEDIAN s | $R_SLOWEST s | $([ "$fail" = 0 ] && echo yes || echo SEE ERRORS) |"
exit "$fail"
