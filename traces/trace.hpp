#pragma once
// An availability trace: when each GPU worker of a pool is usable. The text format is defined in
// traces/FORMAT.md; this is its in-memory form, shared by the simulator and the real backend.

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::traces {

enum class EventKind { up, down, notice };

struct TraceEvent {
  double time_s = 0;
  std::string worker;  // stable name of the machine or slot
  EventKind kind = EventKind::up;
  std::string gpu_type;  // for up: the worker's GPU type (ties to a cluster description)
  double grace_s = 0;    // for notice: seconds until the worker goes down
  std::size_t line = 0;  // line in the source file, for messages
  std::map<std::string, std::string> attributes;  // optional key=value pairs; meaning is the user's
};

// The most workers a converter lets one count bring up at once: ten times the largest pool the
// simulator is measured at, so that a forged count ("1e15 instances", or 500,000 in a 34-byte
// file) is refused instead of making the converter work for minutes.
inline constexpr double kMostWorkersAtOnce = 100'000;
// The most events a converted trace may have (a few lines of large counts going up and down would
// make any number). The converters that take counts have both as options (max_at_once,
// max_events), which the fuzz harness sets smaller, so that an input's time stays within its
// limit.
inline constexpr std::size_t kMostCountEvents = 10'000'000;

struct Trace {
  std::string source;              // where it was read from, for messages
  std::vector<TraceEvent> events;  // in time order (ties keep file order)
  // The horizon: the time of the `end` row, or of the last event when there is none. Workers up
  // at end_s stay up; the trace says nothing about what happens after it.
  double end_s = 0;
  std::size_t end_line = 0;  // line of the `end` row; 0 when the trace has none
};

// Parse a trace; throws hearth::InputError("file:line: what is wrong") on bad input.
Trace parse_trace_file(const std::string& path);
Trace parse_trace_text(std::string_view text, std::string_view source_name);

// Checks the rules of FORMAT.md that span rows (time order, up/down/notice per worker, a notice's
// promise, the end row). The parse functions call it; converters call it on what they build so
// that a fault in a published file is reported at its own line. Throws InputError.
void check_trace(const Trace& trace);

// Throws InputError("source:line: unknown GPU type ...") at the first up whose GPU type is not in
// `known` (the names of a cluster description's GPU types).
void validate_gpu_types(const Trace& trace, const std::set<std::string>& known);

// "up", "down" or "notice": the words of the format.
const char* to_string(EventKind kind);

}  // namespace hearth::traces
