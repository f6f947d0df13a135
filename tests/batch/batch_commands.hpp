#pragma once
// A batch system's commands, as its tests see them: a CommandRunner that records every command
// line and answers each program with the results queued for it, in order (the last one repeats),
// the settings and the work directory the tests start from, and the errors the commands end in.

#include <catch2/catch_test_macros.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "real_backend/factory/batch_system.hpp"
#include "tests/real/helpers.hpp"

namespace hearth::testing {

struct ScriptedRunner {
  std::vector<std::vector<std::string>> calls;
  std::map<std::string, std::deque<real::CommandResult>> answers;  // by program

  void answer(const std::string& program, real::CommandResult result) {
    answers[program].push_back(std::move(result));
  }

  real::CommandRunner runner() {
    return [this](const std::vector<std::string>& argv) {
      calls.push_back(argv);
      auto& queue = answers[argv.at(0)];
      if (queue.empty()) return real::CommandResult{127, "", argv[0] + ": not scripted"};
      real::CommandResult r = queue.front();
      if (queue.size() > 1) queue.pop_front();
      return r;
    };
  }
};

// What each worker's job asks the batch system for.
struct Requests {
  int gpus = 0;
  int cpus = 1;
  std::uint64_t memory_mb = 0;
  std::uint64_t disk_mb = 0;
  double time_limit_s = 0;
};

// Where a batch system's test starts: a work directory, settings for workers submitted from it
// (the hearth executable and the worker key on a shared file system, asking for `requests`), and
// a scripted runner.
struct BatchCommands {
  explicit BatchCommands(const Requests& requests = {}) {
    settings.hearth = "/shared/bin/hearth";
    settings.per_job_keys = false;
    settings.keys = "/shared/job.state/keys/worker.key";
    settings.work_dir = dir.path;
    settings.gpus = requests.gpus;
    settings.cpus = requests.cpus;
    settings.memory_mb = requests.memory_mb;
    settings.disk_mb = requests.disk_mb;
    settings.time_limit_s = requests.time_limit_s;
  }
  TempDir dir;
  real::FactorySettings settings;
  ScriptedRunner run;
};

// The message of the BatchError that f throws; fails the test when it throws none.
template <class F>
std::string batch_error(F&& f) {
  try {
    f();
  } catch (const real::BatchError& e) {
    return e.what();
  }
  FAIL("expected a BatchError, but nothing was thrown");
  return {};
}

}  // namespace hearth::testing
