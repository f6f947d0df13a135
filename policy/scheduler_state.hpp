#pragma once
// The authoritative picture the scheduler keeps of the cluster and the work: which tasks are
// pending, bound, running or done; which contexts sit on which tier of which worker; what is in
// flight. The engine is the only writer; policies read it through the const queries below.

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "policy/estimator.hpp"
#include "policy/model.hpp"
#include "policy/workload.hpp"

namespace hearth {

inline constexpr TaskId kNoTask = ~TaskId{0};
inline constexpr ContextId kNoContext = ~ContextId{0};

enum class Residency : std::uint8_t { absent, staging, ready };

// One context as seen on one worker.
struct ContextOnWorker {
  std::array<Residency, kTierCount> tier{};  // indexed by Tier
  double last_used_s = 0;  // when a task of it last started here, or it last became ready
  int uploads = 0;         // peer transfers reading this worker's copy now
  int stage_failures = 0;  // consecutive failed stages here
  bool given_up = false;   // failed too often: this worker no longer tries this context
  bool serving = false;    // counted in ContextState::serving_speed
  std::optional<Source> disk_source;  // where the disk stage in flight reads from, if one is
  std::uint32_t disk_source_incarnation = 0;  // of the peer, if it is one

  Residency at(Tier t) const { return tier[static_cast<int>(t)]; }
  bool ready(Tier t) const { return at(t) == Residency::ready; }
  // Holds the bytes somewhere a peer can read them from.
  bool has_bytes() const { return ready(Tier::disk) || ready(Tier::host); }
};

struct WorkerState {
  WorkerSpec spec;
  bool alive = false;
  bool draining = false;          // got a preemption notice: takes no new work
  std::uint32_t incarnation = 0;  // bumped at every join, so stale references can be told apart
  double joined_s = 0;
  std::array<double, kTierCount> used_bytes{};  // ready contexts plus room reserved by stages
  std::vector<ContextOnWorker> contexts;        // indexed by ContextId
  int uploads = 0;                              // all peer transfers reading from this worker

  // At most one task: bound while its context loads (unless the load runs ahead of any task),
  // then running.
  TaskId task = kNoTask;
  AttemptId attempt = 0;  // set while running
  double task_started_s = 0;
  double task_end_s = 0;           // when the running attempt was estimated to end, at its start
  ContextId loading = kNoContext;  // the context being brought to GPU memory
  double load_eta_s = 0;           // when it was estimated to be ready, at the start of the load
  LoadSource load_origin = LoadSource::shared_storage;
  bool awaiting_seed = false;  // wants `loading` on disk and waits for the replication planner
  // Pipelining (EngineConfig::pipeline): a task of the running task's context, already sent to
  // the worker, which starts it when the running one ends. Bound, and in no runner list until
  // then.
  TaskId next_task = kNoTask;
  AttemptId next_attempt = 0;

  double capacity(Tier t) const { return capacity_bytes(spec, t); }
  double free_bytes(Tier t) const { return capacity(t) - used_bytes[static_cast<int>(t)]; }
  // Loading a context (for a bound task, or ahead of any) or running a task.
  bool busy() const { return task != kNoTask || loading != kNoContext; }
  const ContextOnWorker& on(ContextId c) const { return contexts[c]; }
};

enum class TaskState : std::uint8_t { pending, bound, running, done, failed };

struct TaskRecord {
  ContextId context = 0;
  std::uint64_t first = 0;
  std::uint64_t count = 0;
  TaskState state = TaskState::pending;
  std::uint32_t attempts = 0;      // starts, including backups
  std::uint32_t failures = 0;      // task_failed events (preemptions do not count)
  WorkerId failed_on = kNoWorker;  // where it last failed: its retry goes elsewhere first
  double expected_end_s = 0;       // of its first running attempt, as estimated at its start
  // Workers running an attempt now (a backup attempt makes two).
  std::array<WorkerId, 2> runners{kNoWorker, kNoWorker};
  int running() const { return (runners[0] != kNoWorker) + (runners[1] != kNoWorker); }
};

struct ContextState {
  ContextSpec spec;
  std::uint64_t total = 0;       // inferences
  std::uint64_t next_fresh = 0;  // inferences [next_fresh, total) are in no task yet
  std::uint64_t done = 0;
  std::uint64_t failed = 0;     // inferences of tasks given up after repeated failures
  std::deque<TaskId> requeued;  // tasks to run again, oldest first
  std::uint64_t requeued_inferences = 0;
  std::set<WorkerId> holders;       // live, not draining workers with disk or host bytes
  std::set<WorkerId> free_holders;  // those of them that may start another upload now
  // Tasks with an attempt running, by when their first running attempt is expected to end.
  std::set<std::pair<double, TaskId>> running_by_end;
  double serving_speed = 0;    // sum of speeds of workers with it on GPU or loading it
  double loading_speed = 0;    // sum of speeds of the workers loading it
  double loading_eta_sum = 0;  // sum of speed * estimated ready time over those
  // Speed-weighted seconds the workers loading it still need before they can serve it, from
  // `now_s`: what the pending work waits for besides the servers' own time.
  double loading_wait_s(double now_s) const {
    return std::max(0.0, loading_eta_sum - now_s * loading_speed);
  }
  double running_speed = 0;    // sum of speeds of the workers running an attempt of it
  double running_end_sum = 0;  // sum of speed * estimated end of their attempts
  // Speed-weighted seconds those attempts still need: work its servers do before the pending.
  double running_left_s(double now_s) const {
    return std::max(0.0, running_end_sum - now_s * running_speed);
  }
  int fetching = 0;  // disk stages of it reading from a peer or shared storage

  std::uint64_t pending() const { return (total - next_fresh) + requeued_inferences; }
  bool complete() const { return done + failed == total; }
};

class SchedulerState {
 public:
  SchedulerState(Workload workload, const EstimatorConfig& estimates);

  double now() const { return now_; }
  const Workload& workload() const { return workload_; }
  std::size_t context_count() const { return contexts_.size(); }
  const ContextState& context(ContextId c) const { return contexts_[c]; }
  std::size_t worker_slots() const { return workers_.size(); }
  const WorkerState& worker(WorkerId w) const { return workers_[w]; }
  const TaskRecord& task(TaskId t) const { return tasks_[t]; }
  std::size_t task_count() const { return tasks_.size(); }
  const Estimator& estimator() const { return estimator_; }
  int live_workers() const { return live_workers_; }
  // Disk stages reading from shared storage now.
  int shared_readers() const { return shared_readers_; }
  // The sum of those readers' links: what they could read at, were shared storage unlimited.
  double shared_read_Bps() const { return shared_read_Bps_; }

  // Whether context `c` fits at all on every tier of worker `w` (else w can never run it).
  bool fits(WorkerId w, ContextId c) const;
  // Inferences of all contexts not yet in a running or bound task.
  std::uint64_t pending_inferences() const;
  // Estimated seconds until the attempt running on worker `w` ends; 0 if it runs none.
  double remaining_s(WorkerId w) const;

 protected:
  double now_ = 0;
  Workload workload_;
  std::vector<ContextState> contexts_;
  std::vector<WorkerState> workers_;  // indexed by WorkerId; grows as ids appear
  std::vector<TaskRecord> tasks_;     // indexed by TaskId
  Estimator estimator_;
  int live_workers_ = 0;
  int shared_readers_ = 0;
  double shared_read_Bps_ = 0;
};

}  // namespace hearth
