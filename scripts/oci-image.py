#!/usr/bin/env python3
"""Write a one-layer OCI image into an OCI layout, reproducibly and without a daemon.

    oci-image.py --out DIR --tag TAG --config CONFIG.json --epoch SECONDS ENTRY...

ENTRY is one of
    file:SRC:DEST[:MODE]        a regular file copied from SRC (symlinks followed)
    dir:DEST:MODE[:UID:GID]     a directory
    link:DEST:TARGET            a symbolic link

The layer is a tar with entries sorted by path, every time set to --epoch, owners numeric
(root unless given), no user or group names, compressed by `gzip -9 -n` (GNU gzip writes the
same bytes for the same input). CONFIG.json holds the image config's `config` object
(User, Entrypoint, Cmd, Env, ...); the rest of the image config (architecture, os,
rootfs, created, history) is filled in here. Parent directories are added as 0755 root
directories. The same inputs give the same manifest digest; it is printed.
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time


def parse_entries(specs):
    entries = {}
    for spec in specs:
        kind, _, rest = spec.partition(":")
        if kind == "file":
            parts = rest.split(":")
            src, dest = parts[0], parts[1]
            mode = int(parts[2], 8) if len(parts) > 2 else None
            entries[dest.strip("/")] = ("file", src, mode, 0, 0)
        elif kind == "dir":
            parts = rest.split(":")
            uid = int(parts[2]) if len(parts) > 2 else 0
            gid = int(parts[3]) if len(parts) > 3 else 0
            entries[parts[0].strip("/")] = ("dir", None, int(parts[1], 8), uid, gid)
        elif kind == "link":
            dest, target = rest.split(":", 1)
            entries[dest.strip("/")] = ("link", target, 0o777, 0, 0)
        else:
            sys.exit(f"oci-image.py: unknown entry {spec!r}")
    # Parents of everything, as plain root directories, unless given.
    for path in list(entries):
        parent = os.path.dirname(path)
        while parent and parent not in entries:
            entries[parent] = ("dir", None, 0o755, 0, 0)
            parent = os.path.dirname(parent)
    return entries


def layer_tar(entries, epoch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            kind, src, mode, uid, gid = entries[path]
            info = tarfile.TarInfo(path)
            info.mtime = epoch
            info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, mode
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, src, 0o777
                tar.addfile(info)
            else:
                with open(src, "rb") as f:
                    data = f.read()
                info.size = len(data)
                info.mode = mode if mode is not None else (os.stat(src).st_mode & 0o7777)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def put(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return "sha256:" + digest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--epoch", type=int, required=True)
    ap.add_argument("--created-by", default="scripts/oci-image.py")
    ap.add_argument("entries", nargs="+")
    a = ap.parse_args()

    tar = layer_tar(parse_entries(a.entries), a.epoch)
    layer = subprocess.run(["gzip", "-9", "-n", "-c"], input=tar, capture_output=True, check=True).stdout
    with open(a.config) as f:
        runtime = json.load(f)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a.epoch))
    config = {
        "created": created,
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine),
        "os": "linux",
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
        "history": [{"created": created, "created_by": a.created_by}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    os.makedirs(a.out, exist_ok=True)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": put(a.out, config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": put(a.out, layer),
                "size": len(layer),
            }
        ],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    digest = put(a.out, manifest_bytes)
    with open(os.path.join(a.out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    index_path = os.path.join(a.out, "index.json")
    index = {"schemaVersion": 2, "manifests": []}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    index["manifests"] = [
        m for m in index.get("manifests", [])
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != a.tag
    ] + [{
        "mediaType": manifest["mediaType"],
        "digest": digest,
        "size": len(manifest_bytes),
        "annotations": {"org.opencontainers.image.ref.name": a.tag},
    }]
    with open(index_path, "w") as f:
        json.dump(index, f, sort_keys=True, separators=(",", ":"))
    print(digest)


if __name__ == "__main__":
    main()
