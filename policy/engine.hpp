#pragma once
// The scheduler engine: keeps the authoritative state, reacts to the cluster's events, consults
// the policies at each decision point and issues commands to the cluster.
//
// Deterministic: the same sequence of events (with the same cluster clock readings) yields the
// same commands, in the same order. A task counts as done exactly once, however often it ran.

#include <array>
#include <cstdint>
#include <set>
#include <tuple>
#include <vector>

#include "policy/cluster.hpp"
#include "policy/placement.hpp"
#include "policy/pool_sizing.hpp"
#include "policy/registry.hpp"
#include "policy/scheduler_state.hpp"

namespace hearth {

struct EngineConfig {
  PolicyChoice policies;
  EstimatorConfig estimates;
  // A task that fails this many times on live workers is given up (its inferences count as
  // failed) instead of being retried forever.
  int max_task_failures = 3;
  // A worker that fails to stage a context this many times in a row stops trying that context.
  int max_stage_failures = 3;
  // Pipelined dispatch: a worker running a task of a context that keeps its contexts is also sent
  // its next task of that context, which it starts the moment the running one ends, so that it
  // does not idle for the round trip to the manager between tasks. At the end of the work an
  // idle worker takes such a waiting task back for itself. For the real manager, where that
  // round trip is real; the simulator's is zero, and it leaves this off.
  bool pipeline = false;
};

struct EngineStats {
  std::uint64_t tasks_created = 0;
  std::uint64_t tasks_done = 0;
  std::uint64_t tasks_failed = 0;    // given up after max_task_failures
  std::uint64_t attempts = 0;        // task starts, backups included
  std::uint64_t backups = 0;         // second attempts started by the placement policy
  std::uint64_t tasks_requeued = 0;  // lost to preemption, a failure or a notice
  std::uint64_t inferences_done = 0;
  std::uint64_t preemptions = 0;  // workers lost
  std::uint64_t notices = 0;
  std::uint64_t stage_failures = 0;
  std::uint64_t evictions = 0;
  // Contexts brought to GPU memory, by where the chain of stages started.
  std::array<std::uint64_t, kLoadSourceCount> context_loads{};
  double shared_storage_bytes = 0;  // read from shared storage by completed stages
  double peer_bytes = 0;
  double output_bytes = 0;
  double finished_s = -1;  // when the last inference was done; -1 while running
};

class Engine final : public ClusterEvents, private SchedulerState {
 public:
  Engine(Cluster& cluster, Workload workload, EngineConfig config);
  ~Engine() override;

  bool finished() const;
  const EngineStats& stats() const { return stats_; }
  const SchedulerState& state() const { return *this; }
  const EngineConfig& config() const { return config_; }

  // Narrow questions a backend may ask (a backend never reads the state itself):
  // the work left and the workers, as a factory sizes its pool by;
  PoolStatus pool_status() const;
  // whether `attempt` is the attempt the core runs on `worker` now (results of any other are
  // stale: cancelled, superseded, or of a worker lost meanwhile);
  bool runs(WorkerId worker, AttemptId attempt) const;
  // whether task `task` was given up after max_task_failures (its inferences count as failed).
  bool given_up(TaskId task) const;

  void worker_joined(const WorkerSpec& spec) override;
  void preemption_notice(WorkerId worker, double grace_s) override;
  void worker_lost(WorkerId worker) override;
  void context_ready(WorkerId worker, ContextId context, Tier tier) override;
  void stage_failed(WorkerId worker, ContextId context, Tier tier,
                    std::string_view reason) override;
  void task_finished(WorkerId worker, AttemptId attempt, double output_bytes) override;
  void task_failed(WorkerId worker, AttemptId attempt, std::string_view reason) override;

 private:
  // Idle workers are asked in this order: those with a context in GPU memory first (they can
  // start at once), then the fastest, then by id.
  using IdleKey = std::tuple<bool, double, WorkerId>;

  bool live(WorkerId worker, ContextId context = kNoContext) const;
  void tick();
  void schedule();
  bool parked_may_act() const;
  void decide(WorkerId w);
  void make_idle(WorkerId w);
  void forget_idle(WorkerId w);
  void park(WorkerId w) { parked_.insert(idle_keys_[w]); }
  void unpark(WorkerId w);
  void unpark_all();

  TaskId take_task(WorkerId w, ContextId c);
  void start_attempt(WorkerId w, TaskId t);
  void begin_running(WorkerId w, TaskId t, AttemptId attempt);
  // Pipelining: sends w its next task; makes the next task the running one once the running
  // slot is empty (or makes w idle); puts it back in the queue; gives an idle worker one back.
  void queue_next(WorkerId w);
  TaskId take_next(WorkerId w);
  void promote_next(WorkerId w);
  void drop_next(WorkerId w);
  void reclaim_next(WorkerId w);
  void bind_and_load(WorkerId w, ContextId c);
  void start_loading(WorkerId w, ContextId c);
  void advance_load(WorkerId w);
  void stop_loading(WorkerId w);
  // w's attempt of a task of c no longer runs (ended, lost, cancelled).
  void stop_running(WorkerId w, ContextId c);
  // Why a worker drops its task: the task was lost (preemption, failure) or never really began.
  enum class Requeue : bool { lost, given_back };
  void abandon_task(WorkerId w, Requeue why = Requeue::lost);
  void requeue(TaskId t, Requeue why);
  void end_attempts(TaskId t, WorkerId w);

  void plan_seeds();
  bool make_room(WorkerId w, Tier tier, double bytes);
  void evict(WorkerId w, ContextId c, Tier tier);
  void set_residency(WorkerId w, ContextId c, Tier tier, Residency r);
  void refresh_serving(WorkerId w, ContextId c);
  void refresh_holder(WorkerId w, ContextId c);
  void count_upload(WorkerId peer, ContextId c, int delta);
  void release_upload(WorkerId receiver, ContextId c);
  bool in_use(const WorkerState& w, ContextId c, Tier tier) const;

  Cluster& cluster_;
  EngineConfig config_;
  PolicySet policies_;
  EngineStats stats_;
  AttemptId next_attempt_ = 1;
  std::set<IdleKey> idle_;               // idle workers to ask
  std::set<IdleKey> parked_;             // idle workers told to wait
  bool wake_parked_ = false;             // ask the parked ones too, at the next schedule()
  std::vector<IdleKey> idle_keys_;       // the key each worker was last queued under
  std::vector<std::uint64_t> asked_in_;  // the schedule() round that last asked each worker
  std::uint64_t round_ = 0;
  std::vector<SeedQueue> seed_queues_;  // per context: workers awaiting a seed, in order
  bool seeds_dirty_ = false;            // something changed that may let a seed start
  std::set<WorkerId> holding_next_;     // workers with a next task waiting (pipelining)
};

}  // namespace hearth
