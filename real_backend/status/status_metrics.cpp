#include "real_backend/status/status_metrics.hpp"

#include <fmt/format.h>

#include <map>
#include <set>

namespace hearth::real {

namespace {

// One metric family: its HELP and TYPE lines, then its samples.
class Family {
 public:
  Family(std::string& out, const std::string& name, const char* type, const char* help)
      : out_(out), name_(name) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }
  // labels: "name=\"value\",..." already escaped, or empty.
  void sample(double value, const std::string& labels = "") {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name_, value);
    } else {
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name_, labels, value);
    }
  }

 private:
  std::string& out_;
  std::string name_;
};

std::string label(const char* name, const std::string& value) {
  return fmt::format("{}=\"{}\"", name, escape_label(value));
}

void gauge(std::string& out, const char* name, const char* help, double value) {
  Family(out, name, "gauge", help).sample(value);
}

void counter(std::string& out, const char* name, const char* help, double value) {
  Family(out, name, "counter", help).sample(value);
}

}  // namespace

std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string prometheus_metrics(const StatusSnapshot& s) {
  std::string out;
  gauge(out, "hearth_inferences_total", "Inferences in the job.",
        static_cast<double>(s.progress.total));
  gauge(out, "hearth_inferences_done", "Inferences done, by this run and earlier ones.",
        static_cast<double>(s.progress.done));
  gauge(out, "hearth_inferences_given_up", "Inferences given up after repeated failures.",
        static_cast<double>(s.progress.given_up));
  gauge(out, "hearth_rate_per_second", "Inferences per second over the last minute.",
        s.progress.rate_per_s);
  if (s.progress.eta_s) {
    gauge(out, "hearth_eta_seconds", "Estimated seconds until every inference is done.",
          *s.progress.eta_s);
  }
  gauge(out, "hearth_elapsed_seconds", "Seconds since this run started.", s.elapsed_s);
  gauge(out, "hearth_run_ended", "1 once the run has ended, else 0.", s.ended.empty() ? 0 : 1);

  Family tasks(out, "hearth_tasks", "gauge",
               "Tasks running and queued now, and tasks given up so far.");
  tasks.sample(static_cast<double>(s.tasks.running), label("state", "running"));
  tasks.sample(static_cast<double>(s.tasks.queued), label("state", "queued"));
  tasks.sample(static_cast<double>(s.tasks.given_up), label("state", "given_up"));
  counter(out, "hearth_requeues_total", "Tasks put back in the queue (lost or failed attempts).",
          static_cast<double>(s.tasks.requeued));
  counter(out, "hearth_failed_attempts_total", "Task attempts that failed on a worker.",
          static_cast<double>(s.tasks.failed_attempts));

  // Every (state, gpu type) pair, zeros included, so that a series does not vanish when its last
  // worker changes state.
  static const char* kStates[] = {"loading", "computing", "idle", "lost", "quarantined"};
  std::set<std::string> gpu_types;
  std::map<std::pair<std::string, std::string>, int> workers;
  for (const StatusGpuType& g : s.gpu_types)
    gpu_types.insert(g.gpu_type);
  for (const StatusWorker& w : s.workers) {
    gpu_types.insert(w.gpu_type);
    ++workers[{w.state, w.gpu_type}];
  }
  Family by_state(out, "hearth_workers", "gauge", "Workers by state and GPU type.");
  for (const std::string& g : gpu_types) {
    for (const char* state : kStates) {
      auto it = workers.find({state, g});
      by_state.sample(it == workers.end() ? 0 : it->second,
                      label("state", state) + "," + label("gpu_type", g));
    }
  }

  Family bytes(out, "hearth_bytes_total", "counter", "Context bytes sent to workers, by source.");
  bytes.sample(s.bytes.manager, label("source", "manager"));
  bytes.sample(s.bytes.shared, label("source", "shared"));
  bytes.sample(s.bytes.peer, label("source", "peer"));

  counter(out, "hearth_joins_total", "Workers that joined.", static_cast<double>(s.counts.joins));
  counter(out, "hearth_losses_total", "Workers lost.", static_cast<double>(s.counts.losses));
  counter(out, "hearth_notices_total", "Preemption notices received.",
          static_cast<double>(s.counts.notices));
  counter(out, "hearth_quarantines_total", "Workers quarantined.",
          static_cast<double>(s.counts.quarantines));
  counter(out, "hearth_stage_failures_total", "Context stages that failed.",
          static_cast<double>(s.counts.stage_failures));
  return out;
}

}  // namespace hearth::real
