#!/usr/bin/env bash
# The near-miss experiment (issue 19): blobs written by today's encoders, rebuilt from a
# model of a neighbouring version plus token corrections (recompress::replay), with
# the exact model left out. Prints one Markdown table: per pair the correction bytes and
# their share of the blob (carrying the blob whole costs 100 %), and the times of the
# analysis (model + diff) and of the rebuild (model + corrections), one core.
#
#   bench/near-miss.sh [TAR]        TAR defaults to a 100 MB tar of /usr/lib
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/booster-target}"
cargo build --release --quiet -p recompress --example near_miss
NEAR=$CARGO_TARGET_DIR/release/examples/near_miss
W=$(mktemp -d /tmp/booster-near.XXXXXX)
trap 'rm -rf "$W"' EXIT
TAR=${1:-}
if [ -z "$TAR" ]; then
  TAR=$W/usr.tar
  tar -cf - /usr/lib 2>/dev/null | head -c 100M > "$TAR" || true
fi
. bench/go-encoders.sh
build_layer_encoders "$W"
echo "Input: $TAR ($(( $(stat -c %s "$TAR") / 1000000 )) MB)"
echo
echo "| blob (encoder) | model | result | corrections | of the blob | analysis | rebuild |"
echo "|---|---|---|---|---|---|---|"
# blob name | encoder command | models (the exact one left out)
PAIRS="Go 1.27 level 6|$ENC127 -mode stdgzip -level 6|go:6 go:5 kp1.20:6 kp1.20:5
Go 1.27 level 1|$ENC127 -mode stdgzip -level 1|go:1 kp1.20:1
Go 1.27 level 9|$ENC127 -mode stdgzip -level 9|go:9 kp1.20:9
klauspost 1.20.3 gzip default|$ENC120 -mode kpgzip -level -1|kp1.18:-1 kp1.15:-1 go:6
klauspost 1.18.0 gzip level 9|$ENC118 -mode kpgzip -level 9|kp1.15:9
GNU gzip -6|gzip -6 -n|zlib:6"
while IFS='|' read -r name cmd models; do
  bash -c "$cmd" < "$TAR" > "$W/blob.gz"
  mb=$(( $(stat -c %s "$W/blob.gz") / 1000000 ))
  # shellcheck disable=SC2086
  "$NEAR" "$W/blob.gz" "$TAR" $models | sed "s/^| /| $name ($mb MB) | /"
done <<< "$PAIRS"
