#include "sim_backend/sim_cluster.hpp"

#include <fmt/format.h>
#include <simgrid/Exception.hpp>
#include <simgrid/s4u.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

namespace hearth::sim {

namespace sg4 = simgrid::s4u;

namespace {

constexpr std::uint32_t kNoSlot = ~std::uint32_t{0};
constexpr std::size_t kNoRow = ~std::size_t{0};
constexpr double kInf = std::numeric_limits<double>::infinity();

std::uint64_t whole_bytes(double bytes) {
  return static_cast<std::uint64_t>(std::llround(bytes));
}

template <class T>
void erase_value(std::vector<T>& v, T x) {
  auto it = std::find(v.begin(), v.end(), x);
  if (it != v.end()) {
    *it = v.back();
    v.pop_back();
  }
}

}  // namespace

struct SimCluster::Worker {
  WorkerSpec spec;
  const GpuType* type = nullptr;
  WorkerHost at;
  bool up = false;      // its host is on
  bool joined = false;  // the core believes it alive: told of its join, not yet of its loss
  std::uint32_t incarnation = 0;
  // The task slot: the gpu actor runs what the manager puts here, one task at a time.
  sg4::ActorPtr gpu;
  sg4::SemaphorePtr gpu_wake;
  AttemptId attempt = 0;  // running, 0 for none
  ContextId task_context = 0;
  double task_s = 0;
  double task_output_bytes = 0;
  std::size_t attempt_row = kNoRow;

  std::vector<std::uint32_t> incoming;  // stages into this worker
  std::vector<std::uint32_t> uploads;   // stages reading from this worker

  // Accounting.
  GpuState state = GpuState::idle;
  double state_since_s = 0;
  double up_since_s = 0;
  double available_s = 0;
  std::vector<std::size_t> unproductive;  // busy segments since its last finished task
  std::size_t last_segment = kNoRow;      // in timeline_
};

struct SimCluster::Stage {
  std::uint32_t generation = 0;  // bumped when the slot is freed, so stale completions are seen
  bool live = false;
  bool failed = false;  // its source was lost: it ends with stage_failed
  WorkerId worker = 0;
  ContextId context = 0;
  Tier tier = Tier::disk;
  Source source;
  sg4::ActorPtr actor;
};

// Something that ended on the cluster, queued for the manager. For a stage: `id` is its slot and
// `check` its generation; for a task: `id` is the attempt and `check` the worker's incarnation.
struct SimCluster::Completion {
  bool is_task = false;
  WorkerId worker = 0;
  std::uint32_t check = 0;
  std::uint64_t id = 0;
};

std::vector<PlannedWorker> plan_workers(const Scenario& scenario) {
  std::vector<PlannedWorker> plan;
  std::unordered_map<std::string, std::size_t> seen;
  for (const auto& e : scenario.trace.events) {
    if (e.kind != traces::EventKind::up || seen.contains(e.worker)) continue;
    seen.emplace(e.worker, plan.size());
    plan.push_back({e.worker, scenario.cluster.find(e.gpu_type)});
  }
  return plan;
}

SimCluster::SimCluster(const Scenario& scenario, const Platform& platform,
                       const std::vector<PlannedWorker>& workers)
    : scenario_(scenario), platform_(platform) {
  std::unordered_map<std::string, WorkerId> ids;
  workers_.resize(workers.size());
  for (WorkerId id = 0; id < workers.size(); ++id) {
    Worker& w = workers_[id];
    w.type = workers[id].type;
    w.spec = scenario.cluster.worker_spec(*w.type);
    w.spec.id = id;
    w.spec.name = workers[id].name;
    w.at = platform.workers[id];
    ids.emplace(w.spec.name, id);
  }
  row_worker_.reserve(scenario.trace.events.size());
  for (const auto& e : scenario.trace.events) {
    auto it = ids.find(e.worker);
    row_worker_.push_back(it == ids.end() ? kNoWorker : it->second);
  }
}

SimCluster::~SimCluster() = default;

double SimCluster::now() const {
  return sg4::Engine::get_clock();
}

// ---- commands ------------------------------------------------------------------------------

void SimCluster::stage_context(WorkerId worker, ContextId context, Tier tier, Source source) {
  Worker& w = workers_[worker];
  if (!w.up) return;  // lost, and the manager does not know yet: nothing will come of it
  std::uint32_t slot = new_stage(worker, context, tier, source);
  if (source.kind == SourceKind::peer && !workers_[source.peer].up) {
    fail_stage_later(slot);  // the peer is gone: the transfer breaks at once
  } else {
    launch_stage(slot);
  }
  retime(w);
}

// Room is the core's to keep: the simulated cluster holds no bytes to free.
void SimCluster::evict_context(WorkerId, ContextId, Tier) {}

void SimCluster::start_task(WorkerId worker, const TaskSpec& task) {
  Worker& w = workers_[worker];
  AttemptRow row{task};
  row.worker = worker;
  row.start_s = row.end_s = now();
  if (!w.up) {
    row.outcome = AttemptOutcome::preempted;
    attempts_.push_back(row);
    return;
  }
  if (w.attempt != 0) cancel_task(worker, w.attempt);
  w.attempt = task.attempt;
  w.task_context = task.context;
  w.task_s = w.type->task_s(task.count);
  w.task_output_bytes =
      static_cast<double>(task.count) * scenario_.cluster.output_bytes_per_inference;
  w.attempt_row = attempts_.size();
  attempts_.push_back(row);
  ++running_tasks_;
  w.gpu_wake->release();
  retime(w);
}

void SimCluster::cancel_task(WorkerId worker, AttemptId attempt) {
  Worker& w = workers_[worker];
  if (!w.up || attempt == 0 || w.attempt != attempt) return;  // over already
  AttemptRow& row = attempts_[w.attempt_row];
  row.end_s = now();
  row.outcome = AttemptOutcome::cancelled;
  w.attempt = 0;
  --running_tasks_;
  // The gpu actor may be in the middle of the task: replace it.
  w.gpu->kill();
  spawn_gpu(worker);
  retime(w);
}

// ---- actors --------------------------------------------------------------------------------

void SimCluster::push(const Completion& done) {
  done_.push_back(done);
  wake_->release();
}

void SimCluster::spawn_gpu(WorkerId id) {
  Worker& w = workers_[id];
  w.gpu_wake = sg4::Semaphore::create(0);
  w.gpu = sg4::Actor::create("gpu", w.at.host, [this, id, wake = w.gpu_wake] {
    Worker& me = workers_[id];
    while (true) {
      wake->acquire();
      const AttemptId attempt = me.attempt;
      sg4::this_actor::execute(me.task_s);
      if (me.task_output_bytes > 0) {
        sg4::Comm::sendto(me.at.host, platform_.manager, whole_bytes(me.task_output_bytes));
      }
      push({true, id, me.incarnation, attempt});
    }
  });
}

std::uint32_t SimCluster::new_stage(WorkerId worker, ContextId context, Tier tier, Source source) {
  std::uint32_t slot;
  if (free_stages_.empty()) {
    slot = static_cast<std::uint32_t>(stages_.size());
    stages_.emplace_back();
  } else {
    slot = free_stages_.back();
    free_stages_.pop_back();
  }
  Stage& st = stages_[slot];
  st.live = true;
  st.failed = false;
  st.worker = worker;
  st.context = context;
  st.tier = tier;
  st.source = source;
  ++live_stages_;
  workers_[worker].incoming.push_back(slot);
  if (source.kind == SourceKind::peer) workers_[source.peer].uploads.push_back(slot);
  return slot;
}

// One actor per stage, on the receiving worker: it moves the bytes (and initialises, for the
// GPU), then reports. The shared storage and peer links, the disk and the host-to-GPU copy are
// SimGrid resources, so concurrent stages share them.
void SimCluster::launch_stage(std::uint32_t slot) {
  Stage& st = stages_[slot];
  Worker& w = workers_[st.worker];
  const ContextSpec& c = scenario_.workload.contexts[st.context];
  const std::uint64_t size = whole_bytes(c.size_bytes);
  const std::uint32_t generation = st.generation;
  sg4::Host* to = w.at.host;
  sg4::Host* from = nullptr;
  sg4::Disk* disk = nullptr;
  double init_s = 0;
  switch (st.tier) {
    case Tier::disk:
      from =
          st.source.kind == SourceKind::peer ? workers_[st.source.peer].at.host : platform_.storage;
      break;
    case Tier::host:
      disk = w.at.disk;
      break;
    case Tier::gpu:
      disk = w.at.pcie;
      init_s = c.init_s;
      break;
  }
  st.actor =
      sg4::Actor::create("stage", to, [this, slot, generation, from, to, disk, size, init_s] {
        if (from != nullptr) {
          try {
            sg4::Comm::sendto(from, to, size);
          } catch (const simgrid::NetworkFailureException&) {
            stages_[slot].failed = true;
          }
        } else {
          disk->read(size);
          if (init_s > 0) sg4::this_actor::sleep_for(init_s);
        }
        push({false, stages_[slot].worker, generation, slot});
      });
}

void SimCluster::fail_stage_later(std::uint32_t slot) {
  Stage& st = stages_[slot];
  st.failed = true;
  push({false, st.worker, st.generation, slot});
}

void SimCluster::free_stage(std::uint32_t slot) {
  Stage& st = stages_[slot];
  erase_value(workers_[st.worker].incoming, slot);
  if (st.source.kind == SourceKind::peer) erase_value(workers_[st.source.peer].uploads, slot);
  st.live = false;
  st.actor = nullptr;
  ++st.generation;
  --live_stages_;
  free_stages_.push_back(slot);
}

// ---- the manager's loop ---------------------------------------------------------------------

double SimCluster::next_timer_s() const {
  double t = core_->next_wakeup_s();
  if (next_row_ < scenario_.trace.events.size()) {
    t = std::min(t, scenario_.trace.events[next_row_].time_s);
  }
  if (!detections_.empty()) t = std::min(t, detections_.front().at_s);
  return t;
}

void SimCluster::run(SimCore& core, const std::function<void(const Progress&)>& progress) {
  core_ = &core;
  events_ = &core.events();
  wake_ = sg4::Semaphore::create(0);
  const std::uint64_t total = scenario_.workload.total_inferences();
  auto last_report = std::chrono::steady_clock::now();
  std::uint64_t steps = 0;
  while (!core.finished()) {
    if (progress && (++steps & 1023) == 0) {
      auto wall = std::chrono::steady_clock::now();
      if (wall - last_report > std::chrono::milliseconds(200)) {
        last_report = wall;
        progress({now(), core.inferences_done(), total});
      }
    }
    // The semaphore counts the completions queued: acquire() returns at once when there is one.
    const double next = next_timer_s();
    if (!done_.empty()) {
      wake_->acquire();
    } else if (next <= now()) {
      // Timers due. First let the actors whose activities end at this very time report, so
      // that at equal times completions come before trace rows and core wake-ups, whatever
      // order SimGrid runs its actors in.
      if (yielded_at_s_ != now()) {
        yielded_at_s_ = now();
        sg4::this_actor::yield();
      } else {
        fire_timers();
      }
      continue;
    } else if (next < kInf) {
      if (wake_->acquire_timeout(next - now())) continue;  // timed out: timers are due
    } else if (live_stages_ > 0 || running_tasks_ > 0) {
      wake_->acquire();
    } else {
      stopped_early_ = true;  // nothing runs, nothing will happen: the pool cannot progress
      break;
    }
    Completion c = done_.front();
    done_.pop_front();
    deliver(c);
  }
  end_s_ = now();
  for (Worker& w : workers_) {
    if (!w.up) continue;
    close_segment(w);
    w.available_s += end_s_ - w.up_since_s;
    if (w.attempt != 0) attempts_[w.attempt_row].end_s = end_s_;  // stays unfinished
  }
  if (progress) progress({end_s_, core.inferences_done(), total});
  sg4::Actor::kill_all();
}

void SimCluster::fire_timers() {
  const double t = now();
  while (!detections_.empty() && detections_.front().at_s <= t) {
    Detection d = detections_.front();
    detections_.pop_front();
    const Worker& w = workers_[d.worker];
    if (w.joined && !w.up && w.incarnation == d.incarnation) report_loss(d.worker);
  }
  while (next_row_ < scenario_.trace.events.size() &&
         scenario_.trace.events[next_row_].time_s <= t) {
    on_trace_row(next_row_++);
  }
  if (core_->next_wakeup_s() <= t) core_->wake_up();
}

void SimCluster::on_trace_row(std::size_t row) {
  const WorkerId id = row_worker_[row];
  if (id == kNoWorker) return;
  const traces::TraceEvent& e = scenario_.trace.events[row];
  switch (e.kind) {
    case traces::EventKind::up:
      join(id);
      break;
    case traces::EventKind::down:
      lose(id);
      break;
    case traces::EventKind::notice:
      if (workers_[id].up && workers_[id].joined) events_->preemption_notice(id, e.grace_s);
      break;
  }
}

void SimCluster::join(WorkerId id) {
  Worker& w = workers_[id];
  if (w.up) return;
  if (w.joined) report_loss(id);  // back before the manager noticed it was gone
  ++w.incarnation;
  w.up = true;
  w.joined = true;
  w.attempt = 0;
  w.state = GpuState::idle;
  w.state_since_s = w.up_since_s = now();
  w.unproductive.clear();
  set_host_on(w.at.host, true);
  spawn_gpu(id);
  events_->worker_joined(w.spec);
}

// The worker's host goes off: everything on it and everything it was doing is gone. Transfers it
// was sending break on their receivers at once; the manager hears of the loss itself only after
// the detection delay.
void SimCluster::lose(WorkerId id) {
  Worker& w = workers_[id];
  if (!w.up) return;
  close_segment(w);
  for (std::size_t s : w.unproductive)
    timeline_[s].state = GpuState::lost;
  w.unproductive.clear();
  w.available_s += now() - w.up_since_s;
  if (w.attempt != 0) {
    AttemptRow& row = attempts_[w.attempt_row];
    row.end_s = now();
    row.outcome = AttemptOutcome::preempted;
    w.attempt = 0;
    --running_tasks_;
  }
  for (std::uint32_t slot : w.uploads) {
    Stage& st = stages_[slot];
    if (st.failed) continue;
    if (st.actor) st.actor->kill();
    fail_stage_later(slot);
  }
  while (!w.incoming.empty())
    free_stage(w.incoming.back());  // its actor dies with the host
  w.up = false;
  w.gpu = nullptr;
  w.gpu_wake = nullptr;
  set_host_on(w.at.host, false);
  if (!w.joined) return;
  if (scenario_.detection_delay_s > 0) {
    detections_.push_back({now() + scenario_.detection_delay_s, id, w.incarnation});
  } else {
    report_loss(id);
  }
}

void SimCluster::report_loss(WorkerId id) {
  workers_[id].joined = false;
  events_->worker_lost(id);
}

void SimCluster::deliver(const Completion& done) {
  if (done.is_task) {
    deliver_task(done);
  } else {
    deliver_stage(done);
  }
}

void SimCluster::deliver_task(const Completion& done) {
  Worker& w = workers_[done.worker];
  if (!w.up || w.incarnation != done.check || w.attempt != done.id) return;  // lost, cancelled
  AttemptRow& row = attempts_[w.attempt_row];
  row.end_s = now();
  row.outcome = AttemptOutcome::finished;
  w.attempt = 0;
  --running_tasks_;
  output_bytes_ += w.task_output_bytes;
  retime(w);
  w.unproductive.clear();
  events_->task_finished(done.worker, done.id, w.task_output_bytes);
}

void SimCluster::deliver_stage(const Completion& done) {
  Stage& st = stages_[done.id];
  if (!st.live || st.generation != done.check) return;  // its worker was lost meanwhile
  const WorkerId worker = st.worker;
  const ContextId context = st.context;
  const Tier tier = st.tier;
  const bool ok = !st.failed;
  const SourceKind from = st.source.kind;
  free_stage(done.id);
  Worker& w = workers_[worker];
  const double size = scenario_.workload.contexts[context].size_bytes;
  if (ok && from == SourceKind::shared_storage) shared_storage_bytes_ += size;
  if (ok && from == SourceKind::peer) peer_bytes_ += size;
  retime(w);
  if (ok) {
    events_->context_ready(worker, context, tier);
  } else {
    events_->stage_failed(worker, context, tier, "the peer sending it was lost");
  }
}

// ---- bookkeeping ---------------------------------------------------------------------------

// Ends the worker's current segment now. Idle and loading stretches that follow each other
// directly (stage after stage) make one segment; each task attempt keeps its own.
void SimCluster::close_segment(Worker& w) {
  const double t = now();
  if (t > w.state_since_s) {
    Segment* last = w.last_segment == kNoRow ? nullptr : &timeline_[w.last_segment];
    if (last != nullptr && w.state != GpuState::computing && last->state == w.state &&
        last->incarnation == w.incarnation && last->end_s == w.state_since_s) {
      last->end_s = t;
    } else {
      w.last_segment = timeline_.size();
      if (w.state == GpuState::computing || w.state == GpuState::loading) {
        w.unproductive.push_back(timeline_.size());
      }
      timeline_.push_back({w.spec.id, w.incarnation, w.state_since_s, t, w.state});
    }
  }
  w.state_since_s = t;
}

void SimCluster::retime(Worker& w) {
  if (!w.up) return;
  GpuState state = w.attempt != 0        ? GpuState::computing
                   : !w.incoming.empty() ? GpuState::loading
                                         : GpuState::idle;
  if (state == w.state) return;
  close_segment(w);
  w.state = state;
}

void SimCluster::fill(SimResult& r) const {
  Summary& s = r.summary;
  s.finished = !stopped_early_;
  s.makespan_s = end_s_;
  s.shared_storage_bytes = shared_storage_bytes_;
  s.peer_bytes = peer_bytes_;
  s.output_bytes = output_bytes_;
  s.workers = workers_.size();
  s.trace_events = next_row_;
  GpuSeconds g;
  for (const Worker& w : workers_)
    g.available += w.available_s;
  for (const Segment& seg : timeline_)
    g.in(seg.state) += seg.end_s - seg.start_s;
  s.gpu_seconds = g;
  for (const Worker& w : workers_) {
    r.worker_names.push_back(w.spec.name);
    r.worker_types.push_back(w.spec.gpu_type);
  }
  r.attempts = attempts_;
  r.timeline = timeline_;
}

}  // namespace hearth::sim
