#include "policy/engine.hpp"

#include <algorithm>
#include <cassert>
#include <optional>
#include <utility>

namespace hearth {

Engine::Engine(Cluster& cluster, Workload workload, EngineConfig config)
    : SchedulerState(std::move(workload), config.estimates),
      cluster_(cluster),
      config_(std::move(config)),
      policies_(make_policies(config_.policies)),
      seed_queues_(contexts_.size()) {}

Engine::~Engine() = default;

bool Engine::finished() const {
  return std::all_of(contexts_.begin(), contexts_.end(),
                     [](const ContextState& c) { return c.complete(); });
}

PoolStatus Engine::pool_status() const {
  PoolStatus pool;
  pool.pending_inferences = pending_inferences();
  for (const ContextState& c : contexts_)
    pool.unfinished_inferences += c.total - c.done - c.failed;
  for (const WorkerState& w : workers_) {
    pool.live_workers += w.alive;
    pool.busy_workers += w.alive && w.task != kNoTask;
  }
  return pool;
}

bool Engine::runs(WorkerId worker, AttemptId attempt) const {
  if (worker >= workers_.size() || !workers_[worker].alive || attempt == 0) return false;
  const WorkerState& w = workers_[worker];
  return w.attempt == attempt || w.next_attempt == attempt;
}

bool Engine::given_up(TaskId task) const {
  return task < tasks_.size() && tasks_[task].state == TaskState::failed;
}

// ---- events -------------------------------------------------------------------------------
// Events naming a worker that is not alive, or a context that does not exist, are stale (the
// cluster reported them before it learned of a loss) and ignored.

bool Engine::live(WorkerId worker, ContextId context) const {
  return worker < workers_.size() && workers_[worker].alive &&
         (context == kNoContext || context < contexts_.size());
}

void Engine::worker_joined(const WorkerSpec& spec) {
  tick();
  if (spec.id >= workers_.size()) {
    workers_.resize(spec.id + 1);
    idle_keys_.resize(spec.id + 1);
    asked_in_.resize(spec.id + 1);
  }
  WorkerState& w = workers_[spec.id];
  assert(!w.alive && "a worker joined twice");
  std::uint32_t incarnation = w.incarnation + 1;
  w = WorkerState{};
  w.spec = spec;
  w.alive = true;
  w.incarnation = incarnation;
  w.joined_s = now_;
  w.contexts.resize(contexts_.size());
  ++live_workers_;
  estimator_.worker_up(spec, now_);
  make_idle(spec.id);
  schedule();
}

void Engine::preemption_notice(WorkerId worker, double grace_s) {
  tick();
  if (!live(worker)) return;
  WorkerState& w = workers_[worker];
  if (w.draining) return;
  ++stats_.notices;
  w.draining = true;
  forget_idle(worker);
  if (w.next_task != kNoTask) {  // it would start too late to matter
    cluster_.cancel_task(worker, w.next_attempt);
    drop_next(worker);
  }
  for (ContextId c = 0; c < contexts_.size(); ++c) {
    refresh_holder(worker, c);
    refresh_serving(worker, c);
  }
  // A load is pointless now; a task that cannot finish within the grace period is better
  // restarted elsewhere at once.
  if (w.loading != kNoContext) {
    abandon_task(worker);
  } else if (w.task != kNoTask && remaining_s(worker) > grace_s) {
    cluster_.cancel_task(worker, w.attempt);
    abandon_task(worker);
  }
  schedule();
}

void Engine::worker_lost(WorkerId worker) {
  tick();
  if (!live(worker)) return;
  WorkerState& w = workers_[worker];
  ++stats_.preemptions;
  estimator_.worker_lost(w.spec, w.joined_s, now_);
  if (w.busy()) abandon_task(worker);
  drop_next(worker);
  forget_idle(worker);
  w.alive = false;
  --live_workers_;
  for (ContextId c = 0; c < contexts_.size(); ++c) {
    release_upload(worker, c);
    for (Tier t : {Tier::gpu, Tier::host, Tier::disk})
      set_residency(worker, c, t, Residency::absent);
  }
  // Holders and capacity changed: waiting workers may now be worth loading.
  unpark_all();
  schedule();
}

void Engine::context_ready(WorkerId worker, ContextId context, Tier tier) {
  tick();
  if (!live(worker, context)) return;
  WorkerState& w = workers_[worker];
  if (w.contexts[context].at(tier) != Residency::staging) return;
  ContextOnWorker& on = w.contexts[context];
  if (tier == Tier::disk) {
    double size = contexts_[context].spec.size_bytes;
    if (on.disk_source && on.disk_source->kind == SourceKind::peer) {
      stats_.peer_bytes += size;
    } else {
      stats_.shared_storage_bytes += size;
    }
    release_upload(worker, context);
  }
  on.stage_failures = 0;
  on.last_used_s = now_;
  set_residency(worker, context, tier, Residency::ready);
  if (w.loading == context) {
    if (tier == Tier::gpu) ++stats_.context_loads[static_cast<int>(w.load_origin)];
    advance_load(worker);
  }
  schedule();
}

void Engine::stage_failed(WorkerId worker, ContextId context, Tier tier, std::string_view) {
  tick();
  if (!live(worker, context)) return;
  WorkerState& w = workers_[worker];
  if (w.contexts[context].at(tier) != Residency::staging) return;
  ++stats_.stage_failures;
  ContextOnWorker& on = w.contexts[context];
  if (tier == Tier::disk) release_upload(worker, context);
  set_residency(worker, context, tier, Residency::absent);
  if (++on.stage_failures >= config_.max_stage_failures) on.given_up = true;
  if (w.loading == context) {
    if (on.given_up) {
      abandon_task(worker);
      make_idle(worker);
    } else {
      advance_load(worker);  // try again, from another source if the planner finds one
    }
  }
  schedule();
}

void Engine::task_finished(WorkerId worker, AttemptId attempt, double output_bytes) {
  tick();
  if (!live(worker) || attempt == 0) return;
  WorkerState& w = workers_[worker];
  // A worker runs its tasks in order, so its next task ends first only on a worker that breaks
  // the protocol; it counts all the same, though it has no start time to learn from.
  const bool next = attempt == w.next_attempt;
  if (!next && w.attempt != attempt) return;  // stale or cancelled
  TaskId t = next ? w.next_task : w.task;
  ContextId c = tasks_[t].context;
  if (!next) estimator_.task_observed(w.spec, tasks_[t].count, now_ - w.task_started_s);
  stats_.output_bytes += output_bytes;
  TaskRecord& task = tasks_[t];
  task.state = TaskState::done;
  contexts_[c].done += task.count;
  ++stats_.tasks_done;
  stats_.inferences_done += task.count;
  if (next) {
    take_next(worker);
    queue_next(worker);
  } else {
    end_attempts(t, worker);
  }
  if (!policies_.placement->keeps_contexts()) {
    for (Tier tier : {Tier::gpu, Tier::host, Tier::disk}) {
      if (w.contexts[c].ready(tier) && !in_use(w, c, tier)) evict(worker, c, tier);
    }
  }
  schedule();
}

void Engine::task_failed(WorkerId worker, AttemptId attempt, std::string_view) {
  tick();
  if (!live(worker) || attempt == 0) return;
  WorkerState& w = workers_[worker];
  const bool next = attempt == w.next_attempt;
  if (!next && w.attempt != attempt) return;  // stale or cancelled
  TaskId t = next ? w.next_task : w.task;
  TaskRecord& task = tasks_[t];
  if (++task.failures >= static_cast<std::uint32_t>(config_.max_task_failures)) {
    // Give the task up rather than retry it forever; its inferences count as failed.
    task.state = TaskState::failed;
    contexts_[task.context].failed += task.count;
    ++stats_.tasks_failed;
    if (next) {
      take_next(worker);
    } else {
      end_attempts(t, worker);
    }
  } else {
    task.failed_on = worker;
    if (next) {
      requeue(take_next(worker), Requeue::lost);
    } else {
      abandon_task(worker);
      promote_next(worker);  // the worker goes on to its next task, if it holds one
    }
  }
  schedule();
}

// ---- decisions ----------------------------------------------------------------------------

void Engine::tick() {
  now_ = cluster_.now();
}

void Engine::make_idle(WorkerId w) {
  const WorkerState& ws = workers_[w];
  if (!ws.alive || ws.draining || ws.busy()) return;
  forget_idle(w);
  bool resident = std::any_of(ws.contexts.begin(), ws.contexts.end(),
                              [](const ContextOnWorker& on) { return on.ready(Tier::gpu); });
  idle_keys_[w] = {!resident, -ws.spec.speed, w};
  idle_.insert(idle_keys_[w]);
}

void Engine::forget_idle(WorkerId w) {
  idle_.erase(idle_keys_[w]);
  parked_.erase(idle_keys_[w]);
}

void Engine::unpark(WorkerId w) {
  if (parked_.erase(idle_keys_[w])) idle_.insert(idle_keys_[w]);
}

void Engine::unpark_all() {
  wake_parked_ = true;
}

bool Engine::parked_may_act() const {
  return !policies_.placement->waits_without_pending_work() || !holding_next_.empty() ||
         pending_inferences() > 0;
}

// Asks the idle workers, and after unpark_all() the parked ones too, one at a time in key order.
// A parked worker stays in parked_ until it is asked, and is not asked when its answer could only
// be to wait again; one asked already in this round (from idle_, and parked) is not asked twice.
void Engine::schedule() {
  const bool parked_too = std::exchange(wake_parked_, false);
  ++round_;
  std::optional<IdleKey> after;  // parked workers up to this key have been asked
  while (true) {
    auto i = idle_.begin();
    auto p = parked_.end();
    if (parked_too && parked_may_act()) {
      p = after ? parked_.upper_bound(*after) : parked_.begin();
      while (p != parked_.end() && asked_in_[std::get<WorkerId>(*p)] == round_)
        ++p;
    }
    const bool from_parked = p != parked_.end() && (i == idle_.end() || *p < *i);
    if (!from_parked && i == idle_.end()) break;
    const IdleKey key = from_parked ? *p : *i;
    if (from_parked) {
      after = key;
      parked_.erase(p);
    } else {
      idle_.erase(i);
    }
    const WorkerId w = std::get<WorkerId>(key);
    asked_in_[w] = round_;
    decide(w);
  }
  plan_seeds();
  if (stats_.finished_s < 0 && finished()) stats_.finished_s = now_;
}

void Engine::decide(WorkerId w) {
  if (finished()) return;
  if (!holding_next_.empty() && pending_inferences() == 0) reclaim_next(w);
  Decision d = policies_.placement->next_for(*this, w);
  switch (d.kind) {
    case Decision::Kind::wait:
      park(w);
      break;
    case Decision::Kind::run:
      assert(workers_[w].contexts[d.context].ready(Tier::gpu));
      start_attempt(w, take_task(w, d.context));
      break;
    case Decision::Kind::load:
      bind_and_load(w, d.context);
      break;
    case Decision::Kind::prefetch:
      start_loading(w, d.context);
      break;
    case Decision::Kind::backup:
      assert(tasks_[d.task].state == TaskState::running && tasks_[d.task].running() == 1);
      ++stats_.backups;
      start_attempt(w, d.task);
      break;
  }
}

TaskId Engine::take_task(WorkerId w, ContextId c) {
  ContextState& cs = contexts_[c];
  assert(cs.pending() > 0);
  // A requeued task first, oldest first, but not one that failed on this worker while there is
  // other work for it: a retry goes to another worker if one comes.
  auto it = std::find_if(cs.requeued.begin(), cs.requeued.end(),
                         [&](TaskId t) { return tasks_[t].failed_on != w; });
  if (it == cs.requeued.end() && cs.next_fresh == cs.total) it = cs.requeued.begin();
  if (it != cs.requeued.end()) {
    TaskId t = *it;
    cs.requeued.erase(it);
    cs.requeued_inferences -= tasks_[t].count;
    return t;
  }
  std::uint64_t n = std::max<std::uint64_t>(1, policies_.granularity->batch_size(*this, w, c));
  n = std::min(n, cs.total - cs.next_fresh);
  TaskRecord task;
  task.context = c;
  task.first = cs.next_fresh;
  task.count = n;
  cs.next_fresh += n;
  tasks_.push_back(task);
  ++stats_.tasks_created;
  return tasks_.size() - 1;
}

void Engine::start_attempt(WorkerId w, TaskId t) {
  AttemptId attempt = next_attempt_++;
  begin_running(w, t, attempt);
  TaskRecord& task = tasks_[t];
  ++task.attempts;
  ++stats_.attempts;
  cluster_.start_task(w, TaskSpec{t, attempt, task.context, task.first, task.count});
  queue_next(w);
}

// Counts `attempt` of task t as running on w from now (a next task was sent, and counted, earlier).
void Engine::begin_running(WorkerId w, TaskId t, AttemptId attempt) {
  WorkerState& ws = workers_[w];
  TaskRecord& task = tasks_[t];
  ws.task = t;
  ws.attempt = attempt;
  ws.task_started_s = now_;
  ws.task_end_s = now_ + estimator_.task_s(ws.spec, task.count);
  contexts_[task.context].running_speed += ws.spec.speed;
  contexts_[task.context].running_end_sum += ws.spec.speed * ws.task_end_s;
  ws.contexts[task.context].last_used_s = now_;
  task.state = TaskState::running;
  if (task.running() == 0) {
    task.expected_end_s = ws.task_end_s;
    contexts_[task.context].running_by_end.insert({task.expected_end_s, t});
  }
  task.runners[task.runners[0] == kNoWorker ? 0 : 1] = w;
}

// ---- pipelining ---------------------------------------------------------------------------

void Engine::queue_next(WorkerId w) {
  WorkerState& ws = workers_[w];
  if (!config_.pipeline || !policies_.placement->keeps_contexts() || ws.draining ||
      ws.attempt == 0 || ws.next_task != kNoTask) {
    return;
  }
  ContextId c = tasks_[ws.task].context;
  if (contexts_[c].pending() == 0) return;
  TaskId t = take_task(w, c);
  TaskRecord& task = tasks_[t];
  task.state = TaskState::bound;
  ++task.attempts;
  ++stats_.attempts;
  ws.next_task = t;
  ws.next_attempt = next_attempt_++;
  holding_next_.insert(w);
  cluster_.start_task(w, TaskSpec{t, ws.next_attempt, c, task.first, task.count});
}

TaskId Engine::take_next(WorkerId w) {
  WorkerState& ws = workers_[w];
  holding_next_.erase(w);
  ws.next_attempt = 0;
  return std::exchange(ws.next_task, kNoTask);
}

// The running slot of live worker w is empty. The worker starts its next task on its own, so the
// core counts it running from now; a worker without one is idle.
void Engine::promote_next(WorkerId w) {
  if (workers_[w].next_task == kNoTask) return make_idle(w);
  AttemptId attempt = workers_[w].next_attempt;
  begin_running(w, take_next(w), attempt);
  queue_next(w);
}

void Engine::drop_next(WorkerId w) {
  if (workers_[w].next_task == kNoTask) return;
  requeue(take_next(w), Requeue::given_back);
  unpark_all();  // workers told to wait for want of work may take it
}

// Nothing is pending and w is idle: it takes back a next task waiting on another worker, of a
// context in w's GPU memory, where it would end sooner: the one whose worker frees up last.
void Engine::reclaim_next(WorkerId w) {
  const WorkerState& ws = workers_[w];
  WorkerId best = kNoWorker;
  double best_end_s = 0;
  for (WorkerId h : holding_next_) {
    const WorkerState& hs = workers_[h];
    const TaskRecord& task = tasks_[hs.next_task];
    if (h == w || !ws.contexts[task.context].ready(Tier::gpu)) continue;
    double there_s = remaining_s(h) + estimator_.task_s(hs.spec, task.count);
    if (there_s > estimator_.task_s(ws.spec, task.count) && there_s > best_end_s) {
      best = h;
      best_end_s = there_s;
    }
  }
  if (best == kNoWorker) return;
  cluster_.cancel_task(best, workers_[best].next_attempt);
  drop_next(best);
}

void Engine::bind_and_load(WorkerId w, ContextId c) {
  WorkerState& ws = workers_[w];
  TaskId t = take_task(w, c);
  tasks_[t].state = TaskState::bound;
  ws.task = t;
  ws.attempt = 0;
  start_loading(w, c);
}

void Engine::start_loading(WorkerId w, ContextId c) {
  WorkerState& ws = workers_[w];
  ws.loading = c;
  const ContextOnWorker& on = ws.contexts[c];
  ws.load_origin = on.ready(Tier::host)   ? LoadSource::host_memory
                   : on.ready(Tier::disk) ? LoadSource::local_disk
                                          : LoadSource::shared_storage;  // or peer, once seeded
  ws.load_eta_s = now_ + estimated_load_s(*this, w, c);
  contexts_[c].loading_speed += ws.spec.speed;
  contexts_[c].loading_eta_sum += ws.spec.speed * ws.load_eta_s;
  refresh_serving(w, c);
  advance_load(w);
}

// Takes the loading context one tier closer to the GPU; once it is there, starts the bound task
// or, with none, makes the worker idle. Gives the task back if the worker cannot make room.
void Engine::advance_load(WorkerId w) {
  WorkerState& ws = workers_[w];
  ContextId c = ws.loading;
  const ContextOnWorker& on = ws.contexts[c];
  double size = contexts_[c].spec.size_bytes;
  if (on.ready(Tier::gpu)) {
    stop_loading(w);
    TaskId t = ws.task;
    ws.task = kNoTask;
    if (t != kNoTask) {
      start_attempt(w, t);
    } else {
      make_idle(w);
    }
    return;
  }
  Tier next = on.ready(Tier::host) ? Tier::gpu : on.ready(Tier::disk) ? Tier::host : Tier::disk;
  if (on.at(next) == Residency::staging) return;  // already on its way
  if (!make_room(w, next, size)) {
    abandon_task(w, Requeue::given_back);
    park(w);
    return;
  }
  set_residency(w, c, next, Residency::staging);  // reserves the room
  if (next == Tier::disk) {
    ws.awaiting_seed = true;
    seed_queues_[c].push_back(w);
    seeds_dirty_ = true;
  } else {
    cluster_.stage_context(w, c, next, Source::lower());
  }
}

// The worker stops its task and its load; the task goes back to the queue unless another attempt
// still runs or it is over. Leaves the worker without work (not yet idle).
void Engine::abandon_task(WorkerId w, Requeue why) {
  WorkerState& ws = workers_[w];
  if (TaskId t = ws.task; t != kNoTask) {
    TaskRecord& task = tasks_[t];
    for (WorkerId& r : task.runners) {
      if (r == w) {
        r = kNoWorker;
        stop_running(w, task.context);
      }
    }
    if (task.running() == 0) contexts_[task.context].running_by_end.erase({task.expected_end_s, t});
    if (task.running() == 0 && task.state != TaskState::done && task.state != TaskState::failed) {
      requeue(t, why);
    }
  }
  ws.task = kNoTask;
  ws.attempt = 0;
  if (ws.loading != kNoContext) {
    ContextId c = ws.loading;
    stop_loading(w);
    if (ws.awaiting_seed) {
      ws.awaiting_seed = false;
      std::erase(seed_queues_[c], w);
      set_residency(w, c, Tier::disk, Residency::absent);  // releases the reserved room
    }
  }
}

void Engine::stop_running(WorkerId w, ContextId c) {
  const WorkerState& ws = workers_[w];
  contexts_[c].running_speed -= ws.spec.speed;
  contexts_[c].running_end_sum -= ws.spec.speed * ws.task_end_s;
}

void Engine::stop_loading(WorkerId w) {
  WorkerState& ws = workers_[w];
  ContextId c = ws.loading;
  ws.loading = kNoContext;
  contexts_[c].loading_speed -= ws.spec.speed;
  contexts_[c].loading_eta_sum -= ws.spec.speed * ws.load_eta_s;
  refresh_serving(w, c);
}

void Engine::requeue(TaskId t, Requeue why) {
  TaskRecord& task = tasks_[t];
  ContextState& cs = contexts_[task.context];
  task.state = TaskState::pending;
  cs.requeued_inferences += task.count;
  if (why == Requeue::given_back) {
    cs.requeued.push_front(t);  // it was pending a moment ago: nobody else needs waking
    return;
  }
  cs.requeued.push_back(t);
  ++stats_.tasks_requeued;
  unpark_all();  // there is work again for workers that had none
}

// Task t is over (done, or given up) as seen from worker `w`: cancels every other attempt of it
// and frees all its runners, w included: each goes on to its next task, if it holds one.
void Engine::end_attempts(TaskId t, WorkerId w) {
  // promote_next() below may add tasks: no reference into tasks_ outlives this block.
  const ContextId c = tasks_[t].context;
  contexts_[c].running_by_end.erase({tasks_[t].expected_end_s, t});
  const std::array<WorkerId, 2> runners = std::exchange(tasks_[t].runners, {kNoWorker, kNoWorker});
  for (WorkerId r : runners) {
    if (r == kNoWorker) continue;
    WorkerState& rs = workers_[r];
    if (r != w) cluster_.cancel_task(r, rs.attempt);
    stop_running(r, c);
    rs.task = kNoTask;
    rs.attempt = 0;
    promote_next(r);
  }
}

}  // namespace hearth
