#include "real_backend/manager/wire_cluster.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "real_backend/manager/result_check.hpp"
#include "real_backend/manager/run_plan.hpp"
#include "real_backend/wire/bulk.hpp"

namespace hearth::real {

namespace {

const char* source_name(const Source& source, const RunPlan& plan, ContextId c) {
  switch (source.kind) {
    case SourceKind::lower_tier:
      return "lower_tier";
    case SourceKind::peer:
      return "peer";
    case SourceKind::shared_storage:
      break;
  }
  return plan.job().contexts[c].origin == ContextOrigin::manager ? "manager" : "shared";
}

std::string failure_reason(const ResultProblem& p) {
  return fmt::format("its results are {}: {}", p.malformed ? "malformed" : "wrong", p.what);
}

WireCluster::Outcome outcome_of(const ResultProblem& p) {
  return p.malformed ? WireCluster::Outcome::malformed : WireCluster::Outcome::failed;
}

}  // namespace

WireCluster::WireCluster(RunPlan& plan, const WorkerRegistry& workers, RunMonitor& monitor,
                         Send send, std::function<double()> clock_s, Hooks hooks)
    : plan_(plan),
      workers_(workers),
      monitor_(monitor),
      send_(std::move(send)),
      clock_s_(std::move(clock_s)),
      hooks_(std::move(hooks)) {}

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
    // The manager makes each peer transfer's ticket and key and tells both ends: a holder serves
    // only the transfers the manager admitted, so a worker whose key was revoked (or any stranger
    // that can reach the port) gets nothing from a peer.
    m.peer_ticket = random_bytes(kBulkTicketBytes);
    if (plan_.job().transfer_encryption) m.peer_key = random_bytes(kBulkKeyBytes);
    send_(source.peer, AdmitTransfer{c, m.peer_ticket, m.peer_key});
  }
  stages_[m.stage] = {w, c, tier, source};
  monitor_.stage_started(w, c, tier, source_name(source, plan_, c),
                         source.kind == SourceKind::peer ? source.peer : kNoWorker);
  send_(w, m);
}

void WireCluster::evict_context(WorkerId w, ContextId c, Tier tier) {
  if (!workers_[w].alive) return;
  monitor_.evicted(w, c, tier);
  send_(w, Evict{c, tier});
}

void WireCluster::start_task(WorkerId w, const TaskSpec& task) {
  if (!workers_[w].alive) return;
  monitor_.task_started(w, task, false);
  if (task.task < recorded_.size() && recorded_[task.task]) {
    spdlog::info(
        "task {} was recorded as the core cancelled the attempt that ran it: it counts as "
        "done on worker {} ({}) without running again",
        task.task, w, workers_[w].name);
    monitor_.task_cancelled(w, task.attempt);  // its worker counted it when it came in
    post([w, attempt = task.attempt](ClusterEvents& e) { e.task_finished(w, attempt, 0); });
    return;
  }
  attempts_[task.attempt] = {w, task, 0};
  send_(w, Task{task.attempt, task.context, plan_.inputs(task.context, task.first, task.count),
                plan_.seeds(task.context, task.first, task.count)});
}

void WireCluster::cancel_task(WorkerId w, AttemptId attempt) {
  attempts_.erase(attempt);
  monitor_.task_cancelled(w, attempt);
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
  monitor_.stage_ready(w, r.context, r.tier);
  if (hooks_.stage_ready) hooks_.stage_ready(w, r.context, r.tier);
  post([r](ClusterEvents& e) { e.context_ready(r.worker, r.context, r.tier); });
}

void WireCluster::stage_ended(WorkerId w, const StageFailed& m) {
  StageRecord r;
  if (!take_stage(w, m.stage, r)) return;
  spdlog::warn("worker {} ({}) failed to stage {} to {}: {}", w, workers_[w].name,
               plan_.info(r.context).name, to_string(r.tier), m.reason);
  monitor_.stage_failed(w, r.context, r.tier, m.reason);
  post([r, reason = m.reason](ClusterEvents& e) {
    e.stage_failed(r.worker, r.context, r.tier, reason);
  });
  if (hooks_.stage_failed) hooks_.stage_failed(w, r.context, r.tier, r.source, m.reason);
}

void WireCluster::task_finished(WorkerId w, const TaskFinished& m) {
  auto it = attempts_.find(m.attempt);
  if (it == attempts_.end() || it->second.worker != w) return;  // cancelled or superseded
  if (it->second.check != 0) {
    AttemptRecord a = it->second;
    attempts_.erase(it);
    return verification_finished(w, std::move(a), m);
  }
  if (!engine_->runs(w, m.attempt)) {
    spdlog::error("worker {} finished attempt {}, which the core does not run", w, m.attempt);
    attempts_.erase(it);
    return;
  }
  const TaskSpec t = it->second.task;
  if (ResultProblem p = result_problem(plan_.info(t.context).inference, m.results, t.count);
      !p.what.empty()) {
    return task_failed(w, m.attempt, failure_reason(p), outcome_of(p));
  }
  double bytes = 0;
  for (const std::string& r : m.results)
    bytes += static_cast<double>(r.size());
  attempts_.erase(it);
  // Committed before the core counts the task done: a manager killed after this line finds the
  // results on restart, one killed before it reruns the task.
  plan_.store().record_task(t.task, t.context, plan_.rows_of(t.context, t.first, t.count),
                            m.results, workers_[w].name);
  if (t.task >= recorded_.size()) recorded_.resize(t.task + 1);
  recorded_[t.task] = true;
  monitor_.task_finished(w, m.attempt);
  if (hooks_.task_outcome) hooks_.task_outcome(w, t.context, t.count, Outcome::finished, "");
  if (verify_share_ > 0 && sampled(t.task)) {
    Check c;
    c.task = t;
    c.ran = {w};
    c.results = {m.results};
    c.tried = {w};
    checks_[next_check_++] = std::move(c);
  }
  post([w, attempt = m.attempt, bytes](ClusterEvents& e) { e.task_finished(w, attempt, bytes); });
}

void WireCluster::task_failed(WorkerId w, AttemptId attempt, const std::string& reason,
                              Outcome outcome) {
  auto it = attempts_.find(attempt);
  if (it == attempts_.end() || it->second.worker != w) return;
  if (it->second.check != 0) {
    AttemptRecord a = it->second;
    attempts_.erase(it);
    return verification_failed(w, a, reason);
  }
  const TaskSpec t = it->second.task;
  spdlog::warn("task {} failed on worker {} ({}): {}", t.task, w, workers_[w].name, reason);
  monitor_.task_failed(w, attempt, reason);
  // The worker is judged first. If this failure gets it quarantined, lost() takes the attempt
  // back and the core requeues the task as lost, not failed: a bad worker on its own must not
  // use up a task's tries and have its rows given up.
  if (hooks_.task_outcome) hooks_.task_outcome(w, t.context, t.count, outcome, reason);
  if (monitor_.quarantined(w)) return;
  attempts_.erase(attempt);
  post([this, w, attempt, reason, t](ClusterEvents& e) {
    e.task_failed(w, attempt, reason);
    if (engine_->given_up(t.task)) {
      plan_.store().record_failed(t.context, plan_.rows_of(t.context, t.first, t.count), reason);
      monitor_.task_given_up(t.task, t.context, t.count, reason);
      if (hooks_.given_up) hooks_.given_up(t.context, reason);
    }
  });
}

// ---- verification -------------------------------------------------------------------------------

void WireCluster::set_verify(double share, double tolerance) {
  verify_share_ = share;
  verify_tolerance_ = tolerance;
}

// A task is checked or not by its id alone (splitmix64), so that a rerun checks the same ones.
bool WireCluster::sampled(TaskId task) const {
  std::uint64_t z = task + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53 < verify_share_;
}

WorkerId WireCluster::verifier_for(const Check& c) const {
  std::set<std::string> hosts;
  for (WorkerId r : c.ran)
    hosts.insert(workers_[r].host);
  WorkerId same_host = kNoWorker;
  for (WorkerId w : workers_.live_ids()) {
    if (c.tried.count(w) || !monitor_.idle_holding(w, c.task.context)) continue;
    if (!hosts.count(workers_[w].host)) return w;
    if (same_host == kNoWorker) same_host = w;
  }
  return same_host;  // no other host holds it: another worker is better than none
}

void WireCluster::verify_tick(bool finishing) {
  // Checks pile up during a busy run: look at them only when some worker is idle to run one.
  std::vector<WorkerId> live = workers_.live_ids();
  if (checks_.empty() || (!finishing && std::none_of(live.begin(), live.end(), [&](WorkerId w) {
        return monitor_.idle(w);
      }))) {
    return;
  }
  for (auto it = checks_.begin(); it != checks_.end();) {
    Check& c = it->second;
    // A check that a quarantined worker took part in is settled: if it ran the task, its results
    // were discarded; if it contradicted the first, the first stands.
    if (std::any_of(c.ran.begin(), c.ran.end(),
                    [&](WorkerId r) { return monitor_.quarantined(r); })) {
      if (c.running == 0 || !attempts_.count(c.running)) {
        it = checks_.erase(it);
        continue;
      }
    }
    if (c.running != 0) {
      ++it;
      continue;
    }
    WorkerId w = verifier_for(c);
    if (w == kNoWorker) {
      auto could = [&](WorkerId o) {
        return !c.tried.count(o) && monitor_.holding(o, c.task.context);
      };
      if (finishing && std::none_of(live.begin(), live.end(), could)) {
        spdlog::warn("task {} was not verified: no other worker holds {} now", c.task.task,
                     plan_.info(c.task.context).name);
        it = checks_.erase(it);
      } else {
        ++it;
      }
      continue;
    }
    TaskSpec t = c.task;
    t.attempt = next_verify_attempt_++;
    c.running = t.attempt;
    c.tried.insert(w);
    attempts_[t.attempt] = {w, t, it->first};
    monitor_.task_started(w, t, true);
    send_(w, Task{t.attempt, t.context, plan_.inputs(t.context, t.first, t.count),
                  plan_.seeds(t.context, t.first, t.count)});
    ++it;
  }
}

void WireCluster::verification_failed(WorkerId w, const AttemptRecord& a,
                                      const std::string& reason) {
  monitor_.task_failed(w, a.task.attempt, reason);
  auto it = checks_.find(a.check);
  if (it != checks_.end()) it->second.running = 0;  // another worker may try
}

void WireCluster::verification_finished(WorkerId w, AttemptRecord a, const TaskFinished& m) {
  auto it = checks_.find(a.check);
  if (it == checks_.end()) return;
  Check& c = it->second;
  c.running = 0;
  const InferenceSettings& settings = plan_.info(a.task.context).inference;
  if (ResultProblem p = result_problem(settings, m.results, a.task.count); !p.what.empty()) {
    monitor_.task_failed(w, a.task.attempt, failure_reason(p));
    if (hooks_.task_outcome)
      hooks_.task_outcome(w, a.task.context, a.task.count, outcome_of(p), failure_reason(p));
    return;
  }
  monitor_.task_finished(w, a.task.attempt);
  auto name = [&](WorkerId x) { return fmt::format("{} ({})", x, workers_[x].name); };
  std::string with_first = results_differ(settings, c.results[0], m.results, verify_tolerance_);
  if (c.ran.size() == 1) {
    if (with_first.empty()) {
      monitor_.verified(true);
      checks_.erase(it);
      return;
    }
    monitor_.verified(false);
    spdlog::warn("verification of task {}: workers {} and {} disagree: {}; a third decides",
                 a.task.task, name(c.ran[0]), name(w), with_first);
    monitor_.error(w, fmt::format("task {}: results disagree with worker {}: {}", a.task.task,
                                  workers_[c.ran[0]].name, with_first));
    c.ran.push_back(w);
    c.results.push_back(m.results);
    return;
  }
  // The tie-breaker: whoever it contradicts, the other agreeing, is wrong.
  std::string with_second = results_differ(settings, c.results[1], m.results, verify_tolerance_);
  WorkerId first = c.ran[0], second = c.ran[1];
  checks_.erase(it);
  if (with_first.empty() && !with_second.empty()) {
    if (hooks_.liar)
      hooks_.liar(second, fmt::format("its results of task {} disagree with workers {} and {}",
                                      a.task.task, workers_[first].name, workers_[w].name));
  } else if (!with_first.empty() && with_second.empty()) {
    if (hooks_.liar)
      hooks_.liar(first, fmt::format("its results of task {} disagree with workers {} and {}",
                                     a.task.task, workers_[second].name, workers_[w].name));
  } else if (!with_first.empty()) {
    spdlog::error("verification of task {}: workers {}, {} and {} all disagree", a.task.task,
                  name(first), name(second), name(w));
  }
}

void WireCluster::lost(WorkerId w) {
  for (auto& [id, c] : checks_) {
    auto a = attempts_.find(c.running);
    if (a != attempts_.end() && a->second.worker == w) c.running = 0;
  }
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
  for (const auto& item : broken) {
    post([r = item.second](ClusterEvents& e) {
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
