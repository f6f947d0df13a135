#pragma once
// What drives the simulated cluster (sim_cluster.hpp), and how a run reports its progress: the
// policy engine (simulation.cpp's EngineCore), or in tests and benchmarks a stand-in.

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "policy/cluster.hpp"
#include "sim_backend/results.hpp"

namespace hearth::sim {

struct Progress {
  double sim_s = 0;
  std::uint64_t inferences_done = 0;
  std::uint64_t inferences_total = 0;
};

class SimCore {
 public:
  virtual ~SimCore() = default;
  // Where the cluster delivers its events.
  virtual ClusterEvents& events() = 0;
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

}  // namespace hearth::sim
