#pragma once
// Reading the generator's settings out of a document's table: a scenario's [trace] and an
// experiment's [[traces]] write them alike, with the names and syntax of `hearth trace generate`
// (traces/GENERATORS.md).

#include <string_view>

#include "sim_backend/document.hpp"
#include "traces/generator.hpp"

namespace hearth::sim {

// The settings besides `generate` (the preset) that a table may change.
inline constexpr std::string_view kGeneratorSettings[] = {"duration", "start_hour", "pool",
                                                          "max_held", "initial",    "arrivals",
                                                          "lifetime", "reclaim",    "notice_s"};

// The preset `generate` names, with the table's settings in its place. An empirical lifetime's
// trace file is relative to the document, like every path in it. Reports a bad value at its key;
// checks neither the table's other keys nor the whole (traces::check_generator_config).
traces::GeneratorConfig read_generator(const Node& table);

}  // namespace hearth::sim
