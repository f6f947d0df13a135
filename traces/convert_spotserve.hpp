#pragma once
// Converts SpotServe's node events (Hsword/SpotServe, elastic-switch/trace/) into a trace. Two
// published shapes, told apart by their first character:
//   CSV        `time_ms,add|remove,node_name`, one node per row (trace_full/g4dn.csv);
//   JSON lines `[time_ms, "add"|"remove"|"DONE", {"nodes": [...]}]`, several nodes per line
//              (trace_seg/*.txt); DONE marks the end of the segment.
// add is up, remove is down; node names are kept as worker names.

#include <string>
#include <string_view>

#include "traces/time_unit.hpp"
#include "traces/trace.hpp"

namespace hearth::traces {

struct SpotServeOptions {
  TimeUnit time_unit = TimeUnit::ms;  // SpotServe writes milliseconds
  std::string gpu_type;               // every node's GPU type
};

// Event lines are the lines of the input. The trace ends at DONE, else at the last event.
// Throws InputError at the offending line (bad row, unknown action, adding a node that is alive,
// removing one that is not, time going backwards).
Trace convert_spotserve(std::string_view text, std::string_view source_name,
                        const SpotServeOptions& options);

}  // namespace hearth::traces
