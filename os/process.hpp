#pragma once
// Child processes: a command run to its end (its output captured, or shown), a process started
// to run beside this one with its output appended to a log, and the end of one.

#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

namespace hearth::os {

// What a command printed and how it ended.
struct CommandResult {
  int status = 0;  // exit status; 128 + signal if killed; 127 if it could not be started
  std::string out;
  std::string err;
};

// Runs a command without a shell (argv[0] looked up in PATH) with stdin from /dev/null,
// capturing its output; kills it after timeout_s.
CommandResult run_command(const std::vector<std::string>& argv, double timeout_s = 60);

// Runs argv[0] (a path: not looked up in PATH) without a shell, its output going where this
// process's goes, and returns its exit status (128 + signal if killed). Throws
// std::runtime_error("cannot run ARGV0: reason") if it cannot be started.
int run_program(const std::vector<std::string>& argv);

struct StartOptions {
  // The child is killed when this process dies (PDEATHSIG).
  bool die_with_parent = false;
  // SIGTERM stays blocked in the child, pending until it unblocks it: a program that takes
  // SIGTERM as a message (`hearth worker`: a preemption notice) then misses none sent before its
  // handler is in place.
  bool hold_sigterm = false;
  // "NAME=value" each, added to this process's environment (replacing a variable of that name).
  std::vector<std::string> environment;
};

// Starts argv[0] (an absolute path) as a child process with stdout and stderr appended to `log`
// (inherited if `log` cannot be opened). Returns its pid, or -1 if fork failed.
pid_t start_process(const std::vector<std::string>& argv, const std::filesystem::path& log,
                    const StartOptions& options = {});

// The value of environment variable `name`, or `otherwise` when it is unset or empty.
std::string environment_or(const char* name, const char* otherwise);

// Kills a child process (SIGKILL) and waits for it.
void kill_and_reap(pid_t pid);

// A waitpid() status as an exit status: 128 + signal for a process killed by one.
int exit_status(int wait_status);

// From now on SIGINT and SIGTERM set the flag returned, instead of ending the process, so that a
// long command (a run, a recording) ends cleanly at its next look.
const std::atomic<bool>& stop_on_interrupt();

}  // namespace hearth::os
