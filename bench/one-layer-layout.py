#!/usr/bin/env python3
"""One-layer OCI layout for the benchmarks: DIR BLOB MEDIA TAR.

Writes DIR as an OCI layout holding one image tagged "t" whose single layer is BLOB (hard
linked), with media type application/vnd.oci.image.layer.v1.tar+MEDIA and the diff_id of
TAR (the plain tar BLOB decompresses to).
"""
import hashlib, json, os, sys
d, blob, media, tar = sys.argv[1:]
def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
    return h.hexdigest()
def put(data=None, path=None):
    h = hashlib.sha256(data).hexdigest() if data is not None else digest(path)
    os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
    dest = f"{d}/blobs/sha256/{h}"
    if data is None: os.link(path, dest)
    else: open(dest, "wb").write(data)
    return "sha256:" + h
cfg = json.dumps({"architecture": "amd64", "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + digest(tar)]}}).encode()
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
    "layers": [{"mediaType": f"application/vnd.oci.image.layer.v1.tar+{media}", "digest": put(path=blob),
                "size": os.path.getsize(blob)}]}).encode()
md = put(m)
open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": md, "size": len(m), "annotations": {"org.opencontainers.image.ref.name": "t"}}]},
    open(f"{d}/index.json", "w"))
