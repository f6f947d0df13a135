#pragma once
// Eviction: which contexts leave a tier of a worker when a stage needs room there.

#include <memory>
#include <string_view>
#include <vector>

#include "policy/scheduler_state.hpp"

namespace hearth {

class Eviction {
 public:
  virtual ~Eviction() = default;
  virtual std::string_view name() const = 0;

  // Orders `candidates` (contexts ready on `tier` of `w`, none in use there) from first to last
  // to evict. The engine evicts from the front until the stage fits.
  virtual void order_victims(const SchedulerState& state, WorkerId w, Tier tier,
                             std::vector<ContextId>& candidates) const = 0;
};

std::unique_ptr<Eviction> make_lru_eviction();
std::unique_ptr<Eviction> make_cost_eviction();

}  // namespace hearth
