#pragma once
// Running an experiment: every cell of the grid in its own child process, a few at a time, each
// leaving one file behind (written whole, then renamed into place), so that an interrupted run
// resumes with exactly the cells that are missing. The results CSV is assembled from those files.

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "experiments/spec.hpp"
#include "sim_backend/results.hpp"
#include "sim_backend/scenario.hpp"

namespace hearth::experiments {

// Facts about the trace a cell ran on, measured from the trace itself.
struct TraceFacts {
  double end_s = 0;
  std::size_t workers = 0;
  std::size_t peak_up = 0;
  double mean_up = 0;
  double gpu_hours = 0;  // what the trace offers over [0, end]
  std::size_t preemptions = 0;
  double preemptions_per_gpu_hour = 0;  // the churn rate
  double lifetime_p50_s = 0;            // of completed up periods; 0 when none completed
  double lifetime_mean_s = 0;
};

struct CellOutcome {
  sim::Summary summary;
  TraceFacts trace;
};

// Runs one cell and returns what it yields; with a non-empty `timeline_dir`, also writes the
// run's summary.json, tasks.csv and timeline.csv there. Called in the cell's child process.
using CellFunction = std::function<CellOutcome(const Cell& cell, const std::string& timeline_dir)>;

// The scenario a cell runs: the spec's cluster, the cell's trace (generated with the cell's seed),
// workload and policies.
sim::Scenario cell_scenario(const ExperimentSpec& spec, const Cell& cell);

// The default CellFunction: the simulator, in this process.
CellOutcome simulate_cell(const ExperimentSpec& spec, const Cell& cell,
                          const std::string& timeline_dir);

TraceFacts trace_facts(const traces::Trace& trace);

enum class CellState {
  missing,  // no result: never run, or interrupted
  done,
  failed,  // ran and failed; runs again
  stale,   // a result of other inputs (the spec or its files changed); runs again
};

CellState cell_state(const ExperimentSpec& spec, const Cell& cell, const std::string& out_dir);

struct CellFinished {
  std::string key;
  std::size_t finished = 0;  // cells finished in this run so far, this one included
  std::size_t to_run = 0;    // cells this run runs
  std::size_t running = 0;   // still running
  bool ok = false;
  std::string error;  // when not ok
  double makespan_s = 0;
  double wall_s = 0;  // host seconds from the cell's start to its end
};

struct RunOptions {
  std::string out_dir;
  unsigned jobs = 0;                                     // cells at once; 0: one per core
  bool dry_run = false;                                  // count the cells, run none
  std::function<void(const CellFinished&)> on_finished;  // called as each cell ends
  CellFunction run_cell;                                 // empty: simulate_cell
};

struct CellFailure {
  std::string key;
  std::string error;
};

struct RunReport {
  std::size_t cells = 0;         // in the grid
  std::size_t already_done = 0;  // results kept from an earlier run
  std::size_t stale = 0;         // earlier results of other inputs, run again
  std::size_t to_run = 0;
  std::size_t ran = 0;  // finished in this run, done or failed
  std::vector<CellFailure> failures;
  std::size_t missing = 0;   // cells without a result when the run ended (interrupted)
  bool interrupted = false;  // by SIGINT or SIGTERM
  std::string results_csv;   // empty on a dry run
};

// Runs the missing cells of the grid into options.out_dir (cells/KEY.json, gantt/KEY/,
// experiment.json, results.csv). On SIGINT or SIGTERM it stops starting cells, ends the running
// ones, and keeps what finished. A cell that fails is reported in RunReport::failures; the
// others run on. Throws InputError if the folder cannot be used (or another run holds it).
RunReport run_experiment(const ExperimentSpec& spec, const RunOptions& options);

// Writes out_dir/results.csv from the cell files, one row per cell with a result, in grid order.
// Returns the number of rows.
std::size_t write_results_csv(const ExperimentSpec& spec, const std::string& out_dir);

}  // namespace hearth::experiments
