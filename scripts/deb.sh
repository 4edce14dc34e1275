#!/usr/bin/env bash
# booster as a Debian package, for sites that install from a USB stick:
#
#   scripts/deb.sh DIR        → DIR/booster_<version>_amd64.deb
#
# The package holds the binary (/usr/bin/booster), its man page, bash/zsh/fish completions,
# a systemd unit for the companion (booster.service, configured in /etc/default/booster,
# not enabled until an operator says where the registry is) and creates the `booster` system
# user that owns /var/lib/booster. Built with dpkg-deb from the release binary (BOOSTER_BIN
# overrides it; the tests pass their own build), with every file's time set to the commit's,
# so the same binary gives the same package.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: scripts/deb.sh DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -z "${BOOSTER_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/booster-target}"
  (cd "$ROOT" && cargo build --release --locked --quiet --bin booster)
  BOOSTER_BIN=$CARGO_TARGET_DIR/release/booster
fi
VERSION=$("$BOOSTER_BIN" --version | cut -d' ' -f2)
ARCH=$(dpkg --print-architecture)
EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
P=$W/pkg

install -D -m 0755 "$BOOSTER_BIN" "$P/usr/bin/booster"
strip --strip-debug "$P/usr/bin/booster" 2>/dev/null || true
mkdir -p "$P/usr/share/man/man1"
"$BOOSTER_BIN" man > "$P/usr/share/man/man1/booster.1"
gzip -9n "$P/usr/share/man/man1/booster.1"
install -d "$P/usr/share/bash-completion/completions" "$P/usr/share/zsh/vendor-completions" \
  "$P/usr/share/fish/vendor_completions.d"
"$BOOSTER_BIN" completions bash > "$P/usr/share/bash-completion/completions/booster"
"$BOOSTER_BIN" completions zsh > "$P/usr/share/zsh/vendor-completions/_booster"
"$BOOSTER_BIN" completions fish > "$P/usr/share/fish/vendor_completions.d/booster.fish"
install -D -m 0644 "$ROOT/deploy/systemd/booster.service" "$P/lib/systemd/system/booster.service"
install -D -m 0644 "$ROOT/deploy/systemd/booster.default" "$P/etc/default/booster"
install -d "$P/usr/share/doc/booster"
cp "$ROOT/README.md" "$P/usr/share/doc/booster/README.md"
gzip -9n "$P/usr/share/doc/booster/README.md"
cat > "$P/usr/share/doc/booster/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: booster
Files: *
License: see the booster source repository
EOF

install -d "$P/DEBIAN"
cat > "$P/DEBIAN/control" <<EOF
Package: booster
Version: $VERSION
Architecture: $ARCH
Maintainer: booster developers <booster@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$P" | cut -f1)
Depends: libc6, libgcc-s1, libstdc++6, libssl3, libzstd1, zlib1g, ca-certificates
Suggests: docker-registry, skopeo
Section: admin
Priority: optional
Description: container images between registries and across air gaps, sending only deltas
 booster moves OCI images between registries, and across air gaps on a USB stick, sending
 only what the other side lacks: layers are cut into content-defined chunks kept once in a
 local store, bundles carry deltas against what the receiver has, and every layer is
 rebuilt bit-exactly (same digests as upstream). Includes the companion service
 (booster.service) that syncs a replica registry from a primary.
EOF
echo "/etc/default/booster" > "$P/DEBIAN/conffiles"
cat > "$P/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd booster >/dev/null; then
    adduser --system --group --home /var/lib/booster --no-create-home \
      --gecos "booster companion" booster >/dev/null
  fi
  install -d -o booster -g booster -m 0750 /var/lib/booster
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
  fi
fi
exit 0
EOF
cat > "$P/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
  rm -rf /var/lib/booster
  if getent passwd booster >/dev/null; then deluser --system booster >/dev/null 2>&1 || true; fi
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
exit 0
EOF
chmod 0755 "$P/DEBIAN/postinst" "$P/DEBIAN/postrm"
sed -i '/^Depends:/s/$/, adduser/' "$P/DEBIAN/control"

find "$P" -exec touch -h -d "@$EPOCH" {} +
DEB=$OUT/booster_${VERSION}_${ARCH}.deb
SOURCE_DATE_EPOCH=$EPOCH dpkg-deb --root-owner-group -Zxz --build "$P" "$DEB" >/dev/null
echo "$DEB"
