#!/usr/bin/python3
"""The figures of a hearth experiment (docs/experiments.md).

Reads DIR/results.csv, DIR/experiment.json and DIR/gantt/CELL/timeline.csv; writes
DIR/figures/NAME.png and NAME.svg. `hearth experiment plot DIR` runs it; it also runs alone:

    /usr/bin/python3 experiments/plot.py DIR [--only=makespan_vs_batch,gantt]

A real run's events (`hearth run --events FILE`) are first turned into the same files, then drawn
the same way (the GPU-time breakdown and the Gantt chart of a simulated run):

    /usr/bin/python3 experiments/plot.py --events FILE DIR

Each figure is drawn when the experiment's spec asks for it (its [plots] figures) and its grid
has what the figure needs: several batch sizes, several generated traces (churn), a lower bound,
kept timelines. Axes the figure does not show become panels (at most 12, in spec order); points
are means over seeds, with bars from the smallest to the largest seed.
"""

import csv
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

STATE_COLORS = {
    "computing": "#2ca02c",
    "loading": "#ff7f0e",
    "idle": "#c7c7c7",
    "lost": "#d62728",
}
STATE_LABELS = {
    "computing": "computing",
    "loading": "loading a context",
    "idle": "up, idle",
    "lost": "lost to preemption",
}
MAX_PANELS = 12


def number(text):
    if text in ("", None):
        return None
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text)
    except ValueError:
        return text


def read_rows(path):
    with open(path, newline="") as f:
        rows = [{k: number(v) if k not in ("cell", "trace", "workload", "policy", "placement",
                                          "eviction", "granularity", "status", "error",
                                          "trace_kind") else v
                 for k, v in r.items()} for r in csv.DictReader(f)]
    return [r for r in rows if r["status"] == "done"]


def time_unit(max_s):
    if max_s >= 3 * 3600:
        return 3600.0, "h"
    if max_s >= 180:
        return 60.0, "min"
    return 1.0, "s"


def short_number(v, _=None):
    return f"{v:.0f}" if v >= 10 else f"{v:.2g}"


def mean(values):
    return sum(values) / len(values)


def policy_colors(policies):
    cmap = plt.get_cmap("tab10")
    return {p: cmap(i % 10) for i, p in enumerate(policies)}


def policy_styles(policies):
    """Marker and line style per policy, so that lines lying on each other stay told apart."""
    markers = "os^Dv<>"
    lines = ["-", "--", "-.", ":"]
    return {p: (markers[i % len(markers)], lines[i % len(lines)]) for i, p in enumerate(policies)}


def panels(n, panel_width=5.2):
    if n == 1:
        panel_width = max(panel_width, 8.0)  # room for a two-line title and a legend below
    cols = 1 if panel_width > 8 else min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel_width * cols, 3.9 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def save(fig, out_dir, name, written, layout=True):
    os.makedirs(os.path.join(out_dir, "figures"), exist_ok=True)
    if layout:
        fig.tight_layout()
    for ext in ("png", "svg"):
        path = os.path.join(out_dir, "figures", f"{name}.{ext}")
        fig.savefig(path, dpi=130)
        written.append(path)
    plt.close(fig)


def facet_values(exp, rows, axes):
    """The combinations of `axes` that have rows, in spec order."""
    order = {
        "trace": [t["name"] for t in exp["traces"]],
        "workload": [w["name"] for w in exp["workloads"]],
        "batch_size": [float(b) for b in exp["batch_sizes"]],
    }
    combos = [()]
    for axis in axes:
        combos = [c + (v,) for c in combos for v in order[axis]]
    present = {tuple(r[a] for a in axes) for r in rows}
    return [c for c in combos if c in present]


def facet_title(axes, combo):
    parts = []
    for axis, value in zip(axes, combo):
        parts.append(f"batch {int(value)}" if axis == "batch_size" else str(value))
    return " · ".join(parts)


def varying(exp, axis, rows):
    return len({r[axis] for r in rows}) > 1


def curve(rows, x_key, policy, fixed):
    """Per x: (mean, min, max) of makespan and the mean lower bound, over seeds."""
    points = {}
    for r in rows:
        if r["policy"] != policy or any(r[k] != v for k, v in fixed.items()):
            continue
        points.setdefault(r[x_key], []).append(r)
    out = []
    for x in sorted(points):
        group = points[x]
        spans = [g["makespan_s"] for g in group]
        bounds = [g["lower_bound_s"] for g in group if g["lower_bound_s"] is not None]
        unfinished = any(not g["finished"] for g in group)
        out.append((x, mean(spans), min(spans), max(spans),
                    mean(bounds) if bounds else None, unfinished))
    return out


def line_panels(exp, rows, x_key, facet_axes, x_label, title, name, out_dir, written,
                x_of=None):
    combos = facet_values(exp, rows, facet_axes)[:MAX_PANELS]
    if not combos:
        return
    policies = [p["label"] for p in exp["policies"]]
    colors = policy_colors(policies)
    styles = policy_styles(policies)
    scale, unit = time_unit(max(r["makespan_s"] for r in rows))
    fig, axes = panels(len(combos))
    for ax, combo in zip(axes, combos):
        fixed = dict(zip(facet_axes, combo))
        spread = []
        bound_line = {}
        for policy in policies:
            pts = curve(rows, x_key, policy, fixed)
            if not pts:
                continue
            xs = [x_of(p[0], fixed) if x_of else p[0] for p in pts]
            ys = [p[1] / scale for p in pts]
            err = [[(p[1] - p[2]) / scale for p in pts], [(p[3] - p[1]) / scale for p in pts]]
            marker, line = styles[policy]
            ax.errorbar(xs, ys, yerr=err, marker=marker, ls=line, ms=5, capsize=3,
                        color=colors[policy], label=policy, mfc="none")
            for x, p in zip(xs, pts):
                if p[5]:
                    ax.plot([x], [p[1] / scale], marker="x", ms=10, color="black")
                if p[4] is not None:
                    bound_line.setdefault(x, p[4])
            spread += ys
        if bound_line:
            xs = sorted(bound_line)
            ax.plot(xs, [bound_line[x] / scale for x in xs], ls="--", color="gray",
                    label="lower bound")
            spread += [bound_line[x] / scale for x in xs]
        ax.set_xscale("log")
        ticks = sorted({x for x in bound_line} | {x_of(p[0], fixed) if x_of else p[0]
                                                    for policy in policies
                                                    for p in curve(rows, x_key, policy, fixed)})
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(short_number))
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        if spread and min(spread) > 0 and max(spread) / min(spread) > 20:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel(x_label)
        ax.set_ylabel(f"makespan ({unit})")
        ax.set_title(facet_title(facet_axes, combo), fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    save(fig, out_dir, name, written)


def makespan_vs_batch(exp, rows, out_dir, written):
    facets = [a for a in ("trace", "workload") if varying(exp, a, rows)]
    line_panels(exp, rows, "batch_size", facets, "batch size (inferences per task, log scale)",
                "Makespan vs batch size (mean over seeds; bars: min to max)",
                "makespan_vs_batch", out_dir, written)


def makespan_vs_churn(exp, rows, out_dir, written):
    churn = {}
    for r in rows:
        churn.setdefault(r["trace"], []).append(r["trace_preemptions_per_gpu_hour"])
    # Each trace sits at its measured churn: preemptions per GPU-hour it offers, over seeds.
    for r in rows:
        r["_churn"] = mean(churn[r["trace"]])
    facets = [a for a in ("workload", "batch_size") if varying(exp, a, rows)]
    line_panels(exp, rows, "_churn", facets,
                "churn: preemptions per GPU-hour of the trace (log scale)",
                "Makespan vs churn rate (mean over seeds; bars: min to max)",
                "makespan_vs_churn", out_dir, written)


def ratio_to_bound(exp, rows, out_dir, written):
    rows = [r for r in rows if r["ratio_to_lower_bound"] is not None]
    facets = [a for a in ("workload", "batch_size") if varying(exp, a, rows)]
    combos = facet_values(exp, rows, facets)[:MAX_PANELS]
    if not combos:
        return
    traces = [t["name"] for t in exp["traces"] if any(r["trace"] == t["name"] for r in rows)]
    policies = [p["label"] for p in exp["policies"]]
    colors = policy_colors(policies)
    panel_width = min(12.0, max(5.2, 0.3 * len(traces) * len(policies) + 2))
    fig, axes = panels(len(combos), panel_width)
    width = 0.8 / len(policies)
    for ax, combo in zip(axes, combos):
        fixed = dict(zip(facets, combo))
        values = []
        for i, policy in enumerate(policies):
            heights, lows, highs = [], [], []
            for trace in traces:
                group = [r["ratio_to_lower_bound"] for r in rows
                         if r["policy"] == policy and r["trace"] == trace
                         and all(r[k] == v for k, v in fixed.items())]
                m = mean(group) if group else float("nan")
                heights.append(m)
                lows.append(m - min(group) if group else 0)
                highs.append(max(group) - m if group else 0)
                values += group
            xs = [t + (i - (len(policies) - 1) / 2) * width for t in range(len(traces))]
            ax.bar(xs, heights, width, yerr=[lows, highs], capsize=2, color=colors[policy],
                   label=policy)
        ax.axhline(1.0, color="black", lw=0.8, ls="--", label="lower bound")
        if values and max(values) > 10:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        else:
            ax.set_ylim(0, max(values + [1.0]) * 1.1)
        ax.set_xticks(range(len(traces)))
        ax.set_xticklabels(traces, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("makespan / lower bound")
        ax.set_title(facet_title(facets, combo), fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", fontsize=9, frameon=False,
               ncol=min(len(labels), max(2, int(fig.get_figwidth() / 1.9))))
    fig.suptitle("Makespan as a multiple of the lower bound\n(1.0: no policy can do better; "
                 "mean over seeds, bars: min to max)", fontsize=11)
    fig.tight_layout(rect=(0, 0.5 / fig.get_figheight(), 1, 1))
    save(fig, out_dir, "ratio_to_bound", written, layout=False)


def gpu_seconds(exp, rows, out_dir, written):
    facets = [a for a in ("trace", "workload", "batch_size") if varying(exp, a, rows)]
    combos = facet_values(exp, rows, facets)[:MAX_PANELS]
    if not combos:
        return
    policies = [p["label"] for p in exp["policies"]]
    fig, axes = panels(len(combos))
    order = ("computing", "loading", "lost", "idle")
    for ax, combo in zip(axes, combos):
        fixed = dict(zip(facets, combo))
        shown, totals = [], []
        parts = {s: [] for s in order}
        for policy in policies:
            group = [r for r in rows
                     if r["policy"] == policy and all(r[k] == v for k, v in fixed.items())]
            if not group:
                continue
            shown.append(policy)
            total = mean([g["gpu_seconds_available"] for g in group])
            totals.append(total / 3600)
            for s in order:
                part = mean([g[f"gpu_seconds_{s}"] for g in group])
                parts[s].append(100 * part / total if total > 0 else 0)
        bottoms = [0.0] * len(shown)
        for s in order:
            ax.bar(range(len(shown)), parts[s], bottom=bottoms, color=STATE_COLORS[s],
                   label=STATE_LABELS[s])
            bottoms = [b + v for b, v in zip(bottoms, parts[s])]
        for i, total in enumerate(totals):
            ax.text(i, 101, f"{total:,.0f} GPU-h" if total >= 10 else f"{total:.1f} GPU-h",
                    ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, 112)
        ax.set_xticks(range(len(shown)))
        ax.set_xticklabels(shown, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("share of GPU time held (%)")
        ax.set_title(facet_title(facets, combo), fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.suptitle("Where the GPU time went, per policy\n(mean over seeds; above each bar: GPU-hours "
                 "held until the run ended)", fontsize=11)
    fig.tight_layout(rect=(0, 0.4 / fig.get_figheight(), 1, 1))
    save(fig, out_dir, "gpu_seconds", written, layout=False)


def gantt(exp, rows, out_dir, written):
    for g in exp["gantt"]:
        path = os.path.join(out_dir, "gantt", g["cell"], "timeline.csv")
        if not os.path.exists(path):
            continue
        with open(path, newline="") as f:
            segments = list(csv.DictReader(f))
        if not segments:
            continue
        first_start = {}
        for s in segments:
            w = s["worker"]
            first_start[w] = min(first_start.get(w, float("inf")), float(s["start_s"]))
        workers = sorted(first_start, key=lambda w: (first_start[w], w))
        row_of = {w: i for i, w in enumerate(workers)}
        end = max(float(s["end_s"]) for s in segments)
        scale, unit = time_unit(end)
        bars = {state: {} for state in STATE_COLORS}
        for s in segments:
            start, stop = float(s["start_s"]), float(s["end_s"])
            bars[s["state"]].setdefault(row_of[s["worker"]], []).append(
                (start / scale, (stop - start) / scale))
        height = min(12.0, 2.5 + 0.02 * len(workers))
        fig, ax = plt.subplots(figsize=(11, height))
        for state in ("idle", "loading", "computing", "lost"):
            for row, spans in bars[state].items():
                ax.broken_barh(spans, (row - 0.45, 0.9), color=STATE_COLORS[state],
                               rasterized=True)
            ax.bar([0], [0], color=STATE_COLORS[state], label=STATE_LABELS[state])
        ax.set_ylim(len(workers) - 0.5, -0.5)
        ax.set_xlim(0, end / scale)
        ax.set_xlabel(f"time ({unit})")
        ax.set_ylabel(f"workers ({len(workers)}), by arrival")
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", fontsize=8, ncol=4, frameon=False)
        ax.set_title(f"One run, per worker (blank: not held): {g['policy']} on {g['trace']}, "
                     f"{g['workload']}, batch {g['batch_size']}, seed {g['seed']}", fontsize=10)
        fig.tight_layout(rect=(0, 0.3 / height, 1, 1))
        save(fig, out_dir, f"gantt_{g['cell']}", written, layout=False)


def applicable(exp, rows):
    kinds = {t["kind"] for t in exp["traces"]}
    return {
        "makespan_vs_batch": len(exp["batch_sizes"]) > 1,
        "makespan_vs_churn": len(exp["traces"]) >= 3 and kinds == {"generated"},
        "ratio_to_bound": any(r["ratio_to_lower_bound"] is not None for r in rows),
        "gpu_seconds": True,
        "gantt": bool(exp["gantt"]),
    }


DRAW = {
    "makespan_vs_batch": makespan_vs_batch,
    "makespan_vs_churn": makespan_vs_churn,
    "ratio_to_bound": ratio_to_bound,
    "gpu_seconds": gpu_seconds,
    "gantt": gantt,
}


def from_events(events_path, out_dir):
    """Writes out_dir/experiment.json, results.csv and gantt/real/timeline.csv for a real run.

    A worker is "computing" while it runs a task, "loading" while it stages a context and runs
    none, "idle" otherwise while it is held; time spent on a task or a stage that its worker's
    loss (or a failure, or a cancellation) threw away counts as "lost", as the simulator counts
    work lost to preemption. A worker that is gone holds no GPU: no segment.
    """
    events = []
    with open(events_path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{events_path}:{n}: not a JSON line: {e.msg}")
    if not events or events[0].get("event") != "run_started":
        sys.exit(f"{events_path}: not the events of a hearth run (no run_started first)")
    start = events[0]
    names, held = {}, {}
    # Per worker: [state since, attempts running, stages in flight].
    workers = {}
    segments = []
    totals = {s: 0.0 for s in ("computing", "loading", "idle", "lost")}

    def state_of(w):
        return "computing" if w["attempts"] else "loading" if w["stages"] else "idle"

    def close(wid, t, wasted=False):
        w = workers[wid]
        if t > w["since"]:
            state = state_of(w)
            if wasted and state in ("computing", "loading"):
                state = "lost"
            segments.append((names[wid], state, w["since"], t))
            totals[state] += t - w["since"]
        w["since"] = t

    end_t = events[-1]["t"]
    for e in events[1:]:
        kind, t, wid = e.get("event"), e.get("t", 0.0), e.get("worker")
        if kind == "worker_joined":
            names[wid] = e["name"]
            workers[wid] = {"since": t, "attempts": set(), "stages": set()}
            held[wid] = t
            continue
        if wid not in workers:
            continue
        w = workers[wid]
        if kind == "stage_started":
            close(wid, t)
            w["stages"].add((e["context"], e["tier"]))
        elif kind in ("stage_ready", "stage_failed"):
            close(wid, t, wasted=kind == "stage_failed" and not w["attempts"])
            w["stages"].discard((e["context"], e["tier"]))
        elif kind == "task_started":
            close(wid, t)
            w["attempts"].add(e["attempt"])
        elif kind in ("task_finished", "task_failed", "task_cancelled"):
            close(wid, t, wasted=kind != "task_finished")
            w["attempts"].discard(e["attempt"])
        elif kind in ("worker_lost", "worker_quarantined"):
            close(wid, t, wasted=True)
            del workers[wid]
    for wid in list(workers):
        close(wid, end_t)
    available = sum(totals.values())
    policy = start.get("policy", "real")
    job = os.path.splitext(os.path.basename(start.get("job", "job")))[0]
    os.makedirs(os.path.join(out_dir, "gantt", "real"), exist_ok=True)
    with open(os.path.join(out_dir, "gantt", "real", "timeline.csv"), "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["worker", "state", "start_s", "end_s"])
        for name, state, s0, s1 in segments:
            out.writerow([name, state, f"{s0:.6f}", f"{s1:.6f}"])
    with open(os.path.join(out_dir, "results.csv"), "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["cell", "status", "policy", "trace", "workload", "batch_size", "seed",
                      "makespan_s", "ratio_to_lower_bound", "gpu_seconds_available"] +
                     [f"gpu_seconds_{s}" for s in totals])
        out.writerow(["real", "done", policy, "real run", job, "", "", f"{end_t:.6f}", "",
                      f"{available:.6f}"] + [f"{totals[s]:.6f}" for s in totals])
    experiment = {
        "figures": ["gpu_seconds", "gantt"],
        "traces": [{"name": "real run", "kind": "real"}],
        "workloads": [{"name": job}],
        "batch_sizes": [],
        "policies": [{"label": policy}],
        "gantt": [{"cell": "real", "policy": policy, "trace": "a real run", "workload": job,
                   "batch_size": "-", "seed": "-"}],
    }
    with open(os.path.join(out_dir, "experiment.json"), "w") as f:
        json.dump(experiment, f, indent=1)


def main(argv):
    if len(argv) == 4 and argv[1] == "--events":
        from_events(argv[2], argv[3])
        argv = [argv[0], argv[3]]
    if len(argv) < 2 or len(argv) > 3:
        sys.exit("usage: plot.py DIR [--only=FIGURE,...]")
    out_dir = argv[1]
    only = None
    if len(argv) == 3:
        if not argv[2].startswith("--only="):
            sys.exit(f"unknown argument {argv[2]}")
        only = argv[2][len("--only="):].split(",")
    with open(os.path.join(out_dir, "experiment.json")) as f:
        exp = json.load(f)
    rows = read_rows(os.path.join(out_dir, "results.csv"))
    if not rows:
        sys.exit(f"{out_dir}/results.csv: no finished cell to plot")
    allowed = applicable(exp, rows)
    wanted = [f for f in exp["figures"] if allowed[f] and (only is None or f in only)]
    # Earlier figures of this experiment may be stale: start from an empty folder.
    figures_dir = os.path.join(out_dir, "figures")
    if os.path.isdir(figures_dir):
        for name in os.listdir(figures_dir):
            if only is None or any(name.startswith(f) for f in only):
                os.remove(os.path.join(figures_dir, name))
    written = []
    for figure in wanted:
        DRAW[figure](exp, [dict(r) for r in rows], out_dir, written)


if __name__ == "__main__":
    main(sys.argv)
