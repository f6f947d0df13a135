"""Draws workers up over time from a series written by `hearth trace plot` (traces/plot.cpp).

usage: plot_trace.py SERIES_CSV OUT_PNG TITLE
SERIES_CSV: header time_s,all,<gpu type>...; each row holds from its time until the next row.
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(series_path, png_path, title):
    with open(series_path, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    times_s = [float(r[0]) for r in rows]
    columns = {name: [int(r[i]) for r in rows] for i, name in enumerate(header) if i > 0}

    end_s = times_s[-1]
    unit, per_s = ("h", 3600.0) if end_s >= 2 * 3600 else ("min", 60.0) if end_s >= 120 else ("s", 1.0)
    x = [t / per_s for t in times_s]

    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=120)
    types = header[2:]
    ax.step(x, columns["all"], where="post", color="black", linewidth=1.8,
            label="all workers" if len(types) > 1 else f"all workers ({types[0]})")
    if len(types) > 1:
        for name in types:
            ax.step(x, columns[name], where="post", linewidth=1.0, label=name)
    ax.set_xlabel(f"time since trace start ({unit})")
    ax.set_ylabel("workers up (GPUs)")
    ax.set_title(title)
    ax.set_xlim(0, max(x[-1], 1e-9))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    fig.tight_layout()
    try:
        fig.savefig(png_path, format="png")
    except OSError as e:  # a path the checks before could not rule out (a read-only mount)
        print(f"hearth: {png_path}: cannot write: {e.strerror or e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
