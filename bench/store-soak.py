#!/usr/bin/python3
"""Store soak (issue 33, store-format.md 5.1): a store through many short booster sessions,
and a `serve` replica through many /sync rounds, recording per round what the store takes on
disk, what it holds, the process's peak RSS and the round's time.

    bench/store-soak.py [--sessions 1000] [--rounds 200] [--quick] [--out bench/soak]

Part 1, sessions: one store, each session its own process, as a sender's store or a CI
cache lives: pulls of new versions of an image (from OCI layouts; the base is a directory of
this machine, /usr/sbin by default, or a small synthetic tree with --quick), `rm` of the oldest image once
more than --keep are stored, an inventory and an `export --since` every ten sessions, `gc`
every --gc-every, and every --kill-every-th pull killed with SIGKILL part-way (then `fsck`
must be clean and the next open must leave no stray file). After every session `booster
--json stats` gives the space figures.

Part 2, rounds: two registries (Debian's docker-registry, deletes enabled), a primary
`serve` beside one and a replica beside the other. Each round pushes a new version to the
primary's registry, deletes the oldest tag once more than --keep are there, and runs the
replica's POST /sync; every --gc-every rounds POST /cleanup (temp files, then gc) on both.
Per round the replica's GET /space and its peak RSS (VmHWM, reset before each round).

Writes OUT-sessions.csv and OUT-rounds.csv, prints a Markdown summary, and exits 1 when a
goal is missed:
  - after every gc: on disk (logs left out) <= 1.15 x what the store holds;
  - after every killed session: fsck clean, no warning, no unreferenced file;
  - peak RSS flat: the median of the last tenth of the pulls (syncs) within 1.25 x the
    middle tenth's (the first tenth is reported too: caches fill while a store grows, and a
    replica's store grows all along, since it keeps every image it was sent);
  - round time: the median of the last tenth within 1.5 x the first tenth's, times the
    growth of what the store holds between them (a larger store may cost more).
bench/soak-plot.py OUT draws OUT.png from the CSVs.
"""
import argparse
import csv
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RATIO_GOAL = 1.15
RSS_GROWTH = 1.25
TIME_GROWTH = 1.5


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--keep", type=int, default=8)
    p.add_argument("--gc-every", type=int, default=50)
    p.add_argument("--kill-every", type=int, default=37)
    p.add_argument("--quick", action="store_true", help="CI share: small images, 60 sessions, 12 rounds")
    p.add_argument("--out", default=os.path.join(HERE, "soak"))
    p.add_argument("--work", default=None, help="work directory (default: a temporary one)")
    p.add_argument("--booster", default=None)
    p.add_argument("--from-csv", action="store_true", help="run nothing: summarize OUT-*.csv of an earlier run")
    p.add_argument("--base", default="/usr/sbin", help="directory whose files make the image (default /usr/sbin)")
    a = p.parse_args()
    if a.quick:
        a.sessions, a.rounds, a.keep, a.gc_every, a.kill_every = 60, 12, 4, 10, 13
    return a


def build_booster():
    target = os.environ.get("CARGO_TARGET_DIR", "/var/tmp/booster-target")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "booster"], cwd=ROOT, check=True)
    return os.path.join(target, "release", "booster")


# ---- images ---------------------------------------------------------------------------------


class Versions:
    """Version v of a one-layer image: the base tree, three small files edited, and 512 KiB
    of incompressible data of its own (so removing a version leaves real garbage)."""

    def __init__(self, work, quick, base):
        self.dir = os.path.join(work, "versions")
        os.makedirs(self.dir, exist_ok=True)
        self.files = self.synthetic(work) if quick else self.tree(base)
        self.small = [i for i, (_, data, _) in enumerate(self.files) if data is not None and len(data) < 8192]

    @staticmethod
    def tree(top):
        out = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                rel = top.strip("/") + "/" + os.path.relpath(path, top)
                if os.path.islink(path):
                    out.append((rel, None, os.readlink(path)))
                elif os.path.isfile(path):
                    with open(path, "rb") as f:
                        out.append((rel, f.read(), None))
        return out

    @staticmethod
    def synthetic(work):
        rng = random.Random(7)
        words = [b"layer", b"chunk", b"store", b"image", b"the", b"of", b"blob", b"config"]
        out = []
        for i in range(120):
            n = rng.randrange(1000, 30000)
            text = b" ".join(rng.choice(words) for _ in range(n // 5))
            out.append((f"usr/share/doc/pkg{i}/README", text, None))
        for i in range(4):
            out.append((f"usr/lib/lib{i}.so", rng.randbytes(256 << 10), None))
        return out

    def layout(self, v):
        d = os.path.join(self.dir, f"v{v}")
        if os.path.exists(os.path.join(d, "index.json")):
            return d
        edited = {self.small[(v * 37 + k * 101) % len(self.small)] for k in range(3)}
        tar_path = os.path.join(self.dir, f"v{v}.tar")
        with tarfile.open(tar_path, "w", format=tarfile.GNU_FORMAT) as t:
            for i, (name, data, link) in enumerate(self.files):
                info = tarfile.TarInfo(name)
                info.mtime, info.uid, info.gid, info.mode = 0, 0, 0, 0o755
                if link is not None:
                    info.type, info.linkname = tarfile.SYMTYPE, link
                    t.addfile(info)
                    continue
                if i in edited:
                    data = data + f"soak version {v}\n".encode()
                info.size = len(data)
                t.addfile(info, _reader(data))
            data = random.Random(1000 + v).randbytes(512 << 10)
            info = tarfile.TarInfo("opt/soak/data.bin")
            info.mtime, info.size = 0, len(data)
            t.addfile(info, _reader(data))
        gz = tar_path + ".gz"
        with open(gz, "wb") as out:
            subprocess.run(["gzip", "-6", "-n", "-c", tar_path], stdout=out, check=True)
        subprocess.run([sys.executable, os.path.join(HERE, "one-layer-layout.py"), d, gz, "gzip", tar_path], check=True)
        os.remove(tar_path)
        return d


def _reader(data):
    import io

    return io.BytesIO(data)


# ---- processes ------------------------------------------------------------------------------


def run(cmd, kill_after=None, log=None):
    """Run cmd; SIGKILL it after kill_after seconds. Returns (exit code, seconds, peak RSS KiB)."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)
    deadline = None if kill_after is None else start + kill_after
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG if deadline else 0)
        if pid:
            break
        if time.monotonic() >= deadline:
            p.send_signal(signal.SIGKILL)
            deadline = None
        else:
            time.sleep(0.005)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, time.monotonic() - start, usage.ru_maxrss


def row(n, kind, secs, rss, space, images, fsck_clean):
    """One CSV row: the round, what it did, and the store's space report after it."""
    usage = space["usage"]
    return {
        "round": n,
        "kind": kind,
        "seconds": round(secs, 3),
        "peak_rss_kib": rss,
        "disk_bytes": usage["disk_bytes"],
        "data_bytes": usage["disk_bytes"] - usage["log_bytes"],
        "held_bytes": space["held_bytes"],
        "ratio": round(space["ratio"], 4),
        "images": images,
        "fsck_clean": fsck_clean,
    }


def booster_json(b, store, args):
    out = subprocess.run([b, "--store", store, "--json", *args], capture_output=True, text=True)
    if out.returncode not in (0, 2):
        raise SystemExit(f"booster {' '.join(args)} failed: {out.stderr}")
    return out.returncode, json.loads(out.stdout)


# ---- part 1: sessions -------------------------------------------------------------------------


def sessions(a, b, work, versions, log):
    store = os.path.join(work, "store")
    rows, problems = [], []
    stored, next_v = [], 1
    inventory = os.path.join(work, "inventory.bin")
    typical_pull = None
    pulls = 0
    for i in range(1, a.sessions + 1):
        kind, kill_after = None, None
        if i % a.gc_every == 0:
            kind, args = "gc", ["gc"]
        elif i % 10 == 5:
            kind, args = "inventory", ["inventory", "-o", inventory]
        elif i % 10 == 7 and os.path.exists(inventory) and stored:
            kind, args = "export", ["export", "--level", "3", "--since", inventory, "-o", os.path.join(work, "b.bkp"), stored[-1]]
        elif len(stored) > a.keep:
            kind, args = "rm", ["rm", stored.pop(0)]
        else:
            ref = f"oci:{versions.layout(next_v)}:t"
            pulls += 1
            kind, args = "pull", ["pull", "--jobs", "1", ref]
            if pulls % a.kill_every == 0 and typical_pull:
                kind = "pull-killed"
                kill_after = random.Random(i).uniform(0.05, typical_pull)
        code, secs, rss = run([b, "--store", store, "-q", *args], kill_after, log)
        if kind == "pull":
            if code != 0:
                problems.append(f"session {i}: pull failed ({code})")
            stored.append(args[-1])
            next_v += 1
            typical_pull = secs if typical_pull is None else 0.8 * typical_pull + 0.2 * secs
        elif kind != "pull-killed" and code != 0:
            problems.append(f"session {i}: {kind} failed ({code})")
        fsck_ok = ""
        if kind == "pull-killed":
            fcode, f = booster_json(b, store, ["fsck"])
            fsck_ok = fcode == 0 and not f["warnings"]
            if not fsck_ok:
                problems.append(f"session {i}: fsck after the kill: {f['problems']} {f['warnings']}")
        _, s = booster_json(b, store, ["stats"])
        sp = s["space"]
        if sp["usage"]["unreferenced_bytes"] != 0:
            problems.append(f"session {i} ({kind}): {sp['usage']['unreferenced_bytes']} unreferenced bytes after the next open")
        if kind == "gc" and sp["ratio"] > RATIO_GOAL:
            problems.append(f"session {i}: after gc the ratio is {sp['ratio']:.3f}")
        rows.append(row(i, kind, secs, rss, sp, s["images"], fsck_ok))
        if i % 50 == 0 or i == a.sessions:
            print(f"  session {i}/{a.sessions}: {kind} {secs:.2f} s, ratio {sp['ratio']:.3f}", file=sys.stderr)
    return rows, problems


# ---- part 2: a replica's /sync rounds --------------------------------------------------------


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url, token=None, tries=200):
    for _ in range(tries):
        try:
            http("GET", url, token)
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def http(method, url, token=None, headers=None, timeout=3600):
    req = urllib.request.Request(url, method=method, headers=dict(headers or {}))
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.headers, r.read()


def registry(work, name, procs):
    port = free_port()
    root = os.path.join(work, name)
    conf = os.path.join(work, f"{name}.yml")
    with open(conf, "w") as f:
        f.write(
            "version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\n"
            f"storage: {{filesystem: {{rootdirectory: {root}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: 127.0.0.1:{port}}}\n"
        )
    procs.append(subprocess.Popen(["docker-registry", "serve", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_http(f"http://127.0.0.1:{port}/v2/")
    return f"127.0.0.1:{port}"


def serve(b, store, reg, token_file, extra, procs, log):
    port = free_port()
    cmd = [b, "--store", store, "serve", "--registry", reg, "--listen", f"127.0.0.1:{port}", "--token-file", token_file, *extra]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    procs.append(p)
    wait_http(f"http://127.0.0.1:{port}/healthz")
    return p, f"http://127.0.0.1:{port}"


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def reset_hwm(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def delete_tag(reg, repo, tag):
    accept = "application/vnd.oci.image.manifest.v1+json"
    _, headers, _ = http("HEAD", f"http://{reg}/v2/{repo}/manifests/{tag}", headers={"Accept": accept})
    http("DELETE", f"http://{reg}/v2/{repo}/manifests/{headers['Docker-Content-Digest']}")


def rounds(a, b, work, versions, log):
    procs, rows, problems = [], [], []
    try:
        token = "soak-" + os.urandom(16).hex()
        token_file = os.path.join(work, "token")
        with open(token_file, "w") as f:
            f.write(token + "\n")
        preg, rreg = registry(work, "primary-registry", procs), registry(work, "replica-registry", procs)
        _, purl = serve(b, os.path.join(work, "primary"), preg, token_file, [], procs, log)
        replica, rurl = serve(
            b, os.path.join(work, "replica"), rreg, token_file, ["--primary", purl, "--allow-unsigned"], procs, log
        )
        tags = []
        for r in range(1, a.rounds + 1):
            layout = versions.layout(10_000 + r)
            subprocess.run(
                ["skopeo", "copy", "-q", "--insecure-policy", "--dest-tls-verify=false", f"oci:{layout}:t", f"docker://{preg}/soak/app:{r}"],
                check=True,
            )
            tags.append(r)
            if len(tags) > a.keep:
                delete_tag(preg, "soak/app", tags.pop(0))
            reset_hwm(replica.pid)
            start = time.monotonic()
            try:
                status, _, body = http("POST", f"{rurl}/sync", token)
                ok = status == 200
            except Exception as e:  # an HTTP error is a failed round, recorded
                ok, body = False, str(e).encode()
            secs = time.monotonic() - start
            if not ok:
                problems.append(f"round {r}: /sync failed: {body[:300]!r}")
            kind = "sync"
            if r % a.gc_every == 0:
                for url in (rurl, purl):
                    _, _, cleanup = http("POST", f"{url}/cleanup", token)
                ratio = json.loads(cleanup)["gc"]["space"]["ratio"]
                kind = "sync+cleanup"
            rss = vm_hwm_kib(replica.pid)
            _, _, space = http("GET", f"{rurl}/space", token)
            sp = json.loads(space)
            if kind == "sync+cleanup" and sp["ratio"] > RATIO_GOAL:
                problems.append(f"round {r}: after /cleanup the replica's ratio is {sp['ratio']:.3f}")
            rows.append(row(r, kind, secs, rss, sp, len(tags), ""))  # images: the primary's tags
            if r % 25 == 0 or r == a.rounds:
                print(f"  round {r}/{a.rounds}: {secs:.2f} s, ratio {sp['ratio']:.3f}", file=sys.stderr)
        # A clean stop: SIGTERM, exit 0, and the store opens without a warning.
        for p in procs[2:]:
            p.send_signal(signal.SIGTERM)
            if p.wait(timeout=120) != 0:
                problems.append(f"serve exited {p.returncode} on SIGTERM")
        for store in ("primary", "replica"):
            code, f = booster_json(b, os.path.join(work, store), ["fsck"])
            if code != 0 or f["warnings"]:
                problems.append(f"{store} after SIGTERM: {f['problems']} {f['warnings']}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return rows, problems


# ---- summary ---------------------------------------------------------------------------------


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0.0


def trend(rows, kinds):
    """(first, middle, last tenth) medians of seconds, peak RSS and held bytes over `kinds`."""
    sel = [r for r in rows if r["kind"] in kinds]
    n = max(1, len(sel) // 10)
    mid = max(0, len(sel) // 2 - n // 2)
    first, middle, last = sel[:n], sel[mid : mid + n], sel[-n:]
    f = lambda rs, k: median([float(r[k]) for r in rs])
    return {k: (f(first, k), f(middle, k), f(last, k)) for k in ("seconds", "peak_rss_kib", "held_bytes")}


def summarize(name, rows, kinds, problems):
    t = trend(rows, kinds)
    (s0, _, s1), (m0, mm, m1), (h0, _, h1) = t["seconds"], t["peak_rss_kib"], t["held_bytes"]
    gcs = [r for r in rows if "gc" in r["kind"] or "cleanup" in r["kind"]]
    worst_gc = max((r["ratio"] for r in gcs), default=float("nan"))
    worst = max(r["ratio"] for r in rows)
    growth = max(1.0, h1 / h0) if h0 else 1.0
    if m1 > RSS_GROWTH * mm:
        problems.append(f"{name}: peak RSS grew from {mm / 1024:.0f} to {m1 / 1024:.0f} MiB in the second half")
    if s1 > TIME_GROWTH * s0 * growth:
        problems.append(f"{name}: round time grew from {s0:.2f} to {s1:.2f} s (store {growth:.2f}x)")
    killed = [r for r in rows if r["kind"] == "pull-killed"]
    return (
        f"| {name} | {len(rows)} | {len(gcs)} | {len(killed)} | {worst_gc:.3f} | {worst:.3f} | "
        f"{rows[-1]['disk_bytes'] / 1e6:.1f} / {rows[-1]['held_bytes'] / 1e6:.1f} MB | "
        f"{s0:.2f} → {s1:.2f} s (store {growth:.2f}×) | {m0 / 1024:.0f} → {mm / 1024:.0f} → {m1 / 1024:.0f} MiB |"
    )


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def read_csv(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("peak_rss_kib", "disk_bytes", "data_bytes", "held_bytes"):
            r[k] = int(r[k])
        r["ratio"] = float(r["ratio"])
    return rows


def print_table(table, problems):
    print(
        "| part | rounds | gcs | killed | worst ratio after gc | worst ratio | at the end: on disk / held "
        "| round time, first → last tenth (median) | peak RSS, first → middle → last tenth |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for line in table:
        print(line)
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)


def main():
    a = parse()
    if a.from_csv:
        problems, table = [], []
        for part, kinds, name in (("sessions", ("pull",), "sessions"), ("rounds", ("sync", "sync+cleanup"), "replica /sync")):
            if os.path.exists(f"{a.out}-{part}.csv"):
                table.append(summarize(name, read_csv(f"{a.out}-{part}.csv"), kinds, problems))
        print_table(table, problems)
        sys.exit(1 if problems else 0)
    b = a.booster or build_booster()
    work = a.work or tempfile.mkdtemp(prefix="booster-soak.")
    os.makedirs(work, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    versions = Versions(work, a.quick, a.base)
    problems = []
    table = []
    with open(os.path.join(work, "booster.log"), "ab") as log:
        if a.sessions:
            print(f"sessions: {a.sessions} into one store ({work}/store)", file=sys.stderr)
            rows, p = sessions(a, b, work, versions, log)
            problems += p
            write_csv(a.out + "-sessions.csv", rows)
            table.append(summarize("sessions", rows, ("pull",), problems))
        if a.rounds:
            print(f"rounds: {a.rounds} /sync of a replica", file=sys.stderr)
            rows, p = rounds(a, b, work, versions, log)
            problems += p
            write_csv(a.out + "-rounds.csv", rows)
            table.append(summarize("replica /sync", rows, ("sync", "sync+cleanup"), problems))
    print_table(table, problems)
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
