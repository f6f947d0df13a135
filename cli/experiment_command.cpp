// `hearth experiment`: sweeps of simulated runs over a grid of traces, workloads, policies,
// batch sizes and seeds (`run`), and their figures (`plot`). docs/experiments.md.

#include <fmt/core.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "experiments/plot.hpp"
#include "experiments/runner.hpp"
#include "experiments/spec.hpp"
#include "policy/errors.hpp"

namespace hearth::cli {

namespace {

struct RunFlags {
  std::string spec;
  std::string out;
  unsigned jobs = 0;
  bool dry_run = false;
  bool quiet = false;
};

struct PlotFlags {
  std::string dir;
  std::vector<std::string> only;
};

// On a terminal one line redrawn in place; elsewhere (a log, CI) one line per finished cell.
void show(const experiments::CellFinished& e, bool terminal) {
  const std::string what = e.ok ? fmt::format("{:.1f} s", e.makespan_s) : "FAILED: " + e.error;
  const std::string line =
      fmt::format("[{:>{}}/{}] {} {} ({:.1f} s)", e.finished, std::to_string(e.to_run).size(),
                  e.to_run, e.key, what, e.wall_s);
  if (terminal && e.ok) {
    fmt::print(stderr, "\r\033[K{}", line);
  } else {
    fmt::print(stderr, "{}{}\n", terminal ? "\r\033[K" : "", line);
  }
  std::fflush(stderr);
}

int run(const RunFlags& f) {
  const experiments::ExperimentSpec spec = experiments::load_spec(f.spec);
  experiments::RunOptions options;
  options.out_dir = f.out;
  options.jobs = f.jobs;
  options.dry_run = f.dry_run;
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  if (!f.quiet) options.on_finished = [terminal](const auto& e) { show(e, terminal); };

  const experiments::RunReport r = experiments::run_experiment(spec, options);
  if (terminal && !f.quiet && r.ran > 0) fmt::print(stderr, "\r\033[K");
  if (f.dry_run) {
    fmt::print("{}: {} cells; {} done, {} to run ({} stale)\n", spec.name, r.cells, r.already_done,
               r.to_run, r.stale);
    return 0;
  }
  fmt::print("{}: {} cells; {} kept from an earlier run, {} ran, {} failed{}\n", spec.name, r.cells,
             r.already_done, r.ran, r.failures.size(),
             r.stale > 0 ? fmt::format(" ({} were stale and ran again)", r.stale) : "");
  fmt::print("results: {}\n", r.results_csv);
  std::fflush(stdout);  // before what follows on stderr, when both go to one file
  for (const auto& failure : r.failures)
    fmt::print(stderr, "failed: {}: {}\n", failure.key, failure.error);
  if (r.interrupted) {
    fmt::print(stderr, "interrupted: {} cells missing; run the same command again to finish\n",
               r.missing);
    return 128 + SIGINT;
  }
  return r.failures.empty() ? 0 : 1;
}

}  // namespace

void add_experiment_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "experiment", "Sweep simulated runs over a grid and plot them; see docs/experiments.md");
  cmd->require_subcommand(1);

  auto run_flags = std::make_shared<RunFlags>();
  auto* run_cmd = cmd->add_subcommand(
      "run",
      "Run every missing cell of an experiment spec, several at once, into DIR (resumable: run "
      "it again after an interruption and only the missing cells run)");
  run_cmd->add_option("spec", run_flags->spec, "experiment spec (.toml or .json)")->required();
  run_cmd->add_option("--out", run_flags->out, "output folder")->required();
  run_cmd->add_option("--jobs,-j", run_flags->jobs, "cells at once (default: one per core)");
  run_cmd->add_flag("--dry-run", run_flags->dry_run, "count the cells done and to run; run none");
  run_cmd->add_flag("--quiet", run_flags->quiet, "no progress");
  run_cmd->callback([run_flags] {
    const int status = run(*run_flags);
    if (status != 0) throw CLI::RuntimeError(status);
  });

  auto plot_flags = std::make_shared<PlotFlags>();
  auto* plot_cmd = cmd->add_subcommand(
      "plot", "Draw an experiment's figures (PNG and SVG) into DIR/figures with matplotlib");
  plot_cmd
      ->add_option("dir", plot_flags->dir,
                   "an experiment's output folder, or a real run's events file (hearth run "
                   "--events FILE: drawn into FILE.plot/)")
      ->required();
  plot_cmd->add_option("--only", plot_flags->only, "only these figures (comma-separated)")
      ->delimiter(',');
  plot_cmd->callback([plot_flags] {
    for (const auto& file : experiments::plot_experiment(plot_flags->dir, plot_flags->only))
      fmt::print("{}\n", file);
  });
}

}  // namespace hearth::cli
