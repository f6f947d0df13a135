#pragma once
// Writes a trace in the text format of traces/FORMAT.md, so that parse_trace_text reads back the
// same events, the same attributes and the same end.

#include <ostream>
#include <string>
#include <vector>

#include "traces/trace.hpp"

namespace hearth::traces {

// Writes `comments` (each as a "# " line), the header, one row per event and an end row at
// trace.end_s. Times are written in their shortest exact form: producers round them first.
void write_trace(std::ostream& out, const Trace& trace, const std::vector<std::string>& comments);

// The same into a file, or to standard output when path is "-". Throws InputError when the file
// cannot be written.
void write_trace_file(const std::string& path, const Trace& trace,
                      const std::vector<std::string>& comments);

}  // namespace hearth::traces
