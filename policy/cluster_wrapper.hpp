#pragma once
// Forwarding bases for what sits between the core and a cluster (as LevelDB's EnvWrapper): a
// wrapper passes every command, or every event, on to its target, and overrides only what it
// adds to. The command and event logs (command_log.hpp) and the contract check
// (contract_check.hpp) are such wrappers.

#include "policy/cluster.hpp"

namespace hearth {

class ClusterWrapper : public Cluster {
 public:
  explicit ClusterWrapper(Cluster& target) : target_(&target) {}
  Cluster& target() const { return *target_; }

  double now() const override { return target_->now(); }
  void stage_context(WorkerId worker, ContextId context, Tier tier, Source source) override {
    target_->stage_context(worker, context, tier, source);
  }
  void evict_context(WorkerId worker, ContextId context, Tier tier) override {
    target_->evict_context(worker, context, tier);
  }
  void start_task(WorkerId worker, const TaskSpec& task) override {
    target_->start_task(worker, task);
  }
  void cancel_task(WorkerId worker, AttemptId attempt) override {
    target_->cancel_task(worker, attempt);
  }

 private:
  Cluster* target_;
};

class ClusterEventsWrapper : public ClusterEvents {
 public:
  // The target may be set later (the core is often built after what wraps its cluster), but
  // before the first event.
  explicit ClusterEventsWrapper(ClusterEvents* target = nullptr) : target_(target) {}
  void set_target(ClusterEvents& target) { target_ = &target; }
  ClusterEvents& target() const { return *target_; }

  void worker_joined(const WorkerSpec& spec) override { target_->worker_joined(spec); }
  void preemption_notice(WorkerId worker, double grace_s) override {
    target_->preemption_notice(worker, grace_s);
  }
  void worker_lost(WorkerId worker) override { target_->worker_lost(worker); }
  void context_ready(WorkerId worker, ContextId context, Tier tier) override {
    target_->context_ready(worker, context, tier);
  }
  void stage_failed(WorkerId worker, ContextId context, Tier tier,
                    std::string_view reason) override {
    target_->stage_failed(worker, context, tier, reason);
  }
  void task_finished(WorkerId worker, AttemptId attempt, double output_bytes) override {
    target_->task_finished(worker, attempt, output_bytes);
  }
  void task_failed(WorkerId worker, AttemptId attempt, std::string_view reason) override {
    target_->task_failed(worker, attempt, reason);
  }

 private:
  ClusterEvents* target_;
};

}  // namespace hearth
