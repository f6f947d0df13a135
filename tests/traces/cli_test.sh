#!/bin/sh
# `hearth trace` end to end: exit codes, "file:line: what" on standard error, the commands working
# together. Run by ctest as trace_cli.
#   cli_test.sh path/to/hearth tests/traces/data traces/data
set -u
hearth=$1
data=$2
shipped=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out_dir=$tmp
. "$(dirname "$0")/../checks.sh"

# Bad input: where and what, exit status 2.
expect 2 "hearth: $data/bad-backwards.csv:5: time 3 goes backwards (previous 5 at line 4)" \
  "$hearth" trace info "$data/bad-backwards.csv"
expect 2 "hearth: $data/spotserve-style-unseen.trace.csv:4: unknown GPU type 'V100-32GB' (the cluster description has A100-40GB, T4-16GB)" \
  "$hearth" trace info --gpu-types A100-40GB,T4-16GB "$data/spotserve-style-unseen.trace.csv"
expect 2 "hearth: --from bamboo needs --time-unit ms, s or h: the published series do not say (the *_scaled.csv files and the p2 2020-11-20-to-23 file are in hours, the rest in seconds)" \
  "$hearth" trace convert --from bamboo "$data/bad-backwards.csv" -o "$tmp/x.csv"
expect 2 "hearth: $data/spotserve-style-unseen.csv: the file name names no AWS family (g4dn, p2, p3, p3dn), so pass --gpu-type" \
  "$hearth" trace convert --from spotserve "$data/spotserve-style-unseen.csv" -o "$tmp/x.csv"
expect 2 "hearth: /nonexistent.csv: cannot read: No such file or directory" \
  "$hearth" trace info /nonexistent.csv
expect 2 "hearth: $tmp: is a folder, not a file" "$hearth" trace info "$tmp"
expect 2 "--seed: must be a whole number from 0 to 18446744073709551615 (is -1)
Run with --help for more information." "$hearth" trace generate --preset campus --seed -1 -o -
expect 2 "file is required
Run with --help for more information." "$hearth" trace info

# A p3 instance family names its GPU: a V100.
cp "$data/spotserve-style-unseen.csv" "$tmp/aws-spot-p3-2xlarge.csv"
expect 0 "hearth: wrote $tmp/p3.csv: 12 events, 6 workers, peak 4 up, ends at 5400 s" \
  "$hearth" trace convert --from spotserve "$tmp/aws-spot-p3-2xlarge.csv" -o "$tmp/p3.csv"
grep -q ',up,[^,]*,V100-16GB,' "$tmp/p3.csv" || fail "a p3 file's workers are not V100-16GB"

# A pool's size sampled over time converts with a chosen leave rule; random is seeded.
printf 'time,count\n0,4\n600,2\n1200,3\n1800,0\n' >"$tmp/pool.csv"
expect 0 "hearth: wrote $tmp/r7.csv: 10 events, 5 workers, peak 4 up, ends at 1800 s" \
  "$hearth" trace convert --from counts --gpu-type A100-40GB --leave random --seed 7 \
  "$tmp/pool.csv" -o "$tmp/r7.csv"
"$hearth" trace convert --from counts --gpu-type A100-40GB --leave random --seed 7 \
  "$tmp/pool.csv" -o "$tmp/r7b.csv" 2>/dev/null
cmp -s "$tmp/r7.csv" "$tmp/r7b.csv" || fail "counts --leave random: the same seed gave another trace"
grep -q -- '--leave random --seed 7' "$tmp/r7.csv" || fail "the converted file does not record the seed"
expect 2 "hearth: --seed applies to --leave random only" \
  "$hearth" trace convert --from counts --gpu-type A100-40GB --seed 7 "$tmp/pool.csv" -o -
expect 2 "hearth: leave order 'lifo' is not one of newest, oldest, random" \
  "$hearth" trace convert --from counts --gpu-type A100-40GB --leave lifo "$tmp/pool.csv" -o -

# A SkyPilot spot-traces file: a count per gap_seconds; its p3 name gives V100s.
printf '{"metadata": {"gap_seconds": 300}, "data": [1, 1, 0, 2]}' >"$tmp/aws-p3-us-west-2a.json"
expect 0 "hearth: wrote $tmp/sky.csv: 4 events, 3 workers, peak 2 up, ends at 1200 s" \
  "$hearth" trace convert --from skypilot "$tmp/aws-p3-us-west-2a.json" -o "$tmp/sky.csv"
grep -q '^0,up,spot-1,V100-16GB,' "$tmp/sky.csv" || fail "the skypilot trace has no V100 at 0 s"
expect 2 "hearth: --time-unit does not apply to --from skypilot: its gap_seconds says" \
  "$hearth" trace convert --from skypilot --time-unit s "$tmp/aws-p3-us-west-2a.json" -o -

# A Slurm partition's accounting (sacct --parsable2) converts to a trace that info reads.
expect 0 "hearth: wrote $tmp/slurm.csv: 10 events, 6 workers, peak 3 up, ends at 16 s" \
  "$hearth" trace convert --from slurm --partition scavenger --gpu-type A100-40GB \
  "$data/slurm-sacct.txt" -o "$tmp/slurm.csv"
expect 0 "" "$hearth" trace info --gpu-types A100-40GB "$tmp/slurm.csv"
grep -q ',down,slurm-1,,,slurm_state=PREEMPTED$' "$tmp/slurm.csv" || fail "no PREEMPTED down"
expect 2 "hearth: --partition applies to --from slurm only" \
  "$hearth" trace convert --from counts --gpu-type A100-40GB --partition p "$tmp/pool.csv" -o -

# An HTCondor pool's condor_status -json snapshots convert to a trace that info reads.
expect 0 "hearth: wrote $tmp/condor.csv: 8 events, 6 workers, peak 4 up, ends at 25 s" \
  "$hearth" trace convert --from htcondor --gpu-type A100-40GB \
  "$data/htcondor-status-series.json" -o "$tmp/condor.csv"
expect 0 "" "$hearth" trace info --gpu-types A100-40GB "$tmp/condor.csv"
expect 2 "hearth: $data/htcondor-status-series.json:1: vm names no GPU type (GPUs_DeviceName): pass --gpu-type" \
  "$hearth" trace convert --from htcondor "$data/htcondor-status-series.json" -o -

# A SpotServe-style file converts to a trace that info reads, as JSON too.
expect 0 "hearth: wrote $tmp/unseen.csv: 12 events, 6 workers, peak 4 up, ends at 5400 s" \
  "$hearth" trace convert --from spotserve --gpu-type V100-32GB "$data/spotserve-style-unseen.csv" \
  -o "$tmp/unseen.csv"
expect 0 "" "$hearth" trace info --json --gpu-types V100-32GB "$tmp/unseen.csv"
grep -q '"peak_up": 4,' "$tmp/out" || fail "info --json does not say peak_up 4"
grep -q '"gpu_seconds": 17700.0' "$tmp/out" || fail "info --json does not say gpu_seconds 17700"

# The generator is reproducible through the CLI, and its output passes info.
"$hearth" trace generate --preset campus --duration 2h --seed 9 -o "$tmp/a.csv" 2>/dev/null ||
  fail "generate failed"
"$hearth" trace generate --preset campus --duration 2h --seed 9 -o - >"$tmp/b.csv" 2>/dev/null
cmp -s "$tmp/a.csv" "$tmp/b.csv" || fail "the same seed gave different files"
expect 0 "" "$hearth" trace info "$tmp/a.csv"
expect 2 "hearth: arrivals 'poisson': expected poisson:RATE_PER_H or bursts:MEAN_GAP:SIZE" \
  "$hearth" trace generate --pool T4-16GB=4 --arrivals poisson -o "$tmp/c.csv"

# Every shipped trace passes info; plot draws one.
for trace in "$shipped"/*.csv; do
  "$hearth" trace info "$trace" >/dev/null || fail "info rejects $trace"
done
"$hearth" trace plot "$shipped/spotserve-g4dn.csv" -o "$tmp/plot.png" 2>/dev/null || fail "plot failed"
[ "$(head -c 4 "$tmp/plot.png" | tail -c 3)" = "PNG" ] || fail "plot wrote no PNG"
# Where a plot cannot go: said in one or two lines, status 2, no Python traceback.
expect 2 "hearth: $tmp: is a folder, not a file" \
  "$hearth" trace plot "$shipped/spotserve-g4dn.csv" -o "$tmp"
expect 2 "hearth: /nonexistent/x.png: cannot write there: No such file or directory" \
  "$hearth" trace plot "$shipped/spotserve-g4dn.csv" -o /nonexistent/x.png
"$hearth" trace plot "$shipped/spotserve-g4dn.csv" -o /proc/x.png >"$tmp/out" 2>"$tmp/err"
[ $? = 2 ] || fail "plot to /proc/x.png did not exit 2"
grep -q Traceback "$tmp/err" && fail "plot to /proc/x.png printed a traceback"

[ "$failures" = 0 ] && echo "trace_cli: all checks passed"
exit "$failures"
