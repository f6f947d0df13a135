#!/usr/bin/env python3
"""The H200 run's numbers: its short table, the cluster description computed from them, and the
simulator's inputs and error. Standard library only (it runs on the GPU machine's python3 and on
Debian's).

    report.py summary RESULTS.csv                 the short table run.sh prints last
    report.py calibrate RESULTS.csv OUT.toml      experiments/clusters/h200.toml, from the figures
    report.py sim-inputs OUTDIR WORKDIR           traces and scenarios for simulate.sh
    report.py compare OUTDIR WORKDIR              the simulator's makespan error table

RESULTS.csv rows are section,key,value,unit,note (gpu_bench and run.sh write them). A figure that
is missing (a step failed or was skipped) shows as "-" and leaves what depends on it out.
"""
import csv
import json
import os
import sys
from datetime import datetime, timezone

TIME_SCALE_KEY = ("churn", "time_scale")


def read_results(path):
    rows = {}
    with open(path, newline="") as f:
        for r in csv.reader(f):
            if len(r) < 5 or r[0] == "section":
                continue
            try:
                value = float(r[2]) if r[2] != "" else None
            except ValueError:
                value = None
            rows.setdefault((r[0], r[1]), []).append((value, r[3], r[4]))
    return rows


def val(rows, section, key):
    got = rows.get((section, key))
    return got[-1][0] if got else None


def note(rows, section, key):
    got = rows.get((section, key))
    return got[-1][2] if got else ""


def fmt(x, spec=".2f", unit=""):
    return "-" if x is None else f"{x:{spec}}{unit}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


# ---- summary ----------------------------------------------------------------------------------


def load_table(rows):
    size_raw = val(rows, "load", "raw_file_bytes")
    size_pt = val(rows, "load", "torchscript_file_bytes")
    read_gbps = max(filter(None, [val(rows, "load", "raw_read_GBps"),
                                  val(rows, "load", "raw_read_parallel_GBps")]), default=None)
    h2d_gbps = val(rows, "load", "h2d_pinned_GBps")

    def gbps(size, seconds):
        return None if size is None or not seconds else size / seconds / 1e9

    lines = ["context load, cold page cache (GB/s, and share of the hardware's speed)",
             f"  hardware: disk read {fmt(read_gbps)} GB/s (best of plain and 4-thread O_DIRECT), "
             f"pinned host-to-device {fmt(h2d_gbps)} GB/s, pageable "
             f"{fmt(val(rows, 'load', 'h2d_pageable_GBps'))} GB/s",
             f"  {'step':<22}{'plain libtorch (.pt)':>24}{'raw file, plain copy':>24}"
             f"{'fast loader':>24}"]

    def cell(size, seconds, ceiling):
        g = gbps(size, seconds)
        if g is None:
            return f"{'-':>24}"
        r = ratio(g, ceiling)
        return f"{g:>9.2f} ({fmt(seconds, '.2f')} s, {fmt(None if r is None else 100 * r, '.0f')}%)".rjust(24)

    lines.append(f"  {'disk -> host':<22}" + cell(size_pt, val(rows, "load", "torchscript_disk_to_host_s"), read_gbps)
                 + cell(size_raw, val(rows, "load", "raw_plain_disk_to_host_s"), read_gbps)
                 + f"{'(streams to GPU)':>24}")
    lines.append(f"  {'host -> GPU':<22}" + cell(size_pt, val(rows, "load", "torchscript_host_to_device_s"), h2d_gbps)
                 + cell(size_raw, val(rows, "load", "raw_plain_host_to_device_s"), h2d_gbps)
                 + cell(size_raw, val(rows, "load", "fast_host_to_device_s"), h2d_gbps))
    bound = None if read_gbps is None or h2d_gbps is None else min(read_gbps, h2d_gbps)
    lines.append(f"  {'cold start disk->GPU':<22}" + cell(size_pt, val(rows, "load", "torchscript_cold_start_s"), bound)
                 + cell(size_raw, val(rows, "load", "raw_plain_cold_start_s"), bound)
                 + cell(size_raw, val(rows, "load", "fast_file_cold_start_s"), bound))
    sweep = [(vs[-1][0], k[1]) for k, vs in rows.items() if k[0] == "load" and k[1].startswith("ring_memory_")
             and vs[-1][0] is not None]
    if sweep:
        best = max(sweep)
        lines.append(f"  the ring from host memory: best {best[0]:.2f} GB/s ({best[1][len('ring_memory_'):-len('_GBps')]}),"
                     f" default (p4_c16) {fmt(val(rows, 'load', 'ring_memory_p4_c16_GBps'))} GB/s")
    ts, fast = val(rows, "load", "torchscript_cold_start_s"), val(rows, "load", "fast_file_cold_start_s")
    lines.append(f"  cold start: fast loader {fmt(ratio(ts, fast), '.1f')}x faster than plain "
                 f"libtorch; the ring alone, buffered {fmt(gbps(size_raw, val(rows, 'load', 'ring_file_buffered_s')))}"
                 f" GB/s, O_DIRECT {fmt(gbps(size_raw, val(rows, 'load', 'ring_file_direct_s')))} GB/s")
    return lines


def infer_table(rows):
    lines = ["classify, 256-token prompts, one forward pass per batch"]
    batches = sorted({int(k[1].split("_")[1]) for k in rows if k[0] == "infer"
                      and k[1].startswith("batch_") and k[1].endswith("_inferences_per_s")})
    peak = None
    lines.append(f"  {'batch':>6}{'inferences/s':>14}{'device GB':>11}")
    for b in batches:
        r = val(rows, "infer", f"batch_{b}_inferences_per_s")
        peak = r if peak is None or (r or 0) > peak else peak
        lines.append(f"  {b:>6}{fmt(r, '.1f'):>14}{fmt(val(rows, 'infer', f'batch_{b}_device_memory_used_GB'), '.1f'):>11}")
    per = val(rows, "infer", "one_at_a_time_inference_s")
    lines.append(f"  peak {fmt(peak, '.1f')} inferences/s; one at a time (as workers run) "
                 f"{fmt(None if not per else 1 / per, '.1f')}/s alone, "
                 f"{fmt(rate_total(rows), '.1f')}/s with {rate_count(rows)} processes sharing the GPU")
    return lines


def rate_values(rows):
    return [v[0] for k, vs in rows.items() if k[0] == "rate" for v in vs if v[0] is not None]


def rate_total(rows):
    r = rate_values(rows)
    return sum(r) if r else None


def rate_count(rows):
    return len(rate_values(rows))


def churn_table(rows):
    lines = ["pcm vs naive, 8 workers sharing the GPU, churn.csv replayed "
             f"(time scale {fmt(val(rows, *TIME_SCALE_KEY), 'g')})"]
    lines.append(f"  {'policy':<8}{'makespan s':>12}{'inferences':>12}{'wall s':>9}{'GPU GB':>8}  status")
    for p in ("naive", "pcm"):
        lines.append(f"  {p:<8}{fmt(val(rows, 'churn', p + '_makespan_s'), '.1f'):>12}"
                     f"{fmt(val(rows, 'churn', p + '_inferences'), '.0f'):>12}"
                     f"{fmt(val(rows, 'churn', p + '_wall_s'), '.1f'):>9}"
                     f"{fmt(val(rows, 'churn', p + '_peak_device_memory_GB'), '.1f'):>8}  {note(rows, 'churn', p + '_exit')}")
    n, p = val(rows, "churn", "naive_makespan_s"), val(rows, "churn", "pcm_makespan_s")
    lines.append(f"  naive / pcm: {fmt(ratio(n, p), '.2f')}x")
    return lines


def summary(path):
    rows = read_results(path)
    out = [f"hearth on {note(rows, 'env', 'gpu') or 'no GPU'} ({note(rows, 'env', 'mode')}), "
           f"{note(rows, 'env', 'date')}"]
    steps = [(k[1], vs[-1]) for k, vs in rows.items() if k[0] == "step"]
    out.append("steps: " + ", ".join(f"{name} {v[2]}" for name, v in steps))
    out.append(f"context: {fmt(val(rows, 'gen', 'parameters'), ',.0f')} parameters, "
               f"{fmt(None if val(rows, 'gen', 'raw_bytes') is None else val(rows, 'gen', 'raw_bytes') / 1e9, '.2f')} GB raw bf16,"
               f" written in {fmt(val(rows, 'gen', 'raw_s'), '.1f')} s")
    out += load_table(rows) + infer_table(rows) + churn_table(rows)
    print("\n".join(out))


# ---- calibration ------------------------------------------------------------------------------


def shared_together(rows):
    for k, vs in rows.items():
        if k[0] == "stages" and k[1].startswith("disk_from_shared_") and k[1].endswith("_at_once_GBps"):
            return vs[-1][0]
    raise SystemExit("calibrate: stages.disk_from_shared_N_at_once_GBps was not measured; no cluster file")


def calibration(rows):
    """The cluster description's H200 values, each with where it came from."""
    def need(section, key):
        v = val(rows, section, key)
        if v is None:
            raise SystemExit(f"calibrate: {section}.{key} was not measured; no cluster file")
        return v

    rates = rate_values(rows)
    if rates:
        per_inference = len(rates) / sum(rates)
        per_inference_from = (f"one-at-a-time classify with {len(rates)} processes sharing the GPU"
                              " (gpu_bench rate): the mean over processes")
    else:
        per_inference = need("infer", "one_at_a_time_inference_s")
        per_inference_from = "one-at-a-time classify, one process alone (no shared-GPU figure)"
    first, second = val(rows, "infer", "first_load_s"), val(rows, "infer", "second_load_s")
    context_init = max(0.0, first - second) if first is not None and second is not None else 0.0
    return {
        "gpu_memory_bytes": (need("env", "gpu_memory_bytes"), "the driver's figure, as workers announce it"),
        "host_memory_bytes": (need("env", "host_memory_bytes"), "a quarter of physical memory, as workers announce it"),
        "disk_bytes": (need("env", "disk_free_bytes"), "free space where workers keep their caches"),
        "disk_read_Bps": (need("stages", "host_from_disk_GBps") * 1e9, "read_whole_file of a context just copied (host stage)"),
        "disk_write_Bps": (need("stages", "disk_from_shared_GBps") * 1e9, "copy_file from the shared path, one at a time (disk stage)"),
        "host_to_gpu_Bps": (need("stages", "gpu_from_host_copy_GBps") * 1e9, "the fast loader from host memory (gpu stage)"),
        "network_Bps": (need("stages", "disk_from_peer_GBps") * 1e9, "a bulk transfer from a peer over loopback (AES-256-GCM, SHA-256 per chunk)"),
        "per_batch_s": (0.0, "not measured: a task's round trip and commit are milliseconds"),
        "per_inference_s": (per_inference, per_inference_from),
        "shared_storage_Bps": (shared_together(rows) * 1e9,
                               "copy_file by several threads at once (8 unless the disk was short), all together"),
        "init_s": (need("stages", "gpu_from_host_build_s") + context_init,
                   f"module made around the weights, plus {context_init:.2f} s of CUDA set-up "
                   "in a fresh process (first load minus second)"),
        "context_bytes": (need("gen", "raw_bytes"), "the raw model file"),
    }


def calibrate(path, out):
    rows = read_results(path)
    c = calibration(rows)
    when = note(rows, "env", "date") or datetime.now(timezone.utc).strftime("%Y-%m-%d")
    g = lambda k: f"{c[k][0]:.4g}"
    dry = "dry run" in note(rows, "env", "mode")
    lines = [
        "# NOT AN H200: a CPU dry run's figures, under the H200's name, to test the plumbing."
        if dry else "# One NVIDIA H200 machine as the simulator sees it, computed from measurements",
        "# by experiments/h200/report.py calibrate (do not edit: rerun experiments/h200/run.sh).",
        f"# Measured {when} on {note(rows, 'env', 'gpu') or '?'} ({note(rows, 'env', 'mode')}).",
        "# Format: docs/cluster-description.md. Where each value comes from:",
    ]
    lines += [f"#   {k}: {c[k][1]}" for k in c if k not in ("init_s", "context_bytes")]
    lines += [f"# The context itself: {g('context_bytes')} bytes, init_s {c['init_s'][0]:.3f} ({c['init_s'][1]}).",
              "", 'reference_gpu = "H200"', "latency_s = 0", "output_bytes_per_inference = 0", "",
              "[manager]", f"network_Bps = {g('network_Bps')}", "",
              "[shared_storage]", f"bandwidth_Bps = {g('shared_storage_Bps')}", "",
              '[gpu_types."H200"]']
    for k in ("gpu_memory_bytes", "host_memory_bytes", "disk_bytes", "disk_read_Bps", "disk_write_Bps",
              "host_to_gpu_Bps", "network_Bps", "per_batch_s"):
        lines.append(f"{k} = {g(k)}")
    lines.append(f"per_inference_s = {c['per_inference_s'][0]:.6g}")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"calibrate: wrote {out}")


# ---- simulation -------------------------------------------------------------------------------


def read_trace(path):
    header, rows = None, []
    with open(path) as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = [x.strip() for x in line.rstrip("\n").split(",")]
            if header is None:
                header = fields
                continue
            rows.append(dict(zip(header, fields)))
    return rows


def valid_order(events):
    """Events in time order (downs first at equal times) with what a trace forbids dropped: an up
    of a worker already up, a down of one that is not (an up moved past its own down: that worker
    never joined)."""
    up, out = set(), []
    for e in sorted(events, key=lambda e: (e[0], e[1] != "down")):
        t, event, worker, _ = e
        if (event == "up") == (worker in up):
            if event == "down":
                continue
            out.append((t, "down", worker, ""))  # joined again unseen: leave, then come back
        (up.add if event == "up" else up.discard)(worker)
        out.append(e)
    return out


def write_trace(path, events, comment):
    with open(path, "w") as f:
        f.write(f"# hearth availability trace; format: traces/FORMAT.md\n# {comment}\n")
        f.write("time_s,event,worker,gpu_type,grace_s,attributes\n")
        for t, event, worker, gpu in valid_order(events):
            f.write(f"{t:.6f},{event},{worker},{gpu if event == 'up' else ''},,\n")


def read_events(path):
    """(time, kind, worker id, name) of the manager's events.log."""
    out = []
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) >= 3:
                out.append((float(w[0]), w[1], w[2], w[3] if w[1] == "joined" else None))
    return out


def joins_and_losses(events):
    names, ups, downs = {}, [], []
    for t, kind, wid, name in events:
        if kind == "joined":
            names[wid] = name
            ups.append((t, name))
        elif kind == "lost" and wid in names:
            downs.append((t, names[wid]))
    return ups, downs


def makespan(events):
    done = [t for t, kind, _, _ in events if kind == "finished"]
    return max(done) if done else None


def join_delays(trace, scale, ups):
    """Seconds from each trace up (scaled) to its worker's join, matching each join to the latest
    up of that worker before it."""
    delays = []
    for t, name in ups:
        starts = [float(r["time_s"]) * scale for r in trace if r["event"] == "up" and r["worker"] == name
                  and float(r["time_s"]) * scale <= t]
        if starts:
            delays.append(t - max(starts))
    return delays


def sim_inputs(outdir, work):
    rows = read_results(os.path.join(outdir, "results.csv"))
    scale = val(rows, *TIME_SCALE_KEY)
    prompts = val(rows, "churn", "prompts")
    batch = val(rows, "churn", "batch_size")
    if scale is None or prompts is None:
        raise SystemExit("sim-inputs: the run has no churn settings (churn step missing)")
    c = calibration(rows)
    trace = read_trace(os.path.join(work, "churn.csv"))
    for policy in ("naive", "pcm"):
        log = os.path.join(work, "logs", f"churn-{policy}", "events.log")
        if not os.path.exists(log):
            print(f"sim-inputs: no {log}: {policy} is not compared")
            continue
        events = read_events(log)
        ups, downs = joins_and_losses(events)
        delays = join_delays(trace, scale, ups)
        delay = sum(delays) / len(delays) if delays else 0.0
        # As planned: the committed trace in real seconds, each up late by the mean join delay
        # (an up that would come after its own down never joins: both go).
        planned, pending = [], {}
        for r in trace:
            t, name = float(r["time_s"]) * scale, r["worker"]
            if r["event"] == "up":
                pending[name] = (t + delay, "up", name, r.get("gpu_type", ""))
            elif r["event"] == "down" and name in pending:
                start = pending.pop(name)
                if start[0] < t:
                    planned += [start, (t, "down", name, "")]
        planned += pending.values()
        write_trace(os.path.join(work, f"trace-planned-{policy}.csv"), planned,
                    f"churn.csv x {scale:g}, ups {delay:.3f} s late (mean join delay of the {policy} run)")
        # As it happened: joins and losses as the manager saw them.
        observed = [(t, "up", n, "H200") for t, n in ups] + [(t, "down", n, "") for t, n in downs]
        write_trace(os.path.join(work, f"trace-observed-{policy}.csv"), observed,
                    f"joins and losses in the {policy} run's events.log")
        for kind in ("planned", "observed"):
            with open(os.path.join(work, f"scenario-{kind}-{policy}.toml"), "w") as f:
                f.write(f'name = "h200-{kind}-{policy}"\ncluster = "{os.path.abspath(os.path.join(outdir, "h200.toml"))}"\n'
                        f'trace = "trace-{kind}-{policy}.csv"\nseed = 1\ndetection_delay_s = 0\n\n'
                        f'[policy]\nplacement = "{policy}"\nbatch_size = {int(batch)}\n\n'
                        f'[[contexts]]\nname = "builtin-1.7b"\nsize_bytes = {c["context_bytes"][0]:.0f}\n'
                        f'init_s = {c["init_s"][0]:.6g}\ninferences = {int(prompts)}\n')
        with open(os.path.join(work, f"real-{policy}.json"), "w") as f:
            json.dump({"makespan_s": makespan(events), "join_delay_s": delay, "joins": len(ups),
                       "losses": len(downs)}, f)
    print(f"sim-inputs: wrote scenarios into {work}")


def compare(outdir, work):
    lines = [f"{'policy':<8}{'availability':<14}{'real s':>9}{'simulated s':>13}{'error':>9}"]
    for policy in ("naive", "pcm"):
        real_path = os.path.join(work, f"real-{policy}.json")
        if not os.path.exists(real_path):
            continue
        real = json.load(open(real_path))
        for kind in ("planned", "observed"):
            sim_path = os.path.join(work, f"sim-{kind}-{policy}.json")
            sim = json.load(open(sim_path)) if os.path.exists(sim_path) else {}
            s, r = sim.get("makespan_s"), real.get("makespan_s")
            err = None if s is None or not r else 100 * (s - r) / r
            lines.append(f"{policy:<8}{kind:<14}{fmt(r, '.1f'):>9}{fmt(s, '.1f'):>13}{fmt(err, '+.1f', '%'):>9}")
        lines.append(f"{'':<8}join delay {real['join_delay_s']:.2f} s (mean), {real['joins']} joins, "
                     f"{real['losses']} losses")
    print("simulator vs the real run (makespan; planned: churn.csv with the mean join delay; "
          "observed: joins and losses as the manager saw them)")
    print("\n".join(lines))


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    cmd = sys.argv[1]
    if cmd == "summary":
        summary(sys.argv[2])
    elif cmd == "calibrate" and len(sys.argv) == 4:
        calibrate(sys.argv[2], sys.argv[3])
    elif cmd == "sim-inputs" and len(sys.argv) == 4:
        sim_inputs(sys.argv[2], sys.argv[3])
    elif cmd == "compare" and len(sys.argv) == 4:
        compare(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
