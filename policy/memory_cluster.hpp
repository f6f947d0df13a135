#pragma once
// A tiny cluster that lives in memory, with its own event clock: the third environment of the
// policy core (after the simulator and the real backend), for tests.
//
// Its timing model is exact and simple, so that tests can state results by hand:
//   disk from shared storage  size / shared_storage_Bps       (every reader gets the full rate)
//   disk from a peer          size / min(peer, receiver network_Bps)
//   host from disk            size / disk_read_Bps
//   gpu from host             size / host_to_gpu_Bps + init_s
//   task                      task_overhead_s + count * inference_s / speed
// A worker runs its tasks one after another, in the order they reach it. A task's start command
// reaches the worker, and its end reaches the core, `message_s` after they are sent (0 by
// default: at once), so a worker given one task at a time idles for a round trip between tasks.
// A lost worker loses everything on it; a transfer it was sending fails on the receiver at the
// same moment. It trusts the commands it is given: put it behind a ContractCheck
// (policy/contract_check.hpp, as tests/policy/rig.hpp does) to have them checked.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <queue>
#include <set>
#include <vector>

#include "policy/cluster.hpp"

namespace hearth {

struct MemoryClusterConfig {
  double shared_storage_Bps = 1e9;
  double task_overhead_s = 1.0;
  double inference_s = 0.05;  // per inference at speed 1.0
  double output_bytes_per_inference = 100;
  double message_s = 0;  // one way, for tasks' start commands and their ends
};

class MemoryCluster final : public Cluster {
 public:
  explicit MemoryCluster(MemoryClusterConfig config) : config_(config) {}

  // The core that receives this cluster's events. Set before run().
  void attach(ClusterEvents& core) { core_ = &core; }

  // Scripts what the pool does.
  void join_at(double t, const WorkerSpec& spec);
  void lose_at(double t, WorkerId w);
  void notice_at(double t, WorkerId w, double grace_s);
  // The first `times` attempts of task `task` that run to their end fail instead of finishing.
  void fail_task(TaskId task, int times) { task_failures_[task] = times; }

  // Delivers events in time order until none are left or the next is after `until`.
  void run(double until = 1e300);

  // What happened, for checks.
  struct Counters {
    int stages_from_shared = 0;
    int stages_from_peer = 0;
    int tasks_started = 0;
    int tasks_cancelled = 0;
    int evictions = 0;
  };
  const Counters& counters() const { return counters_; }

  double now() const override { return now_; }
  void stage_context(WorkerId worker, ContextId context, Tier tier, Source source) override;
  void evict_context(WorkerId worker, ContextId context, Tier tier) override;
  void start_task(WorkerId worker, const TaskSpec& task) override;
  void cancel_task(WorkerId worker, AttemptId attempt) override;

  // Context sizes and init times, which the cluster must know to time stages.
  void set_contexts(std::vector<ContextSpec> contexts) { contexts_ = std::move(contexts); }

 private:
  struct Worker {
    WorkerSpec spec;
    bool up = false;
    std::uint32_t incarnation = 0;
    bool running = false;          // a task runs
    std::deque<TaskSpec> waiting;  // tasks that reached it, to run after the running one
  };
  // Something in flight that ends with an event, unless its worker (or source peer) is lost or
  // it is cancelled first.
  struct Activity {
    WorkerId worker = 0;
    std::uint32_t incarnation = 0;
    bool is_task = false;
    ContextId context = 0;
    Tier tier = Tier::disk;
    Source source;
    TaskSpec task;
  };
  void at(double t, std::function<void()> action);
  std::uint64_t begin(Activity a, double duration_s);
  void end(std::uint64_t id);
  void lose(WorkerId w);
  void arrive(WorkerId w, const TaskSpec& task);
  void run_next(WorkerId w);
  // Runs `deliver` `message_s` from now, if the worker is still the same incarnation by then.
  void after_message(WorkerId w, std::function<void()> deliver);

  MemoryClusterConfig config_;
  ClusterEvents* core_ = nullptr;
  std::vector<ContextSpec> contexts_;
  std::vector<Worker> workers_;
  double now_ = 0;
  std::uint64_t sequence_ = 0;
  using Timed = std::pair<std::pair<double, std::uint64_t>, std::function<void()>>;
  struct Later {
    bool operator()(const Timed& a, const Timed& b) const { return a.first > b.first; }
  };
  std::priority_queue<Timed, std::vector<Timed>, Later> queue_;
  std::map<std::uint64_t, Activity> in_flight_;
  std::uint64_t next_activity_ = 1;
  std::map<TaskId, int> task_failures_;
  std::set<AttemptId> cancelled_;  // attempts cancelled before they began
  Counters counters_;
};

}  // namespace hearth
