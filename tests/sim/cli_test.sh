#!/bin/sh
# `hearth simulate` as a script sees it: exit status 2 and a message for every mistake on the
# command line, 3 for a simulation that could not finish, and --json output that is the same
# bytes for the same scenario and seed.
# Usage: cli_test.sh HEARTH SIMULATOR_MD
set -u
hearth=$1
docs=$2
dir=$(mktemp -d /tmp/hearth-simulate-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
out_dir=$dir
. "$(dirname "$0")/../checks.sh"

# A worker that is up for 100 s, and work that takes longer: the pool runs out.
cat >"$dir/cluster.toml" <<'EOF'
reference_gpu = "T4-16GB"
latency_s = 0.0001
[manager]
network_Bps = 1.25e9
[shared_storage]
bandwidth_Bps = 2.5e9
[gpu_types."T4-16GB"]
gpu_memory_bytes = 16e9
host_memory_bytes = 64e9
disk_bytes = 500e9
disk_read_Bps = 2e9
host_to_gpu_Bps = 10e9
network_Bps = 1.25e9
per_batch_s = 0.5
per_inference_s = 0.02
EOF
printf 'time_s,event,worker,gpu_type,grace_s,attributes\n0,up,a,T4-16GB,,\n100,down,a,,,\n' \
  >"$dir/short.csv"
cat >"$dir/short.toml" <<'EOF'
cluster = "cluster.toml"
trace = "short.csv"
[[contexts]]
name = "m"
size_bytes = 1e9
init_s = 1
inferences = 1000000
EOF
sed -e 's/^100,down,a,,,$/100000,down,a,,,/' "$dir/short.csv" >"$dir/long.csv"
sed -e 's/short.csv/long.csv/' -e 's/1000000/100/' "$dir/short.toml" >"$dir/ok.toml"

# Mistakes on the command line: status 2, as every input error.
expect 2 "--batch-size: must be a whole number from 1 to 4294967295 (is -1)
Run with --help for more information." "$hearth" simulate "$dir/ok.toml" --batch-size -1
expect 2 "--batch-size: must be a whole number from 1 to 4294967295 (is 99999999999999999999)
Run with --help for more information." \
  "$hearth" simulate "$dir/ok.toml" --batch-size 99999999999999999999
expect 2 "--batch-size: must be a whole number from 1 to 4294967295 (is 0)
Run with --help for more information." "$hearth" simulate "$dir/ok.toml" --batch-size 0
expect 2 "--seed: must be a whole number from 0 to 18446744073709551615 (is -2)
Run with --help for more information." "$hearth" simulate "$dir/ok.toml" --seed -2
expect 2 "hearth: --detection-delay: must be a number of seconds, 0 or more (is inf)" \
  "$hearth" simulate "$dir/ok.toml" --detection-delay inf
expect 2 "The following argument was not expected: --nope
Run with --help for more information." "$hearth" simulate "$dir/ok.toml" --nope
expect 2 "A subcommand is required
Run with --help for more information." "$hearth"
expect 0 "" "$hearth" simulate --help
mkdir "$dir/folder.toml"
expect 2 "hearth: $dir/folder.toml: is a folder, not a file" "$hearth" simulate "$dir/folder.toml"
expect 2 "hearth: $dir: is a folder, not a file" "$hearth" simulate "$dir/ok.toml" --trace "$dir"

# A simulation that cannot finish prints its summary, says so, and exits 3.
expect 3 "hearth: pcm did not finish: 3900 of 1000000 inferences done when the pool could no longer progress" \
  "$hearth" simulate "$dir/short.toml" --quiet
grep -q "NOT FINISHED" "$dir/out" || fail "the unfinished summary does not say NOT FINISHED"
expect 3 "hearth: naive did not finish: 2000 of 1000000 inferences done when the pool could no longer progress" \
  "$hearth" simulate "$dir/short.toml" --quiet --policy naive,pcm --json

# --json: the same bytes twice; host timings only with --timings.
"$hearth" simulate "$dir/ok.toml" --json --quiet >"$dir/a.json" || fail "the first --json run failed"
"$hearth" simulate "$dir/ok.toml" --json --quiet >"$dir/b.json" || fail "the second --json run failed"
cmp -s "$dir/a.json" "$dir/b.json" || fail "two --json runs of one scenario differ"
grep -q '"makespan_s"' "$dir/a.json" || fail "--json has no makespan_s"
grep -q 'wall_s' "$dir/a.json" && fail "--json carries host timings without --timings"
"$hearth" simulate "$dir/ok.toml" --json --timings --quiet --out "$dir/run" >"$dir/c.json" ||
  fail "--timings run failed"
grep -q '"setup_wall_s"' "$dir/c.json" || fail "--json --timings has no setup_wall_s"
grep -q '"wall_s"' "$dir/run/summary.json" || fail "summary.json with --timings has no wall_s"

# The comparison docs/simulator.md shows is what the bundled default scenario gives today.
"$hearth" simulate --policy naive,pcm,adaptive --quiet >"$dir/default.txt" ||
  fail "the default comparison failed"
sed -n '/^\$ build\/hearth simulate --policy naive,pcm,adaptive$/,/^```$/p' "$docs" |
  sed '1d;$d' >"$dir/documented.txt"
cmp -s "$dir/default.txt" "$dir/documented.txt" ||
  fail "docs/simulator.md's comparison is stale: hearth prints
$(cat "$dir/default.txt")"

[ "$failures" = 0 ] && echo "simulate_cli: all checks passed"
exit "$failures"
