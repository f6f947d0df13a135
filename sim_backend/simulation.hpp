#pragma once
// Running a scenario in the simulator: the policy engine, unchanged, against the SimGrid model of
// the scenario's cluster, availability trace and workload.
//
// SimGrid allows one simulation per process, so each run happens in a child process (fork) that
// sends its results back; any number of runs can follow each other in one program.

#include <cstdint>
#include <functional>
#include <memory>

#include "policy/cluster.hpp"
#include "policy/engine.hpp"
#include "sim_backend/results.hpp"
#include "sim_backend/scenario.hpp"
#include "sim_backend/sim_core.hpp"

namespace hearth::sim {

struct SimOptions {
  bool record_logs = false;  // fill SimResult::event_log and command_log
  // Called from the simulating process a few times a second of host time.
  std::function<void(const Progress&)> progress;
  // Run in this process instead of a child: only once per process (for debuggers and profilers).
  bool in_process = false;
};

// Builds the core of a run, inside the simulating process, for a cluster that lives there.
using CoreFactory =
    std::function<std::unique_ptr<SimCore>(Cluster& cluster, const Scenario& scenario)>;

// The engine's configuration for a scenario: its policies, and the reference GPU type's task
// costs and the shared storage bandwidth as the estimator's first hints.
EngineConfig engine_config(const Scenario& scenario);

// The policy engine with engine_config(scenario), every command it issues checked against the
// cluster contract (policy/contract_check.hpp).
std::unique_ptr<SimCore> make_engine_core(Cluster& cluster, const Scenario& scenario,
                                          bool record_logs);

// Runs the scenario with the policy engine. Throws InputError for a scenario the simulator cannot
// run, std::runtime_error if the simulating process dies.
SimResult simulate(const Scenario& scenario, const SimOptions& options = {});

// Runs the scenario with another core.
SimResult simulate_with(const Scenario& scenario, const SimOptions& options,
                        const CoreFactory& make_core);

}  // namespace hearth::sim
