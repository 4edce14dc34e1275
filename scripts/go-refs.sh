#!/usr/bin/env bash
# The Go encoders booster's models are checked against, beyond what this Debian release
# ships: Go 1.27 (its compress/flate is new), klauspost/compress 1.18.0 and 1.20.3, and
# klauspost/pgzip 1.2.6. They come from Debian's newer suites (trixie, sid) through a
# PRIVATE apt configuration: nothing is installed, the machine's apt sources and its own Go
# are left as they are. The packages are unpacked under $BOOSTER_GO_REFS
# (default /var/tmp/booster-go-refs), and refs.env there tells the tests where each is.
#
#   scripts/go-refs.sh          # idempotent; a second run only checks
#
# The differential tests (tests/kpflate_differential.rs and friends) build their Go
# reference programs from these in GOPATH mode (there is no Go module proxy here).
set -euo pipefail
D=${BOOSTER_GO_REFS:-/var/tmp/booster-go-refs}
# package | pinned version | suite it comes from
WANT=(
  "golang-1.27-go|1.27.3-1|sid"
  "golang-1.27-src|1.27.3-1|sid"
  "golang-github-klauspost-compress-dev|1.18.0+ds1-1|trixie"
  "golang-github-klauspost-compress-dev|1.20.3+ds1-1|sid"
  "golang-github-klauspost-pgzip-dev|1.2.6-1|trixie"
  "golang-github-cespare-xxhash-dev|2.3.0-1|trixie"
  "golang-github-cespare-xxhash-v2-dev|2.3.0-4|sid"
)
if [ -s "$D/refs.env" ] && [ "$(cat "$D/.want" 2>/dev/null)" = "${WANT[*]}" ]; then
  exit 0
fi
mkdir -p "$D"/apt/lists/partial "$D"/apt/cache/archives/partial "$D"/debs "$D"/x
# The archive is the one this machine's own apt uses; no host is written here.
ARCHIVE=${ARCHIVE:-$("$(dirname "$0")"/debian-archive.sh)}
printf 'deb %s trixie main\ndeb %s sid main\n' "$ARCHIVE" "$ARCHIVE" > "$D"/apt/sources.list
O=(-o Dir::Etc::SourceList="$D"/apt/sources.list -o Dir::Etc::SourceParts=/dev/null
   -o Dir::State::Lists="$D"/apt/lists -o Dir::Cache="$D"/apt/cache
   -o Dir::State::status=/var/lib/dpkg/status -o APT::Get::List-Cleanup=0
   -o Debug::NoLocking=1)
echo "go-refs: reading Debian trixie and sid package lists (private apt configuration in $D/apt)" >&2
apt-get "${O[@]}" update -qq >/dev/null

# A pinned version that the suite no longer offers (sid moves) is replaced by the newest one
# offered, loudly: the tests then say whether the newer version still matches the models.
picks=()
for w in "${WANT[@]}"; do
  IFS='|' read -r pkg ver suite <<< "$w"
  offered=$(apt-cache "${O[@]}" madison "$pkg" | awk -F'|' -v s="$suite" '$3 ~ s"/" {gsub(/ /,"",$2); print $2}')
  if grep -qxF "$ver" <<< "$offered"; then
    picks+=("$pkg=$ver")
  else
    newest=$(sort -V <<< "$offered" | tail -1)
    [ -n "$newest" ] || { echo "go-refs: $pkg is not offered by Debian $suite" >&2; exit 1; }
    echo "go-refs: WARNING: $pkg $ver is gone from $suite; using $newest instead" >&2
    picks+=("$pkg=$newest")
  fi
done
(cd "$D"/debs && apt-get "${O[@]}" download -qq "${picks[@]}" 2>&1 | grep -v 'Download is performed unsandboxed' || true)

dir_of() {  # DEB -> the folder it unpacks into
  local pkg ver
  pkg=$(dpkg-deb -f "$1" Package) ver=$(dpkg-deb -f "$1" Version)
  case $pkg in
    golang-1.*-go|golang-1.*-src) v=${pkg#golang-}; echo "go-${v%-*}" ;;
    golang-github-klauspost-compress-dev) echo "kp-${ver%%+*}" ;;
    golang-github-klauspost-pgzip-dev) echo "pgzip-${ver%%-*}" ;;
    golang-github-cespare-xxhash-dev) echo "xxhash-$ver" ;;
    golang-github-cespare-xxhash-v2-dev) echo "xxhash-v2-$ver" ;;
  esac
}
for p in "${picks[@]}"; do
  pkg=${p%%=*} ver=${p#*=}
  deb=$(ls "$D"/debs/"${pkg}_${ver//:/%3a}"_*.deb)
  sub=$(dir_of "$deb")
  [ -e "$D/x/$sub/.$pkg" ] || { mkdir -p "$D/x/$sub" && dpkg-deb -x "$deb" "$D/x/$sub" && touch "$D/x/$sub/.$pkg"; }
done

gocode() { echo "$D/x/$1/usr/share/gocode"; }
go=$(ls -d "$D"/x/go-1.27); kp18=$(ls -d "$D"/x/kp-1.18.*); kp20=$(ls -d "$D"/x/kp-1.20.*)
pg=$(ls -d "$D"/x/pgzip-1.2.6*); xx=$(ls -d "$D"/x/xxhash-2.*); xx2=$(ls -d "$D"/x/xxhash-v2-*)
{
  echo "# written by scripts/go-refs.sh; read by the differential tests"
  echo "GO127_ROOT=$go/usr/lib/go-1.27"
  echo "KP118_GOPATH=$(gocode "${kp18##*/}"):$(gocode "${pg##*/}"):$(gocode "${xx##*/}")"
  echo "KP120_GOPATH=$(gocode "${kp20##*/}"):$(gocode "${pg##*/}"):$(gocode "${xx2##*/}")"
  echo "VERSIONS=\"${picks[*]}\""
} > "$D/refs.env.tmp"
"$go/usr/lib/go-1.27/bin/go" version >/dev/null
mv "$D/refs.env.tmp" "$D/refs.env"
echo "${WANT[*]}" > "$D/.want"
rm -rf "$D"/debs "$D"/apt/cache/archives/*.deb
echo "go-refs: ready in $D (${picks[*]})" >&2
