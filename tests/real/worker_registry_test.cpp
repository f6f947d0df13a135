// The manager's book of workers: when a worker counts as silent. A worker whose messages came
// with long gaps of late (its process starved on a loaded machine) is given a longer budget, up to
// four times the timeout; one that keeps time is held to the timeout.

#include <catch2/catch_test_macros.hpp>

#include "real_backend/manager/worker_registry.hpp"

using namespace hearth;
using namespace hearth::real;

namespace {

WorkerId join(WorkerRegistry& workers, const std::string& name, double at_s) {
  WorkerSlot slot;
  slot.routing = "route-" + name;
  slot.name = name;
  slot.last_heard_s = at_s;
  return workers.join(std::move(slot));
}

}  // namespace

TEST_CASE("silence: the timeout for a worker that keeps time, longer for one that was starved") {
  WorkerRegistry workers;
  WorkerId steady = join(workers, "steady", 0), starved = join(workers, "starved", 0);
  // Heartbeats every 0.1 s; the starved one's came 1.2 s apart once (5.0 to 6.2).
  for (int tenth = 1; tenth <= 100; ++tenth) {
    workers.heard(steady, tenth / 10.0);
    if (tenth <= 50 || tenth >= 62) workers.heard(starved, tenth / 10.0);
  }
  CHECK(workers.silence_budget(steady, 1.0) == 1.0);
  double budget = workers.silence_budget(starved, 1.0);  // 3 * 1.2, decayed over 3.8 s
  CHECK(budget > 3.3);
  CHECK(budget < 3.6);
  CHECK(workers.silent(10.9, 1.0).empty());
  CHECK(workers.silent(11.1, 1.0) == std::vector<WorkerId>{steady});
  CHECK(workers.silent(13.2, 1.0) == std::vector<WorkerId>{steady});
  CHECK(workers.silent(13.7, 1.0) == std::vector<WorkerId>{steady, starved});
  // Never more than 4 times the timeout, however long the gap was.
  workers.heard(starved, 30);
  CHECK(workers.silence_budget(starved, 1.0) == 4.0);
  // Back to the timeout once it has kept time for a while (10 minutes here).
  for (int tenth = 301; tenth <= 6300; ++tenth)
    workers.heard(starved, tenth / 10.0);
  CHECK(workers.silence_budget(starved, 1.0) == 1.0);
  // A lost worker is never silent.
  workers.lose(steady);
  CHECK(workers.silent(700, 1.0) == std::vector<WorkerId>{starved});
}
