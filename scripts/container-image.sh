#!/usr/bin/env bash
# Container images, built without a daemon and without network access, reproducibly (the
# same commit and binary give the same manifest digest):
#
#   scripts/container-image.sh DIR              booster, as oci:DIR:<version>
#   scripts/container-image.sh --registry DIR   Debian's docker-registry, as oci:DIR:<its version>
#
# The booster image holds the release binary (BOOSTER_BIN overrides it), the shared
# libraries it links (as this machine's ldd resolves them), CA certificates and a
# /etc/passwd with the non-root user `booster` (uid 10001), whose store is the volume
# /var/lib/booster. It runs `booster serve` on 0.0.0.0:8080, configured by environment
# variables (BOOSTER_REGISTRY, BOOSTER_PRIMARY, BOOSTER_TOKEN_FILE, BOOSTER_IMAGES,
# BOOSTER_LISTEN, BOOSTER_STORE) or flags; `booster healthcheck` probes /healthz (the
# image's health check, and what `podman run --health-cmd` should call).
#
# The registry image holds /usr/bin/docker-registry and a config listening on
# 0.0.0.0:5000 with its storage in the volume /var/lib/docker-registry (REGISTRY_HTTP_ADDR
# and the other REGISTRY_* variables override it).
#
# Every file time is the commit time; the layer is a sorted tar compressed by gzip -9 -n
# (scripts/oci-image.py). Push with `booster push oci:DIR:<version> --to REGISTRY/REPO` or
# skopeo; run with podman (`podman run oci:DIR:<version>`) or load into any runtime.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHAT=booster
if [ "${1:-}" = --registry ]; then WHAT=registry; shift; fi
OUT=${1:?usage: scripts/container-image.sh [--registry] DIR}
EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# The shared libraries a binary links, and the dynamic loader, as file: entries.
libs_of() {
  ldd "$1" | awk '/=> \//{print $3} /^[ \t]*\/[^ ]+ \(/{print $1}' | sort -u | while read -r lib; do
    echo "file:$(readlink -f "$lib"):$lib"
  done
}

passwd_files() {  # USER UID
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n%s:x:%s:%s:%s:/var/lib/%s:/usr/sbin/nologin\n' \
    "$1" "$2" "$2" "$1" "$1" > "$W/passwd"
  printf 'root:x:0:\n%s:x:%s:\n' "$1" "$2" > "$W/group"
  echo "file:$W/passwd:/etc/passwd:0644"
  echo "file:$W/group:/etc/group:0644"
}

if [ "$WHAT" = booster ]; then
  if [ -z "${BOOSTER_BIN:-}" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/booster-target}"
    (cd "$ROOT" && cargo build --release --locked --quiet --bin booster)
    BOOSTER_BIN=$CARGO_TARGET_DIR/release/booster
  fi
  VERSION=$("$BOOSTER_BIN" --version | cut -d' ' -f2)
  cp "$BOOSTER_BIN" "$W/booster"
  strip --strip-debug "$W/booster"
  cat > "$W/config.json" <<'EOF'
{
  "User": "10001:10001",
  "Entrypoint": ["/usr/bin/booster"],
  "Cmd": ["serve"],
  "Env": [
    "PATH=/usr/bin",
    "BOOSTER_STORE=/var/lib/booster",
    "BOOSTER_LISTEN=0.0.0.0:8080",
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
  ],
  "ExposedPorts": {"8080/tcp": {}},
  "Volumes": {"/var/lib/booster": {}},
  "WorkingDir": "/var/lib/booster",
  "StopSignal": "SIGTERM",
  "Healthcheck": {"Test": ["CMD", "/usr/bin/booster", "healthcheck"], "Interval": 30000000000, "Timeout": 5000000000, "Retries": 3},
  "Labels": {"org.opencontainers.image.title": "booster", "org.opencontainers.image.description": "booster companion service: serve, sync and bundles of OCI images"}
}
EOF
  mapfile -t entries < <(
    echo "file:$W/booster:/usr/bin/booster:0755"
    libs_of "$W/booster"
    echo "file:/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:0644"
    passwd_files booster 10001
    echo "dir:/var/lib/booster:0750:10001:10001"
    echo "dir:/tmp:1777"
  )
else
  VERSION=$(dpkg-query -W -f='${Version}' docker-registry | sed 's/[+~-].*//')
  cat > "$W/config.yml" <<'EOF'
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: 0.0.0.0:5000
EOF
  cat > "$W/config.json" <<'EOF'
{
  "User": "10002:10002",
  "Entrypoint": ["/usr/bin/docker-registry"],
  "Cmd": ["serve", "/etc/docker/registry/config.yml"],
  "Env": ["PATH=/usr/bin"],
  "ExposedPorts": {"5000/tcp": {}},
  "Volumes": {"/var/lib/docker-registry": {}},
  "Labels": {"org.opencontainers.image.title": "docker-registry", "org.opencontainers.image.description": "Debian's docker-registry (the CNCF distribution server)"}
}
EOF
  mapfile -t entries < <(
    echo "file:/usr/bin/docker-registry:/usr/bin/docker-registry:0755"
    libs_of /usr/bin/docker-registry
    echo "file:$W/config.yml:/etc/docker/registry/config.yml:0644"
    passwd_files registry 10002
    echo "dir:/var/lib/docker-registry:0750:10002:10002"
    echo "dir:/tmp:1777"
  )
fi

python3 "$ROOT/scripts/oci-image.py" --out "$OUT" --tag "$VERSION" --config "$W/config.json" \
  --epoch "$EPOCH" --created-by "scripts/container-image.sh ($WHAT)" "${entries[@]}" >/dev/null
echo "oci:$OUT:$VERSION"
