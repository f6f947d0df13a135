#pragma once
// The simulated cluster: carries out the core's commands as SimGrid activities, replays the
// availability trace, and delivers what happens to the core as events, one at a time, in time
// order. Internal to sim_backend/ (simulation.hpp is the way in). It trusts the commands: the
// engine's are checked against the contract on their way (policy/contract_check.hpp).
//
// Who runs what: one "manager" actor runs the core (every event is delivered from it, so the core
// is never entered twice); each worker incarnation has a "gpu" actor that runs its tasks one after
// the other; each stage within a worker (disk to host, host to GPU) has a short-lived actor on it.
// Actors on a worker die with it when its host is turned off. Finished activities are queued for
// the manager, which wakes on a semaphore or at the next timer (trace row, loss detection, core
// wake-up, the end of a transfer). Transfers (contexts onto a worker's disk, task outputs to the
// manager) are flows of the FluidNetwork, which only the manager actor touches.

#include <simgrid/forward.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <queue>
#include <vector>

#include "policy/cluster.hpp"
#include "sim_backend/fluid_network.hpp"
#include "sim_backend/results.hpp"
#include "sim_backend/scenario.hpp"
#include "sim_backend/sim_core.hpp"
#include "sim_backend/simgrid_shim.hpp"

namespace hearth::sim {

// Workers in order of first appearance in the trace, with the GPU type of their first up.
std::vector<PlannedWorker> plan_workers(const Scenario& scenario);

class SimCluster final : public Cluster {
 public:
  SimCluster(const Scenario& scenario, const Platform& platform,
             const std::vector<PlannedWorker>& workers);
  ~SimCluster() override;

  double now() const override;
  void stage_context(WorkerId worker, ContextId context, Tier tier, Source source) override;
  void evict_context(WorkerId worker, ContextId context, Tier tier) override;
  void start_task(WorkerId worker, const TaskSpec& task) override;
  void cancel_task(WorkerId worker, AttemptId attempt) override;

  // Replays the trace and delivers events to `core` until it is finished or nothing can happen
  // any more. Runs inside the manager actor.
  void run(SimCore& core, const std::function<void(const Progress&)>& progress);

  // After run(): the cluster's side of the summary, and the rows.
  void fill(SimResult& result) const;

 private:
  struct Worker;
  struct Stage;
  // Something that ended on the cluster, queued for the manager. For a stage: `id` is its slot and
  // `check` its generation; for a task: `id` is the attempt and `check` the worker's incarnation,
  // and `sent` says its output has reached the manager (or it has none).
  struct Completion {
    bool is_task = false;
    WorkerId worker = 0;
    std::uint32_t check = 0;
    std::uint64_t id = 0;
    bool sent = false;
  };
  struct Init {
    double at_s;
    std::uint64_t seq;
    Completion done;
    bool operator>(const Init& o) const { return at_s != o.at_s ? at_s > o.at_s : seq > o.seq; }
  };

  void on_trace_row(std::size_t row);
  void join(WorkerId id);
  void lose(WorkerId id);
  void report_loss(WorkerId id);
  void deliver(const Completion& done);
  void deliver_stage(const Completion& done);
  void deliver_task(const Completion& done);

  void spawn_gpu(WorkerId id);
  std::uint32_t new_stage(WorkerId worker, ContextId context, Tier tier, Source source);
  void launch_stage(std::uint32_t slot);
  void fail_stage_later(std::uint32_t slot);
  void free_stage(std::uint32_t slot);
  void push(const Completion& done);
  bool poll_network();
  FluidNetwork::FlowId send(FluidNetwork::ResourceId from, FluidNetwork::ResourceId to,
                            double bytes, double delay_s, const Completion& when_done);
  void stop_flow(FluidNetwork::FlowId& flow);

  void retime(Worker& w);
  void close_segment(Worker& w);
  double next_timer_s() const;
  void fire_timers();

  const Scenario& scenario_;
  SimCore* core_ = nullptr;
  ClusterEvents* events_ = nullptr;  // the core's
  std::vector<Worker> workers_;
  std::vector<WorkerId> row_worker_;  // the worker of each trace row; kNoWorker if never up
  std::size_t next_row_ = 0;

  std::vector<Stage> stages_;
  std::vector<std::uint32_t> free_stages_;
  std::size_t running_tasks_ = 0;

  std::deque<Completion> done_;
  FluidNetwork net_;
  FluidNetwork::ResourceId storage_ = 0;
  FluidNetwork::ResourceId manager_in_ = 0;
  std::vector<Completion> flow_done_;  // by flow: what its end completes
  std::vector<FluidNetwork::FlowId> ended_;
  // Contexts' inits on GPUs, after their copies: timers.
  std::priority_queue<Init, std::vector<Init>, std::greater<>> inits_;
  std::uint64_t next_init_ = 0;
  simgrid::s4u::SemaphorePtr wake_;
  struct Detection {
    double at_s;
    WorkerId worker;
    std::uint32_t incarnation;
  };
  std::deque<Detection> detections_;  // in time order: the delay is the same for all

  double yielded_at_s_ = -1;
  bool stopped_early_ = false;
  double end_s_ = 0;
  std::vector<AttemptRow> attempts_;
  std::vector<Segment> timeline_;
  double shared_storage_bytes_ = 0;
  double peer_bytes_ = 0;
  double output_bytes_ = 0;
};

}  // namespace hearth::sim
