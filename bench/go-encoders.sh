# Sourced by the bench scripts: builds tests/go/layer-enc against every encoder version the
# models cover, into DIR/enc-go1.27, DIR/enc-kp1.15, DIR/enc-kp1.18 and DIR/enc-kp1.20, and
# sets ENC127, ENC115, ENC118 and ENC120 to them. Go 1.27 and klauspost/compress 1.18.0 /
# 1.20.3 come from Debian's newer suites through scripts/go-refs.sh (private apt
# configuration); 1.15.12 is bookworm's golang-github-klauspost-compress-dev.
build_layer_encoders() {  # DIR
  local d=$1 root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  "$root"/scripts/go-refs.sh
  # shellcheck disable=SC1091
  . "${BOOSTER_GO_REFS:-/var/tmp/booster-go-refs}/refs.env"
  go127() {  # OUT GOPATH [TAGS]
    (cd "$root"/tests/go/layer-enc && env -i PATH=/usr/bin:/bin GOROOT="$GO127_ROOT" GOPATH="$2" \
       GO111MODULE=off GOTOOLCHAIN=local GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOCACHE="$d/gocache" \
       "$GO127_ROOT/bin/go" build ${3:+-tags "$3"} -o "$1" .)
  }
  ENC127=$d/enc-go1.27 ENC118=$d/enc-kp1.18 ENC120=$d/enc-kp1.20 ENC115=$d/enc-kp1.15
  go127 "$ENC127" "$d/empty-gopath"
  go127 "$ENC118" "$KP118_GOPATH" kp
  go127 "$ENC120" "$KP120_GOPATH" kp
  (cd "$root"/tests/go/layer-enc && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$d/gocache" \
     go build -tags kp -o "$ENC115" .)
}
