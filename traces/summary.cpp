#include "traces/summary.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>
#include <set>
#include <unordered_map>

#include "traces/availability.hpp"

namespace hearth::traces {

std::vector<double> completed_lifetimes_s(const Trace& trace) {
  std::unordered_map<std::string, double> up_since;
  std::vector<double> lifetimes;
  for (const auto& e : trace.events) {
    if (e.kind == EventKind::up) up_since[e.worker] = e.time_s;
    if (e.kind == EventKind::down) lifetimes.push_back(e.time_s - up_since.at(e.worker));
  }
  return lifetimes;
}

double nearest_rank(const std::vector<double>& sorted, double q) {
  assert(!sorted.empty() && q > 0 && q <= 1);
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::max<std::size_t>(rank, 1) - 1];
}

TraceSummary summarize(const Trace& trace) {
  TraceSummary s;
  s.end_s = trace.end_s;
  s.events = trace.events.size();
  if (!trace.events.empty()) s.first_event_s = trace.events.front().time_s;

  std::set<std::string> names;
  std::unordered_map<std::string, std::set<std::string>> names_by_type;
  for (const auto& e : trace.events) {
    names.insert(e.worker);
    if (e.kind == EventKind::up) {
      ++s.ups;
      names_by_type[e.gpu_type].insert(e.worker);
    }
    if (e.kind == EventKind::down) ++s.preemptions;
    if (e.kind == EventKind::notice) ++s.notices;
  }
  s.workers = names.size();

  const auto series = availability_series(trace);
  std::vector<double> gpu_seconds_by_type(series.gpu_types.size(), 0);
  std::vector<std::size_t> peak_by_type(series.gpu_types.size(), 0);
  for (std::size_t i = 0; i < series.steps.size(); ++i) {
    const auto& step = series.steps[i];
    const double until_s = i + 1 < series.steps.size() ? series.steps[i + 1].time_s : s.end_s;
    const double length_s = until_s - step.time_s;
    s.gpu_seconds += static_cast<double>(step.up) * length_s;
    if (step.up > s.peak_up) {
      s.peak_up = step.up;
      s.peak_at_s = step.time_s;
    }
    for (std::size_t t = 0; t < series.gpu_types.size(); ++t) {
      gpu_seconds_by_type[t] += static_cast<double>(step.up_by_type[t]) * length_s;
      peak_by_type[t] = std::max(peak_by_type[t], step.up_by_type[t]);
    }
  }
  s.up_at_end = series.steps.back().up;
  if (s.end_s > 0) s.mean_up = s.gpu_seconds / s.end_s;
  for (std::size_t t = 0; t < series.gpu_types.size(); ++t) {
    const auto& type = series.gpu_types[t];
    s.by_type.push_back({type, names_by_type[type].size(), peak_by_type[t],
                         s.end_s > 0 ? gpu_seconds_by_type[t] / s.end_s : 0,
                         gpu_seconds_by_type[t]});
  }

  auto lifetimes = completed_lifetimes_s(trace);
  if (!lifetimes.empty()) {
    std::sort(lifetimes.begin(), lifetimes.end());
    s.lifetime = LifetimeSummary{
        lifetimes.size(),
        nearest_rank(lifetimes, 0.1),
        nearest_rank(lifetimes, 0.5),
        nearest_rank(lifetimes, 0.9),
        std::accumulate(lifetimes.begin(), lifetimes.end(), 0.0) /
            static_cast<double>(lifetimes.size()),
    };
  }
  return s;
}

}  // namespace hearth::traces
