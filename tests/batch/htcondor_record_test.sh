#!/usr/bin/env bash
# `hearth trace record --htcondor` on the one-machine pool of scripts/htcondor-local (4 GPUs), with
# jobs claiming and releasing GPUs while it records: the trace follows them, is valid when the
# recorder is stopped with SIGINT, resumes where it was, and replays in `hearth simulate`.
# Every wait is for an event (a line in the trace), bounded only against a hang.
# Usage: htcondor_record_test.sh TOP HEARTH DIR   (exit 77: skipped, no chroot can be built)
set -u
top=$1
hearth=$2
dir=$3
. "$(dirname "$0")/../checks.sh"
local_pool="$top/scripts/htcondor-local"
"$local_pool" start "$dir" "$hearth" >"$dir/record-start.log" 2>&1
status=$?
[ $status = 77 ] && { tail -1 "$dir/record-start.log"; exit 77; }
[ $status = 0 ] || { cat "$dir/record-start.log"; exit 1; }
trap '"$local_pool" stop "$dir" >/dev/null 2>&1' EXIT
in_pool() { "$local_pool" run "$dir" "$@"; }
home=$dir/root/home/hearth
trace=$home/rec.csv
rm -f "$trace" "$trace.snapshots"

in_pool /opt/hearth/bin/hearth trace record --htcondor --gpu-type A100-40GB --interval 1s \
  --for 600s -o /home/hearth/rec.csv 2>"$dir/record.err" &
recorder=$!
wait_for "the first snapshot" 120 grep -q '^0,up,vm/gpu4,' "$trace"

# Two 1-GPU jobs claim two GPUs: they leave the trace; removed, two new ones come.
in_pool sh -c 'cd && printf "executable = /bin/sleep\narguments = 600\nrequest_gpus = 1\nrequest_cpus = 1\nrequest_memory = 64\nqueue 2\n" >s.sub && condor_submit s.sub' >/dev/null
wait_for "two GPUs claimed" 180 sh -c "[ \$(grep -c ',down,vm/gpu' '$trace') -ge 2 ]"
in_pool condor_rm -all >/dev/null
wait_for "the GPUs offered again" 180 grep -q ',up,vm/gpu6,' "$trace"

# Stopped with SIGINT, the trace is whole and valid.
pkill -INT -f '/opt/hearth/bin/hearth trace record' || fail "no recorder to stop"
wait $recorder
status=$?
[ $status = 0 ] || fail "the recorder exited $status after SIGINT: $(cat "$dir/record.err")"
grep -q 'stopped; run the same command again to go on' "$dir/record.err" ||
  fail "the recorder did not say it stopped: $(cat "$dir/record.err")"
"$hearth" trace info --gpu-types A100-40GB "$trace" >"$dir/info.txt" 2>&1 ||
  fail "trace info rejects the recorded trace: $(cat "$dir/info.txt")"
before=$(grep -c ',' "$trace")

# Run again, it resumes: the snapshots so far are kept and the trace grows from them.
in_pool /opt/hearth/bin/hearth trace record --htcondor --gpu-type A100-40GB --interval 1s \
  --for 3s -o /home/hearth/rec.csv 2>"$dir/resume.err" || fail "the resumed recorder failed"
grep -q 'resuming /home/hearth/rec.csv' "$dir/resume.err" || fail "no resume: $(cat "$dir/resume.err")"
[ "$(grep -c ',' "$trace")" -ge "$before" ] || fail "the resumed trace lost events"
grep -q '^0,up,vm/gpu1,' "$trace" || fail "the resumed trace lost its start"

# The recorded trace replays in the simulator.
replays "$top" "$hearth" "$trace" "$dir"

[ "$failures" = 0 ] && echo "htcondor_record: all checks passed"
exit "$failures"
