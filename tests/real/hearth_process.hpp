#pragma once
// Test support for runs of the hearth executable: start one (its workers behind a gate, if the
// test needs them to wait), wait for what its log says and for its exit status, read what a run
// wrote.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string_view>

#include "os/process.hpp"
#include "tests/real/gate.hpp"
#include "tests/real/helpers.hpp"

namespace hearth::testing {

// The processes start_hearth() started in this test case; hearth_process_listener.cpp kills those
// still running when it ends.
inline std::vector<pid_t>& started_processes() {
  static std::vector<pid_t> pids;
  return pids;
}

// Starts `hearth ARGS...` with stdout and stderr appended to `log`, with `env` ("NAME=value",
// each taking the place of a variable of that name) added to this process's environment, which its
// workers inherit in turn.
inline pid_t start_hearth(std::vector<std::string> args, const fs::path& log,
                          std::vector<std::string> env = {}) {
  args.insert(args.begin(), HEARTH_EXECUTABLE);
  os::StartOptions options;
  options.environment = std::move(env);
  pid_t pid = os::start_process(args, log, options);
  started_processes().push_back(pid);
  return pid;
}

// Whether the child `pid` has not exited yet. Does not reap it: exit_status() does that, once.
inline bool still_running(pid_t pid) {
  siginfo_t info{};
  return waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == 0;
}

// The exit status of the child `pid`, which it reaps, waiting up to timeout_s (then it is killed
// and the test fails).
inline int exit_status(pid_t pid, double timeout_s = 120) {
  int status = 0;
  pid_t reaped = 0;
  bool ended = wait_for([&] { return (reaped = waitpid(pid, &status, WNOHANG)) != 0; }, timeout_s);
  if (reaped < 0) FAIL("cannot wait for process " << pid << ": " << std::strerror(errno));
  if (!ended) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL("hearth did not finish within " << timeout_s << " s");
  }
  return os::exit_status(status);
}

// How many lines of `file` contain `text`.
inline int lines_with(const fs::path& file, const std::string& text) {
  std::istringstream in(read_file(file));
  int n = 0;
  for (std::string line; std::getline(in, line);)
    n += line.find(text) != std::string::npos;
  return n;
}

// Waits until `count` lines of the log `file` contain `text`; fails the test if the process
// `pid` ends first, or if that takes more than timeout_s (which only a hang reaches).
inline void wait_for_log(const fs::path& file, const std::string& text, pid_t pid, int count = 1,
                         double timeout_s = 120) {
  INFO(file.string() << ": waiting for " << count << " lines with \"" << text << "\"");
  wait_for([&] { return lines_with(file, text) >= count || !still_running(pid); }, timeout_s);
  REQUIRE(lines_with(file, text) >= count);
}

// The address a `hearth run` whose output goes to `log` tells workers to dial ("host:port"),
// once it has said it; fails the test if it never does.
inline std::string manager_address(const fs::path& log) {
  std::string address;
  REQUIRE(wait_for([&] {
    std::string text = read_file(log);
    auto at = text.find("--manager ");
    if (at == std::string::npos) return false;
    address = text.substr(at + 10, text.find(' ', at + 10) - at - 10);
    return true;
  }));
  return address;
}

// The environment that puts the workers of a hearth run behind `gate` (tests/real/gate.hpp).
inline std::vector<std::string> behind(const Gate& gate) {
  return {std::string("HEARTH_TORCH_RUNTIME=") + HEARTH_GATED_TORCH,
          "HEARTH_TEST_GATE=" + gate.dir().string()};
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

// Kills `kills` workers of the hearth run `manager`: after each `step` more inferences the gate
// allows, one (a seeded choice) of the workers then blocked mid-task at the gate. The run cannot
// end before the last kill as long as it has more than kills * step inferences.
inline void kill_blocked_workers(pid_t manager, Gate& gate, std::uint64_t step, int kills,
                                 std::uint32_t seed) {
  std::mt19937 random(seed);
  std::set<pid_t> killed;
  for (std::uint64_t allowed = step; allowed <= step * kills; allowed += step) {
    gate.allow(allowed);
    std::vector<pid_t> waiting;
    REQUIRE(wait_for(
        [&] {
          waiting.clear();
          for (pid_t w : children_of(manager)) {
            if (!killed.count(w) && gate.waiting(w)) waiting.push_back(w);
          }
          return gate.used() == allowed && !waiting.empty();
        },
        120));
    pid_t victim = waiting[random() % waiting.size()];
    REQUIRE(kill(victim, SIGKILL) == 0);
    killed.insert(victim);
  }
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
