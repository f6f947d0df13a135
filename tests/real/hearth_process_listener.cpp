// Nothing a test case starts outlives it: the hearth processes it started and left running (after
// a failed REQUIRE, say, with workers waiting at a gate) are killed when it ends.

#include <catch2/interfaces/catch_interfaces_reporter.hpp>
#include <catch2/reporters/catch_reporter_event_listener.hpp>
#include <catch2/reporters/catch_reporter_registrars.hpp>

#include "tests/real/hearth_process.hpp"

namespace {

class KillLeftovers final : public Catch::EventListenerBase {
 public:
  using Catch::EventListenerBase::EventListenerBase;

  void testCaseEnded(const Catch::TestCaseStats&) override {
    using namespace hearth::testing;
    for (pid_t pid : started_processes()) {
      if (still_running(pid)) kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);  // unless exit_status() has reaped it already
    }
    started_processes().clear();
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(KillLeftovers)
