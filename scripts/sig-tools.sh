#!/usr/bin/env bash
# The real signing and artifact clients the referrer tests drive: cosign, oras, notation
# and crane (go-containerregistry) from Debian sid, plus go-containerregistry's library
# source for the test registry that serves the OCI 1.1 referrers API. Fetched the way
# scripts/go-refs.sh fetches the Go references: a PRIVATE apt configuration (the machine's
# apt sources untouched, nothing installed), the archive taken from this machine's own apt
# configuration. Unpacked under $BOOSTER_SIG_TOOLS (default /var/tmp/booster-sigtools);
# tools.env there tells the tests where each is.
#
#   scripts/sig-tools.sh        # idempotent; a second run only checks
set -euo pipefail
D=${BOOSTER_SIG_TOOLS:-/var/tmp/booster-sigtools}
# package | pinned version
WANT=(
  "cosign|3.1.1-2"
  "oras|1.3.3-1"
  "notation|1.3.2-2"
  "crane|0.20.7+ds1-5"
  "golang-github-google-go-containerregistry-dev|0.20.7+ds1-5"
)
if [ -s "$D/tools.env" ] && [ "$(cat "$D/.want" 2>/dev/null)" = "${WANT[*]}" ]; then
  exit 0
fi
mkdir -p "$D"/apt/lists/partial "$D"/apt/cache/archives/partial "$D"/debs "$D"/x
ARCHIVE=${ARCHIVE:-$("$(dirname "$0")"/debian-archive.sh)}
echo "deb $ARCHIVE sid main" > "$D"/apt/sources.list
O=(-o Dir::Etc::SourceList="$D"/apt/sources.list -o Dir::Etc::SourceParts=/dev/null
   -o Dir::State::Lists="$D"/apt/lists -o Dir::Cache="$D"/apt/cache
   -o Dir::State::status=/var/lib/dpkg/status -o APT::Get::List-Cleanup=0
   -o Debug::NoLocking=1)
echo "sig-tools: reading Debian sid package lists (private apt configuration in $D/apt)" >&2
apt-get "${O[@]}" update -qq >/dev/null

# A pinned version sid no longer offers is replaced by the newest one, loudly.
picks=()
for w in "${WANT[@]}"; do
  IFS='|' read -r pkg ver <<< "$w"
  offered=$(apt-cache "${O[@]}" madison "$pkg" | awk -F'|' '$3 ~ /sid\// {gsub(/ /,"",$2); print $2}')
  if grep -qxF "$ver" <<< "$offered"; then
    picks+=("$pkg=$ver")
  else
    newest=$(sort -V <<< "$offered" | tail -1)
    [ -n "$newest" ] || { echo "sig-tools: $pkg is not offered by Debian sid" >&2; exit 1; }
    echo "sig-tools: WARNING: $pkg $ver is gone from sid; using $newest instead" >&2
    picks+=("$pkg=$newest")
  fi
done
(cd "$D"/debs && apt-get "${O[@]}" download -qq "${picks[@]}" 2>&1 | grep -v 'Download is performed unsandboxed' || true)
for deb in "$D"/debs/*.deb; do dpkg-deb -x "$deb" "$D/x"; done
for t in cosign oras notation crane; do "$D/x/usr/bin/$t" --help >/dev/null; done
{
  echo "# written by scripts/sig-tools.sh; read by tests/referrers.rs"
  echo "BIN=$D/x/usr/bin"
  echo "GGCR_GOPATH=$D/x/usr/share/gocode"
  echo "VERSIONS=\"${picks[*]}\""
} > "$D/tools.env.tmp"
mv "$D/tools.env.tmp" "$D/tools.env"
echo "${WANT[*]}" > "$D/.want"
rm -rf "$D"/debs "$D"/apt/cache/archives/*.deb
echo "sig-tools: ready in $D (${picks[*]})" >&2
