#include "os/process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "os/fd.hpp"

extern char** environ;

namespace hearth::os {

namespace {

// The argv array of exec and posix_spawn, pointing into `args`.
std::vector<char*> c_argv(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return exit_status(status);
}

// Reads both pipes until each reaches its end or the deadline passes; true if it passed.
bool read_until_closed(Fd& out_read, Fd& err_read, CommandResult& result, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (out_read.is_open() || err_read.is_open()) {
    pollfd fds[2] = {{out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return true;
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) return false;
    Fd* pipes[2] = {&out_read, &err_read};
    std::string* sinks[2] = {&result.out, &result.err};
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[4096];
      ssize_t n = ::read(pipes[i]->get(), buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        pipes[i]->reset();
      }
    }
  }
  return false;
}

}  // namespace

int exit_status(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

CommandResult run_command(const std::vector<std::string>& args, double timeout_s) {
  CommandResult result;
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  Fd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  Fd err_read(err_pipe[0]), err_write(err_pipe[1]);

  // posix_spawn rather than fork: callers may have threads (the manager does).
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);
  std::vector<char*> argv = c_argv(args);
  pid_t pid = -1;
  int spawned = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    result.status = 127;
    result.err = fmt::format("cannot run {}: {}", args[0], std::strerror(spawned));
    return result;
  }
  out_write.reset();
  err_write.reset();

  const bool timed_out = read_until_closed(out_read, err_read, result, timeout_s);
  if (timed_out) kill(pid, SIGKILL);
  result.status = wait_for(pid);
  if (timed_out) result.err += fmt::format("\n{} did not finish within {} s", args[0], timeout_s);
  return result;
}

int run_program(const std::vector<std::string>& args) {
  std::vector<char*> argv = c_argv(args);
  pid_t pid = 0;
  const int error = posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  if (error != 0) {
    throw std::runtime_error(fmt::format("cannot run {}: {}", args[0], std::strerror(error)));
  }
  return wait_for(pid);
}

namespace {

// This process's environment with `added` ("NAME=value") in place of variables of those names,
// as an envp array pointing into both.
std::vector<char*> environment_with(const std::vector<std::string>& added) {
  std::vector<char*> envp;
  for (const std::string& e : added)
    envp.push_back(const_cast<char*>(e.c_str()));
  for (char** e = environ; *e; ++e) {
    std::string_view name(*e, std::strcspn(*e, "="));
    bool replaced = std::any_of(added.begin(), added.end(), [&](const std::string& mine) {
      return mine.size() > name.size() && mine.starts_with(name) && mine[name.size()] == '=';
    });
    if (!replaced) envp.push_back(*e);
  }
  envp.push_back(nullptr);
  return envp;
}

}  // namespace

pid_t start_process(const std::vector<std::string>& args, const std::filesystem::path& log,
                    const StartOptions& options) {
  std::vector<char*> argv = c_argv(args);
  std::vector<char*> envp = environment_with(options.environment);
  Fd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec: the parent may have threads.
    if (options.die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
    }
    if (options.hold_sigterm) {
      sigset_t term;
      sigemptyset(&term);
      sigaddset(&term, SIGTERM);
      sigprocmask(SIG_BLOCK, &term, nullptr);  // the mask survives exec
    }
    if (log_fd.is_open()) {
      dup2(log_fd.get(), STDOUT_FILENO);
      dup2(log_fd.get(), STDERR_FILENO);
    }
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

std::string environment_or(const char* name, const char* otherwise) {
  const char* value = std::getenv(name);
  return value && *value ? value : otherwise;
}

void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

namespace {

std::atomic<bool> interrupted{false};

extern "C" void on_interrupt(int) {
  interrupted = true;
}

}  // namespace

const std::atomic<bool>& stop_on_interrupt() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return interrupted;
}

}  // namespace hearth::os
