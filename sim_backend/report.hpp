#pragma once
// Writing a simulated run out: the short summary (text or JSON), and with --out DIR the files
// summary.json, tasks.csv (one row per task attempt) and timeline.csv (one row per stretch of a
// worker's up time in one state, for Gantt charts). Columns: docs/simulator.md, "Outputs".

#include <string>
#include <vector>

#include "sim_backend/results.hpp"

namespace hearth::sim {

// Whether JSON carries the host's timings (wall_s, setup_wall_s). Without them, the same scenario
// and seed give the same bytes, so that two runs compare with cmp.
enum class HostTimings : bool { omit, include };

std::string summary_json(const Summary& summary, HostTimings timings);
std::string summary_text(const Summary& summary);

// Creates `dir` if needed. Throws InputError if it cannot be written.
void write_outputs(const SimResult& result, const std::string& dir, HostTimings timings);

// Runs side by side: makespan, its ratio to the lower bound, and the counts that explain it.
std::string comparison_text(const std::vector<Summary>& runs);
std::string comparison_json(const std::vector<Summary>& runs, HostTimings timings);

}  // namespace hearth::sim
