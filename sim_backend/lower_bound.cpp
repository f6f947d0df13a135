#include "sim_backend/lower_bound.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <utility>
#include <vector>

namespace hearth::sim {

double best_load_s(const Scenario& s, const GpuType& type) {
  const ClusterDescription& cluster = s.cluster;
  double fastest_peer_Bps = 0;
  for (const GpuType& t : cluster.gpu_types)
    fastest_peer_Bps = std::max(fastest_peer_Bps, t.network_Bps);
  const double source_Bps = std::max(cluster.shared_storage_Bps, fastest_peer_Bps);
  const double in_Bps = std::min({source_Bps, type.network_Bps, type.disk_write_Bps});
  double best = std::numeric_limits<double>::infinity();
  for (const ContextSpec& c : s.workload.contexts) {
    double load = cluster.latency_s + c.size_bytes / in_Bps + c.size_bytes / type.disk_read_Bps +
                  c.size_bytes / type.host_to_gpu_Bps + c.init_s;
    best = std::min(best, load);
  }
  return best;
}

double lower_bound_s(const Scenario& s) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::uint64_t largest_context = 0;
  for (std::uint64_t n : s.workload.inferences)
    largest_context = std::max(largest_context, n);
  const double batch = static_cast<double>(std::min(s.policies.batch_size, largest_context));

  // Where each GPU's capacity starts and stops growing, and by how much per second.
  std::vector<std::pair<double, double>> slope_changes;
  struct Up {
    double since_s;
    const GpuType* type;  // checked against the cluster when the scenario was read
  };
  std::map<std::string, Up> up;
  auto close = [&](const Up& u, double down_s) {
    const double rate = batch / u.type->task_s(static_cast<std::uint64_t>(batch));
    const double working_from = u.since_s + best_load_s(s, *u.type);
    if (working_from < down_s) {
      slope_changes.push_back({working_from, rate});
      if (down_s < kInf) slope_changes.push_back({down_s, -rate});
    }
  };
  for (const auto& e : s.trace.events) {
    if (e.kind == traces::EventKind::up && !up.contains(e.worker)) {
      up.emplace(e.worker, Up{e.time_s, s.cluster.find(e.gpu_type)});
    } else if (e.kind == traces::EventKind::down) {
      auto it = up.find(e.worker);
      if (it == up.end()) continue;
      close(it->second, e.time_s);
      up.erase(it);
    }
  }
  for (const auto& [worker, u] : up)
    close(u, kInf);  // up at the trace's end: up for good
  std::sort(slope_changes.begin(), slope_changes.end());

  const double work = static_cast<double>(s.workload.total_inferences());
  double t = 0, done = 0, slope = 0;
  for (const auto& [at, change] : slope_changes) {
    if (slope > 0 && done + slope * (at - t) >= work) return t + (work - done) / slope;
    done += slope * (at - t);
    t = at;
    slope += change;
  }
  return slope > 0 ? t + (work - done) / slope : kInf;
}

}  // namespace hearth::sim
