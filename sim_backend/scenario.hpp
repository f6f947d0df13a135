#pragma once
// A scenario: everything one simulated run needs. A user writes it as TOML or JSON
// (docs/simulator.md, "Scenario files"); `hearth simulate` overrides parts from its flags.

#include <cstdint>
#include <optional>
#include <string>

#include "policy/registry.hpp"
#include "policy/workload.hpp"
#include "sim_backend/cluster_description.hpp"
#include "traces/generator.hpp"
#include "traces/trace.hpp"

namespace hearth::sim {

struct Scenario {
  std::string source;  // the scenario file, or "(built in code)"
  std::string name;
  ClusterDescription cluster;
  traces::Trace trace;
  std::string trace_origin;  // the trace file, or how it was generated
  Workload workload;
  PolicyChoice policies;
  std::uint64_t seed = 1;
  // Seconds between a worker's loss and the manager learning of it.
  double detection_delay_s = 0;
};

// What the command line may change. Unset fields keep the scenario's value.
struct ScenarioOverrides {
  std::optional<std::string> trace;  // a trace file, replacing the scenario's trace
  PolicyOverrides policies;          // applied after the scenario's [policy] table
  std::optional<std::uint64_t> seed;
  std::optional<double> detection_delay_s;
  traces::GeneratorLimits generator_limits;  // for a generated trace
};

// Reads a scenario file (paths in it are relative to the file), applies `overrides`, and checks
// the whole: policy names, every GPU type of the trace known to the cluster, every context
// fitting on some GPU type. Throws InputError naming the file and key at fault.
Scenario load_scenario(const std::string& path, const ScenarioOverrides& overrides = {});

// The scenario `hearth simulate` runs when given none.
std::string default_scenario_path();

// Checks a scenario built in code the way load_scenario checks a file.
void check_scenario(const Scenario& scenario);

}  // namespace hearth::sim
