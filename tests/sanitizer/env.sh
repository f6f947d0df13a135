# The sanitizers' run-time options for a build with -DHEARTH_SANITIZE=address or thread: source
# this before ctest (scripts/sanitize and .ci/run do). Every report stops the process that makes
# it, so the test it runs in fails.
#
# Leaks are not looked for (HEARTH_DETECT_LEAKS=1 turns LeakSanitizer on, with lsan.supp): its
# exit-time tracer crashes on a bogus dynamic-TLS block ("Tracer caught signal 11", "DTLS 15 at
# 0x1e6a") in libtorch tests, depending on the process's layout: one test failed so every time
# it ran under ctest, and never when run directly. The fuzz harnesses do look for leaks.
sanitizer_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=${HEARTH_DETECT_LEAKS:-0}:strict_string_checks=1:detect_stack_use_after_return=0
export LSAN_OPTIONS=suppressions=$sanitizer_dir/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$sanitizer_dir/tsan.supp
unset sanitizer_dir
