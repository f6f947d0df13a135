#!/bin/sh
# `hearth experiment` from the command line: exit status 2 and file/key messages for a bad spec,
# a dry run's counts, a run, a rerun that runs nothing, and the plot.
# Usage: cli_test.sh HEARTH DATA_DIR
set -u
hearth=$1
data=$(cd "$2" && pwd)
dir=$(mktemp -d /tmp/hearth-experiment-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
. "$(dirname "$0")/../checks.sh"

check() {  # check WHAT EXPECTED ACTUAL (without the notice ASan prints when a SimGrid actor throws)
  actual=$(printf '%s\n' "$3" | without_asan_notes)
  if [ "$2" != "$actual" ]; then
    printf 'FAIL %s\n  expected: %s\n  actual:   %s\n' "$1" "$2" "$actual"
    failures=$((failures + 1))
  fi
}

# data/tiny.toml, its files named in full so that the copy can live in $dir.
sed -e "s|\"round.toml\"|\"$data/round.toml\"|" -e "s|\"one-worker.csv\"|\"$data/one-worker.csv\"|" \
  "$data/tiny.toml" > "$dir/spec.toml"
sed 's/batch_sizes = \[10, 50\]/batch_sizes = [10, -5]/' "$dir/spec.toml" > "$dir/bad.toml"

out=$("$hearth" experiment run "$dir/bad.toml" --out "$dir/out" 2>&1)
check "bad spec: exit status" 2 $?
check "bad spec: message" \
  "hearth: $dir/bad.toml: key batch_sizes[1]: must be a whole number, at least 1" "$out"

out=$("$hearth" experiment run "$dir/spec.toml" --out "$dir/out" --dry-run 2>&1)
check "dry run: exit status" 0 $?
check "dry run: counts" "tiny: 4 cells; 0 done, 4 to run (0 stale)" "$out"

out=$("$hearth" experiment run "$dir/spec.toml" --out "$dir/out" --quiet 2>&1)
check "run: exit status" 0 $?
check "run: summary" "tiny: 4 cells; 0 kept from an earlier run, 4 ran, 0 failed
results: $dir/out/results.csv" "$out"
check "run: CSV rows" 5 "$(wc -l < "$dir/out/results.csv")"

out=$("$hearth" experiment run "$dir/spec.toml" --out "$dir/out" 2>&1)
check "rerun: runs nothing" "tiny: 4 cells; 4 kept from an earlier run, 0 ran, 0 failed
results: $dir/out/results.csv" "$out"

"$hearth" experiment plot "$dir/out" > "$dir/plot.txt" 2>&1
check "plot: exit status" 0 $?
check "plot: files" "$dir/out/figures/gpu_seconds.png
$dir/out/figures/gpu_seconds.svg
$dir/out/figures/makespan_vs_batch.png
$dir/out/figures/makespan_vs_batch.svg
$dir/out/figures/ratio_to_bound.png
$dir/out/figures/ratio_to_bound.svg" "$(cat "$dir/plot.txt")"

out=$("$hearth" experiment plot "$dir/nowhere" 2>&1)
check "plot without results: exit status" 2 $?

[ $failures -eq 0 ] && echo "experiment_cli: all checks passed"
exit $failures
