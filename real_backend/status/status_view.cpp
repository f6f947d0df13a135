#include "real_backend/status/status_view.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace hearth::real {

namespace {

std::string joined(const std::vector<std::string>& names) {
  return names.empty() ? "-" : fmt::format("{}", fmt::join(names, ","));
}

// What a worker does now, in a few words.
std::string doing(const StatusWorker& w, double elapsed_s) {
  std::string state = fmt::format("{} {}", w.state, format_duration(elapsed_s - w.since_s));
  if (w.task) {
    return fmt::format("{}, task {} ({}, {} inferences, attempt {})", state, w.task->task,
                       w.task->context, w.task->inferences, w.task->attempt);
  }
  return state;
}

// Rows of cells as columns padded to their widest cell, two spaces apart, each row indented.
std::string table(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<std::size_t> width;
  for (const auto& r : rows) {
    width.resize(std::max(width.size(), r.size()));
    for (std::size_t i = 0; i < r.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line = indent;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string percent(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? "100%" : fmt::format("{:.1f}%", 100.0 * part / whole);
}

}  // namespace

std::string format_duration(double seconds) {
  if (!(seconds > 0)) return "0 s";
  if (seconds < 10) return fmt::format("{:.1f} s", seconds);
  auto s = static_cast<long long>(std::llround(seconds));
  if (s < 60) return fmt::format("{} s", s);
  if (s < 3600) return fmt::format("{} min {:02} s", s / 60, s % 60);
  return fmt::format("{} h {:02} min", s / 3600, s % 3600 / 60);
}

std::string format_bytes(double bytes) {
  static const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int unit = 0;
  while (bytes >= 1000 && unit < 5) {
    bytes /= 1000;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, units[unit]);
}

std::string render_status(const StatusSnapshot& s, double now) {
  std::string out;
  auto line = [&](const std::string& text) { out += text + "\n"; };
  const StatusProgress& p = s.progress;

  if (s.ended.empty()) {
    line(fmt::format("run {} of {}: running for {} (manager pid {}, updated {} ago)", s.run, s.job,
                     format_duration(s.elapsed_s), s.pid,
                     format_duration(std::max(0.0, now - s.updated_at))));
  } else {
    std::string how = s.ended == "no_workers" ? "ended with no workers left" : s.ended;
    line(fmt::format("run {} of {}: {} after {}{}", s.run, s.job, how, format_duration(s.elapsed_s),
                     s.end_reason.empty() ? "" : ": " + s.end_reason));
  }
  std::string eta = p.eta_s ? "ETA " + format_duration(*p.eta_s) : "ETA unknown";
  if (p.done + p.given_up >= p.total) eta = "nothing left";
  line(fmt::format("progress   {} of {} inferences done ({}){}; {:.1f}/s over the last minute; {}",
                   p.done, p.total, percent(p.done, p.total),
                   p.done_before ? fmt::format(", {} by earlier runs", p.done_before) : "",
                   p.rate_per_s, eta));
  if (p.given_up) line(fmt::format("given up   {} inferences", p.given_up));
  line(fmt::format("tasks      {} running, {} queued, {} requeued, {} failed attempts, {} given up",
                   s.tasks.running, s.tasks.queued, s.tasks.requeued, s.tasks.failed_attempts,
                   s.tasks.given_up));
  if (s.tasks.verified || s.tasks.disagreements) {
    line(fmt::format("verified   {} tasks, {} disagreements", s.tasks.verified,
                     s.tasks.disagreements));
  }
  line(fmt::format("workers    {} joined, {} lost, {} preemption notices, {} quarantined",
                   s.counts.joins, s.counts.losses, s.counts.notices, s.counts.quarantines));
  line(fmt::format("bytes      {} from the manager, {} from shared storage, {} from peers",
                   format_bytes(s.bytes.manager), format_bytes(s.bytes.shared),
                   format_bytes(s.bytes.peer)));

  // Workers by GPU type, in the order the snapshot lists the types, then any it does not.
  std::vector<std::string> types;
  for (const StatusGpuType& g : s.gpu_types)
    types.push_back(g.gpu_type);
  for (const StatusWorker& w : s.workers) {
    if (std::find(types.begin(), types.end(), w.gpu_type) == types.end())
      types.push_back(w.gpu_type);
  }
  for (const std::string& type : types) {
    auto g = std::find_if(s.gpu_types.begin(), s.gpu_types.end(),
                          [&](const StatusGpuType& x) { return x.gpu_type == type; });
    line("");
    if (g != s.gpu_types.end()) {
      line(fmt::format("{}: {} workers, {} inferences, {:.1f}/s while busy", type, g->workers,
                       g->inferences, g->per_s));
    } else {
      line(type + ":");
    }
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"worker", "doing", "gpu", "host", "disk", "done"});
    for (const StatusWorker& w : s.workers) {
      if (w.gpu_type != type) continue;
      std::string done = fmt::format("{} tasks, {} inferences", w.tasks_done, w.inferences);
      if (w.tasks_failed) done += fmt::format(", {} failed", w.tasks_failed);
      if (w.speed) done += fmt::format(", {:.1f}/s", *w.speed);
      rows.push_back({w.name, doing(w, s.elapsed_s), joined(w.gpu), joined(w.host_memory),
                      joined(w.disk), done});
    }
    out += table(rows, "  ");
  }
  if (s.workers.empty()) {
    line("");
    line("no worker has joined yet");
  }

  std::vector<std::vector<std::string>> quarantined;
  for (const StatusWorker& w : s.workers) {
    if (w.state == "quarantined") quarantined.push_back({w.name + ":", w.quarantined});
  }
  if (!quarantined.empty()) {
    line("");
    line("quarantined");
    out += table(quarantined, "  ");
  }

  if (!s.transfers.empty()) {
    line("");
    line("transfers in flight");
    std::vector<std::vector<std::string>> rows;
    for (const StatusTransfer& t : s.transfers) {
      std::string from = t.source == "peer" ? "peer " + t.from : t.source;
      rows.push_back({t.context, "to " + t.worker + " (" + t.tier + ")", "from " + from,
                      format_bytes(t.bytes), "for " + format_duration(s.elapsed_s - t.started_s)});
    }
    out += table(rows, "  ");
  }

  if (!s.errors.empty()) {
    line("");
    line("recent errors");
    std::vector<std::vector<std::string>> rows;
    for (const StatusError& e : s.errors) {
      rows.push_back({fmt::format("{:.1f} s", e.t_s), e.worker.empty() ? "-" : e.worker, e.what});
    }
    out += table(rows, "  ");
  }
  return out;
}

}  // namespace hearth::real
