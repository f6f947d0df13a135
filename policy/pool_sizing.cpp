#include "policy/pool_sizing.hpp"

#include <algorithm>
#include <cassert>

namespace hearth {

int pool_target(const PoolStatus& pool, const PoolLimits& limits) {
  assert(limits.inferences_per_worker > 0 && limits.min_workers <= limits.max_workers);
  if (pool.unfinished_inferences == 0) return 0;
  if (pool.pending_inferences == 0) return std::min(pool.busy_workers, limits.max_workers);
  std::uint64_t by_work = (pool.unfinished_inferences + limits.inferences_per_worker - 1) /
                          limits.inferences_per_worker;
  by_work = std::min<std::uint64_t>(by_work, static_cast<std::uint64_t>(limits.max_workers));
  return std::max(static_cast<int>(by_work), limits.min_workers);
}

}  // namespace hearth
