// What watching a run costs the manager's loop: the run's record (run_monitor.hpp) of a 500-GPU
// pool, events written to a file as they happen, and the status snapshot built and serialized,
// which the manager does once a second. docs/BENCHMARKS.md, "Watching a run".

#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>

#include "bench/timing.hpp"
#include "real_backend/manager/run_monitor.hpp"

using namespace hearth;
using namespace hearth::real;

int main() {
  const int workers = 500, contexts = 4, tasks_per_worker = 200;
  std::filesystem::path events =
      std::filesystem::temp_directory_path() / fmt::format("hearth-bench-{}.jsonl", getpid());
  double now = 0;
  RunMonitorSetup setup;
  setup.total = 10'000'000;
  for (int c = 0; c < contexts; ++c)
    setup.contexts.emplace_back(fmt::format("ctx{}", c), 3.4e9);
  setup.events_path = events;
  RunMonitor m(setup, [&] { return now; });

  // Every worker joins, loads two contexts and runs its tasks: about 1,000 events per worker.
  std::uint64_t n_events = 0;
  double record_s = bench::seconds([&] {
    for (WorkerId w = 0; w < workers; ++w) {
      m.worker_joined(w, fmt::format("gpu-{}", w), w % 3 ? "a100" : "h100", "10.0.0.1");
      ++n_events;
    }
    AttemptId attempt = 1;
    for (int t = 0; t < tasks_per_worker; ++t) {
      for (WorkerId w = 0; w < workers; ++w) {
        ContextId c = (w + t / 50) % contexts;
        now += 0.001;
        if (t % 50 == 0) {
          m.stage_started(w, c, Tier::gpu, "lower_tier", kNoWorker);
          m.stage_ready(w, c, Tier::gpu);
          n_events += 2;
        }
        m.task_started(w, TaskSpec{attempt, attempt, c, 0, 100}, false);
        now += 0.001;
        m.task_finished(w, attempt++);
        n_events += 2;
      }
    }
  });
  RunTotals totals;
  totals.done = 10'000'000;
  std::size_t bytes = 0;
  double snapshot_s = bench::best_of_3([&] {
    bytes = m.snapshot(totals)
                .dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
                .size();
  });
  std::filesystem::remove(events);
  fmt::print("{} workers, {} events recorded (with the events file) in {:.2f} s: {:.1f} us/event\n",
             workers, n_events, record_s, 1e6 * record_s / static_cast<double>(n_events));
  fmt::print("status snapshot: {:.1f} ms to build and serialize, {:.1f} MB\n", 1e3 * snapshot_s,
             static_cast<double>(bytes) / 1e6);
}
