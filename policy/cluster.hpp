#pragma once
// The only way the policy core touches a cluster. A backend (the SimGrid simulation, the real
// manager, the in-memory test cluster) implements `Cluster` to carry out the core's commands and
// reports what happens by calling the matching `ClusterEvents` method on the core.
//
// Commands never block and never call back into the core from inside the call: their outcome
// arrives later, as an event. Events are delivered one at a time, in the cluster's time order.

#include <string_view>

#include "policy/model.hpp"

namespace hearth {

class Cluster {
 public:
  virtual ~Cluster() = default;

  // Current time in seconds since the run began. Non-decreasing.
  virtual double now() const = 0;

  // Starts putting context `context` on `tier` of worker `worker`, reading from `source`:
  // shared storage or a peer (only for tier disk), or the worker's next tier down (host from
  // disk, gpu from host; gpu also pays the context's init_s). Requires: the worker is alive, the
  // core has made room, the source holds the context. Ends with exactly one of
  // context_ready(worker, context, tier) or stage_failed(worker, context, tier), unless the
  // worker is lost first (then neither).
  virtual void stage_context(WorkerId worker, ContextId context, Tier tier, Source source) = 0;

  // Drops `context` from `tier` of `worker` and frees its room at once. Requires: the context is
  // ready on that tier and nothing uses it there. No event follows.
  virtual void evict_context(WorkerId worker, ContextId context, Tier tier) = 0;

  // Starts `task` on `worker`. Requires: the context is ready in the worker's GPU memory and the
  // worker runs nothing else, or (with EngineConfig::pipeline) runs one task of the same context
  // and holds none behind it: then the worker starts this one the moment the running one ends
  // (however it ends). Ends with exactly one of task_finished or task_failed for task.attempt,
  // unless the worker is lost first or the task is cancelled.
  virtual void start_task(WorkerId worker, const TaskSpec& task) = 0;

  // Stops attempt `attempt` on `worker`, or drops it if it waits there; no event follows for it.
  // Harmless if it already ended.
  virtual void cancel_task(WorkerId worker, AttemptId attempt) = 0;
};

class ClusterEvents {
 public:
  virtual ~ClusterEvents() = default;

  // A worker is usable, with nothing on any tier. Its id is not in use by a live worker.
  virtual void worker_joined(const WorkerSpec& spec) = 0;
  // The worker will be lost in about `grace_s` seconds; it still works until then.
  virtual void preemption_notice(WorkerId worker, double grace_s) = 0;
  // The worker is gone, with everything on it and everything it was doing or sending.
  virtual void worker_lost(WorkerId worker) = 0;
  // A stage started by stage_context completed: the context is usable on that tier.
  virtual void context_ready(WorkerId worker, ContextId context, Tier tier) = 0;
  // A stage started by stage_context did not complete (source lost, I/O error); its room is free.
  virtual void stage_failed(WorkerId worker, ContextId context, Tier tier,
                            std::string_view reason) = 0;
  // An attempt ended well; its outputs (output_bytes) are safely with the manager.
  virtual void task_finished(WorkerId worker, AttemptId attempt, double output_bytes) = 0;
  // An attempt ended badly on a live worker (crash, out of memory); the work must be redone.
  virtual void task_failed(WorkerId worker, AttemptId attempt, std::string_view reason) = 0;
};

}  // namespace hearth
