#pragma once
// A CommandRunner for tests: records every command line and answers each program with the
// results queued for it, in order (the last one repeats).

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "real_backend/factory/batch_system.hpp"

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

}  // namespace hearth::testing
