#pragma once
// The numbers `hearth trace info` reports about a trace. Time runs from 0 (the trace's origin) to
// trace.end_s; a worker still up at the end counts as up until then.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "traces/trace.hpp"

namespace hearth::traces {

// Lengths of the up periods that end with a down, in the order of their downs. Periods still
// open at the end are censored (their length is unknown) and left out.
std::vector<double> completed_lifetimes_s(const Trace& trace);

// Nearest-rank quantile: the smallest value with at least a fraction q of `sorted` at or below
// it. Requires a non-empty, ascending vector and 0 < q <= 1.
double nearest_rank(const std::vector<double>& sorted, double q);

struct LifetimeSummary {
  std::size_t completed = 0;  // up periods that ended with a down
  double p10_s = 0, p50_s = 0, p90_s = 0, mean_s = 0;
};

struct GpuTypeSummary {
  std::string gpu_type;
  std::size_t workers = 0;  // distinct workers of this type
  std::size_t peak_up = 0;
  double mean_up = 0;
  double gpu_seconds = 0;
};

struct TraceSummary {
  double end_s = 0;
  double first_event_s = 0;
  std::size_t events = 0;
  std::size_t workers = 0;      // distinct names
  std::size_t ups = 0;          // up periods begun (a worker may come back)
  std::size_t preemptions = 0;  // downs
  std::size_t notices = 0;
  std::size_t peak_up = 0;
  double peak_at_s = 0;  // first time the peak is reached
  double mean_up = 0;    // time-weighted over [0, end_s]; 0 for a trace of zero length
  std::size_t up_at_end = 0;
  double gpu_seconds = 0;                   // integral of workers up over [0, end_s]
  std::optional<LifetimeSummary> lifetime;  // none when no up period ever ended
  std::vector<GpuTypeSummary> by_type;      // sorted by name
};

TraceSummary summarize(const Trace& trace);

}  // namespace hearth::traces
