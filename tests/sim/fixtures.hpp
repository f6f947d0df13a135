#pragma once
// Small scenarios with round numbers, so that tests can state exact times by hand, and a scripted
// core that drives the simulated cluster without the policy engine.

#include <fmt/format.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sim_backend/scenario.hpp"
#include "sim_backend/simulation.hpp"

namespace hearth::sim::testing {

// One GPU type "G" whose stages take 10 s each for the 1 GB context of `one_context`:
//   disk from shared storage  1e9 B / min(storage 1e8, link 1e9, disk write 1e8) = 10 s
//   host from disk            1e9 B / disk read 1e8                              = 10 s
//   gpu from host             1e9 B / host-to-GPU 1e8 + init 30 s                = 40 s
// so a context load from nothing takes 60 s, and a task of 10 inferences 10 * 0.5 s = 5 s.
inline ClusterDescription round_cluster() {
  ClusterDescription c;
  c.source = "round_cluster";
  GpuType g;
  g.name = "G";
  g.gpu_memory_bytes = 10e9;
  g.host_memory_bytes = 10e9;
  g.disk_bytes = 10e9;
  g.disk_read_Bps = 1e8;
  g.disk_write_Bps = 1e8;
  g.host_to_gpu_Bps = 1e8;
  g.network_Bps = 1e9;
  g.per_batch_s = 0;
  g.per_inference_s = 0.5;
  c.gpu_types.push_back(g);
  c.reference_gpu = "G";
  c.latency_s = 0;
  c.manager_network_Bps = 1e9;
  c.shared_storage_Bps = 1e8;
  c.output_bytes_per_inference = 0;
  return c;
}

struct Row {
  double time_s;
  const char* kind;  // "up", "down" or "notice"
  std::string worker;
  double grace_s = 0;
};

inline traces::Trace make_trace(const std::vector<Row>& rows, const std::string& gpu_type = "G") {
  traces::Trace t;
  t.source = "test-trace";
  std::size_t line = 2;
  for (const Row& r : rows) {
    traces::TraceEvent e;
    e.time_s = r.time_s;
    e.worker = r.worker;
    e.kind = std::string(r.kind) == "up"     ? traces::EventKind::up
             : std::string(r.kind) == "down" ? traces::EventKind::down
                                             : traces::EventKind::notice;
    e.gpu_type = e.kind == traces::EventKind::up ? gpu_type : "";
    e.grace_s = r.grace_s;
    e.line = line++;
    t.end_s = r.time_s;
    t.events.push_back(e);
  }
  return t;
}

// 1 GB context with 30 s of initialisation, `inferences` of work, tasks of 10.
inline Scenario one_context(const std::vector<Row>& rows, std::uint64_t inferences,
                            const std::string& placement) {
  Scenario s;
  s.source = "(built in code)";
  s.name = "test";
  s.cluster = round_cluster();
  s.trace = make_trace(rows);
  s.workload.add({0, "model", 1e9, 30.0}, inferences);
  select_placement(s.policies, placement);
  s.policies.batch_size = 10;
  check_scenario(s);
  return s;
}

// A core that does what a test scripts, and writes down every event it sees, with its time, as
// "12.5 ready w0 c0 disk" (the lines come back in SimResult::event_log).
class Script final : public SimCore, public ClusterEvents {
 public:
  explicit Script(Cluster& cluster) : cluster(cluster) {}

  Cluster& cluster;
  std::function<void(Script&, const WorkerSpec&)> on_join = [](Script&, const WorkerSpec&) {};
  std::function<void(Script&, WorkerId, ContextId, Tier)> on_ready = [](Script&, WorkerId,
                                                                        ContextId, Tier) {};
  std::function<void(Script&, WorkerId)> on_finished = [](Script&, WorkerId) {};
  // The run ends when this many events were seen.
  std::size_t stop_after = 0;

  ClusterEvents& events() override { return *this; }
  bool finished() const override { return lines.size() >= stop_after; }
  std::uint64_t inferences_done() const override { return 0; }
  std::vector<std::string> event_log() const override { return lines; }

  void worker_joined(const WorkerSpec& spec) override {
    note(fmt::format("joined w{}", spec.id));
    on_join(*this, spec);
  }
  void preemption_notice(WorkerId w, double grace_s) override {
    note(fmt::format("notice w{} {}", w, grace_s));
  }
  void worker_lost(WorkerId w) override { note(fmt::format("lost w{}", w)); }
  void context_ready(WorkerId w, ContextId c, Tier t) override {
    note(fmt::format("ready w{} c{} {}", w, c, to_string(t)));
    on_ready(*this, w, c, t);
  }
  void stage_failed(WorkerId w, ContextId c, Tier t, std::string_view) override {
    note(fmt::format("stage_failed w{} c{} {}", w, c, to_string(t)));
  }
  void task_finished(WorkerId w, AttemptId a, double) override {
    note(fmt::format("finished w{} attempt {}", w, a));
    on_finished(*this, w);
  }
  void task_failed(WorkerId w, AttemptId a, std::string_view) override {
    note(fmt::format("failed w{} attempt {}", w, a));
  }

 private:
  void note(const std::string& what) {
    lines.push_back(fmt::format("{:.6f} {}", cluster.now(), what));
  }
  std::vector<std::string> lines;
};

// Runs `scenario` with a Script set up by `setup`; returns the events it saw.
inline std::vector<std::string> run_script(const Scenario& scenario, std::size_t stop_after,
                                           std::function<void(Script&)> setup) {
  SimResult r = simulate_with(scenario, {}, [&](Cluster& cluster, const Scenario&) {
    auto script = std::make_unique<Script>(cluster);
    script->stop_after = stop_after;
    setup(*script);
    return script;
  });
  return r.event_log;
}

}  // namespace hearth::sim::testing
