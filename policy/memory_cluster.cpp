#include "policy/memory_cluster.hpp"

#include <algorithm>
#include <cassert>

namespace hearth {

void MemoryCluster::at(double t, std::function<void()> action) {
  queue_.push({{t, sequence_++}, std::move(action)});
}

void MemoryCluster::join_at(double t, const WorkerSpec& spec) {
  at(t, [this, spec] {
    if (spec.id >= workers_.size()) workers_.resize(spec.id + 1);
    Worker& w = workers_[spec.id];
    assert(!w.up);
    w.spec = spec;
    w.up = true;
    ++w.incarnation;
    core_->worker_joined(spec);
  });
}

void MemoryCluster::lose_at(double t, WorkerId w) {
  at(t, [this, w] { lose(w); });
}

void MemoryCluster::notice_at(double t, WorkerId w, double grace_s) {
  at(t, [this, w, grace_s] {
    if (w < workers_.size() && workers_[w].up) core_->preemption_notice(w, grace_s);
  });
}

void MemoryCluster::lose(WorkerId w) {
  if (w >= workers_.size() || !workers_[w].up) return;
  workers_[w].up = false;
  ++workers_[w].incarnation;
  workers_[w].running = false;
  workers_[w].waiting.clear();
  core_->worker_lost(w);
  // Transfers it was sending fail on their receivers now.
  std::vector<std::uint64_t> broken;
  for (const auto& [id, a] : in_flight_) {
    if (!a.is_task && a.source.kind == SourceKind::peer && a.source.peer == w) broken.push_back(id);
  }
  for (std::uint64_t id : broken) {
    Activity a = in_flight_.at(id);
    in_flight_.erase(id);
    if (workers_[a.worker].up && workers_[a.worker].incarnation == a.incarnation) {
      core_->stage_failed(a.worker, a.context, a.tier, "peer lost");
    }
  }
}

void MemoryCluster::run(double until) {
  assert(core_ != nullptr);
  while (!queue_.empty() && queue_.top().first.first <= until) {
    auto action = queue_.top().second;
    now_ = queue_.top().first.first;
    queue_.pop();
    action();
  }
}

std::uint64_t MemoryCluster::begin(Activity a, double duration_s) {
  std::uint64_t id = next_activity_++;
  a.incarnation = workers_[a.worker].incarnation;
  in_flight_[id] = a;
  at(now_ + duration_s, [this, id] { end(id); });
  return id;
}

void MemoryCluster::end(std::uint64_t id) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;  // cancelled, or its source was lost
  Activity a = it->second;
  in_flight_.erase(it);
  const Worker& w = workers_[a.worker];
  if (!w.up || w.incarnation != a.incarnation) return;
  if (!a.is_task) {
    core_->context_ready(a.worker, a.context, a.tier);
    return;
  }
  run_next(a.worker);
  auto failing = task_failures_.find(a.task.task);
  if (failing != task_failures_.end() && failing->second > 0) {
    --failing->second;
    return after_message(
        a.worker, [this, a] { core_->task_failed(a.worker, a.task.attempt, "scripted failure"); });
  }
  after_message(a.worker, [this, a] {
    core_->task_finished(a.worker, a.task.attempt,
                         config_.output_bytes_per_inference * static_cast<double>(a.task.count));
  });
}

void MemoryCluster::after_message(WorkerId w, std::function<void()> deliver) {
  if (config_.message_s == 0) return deliver();
  at(now_ + config_.message_s,
     [this, w, incarnation = workers_[w].incarnation, deliver = std::move(deliver)] {
       if (workers_[w].up && workers_[w].incarnation == incarnation) deliver();
     });
}

void MemoryCluster::stage_context(WorkerId worker, ContextId context, Tier tier, Source source) {
  const WorkerSpec& spec = workers_[worker].spec;
  const ContextSpec& c = contexts_.at(context);
  double s = 0;
  switch (source.kind) {
    case SourceKind::shared_storage:
      ++counters_.stages_from_shared;
      s = c.size_bytes / config_.shared_storage_Bps;
      break;
    case SourceKind::peer:
      ++counters_.stages_from_peer;
      s = c.size_bytes / std::min(workers_[source.peer].spec.network_Bps, spec.network_Bps);
      break;
    case SourceKind::lower_tier:
      s = tier == Tier::host ? c.size_bytes / spec.disk_read_Bps
                             : c.size_bytes / spec.host_to_gpu_Bps + c.init_s;
      break;
  }
  Activity a;
  a.worker = worker;
  a.context = context;
  a.tier = tier;
  a.source = source;
  begin(a, s);
}

// Bytes are not modelled: an eviction frees nothing the timing depends on.
void MemoryCluster::evict_context(WorkerId, ContextId, Tier) {
  ++counters_.evictions;
}

void MemoryCluster::start_task(WorkerId worker, const TaskSpec& task) {
  ++counters_.tasks_started;
  after_message(worker, [this, worker, task] { arrive(worker, task); });
}

void MemoryCluster::arrive(WorkerId worker, const TaskSpec& task) {
  if (cancelled_.erase(task.attempt)) return;
  workers_[worker].waiting.push_back(task);
  if (!workers_[worker].running) run_next(worker);
}

// The worker's running task is over: it starts the next that reached it, if any.
void MemoryCluster::run_next(WorkerId worker) {
  Worker& w = workers_[worker];
  w.running = !w.waiting.empty();
  if (!w.running) return;
  Activity a;
  a.worker = worker;
  a.is_task = true;
  a.task = w.waiting.front();
  w.waiting.pop_front();
  begin(a, config_.task_overhead_s +
               static_cast<double>(a.task.count) * config_.inference_s / w.spec.speed);
}

// Takes effect at once: a cancelled task that has not reached its worker yet never runs.
void MemoryCluster::cancel_task(WorkerId worker, AttemptId attempt) {
  for (auto it = in_flight_.begin(); it != in_flight_.end(); ++it) {
    if (it->second.is_task && it->second.worker == worker && it->second.task.attempt == attempt) {
      ++counters_.tasks_cancelled;
      in_flight_.erase(it);
      return run_next(worker);
    }
  }
  std::deque<TaskSpec>& waiting = workers_[worker].waiting;
  auto it = std::find_if(waiting.begin(), waiting.end(),
                         [&](const TaskSpec& t) { return t.attempt == attempt; });
  if (it != waiting.end()) {
    ++counters_.tasks_cancelled;
    waiting.erase(it);
  } else if (config_.message_s > 0) {
    cancelled_.insert(attempt);  // it may still be on its way
  }
}

}  // namespace hearth
