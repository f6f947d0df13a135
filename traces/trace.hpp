#pragma once
// An availability trace: when each GPU worker of a pool is usable. The text format is defined in
// traces/FORMAT.md; this is its in-memory form, shared by the simulator and the real backend.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::traces {

enum class EventKind { up, down, notice };

struct TraceEvent {
  double time_s = 0;
  std::string worker;    // stable name of the machine or slot
  EventKind kind = EventKind::up;
  std::string gpu_type;  // for up: the worker's GPU type (ties to a cluster description)
  double grace_s = 0;    // for notice: seconds until the worker goes down
  std::size_t line = 0;  // line in the source file, for messages
};

struct Trace {
  std::string source;              // where it was read from, for messages
  std::vector<TraceEvent> events;  // in time order (ties keep file order)
};

// Parse a trace; throws hearth::InputError("file:line: what is wrong") on bad input.
Trace parse_trace_file(const std::string& path);
Trace parse_trace_text(std::string_view text, std::string_view source_name);

}  // namespace hearth::traces
