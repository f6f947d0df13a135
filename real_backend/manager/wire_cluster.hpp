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
// attempt, as do results that are not what the task asked for (result_check.hpp).
//
// With verification on, a share of finished tasks runs again on an idle worker holding the
// context (of another host where there is one); if the two disagree, a third decides, and the
// worker the other two contradict is reported (Hooks::liar). Verification attempts are the
// manager's own: the core never hears of them.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "policy/cluster.hpp"
#include "policy/engine.hpp"
#include "real_backend/manager/run_monitor.hpp"
#include "real_backend/manager/worker_registry.hpp"
#include "real_backend/wire/protocol.hpp"

namespace hearth::real {

class RunPlan;

class WireCluster final : public Cluster {
 public:
  // Sends a message to a live worker; the manager's loop may find the worker gone and lose it.
  using Send = std::function<void(WorkerId, const Message&)>;
  // How a task attempt ended, as the manager judges its worker: finished; failed (the worker or
  // the context may be at fault); or with results no hearth worker sends, whatever its model
  // (result_check.hpp): the worker's fault alone.
  enum class Outcome { finished, failed, malformed };
  // What the manager hears besides the core's events.
  struct Hooks {
    // A task attempt of the core (or a verification's) ended on `worker`, failing for `reason`.
    std::function<void(WorkerId, ContextId, std::uint64_t inferences, Outcome,
                       const std::string& reason)>
        task_outcome;
    // A stage failed (source: where it read from) / reached `tier`.
    std::function<void(WorkerId, ContextId, Tier, const Source&, const std::string& reason)>
        stage_failed;
    std::function<void(WorkerId, ContextId, Tier)> stage_ready;
    // Verification found `worker`'s results of a task wrong (the other two agreed).
    std::function<void(WorkerId, const std::string& why)> liar;
    // The core gave a task of this context up.
    std::function<void(ContextId, const std::string& reason)> given_up;
  };

  WireCluster(RunPlan& plan, const WorkerRegistry& workers, RunMonitor& monitor, Send send,
              std::function<double()> clock_s, Hooks hooks);
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
  void task_failed(WorkerId worker, AttemptId attempt, const std::string& reason,
                   Outcome outcome = Outcome::failed);
  // The worker is gone (already marked so in the registry): forgets what it was doing, and fails
  // the stages reading from it, telling their receivers to abort.
  void lost(WorkerId worker);

  // Delivers the queued events to `core`, in order, each at its own time.
  void deliver_events(ClusterEvents& core);

  // Verification: `share` of the core's finished tasks (0 to 1) run again elsewhere; scores may
  // differ by `tolerance`.
  void set_verify(double share, double tolerance);
  // Starts the verification attempts that an idle worker can run now. With `finishing` (the core
  // is done), drops the checks that no live worker can run.
  void verify_tick(bool finishing);
  // Checks waiting or running.
  std::size_t checks_pending() const { return checks_.size(); }

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
    std::uint64_t check = 0;  // a verification attempt: its check; 0: the core's
  };
  // A finished task whose results other workers run again.
  struct Check {
    TaskSpec task;
    std::vector<WorkerId> ran;                      // first: the core's attempt
    std::vector<std::vector<std::string>> results;  // of each, in order
    std::set<WorkerId> tried;                       // ran it, or failed to
    AttemptId running = 0;
    std::string first_difference;
  };
  using Event = std::function<void(ClusterEvents&)>;
  void post(Event event) { queue_.push_back(std::move(event)); }
  // The stage `stage` if it is `worker`'s and still in flight, removed from the records.
  bool take_stage(WorkerId worker, std::uint64_t stage, StageRecord& out);
  bool sampled(TaskId task) const;
  void verification_finished(WorkerId w, AttemptRecord a, const TaskFinished& m);
  void verification_failed(WorkerId w, const AttemptRecord& a, const std::string& reason);
  // The idle, live worker that should run check `c` next, or kNoWorker.
  WorkerId verifier_for(const Check& c) const;

  RunPlan& plan_;
  const WorkerRegistry& workers_;
  RunMonitor& monitor_;
  Send send_;
  std::function<double()> clock_s_;
  const Engine* engine_ = nullptr;
  double now_s_ = 0;
  std::deque<Event> queue_;
  std::map<std::uint64_t, StageRecord> stages_;
  std::uint64_t next_stage_ = 1;
  std::unordered_map<AttemptId, AttemptRecord> attempts_;
  // Tasks whose results are recorded in this run, by task id. Results are recorded as they come
  // in, and the core hears of them later: an event delivered before (a preemption notice, an idle
  // worker taking back a next task) may make the core cancel the attempt that sent them and hand
  // the task out again. Such a task counts as finished at once, on disk already, and never runs
  // twice.
  std::vector<bool> recorded_;
  Hooks hooks_;
  double verify_share_ = 0;
  double verify_tolerance_ = 0.05;
  std::map<std::uint64_t, Check> checks_;
  std::uint64_t next_check_ = 1;
  AttemptId next_verify_attempt_ = AttemptId{1} << 62;  // never one of the core's
};

}  // namespace hearth::real
