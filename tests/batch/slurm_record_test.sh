#!/usr/bin/env bash
# `hearth trace record --slurm` on the one-node Slurm of scripts/slurm-local (4 GPUs, SLURM_CONF
# set by the test), with jobs taking and giving back GPUs while it records: the trace follows
# them, is valid when the recorder is stopped with SIGINT, and replays in `hearth simulate`.
# Every wait is for an event (a line in the trace), bounded only against a hang.
# Usage: slurm_record_test.sh TOP HEARTH
set -u
top=$1
hearth=$2
dir=$(mktemp -d /tmp/hearth-slurm-record-XXXXXX)
recorder=
trap '[ -n "$recorder" ] && kill "$recorder" 2>/dev/null; scancel --name=hearth-record-test >/dev/null 2>&1; rm -rf "$dir"' EXIT
. "$(dirname "$0")/../checks.sh"
trace=$dir/rec.csv
# stuck: after a wait that never ended, what the recorder said and what Slurm shows, then the end
# (later checks would only wait on the same thing).
stuck() {
  echo "the recorder's stderr:" >&2
  cat "$dir/record.err" >&2
  echo "its last snapshots:" >&2
  tail -n 20 "$trace.snapshots" >&2 2>/dev/null
  echo "sinfo and squeue now:" >&2
  timeout 20 sinfo -N -O "NodeList:|,StateLong:|,Gres:|,GresUsed:|" >&2 2>&1
  timeout 20 squeue >&2 2>&1
  exit 1
}

# The trace's first snapshot is the whole node idle: no job of an earlier test may still hold a GPU.
wait_for "the node to be free of jobs" 120 sh -c '[ -z "$(squeue -h 2>/dev/null)" ]' || stuck
"$hearth" trace record --slurm --partition scavenger --gpu-type A100-40GB --interval 1s \
  --for 600s -o "$trace" 2>"$dir/record.err" &
recorder=$!
wait_for "the first snapshot" 120 grep -qs '^0,up,.*/gpu4,' "$trace" || stuck
for _ in 1 2; do
  sbatch --partition=scavenger --gres=gpu:1 --cpus-per-task=1 --job-name=hearth-record-test \
    --output=/dev/null --wrap "sleep 600" >/dev/null || fail "sbatch failed"
done
wait_for "two GPUs taken" 180 sh -c "[ \$(grep -c ',down,' '$trace') -ge 2 ]" || stuck
scancel --name=hearth-record-test
wait_for "the GPUs idle again" 180 grep -q ',up,.*/gpu6,' "$trace" || stuck

kill -INT $recorder
wait $recorder
status=$?
[ $status = 0 ] || fail "the recorder exited $status after SIGINT: $(cat "$dir/record.err")"
"$hearth" trace info --gpu-types A100-40GB "$trace" >"$dir/info.txt" 2>&1 ||
  fail "trace info rejects the recorded trace: $(cat "$dir/info.txt")"
grep -q '^# recorded with: hearth trace record --slurm --partition scavenger' "$trace" ||
  fail "the trace does not say how it was recorded"

replays "$top" "$hearth" "$trace" "$dir"

[ "$failures" = 0 ] && echo "slurm_record: all checks passed"
exit "$failures"
