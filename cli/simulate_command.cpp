// `hearth simulate`: run the policy core against the SimGrid model of a cluster, on a scenario
// (cluster description, availability trace, workload, policies). With no scenario it runs the
// bundled default one. Several policies (--policy naive,pcm,adaptive) print a comparison.

#include <fmt/core.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/number_option.hpp"
#include "policy/errors.hpp"
#include "sim_backend/report.hpp"
#include "sim_backend/scenario.hpp"
#include "sim_backend/simulation.hpp"

namespace hearth::cli {

namespace {

struct SimulateFlags {
  std::string scenario;
  std::optional<std::string> trace;
  std::vector<std::string> placements;
  PolicyOverrides policy;  // its placement is each of `placements` in turn
  std::optional<std::uint64_t> seed;
  std::optional<double> detection_delay_s;
  std::string out;
  bool json = false;
  bool timings = false;
  bool quiet = false;
};

// A one-line bar on stderr, redrawn in place; only when stderr is a terminal.
void draw_progress(const std::string& label, const sim::Progress& p) {
  const double done = p.inferences_total > 0 ? static_cast<double>(p.inferences_done) /
                                                   static_cast<double>(p.inferences_total)
                                             : 1.0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(std::lround(done * kWidth));
  fmt::print(stderr, "\r{} [{}{}] {:5.1f}%  {:.0f} s simulated ", label, std::string(filled, '#'),
             std::string(kWidth - filled, '.'), 100 * done, p.sim_s);
  std::fflush(stderr);
}

void check_flags(const SimulateFlags& f) {
  if (f.detection_delay_s && !(*f.detection_delay_s >= 0 && std::isfinite(*f.detection_delay_s))) {
    throw InputError(fmt::format(
        "--detection-delay: must be a number of seconds, 0 or more (is {})", *f.detection_delay_s));
  }
}

void run(const SimulateFlags& f) {
  check_flags(f);
  const std::string path = f.scenario.empty() ? sim::default_scenario_path() : f.scenario;
  std::vector<std::optional<std::string>> placements;
  for (const std::string& p : f.placements)
    placements.emplace_back(p);
  if (placements.empty()) placements.emplace_back(std::nullopt);  // the scenario's own

  const bool show_progress = !f.quiet && ::isatty(STDERR_FILENO) != 0;
  const sim::HostTimings timings = f.timings ? sim::HostTimings::include : sim::HostTimings::omit;
  std::vector<sim::SimResult> results;
  for (const auto& placement : placements) {
    sim::ScenarioOverrides o;
    o.trace = f.trace;
    o.policies = f.policy;
    o.policies.placement = placement;
    o.seed = f.seed;
    o.detection_delay_s = f.detection_delay_s;
    sim::Scenario scenario = sim::load_scenario(path, o);
    sim::SimOptions options;
    const std::string label = scenario.policies.placement;
    if (show_progress) {
      options.progress = [label](const sim::Progress& p) { draw_progress(label, p); };
    }
    results.push_back(sim::simulate(scenario, options));
    if (show_progress) fmt::print(stderr, "\r{:80}\r", "");
    if (!f.out.empty()) {
      const std::string dir =
          placements.size() == 1 ? f.out : fmt::format("{}/{}", f.out, scenario.policies.placement);
      sim::write_outputs(results.back(), dir, timings);
    }
  }

  std::vector<sim::Summary> summaries;
  for (const auto& r : results)
    summaries.push_back(r.summary);
  if (summaries.size() == 1) {
    fmt::print("{}",
               f.json ? sim::summary_json(summaries[0], timings) : sim::summary_text(summaries[0]));
  } else {
    fmt::print("{}",
               f.json ? sim::comparison_json(summaries, timings) : sim::comparison_text(summaries));
  }
  // As `hearth run` does when its trace ends with work left: a script must not take an
  // unfinished simulation for a result.
  for (const sim::Summary& s : summaries) {
    if (s.finished) continue;
    fmt::print(stderr,
               "hearth: {} did not finish: {} of {} inferences done when the pool could no longer "
               "progress\n",
               s.placement, s.inferences_done, s.inferences_total);
    throw CLI::RuntimeError(3);
  }
}

}  // namespace

void add_simulate_command(CLI::App& app) {
  auto flags = std::make_shared<SimulateFlags>();
  auto* cmd = app.add_subcommand(
      "simulate",
      "Run the policy core on a simulated opportunistic GPU cluster (SimGrid). With no scenario, "
      "runs the bundled default one; see docs/simulator.md");
  cmd->add_option("scenario", flags->scenario, "scenario file (.toml or .json)");
  cmd->add_option("--trace", flags->trace, "availability trace file, instead of the scenario's");
  cmd->add_option("--policy", flags->placements,
                  "placement policy (naive, pcm, adaptive); several, comma-separated, compare "
                  "them. Also picks that placement's eviction and granularity")
      ->delimiter(',');
  cmd->add_option("--eviction", flags->policy.eviction, "eviction policy (lru, cost)");
  cmd->add_option("--granularity", flags->policy.granularity,
                  "granularity policy (fixed, adaptive)");
  cmd->add_option("--replication", flags->policy.replication, "replication policy (flow, greedy)");
  cmd->add_option("--batch-size", flags->policy.batch_size,
                  "inferences per task (adaptive: at most)")
      ->check(whole_number(1, kMaxBatchSize));
  cmd->add_option("--seed", flags->seed, "seed (for a generated trace)")->check(whole_number(0));
  cmd->add_option("--detection-delay", flags->detection_delay_s,
                  "seconds before the manager notices a lost worker");
  cmd->add_option("--out", flags->out,
                  "write summary.json, tasks.csv and timeline.csv here (one folder per policy "
                  "when comparing)");
  cmd->add_flag("--json", flags->json,
                "print the summary as JSON (the same scenario and seed print the same bytes)");
  cmd->add_flag("--timings", flags->timings,
                "add the host's timings (wall_s, setup_wall_s) to --json and summary.json");
  cmd->add_flag("--quiet", flags->quiet, "no progress bar");
  cmd->callback([flags] { run(*flags); });
}

}  // namespace hearth::cli
