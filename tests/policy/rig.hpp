#pragma once
// Test support for the policy core: a worker factory, an engine wired to the in-memory cluster
// with its commands checked and logged, and a way to hand-build scheduler states for single
// policies.

#include <algorithm>
#include <map>
#include <sstream>
#include <string>

#include "policy/engine.hpp"
#include "policy/memory_cluster.hpp"
#include "policy/wired_engine.hpp"

namespace hearth::testing {

// A worker with round numbers: 1 GB/s disk reads and host-to-GPU copies, 1 GB/s network.
inline WorkerSpec gpu(WorkerId id, double speed = 1.0, double gpu_memory_bytes = 40e9) {
  WorkerSpec s;
  s.id = id;
  s.name = "w" + std::to_string(id);
  s.gpu_type = speed >= 2 ? "fast" : "plain";
  s.speed = speed;
  s.gpu_memory_bytes = gpu_memory_bytes;
  s.host_memory_bytes = 64e9;
  s.disk_bytes = 500e9;
  s.disk_read_Bps = 1e9;
  s.host_to_gpu_Bps = 1e9;
  s.network_Bps = 1e9;
  return s;
}

// A 1 GB context with 3 s of initialisation. Loaded cold from shared storage at 0.1 GB/s on a
// gpu() worker: 10 s to disk + 1 s to host + (1 s + 3 s) to GPU = 15 s.
inline ContextSpec model(std::string name = "model", double size_bytes = 1e9) {
  return ContextSpec{0, std::move(name), size_bytes, 3.0};
}

inline Workload one_model(std::uint64_t inferences) {
  Workload w;
  w.add(model(), inferences);
  return w;
}

// Tasks cost 1 s plus 0.4 s per inference at speed 1.
inline MemoryClusterConfig cluster_config() {
  MemoryClusterConfig c;
  c.shared_storage_Bps = 1e8;
  c.task_overhead_s = 1.0;
  c.inference_s = 0.4;
  return c;
}

inline EngineConfig engine_config(std::string placement, std::uint64_t batch_size = 10) {
  EngineConfig c;
  c.policies.placement = std::move(placement);
  c.policies.batch_size = batch_size;
  c.estimates.task_overhead_s = 1.0;
  c.estimates.inference_s = 0.4;
  c.estimates.shared_storage_Bps = 1e8;
  return c;
}

// The engine on the in-memory cluster, wired as every backend wires it: each command checked
// against the cluster contract (a break aborts the test), events and commands logged.
struct Rig {
  MemoryCluster cluster;
  WiredEngine wired;
  Engine& engine;

  Rig(const Workload& work, const EngineConfig& config,
      MemoryClusterConfig cluster_cfg = cluster_config())
      : cluster(cluster_cfg), wired(cluster, work, config, logged()), engine(wired.engine()) {
    cluster.set_contexts(work.contexts);
    cluster.attach(wired.events());
  }
  static Wiring logged() {
    Wiring w;
    w.record = true;
    return w;
  }

  void run() { cluster.run(); }
  double makespan() const { return engine.stats().finished_s; }
  std::uint64_t loads() const {
    std::uint64_t n = 0;
    for (auto x : engine.stats().context_loads)
      n += x;
    return n;
  }
  std::uint64_t loads_from(LoadSource s) const {
    return engine.stats().context_loads[static_cast<int>(s)];
  }
  // How many times each task was reported finished, from the logged commands and events.
  std::map<TaskId, int> finishes_per_task() const {
    std::map<AttemptId, TaskId> task_of;
    for (const std::string& line : command_lines()) {
      std::istringstream in(line);
      std::string time, verb, worker, word;
      TaskId task = 0;
      AttemptId attempt = 0;
      in >> time >> verb;
      if (verb != "start") continue;
      in >> worker >> word >> task >> word >> attempt;
      task_of[attempt] = task;
    }
    std::map<TaskId, int> finishes;
    for (const std::string& line : event_lines()) {
      std::istringstream in(line);
      std::string time, verb;
      WorkerId w = 0;
      AttemptId attempt = 0;
      in >> time >> verb >> w >> attempt;
      if (verb == "finished") ++finishes[task_of.at(attempt)];
    }
    return finishes;
  }
  std::vector<std::string> command_lines() const { return wired.command_lines(); }
  std::vector<std::string> event_lines() const { return wired.event_lines(); }
  // Commands whose text contains `needle`.
  int count(const std::string& needle) const {
    std::vector<std::string> lines = command_lines();
    return static_cast<int>(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.find(needle) != std::string::npos;
    }));
  }
};

// Hand-built scheduler states, to ask one policy one question.
class StateBuilder : public SchedulerState {
 public:
  StateBuilder(Workload work, EstimatorConfig estimates = {})
      : SchedulerState(std::move(work), estimates) {}

  StateBuilder& at_time(double t) {
    now_ = t;
    return *this;
  }
  StateBuilder& worker(const WorkerSpec& spec) {
    if (spec.id >= workers_.size()) workers_.resize(spec.id + 1);
    WorkerState& w = workers_[spec.id];
    w.spec = spec;
    w.alive = true;
    w.contexts.resize(contexts_.size());
    ++live_workers_;
    return *this;
  }
  // Context c ready on `tier` of w, last used at `used_s`.
  StateBuilder& holds(WorkerId w, ContextId c, Tier tier, double used_s = 0) {
    ContextOnWorker& on = workers_[w].contexts[c];
    on.tier[static_cast<int>(tier)] = Residency::ready;
    on.last_used_s = std::max(on.last_used_s, used_s);
    workers_[w].used_bytes[static_cast<int>(tier)] += contexts_[c].spec.size_bytes;
    if (on.has_bytes()) contexts_[c].holders.insert(w);
    return *this;
  }
  // All of context c's work is handed out already.
  StateBuilder& no_pending(ContextId c) {
    contexts_[c].next_fresh = contexts_[c].total;
    return *this;
  }
};

}  // namespace hearth::testing
