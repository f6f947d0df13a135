#pragma once
// Generates availability traces for pools that no public trace covers (traces/GENERATORS.md).
// The model: a pool of machines, each with one GPU, offers idle GPUs to the application at random
// times (an HTCondor match, a granted spot request); the application takes an offer while it holds
// fewer than max_held workers. A held worker is lost when its lifetime runs out or when its owner
// reclaims the machine, whichever comes first. Owners follow a daily pattern: around peak_hour
// they reclaim more and offer less. Everything is drawn from one seeded Rng, so a config and a
// seed give the same trace on every platform.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "traces/trace.hpp"

namespace hearth::traces {

struct PoolGroup {
  std::string gpu_type;
  std::size_t count = 0;  // machines of this type; named "<gpu_type>-001", "-002", ...
};

struct Arrivals {
  enum class Kind { poisson, bursts };
  Kind kind = Kind::poisson;
  double rate_per_h = 0;       // poisson: offers per hour, averaged over a day
  double mean_gap_s = 0;       // bursts: mean time between bursts (exponential gaps)
  std::size_t burst_size = 0;  // bursts: offers in each burst, all at the same instant
};

struct Lifetime {
  enum class Kind { unlimited, exponential, weibull, empirical };
  Kind kind = Kind::unlimited;
  double mean_s = 0;              // exponential
  double shape = 0;               // weibull: < 1 means many short lives and a long tail
  double scale_s = 0;             // weibull
  std::vector<double> samples_s;  // empirical: drawn uniformly, with replacement
  std::string samples_from;       // empirical: the trace they came from
};

struct DailyReclaim {
  double rate_per_h = 0;  // reclaims per held worker per hour, averaged over a day; 0: none
  double amplitude = 0;   // in [0, 1]: the reclaim rate swings between (1 -/+ amplitude) times
                          // its mean, and the offer rate the opposite way
  double peak_hour = 14;  // hour of day (0-24) when owners are most active
};

struct GeneratorConfig {
  std::uint64_t seed = 1;
  double duration_s = 86400;  // the trace's end
  double start_hour = 0;      // hour of day at time 0
  std::vector<PoolGroup> pool;
  std::size_t max_held = 0;  // the most workers the application holds at once
  std::size_t initial = 0;   // offers at time 0, before the arrival process starts
  Arrivals arrivals;
  Lifetime lifetime;
  DailyReclaim reclaim;
  double notice_s = 0;  // > 0: a notice precedes each down by this much (less if the worker is
                        // younger than that); 0: evictions come without notice
};

// How much one trace may take. A config of a few numbers can ask for more than any simulation
// could use (a billion offers an hour for a year): generation then stops with an InputError that
// says which limit it met, instead of running for hours or filling memory. The defaults stop
// within seconds and about a gigabyte (traces/GENERATORS.md); the fuzz harness sets smaller ones.
struct GeneratorLimits {
  std::uint64_t max_machines = 1'000'000;  // machines in the pool, all groups together
  std::uint64_t max_steps = 100'000'000;   // offers (refused ones too), arrival and reclaim draws
  std::uint64_t max_events = 5'000'000;    // events in the trace
};

// Times are rounded to the millisecond; ties keep the order in which things happened. Workers up
// at duration_s stay up. Requires a config that check_generator_config accepts; throws InputError
// when the trace would pass one of `limits`.
Trace generate_trace(const GeneratorConfig& config, const GeneratorLimits& limits = {});

}  // namespace hearth::traces
