#pragma once
// How many workers a run should have, from the work its core still has (Engine::pool_status()).
// This is the one place a pool's size is decided: the real backend's batch factory asks it at
// every tick, and it lives here, with the core, so that a simulated factory can ask it too.

#include <cstdint>

namespace hearth {

// What the manager reports about the work and the workers each time it ticks its factory.
struct PoolStatus {
  std::uint64_t pending_inferences = 0;     // in no task bound to or running on a worker
  std::uint64_t unfinished_inferences = 0;  // neither done nor given up
  int live_workers = 0;                     // joined and not lost
  int busy_workers = 0;                     // with a task bound or running
};

struct PoolLimits {
  int min_workers = 0;
  int max_workers = 1;
  std::uint64_t inferences_per_worker = 100;  // one worker for every this many unfinished
};

// The workers to have, counting those joined, starting and still queued in the batch system:
//  - no unfinished inference: 0;
//  - some inference waits for a worker: one worker per inferences_per_worker unfinished inferences
//    (rounded up), at least min_workers, at most max_workers;
//  - none waits (every unfinished inference is in a task on a worker): the busy workers, at most
//    max_workers. More could only sit idle, so nothing more is asked for and requests still
//    queued can be withdrawn; min_workers no longer applies.
// A worker lost with its task makes that task's inferences wait again, which raises the target.
int pool_target(const PoolStatus& pool, const PoolLimits& limits);

}  // namespace hearth
