#!/usr/bin/env python3
"""tar-unjar.py IN.tar OUT.tar: the "unpacked" reference of a layer tar for the JVM peers.

OUT is IN with every regular file that is a zip archive named *.jar, *.war, *.ear or *.zip
replaced by a directory entry of that name holding the archive's members, uncompressed, in
the archive's order (member mtimes from the zip's DOS dates, modes from its Unix attributes,
else 0644 / 0755), recursively for archives inside archives (a fat jar's BOOT-INF/lib/*.jar).
What a delta of two such tars costs is what a tool that opens jars has to send at least for
the contents (it still owes the zip structure on top). Other entries are copied unchanged.
"""
import calendar, io, sys, tarfile, zipfile

ARCHIVE = (".jar", ".war", ".ear", ".zip")


def is_archive(name, data):
    return name.lower().endswith(ARCHIVE) and zipfile.is_zipfile(io.BytesIO(data))


def put_dir(out, name, mtime, mode=0o755):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, mode, mtime
    out.addfile(ti)


def expand(out, prefix, data, mtime, mode):
    put_dir(out, prefix, mtime, mode | 0o111)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for zi in z.infolist():
            name = f"{prefix}/{zi.filename.rstrip('/')}"
            try:
                m = calendar.timegm(zi.date_time + (0, 0, 0))
            except (OverflowError, ValueError):
                m = 0
            unix = (zi.external_attr >> 16) & 0o7777
            if zi.is_dir():
                put_dir(out, name, m, unix or 0o755)
                continue
            body = z.read(zi)
            if is_archive(zi.filename, body):
                expand(out, name, body, m, unix or 0o644)
                continue
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(body), m, unix or 0o644
            out.addfile(ti, io.BytesIO(body))


with tarfile.open(sys.argv[1]) as src, \
        tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT) as out:
    for ti in src:
        if ti.isreg():
            data = src.extractfile(ti).read()
            if is_archive(ti.name, data):
                expand(out, ti.name, data, ti.mtime, ti.mode)
            else:
                out.addfile(ti, io.BytesIO(data))
        else:
            out.addfile(ti)
