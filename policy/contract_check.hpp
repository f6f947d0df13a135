#pragma once
// The cluster contract, executable: sits between the core and a cluster and checks every command
// against the Requires of policy/cluster.hpp, as the core's own view has it (the events delivered
// so far, the commands issued so far). Commands pass through it to the cluster, events through it
// to the core. The simulator, the in-memory test cluster and the manager (in debug builds and its
// tests) run behind one, so a core that breaks the contract is caught in every backend alike.
//
// What is checked:
//   stage_context  the worker is alive; the context is neither ready nor on its way on that tier;
//                  the tier has room for it; a disk stage reads from shared storage or a peer,
//                  other tiers from the tier below, where the context is ready; a peer is another
//                  live worker that holds the context on disk or in host memory
//   evict_context  the worker is alive; the context is ready on that tier and nothing uses it
//                  there: a task of it on the GPU, a stage to the tier above, a peer reading the
//                  worker's last copy of its bytes
//   start_task     the worker is alive and has the context in GPU memory; it runs no other
//                  attempt, or (pipelined) runs one of the same context and holds none behind it
// A command that breaks one is a bug in the core: `on_broken` is told what (by default, it is
// printed and the program aborts) and the command still goes on to the cluster.

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "policy/cluster_wrapper.hpp"
#include "policy/workload.hpp"

namespace hearth {

class ContractCheck final : public ClusterWrapper, public ClusterEventsWrapper {
 public:
  using OnBroken = std::function<void(const std::string& what)>;
  // Prints "hearth: the core broke the cluster contract: WHAT" and aborts.
  static void abort_on_broken(const std::string& what);

  // Checks the commands meant for `cluster`; events go on to the target set with set_target().
  // With `pipelined`, a worker may hold one attempt behind its running one
  // (EngineConfig::pipeline).
  ContractCheck(Cluster& cluster, const Workload& workload, OnBroken on_broken = abort_on_broken,
                bool pipelined = false);

  void stage_context(WorkerId worker, ContextId context, Tier tier, Source source) override;
  void evict_context(WorkerId worker, ContextId context, Tier tier) override;
  void start_task(WorkerId worker, const TaskSpec& task) override;
  void cancel_task(WorkerId worker, AttemptId attempt) override;

  void worker_joined(const WorkerSpec& spec) override;
  void worker_lost(WorkerId worker) override;
  void context_ready(WorkerId worker, ContextId context, Tier tier) override;
  void stage_failed(WorkerId worker, ContextId context, Tier tier,
                    std::string_view reason) override;
  void task_finished(WorkerId worker, AttemptId attempt, double output_bytes) override;
  void task_failed(WorkerId worker, AttemptId attempt, std::string_view reason) override;

 private:
  // A worker as the core should see it.
  struct Worker {
    WorkerSpec spec;
    bool alive = false;
    std::uint32_t incarnation = 0;
    std::vector<std::uint8_t> ready;    // per context: a bit per tier where it is usable
    std::vector<std::uint8_t> staging;  // per context: a bit per tier where it is on its way
    std::vector<int> uploads;           // per context: peer stages reading from this worker
    std::array<double, kTierCount> used_bytes{};
    AttemptId attempt = 0;  // running; 0 for none
    AttemptId next = 0;     // waiting behind it (pipelined); 0 for none
    ContextId task_context = 0;
    // Per context: the peer its disk stage reads from, and that peer's incarnation.
    std::vector<std::pair<WorkerId, std::uint32_t>> disk_peer;
  };

  bool alive(WorkerId w) const { return w < workers_.size() && workers_[w].alive; }
  bool in_use(const Worker& w, ContextId c, Tier tier) const;
  void stage_ended(WorkerId w, ContextId c, Tier tier, bool ready);
  void attempt_ended(WorkerId w, AttemptId attempt);
  void release_upload(Worker& receiver, ContextId c);
  void broken(const std::string& what) const { on_broken_(what); }

  std::vector<double> sizes_;  // per context
  OnBroken on_broken_;
  bool pipelined_ = false;
  std::vector<Worker> workers_;
};

}  // namespace hearth
