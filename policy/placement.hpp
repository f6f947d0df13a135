#pragma once
// Placement: what an idle worker does next. The engine asks once per idle worker, those with a
// context in GPU memory first (they can start at once), then the fastest, and carries the answer
// out (binding a task, loading its context, starting it).

#include <deque>
#include <memory>
#include <string_view>
#include <vector>

#include "policy/scheduler_state.hpp"

namespace hearth {

struct Decision {
  enum class Kind : std::uint8_t {
    wait,      // nothing worth doing now; asked again when work is requeued or a worker is lost
    run,       // start a task of `context`, which is ready in the worker's GPU memory
    load,      // bind a task of `context` and bring the context to GPU memory for it
    prefetch,  // bring `context` to GPU memory, binding no task; asked again once it is there
    backup,    // start a second attempt of running task `task` (its context is on this GPU)
  };
  Kind kind = Kind::wait;
  ContextId context = kNoContext;
  TaskId task = kNoTask;

  static Decision wait() { return {}; }
  static Decision run(ContextId c) { return {Kind::run, c, kNoTask}; }
  static Decision load(ContextId c) { return {Kind::load, c, kNoTask}; }
  static Decision prefetch(ContextId c) { return {Kind::prefetch, c, kNoTask}; }
  static Decision backup(ContextId c, TaskId t) { return {Kind::backup, c, t}; }
};

// Workers waiting to get a context onto their disk, in the order they asked.
using SeedQueue = std::deque<WorkerId>;

// How a context may be seeded onto workers that need it on disk.
struct SeedingRules {
  bool use_peers = true;
  // How many more workers may read the context from shared storage in this planning round.
  int shared_storage_slots = 0;
};

class Placement {
 public:
  virtual ~Placement() = default;
  virtual std::string_view name() const = 0;

  // What idle, non-draining worker `w` should do next. A run or backup names a context ready
  // on w's GPU; a load names a context that fits on w and has pending work.
  virtual Decision next_for(const SchedulerState& state, WorkerId w) = 0;

  // Whether a context stays on the worker after the task that loaded it ends.
  virtual bool keeps_contexts() const { return true; }

  // Whether next_for says wait whenever no context has pending work. Then the engine does not
  // ask workers told to wait again until there is some: at 10,000 GPUs, asking them all after
  // every lost task was most of pcm's time.
  virtual bool waits_without_pending_work() const { return false; }

  // How many peer transfers one worker may serve at once.
  virtual int upload_cap() const = 0;

  // Seeding for context `c` while the workers in `waiting` (at least one) wait to get it onto
  // their disk.
  virtual SeedingRules seeding(const SchedulerState& state, ContextId c,
                               const SeedQueue& waiting) const = 0;
};

std::unique_ptr<Placement> make_naive_placement();
std::unique_ptr<Placement> make_pcm_placement(int upload_cap);
std::unique_ptr<Placement> make_adaptive_placement();  // one upload per peer at a time

}  // namespace hearth

namespace hearth {

// Shared by the placement policies: the context ready on w's GPU with the most pending work, or
// kNoContext.
ContextId busiest_resident_context(const SchedulerState& state, WorkerId w);
// Estimated seconds to bring context c to w's GPU from the best place it can come from now.
double estimated_load_s(const SchedulerState& state, WorkerId w, ContextId c);

}  // namespace hearth
