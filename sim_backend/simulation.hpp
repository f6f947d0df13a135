#pragma once
// Running a scenario in the simulator: the policy engine, unchanged, against the SimGrid model of
// the scenario's cluster, availability trace and workload.
//
// SimGrid allows one simulation per process, so each run happens in a child process (fork) that
// sends its results back; any number of runs can follow each other in one program.

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>

#include "policy/cluster.hpp"
#include "policy/engine.hpp"
#include "sim_backend/results.hpp"
#include "sim_backend/scenario.hpp"

namespace hearth::sim {

struct Progress {
  double sim_s = 0;
  std::uint64_t inferences_done = 0;
  std::uint64_t inferences_total = 0;
};

struct SimOptions {
  bool record_logs = false;  // fill SimResult::event_log and command_log
  // Called from the simulating process a few times a second of host time.
  std::function<void(const Progress&)> progress;
  // Off: commands are not checked against what the cluster holds (for replaying a recorded
  // command log, whose commands may come a moment before the events that allowed them).
  bool check_commands = true;
  // Run in this process instead of a child: only once per process (for debuggers and profilers).
  bool in_process = false;
};

// What drives the simulated cluster: the policy engine, or in tests and benchmarks a stand-in.
class SimCore : public ClusterEvents {
 public:
  virtual bool finished() const = 0;
  virtual std::uint64_t inferences_done() const = 0;
  // A core may ask to be woken at a time of its own (the command replay of bench/ does).
  virtual double next_wakeup_s() const { return std::numeric_limits<double>::infinity(); }
  virtual void wake_up() {}
  // Adds what the core counted (requeues, loads by source, ...) to the summary.
  virtual void fill(Summary& summary) const { (void)summary; }
  // With SimOptions::record_logs.
  virtual std::vector<std::string> event_log() const { return {}; }
  virtual std::vector<std::string> command_log() const { return {}; }
};

// Builds the core of a run, inside the simulating process, for a cluster that lives there.
using CoreFactory =
    std::function<std::unique_ptr<SimCore>(Cluster& cluster, const Scenario& scenario)>;

// The engine's configuration for a scenario: its policies, and the reference GPU type's task
// costs and the shared storage bandwidth as the estimator's first hints.
EngineConfig engine_config(const Scenario& scenario);

// The policy engine with engine_config(scenario).
std::unique_ptr<SimCore> make_engine_core(Cluster& cluster, const Scenario& scenario,
                                          bool record_logs);

// Runs the scenario with the policy engine. Throws InputError for a scenario the simulator cannot
// run, std::runtime_error if the simulating process dies.
SimResult simulate(const Scenario& scenario, const SimOptions& options = {});

// Runs the scenario with another core.
SimResult simulate_with(const Scenario& scenario, const SimOptions& options,
                        const CoreFactory& make_core);

}  // namespace hearth::sim
