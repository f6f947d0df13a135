#pragma once
// The core's cluster, carried over the wire: the core's commands become messages to workers, and
// what workers report becomes the core's events. Events wait in a queue until the manager's loop
// delivers them (deliver_events), one at a time and never inside a command, as cluster.hpp
// requires. A finished task's results are committed to the state store before the core hears of
// them.
//
// It keeps what is in flight: each stage (by the id the worker echoes) and each attempt. A
// report that matches nothing in flight (aborted, cancelled, superseded, or another worker's) is
// dropped; one that is inconsistent (wrong result count, results that are not JSON) fails the
// attempt.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>

#include "policy/cluster.hpp"
#include "policy/engine.hpp"
#include "real_backend/manager/worker_registry.hpp"
#include "real_backend/wire/protocol.hpp"

namespace hearth::real {

class RunPlan;

class WireCluster final : public Cluster {
 public:
  // Sends a message to a live worker; the manager's loop may find the worker gone and lose it.
  using Send = std::function<void(WorkerId, const Message&)>;

  WireCluster(RunPlan& plan, const WorkerRegistry& workers, Send send,
              std::function<double()> clock_s);
  // The core these events go to, for its narrow queries (Engine::runs, given_up).
  void attach(const Engine& engine) { engine_ = &engine; }

  double now() const override { return now_s_; }
  void stage_context(WorkerId worker, ContextId context, Tier tier, Source source) override;
  void evict_context(WorkerId worker, ContextId context, Tier tier) override;
  void start_task(WorkerId worker, const TaskSpec& task) override;
  void cancel_task(WorkerId worker, AttemptId attempt) override;

  // ---- what workers report (worker: the live worker that sent it) ----
  void joined(const WorkerSpec& spec);
  void notice(WorkerId worker, double grace_s);
  void stage_ended(WorkerId worker, const StageReady& m);
  void stage_ended(WorkerId worker, const StageFailed& m);
  void task_finished(WorkerId worker, const TaskFinished& m);
  void task_failed(WorkerId worker, AttemptId attempt, const std::string& reason);
  // The worker is gone (already marked so in the registry): forgets what it was doing, and fails
  // the stages reading from it, telling their receivers to abort.
  void lost(WorkerId worker);

  // Delivers the queued events to `core`, in order, each at its own time.
  void deliver_events(ClusterEvents& core);

 private:
  struct StageRecord {
    WorkerId worker = 0;
    ContextId context = 0;
    Tier tier = Tier::disk;
    Source source;
  };
  struct AttemptRecord {
    WorkerId worker = 0;
    TaskSpec task;
  };
  using Event = std::function<void(ClusterEvents&)>;
  void post(Event event) { queue_.push_back(std::move(event)); }
  // The stage `stage` if it is `worker`'s and still in flight, removed from the records.
  bool take_stage(WorkerId worker, std::uint64_t stage, StageRecord& out);

  RunPlan& plan_;
  const WorkerRegistry& workers_;
  Send send_;
  std::function<double()> clock_s_;
  const Engine* engine_ = nullptr;
  double now_s_ = 0;
  std::deque<Event> queue_;
  std::map<std::uint64_t, StageRecord> stages_;
  std::uint64_t next_stage_ = 1;
  std::unordered_map<AttemptId, AttemptRecord> attempts_;
};

}  // namespace hearth::real
