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
. "$(dirname "$0")"/private-apt.sh
private_apt_update go-refs trixie sid
private_apt_download go-refs "${WANT[@]}"

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
