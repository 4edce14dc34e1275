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
# package | pinned version | suite
WANT=(
  "cosign|3.1.1-2|sid"
  "oras|1.3.3-1|sid"
  "notation|1.3.2-2|sid"
  "crane|0.20.7+ds1-5|sid"
  "golang-github-google-go-containerregistry-dev|0.20.7+ds1-5|sid"
)
if [ -s "$D/tools.env" ] && [ "$(cat "$D/.want" 2>/dev/null)" = "${WANT[*]}" ]; then
  exit 0
fi
. "$(dirname "$0")"/private-apt.sh
private_apt_update sig-tools sid
private_apt_download sig-tools "${WANT[@]}"
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
