#pragma once
// Draws how many workers a trace has up over time, in all and per GPU type, as a PNG. The drawing
// is done by traces/plot_trace.py with matplotlib; this side computes the series and runs it.

#include <string>

#include "traces/trace.hpp"

namespace hearth::traces {

// The script: $HEARTH_PLOT_TRACE_SCRIPT if set, else traces/plot_trace.py in the source tree this
// was built from. The interpreter: $HEARTH_PYTHON if set, else /usr/bin/python3 (the one with
// Debian's matplotlib). Throws InputError when png_path cannot be written, std::runtime_error when
// the script fails.
void plot_availability(const Trace& trace, const std::string& title, const std::string& png_path);

}  // namespace hearth::traces
