// What the manager tells its factory: the work the core still has at each tick, and the names of
// the workers that join.

#include <catch2/catch_test_macros.hpp>

#include <mutex>

#include "real_backend/factory/worker_factory.hpp"
#include "tests/real/gate.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;

namespace {

// Records what the manager reports; starts nothing.
class RecordingFactory final : public WorkerFactory {
 public:
  void start(const std::string& address) override {
    std::lock_guard lock(mutex);
    started_with = address;
  }
  std::vector<pid_t> tick(const PoolStatus& pool) override {
    std::lock_guard lock(mutex);
    ticks.push_back(pool);
    return {};
  }
  void worker_joined(const std::string& name) override {
    std::lock_guard lock(mutex);
    joined.push_back(name);
  }
  bool exhausted() const override { return false; }
  void stop(double) override { stopped = true; }

  std::vector<PoolStatus> seen() {
    std::lock_guard lock(mutex);
    return ticks;
  }

  std::mutex mutex;
  std::string started_with;
  std::vector<PoolStatus> ticks;
  std::vector<std::string> joined;
  std::atomic<bool> stopped{false};
};

bool same(const PoolStatus& a, const PoolStatus& b) {
  return a.pending_inferences == b.pending_inferences &&
         a.unfinished_inferences == b.unfinished_inferences && a.live_workers == b.live_workers &&
         a.busy_workers == b.busy_workers;
}

}  // namespace

TEST_CASE("the manager ticks its factory with the pending and unfinished work and the workers") {
  TempDir dir;
  // Tasks of one inference: whenever the worker holds one, exactly one inference is not pending.
  RunPlan plan(read_job_file(write_classify_job(dir / "job.toml", 200, 1)));
  ManagerOptions options;
  options.keys = load_or_create_keys(dir / "keys");
  Manager manager(plan, plan.job().engine, options);
  RecordingFactory factory;
  std::atomic<bool> stop{false};
  RunEnd end = RunEnd::stopped;
  std::thread run([&] { end = manager.run(stop, &factory); });

  // Before any worker: every inference waits.
  REQUIRE(wait_for([&] { return !factory.seen().empty(); }));
  CHECK(same(factory.seen().front(), PoolStatus{200, 200, 0, 0}));
  CHECK(factory.started_with == manager.address());
  Gate gate(dir / "gate");
  GatedRuntime runtime(torch_runtime(), gate);
  {
    WorkerThread w(worker_options(manager, options.keys, dir.path, "slurm-17_3", &runtime));
    // Its first inference waits until a tick has seen the worker busy with it.
    bool busy_seen = wait_for([&] {
      std::vector<PoolStatus> ticks = factory.seen();
      return std::any_of(ticks.begin(), ticks.end(), [](const PoolStatus& p) {
        return p.live_workers == 1 && p.busy_workers == 1;
      });
    });
    gate.open();
    CHECK(busy_seen);
    w.join();  // the run ends when the worker has done everything
  }
  run.join();
  CHECK(end == RunEnd::finished);
  CHECK(factory.joined == std::vector<std::string>{"slurm-17_3"});
  CHECK(factory.stopped);
  std::vector<PoolStatus> ticks = factory.seen();
  for (const PoolStatus& p : ticks) {
    // Tasks of one inference: each busy worker runs one and may hold its next (pipelined).
    CHECK(p.pending_inferences + p.busy_workers <= p.unfinished_inferences);
    CHECK(p.unfinished_inferences <= p.pending_inferences + 2 * p.busy_workers);
    CHECK(p.busy_workers <= p.live_workers);
    CHECK(p.live_workers <= 1);
  }
}
