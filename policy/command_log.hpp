#pragma once
// Recording and replaying what passes through the cluster interface, as text lines. Lets a test
// check that two backends make the core take the same decisions: record the events one backend
// delivered, replay them into a fresh engine, and compare the commands it issues.

#include <string>
#include <vector>

#include "policy/cluster_wrapper.hpp"
#include "policy/engine.hpp"

namespace hearth {

// Passes every command on to `inner` and records it as a line, prefixed with the time.
class CommandLog final : public ClusterWrapper {
 public:
  explicit CommandLog(Cluster& inner) : ClusterWrapper(inner) {}
  const std::vector<std::string>& lines() const { return lines_; }

  void stage_context(WorkerId worker, ContextId context, Tier tier, Source source) override;
  void evict_context(WorkerId worker, ContextId context, Tier tier) override;
  void start_task(WorkerId worker, const TaskSpec& task) override;
  void cancel_task(WorkerId worker, AttemptId attempt) override;

 private:
  std::vector<std::string> lines_;
};

// Passes every event on to `inner` and records it as a line that replay_events() can parse, with
// the time `clock` says.
class EventLog final : public ClusterEventsWrapper {
 public:
  explicit EventLog(const Cluster& clock, ClusterEvents* inner = nullptr)
      : ClusterEventsWrapper(inner), clock_(clock) {}
  const std::vector<std::string>& lines() const { return lines_; }

  void worker_joined(const WorkerSpec& spec) override;
  void preemption_notice(WorkerId worker, double grace_s) override;
  void worker_lost(WorkerId worker) override;
  void context_ready(WorkerId worker, ContextId context, Tier tier) override;
  void stage_failed(WorkerId worker, ContextId context, Tier tier,
                    std::string_view reason) override;
  void task_finished(WorkerId worker, AttemptId attempt, double output_bytes) override;
  void task_failed(WorkerId worker, AttemptId attempt, std::string_view reason) override;

 private:
  void record(std::string line);
  const Cluster& clock_;
  std::vector<std::string> lines_;
};

// Feeds recorded event lines to a fresh engine whose cluster does nothing but keep the recorded
// time, and returns the commands the engine issued (as CommandLog lines).
std::vector<std::string> replay_events(const std::vector<std::string>& events,
                                       const Workload& workload, const EngineConfig& config);

}  // namespace hearth
