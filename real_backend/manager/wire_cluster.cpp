#include "real_backend/manager/wire_cluster.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "real_backend/manager/run_plan.hpp"

namespace hearth::real {

WireCluster::WireCluster(RunPlan& plan, const WorkerRegistry& workers, Send send,
                         std::function<double()> clock_s)
    : plan_(plan), workers_(workers), send_(std::move(send)), clock_s_(std::move(clock_s)) {}

// ---- the core's commands --------------------------------------------------------------------
// A command for a worker whose loss the core has not heard of yet is dropped: the loss, already
// queued, ends everything on it.

void WireCluster::stage_context(WorkerId w, ContextId c, Tier tier, Source source) {
  if (!workers_[w].alive) return;
  Stage m;
  m.stage = next_stage_++;
  m.context = c;
  m.tier = tier;
  m.info = plan_.info(c);
  if (source.kind == SourceKind::lower_tier) {
    m.source = StageSource::lower_tier;
  } else if (source.kind == SourceKind::shared_storage) {
    m.source = plan_.job().contexts[c].origin == ContextOrigin::manager ? StageSource::manager
                                                                        : StageSource::shared_path;
  } else {
    m.source = StageSource::peer;
    m.peer_endpoint = workers_[source.peer].peer_endpoint;
    if (!workers_[source.peer].alive) {
      post([=](ClusterEvents& e) { e.stage_failed(w, c, tier, "the peer is gone"); });
      return;
    }
  }
  stages_[m.stage] = {w, c, tier, source};
  send_(w, m);
}

void WireCluster::evict_context(WorkerId w, ContextId c, Tier tier) {
  if (workers_[w].alive) send_(w, Evict{c, tier});
}

void WireCluster::start_task(WorkerId w, const TaskSpec& task) {
  if (!workers_[w].alive) return;
  attempts_[task.attempt] = {w, task};
  send_(w, Task{task.attempt, task.context, plan_.inputs(task.context, task.first, task.count),
                plan_.seeds(task.context, task.first, task.count)});
}

void WireCluster::cancel_task(WorkerId w, AttemptId attempt) {
  attempts_.erase(attempt);
  if (workers_[w].alive) send_(w, Cancel{attempt});
}

// ---- what workers report ---------------------------------------------------------------------

void WireCluster::joined(const WorkerSpec& spec) {
  post([spec](ClusterEvents& e) { e.worker_joined(spec); });
}

void WireCluster::notice(WorkerId w, double grace_s) {
  post([w, grace_s](ClusterEvents& e) { e.preemption_notice(w, grace_s); });
}

bool WireCluster::take_stage(WorkerId w, std::uint64_t stage, StageRecord& out) {
  auto it = stages_.find(stage);
  if (it == stages_.end() || it->second.worker != w) return false;  // aborted, or not its own
  out = it->second;
  stages_.erase(it);
  return true;
}

void WireCluster::stage_ended(WorkerId w, const StageReady& m) {
  StageRecord r;
  if (!take_stage(w, m.stage, r)) return;
  post([r](ClusterEvents& e) { e.context_ready(r.worker, r.context, r.tier); });
}

void WireCluster::stage_ended(WorkerId w, const StageFailed& m) {
  StageRecord r;
  if (!take_stage(w, m.stage, r)) return;
  post([r, reason = m.reason](ClusterEvents& e) {
    e.stage_failed(r.worker, r.context, r.tier, reason);
  });
}

void WireCluster::task_finished(WorkerId w, const TaskFinished& m) {
  auto it = attempts_.find(m.attempt);
  if (it == attempts_.end() || it->second.worker != w) return;  // cancelled or superseded
  if (!engine_->runs(w, m.attempt)) {
    spdlog::error("worker {} finished attempt {}, which the core does not run", w, m.attempt);
    attempts_.erase(it);
    return;
  }
  const TaskSpec t = it->second.task;
  if (m.results.size() != t.count) {
    return task_failed(w, m.attempt,
                       fmt::format("{} results for {} inferences", m.results.size(), t.count));
  }
  double bytes = 0;
  for (const std::string& r : m.results) {
    if (!nlohmann::json::accept(r)) return task_failed(w, m.attempt, "a result is not JSON");
    bytes += static_cast<double>(r.size());
  }
  attempts_.erase(it);
  // Committed before the core counts the task done: a manager killed after this line finds the
  // results on restart, one killed before it reruns the task.
  plan_.store().record_task(t.task, t.context, plan_.rows_of(t.context, t.first, t.count),
                            m.results, workers_[w].name);
  post([w, attempt = m.attempt, bytes](ClusterEvents& e) { e.task_finished(w, attempt, bytes); });
}

void WireCluster::task_failed(WorkerId w, AttemptId attempt, const std::string& reason) {
  auto it = attempts_.find(attempt);
  if (it == attempts_.end() || it->second.worker != w) return;
  const TaskSpec t = it->second.task;
  attempts_.erase(it);
  spdlog::warn("task {} failed on worker {} ({}): {}", t.task, w, workers_[w].name, reason);
  post([this, w, attempt, reason, t](ClusterEvents& e) {
    e.task_failed(w, attempt, reason);
    if (engine_->given_up(t.task)) {
      plan_.store().record_failed(t.context, plan_.rows_of(t.context, t.first, t.count), reason);
    }
  });
}

void WireCluster::lost(WorkerId w) {
  std::erase_if(attempts_, [&](const auto& a) { return a.second.worker == w; });
  std::erase_if(stages_, [&](const auto& s) { return s.second.worker == w; });
  post([w](ClusterEvents& e) { e.worker_lost(w); });
  std::vector<std::pair<std::uint64_t, StageRecord>> broken;
  for (auto it = stages_.begin(); it != stages_.end();) {
    const StageRecord& r = it->second;
    if (r.source.kind == SourceKind::peer && r.source.peer == w) {
      broken.emplace_back(it->first, r);
      it = stages_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [stage, r] : broken) {
    post([r](ClusterEvents& e) {
      e.stage_failed(r.worker, r.context, r.tier, "the peer it read from was lost");
    });
  }
  // After the records are consistent: a receiver found gone while told comes back in here.
  for (const auto& [stage, r] : broken) {
    if (workers_[r.worker].alive) send_(r.worker, AbortStage{stage});
  }
}

void WireCluster::deliver_events(ClusterEvents& core) {
  while (!queue_.empty()) {
    Event event = std::move(queue_.front());
    queue_.pop_front();
    now_s_ = clock_s_();
    event(core);
  }
}

}  // namespace hearth::real
