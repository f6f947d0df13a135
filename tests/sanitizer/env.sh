# The sanitizers' run-time options for a build with -DHEARTH_SANITIZE=address: source this before
# ctest (scripts/sanitize and .ci/run do). Every report stops the process that makes it, so the
# test it runs in fails; leaks are reported at exit, but for those in lsan.supp.
sanitizer_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=0
export LSAN_OPTIONS=suppressions=$sanitizer_dir/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
unset sanitizer_dir
