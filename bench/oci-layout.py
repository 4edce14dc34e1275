#!/usr/bin/env python3
"""OCI image layout writer for the benchmarks, any number of layers:

    oci-layout.py DIR TAG CONFIG BLOB DIFF [BLOB DIFF ...]

Adds to the OCI layout DIR (created if missing) one image tagged TAG (an index entry of the
same tag is replaced): an OCI manifest whose layers are the BLOBs in order (hard linked into
DIR, copied across file systems), media type application/vnd.oci.image.layer.v1.tar+gzip for
*.gz, +zstd for *.zst, plain tar otherwise; and a config whose diff_ids are the DIFFs, each the
plain tar the blob decompresses to or its digest given as "sha256:HEX". CONFIG is a JSON
object for the config's "config" field (Env, Entrypoint, Cmd, ...), "{}" for none.
(one-layer-layout.py is the one-layer case, tagged "t".)
"""
import hashlib, json, os, shutil, sys

d, tag, conf = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
pairs = sys.argv[4:]
if not pairs or len(pairs) % 2:
    sys.exit("usage: oci-layout.py DIR TAG CONFIG BLOB DIFF [BLOB DIFF ...]")


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def put(data=None, path=None):
    h = hashlib.sha256(data).hexdigest() if data is not None else digest(path)
    os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
    dest = f"{d}/blobs/sha256/{h}"
    if not os.path.exists(dest):
        if data is not None:
            open(dest, "wb").write(data)
        else:
            try:
                os.link(path, dest)
            except OSError:
                shutil.copyfile(path, dest)
    return "sha256:" + h


def media(blob):
    suffix = {".gz": "+gzip", ".zst": "+zstd"}.get(os.path.splitext(blob)[1], "")
    return "application/vnd.oci.image.layer.v1.tar" + suffix


layers, diff_ids = [], []
for blob, diff in zip(pairs[0::2], pairs[1::2]):
    layers.append({"mediaType": media(blob), "digest": put(path=blob), "size": os.path.getsize(blob)})
    diff_ids.append(diff if diff.startswith("sha256:") else "sha256:" + digest(diff))
cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
if conf:
    cfg["config"] = conf
cfg = json.dumps(cfg).encode()
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": put(cfg), "size": len(cfg)},
                "layers": layers}).encode()
md = put(m)
open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
try:
    index = json.load(open(f"{d}/index.json"))
except FileNotFoundError:
    index = {"schemaVersion": 2, "manifests": []}
index["manifests"] = [e for e in index["manifests"]
                      if e.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
                           "size": len(m), "annotations": {"org.opencontainers.image.ref.name": tag}})
json.dump(index, open(f"{d}/index.json", "w"))
print(md)
