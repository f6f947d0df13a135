#!/usr/bin/env bash
# Back on a machine with SimGrid: simulates the H200 run's churn experiment (the same trace, the
# same workload, both policies) on the cluster description the run computed, and prints the
# simulator's makespan error against the real run.
#
#   experiments/h200/simulate.sh OUTDIR [BUILD]   OUTDIR: what run.sh wrote (results.csv,
#                                                 h200.toml, logs.tar.gz); BUILD: a build with
#                                                 the simulator (default build/)
# Two simulations per policy: "planned" replays churn.csv (scaled to real seconds) with each up
# late by the run's mean join delay (a worker process starting and joining); "observed" replays
# the joins and losses the run's manager saw. Writes the simulator's summaries and the error
# table into OUTDIR/simulated/ when OUTDIR is writable, else into a temporary folder it names.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/experiments/h200
outdir=$(cd "${1:?usage: experiments/h200/simulate.sh OUTDIR [BUILD]}" && pwd)
build=${2:-$top/build}
hearth=$build/hearth
[ -x "$hearth" ] || { echo "simulate.sh: no $hearth (build with the simulator first)" >&2; exit 2; }
for f in results.csv h200.toml logs.tar.gz; do
  [ -f "$outdir/$f" ] || { echo "simulate.sh: $outdir has no $f" >&2; exit 2; }
done
work=$outdir/simulated
mkdir -p "$work" 2>/dev/null && touch "$work/.w" 2>/dev/null && rm -f "$work/.w" || work=$(mktemp -d /tmp/hearth-h200-sim-XXXXXX)
tar -xzf "$outdir/logs.tar.gz" -C "$work"
cp "$here/churn.csv" "$work/churn.csv"
python3 "$here/report.py" sim-inputs "$outdir" "$work"
for s in "$work"/scenario-*.toml; do
  name=$(basename "$s" .toml)
  "$hearth" simulate "$s" --json --quiet >"$work/sim-${name#scenario-}.json"
done
python3 "$here/report.py" compare "$outdir" "$work" | tee "$work/error.txt"
echo "(files in $work)"
