#!/usr/bin/env bash
# Prints the Debian archive this machine's own apt uses (deb822 `.sources` or one-line
# `sources.list`), so that scripts fetching packages of other suites through a private apt
# configuration never name an archive host themselves.
#   scripts/debian-archive.sh            # → the main archive URI
#   scripts/debian-archive.sh security   # → the security archive URI (may be empty)
set -euo pipefail
want=${1:-main}
uris=$( (awk '/^URIs:/{for (i = 2; i <= NF; i++) print $i}' /etc/apt/sources.list.d/*.sources 2>/dev/null
         awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' \
           /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null) || true)
case $want in
  security) grep -m1 -- '-security' <<< "$uris" || true ;;
  *) uri=$(grep -v -- '-security' <<< "$uris" | grep -m1 . || true)
     [ -n "$uri" ] || { echo "debian-archive.sh: no Debian archive in this machine's apt sources" >&2; exit 1; }
     echo "${uri%/}" ;;
esac
