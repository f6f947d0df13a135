#pragma once
// Granularity: how many inferences go into a new task for a given worker.

#include <cstdint>
#include <memory>
#include <string_view>

#include "policy/scheduler_state.hpp"

namespace hearth {

class Granularity {
 public:
  virtual ~Granularity() = default;
  virtual std::string_view name() const = 0;
  // Inferences for the next task of context `c` on worker `w`; at least 1. The engine caps it
  // at what is left.
  virtual std::uint64_t batch_size(const SchedulerState& state, WorkerId w, ContextId c) const = 0;
};

std::unique_ptr<Granularity> make_fixed_granularity(std::uint64_t batch_size);
// Batches between 1 and max_batch_size, sized per worker (see granularity.cpp).
std::unique_ptr<Granularity> make_adaptive_granularity(std::uint64_t max_batch_size);

}  // namespace hearth
