# Shared by the shell tests (sourced, POSIX sh): failures are counted, not fatal, so that one run
# reports every broken check. Set `out_dir` (where command output goes) before using `expect`.
failures=0

# fail WHAT: one more failure, said on stderr.
fail() {
  echo "FAILED: $*" >&2
  failures=$((failures + 1))
}

# without_asan_notes: standard input without the notice AddressSanitizer prints (3 lines) when a
# SimGrid actor, on a stack of SimGrid's own, throws: not a report, and not the program's output.
without_asan_notes() {
  sed '/^==[0-9]*==WARNING: ASan is ignoring requested __asan_handle_no_return/,+2d'
}

# expect STATUS STDERR_TEXT COMMAND...: exit status and the exact standard error; standard output
# is left in "$out_dir/out".
expect() {
  want_status=$1
  want_error=$2
  shift 2
  "$@" >"$out_dir/out" 2>"$out_dir/err"
  status=$?
  [ "$status" = "$want_status" ] || fail "$* exited $status, expected $want_status"
  error=$(without_asan_notes <"$out_dir/err")
  [ "$error" = "$want_error" ] || fail "$*: stderr was '$error'"
}

# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds, polled 5 times a second; a failure if
# it never does (the bound is against a hang, not a timing the test relies on).
wait_for() {
  what=$1
  limit=$2
  shift 2
  for _ in $(seq 1 $((limit * 5))); do
    "$@" && return 0
    sleep 0.2
  done
  fail "waited $limit s for $what"
  return 1
}

# replays TOP HEARTH TRACE DIR: a recorded trace (A100-40GB workers) runs 200 inferences in
# `hearth simulate` on the campus cluster description, and finishes.
replays() {
  cat >"$4/scenario.toml" <<TOML
cluster = "$1/experiments/clusters/campus.toml"
trace = "$3"
[[contexts]]
name = "m"
size_bytes = 1e9
init_s = 5
inferences = 200
TOML
  "$2" simulate "$4/scenario.toml" --quiet >"$4/simulate.txt" 2>&1 ||
    fail "the recorded trace does not replay: $(cat "$4/simulate.txt")"
}
