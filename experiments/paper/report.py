#!/usr/bin/python3
"""Writes experiments/paper/REPORT.md from the results ./reproduce made.

    /usr/bin/python3 experiments/paper/report.py experiments/paper [--elapsed-s S] [--jobs N]

Every number in the report is computed here from results/*/results.csv (means over seeds); the
paper's numbers are the constants below, each with where it comes from. Nothing is typed in by
hand, so rerunning ./reproduce after a change to the simulator or the policies rewrites the
report with the new numbers, the comparisons with them, and the verdicts (wins, losses, gaps).
"""

import argparse
import csv
import os
import platform
import statistics
import subprocess
from collections import defaultdict

# The papers' numbers (see "Sources" at the end of the report).
PAPER = {
    "naive_opportunistic_s": 11.4 * 3600,
    "pcm_opportunistic_s": 13.1 * 60,
    "opportunistic_reduction": 0.981,
    "naive_static_s": 3 * 3600,
    "pcm_static_s": 48 * 60,
    "static_reduction": 0.721,
    "scale_out_s": 13 * 60,
    "scale_out_gpus": 186,
    "pool_gpus": 567,
}
HEADLINE_BATCH = 100
HEADLINE_STATIC = "static-50"
SPECS = ["opportunistic", "warm", "static", "churn", "beyond"]


def as_number(text):
    try:
        return float(text)
    except ValueError:
        return text


def load(root, spec):
    path = os.path.join(root, "results", spec, "results.csv")
    with open(path, newline="") as f:
        rows = [{k: as_number(v) for k, v in r.items()} for r in csv.DictReader(f)]
    failed = [r for r in rows if r["status"] != "done"]
    if failed:
        raise SystemExit(f"{path}: {len(failed)} cells failed (first: {failed[0]['cell']}: "
                         f"{failed[0]['error']}); rerun ./reproduce --resume")
    return rows


def group(rows, *keys):
    out = defaultdict(list)
    for r in rows:
        out[tuple(r[k] for k in keys)].append(r)
    return out


def distinct(rows, field):
    """The values of `field` in `rows`, each once, in the order they first appear."""
    return list(dict.fromkeys(r[field] for r in rows))


def mean(rows, field):
    return statistics.mean(r[field] for r in rows)


def span(rows, field):
    values = [r[field] for r in rows]
    return min(values), max(values)


def t(seconds):
    """A duration the way a person reads it."""
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def pct(x):
    return f"{100 * x:.1f}%"


def signed_pct(x):
    return f"{100 * x:+.1f}%"


def figure(root, spec, name, alt):
    path = os.path.join("results", spec, "figures", f"{name}.png")
    if not os.path.exists(os.path.join(root, path)):
        return f"*(figure {path} missing: run ./reproduce)*\n"
    return f"![{alt}]({path})\n"


def gantt_name(root, spec, policy_key):
    folder = os.path.join(root, "results", spec, "figures")
    for name in sorted(os.listdir(folder)):
        if name.startswith("gantt_") and policy_key in name and name.endswith(".png"):
            return name[:-4]
    return "gantt_missing"


def machine():
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores of an {model}"


def section_opportunistic(root, rows, out):
    by = group(rows, "policy", "batch_size")
    batches = sorted({r["batch_size"] for r in rows})
    naive = {b: mean(by[("naive", b)], "makespan_s") for b in batches}
    pcm = {b: mean(by[("pcm", b)], "makespan_s") for b in batches}
    adaptive = {b: mean(by[("adaptive", b)], "makespan_s") for b in batches}
    b = HEADLINE_BATCH
    ours = 1 - pcm[b] / naive[b]
    out.append("## 1. Opportunistic GPUs: pervasive context management vs the naive approach\n")
    out.append(
        "The campus pool (567 GPUs of six kinds, at most 186 held, evictions without notice), "
        "1,000,000 inferences of a 6.4 GB context (SmolLM2-1.7B weights and the software "
        "environment), three seeds of churn. `naive` loads the context from shared storage for "
        "every task and drops it; `pcm` keeps it and seeds new GPUs from peers "
        "(docs/policies.md).\n")
    out.append("| | paper | ours (batch 100, mean of 3 seeds) |\n|---|---:|---:|")
    out.append(f"| naive | {t(PAPER['naive_opportunistic_s'])} | {t(naive[b])} |")
    out.append(f"| pcm | {t(PAPER['pcm_opportunistic_s'])} | {t(pcm[b])} |")
    out.append(f"| reduction | **{pct(PAPER['opportunistic_reduction'])}** | **{pct(ours)}** |")
    out.append(f"| our adaptive | | {t(adaptive[b])} ({pct(1 - adaptive[b] / naive[b])} below "
               "naive) |\n")
    out.append("The reduction depends on the batch size, which the paper's summary we could read "
               "does not state for this result; every batch size we ran:\n")
    out.append("| batch | naive | pcm | adaptive | pcm vs naive | adaptive vs pcm |")
    out.append("|---:|---:|---:|---:|---:|---:|")
    for x in batches:
        out.append(f"| {int(x)} | {t(naive[x])} | {t(pcm[x])} | {t(adaptive[x])} | "
                   f"{pct(1 - pcm[x] / naive[x])} lower | "
                   f"{signed_pct(adaptive[x] / pcm[x] - 1)} |")
    matching = [x for x in batches if 1 - pcm[x] / naive[x] >= PAPER["opportunistic_reduction"]]
    out.append("")
    out.append(
        f"**Where ours differs.** At batch 100 our reduction is {pct(ours)} against the paper's "
        f"{pct(PAPER['opportunistic_reduction'])}; ours reaches the paper's at batch sizes "
        f"{', '.join(str(int(x)) for x in matching) or 'none we ran'}. Both ends differ: our "
        f"naive run takes {t(naive[b])} (paper {t(PAPER['naive_opportunistic_s'])}) and our pcm "
        f"run {t(pcm[b])} (paper {t(PAPER['pcm_opportunistic_s'])}). A naive run is about "
        "tasks x (load + compute) / GPUs, so its length is set by our guessed load and inference "
        "costs and by the batch size, none of which the paper gives us; pcm's is set by how "
        "fast the pool fills (section 3).\n")
    out.append(figure(root, "opportunistic", "gantt_" + next(
        (r["cell"] for r in rows if r["policy"] == "naive" and r["batch_size"] == b
         and r["seed"] == 1), ""), "naive Gantt chart"))
    out.append(figure(root, "opportunistic", "gantt_" + next(
        (r["cell"] for r in rows if r["policy"] == "pcm" and r["batch_size"] == b
         and r["seed"] == 1), ""), "pcm Gantt chart"))
    out.append(figure(root, "opportunistic", "gpu_seconds", "GPU time breakdown"))
    return {"ours": ours, "naive": naive, "pcm": pcm, "adaptive": adaptive}


def section_static(root, rows, out):
    by = group(rows, "trace", "policy")
    traces = [tr for tr in ["static-20", "static-50", "static-100"] if (tr, "pcm") in by]
    out.append("## 2. The same static GPUs with and without context reuse\n")
    out.append(
        "N GPUs of the campus mix, up from the start to the end, never preempted; batch 100. "
        "The paper does not say how many GPUs its static run used (ASSUMPTIONS.md); N = 50 is "
        "the row set beside the paper's, 20 and 100 show how the gap moves with N.\n")
    out.append("| | naive | pcm | reduction | adaptive | lower bound |")
    out.append("|---|---:|---:|---:|---:|---:|")
    out.append(f"| paper | {t(PAPER['naive_static_s'])} | {t(PAPER['pcm_static_s'])} | "
               f"**{pct(PAPER['static_reduction'])}** | | |")
    result = {}
    for tr in traces:
        n, p, a = (mean(by[(tr, x)], "makespan_s") for x in ("naive", "pcm", "adaptive"))
        bound = mean(by[(tr, "pcm")], "lower_bound_s")
        result[tr] = 1 - p / n
        bold = "**" if tr == HEADLINE_STATIC else ""
        out.append(f"| ours, {tr.replace('static-', 'N = ')} | {t(n)} | {t(p)} | "
                   f"{bold}{pct(1 - p / n)}{bold} | {t(a)} | {t(bound)} |")
    out.append("")
    h = by[(HEADLINE_STATIC, "naive")][0]
    loads = h["context_loads_shared_storage"] + h["context_loads_peer"]
    ours_ratio = h["gpu_seconds_loading"] / h["gpu_seconds_computing"]
    implied = PAPER["naive_static_s"] / PAPER["pcm_static_s"] - 1
    out.append(
        f"**Where ours differs.** Our gap is wider: {pct(result.get(HEADLINE_STATIC, 0))} against "
        f"{pct(PAPER['static_reduction'])}. With N = 50 a naive load took "
        f"{t(h['gpu_seconds_loading'] / loads)} on average (all 50 GPUs read the 6.4 GB context "
        "from shared storage at once, and pay 45 s of set-up each time) against "
        f"{t(h['gpu_seconds_computing'] / h['tasks_done'])} of computing per 100-inference task: "
        f"our naive tasks load {ours_ratio:.0f}x as long as they compute. The paper's 3 h against "
        f"48 min says its naive tasks loaded about {implied:.1f}x as long as they computed: its "
        "tasks computed far longer per load than ours (bigger batches, longer prompts or "
        "outputs, or slower inference than our guessed costs), or loaded faster. We did not "
        "tune those inputs to close the gap.\n")
    versus = {tr: mean(by[(tr, "adaptive")], "makespan_s") / mean(by[(tr, "pcm")], "makespan_s")
              - 1 for tr in traces}
    text = "Our adaptive against pcm on the same static pools: " + ", ".join(
        f"{tr.replace('static-', 'N = ')} {signed_pct(v)}" for tr, v in versus.items()) + "."
    for tr, v in versus.items():
        if v > 0.005:
            a, p = by[(tr, "adaptive")][0], by[(tr, "pcm")][0]
            text += (
                f" With {tr.replace('static-', 'N = ')} adaptive is slower: its shared-storage "
                f"throttle let {a['context_loads_shared_storage']:.0f} GPUs read shared storage "
                f"and made {a['context_loads_peer']:.0f} wait for a peer's copy, where pcm sent "
                f"all {p['context_loads_shared_storage']:.0f} to shared storage at once, which on "
                "this pool was the faster choice.")
    out.append(text + "\n")
    out.append(figure(root, "static", "gpu_seconds", "GPU time breakdown, static pools"))
    return result, versus


def section_scale_out(root, opp, warm, out):
    out.append("## 3. Scaling out to ~186 opportunistic GPUs\n")
    cold_pcm = [r for r in opp if r["policy"] == "pcm" and r["batch_size"] == HEADLINE_BATCH]
    cold_ad = [r for r in opp if r["policy"] == "adaptive" and r["batch_size"] == HEADLINE_BATCH]
    warm_pcm = [r for r in warm if r["policy"] == "pcm"]
    warm_ad = [r for r in warm if r["policy"] == "adaptive"]
    out.append("| | makespan (mean; min to max over seeds) | lower bound | GPUs held at most |")
    out.append("|---|---:|---:|---:|")
    out.append(f"| paper | about {t(PAPER['scale_out_s'])} | | {PAPER['scale_out_gpus']} of "
               f"{PAPER['pool_gpus']} |")
    for label, rows in [("ours, pcm, pool filling from empty", cold_pcm),
                        ("ours, adaptive, pool filling from empty", cold_ad),
                        ("ours, pcm, 186 GPUs held at the start", warm_pcm),
                        ("ours, adaptive, 186 GPUs held at the start", warm_ad)]:
        lo, hi = span(rows, "makespan_s")
        out.append(f"| {label} | {t(mean(rows, 'makespan_s'))} ({t(lo)} to {t(hi)}) | "
                   f"{t(mean(rows, 'lower_bound_s'))} | {int(max(r['trace_peak_up'] for r in rows))} |")
    out.append("")
    cold_bound = mean(cold_pcm, "lower_bound_s")
    warm_span = mean(warm_pcm, "makespan_s")
    paper = PAPER["scale_out_s"]
    text = ("**Where ours differs.** The campus preset's pool starts empty and gains about three "
            f"GPUs a minute (ASSUMPTIONS.md); on it no policy can finish before {t(cold_bound)} "
            "(the lower bound, set by when GPUs arrive)")
    text += (", already above the paper's 13 minutes. " if cold_bound > paper else
             ", below the paper's 13 minutes. ")
    text += (f"With all 186 GPUs held from the start the bound drops to "
             f"{t(mean(warm_pcm, 'lower_bound_s'))} and pcm takes {t(warm_span)}"
             + (", still above the paper's 13 minutes" if warm_span > paper else "") + ": "
             "186 GPUs reading 6.4 GB each from one shared filesystem of 2.5 GB/s at once is "
             "pcm's bottleneck (loads from shared storage: "
             f"{mean(warm_pcm, 'context_loads_shared_storage'):.0f} per run, the first "
             f"{186 * 6.4 / 2.5 / 60:.1f} minutes of reading alone). Our adaptive placement "
             "throttles that in favour of peer copies "
             f"({mean(warm_ad, 'context_loads_shared_storage'):.0f} from shared storage, "
             f"{mean(warm_ad, 'context_loads_peer'):.0f} from peers) and takes "
             f"{t(mean(warm_ad, 'makespan_s'))}. So the paper's 13 minutes needs both a pool "
             "that fills faster than the preset assumes and a start-up storm that costs less "
             "than ours: a faster shared filesystem than our 2.5 GB/s guess, or a smaller "
             "context than our 6.4 GB. The summary we could read states neither.\n")
    out.append(text)
    out.append(figure(root, "warm", gantt_name(root, "warm", "pcm-lru-fixed"),
                      "pcm on a warm pool, Gantt chart"))


def section_batch(root, res, out):
    out.append("## 4. Batch-size sensitivity\n")
    spreads = {}
    for policy in ("naive", "pcm", "adaptive"):
        values = res[policy]
        lo_b = min(values, key=values.get)
        hi_b = max(values, key=values.get)
        spreads[policy] = (values[hi_b] / values[lo_b], lo_b, hi_b, values)
    out.append("The paper finds execution time stable across batch sizes with context reuse. "
               "Ours, batch 10 to 1000 (mean of 3 seeds):\n")
    out.append("| policy | fastest | slowest | spread (slowest / fastest) |")
    out.append("|---|---:|---:|---:|")
    for policy, (ratio, lo_b, hi_b, values) in spreads.items():
        out.append(f"| {policy} | {t(values[lo_b])} (batch {int(lo_b)}) | {t(values[hi_b])} "
                   f"(batch {int(hi_b)}) | **{ratio:.2f}x** |")
    out.append("")
    pcm_values = spreads["pcm"][3]
    tail = {b: v for b, v in pcm_values.items() if b >= 25}
    tail_spread = max(tail.values()) / min(tail.values())
    agrees = spreads["naive"][0] > 10 and tail_spread < 1.25
    out.append(
        f"**{'Agrees with' if agrees else 'Differs from'} the paper.** Under naive the makespan "
        f"moves {spreads['naive'][0]:.0f}x "
        f"across batch sizes; under pcm {spreads['pcm'][0]:.2f}x, and {tail_spread:.2f}x from "
        "batch 25 up. Small batches still cost pcm something: each task pays the per-batch "
        "overhead of the cluster description (0.5 to 1.2 s), and a task lost to a preemption "
        "is requeued whole.\n")
    out.append(figure(root, "opportunistic", "makespan_vs_batch", "makespan vs batch size"))
    return spreads


def section_churn(root, rows, out):
    out.append("### Churn\n")
    out.append(
        "The campus pool with its 186 slots full at the start and refilled within seconds of "
        "each loss, but workers living an exponential time of mean 10 to 320 minutes; batch "
        "100, 3 seeds. x: preemptions per GPU-hour measured on each trace.\n")
    by = group(rows, "trace", "policy")
    traces = distinct(rows, "trace")
    policies = distinct(rows, "policy")
    out.append("| trace | churn (per GPU-h) | " +
               " | ".join(f"{p} (x bound)" for p in policies) + " | adaptive vs pcm |")
    out.append("|---|---:|" + "---:|" * len(policies) + "---:|")
    wins = []
    for tr in traces:
        cells = []
        for p in policies:
            cells.append(f"{t(mean(by[(tr, p)], 'makespan_s'))} "
                         f"({mean(by[(tr, p)], 'ratio_to_lower_bound'):.2f})")
        gain = mean(by[(tr, "adaptive")], "makespan_s") / mean(by[(tr, "pcm")], "makespan_s") - 1
        wins.append(gain)
        out.append(f"| {tr} | {mean(by[(tr, 'pcm')], 'trace_preemptions_per_gpu_hour'):.2f} | " +
                   " | ".join(cells) + f" | **{signed_pct(gain)}** |")
    out.append("")
    placement_only = [mean(by[(tr, "adaptive/lru/fixed")], "makespan_s") /
                      mean(by[(tr, "pcm")], "makespan_s") - 1 for tr in traces]
    granularity_only = [mean(by[(tr, "pcm/lru/adaptive")], "makespan_s") /
                        mean(by[(tr, "pcm")], "makespan_s") - 1 for tr in traces]
    out.append(
        f"adaptive is {signed_pct(min(wins))} to {signed_pct(max(wins))} against pcm across "
        f"churn rates. Placement alone (adaptive/lru/fixed) gives {signed_pct(min(placement_only))}"
        f" to {signed_pct(max(placement_only))}; adaptive granularity alone (pcm/lru/adaptive) "
        f"{signed_pct(min(granularity_only))} to {signed_pct(max(granularity_only))}: the gain "
        "is the placement's. " + " ".join(
            f"On {tr} pcm loads from shared storage {mean(by[(tr, 'pcm')], 'context_loads_shared_storage'):.0f} "
            f"times per run and requeues {mean(by[(tr, 'pcm')], 'tasks_requeued'):.0f} tasks; "
            f"adaptive {mean(by[(tr, 'adaptive')], 'context_loads_shared_storage'):.0f} and "
            f"{mean(by[(tr, 'adaptive')], 'tasks_requeued'):.0f}." for tr in (traces[0], traces[-1]))
        + " pcm sends every empty GPU of the full pool to shared storage at the start, and "
        "every replacement to a load, with a task bound to it; adaptive starts a load only "
        "where it shortens the run and throttles shared storage in favour of peers.")
    worst = by[(traces[0], "pcm")]
    lost = mean(worst, "gpu_seconds_lost")
    out.append(
        f" Adaptive granularity changes little: at the highest churn pcm loses "
        f"{pct(lost / mean(worst, 'gpu_seconds_available'))} of its GPU time to preemptions, "
        "but at most "
        f"{pct(mean(worst, 'tasks_requeued') * 11 / lost)} of that can be tasks cut short "
        "(tasks requeued x 11 s, the longest task of 100 here); the rest is loads cut short, "
        "which smaller tasks do not save.\n")
    out.append(figure(root, "churn", "makespan_vs_churn", "makespan vs churn rate"))
    return wins


def section_shipped(root, rows, out):
    out.append("### Every shipped trace, one model and eight models\n")
    out.append(
        "Batch 100, one run each (file traces hold nothing random). `one-model`: 250,000 "
        "inferences of the paper's context. `eight-models`: the same 250,000 spread unevenly "
        "over eight small models of 2.5 to 7.6 GB (ASSUMPTIONS.md), so GPUs of 12 to 24 GB "
        "hold two or three at once and must evict to switch.\n")
    by = group(rows, "trace", "workload", "policy")
    traces = distinct(rows, "trace")
    workloads = distinct(rows, "workload")
    policies = distinct(rows, "policy")
    verdicts = {}
    for w in workloads:
        out.append(f"**{w}** (makespan, and in brackets its ratio to the lower bound)\n")
        out.append("| trace | " + " | ".join(policies) + " | adaptive vs pcm |")
        out.append("|---|" + "---:|" * len(policies) + "---:|")
        gains = []
        for tr in traces:
            cells = []
            for p in policies:
                r = by[(tr, w, p)][0]
                cells.append(f"{t(r['makespan_s'])} ({r['ratio_to_lower_bound']:.3f})")
            gain = by[(tr, w, "adaptive")][0]["makespan_s"] / by[(tr, w, "pcm")][0]["makespan_s"] - 1
            gains.append((gain, tr))
            out.append(f"| {tr} | " + " | ".join(cells) + f" | **{signed_pct(gain)}** |")
        out.append("")
        verdicts[w] = gains
        better = [g for g in gains if g[0] < -0.005]
        worse = [g for g in gains if g[0] > 0.005]
        out.append(
            f"adaptive beats pcm by more than 0.5% on {len(better)} of {len(gains)} traces "
            f"(best {signed_pct(min(gains)[0])} on {min(gains)[1]}), is within 0.5% on "
            f"{len(gains) - len(better) - len(worse)}, and loses by more than 0.5% on "
            f"{len(worse)}" + (f" (worst {signed_pct(max(gains)[0])} on {max(gains)[1]})"
                               if worse else "") + ".\n")
    best_w, (best_gain, best_tr) = min(((w, min(g)) for w, g in verdicts.items()),
                                       key=lambda x: x[1][0])
    if best_gain < -0.10:
        pc, ad = by[(best_tr, best_w, "pcm")][0], by[(best_tr, best_w, "adaptive")][0]

        def share(r, part):
            return pct(r[f"gpu_seconds_{part}"] / r["gpu_seconds_available"])

        out.append(
            f"**The largest win**, {best_tr} with {best_w} ({signed_pct(best_gain)}; Gantt charts "
            f"below): pcm spends {share(pc, 'loading')} of the GPU time it holds loading and "
            f"{share(pc, 'idle')} idle, adaptive {share(ad, 'loading')} and {share(ad, 'idle')}. "
            "As the small models run out of work, pcm sends each GPU that falls idle to load a "
            "model that still has work, with a task bound to the load, even where the GPUs "
            "already holding that model would finish its work first; the copies crawl from the "
            "few holders (up to 10 uploads share a holder's link, 1 Gb/s on the TITAN X "
            "machines) while their tasks wait. adaptive starts a load only where it shortens "
            "the run, and binds no task to it.\n")
    evictions = {w: max(r["evictions"] for r in rows if r["workload"] == w) for w in workloads}
    cost_effect = [by[(tr, w, "pcm/cost/fixed")][0]["makespan_s"] /
                   by[(tr, w, "pcm")][0]["makespan_s"] - 1 for tr in traces for w in workloads]
    text = (f"**Cost-aware eviction** (pcm/cost/fixed against pcm) changes the makespan by "
            f"{signed_pct(min(cost_effect))} to {signed_pct(max(cost_effect))}; no run evicts "
            f"more than {int(max(evictions.values()))} contexts.")
    if max(abs(c) for c in cost_effect) < 0.005:
        text += (" Under pcm a GPU keeps serving the context it holds until that context's "
                 "work runs out, so when it switches, the context it drops has no pending work, "
                 "and lru and cost pick the same victim. Eviction order would matter with "
                 "contexts needed again after they go idle (work that arrives over time), which "
                 "these prompt searches do not have: on them cost-aware eviction neither wins "
                 "nor loses.")
    out.append(text + "\n")
    out.append(figure(root, "beyond", "ratio_to_bound", "ratio to the lower bound per trace"))
    for policy_key in ("__pcm-lru-fixed", "__adaptive-cost-adaptive"):
        out.append(figure(root, "beyond", gantt_name(root, "beyond", policy_key),
                          f"Gantt chart, {policy_key}"))
    return verdicts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--elapsed-s", type=float)
    parser.add_argument("--jobs", default="one per core")
    parser.add_argument("--load", help="the machine's load average during the run")
    args = parser.parse_args()
    root = args.root
    data = {spec: load(root, spec) for spec in SPECS}

    out = ["# Reproducing pervasive context management, and going beyond it\n"]
    cells = sum(len(v) for v in data.values())
    sim_s = sum(r["wall_s"] + r["setup_wall_s"] for v in data.values() for r in v)
    commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    elapsed = (f"in {t(args.elapsed_s)} of wall time ({args.jobs} jobs"
               + (f", load average {args.load}" if args.load else "") + ") "
               if args.elapsed_s is not None else "")
    out.append(
        "*Generated by `experiments/paper/reproduce` " + elapsed +
        f"on {machine()}, at commit {commit}: {cells} simulated runs "
        f"({t(sim_s)} of simulation in all). Do not edit: rerun the command.*\n")
    out.append(
        "We model the setting of Phung & Thain (arXiv 2509.13201 and 2510.14024) in hearth's "
        "simulator and run the paper's comparisons on it, then compare the paper's policy "
        "(`pcm`) with ours. Inputs the papers state are used as stated; everything else is an "
        "assumption written down with its reason in [ASSUMPTIONS.md](ASSUMPTIONS.md). No input "
        "was tuned toward the paper's results; where ours differ, the report says so and why. "
        "Specs: `experiments/paper/*.toml`; results: `results/SPEC/results.csv` (one row per "
        "run, every field of the simulator's summary).\n")

    opp = section_opportunistic(root, data["opportunistic"], out)
    static, static_versus = section_static(root, data["static"], out)
    section_scale_out(root, data["opportunistic"], data["warm"], out)
    spreads = section_batch(root, {p: {b: v for b, v in opp[p].items()}
                                   for p in ("naive", "pcm", "adaptive")}, out)
    out.append("## 5. Beyond the paper: pcm against our adaptive policies\n")
    out.append(
        "`adaptive` is our placement (load only where it shortens the run, throttle shared "
        "storage, back up the last tasks on the fastest GPUs) with cost-aware eviction and "
        "adaptive granularity; `adaptive/lru/fixed`, `pcm/cost/fixed` and `pcm/lru/adaptive` "
        "change one policy at a time (docs/policies.md). The lower bound is the simulator's: "
        "no policy can finish sooner on that trace (docs/simulator.md).\n")
    churn = section_churn(root, data["churn"], out)
    verdicts = section_shipped(root, data["beyond"], out)

    out.append("## Headlines\n")
    b = HEADLINE_BATCH
    out.append(f"- Reduction vs naive at batch {b}: **{pct(opp['ours'])}** (paper "
               f"{pct(PAPER['opportunistic_reduction'])}); same static GPUs (N = 50): "
               f"**{pct(static.get(HEADLINE_STATIC, 0))}** (paper {pct(PAPER['static_reduction'])}).")
    out.append(f"- Scale-out: pcm {t(opp['pcm'][b])} from an empty pool; paper about "
               f"{t(PAPER['scale_out_s'])}.")
    out.append(f"- Batch-size spread (slowest / fastest, batch 10 to 1000): naive "
               f"**{spreads['naive'][0]:.1f}x**, pcm **{spreads['pcm'][0]:.2f}x**, adaptive "
               f"**{spreads['adaptive'][0]:.2f}x**.")
    out.append(f"- adaptive vs pcm under churn: {signed_pct(min(churn))} to "
               f"{signed_pct(max(churn))}; at batch {b} on the campus pool: "
               f"{signed_pct(opp['adaptive'][b] / opp['pcm'][b] - 1)}.")
    for w, gains in verdicts.items():
        out.append(f"- adaptive vs pcm on the shipped traces, {w}: {signed_pct(min(gains)[0])} "
                   f"to {signed_pct(max(gains)[0])}.")
    warm = data["warm"]
    warm_gain = (mean([r for r in warm if r["policy"] == "adaptive"], "makespan_s") /
                 mean([r for r in warm if r["policy"] == "pcm"], "makespan_s") - 1)
    out.append(f"- adaptive vs pcm on the campus pool held full from the start: "
               f"{signed_pct(warm_gain)}; on static pools: " +
               ", ".join(f"{tr.replace('static-', 'N = ')} {signed_pct(v)}"
                         for tr, v in static_versus.items()) + ".")
    losses = [f"{tr.replace('static-', 'static N = ')} ({signed_pct(v)})"
              for tr, v in static_versus.items() if v > 0.005]
    losses += [f"{tr} with {w} ({signed_pct(g)})" for w, gains in verdicts.items()
               for g, tr in gains if g > 0.005]
    out.append("- Where adaptive loses to pcm by more than 0.5%: " +
               (", ".join(losses) if losses else "nowhere in these runs") + ".")
    out.append("")

    out.append("## Sources\n")
    out.append(
        "- 98.1% lower execution time with pervasive context management on opportunistic "
        "resources: abstract of arXiv 2509.13201 (https://arxiv.org/abs/2509.13201). The two "
        "ends, 11.4 h and 13.1 min, are as the project's notes quote the paper "
        "(shared/notes/FIELD.md); the stored copy we could search showed us the abstract only.\n"
        "- 72.1% lower on the same GPUs (3 h to 48 min), and 13 minutes on 32.8% of the "
        "cluster's GPUs: abstract of arXiv 2510.14024 (https://arxiv.org/abs/2510.14024). "
        "186 of 567 GPUs is 32.8%.\n"
        "- Stable execution time across batch sizes with context reuse: the project's notes "
        "(shared/notes/FIELD.md), and a third-party summary of 2509.13201 "
        "(https://arxivlens.com/PaperView/Details/scaling-up-throughput-oriented-llm-inference-"
        "applications-on-heterogeneous-opportunistic-gpu-clusters-with-pervasive-context-"
        "management-7165-d5564acb).\n")
    with open(os.path.join(root, "REPORT.md"), "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
