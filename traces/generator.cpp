#include "traces/generator.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <queue>

#include "policy/errors.hpp"
#include "traces/sampling.hpp"
#include "traces/text.hpp"

namespace hearth::traces {
namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();

class Generation {
 public:
  Generation(const GeneratorConfig& config, const GeneratorLimits& limits)
      : config_(config), limits_(limits), rng_(config.seed) {
    std::uint64_t machines = 0;
    for (const auto& group : config.pool) {
      machines += std::min<std::uint64_t>(group.count, limits.max_machines + 1);
      if (machines > limits.max_machines) {
        throw InputError(
            fmt::format("the pool has more than {} machines, the most a generated "
                        "trace takes",
                        limits.max_machines));
      }
    }
    for (const auto& group : config.pool) {
      for (std::size_t n = 1; n <= group.count; ++n) {
        machines_.push_back({fmt::format("{}-{:03}", group.gpu_type, n), group.gpu_type});
        idle_.push_back(machines_.size() - 1);
      }
    }
  }

  Trace run() {
    for (std::size_t i = 0; i < config_.initial; ++i)
      offer(0);
    const bool bursts = config_.arrivals.kind == Arrivals::Kind::bursts;
    const double mean_gap_s =
        bursts ? config_.arrivals.mean_gap_s
               : (config_.arrivals.rate_per_h > 0 ? 3600 / config_.arrivals.rate_per_h : kNever);
    const std::size_t per_arrival = bursts ? config_.arrivals.burst_size : 1;
    // Thinning: candidates come at the highest rate of the day; each is kept with probability
    // rate(t) / highest rate.
    const double a = config_.reclaim.amplitude;
    for (double t = 0; mean_gap_s < kNever;) {
      step(t);
      t += rng_.exponential(mean_gap_s / (1 + a));
      if (t >= config_.duration_s) break;
      if (rng_.uniform() * (1 + a) >= 1 - a * owner_activity(t)) continue;
      for (std::size_t i = 0; i < per_arrival; ++i)
        offer(t);
    }
    Trace trace;
    trace.source = "generated";
    trace.end_s = round_to_ms(config_.duration_s);
    trace.events = std::move(events_);
    std::stable_sort(trace.events.begin(), trace.events.end(),
                     [](const auto& x, const auto& y) { return x.time_s < y.time_s; });
    return trace;
  }

 private:
  struct Machine {
    std::string name;
    std::string gpu_type;
  };
  using Release = std::pair<double, std::size_t>;  // (down time, machine)

  // cos of the hour of day against the peak: 1 at peak_hour, -1 twelve hours away.
  double owner_activity(double t) const {
    const double hours = config_.start_hour + t / 3600 - config_.reclaim.peak_hour;
    return std::cos(2 * std::numbers::pi * hours / 24);
  }

  double lifetime_s() {
    const auto& l = config_.lifetime;
    switch (l.kind) {
      case Lifetime::Kind::unlimited:
        return kNever;
      case Lifetime::Kind::exponential:
        return rng_.exponential(l.mean_s);
      case Lifetime::Kind::weibull:
        return rng_.weibull(l.shape, l.scale_s);
      case Lifetime::Kind::empirical:
        return l.samples_s[rng_.index(l.samples_s.size())];
    }
    return kNever;
  }

  // The first reclaim after `from`, from the daily-varying rate, by thinning.
  double reclaim_time(double from) {
    const auto& r = config_.reclaim;
    if (r.rate_per_h <= 0) return kNever;
    const double mean_gap_s = 3600 / (r.rate_per_h * (1 + r.amplitude));
    for (double t = from;;) {
      step(t);
      t += rng_.exponential(mean_gap_s);
      if (t >= config_.duration_s) return kNever;
      if (rng_.uniform() * (1 + r.amplitude) < 1 + r.amplitude * owner_activity(t)) return t;
    }
  }

  // Counts one unit of work at time t (an offer, or one draw of the arrival or reclaim clock; an
  // offer's own few draws count with it), and stops the generation past the limits.
  void step(double t) {
    if (++steps_ > limits_.max_steps) {
      throw InputError(fmt::format(
          "the trace takes more than {} steps (offers, and arrival and reclaim draws) by {:.0f} s "
          "of its {:.0f} s: lower the arrival rate, the burst size or the reclaim rate, or "
          "shorten the duration",
          limits_.max_steps, t, config_.duration_s));
    }
    if (events_.size() > limits_.max_events) {
      throw InputError(fmt::format(
          "the trace has more than {} events by {:.0f} s of its {:.0f} s: lower the arrival "
          "rate or the burst size, lengthen the lifetimes, or shorten the duration",
          limits_.max_events, t, config_.duration_s));
    }
  }

  void offer(double t) {
    step(t);
    while (!releases_.empty() && releases_.top().first <= t) {
      idle_.push_back(releases_.top().second);
      releases_.pop();
    }
    const std::size_t held = releases_.size() + held_to_end_;
    if (held >= config_.max_held || idle_.empty()) return;
    const std::size_t pick = rng_.index(idle_.size());
    const std::size_t m = idle_[pick];
    idle_[pick] = idle_.back();
    idle_.pop_back();

    const double lifetime = lifetime_s();
    const double down = std::min(t + lifetime, reclaim_time(t));
    const Machine& machine = machines_[m];
    const double up_s = round_to_ms(t);
    events_.push_back({up_s, machine.name, EventKind::up, machine.gpu_type, 0, 0, {}});
    if (down >= config_.duration_s) {
      ++held_to_end_;
      return;
    }
    const double down_s = round_to_ms(down);
    if (config_.notice_s > 0) {
      const double notice_s = std::max(up_s, round_to_ms(down - config_.notice_s));
      events_.push_back(
          {notice_s, machine.name, EventKind::notice, "", round_to_ms(down_s - notice_s), 0, {}});
    }
    events_.push_back({down_s, machine.name, EventKind::down, "", 0, 0, {}});
    releases_.push({down, m});
  }

  const GeneratorConfig& config_;
  const GeneratorLimits& limits_;
  Rng rng_;
  std::uint64_t steps_ = 0;
  std::vector<Machine> machines_;
  std::vector<std::size_t> idle_;  // machines the application does not hold
  std::priority_queue<Release, std::vector<Release>, std::greater<>> releases_;
  std::size_t held_to_end_ = 0;  // held machines that never go down
  std::vector<TraceEvent> events_;
};

}  // namespace

Trace generate_trace(const GeneratorConfig& config, const GeneratorLimits& limits) {
  return Generation(config, limits).run();
}

}  // namespace hearth::traces
