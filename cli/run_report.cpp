#include "cli/run_report.hpp"

#include <fmt/format.h>

namespace hearth::cli {

namespace {

double number(const nlohmann::json& j, const char* a, const char* b) {
  if (!j.contains(a) || !j[a].is_object() || !j[a].contains(b) || !j[a][b].is_number()) return 0;
  return j[a][b].get<double>();
}

std::string bytes_text(double b) {
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  return fmt::format("{:.0f} B", b);
}

}  // namespace

std::string run_report(const nlohmann::json& s) {
  std::string out;
  auto line = [&](const std::string& l) { out += l + '\n'; };
  double elapsed = s.value("elapsed_s", 0.0);
  line(fmt::format(
      "run {}: {:.0f} of {:.0f} inferences done ({:.0f} before this run), {:.0f} "
      "given up, in {:.1f} s",
      s.value("run", 0), number(s, "progress", "done"), number(s, "progress", "total"),
      number(s, "progress", "done_before"), number(s, "progress", "given_up"), elapsed));
  line(
      fmt::format("  tasks: {:.0f} requeued, {:.0f} failed attempts, {:.0f} given up; {:.0f} "
                  "verified, {:.0f} disagreements",
                  number(s, "tasks", "requeued"), number(s, "tasks", "failed_attempts"),
                  number(s, "tasks", "given_up"), number(s, "tasks", "verified"),
                  number(s, "tasks", "disagreements")));
  line(fmt::format(
      "  workers: {:.0f} joins, {:.0f} lost, {:.0f} preemption notices, {:.0f} "
      "quarantined, {:.0f} stage failures, {:.0f} refused connections",
      number(s, "counts", "joins"), number(s, "counts", "losses"), number(s, "counts", "notices"),
      number(s, "counts", "quarantines"), number(s, "counts", "stage_failures"),
      number(s, "counts", "refused_connections")));
  line(fmt::format(
      "  context bytes to workers: {} from the manager, {} from shared storage, {} "
      "from peers",
      bytes_text(number(s, "bytes", "manager")), bytes_text(number(s, "bytes", "shared")),
      bytes_text(number(s, "bytes", "peer"))));
  if (s.contains("gpu_types") && s["gpu_types"].is_array()) {
    for (const auto& t : s["gpu_types"]) {
      line(
          fmt::format("  {}: {} workers at the end, {} inferences, {:.1f} inferences/s while "
                      "computing",
                      t.value("gpu_type", std::string("?")), t.value("workers", 0),
                      t.value("inferences", 0), t.value("per_s", 0.0)));
    }
  }
  if (s.contains("workers") && s["workers"].is_array()) {
    for (const auto& w : s["workers"]) {
      if (w.value("state", std::string()) == "quarantined") {
        line(fmt::format("  quarantined: {}: {}", w.value("name", std::string("?")),
                         w.value("quarantined", std::string())));
      }
    }
  }
  return out;
}

}  // namespace hearth::cli
