// The policy engine, unchanged, on the simulated cluster: hand-computed makespans, preemptions,
// the lower bound, the GPU-time split, and the same decisions as a replay of the same events.

#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>

#include <cmath>

#include "policy/command_log.hpp"
#include "sim_backend/lower_bound.hpp"
#include "tests/sim/fixtures.hpp"
#include "traces/generator.hpp"

using namespace hearth;
using namespace hearth::sim;
using namespace hearth::sim::testing;

namespace {

// Round cluster (fixtures.hpp): a context load from nothing is 60 s, a task of 10 inferences 5 s.
const std::vector<Row> kOneWorkerAlwaysUp = {{0, "up", "a"}};

// Times from SimGrid are exact up to its solver's precision.
Catch::Approx exactly(double x) {
  return Catch::Approx(x).epsilon(1e-9);
}

// A pool of 20 round GPUs with churn: offers every minute on average, lifetimes of 10 minutes on
// average, at most 10 held; seeded.
traces::Trace churn_trace(std::uint64_t seed) {
  traces::GeneratorConfig g;
  g.seed = seed;
  g.duration_s = 3 * 3600;
  g.pool = {{"G", 20}};
  g.max_held = 10;
  g.initial = 3;
  g.arrivals = {traces::Arrivals::Kind::poisson, 60, 0, 0};
  g.lifetime.kind = traces::Lifetime::Kind::exponential;
  g.lifetime.mean_s = 600;
  return traces::generate_trace(g);
}

Scenario two_contexts_with_churn(std::uint64_t seed, const std::string& placement) {
  Scenario s = one_context(kOneWorkerAlwaysUp, 1000, placement);
  s.trace = churn_trace(seed);
  s.workload.add({0, "other-model", 2e9, 10.0}, 700);
  s.seed = seed;
  check_scenario(s);
  return s;
}

}  // namespace

TEST_CASE("naive placement reloads the context for every task: 10 tasks take 10 * (60 + 5) s") {
  SimResult r = simulate(one_context(kOneWorkerAlwaysUp, 100, "naive"));
  CHECK(r.summary.finished);
  CHECK(r.summary.makespan_s == exactly(650));
  CHECK(r.summary.inferences_done == 100);
  CHECK(r.summary.context_loads[static_cast<int>(LoadSource::shared_storage)] == 10);
  CHECK(r.summary.shared_storage_bytes == exactly(10e9));
}

TEST_CASE("pcm placement loads the context once: 10 tasks take 60 + 10 * 5 s") {
  SimResult r = simulate(one_context(kOneWorkerAlwaysUp, 100, "pcm"));
  CHECK(r.summary.finished);
  CHECK(r.summary.makespan_s == exactly(110));
  CHECK(r.summary.context_loads[static_cast<int>(LoadSource::shared_storage)] == 1);
  // Nothing beats one load and the work on the only GPU: the bound is met.
  CHECK(r.summary.lower_bound_s == exactly(110));
}

TEST_CASE("a preemption mid-task requeues it; the makespan grows by the lost work plus a reload") {
  // Task 2 runs from 65 s; the worker is lost at 67 s and back at once. 2 s of work are lost and
  // the context is loaded again (60 s): 110 + 2 + 60 = 172 s.
  SimResult r =
      simulate(one_context({{0, "up", "a"}, {67, "down", "a"}, {67, "up", "a"}}, 100, "pcm"));
  const Summary& s = r.summary;
  CHECK(s.finished);
  CHECK(s.makespan_s == exactly(172));
  CHECK(s.inferences_done == 100);
  CHECK(s.tasks_requeued == 1);
  CHECK(s.preemptions == 1);
  CHECK(s.context_loads[static_cast<int>(LoadSource::shared_storage)] == 2);

  REQUIRE(r.attempts.size() == 11);
  CHECK(r.attempts[1].outcome == AttemptOutcome::preempted);
  CHECK(r.attempts[1].start_s == exactly(65));
  CHECK(r.attempts[1].end_s == exactly(67));
  CHECK(r.attempts[2].task == r.attempts[1].task);  // the same task, run again first
  CHECK(r.attempts[2].start_s == exactly(127));

  // Up 172 s: loading 60 + 60, computing 10 * 5, lost the 2 s of the preempted task.
  CHECK(s.gpu_seconds.available == exactly(172));
  CHECK(s.gpu_seconds.loading == exactly(120));
  CHECK(s.gpu_seconds.computing == exactly(50));
  CHECK(s.gpu_seconds.lost == exactly(2));
  CHECK(s.gpu_seconds.idle == exactly(0));
}

TEST_CASE("a worker lost before its first task finished loses its load as well") {
  // Lost at 62 s, 2 s into its first task: the 60 s load and the 2 s of work produced nothing.
  SimResult r =
      simulate(one_context({{0, "up", "a"}, {62, "down", "a"}, {62, "up", "a"}}, 100, "pcm"));
  CHECK(r.summary.makespan_s == exactly(172));
  CHECK(r.summary.gpu_seconds.lost == exactly(62));
}

TEST_CASE("GPU time splits into computing, loading, idle and lost, adding up to the up time") {
  for (const char* placement : {"naive", "pcm", "adaptive"}) {
    SimResult r = simulate(two_contexts_with_churn(7, placement));
    const GpuSeconds& g = r.summary.gpu_seconds;
    INFO(placement);
    CHECK(g.computing + g.loading + g.idle + g.lost == exactly(g.available));
    CHECK(g.lost > 0);
  }
}

TEST_CASE("every finished run does every inference, whatever the trace") {
  for (std::uint64_t seed : {1, 2, 3}) {
    for (const char* placement : {"naive", "pcm", "adaptive"}) {
      Scenario s = two_contexts_with_churn(seed, placement);
      SimResult r = simulate(s);
      INFO(placement << " seed " << seed);
      REQUIRE(r.summary.finished);
      CHECK(r.summary.inferences_done == 1700);
      CHECK(r.summary.inferences_total == 1700);
      CHECK(r.summary.preemptions > 0);
      CHECK(r.summary.makespan_s >= r.summary.lower_bound_s);
      // Each inference was computed by a finished attempt at least once.
      std::uint64_t finished = 0;
      for (const AttemptRow& a : r.attempts) {
        if (a.outcome == AttemptOutcome::finished) finished += a.count;
      }
      CHECK(finished >= 1700);
    }
  }
}

TEST_CASE("a run with no worker left ends unfinished instead of hanging") {
  SimResult r = simulate(one_context({{0, "up", "a"}, {30, "down", "a"}}, 100, "pcm"));
  CHECK_FALSE(r.summary.finished);
  CHECK(r.summary.inferences_done == 0);
  CHECK(std::isinf(r.summary.lower_bound_s));
}

TEST_CASE("the simulator and a replay of its events make the engine take the same decisions") {
  // The events the simulator delivered, fed to a fresh engine on a cluster that only keeps the
  // recorded time, must yield the very commands the engine gave the simulator.
  for (const char* placement : {"naive", "pcm", "adaptive"}) {
    Scenario s = two_contexts_with_churn(5, placement);
    s.detection_delay_s = 4;
    SimOptions options;
    options.record_logs = true;
    SimResult r = simulate(s, options);
    INFO(placement);
    REQUIRE(r.summary.finished);
    REQUIRE(r.command_log.size() > 100);
    CHECK(replay_events(r.event_log, s.workload, engine_config(s)) == r.command_log);
  }
}

TEST_CASE("the lower bound pays one load per stretch of up time and the work at full batches") {
  // a is up from 0 s for good, b from 100 s to 400 s. A load takes 60 s, and a GPU then does
  // 10 inferences per 5 s, 2/s: a from 60 s, b from 160 s. 1000 inferences are covered when
  // 2 (T - 60) + 2 (T - 160) = 1000, at T = 360 s (a did 600, b 400).
  Scenario s = one_context({{0, "up", "a"}, {100, "up", "b"}, {400, "down", "b"}}, 1000, "pcm");
  CHECK(lower_bound_s(s) == exactly(360));
  CHECK(best_load_s(s, s.cluster.gpu_types[0]) == exactly(60));
}
