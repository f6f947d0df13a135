#include "traces/generator_spec.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <charconv>
#include <cmath>

#include "policy/errors.hpp"
#include "traces/gpu_types.hpp"
#include "traces/summary.hpp"
#include "traces/text.hpp"

namespace hearth::traces {
namespace {

[[noreturn]] void bad(std::string_view what, std::string_view spec, std::string_view expected) {
  throw InputError(fmt::format("{} '{}': expected {}", what, spec, expected));
}

// A finite number >= 0 written in full, or nothing.
bool read_number(std::string_view text, double& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc{} && end == text.data() + text.size() && std::isfinite(value) &&
         value >= 0;
}

bool read_count(std::string_view text, std::size_t& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc{} && end == text.data() + text.size() && !text.empty();
}

// `kind:a:b:...` split at ':'.
std::vector<std::string_view> parts_of(std::string_view spec) {
  return split_fields(spec, ':');
}

}  // namespace

double parse_duration_s(std::string_view spec) {
  constexpr std::string_view kExpected = "a duration like 90, 90s, 30m, 24h or 7d";
  if (spec.empty()) bad("duration", spec, kExpected);
  double unit_s = 1;
  std::string_view number = spec;
  constexpr std::string_view kSuffixes = "smhd";
  constexpr double kSuffixSeconds[] = {1, 60, 3600, 86400};
  if (const auto suffix = kSuffixes.find(spec.back()); suffix != std::string_view::npos) {
    unit_s = kSuffixSeconds[suffix];
    number.remove_suffix(1);
  }
  double value = 0;
  if (!read_number(number, value)) bad("duration", spec, kExpected);
  return value * unit_s;
}

std::vector<PoolGroup> parse_pool(std::string_view spec) {
  constexpr std::string_view kExpected = "GPU_TYPE=COUNT,... like A100-40GB=32,T4-16GB=47";
  std::vector<PoolGroup> pool;
  for (const auto group : split_fields(spec, ',')) {
    const auto eq = group.rfind('=');
    PoolGroup g;
    if (eq == std::string_view::npos || !read_count(group.substr(eq + 1), g.count)) {
      bad("pool", spec, kExpected);
    }
    g.gpu_type = trim(group.substr(0, eq));
    if (g.gpu_type.empty() || g.count == 0) bad("pool", spec, kExpected);
    for (const auto& other : pool) {
      if (other.gpu_type == g.gpu_type) {
        throw InputError(fmt::format("pool '{}': {} appears twice", spec, g.gpu_type));
      }
    }
    pool.push_back(std::move(g));
  }
  return pool;
}

Arrivals parse_arrivals(std::string_view spec) {
  constexpr std::string_view kExpected = "poisson:RATE_PER_H or bursts:MEAN_GAP:SIZE";
  const auto parts = parts_of(spec);
  Arrivals a;
  if (parts[0] == "poisson" && parts.size() == 2 && read_number(parts[1], a.rate_per_h)) {
    a.kind = Arrivals::Kind::poisson;
    return a;
  }
  if (parts[0] == "bursts" && parts.size() == 3 && read_count(parts[2], a.burst_size) &&
      a.burst_size > 0) {
    a.kind = Arrivals::Kind::bursts;
    a.mean_gap_s = parse_duration_s(parts[1]);
    if (a.mean_gap_s > 0) return a;
  }
  bad("arrivals", spec, kExpected);
}

Lifetime parse_lifetime(std::string_view spec) {
  constexpr std::string_view kExpected =
      "none, exp:MEAN, weibull:SHAPE:SCALE or empirical:TRACE_FILE";
  const auto parts = parts_of(spec);
  Lifetime l;
  if (parts[0] == "none" && parts.size() == 1) return l;
  if ((parts[0] == "exp" || parts[0] == "exponential") && parts.size() == 2) {
    l.kind = Lifetime::Kind::exponential;
    l.mean_s = parse_duration_s(parts[1]);
    if (l.mean_s > 0) return l;
  }
  if (parts[0] == "weibull" && parts.size() == 3 && read_number(parts[1], l.shape) && l.shape > 0) {
    l.kind = Lifetime::Kind::weibull;
    l.scale_s = parse_duration_s(parts[2]);
    if (l.scale_s > 0) return l;
  }
  if (parts[0] == "empirical" && parts.size() >= 2) {
    // The file name may itself hold ':'; everything after the first one is the path.
    l.kind = Lifetime::Kind::empirical;
    l.samples_from = spec.substr(spec.find(':') + 1);
    l.samples_s = completed_lifetimes_s(parse_trace_file(l.samples_from));
    if (l.samples_s.empty()) {
      throw InputError(
          fmt::format("{}: no up period ends with a down, so there are no lifetimes "
                      "to draw from",
                      l.samples_from));
    }
    return l;
  }
  bad("lifetime", spec, kExpected);
}

DailyReclaim parse_reclaim(std::string_view spec) {
  constexpr std::string_view kExpected =
      "none or daily:RATE_PER_H:AMPLITUDE:PEAK_HOUR (amplitude 0-1, hour 0-24)";
  const auto parts = parts_of(spec);
  DailyReclaim r;
  if (parts[0] == "none" && parts.size() == 1) return r;
  if (parts[0] == "daily" && parts.size() == 4 && read_number(parts[1], r.rate_per_h) &&
      read_number(parts[2], r.amplitude) && r.amplitude <= 1 &&
      read_number(parts[3], r.peak_hour) && r.peak_hour <= 24) {
    return r;
  }
  bad("reclaim", spec, kExpected);
}

GeneratorConfig preset(std::string_view name) {
  if (name != "campus") throw InputError(fmt::format("unknown preset '{}' (known: campus)", name));
  // Every number is explained in traces/GENERATORS.md, "The campus preset".
  GeneratorConfig c;
  c.seed = 1;
  c.duration_s = 86400;
  c.start_hour = 0;
  c.pool = {{std::string(gpu::kTitanX), 200}, {std::string(gpu::kA10), 128},
            {std::string(gpu::kRtx6000), 96}, {std::string(gpu::kV100), 64},
            {std::string(gpu::kT4), 47},      {std::string(gpu::kA100), 32}};
  c.max_held = 186;
  c.initial = 0;
  c.arrivals = {Arrivals::Kind::poisson, 180, 0, 0};
  c.lifetime.kind = Lifetime::Kind::weibull;
  c.lifetime.shape = 0.7;
  c.lifetime.scale_s = 4 * 3600;
  c.reclaim = {0.1, 0.8, 14};
  c.notice_s = 0;
  return c;
}

void check_generator_config(const GeneratorConfig& c) {
  if (c.pool.empty()) throw InputError("generate needs a pool (--pool or --preset)");
  if (!(c.duration_s > 0)) throw InputError("generate needs a duration above 0");
  if (!(c.start_hour >= 0 && c.start_hour < 24)) {
    throw InputError(fmt::format("start hour {} is not in [0, 24)", c.start_hour));
  }
  if (c.max_held == 0) throw InputError("max-held must be at least 1");
  if (c.arrivals.kind == Arrivals::Kind::poisson && c.arrivals.rate_per_h == 0 && c.initial == 0) {
    throw InputError("no worker would ever come up: the arrival rate is 0 and --initial is 0");
  }
}

std::string generator_command(const GeneratorConfig& c) {
  std::vector<std::string> pool;
  for (const auto& g : c.pool)
    pool.push_back(fmt::format("{}={}", g.gpu_type, g.count));
  const auto& a = c.arrivals;
  const std::string arrivals = a.kind == Arrivals::Kind::poisson
                                   ? fmt::format("poisson:{}", a.rate_per_h)
                                   : fmt::format("bursts:{}:{}", a.mean_gap_s, a.burst_size);
  const auto& l = c.lifetime;
  std::string lifetime = "none";
  if (l.kind == Lifetime::Kind::exponential) lifetime = fmt::format("exp:{}", l.mean_s);
  if (l.kind == Lifetime::Kind::weibull)
    lifetime = fmt::format("weibull:{}:{}", l.shape, l.scale_s);
  if (l.kind == Lifetime::Kind::empirical) lifetime = fmt::format("empirical:{}", l.samples_from);
  const auto& r = c.reclaim;
  const std::string reclaim =
      r.rate_per_h == 0 && r.amplitude == 0
          ? "none"
          : fmt::format("daily:{}:{}:{}", r.rate_per_h, r.amplitude, r.peak_hour);
  return fmt::format(
      "hearth trace generate --seed {} --duration {} --start-hour {} --pool {} --max-held {} "
      "--initial {} --arrivals {} --lifetime {} --reclaim {} --notice-s {}",
      c.seed, c.duration_s, c.start_hour, fmt::join(pool, ","), c.max_held, c.initial, arrivals,
      lifetime, reclaim, c.notice_s);
}

}  // namespace hearth::traces
