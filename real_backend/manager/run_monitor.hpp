#pragma once
// What happened in a real run, as an operator watches it: every worker's state and the contexts
// it holds, the stages and tasks in flight, counts, bytes by source, throughput per GPU type and
// the recent errors. The manager's loop and WireCluster report to it as things happen; it
// keeps
//   - a timeline per worker in the simulator's Gantt states (loading, computing, idle, lost),
//   - the status snapshot (`snapshot()`), one JSON object that STATE/status.json, `hearth status`,
//     the status page and the end-of-run report read (docs/real-backend.md, "Watching a run"),
//   - with an events file, one JSON line per event, flushed as it happens, which `hearth
//     experiment plot` draws like a simulated run.
// Bookkeeping only: it decides nothing.

#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "policy/model.hpp"

namespace hearth::real {

struct RunMonitorSetup {
  std::string job;
  std::string state_dir;
  std::uint64_t run = 0;
  std::uint64_t total = 0;                               // inferences of the job
  std::uint64_t done_before = 0;                         // done by earlier runs
  std::vector<std::pair<std::string, double>> contexts;  // name, size in bytes
  std::string policy;
  std::filesystem::path events_path;  // empty: no events file
};

// What the manager's core and loop know that the record does not see itself.
struct RunTotals {
  std::uint64_t done = 0;     // inferences done in this run
  std::uint64_t pending = 0;  // inferences waiting for a worker
  std::uint64_t requeued = 0;
  std::uint64_t given_up_tasks = 0;
  std::uint64_t stage_failures = 0;
  int joins = 0;
  int losses = 0;
  int refused_connections = 0;
};

class RunMonitor {
 public:
  // Throws InputError if the events file cannot be opened.
  RunMonitor(RunMonitorSetup setup, std::function<double()> clock_s);
  ~RunMonitor();
  RunMonitor(const RunMonitor&) = delete;
  RunMonitor& operator=(const RunMonitor&) = delete;

  // ---- workers ----
  void worker_joined(WorkerId w, const std::string& name, const std::string& gpu_type,
                     const std::string& host);
  void worker_lost(WorkerId w, const std::string& why);
  void worker_quarantined(WorkerId w, const std::string& why);
  void notice(WorkerId w, double grace_s);

  // ---- stages; source: "manager", "shared", "peer" (from: the serving worker) or "lower_tier" --
  void stage_started(WorkerId w, ContextId c, Tier tier, const std::string& source, WorkerId from);
  void stage_ready(WorkerId w, ContextId c, Tier tier);
  void stage_failed(WorkerId w, ContextId c, Tier tier, const std::string& reason);
  void evicted(WorkerId w, ContextId c, Tier tier);

  // ---- tasks ----
  void task_started(WorkerId w, const TaskSpec& task, bool verify);
  void task_finished(WorkerId w, AttemptId attempt);
  void task_failed(WorkerId w, AttemptId attempt, const std::string& reason);
  void task_cancelled(WorkerId w, AttemptId attempt);
  void task_given_up(TaskId task, ContextId c, std::uint64_t inferences, const std::string& reason);
  void verified(bool agreed);

  // A problem worth showing the operator (kept among the recent errors, and logged by the caller).
  void error(WorkerId w, const std::string& what);
  // The run ended: "finished", "stopped", "no_workers" or "failed" (with why).
  void ended(const std::string& end, const std::string& why, std::uint64_t done);

  // The status snapshot (docs/real-backend.md); `totals` from the core and the manager.
  nlohmann::ordered_json snapshot(const RunTotals& totals) const;

  // Whether `w` is live, runs nothing and stages nothing.
  bool idle(WorkerId w) const;
  // Whether `w` is live, runs nothing, stages nothing and holds `c` in GPU memory.
  bool idle_holding(WorkerId w, ContextId c) const;
  bool quarantined(WorkerId w) const { return w < workers_.size() && workers_[w].quarantined; }
  // Whether `w` is live and holds `c` in GPU memory, busy or not.
  bool holding(WorkerId w, ContextId c) const;
  // Measured inferences per second of computing, of worker `w`; 0 until it finished a task.
  double measured_speed(WorkerId w) const;
  std::uint64_t given_up_inferences() const { return given_up_inferences_; }
  int quarantines() const { return quarantines_; }

 private:
  enum class State { idle, loading, computing, lost, quarantined };
  struct Segment {
    State state;
    double start_s, end_s;
  };
  struct Running {
    TaskSpec task;
    double started_s = 0;
    bool verify = false;
  };
  struct Stage {
    ContextId context;
    Tier tier;
    std::string source;
    WorkerId from;
    double started_s;
  };
  struct WorkerRecord {
    std::string name, gpu_type, host;
    bool alive = false;
    bool quarantined = false;
    std::string quarantine_reason;
    double left_s = -1;
    State state = State::idle;
    double since_s = 0;
    std::deque<Segment> timeline;  // closed segments, the last kMaxSegments
    std::map<AttemptId, Running> running;
    std::vector<Stage> stages;
    std::array<std::set<ContextId>, kTierCount> contexts;
    std::uint64_t tasks_done = 0, tasks_failed = 0, inferences = 0;
    double computing_s = 0;  // of finished tasks
  };
  struct Sample {
    double t_s;
    std::uint64_t done;
  };

  WorkerRecord& at(WorkerId w);
  // Puts the worker in the state its stages and tasks say, closing a segment if it changed.
  void refresh(WorkerId w);
  void set_state(WorkerRecord& r, State s);
  void emit(nlohmann::ordered_json event);
  std::string context_name(ContextId c) const;
  static const char* name_of(State s);

  RunMonitorSetup setup_;
  std::function<double()> clock_s_;
  std::FILE* events_ = nullptr;
  bool events_failed_ = false;
  std::vector<WorkerRecord> workers_;
  std::map<std::string, double> bytes_;  // by source
  std::deque<nlohmann::ordered_json> errors_;
  mutable std::deque<Sample> samples_;  // progress over the last minute, for the rate
  std::uint64_t given_up_inferences_ = 0;
  std::uint64_t failed_attempts_ = 0;
  std::uint64_t verified_ = 0, disagreements_ = 0;
  int notices_ = 0, quarantines_ = 0;
  std::string end_, end_reason_;
};

}  // namespace hearth::real
