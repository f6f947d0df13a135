#include "sim_backend/report.hpp"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "policy/enum_names.hpp"
#include "policy/errors.hpp"
#include "sim_backend/result_json.hpp"

namespace hearth::sim {

namespace {

constexpr const char* kGpuStateNames[] = {"idle", "loading", "computing", "lost"};
constexpr const char* kAttemptOutcomeNames[] = {"finished", "cancelled", "preempted", "unfinished"};

}  // namespace

const char* to_string(GpuState state) {
  return enum_name(state, kGpuStateNames);
}

const char* to_string(AttemptOutcome outcome) {
  return enum_name(outcome, kAttemptOutcomeNames);
}

namespace {

// JSON has no infinity: a bound that does not exist is null.
nlohmann::json finite_or_null(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr);
}

double ratio(const Summary& s) {
  return s.lower_bound_s > 0 && std::isfinite(s.lower_bound_s) ? s.makespan_s / s.lower_bound_s
                                                               : NAN;
}

// summary.json: every field of the summary by its name, the loads keyed by their source, and
// the ratio to the lower bound.
nlohmann::json report_json(const Summary& s, HostTimings timings) {
  nlohmann::json j = s;
  if (timings == HostTimings::omit) {
    j.erase("wall_s");
    j.erase("setup_wall_s");
  }
  nlohmann::json loads = nlohmann::json::object();
  for (int i = 0; i < kLoadSourceCount; ++i)
    loads[to_string(static_cast<LoadSource>(i))] = s.context_loads[i];
  j["context_loads"] = loads;
  j["lower_bound_s"] = finite_or_null(s.lower_bound_s);
  j["ratio_to_lower_bound"] = finite_or_null(ratio(s));
  return j;
}

std::string seconds_text(double s) {
  if (!std::isfinite(s)) return "none";
  if (s < 120) return fmt::format("{:.1f} s", s);
  if (s < 7200) return fmt::format("{:.1f} s ({:.1f} min)", s, s / 60);
  return fmt::format("{:.1f} s ({:.2f} h)", s, s / 3600);
}

std::ofstream open_for_writing(const std::filesystem::path& path) {
  std::ofstream out(path);
  if (!out) throw InputError(fmt::format("{}: cannot write", path.string()));
  return out;
}

}  // namespace

std::string summary_json(const Summary& s, HostTimings timings) {
  return report_json(s, timings).dump(2) + "\n";
}

std::string summary_text(const Summary& s) {
  const GpuSeconds& g = s.gpu_seconds;
  auto share = [&](double x) { return g.available > 0 ? 100 * x / g.available : 0.0; };
  std::string out;
  out += fmt::format("scenario        {} (seed {})\n", s.scenario, s.seed);
  out += fmt::format(
      "policies        placement {}, eviction {}, granularity {}, replication {}, "
      "batch size {}\n",
      s.placement, s.eviction, s.granularity, s.replication, s.batch_size);
  out += fmt::format("makespan        {}{}\n", seconds_text(s.makespan_s),
                     s.finished ? "" : "  (NOT FINISHED: the pool could no longer progress)");
  out += fmt::format("lower bound     {}", seconds_text(s.lower_bound_s));
  if (std::isfinite(ratio(s))) out += fmt::format("  (makespan is {:.2f}x)", ratio(s));
  out += "\n";
  out += fmt::format("inferences      {} of {} done\n", s.inferences_done, s.inferences_total);
  out += fmt::format("tasks           {} done, {} attempts, {} requeued, {} backups\n",
                     s.tasks_done, s.attempts, s.tasks_requeued, s.backups);
  out += fmt::format("workers         {} in the trace, {} preemptions, {} notices\n", s.workers,
                     s.preemptions, s.notices);
  out += fmt::format(
      "context loads   {} from shared storage, {} from a peer, {} from local disk, {} from host "
      "memory\n",
      s.context_loads[0], s.context_loads[1], s.context_loads[2], s.context_loads[3]);
  out += fmt::format("bytes moved     {:.3g} from shared storage, {:.3g} between peers\n",
                     s.shared_storage_bytes, s.peer_bytes);
  out += fmt::format(
      "GPU time        {:.0f} GPU-s available: {:.1f}% computing, {:.1f}% loading, {:.1f}% idle, "
      "{:.1f}% lost to preemption\n",
      g.available, share(g.computing), share(g.loading), share(g.idle), share(g.lost));
  return out;
}

void write_outputs(const SimResult& r, const std::string& dir, HostTimings timings) {
  std::filesystem::path root(dir);
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) throw InputError(fmt::format("{}: cannot create: {}", dir, ec.message()));

  open_for_writing(root / "summary.json") << summary_json(r.summary, timings);

  auto tasks = open_for_writing(root / "tasks.csv");
  tasks << "task,attempt,context,first,count,worker,gpu_type,start_s,end_s,outcome\n";
  for (const AttemptRow& a : r.attempts) {
    tasks << fmt::format("{},{},{},{},{},{},{},{:.6f},{:.6f},{}\n", a.task, a.attempt, a.context,
                         a.first, a.count, r.worker_names[a.worker], r.worker_types[a.worker],
                         a.start_s, a.end_s, to_string(a.outcome));
  }

  auto timeline = open_for_writing(root / "timeline.csv");
  timeline << "worker,gpu_type,incarnation,start_s,end_s,state\n";
  for (const Segment& seg : r.timeline) {
    timeline << fmt::format("{},{},{},{:.6f},{:.6f},{}\n", r.worker_names[seg.worker],
                            r.worker_types[seg.worker], seg.incarnation, seg.start_s, seg.end_s,
                            to_string(seg.state));
  }
}

std::string comparison_text(const std::vector<Summary>& runs) {
  std::string out = fmt::format("{:<10} {:<9} {:<12} {:>6} {:>12} {:>8} {:>7} {:>9} {:>8}\n",
                                "placement", "eviction", "granularity", "batch", "makespan_s",
                                "vs_bound", "loads", "requeued", "lost_%");
  for (const Summary& s : runs) {
    std::uint64_t loads = 0;
    for (auto n : s.context_loads)
      loads += n;
    const double lost =
        s.gpu_seconds.available > 0 ? 100 * s.gpu_seconds.lost / s.gpu_seconds.available : 0.0;
    out += fmt::format("{:<10} {:<9} {:<12} {:>6} {:>12.1f} {:>8} {:>7} {:>9} {:>8.1f}{}\n",
                       s.placement, s.eviction, s.granularity, s.batch_size, s.makespan_s,
                       std::isfinite(ratio(s)) ? fmt::format("{:.2f}x", ratio(s)) : "-", loads,
                       s.tasks_requeued, lost, s.finished ? "" : "  (not finished)");
  }
  if (!runs.empty()) {
    out += fmt::format("lower bound: {:.1f} s (no policy can finish sooner on this trace)\n",
                       runs.front().lower_bound_s);
  }
  return out;
}

std::string comparison_json(const std::vector<Summary>& runs, HostTimings timings) {
  nlohmann::json all = nlohmann::json::array();
  for (const Summary& s : runs)
    all.push_back(report_json(s, timings));
  return all.dump(2) + "\n";
}

}  // namespace hearth::sim
