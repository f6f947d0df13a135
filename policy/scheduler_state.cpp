#include "policy/scheduler_state.hpp"

#include <algorithm>

namespace hearth {

SchedulerState::SchedulerState(Workload workload, const EstimatorConfig& estimates)
    : workload_(std::move(workload)), estimator_(estimates) {
  contexts_.resize(workload_.contexts.size());
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    contexts_[i].spec = workload_.contexts[i];
    contexts_[i].total = workload_.inferences[i];
  }
}

bool SchedulerState::fits(WorkerId w, ContextId c) const {
  const WorkerState& ws = workers_[w];
  double size = contexts_[c].spec.size_bytes;
  return size <= ws.capacity(Tier::gpu) && size <= ws.capacity(Tier::host) &&
         size <= ws.capacity(Tier::disk) && !ws.on(c).given_up;
}

std::uint64_t SchedulerState::pending_inferences() const {
  std::uint64_t n = 0;
  for (const auto& c : contexts_)
    n += c.pending();
  return n;
}

double SchedulerState::remaining_s(WorkerId w) const {
  const WorkerState& ws = workers_[w];
  if (ws.task == kNoTask || ws.attempt == 0) return 0;
  double total = estimator_.task_s(ws.spec, tasks_[ws.task].count);
  return std::max(0.0, total - (now_ - ws.task_started_s));
}

}  // namespace hearth
