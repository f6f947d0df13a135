#include "real_backend/factory/batch_system.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

extern char** environ;

namespace hearth::real {

namespace {

// Closes a file descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

}  // namespace

CommandResult run_command(const std::vector<std::string>& args, double timeout_s) {
  CommandResult result;
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  Fd out_read{out_pipe[0]}, out_write{out_pipe[1]};
  if (pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  Fd err_read{err_pipe[0]}, err_write{err_pipe[1]};

  // posix_spawn rather than fork: the manager has threads.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_write.fd, STDERR_FILENO);
  std::vector<char*> argv;
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
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

  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  bool timed_out = false;
  while (out_read.fd >= 0 || err_read.fd >= 0) {
    pollfd fds[2] = {{out_read.fd, POLLIN, 0}, {err_read.fd, POLLIN, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    Fd* pipes[2] = {&out_read, &err_read};
    std::string* sinks[2] = {&result.out, &result.err};
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[4096];
      ssize_t n = ::read(pipes[i]->fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        pipes[i]->reset();
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (timed_out) result.err += fmt::format("\n{} did not finish within {} s", args[0], timeout_s);
  return result;
}

std::string trimmed(const std::string& text) {
  std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

std::string complaint(const CommandResult& r) {
  std::string said = trimmed(r.err.empty() ? r.out : r.err);
  return said.empty() ? fmt::format("exit status {}", r.status) : said;
}

CommandResult submit_or_throw(const CommandRunner& run, const std::vector<std::string>& argv) {
  CommandResult r = run(argv);
  if (r.status != 0) {
    throw BatchError(fmt::format("{} refused the workers: {}\n  the command: {}", argv.at(0),
                                 complaint(r), command_line(argv)));
  }
  return r;
}

void cancel_jobs(const CommandRunner& run, const std::string& command,
                 const std::vector<std::string>& jobs) {
  if (jobs.empty()) return;
  std::vector<std::string> argv = {command};
  argv.insert(argv.end(), jobs.begin(), jobs.end());
  CommandResult r = run(argv);
  if (r.status != 0) spdlog::info("{}: {}", command, complaint(r));
}

std::string shell_quote(const std::string& text) {
  bool plain = !text.empty() && text.find_first_not_of(
                                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                                    "QRSTUVWXYZ0123456789_-+=.,/:@%") == std::string::npos;
  if (plain) return text;
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string line;
  for (const std::string& a : argv) {
    if (!line.empty()) line += ' ';
    line += shell_quote(a);
  }
  return line;
}

std::string worker_script(const FactorySettings& settings, const std::string& manager_address,
                          const std::string& keys, const std::string& job_lines,
                          const std::string& name_prefix, const std::string& cache) {
  std::string script = "#!/bin/sh\n" + job_lines;
  script += fmt::format("exec {} worker --manager {} --keys {} --name {}\"$job\"",
                        shell_quote(settings.hearth.string()), shell_quote(manager_address),
                        shell_quote(keys), shell_quote(name_prefix));
  if (!cache.empty()) script += fmt::format(" --cache \"{}\"", cache);
  for (const std::string& a : settings.worker_args)
    script += " " + shell_quote(a);
  return script + "\n";
}

void write_text_file(const std::filesystem::path& path, const std::string& text, bool executable) {
  std::filesystem::create_directories(path.parent_path());
  {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error(fmt::format("{}: cannot write", path.string()));
  }
  using std::filesystem::perms;
  std::filesystem::permissions(
      path, executable
                ? perms::owner_all | perms::group_read | perms::group_exec | perms::others_read |
                      perms::others_exec
                : perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
}

}  // namespace hearth::real
