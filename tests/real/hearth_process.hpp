#pragma once
// Test support for runs of the hearth executable: start one, wait for its exit status, read what
// a run wrote.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch_test_macros.hpp>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/real/helpers.hpp"

namespace hearth::testing {

// Starts `hearth ARGS...` with stdout and stderr appended to `log`.
inline pid_t start_hearth(std::vector<std::string> args, const fs::path& log) {
  args.insert(args.begin(), HEARTH_EXECUTABLE);
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(fd);
  return pid;
}

// The exit status of `pid`, waiting up to timeout_s (then it is killed and the test fails).
inline int exit_status(pid_t pid, double timeout_s = 120) {
  int status = 0;
  bool ended = wait_for([&] { return waitpid(pid, &status, WNOHANG) == pid; }, timeout_s);
  if (!ended) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL("hearth did not finish within " << timeout_s << " s");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The child processes of `pid`.
inline std::vector<pid_t> children_of(pid_t pid) {
  std::istringstream in(
      read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children"));
  std::vector<pid_t> out;
  for (pid_t c; in >> c;)
    out.push_back(c);
  return out;
}

// The ids in an output file, each checked to appear once and to carry a result; returns them.
inline std::set<std::string> ids_once(const fs::path& output) {
  std::set<std::string> ids;
  std::istringstream in(read_file(output));
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    CHECK(ids.insert(j.at("id").get<std::string>()).second);
    CHECK(j.contains("result"));
  }
  return ids;
}

// p0 ... p(n-1), as write_prompts names them.
inline std::set<std::string> prompt_ids(int n) {
  std::set<std::string> ids;
  for (int i = 0; i < n; ++i)
    ids.insert("p" + std::to_string(i));
  return ids;
}

}  // namespace hearth::testing
