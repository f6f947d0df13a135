#pragma once
// Converts a count series into a trace: Bamboo's (uclasystem/bamboo, doc/data/*.csv) or any
// `time,count` CSV (`--from counts`, which may start with a `time,count` header). A row says how
// many instances are alive from that time on; the series never says which instance left, so the
// converter names instances itself and applies a documented, selectable rule (traces/FORMAT.md,
// "Converters").

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "traces/time_unit.hpp"
#include "traces/trace.hpp"

namespace hearth::traces {

// Which instances leave when the count drops by k.
enum class LeaveOrder {
  newest_first,  // the k most recently added (the default; see FORMAT.md for why)
  oldest_first,  // the k that have been alive longest
  random,        // k drawn uniformly from those alive, one after another (seeded)
};

// "newest", "oldest" or "random"; anything else throws InputError.
LeaveOrder parse_leave_order(std::string_view word);

struct BambooOptions {
  TimeUnit time_unit = TimeUnit::s;  // the files do not say; the caller must
  std::string gpu_type;              // every instance's GPU type
  LeaveOrder leave = LeaveOrder::newest_first;
  std::string worker_prefix =
      "spot-";             // instances are named prefix + 1, 2, ... in order of arrival
  std::uint64_t seed = 1;  // of LeaveOrder::random: the same seed, the same trace
  bool header = false;     // the first row may be a `time,count` header (--from counts)
  double max_at_once = kMostWorkersAtOnce;    // trace.hpp
  std::size_t max_events = kMostCountEvents;  // trace.hpp
};

// Event lines are the lines of the series; the trace ends at the last row's time. Throws
// InputError at the offending line for malformed rows, negative or fractional counts, and time
// going backwards.
Trace convert_bamboo(std::string_view text, std::string_view source_name,
                     const BambooOptions& options);

// From `count` instances alive at `time_s` on (in time order), with the options' names, GPU type
// and leave rule, to a trace ending at end_s. Throws InputError when no instance is ever alive.
struct CountPoint {
  double time_s = 0;
  std::size_t count = 0;
  std::size_t line = 0;  // in the source, for messages
};
Trace trace_from_counts(const std::vector<CountPoint>& points, double end_s,
                        std::string_view source_name, const BambooOptions& options);

// SkyPilot's spot traces (skypilot-org/spot-traces): {"metadata": {"gap_seconds": G, ...},
// "data": [N0, N1, ...]}, N_i instances available from i * G seconds on; the trace ends at
// len(data) * G. Rows are the options' count series rules; header and time_unit do not apply.
Trace convert_skypilot(std::string_view text, std::string_view source_name,
                       const BambooOptions& options);

}  // namespace hearth::traces
