// bench_sim: how fast the simulator runs, and what the policy core costs in it.
//
//   bench_sim paper   the default scenario (the paper's campus pool: 567 GPUs, 12 h of churn,
//                     a million inferences, batch 100) under naive, pcm and adaptive
//   bench_sim one R G N L [P]   one generated pool: G GPUs, N inferences, mean life L s, R
//                     repeats, placement P (adaptive unless given)
//   bench_sim scale   adaptive placement on generated pools up to 10,000 GPUs and 10 million
//                     inferences, varying GPUs, tasks and trace events three ways each
//   bench_sim growth  naive, pcm and adaptive on generated pools of 1,000, 3,000 and 10,000
//                     GPUs, 10 million inferences
//
// Each configuration runs twice: with the policy engine (timed), then as a replay of the
// commands the engine gave (recorded by a third, untimed run) without the engine. Both times are
// the simulation proper (SimGrid's run, after the platform is built); docs/BENCHMARKS.md has the
// figures and how to read them.

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/command_replay.hpp"
#include "sim_backend/scenario.hpp"
#include "sim_backend/simulation.hpp"
#include "traces/generator.hpp"
#include "traces/generator_spec.hpp"

namespace {

using namespace hearth;
using namespace hearth::sim;

struct Measured {
  Summary full;
  double full_wall_s = 0;    // best of the repeats
  double replay_wall_s = 0;  // best of the repeats
  std::uint64_t commands = 0;
};

// The full run and the replay alternate, so that a burst of other work on a shared machine
// slows both alike rather than one block of repeats.
Measured measure(const Scenario& s, int repeats) {
  Measured m;
  m.full_wall_s = m.replay_wall_s = 1e300;
  SimOptions logged;
  logged.record_logs = true;
  SimResult recorded = simulate(s, logged);
  std::uint64_t finished = 0;
  for (const AttemptRow& a : recorded.attempts)
    finished += a.outcome == AttemptOutcome::finished;
  m.commands = recorded.command_log.size();

  auto replay = [&](Cluster& cluster, const Scenario&) {
    return std::make_unique<bench::CommandReplay>(cluster, recorded.command_log, finished);
  };
  for (int i = 0; i < repeats; ++i) {
    SimResult full = simulate(s);
    m.full = full.summary;
    m.full_wall_s = std::min(m.full_wall_s, full.summary.wall_s);
    SimResult r = simulate_with(s, {}, replay);
    m.replay_wall_s = std::min(m.replay_wall_s, r.summary.wall_s);
    // The replay must have done the same run: the same end, every command, every task.
    if (!r.summary.finished || std::abs(r.summary.makespan_s - m.full.makespan_s) > 1e-6) {
      fmt::print(stderr, "bench_sim: the replay of {} ended at {} s, the run at {} s\n", s.name,
                 r.summary.makespan_s, m.full.makespan_s);
    }
  }
  return m;
}

void header() {
  fmt::print("| {:<28} | {:>6} | {:>10} | {:>7} | {:>7} | {:>10} | {:>8} | {:>9} | {:>6} |\n",
             "configuration", "GPUs", "inferences", "tasks", "events", "makespan_s", "full_s",
             "replay_s", "ratio");
  fmt::print("|{:-<30}|{:->8}|{:->12}|{:->9}|{:->9}|{:->12}|{:->10}|{:->11}|{:->8}|\n", "", "", "",
             "", "", "", "", "", "");
}

void row(const std::string& label, const Measured& m) {
  fmt::print(
      "| {:<28} | {:>6} | {:>10} | {:>7} | {:>7} | {:>10.1f} | {:>8.3f} | {:>9.3f} | {:>5.2f}x |\n",
      label, m.full.workers, m.full.inferences_total, m.full.tasks_done, m.full.trace_events,
      m.full.makespan_s, m.full_wall_s, m.replay_wall_s, m.full_wall_s / m.replay_wall_s);
  std::fflush(stdout);
}

void paper(int repeats) {
  fmt::print("Paper scale: {} (best of {})\n\n", default_scenario_path(), repeats);
  header();
  for (const char* placement : {"naive", "pcm", "adaptive"}) {
    ScenarioOverrides o;
    o.policies.placement = placement;
    Scenario s = load_scenario(default_scenario_path(), o);
    row(fmt::format("campus-12h {}", placement), measure(s, repeats));
  }
}

// A pool of `gpus` GPUs in the campus preset's proportions, held whole: half up at time 0, the
// rest arriving over the first hour, each living `mean_life_s` on average (exponential).
Scenario scaled(std::size_t gpus, std::uint64_t inferences, double mean_life_s,
                const std::string& placement = "adaptive") {
  Scenario s = load_scenario(default_scenario_path());
  s.name = fmt::format("scale-{}gpus-{}inf-{}s", gpus, inferences, mean_life_s);
  traces::GeneratorConfig g = traces::preset("campus");
  std::size_t campus = 0;
  for (const auto& p : g.pool)
    campus += p.count;
  std::size_t placed = 0;
  for (auto& p : g.pool) {
    p.count = std::max<std::size_t>(1, p.count * gpus / campus);
    placed += p.count;
  }
  g.pool.front().count += gpus - placed;
  g.seed = 1;
  g.duration_s = 12 * 3600;
  g.max_held = gpus;
  g.initial = gpus / 2;
  g.arrivals = {traces::Arrivals::Kind::poisson, static_cast<double>(gpus), 0, 0};
  g.lifetime = {};
  g.lifetime.kind = traces::Lifetime::Kind::exponential;
  g.lifetime.mean_s = mean_life_s;
  g.reclaim = {};
  s.trace = traces::generate_trace(g);
  s.trace_origin = traces::generator_command(g);
  s.workload = {};
  s.workload.add({0, "smollm2-1.7b", 3.4e9, 20.0}, inferences);
  select_placement(s.policies, placement);
  check_scenario(s);
  return s;
}

void scale(int repeats) {
  fmt::print("Large scale: generated campus-like pools, adaptive, batch 100 (best of {})\n\n",
             repeats);
  header();
  const double calm = 4 * 3600;
  for (std::size_t gpus : {1000, 3000, 10000}) {
    row(fmt::format("{} GPUs", gpus), measure(scaled(gpus, 10'000'000, calm), repeats));
  }
  for (std::uint64_t n : {1'000'000, 3'000'000}) {
    row(fmt::format("{}M inferences", n / 1'000'000), measure(scaled(10000, n, calm), repeats));
  }
  for (double life : {1200.0, 400.0}) {
    row(fmt::format("mean life {:.0f} s", life), measure(scaled(10000, 10'000'000, life), repeats));
  }
}

}  // namespace

void growth(int repeats) {
  fmt::print("Growth: generated campus-like pools, 10M inferences, batch 100 (best of {})\n\n",
             repeats);
  header();
  for (const char* placement : {"naive", "pcm", "adaptive"}) {
    for (std::size_t gpus : {1000, 3000, 10000}) {
      row(fmt::format("{} {} GPUs", placement, gpus),
          measure(scaled(gpus, 10'000'000, 4 * 3600, placement), repeats));
    }
  }
}

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "paper";
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  try {
    if (what == "paper" || what == "all") paper(repeats);
    if (what == "all") fmt::print("\n");
    if (what == "scale" || what == "all") scale(repeats);
    if (what == "growth") growth(repeats);
    if (what == "one" &&
        (argc == 6 || argc == 7)) {  // one REPEATS GPUS INFERENCES LIFE [PLACEMENT]
      const std::string placement = argc == 7 ? argv[6] : "adaptive";
      header();
      row(fmt::format("{} {} GPUs", placement, argv[3]),
          measure(scaled(std::stoul(argv[3]), std::stoull(argv[4]), std::stod(argv[5]), placement),
                  repeats));
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_sim: {}\n", e.what());
    return 1;
  }
  return 0;
}
