#!/usr/bin/python3
"""Draw the store soak's CSVs (bench/store-soak.py) as one PNG:

    bench/soak-plot.py OUT        reads OUT-sessions.csv and OUT-rounds.csv, writes OUT.png

One column per part (sessions of one store; a replica's /sync rounds), three rows: on disk
and what the store holds (MB, gc rounds marked), the round's time (s), the process's peak
RSS (MiB). Needs Debian's python3-matplotlib.
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def main():
    out = sys.argv[1]
    parts = [
        (title, load(path))
        for title, path in (
            ("one store, short sessions", out + "-sessions.csv"),
            ("a replica, /sync rounds", out + "-rounds.csv"),
        )
        if os.path.exists(path)
    ]
    fig, axes = plt.subplots(3, len(parts), figsize=(7 * len(parts), 9), squeeze=False, sharex="col")
    for col, (title, rows) in enumerate(parts):
        x = [int(r["round"]) for r in rows]
        disk = [int(r["data_bytes"]) / 1e6 for r in rows]
        held = [int(r["held_bytes"]) / 1e6 for r in rows]
        gc = [i for i, r in enumerate(rows) if "gc" in r["kind"] or "cleanup" in r["kind"]]
        killed = [i for i, r in enumerate(rows) if r["kind"] == "pull-killed"]
        ax = axes[0][col]
        ax.plot(x, disk, label="on disk (logs left out)", lw=1)
        ax.plot(x, held, label="held", lw=1)
        ax.plot(x, [h * 1.15 for h in held], label="goal after gc: 1.15 × held", lw=0.8, ls="--", color="grey")
        ax.scatter([x[i] for i in gc], [disk[i] for i in gc], s=12, color="green", label="after gc", zorder=3)
        ax.scatter([x[i] for i in killed], [disk[i] for i in killed], s=12, marker="x", color="red", label="killed (SIGKILL)", zorder=3)
        ax.set_ylabel("MB")
        ax.set_title(title)
        ax.legend(fontsize=7)
        ax = axes[1][col]
        for kind in sorted({r["kind"] for r in rows}):
            pts = [(int(r["round"]), float(r["seconds"])) for r in rows if r["kind"] == kind]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=4, label=kind)
        ax.set_ylabel("round time (s)")
        ax.legend(fontsize=7, markerscale=2)
        ax = axes[2][col]
        pts = [(int(r["round"]), int(r["peak_rss_kib"]) / 1024) for r in rows if int(r["peak_rss_kib"]) > 0]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=4)
        ax.set_ylabel("peak RSS (MiB)")
        ax.set_xlabel("round")
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(out + ".png", dpi=90)
    print(out + ".png")


if __name__ == "__main__":
    main()
