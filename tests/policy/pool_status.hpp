#pragma once
// The pool as the manager reports it to its factory, for the tests of pool sizing.

#include <cstdint>

#include "policy/pool_sizing.hpp"

namespace hearth::testing {

// `pending` inferences wait for a task, `unfinished` are neither done nor given up, and `busy`
// workers, every live one, run tasks.
inline PoolStatus pool_status(std::uint64_t pending, std::uint64_t unfinished, int busy = 0) {
  PoolStatus p;
  p.pending_inferences = pending;
  p.unfinished_inferences = unfinished;
  p.busy_workers = busy;
  p.live_workers = busy;
  return p;
}

}  // namespace hearth::testing
