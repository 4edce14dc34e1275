#!/usr/bin/env python3
"""layer-tar.py ROOT OUT [MTIME]: a layer tar of the tree ROOT, written as image builders
write layers (Go archive/tar in moby and BuildKit): entries in lexical order, each directory
before its contents (filepath.Walk's order), names relative to ROOT without "./" (directories
with a trailing "/"), owner 0:0 without user names, every mtime set to MTIME (default
2024-01-01T00:00:00Z, as SOURCE_DATE_EPOCH builds do), symlinks kept as symlinks, hard links
as links to the first name. USTAR headers, PAX records only where USTAR cannot hold a field
(Go's choice too). ROOT itself is not an entry.
"""
import os, sys, tarfile

root, out = sys.argv[1], sys.argv[2]
mtime = int(sys.argv[3]) if len(sys.argv) > 3 else 1704067200


def walk(t, rel):
    for name in sorted(os.listdir(os.path.join(root, rel) if rel else root)):
        r = f"{rel}/{name}" if rel else name
        p = os.path.join(root, r)
        ti = t.gettarinfo(p, arcname=r)
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        ti.mtime = mtime
        if ti.isreg():
            with open(p, "rb") as f:
                t.addfile(ti, f)
        else:
            t.addfile(ti)
        if ti.isdir():
            walk(t, r)


with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    walk(t, "")
