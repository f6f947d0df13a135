#!/usr/bin/env bash
# The one script of the H200 run (issue 7; experiments/h200/README.md): builds hearth against the
# machine's libtorch and the carried Debian libraries, checks it, and measures everything in one
# go: context load per tier (plain libtorch and the fast loader, against the raw disk and bus),
# classify throughput per batch size, the worker's stage times, and pcm against naive with eight
# workers sharing the GPU under churn. Writes results.csv, the logs and the cluster description
# computed from the figures into OUT, and prints a short table last.
#
#   experiments/h200/run.sh OUT                 on the GPU machine (about 8 minutes)
#   experiments/h200/run.sh OUT --cpu-dry-run   here: a tiny model on the CPU, a few prompts,
#                                               the same steps, to prove the plumbing
# Options: --budget S (all steps together; default 540), --work DIR (scratch; default
# .h200-work in the repository, /tmp/hearth-h200-dry for a dry run), --build DIR (reuse a build),
# --steps LIST (only these of tests,load,infer,stages,rate,churn; the environment, the build, the
# context and the cluster description always run; default all).
#
# Every step has a time limit and writes its rows to results.csv as it goes; a step that fails or
# runs out of time is recorded and the next one runs. OUT ends with at most 8 files (the device
# tool brings back no more): results.csv, summary.txt, h200.toml, run.log, logs.tar.gz.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/experiments/h200
out=""
dry=0
budget=540
work=""
build=""
steps=tests,load,infer,stages,rate,churn
while (($#)); do
  case "$1" in
    --cpu-dry-run) dry=1 ;;
    --budget) budget=$2; shift ;;
    --work) work=$2; shift ;;
    --build) build=$2; shift ;;
    --steps) steps=$2; shift ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) out=$1 ;;
  esac
  shift
done
[ -n "$out" ] || { echo "usage: experiments/h200/run.sh OUT [--cpu-dry-run] [--budget S] [--work DIR] [--build DIR] [--steps LIST]" >&2; exit 2; }
for s in ${steps//,/ }; do
  case $s in
    tests | load | infer | stages | rate | churn) ;;
    *) echo "run.sh: --steps: unknown step '$s' (known: tests,load,infer,stages,rate,churn)" >&2; exit 2 ;;
  esac
done
want() { [[ ",$steps," == *",$1,"* ]]; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

if ((dry)); then
  work=${work:-/tmp/hearth-h200-dry}
  build=${build:-$top/build-h200-dry}
  jobs=2
  # A tiny model, a few prompts, the trace faster: the same steps in about a minute.
  model_args=(--dim 128 --layers 2 --heads 4 --ffn 512 --context 512)
  prompts=240
  batch_size=20
  time_scale=0.003  # churn.csv in 4.5 s: workers lost during the runs
  batches=1,2,4,8
  rate_s=3
else
  work=${work:-$top/.h200-work}
  build=${build:-$top/build-h200}
  jobs=16
  # SmolLM2-1.7B's size and depth: 1,713,614,848 parameters, 3.43 GB in bf16.
  model_args=(--dim 2048 --layers 24 --heads 32 --ffn 13312 --context 512)
  prompts=4000
  batch_size=100
  time_scale=0.1
  batches=1,2,4,8,16,32,64,128,256
  rate_s=8
fi
rm -rf "$work"
mkdir -p "$work/logs"
csv=$work/results.csv
logs=$work/logs
echo "section,key,value,unit,note" >"$csv"
started=$(date +%s)
exec > >(tee "$work/run.log") 2>&1

row() {  # section key value unit note
  printf '%s,%s,%s,%s,"%s"\n' "$1" "$2" "$3" "$4" "${5//\"/\'}" >>"$csv"
}
left() { echo $((budget - ($(date +%s) - started))); }
elapsed() { awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN {printf "%.2f", t1 - t0}'; }

# Packs what OUT gets, whatever happened; runs at exit.
pack() {
  tar -czf "$out/logs.tar.gz" -C "$work" logs 2>/dev/null
  cp "$csv" "$out/results.csv"
  [ -f "$work/h200.toml" ] && cp "$work/h200.toml" "$out/h200.toml"
  python3 "$here/report.py" summary "$csv" >"$out/summary.txt" 2>&1
  cp "$work/run.log" "$out/run.log" 2>/dev/null
  echo "================================================================================"
  cat "$out/summary.txt"
}
trap pack EXIT

# step NAME LIMIT_S COMMAND...: runs COMMAND with at most LIMIT_S seconds (less if the budget has
# less left), its output in logs/NAME.log; records its time and status. Returns its status.
step() {
  local name=$1 limit=$2
  shift 2
  local avail
  avail=$(( $(left) - 20 ))  # keep time to pack
  ((limit > avail)) && limit=$avail
  if ((limit < 5)); then
    echo ">> $name: skipped, the budget is spent"
    row step "$name" "" s "skipped (budget)"
    return 124
  fi
  echo ">> $name (limit ${limit}s)"
  local t0 rc
  t0=$(date +%s.%N)
  timeout -k 10 "$limit" "$@" >>"$logs/$name.log" 2>&1
  rc=$?
  local s
  s=$(elapsed "$t0")
  local status=ok
  ((rc == 124 || rc == 137)) && status="timed out after ${limit}s"
  ((rc != 0 && rc != 124 && rc != 137)) && status="failed (exit $rc)"
  row step "$name" "$s" s "$status"
  echo "   $status in ${s}s; tail of logs/$name.log:"
  tail -n 4 "$logs/$name.log" | sed 's/^/   | /'
  return $rc
}

# ---- (a) the machine --------------------------------------------------------------------------
row env mode "" "" "$( ((dry)) && echo "CPU dry run" || echo "GPU run")"
row env steps "" "" "$steps"
row env date "" "" "$(date -u +%Y-%m-%dT%H:%MZ)"
row env host "" "" "$(uname -srm); $(nproc) cores; $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
row env host_memory_bytes "$(($(getconf _PHYS_PAGES) * $(getconf PAGE_SIZE) / 4))" B "a quarter of physical memory"
mkdir -p "$work/data"
row env disk_free_bytes "$(df -B1 --output=avail "$work/data" | tail -1 | tr -d ' ')" B "$(df -T "$work/data" | awk 'NR==2 {print $2 " at " $7}')"
if ((dry)); then
  row env gpu "" "" "none (dry run)"
  torch_prefix=""
else
  if gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1); then
    row env gpu "" "" "$gpu"
    row env gpu_memory_bytes "$(($(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1) * 1048576))" B "nvidia-smi"
  else
    row env gpu "" "" "nvidia-smi failed: $gpu"
  fi
  torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>"$logs/env.log")
  row env torch "" "" "$(python3 -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>&1 | tail -1)"
fi
row env nvcc "" "" "$(nvcc --version 2>&1 | grep -o 'release [0-9.]*' || echo none)"
row env cmake "" "" "$(cmake --version | head -1)"
row env compiler "" "" "$(c++ --version | head -1)"
if ((dry)); then
  row env gpu_memory_bytes "$(($(getconf _PHYS_PAGES) * $(getconf PAGE_SIZE) / 4))" B "dry run: workers announce this for the CPU"
fi

# ---- (b) build --------------------------------------------------------------------------------
deps_ok=1
step deps 60 bash -c "'$top/scripts/fetch-deps' --unpack && '$top/scripts/fetch-deps' --check" || deps_ok=0
row env deps "" "" "$(grep -h -E '^(glibc|libstdc)' "$logs/deps.log" | tr '\n' ';')"
# shellcheck disable=SC1091
[ -f "$top/.deps/env.sh" ] && source "$top/.deps/env.sh"
cmake_args=(-S "$top" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEARTH_SIM=OFF
  -DHEARTH_WERROR=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
[ -n "$torch_prefix" ] && export CMAKE_PREFIX_PATH="${CMAKE_PREFIX_PATH:+$CMAKE_PREFIX_PATH:}$torch_prefix"
nvcc_path=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
if ((!dry)) && [ -n "$nvcc_path" ]; then
  cmake_args+=(-DHEARTH_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc_path")
fi
row env cmake_prefix_path "" "" "${CMAKE_PREFIX_PATH:-}"
built=0
if ((deps_ok)) && step configure 120 cmake "${cmake_args[@]}"; then
  # Everything that builds, even if one target does not (-k 0): a broken plugin still leaves the
  # raw measurements.
  step build 300 ninja -C "$build" -k 0 -j "$jobs" && built=1
else
  echo "   configure failed: trying again without the libtorch plugin, for the raw figures"
  step configure_without_torch 60 cmake "${cmake_args[@]}" -B "$build-notorch" -DHEARTH_TORCH=OFF &&
    step build_without_torch 200 ninja -C "$build-notorch" -k 0 -j "$jobs" hearth gpu_bench &&
    build=$build-notorch
fi
hearth=$build/hearth
bench=$build/bench/gpu_bench
have_torch=0
[ -f "$build/libhearth_torch.so" ] && have_torch=1
row env built "" "" "hearth $([ -x "$hearth" ] && echo yes || echo no); plugin $( ((have_torch)) && echo yes || echo no)"
[ -x "$hearth" ] && ldd "$hearth" >"$logs/ldd-hearth.log" 2>&1

# ---- (c) tests: the CPU-safe subset, then the GPU smoke tests -------------------------------
if want tests && [ -x "$build/tests/real/test_real" ]; then
  step test_cpu 90 "$build/tests/real/test_real" -# "[#fast_loader_test],[#raw_model_test],[#model_test],[#protocol_test],[#job_test],[#transfer_test]"
  ((dry)) || step test_gpu 90 "$build/tests/real/test_real" "[gpu]"
fi

# ---- (d) the context ---------------------------------------------------------------------------
raw=$work/data/model.raw
pt=$work/data/model.pt
if [ -x "$hearth" ] && step generate 120 "$hearth" model builtin "$raw" --format raw --dtype bf16 "${model_args[@]}" --threads "$(nproc)"; then
  line=$(grep 'parameters' "$logs/generate.log" | tail -1)
  row gen parameters "$(echo "$line" | awk '{print $2}')" "" "${model_args[*]}"
  row gen raw_bytes "$(stat -c %s "$raw")" B "bf16"
  row gen raw_s "$(echo "$line" | grep -o 'in [0-9.]* s' | awk '{print $2}')" s "$(nproc) threads, into the page cache"
  want load && ((have_torch)) && step torchscript 120 "$hearth" model builtin "$pt" --dtype bf16 "${model_args[@]}" &&
    row gen torchscript_bytes "$(stat -c %s "$pt")" B "the same model as TorchScript"
fi

# ---- (e) load per tier -------------------------------------------------------------------------
if want load && [ -f "$raw" ] && [ -x "$bench" ]; then
  step load_raw 90 "$bench" raw "$raw" "$csv"
  ((have_torch)) && [ -f "$pt" ] && step load 150 "$bench" load "$raw" "$pt" "$csv"
fi
rm -f "$pt"  # room on the disk for the workers' copies

# ---- (f) inference -----------------------------------------------------------------------------
want infer && ((have_torch)) && [ -f "$raw" ] && step infer 120 "$bench" infer "$raw" "$csv" "$batches"

# ---- the worker's stages and the shared-GPU inference rate, for the simulator ---------------
if ((have_torch)) && [ -f "$raw" ]; then
  # 8 copies at once, as many as the disk holds beside the original and two spare.
  copies=$(($(df -B1 --output=avail "$work/data" | tail -1) / $(stat -c %s "$raw") - 2))
  ((copies > 8)) && copies=8
  ((copies < 1)) && copies=1
  want stages && step stages 120 "$bench" stages "$raw" "$csv" "$work/stages" "$copies"
  rm -rf "$work/stages"
  start_at=$(($(date +%s) + 20))  # time for all eight to load: each says how late it was
  rate_cmd="for i in 0 1 2 3 4 5 6 7; do '$bench' rate '$raw' '$csv' process-\$i $start_at $rate_s & done; wait"
  want rate && step rate8 $((40 + rate_s)) bash -c "$rate_cmd"
fi

# ---- (g) pcm against naive under churn --------------------------------------------------------
row churn time_scale "$time_scale" "" "real seconds per trace second"
row churn prompts "$prompts" "" "256 bytes each"
row churn batch_size "$batch_size" "" ""
cp "$here/churn.csv" "$work/churn.csv"
churn() {  # POLICY LIMIT_S
  local p=$1 dir=$work/churn-$1
  mkdir -p "$dir"
  cp "$here/job.toml" "$dir/job.toml"
  sed -i "s/^batch_size = .*/batch_size = $batch_size/" "$dir/job.toml"
  ln -sf "$raw" "$dir/model.raw"
  python3 "$here/make_prompts.py" "$prompts" "$dir/prompts.jsonl"
  local t0 rc smi=""
  mkdir -p "$logs/churn-$p"
  if ((!dry)); then  # the device's memory and load while it runs, every second
    nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader,nounits -l 1 \
      >"$logs/churn-$p/nvidia-smi.csv" 2>&1 &
    smi=$!
  fi
  t0=$(date +%s.%N)
  step "churn-$p" "$2" "$hearth" run "$dir/job.toml" --trace "$work/churn.csv" --time-scale "$time_scale" \
    --policy "$p" --decision-log "$logs/churn-$p" -q
  rc=$?
  if [ -n "$smi" ]; then
    kill "$smi" 2>/dev/null
    wait "$smi" 2>/dev/null
    row churn "${p}_peak_device_memory_GB" \
      "$(awk -F', *' '$2 + 0 > m {m = $2 + 0} END {printf "%.1f", m * 1048576 / 1e9}' "$logs/churn-$p/nvidia-smi.csv")" \
      GB "nvidia-smi memory.used, sampled each second"
  fi
  row churn "${p}_wall_s" "$(elapsed "$t0")" s "hearth run, start to exit"
  row churn "${p}_exit" "$rc" "" "$([ $rc = 0 ] && echo finished || echo "exit $rc")"
  [ -f "$dir/labels.jsonl" ] && row churn "${p}_inferences" "$(wc -l <"$dir/labels.jsonl")" "" "rows in the output"
  if [ -f "$logs/churn-$p/events.log" ]; then
    row churn "${p}_makespan_s" "$(awk '$2 == "finished" {t = $1} END {print t}' "$logs/churn-$p/events.log")" s \
      "the last task's end, manager clock from the start of the replay"
  fi
  cp "$dir"/job.state/workers/logs/*.log "$logs/churn-$p/" 2>/dev/null
  rm -rf "$dir/job.state/workers"
}
if want churn && ((have_torch)) && [ -f "$raw" ]; then
  churn pcm 120
  churn naive 180
fi

# ---- (h) the cluster description, computed ----------------------------------------------------
python3 "$here/report.py" calibrate "$csv" "$work/h200.toml" >>"$logs/calibrate.log" 2>&1 &&
  row step calibrate "" "" ok || row step calibrate "" "" "failed: see logs/calibrate.log"
rm -rf "$work/data" "$work"/churn-*/
