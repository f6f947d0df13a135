#pragma once
// How many workers a trace has up over time, in all and per GPU type: a step function.

#include <cstddef>
#include <string>
#include <vector>

#include "traces/trace.hpp"

namespace hearth::traces {

struct AvailabilityStep {
  double time_s = 0;                    // the counts hold from here until the next step
  std::size_t up = 0;                   // workers up
  std::vector<std::size_t> up_by_type;  // indexed like AvailabilitySeries::gpu_types
};

struct AvailabilitySeries {
  std::vector<std::string> gpu_types;   // sorted by name
  std::vector<AvailabilityStep> steps;  // the first at time 0, then one per change
  double end_s = 0;                     // the last step holds until here
};

// Counts are taken after all events at the same time, so a worker that leaves and another that
// joins in the same instant make no dip or spike.
AvailabilitySeries availability_series(const Trace& trace);

}  // namespace hearth::traces
