#include "traces/availability.hpp"

#include <algorithm>
#include <unordered_map>

namespace hearth::traces {

AvailabilitySeries availability_series(const Trace& trace) {
  AvailabilitySeries series;
  series.end_s = trace.end_s;
  for (const auto& e : trace.events) {
    if (e.kind == EventKind::up) series.gpu_types.push_back(e.gpu_type);
  }
  std::sort(series.gpu_types.begin(), series.gpu_types.end());
  series.gpu_types.erase(std::unique(series.gpu_types.begin(), series.gpu_types.end()),
                         series.gpu_types.end());

  std::unordered_map<std::string, std::size_t> type_of_worker;
  AvailabilityStep now{0, 0, std::vector<std::size_t>(series.gpu_types.size(), 0)};
  series.steps.push_back(now);
  for (std::size_t i = 0; i < trace.events.size(); ++i) {
    const auto& e = trace.events[i];
    if (e.kind == EventKind::up) {
      const auto type =
          std::lower_bound(series.gpu_types.begin(), series.gpu_types.end(), e.gpu_type) -
          series.gpu_types.begin();
      type_of_worker[e.worker] = static_cast<std::size_t>(type);
      ++now.up;
      ++now.up_by_type[type];
    } else if (e.kind == EventKind::down) {
      --now.up;
      --now.up_by_type[type_of_worker.at(e.worker)];
    }
    const bool last_at_this_time =
        i + 1 == trace.events.size() || trace.events[i + 1].time_s != e.time_s;
    if (!last_at_this_time) continue;
    now.time_s = e.time_s;
    auto& last = series.steps.back();
    if (now.up_by_type == last.up_by_type) continue;
    if (last.time_s == now.time_s) {
      last = now;
    } else {
      series.steps.push_back(now);
    }
  }
  return series;
}

}  // namespace hearth::traces
