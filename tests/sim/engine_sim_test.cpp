// The policy engine, unchanged, on the simulated cluster: hand-computed makespans, preemptions,
// the lower bound, the GPU-time split, and the same decisions as a replay of the same events.

#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>

#include <cmath>
#include <cstdio>
#include <random>

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

namespace {

// A small random scenario for the property tests below: one or two GPU types (speeds 1 and 2.5),
// one or two contexts, workers up from the start or joining later, some leaving (and some of
// those coming back), one that stays to the end so that every run finishes, a per-task
// overhead and a batch size of its own.
struct Variety {
  bool churn = true;         // late joins, leaves and returns
  bool two_contexts = true;  // a second context in a third of the scenarios
  bool mixed = true;         // two GPU types in half of them
};

Scenario random_small(std::uint64_t seed, const std::string& placement, Variety v = {}) {
  std::mt19937_64 rng(seed);
  auto pick = [&](std::uint64_t n) { return rng() % n; };
  Scenario s = one_context(kOneWorkerAlwaysUp, 10 + pick(1500), placement);
  s.seed = seed;
  s.policies.batch_size = 1 + pick(100);
  GpuType& g = s.cluster.gpu_types[0];
  g.per_batch_s = static_cast<double>(pick(12)) * 0.5;
  GpuType fast = g;
  fast.name = "F";
  fast.per_inference_s = g.per_inference_s / 2.5;
  const bool mixed = pick(2) == 0 && v.mixed;
  if (mixed) s.cluster.gpu_types.push_back(fast);
  if (pick(3) == 0 && v.two_contexts) s.workload.add({1, "other", 5e8, 10.0}, 10 + pick(500));
  std::vector<Row> rows;
  const int workers = 1 + static_cast<int>(pick(8));
  for (int w = 0; w < workers; ++w) {
    const std::string name = "w" + std::to_string(w);
    const double join = w == 0 || pick(2) == 0 || !v.churn ? 0 : static_cast<double>(pick(600));
    rows.push_back({join, "up", name});
    if (w > 0 && pick(3) == 0 && v.churn) {
      const double gone = join + 30 + static_cast<double>(pick(900));
      rows.push_back({gone, "down", name});
      if (pick(2) == 0) rows.push_back({gone + 10 + static_cast<double>(pick(300)), "up", name});
    }
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return a.time_s < b.time_s; });
  s.trace = make_trace(rows);
  for (traces::TraceEvent& e : s.trace.events) {  // a worker keeps its type when it comes back
    if (mixed && e.kind == traces::EventKind::up && (e.worker.back() - '0') % 2 == 1) {
      e.gpu_type = "F";
    }
  }
  check_scenario(s);
  return s;
}

// Runs pcm, adaptive and (every fourth) naive on 1,000 random small scenarios of `variety`: each
// at or above the lower bound. Returns the worst adaptive / pcm ratio, and counts those over 1%.
struct Comparison {
  double worst = 0;
  std::uint64_t worst_seed = 0;
  int over_1_percent = 0;
};

Comparison compare_on_random_scenarios(Variety variety) {
  Comparison out;
  for (std::uint64_t seed = 1; seed <= 1000; ++seed) {
    INFO("seed " << seed);
    double makespan[2] = {0, 0};
    for (int i = 0; i < 3; ++i) {
      if (i == 2 && seed % 4 != 0) continue;
      const SimResult r = simulate(random_small(seed,
                                                i == 0   ? "pcm"
                                                : i == 1 ? "adaptive"
                                                         : "naive",
                                                variety));
      REQUIRE(r.summary.finished);
      CHECK(r.summary.makespan_s >= r.summary.lower_bound_s * (1 - 1e-9));
      if (i < 2) makespan[i] = r.summary.makespan_s;
    }
    const double ratio = makespan[1] / makespan[0];
    out.over_1_percent += ratio > 1.01;
    if (ratio > out.worst) out.worst = ratio, out.worst_seed = seed;
  }
  return out;
}

}  // namespace

TEST_CASE("on 1,000 small static pools adaptive is never 1% slower than pcm", "[property]") {
  // Pools up from the start, one or two GPU types, one context, any overhead and batch size;
  // every policy at or above the lower bound. The worst case is printed.
  const Comparison c = compare_on_random_scenarios({.churn = false, .two_contexts = false});
  std::printf("static pools: adaptive / pcm worst %.4f (seed %llu), %d of 1000 over 1%%\n", c.worst,
              static_cast<unsigned long long>(c.worst_seed), c.over_1_percent);
  CHECK(c.over_1_percent == 0);
  CHECK(c.worst <= 1.01);
}

TEST_CASE("on 1,000 small pools with churn and two contexts every policy keeps the lower bound",
          "[property]") {
  // Late joins, losses and returns, two GPU types, a second context: adaptive is not always
  // within 1% of pcm here (docs/BENCHMARKS.md gives the count and the worst case); this prints
  // them, and checks that no policy beats the bound.
  const Comparison c = compare_on_random_scenarios({});
  std::printf("churn, two contexts: adaptive / pcm worst %.4f (seed %llu), %d of 1000 over 1%%\n",
              c.worst, static_cast<unsigned long long>(c.worst_seed), c.over_1_percent);
}

TEST_CASE("a ready worker does not leave work to workers still loading the context") {
  // Six round GPUs up at 0; 24 inferences in one task of up to 57, 1 s of overhead a task. The
  // first worker is ready at 60 s; the others would be ready 10 s later and more. Adaptive used
  // to split the work by all six (tasks of 8, 8 and 8, 75 s); counting what the others wait, it
  // keeps the work where it can start now: 73 s, as pcm.
  std::vector<Row> rows;
  for (int g = 0; g < 6; ++g)
    rows.push_back({0, "up", "w" + std::to_string(g)});
  for (const char* placement : {"pcm", "adaptive"}) {
    Scenario s = one_context(rows, 24, placement);
    s.policies.batch_size = 57;
    s.cluster.gpu_types[0].per_batch_s = 1.0;
    check_scenario(s);
    CAPTURE(placement);
    CHECK(simulate(s).summary.makespan_s == exactly(73));
  }
}

TEST_CASE("at the end a slow worker takes only its share of the time the others still need") {
  // A round GPU (0.5 s an inference) and one 2.5 times as fast, 235 inferences, tasks of up to
  // 63, 5.5 s of overhead a task. pcm: 120.9 s. Adaptive used to give the slow worker a last
  // task of 44 (the overhead floor) while the fast one still ran: 124.5 s.
  std::vector<Row> rows = {{0, "up", "slow"}, {0, "up", "fast"}};
  double makespan[2];
  for (int i = 0; i < 2; ++i) {
    Scenario s = one_context(rows, 235, i == 0 ? "pcm" : "adaptive");
    s.policies.batch_size = 63;
    GpuType& g = s.cluster.gpu_types[0];
    g.per_batch_s = 5.5;
    GpuType fast = g;
    fast.name = "F";
    fast.per_inference_s = g.per_inference_s / 2.5;
    s.cluster.gpu_types.push_back(fast);
    s.trace.events[1].gpu_type = "F";
    check_scenario(s);
    makespan[i] = simulate(s).summary.makespan_s;
  }
  CHECK(makespan[0] == exactly(120.9));
  CHECK(makespan[1] <= makespan[0]);
}
