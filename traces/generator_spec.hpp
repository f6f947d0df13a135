#pragma once
// The generator's settings as a user writes them on the command line, the named presets, and the
// command line that regenerates a config (written into each generated file). Syntax and the
// reasons behind every preset number: traces/GENERATORS.md.

#include <string>
#include <string_view>
#include <vector>

#include "traces/generator.hpp"

namespace hearth::traces {

// Each parser throws InputError naming what it was reading when the spec is malformed.
double parse_duration_s(std::string_view spec);            // 90, 90s, 30m, 24h, 7d
std::vector<PoolGroup> parse_pool(std::string_view spec);  // A100-40GB=32,T4-16GB=47
Arrivals parse_arrivals(std::string_view spec);            // poisson:RATE_PER_H,
                                                           // bursts:MEAN_GAP:SIZE
Lifetime parse_lifetime(std::string_view spec);            // none, exp:MEAN,
                                                           // weibull:SHAPE:SCALE,
                                                           // empirical:TRACE_FILE
DailyReclaim parse_reclaim(std::string_view spec);         // none,
                                                           // daily:RATE_PER_H:AMPLITUDE:PEAK_HOUR

// "campus": the HTCondor-backfilled campus pool of the pervasive context management paper.
// Throws InputError for an unknown name.
GeneratorConfig preset(std::string_view name);

// Throws InputError when the config cannot generate a trace (no pool, zero duration, ...).
void check_generator_config(const GeneratorConfig& config);

// The `hearth trace generate` command line that makes this config, every setting spelled out.
std::string generator_command(const GeneratorConfig& config);

}  // namespace hearth::traces
