#include "sim_backend/sim_cluster.hpp"

#include <fmt/format.h>
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

constexpr FluidNetwork::FlowId kNoFlow = ~FluidNetwork::FlowId{0};
constexpr std::size_t kNoRow = ~std::size_t{0};
constexpr double kInf = std::numeric_limits<double>::infinity();
// A gpu actor waits on one activity at a time: a small stack is plenty. SimGrid's default (8 MiB,
// mapped and unmapped for each actor) made creating actors most of naive's run.
constexpr unsigned kSmallStack = 64;  // KiB, as set_stacksize() counts

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
  sg4::Host* host = nullptr;
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
  FluidNetwork::FlowId output = kNoFlow;  // the running task's output on its way

  FluidNetwork::ResourceId net_out = 0;  // its link up
  FluidNetwork::ResourceId net_in = 0;   // its link down and its disk's writes
  FluidNetwork::ResourceId disk = 0;     // its disk's reads, into host memory
  FluidNetwork::ResourceId pcie = 0;     // host memory to GPU memory
  std::vector<std::uint32_t> incoming;   // stages into this worker
  std::vector<std::uint32_t> uploads;    // stages reading from this worker

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
  FluidNetwork::FlowId flow = kNoFlow;  // its bytes on their way (then, for the GPU, its init)
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
    : scenario_(scenario) {
  std::unordered_map<std::string, WorkerId> ids;
  workers_.resize(workers.size());
  for (WorkerId id = 0; id < workers.size(); ++id) {
    Worker& w = workers_[id];
    w.type = workers[id].type;
    w.spec = scenario.cluster.worker_spec(*w.type);
    w.spec.id = id;
    w.spec.name = workers[id].name;
    w.host = platform.workers[id];
    w.net_out = net_.add_resource(w.type->network_Bps);
    w.net_in = net_.add_resource(std::min(w.type->network_Bps, w.type->disk_write_Bps));
    w.disk = net_.add_resource(w.type->disk_read_Bps);
    w.pcie = net_.add_resource(w.type->host_to_gpu_Bps);
    ids.emplace(w.spec.name, id);
  }
  storage_ = net_.add_resource(scenario.cluster.shared_storage_Bps);
  manager_in_ = net_.add_resource(scenario.cluster.manager_network_Bps);
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
  stop_flow(w.output);
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

FluidNetwork::FlowId SimCluster::send(FluidNetwork::ResourceId from, FluidNetwork::ResourceId to,
                                      double bytes, double delay_s, const Completion& when_done) {
  const FluidNetwork::FlowId flow = net_.start(from, to, bytes, now(), delay_s);
  if (flow >= flow_done_.size()) flow_done_.resize(flow + 1);
  flow_done_[flow] = when_done;
  return flow;
}

void SimCluster::stop_flow(FluidNetwork::FlowId& flow) {
  if (flow == kNoFlow) return;
  net_.cancel(flow, now());
  flow = kNoFlow;
}

// Carries out what the network and the inits have due by now (or within the clock's rounding of
// it), and queues the flows that ended as the completions of their stages and tasks. True if
// anything was due.
bool SimCluster::poll_network() {
  bool any = false;
  const double slack = std::max(1e-9, now() * 1e-15);
  while (!inits_.empty() && inits_.top().at_s <= now() + slack) {
    push(inits_.top().done);
    inits_.pop();
    any = true;
  }
  while (true) {
    const double due = net_.next_event_s();
    if (!(due <= now() + slack)) return any;
    any = true;
    ended_.clear();
    net_.advance(std::max(due, now()), ended_);
    for (FluidNetwork::FlowId flow : ended_) {
      const Completion& c = flow_done_[flow];
      if (c.is_task) {
        workers_[c.worker].output = kNoFlow;
        push(c);
        continue;
      }
      Stage& st = stages_[c.id];
      st.flow = kNoFlow;
      const double init_s = scenario_.workload.contexts[st.context].init_s;
      if (st.tier == Tier::gpu && init_s > 0) {
        inits_.push({now() + init_s, next_init_++, c});
      } else {
        push(c);
      }
    }
  }
}

void SimCluster::spawn_gpu(WorkerId id) {
  Worker& w = workers_[id];
  w.gpu_wake = sg4::Semaphore::create(0);
  w.gpu = sg4::Actor::init("gpu", w.host)->set_stacksize(kSmallStack);
  w.gpu->start([this, id, wake = w.gpu_wake] {
    Worker& me = workers_[id];
    while (true) {
      wake->acquire();
      const AttemptId attempt = me.attempt;
      sg4::this_actor::execute(me.task_s);
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
  workers_[worker].incoming.push_back(slot);
  if (source.kind == SourceKind::peer) workers_[source.peer].uploads.push_back(slot);
  return slot;
}

// A stage is a flow: onto the disk from shared storage or the peer's link up, after the route's
// latency; into host memory from the disk; into GPU memory from host memory (then the init, a
// timer). Concurrent stages share what they cross.
void SimCluster::launch_stage(std::uint32_t slot) {
  Stage& st = stages_[slot];
  Worker& w = workers_[st.worker];
  const double size =
      static_cast<double>(whole_bytes(scenario_.workload.contexts[st.context].size_bytes));
  const Completion done{false, st.worker, st.generation, slot};
  switch (st.tier) {
    case Tier::disk:
      st.flow =
          send(st.source.kind == SourceKind::peer ? workers_[st.source.peer].net_out : storage_,
               w.net_in, size, scenario_.cluster.latency_s, done);
      break;
    case Tier::host:
      st.flow = send(w.disk, FluidNetwork::kNoResource, size, 0, done);
      break;
    case Tier::gpu:
      st.flow = send(w.pcie, FluidNetwork::kNoResource, size, 0, done);
      break;
  }
}

void SimCluster::fail_stage_later(std::uint32_t slot) {
  Stage& st = stages_[slot];
  st.failed = true;
  stop_flow(st.flow);
  push({false, st.worker, st.generation, slot});
}

void SimCluster::free_stage(std::uint32_t slot) {
  Stage& st = stages_[slot];
  stop_flow(st.flow);
  erase_value(workers_[st.worker].incoming, slot);
  if (st.source.kind == SourceKind::peer) erase_value(workers_[st.source.peer].uploads, slot);
  st.live = false;
  ++st.generation;
  free_stages_.push_back(slot);
}

// ---- the manager's loop ---------------------------------------------------------------------

double SimCluster::next_timer_s() const {
  double t = core_->next_wakeup_s();
  if (next_row_ < scenario_.trace.events.size()) {
    t = std::min(t, scenario_.trace.events[next_row_].time_s);
  }
  if (!detections_.empty()) t = std::min(t, detections_.front().at_s);
  if (!inits_.empty()) t = std::min(t, inits_.top().at_s);
  return std::min(t, net_.next_event_s());
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
    // Transfers that end now are completions too: they come before timers due now.
    const double next = next_timer_s();
    if (!done_.empty()) {
      wake_->acquire();
    } else if (poll_network()) {
      continue;
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
    } else if (running_tasks_ > 0) {
      wake_->acquire();  // a gpu actor will report
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
  set_host_on(w.host, true);
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
    stop_flow(w.output);
  }
  for (std::uint32_t slot : w.uploads) {
    if (!stages_[slot].failed) fail_stage_later(slot);
  }
  while (!w.incoming.empty())
    free_stage(w.incoming.back());
  w.up = false;
  w.gpu = nullptr;
  w.gpu_wake = nullptr;
  set_host_on(w.host, false);
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
  if (!done.sent && w.task_output_bytes > 0) {  // it ran: now its output goes to the manager
    Completion sent = done;
    sent.sent = true;
    w.output = send(w.net_out, manager_in_, static_cast<double>(whole_bytes(w.task_output_bytes)),
                    scenario_.cluster.latency_s, sent);
    return;
  }
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
