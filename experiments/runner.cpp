#include "experiments/runner.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "os/atomic_file.hpp"
#include "os/fd.hpp"
#include "policy/errors.hpp"
#include "sim_backend/report.hpp"
#include "sim_backend/simulation.hpp"
#include "traces/summary.hpp"

namespace hearth::experiments {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

constexpr const char* kTempPrefix = ".tmp-";

constexpr const char* kSummaryOrder[] = {
    "finished",
    "makespan_s",
    "lower_bound_s",
    "ratio_to_lower_bound",
    "inferences_total",
    "inferences_done",
    "tasks_done",
    "attempts",
    "backups",
    "tasks_requeued",
    "preemptions",
    "notices",
    "stage_failures",
    "evictions",
    "context_loads_shared_storage",
    "context_loads_peer",
    "context_loads_local_disk",
    "context_loads_host_memory",
    "shared_storage_bytes",
    "peer_bytes",
    "output_bytes",
    "gpu_seconds_available",
    "gpu_seconds_computing",
    "gpu_seconds_loading",
    "gpu_seconds_idle",
    "gpu_seconds_lost",
    "replication",
    "detection_delay_s",
    "workers",
    "trace_events",
    "wall_s",
    "setup_wall_s",
};

fs::path done_path(const fs::path& out, const std::string& key) {
  return out / "cells" / (key + ".json");
}
fs::path failed_path(const fs::path& out, const std::string& key) {
  return out / "cells" / (key + ".failed.json");
}
fs::path gantt_path(const fs::path& out, const std::string& key) {
  return out / "gantt" / key;
}

bool keeps_timeline(const ExperimentSpec& spec, const Cell& cell) {
  return std::find(spec.gantt.begin(), spec.gantt.end(), cell) != spec.gantt.end();
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Whole or not at all: a reader sees the old file or the new one, never half of one.
void write_atomically(const fs::path& path, const std::string& text) {
  os::AtomicFile file(path, path.parent_path() / fmt::format("{}{}-{}", kTempPrefix,
                                                             path.filename().string(), getpid()));
  file.stream() << text;
  if (!file.commit()) throw InputError(fmt::format("{}: cannot write", file.temp().string()));
}

Json key_json(const ExperimentSpec& spec, const Cell& c) {
  const PolicySource& p = spec.policies[c.policy];
  return Json{{"trace", spec.traces[c.trace].name},
              {"workload", spec.workloads[c.workload].name},
              {"placement", p.placement},
              {"eviction", p.eviction},
              {"granularity", p.granularity},
              {"batch_size", c.batch_size},
              {"seed", c.seed}};
}

Json facts_json(const TraceFacts& f) {
  return Json{{"end_s", f.end_s},
              {"workers", f.workers},
              {"peak_up", f.peak_up},
              {"mean_up", f.mean_up},
              {"gpu_hours", f.gpu_hours},
              {"preemptions", f.preemptions},
              {"preemptions_per_gpu_hour", f.preemptions_per_gpu_hour},
              {"lifetime_p50_s", f.lifetime_p50_s},
              {"lifetime_mean_s", f.lifetime_mean_s}};
}

std::optional<Json> read_json(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  Json j = Json::parse(read_text(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

void write_done(const fs::path& out, const ExperimentSpec& spec, const Cell& cell,
                const CellOutcome& outcome) {
  const std::string key = cell_key(spec, cell);
  Json j{{"key", key_json(spec, cell)},
         {"fingerprint", cell_fingerprint(spec, cell)},
         {"status", "done"},
         {"summary", Json::parse(sim::summary_json(outcome.summary, sim::HostTimings::include))},
         {"trace_facts", facts_json(outcome.trace)}};
  write_atomically(done_path(out, key), j.dump(1) + "\n");
  fs::remove(failed_path(out, key));
}

void write_failed(const fs::path& out, const ExperimentSpec& spec, const Cell& cell,
                  const std::string& error) {
  const std::string key = cell_key(spec, cell);
  Json j{{"key", key_json(spec, cell)},
         {"fingerprint", cell_fingerprint(spec, cell)},
         {"status", "failed"},
         {"error", error}};
  write_atomically(failed_path(out, key), j.dump(1) + "\n");
  fs::remove(done_path(out, key));
}

// What a cell's process does: run, write its file, and leave without unwinding (the simulator's
// state is not meant to be torn down, and the parent's must not be).
[[noreturn]] void run_child(const fs::path& out, const ExperimentSpec& spec, const Cell& cell,
                            const CellFunction& run_cell) {
  int code = 0;
  try {
    const std::string key = cell_key(spec, cell);
    std::string timeline_dir;
    if (keeps_timeline(spec, cell)) {
      timeline_dir = (out / "gantt" / fmt::format("{}{}-{}", kTempPrefix, key, getpid())).string();
    }
    CellOutcome outcome = run_cell(cell, timeline_dir);
    if (!timeline_dir.empty()) {
      fs::remove_all(gantt_path(out, key));
      fs::rename(timeline_dir, gantt_path(out, key));
    }
    write_done(out, spec, cell, outcome);
  } catch (const std::exception& e) {
    try {
      write_failed(out, spec, cell, e.what());
    } catch (...) {
    }
    code = 1;
  }
  std::fflush(nullptr);
  ::_exit(code);
}

// Left behind by processes that were killed while writing.
void remove_temporaries(const fs::path& out) {
  for (const char* sub : {"cells", "gantt"}) {
    std::error_code ec;
    if (!fs::is_directory(out / sub, ec)) continue;
    std::vector<fs::path> doomed;
    for (const auto& entry : fs::directory_iterator(out / sub)) {
      if (entry.path().filename().string().rfind(kTempPrefix, 0) == 0)
        doomed.push_back(entry.path());
    }
    for (const auto& p : doomed)
      fs::remove_all(p, ec);
  }
}

// One run at a time per folder: two would run the same cells.
class FolderLock {
 public:
  explicit FolderLock(const fs::path& out) {
    const std::string path = (out / ".lock").string();
    fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd_.is_open()) {
      throw InputError(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
    }
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
      throw InputError(
          fmt::format("{}: another hearth experiment run is using this folder", out.string()));
    }
  }

 private:
  os::Fd fd_;  // the lock lasts as long as it is open
};

void write_experiment_json(const fs::path& out, const ExperimentSpec& spec, std::size_t cells) {
  Json traces = Json::array();
  for (const auto& t : spec.traces)
    traces.push_back({{"name", t.name}, {"kind", t.kind}, {"description", t.description}});
  Json workloads = Json::array();
  for (const auto& w : spec.workloads) {
    Json contexts = Json::array();
    for (std::size_t i = 0; i < w.workload.contexts.size(); ++i) {
      const auto& c = w.workload.contexts[i];
      contexts.push_back({{"name", c.name},
                          {"size_bytes", c.size_bytes},
                          {"init_s", c.init_s},
                          {"inferences", w.workload.inferences[i]}});
    }
    workloads.push_back({{"name", w.name}, {"contexts", contexts}});
  }
  Json policies = Json::array();
  for (const auto& p : spec.policies) {
    policies.push_back({{"label", p.label},
                        {"placement", p.placement},
                        {"eviction", p.eviction},
                        {"granularity", p.granularity}});
  }
  Json gantt = Json::array();
  for (const Cell& c : spec.gantt) {
    Json g = key_json(spec, c);
    g["policy"] = spec.policies[c.policy].label;
    g["cell"] = cell_key(spec, c);
    gantt.push_back(g);
  }
  Json j{{"name", spec.name},
         {"spec", fs::absolute(spec.source).lexically_normal().string()},
         {"cluster", spec.cluster_file},
         {"traces", traces},
         {"workloads", workloads},
         {"policies", policies},
         {"batch_sizes", spec.batch_sizes},
         {"seeds", spec.seeds},
         {"replication", spec.replication},
         {"upload_cap", spec.upload_cap},
         {"detection_delay_s", spec.detection_delay_s},
         {"figures", spec.figures.empty() ? Json(known_figures()) : Json(spec.figures)},
         {"gantt", gantt},
         {"cells", cells}};
  write_atomically(out / "experiment.json", j.dump(1) + "\n");
}

std::string csv_field(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string quoted = "\"";
    for (char c : s)
      quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
  }
  return v.dump();
}

// Nested objects become prefix_key columns: context_loads.peer is context_loads_peer.
void flatten(const Json& object, const std::string& prefix, Json& into) {
  for (const auto& [key, value] : object.items()) {
    const std::string name = prefix.empty() ? key : fmt::format("{}_{}", prefix, key);
    if (value.is_object()) {
      flatten(value, name, into);
    } else {
      into[name] = value;
    }
  }
}

}  // namespace

sim::Scenario cell_scenario(const ExperimentSpec& spec, const Cell& cell) {
  const TraceSource& t = spec.traces[cell.trace];
  const PolicySource& p = spec.policies[cell.policy];
  sim::Scenario s;
  s.source = spec.source;
  s.name = cell_key(spec, cell);
  s.cluster = spec.cluster;
  if (t.generator) {
    traces::GeneratorConfig config = *t.generator;
    config.seed = cell.seed;
    s.trace = traces::generate_trace(config);
    s.trace.source = fmt::format("{} [trace {}, seed {}]", spec.source, t.name, cell.seed);
    s.trace_origin = fmt::format("generated: {} (seed {})", t.description, cell.seed);
  } else {
    s.trace = traces::parse_trace_file(t.file);
    s.trace_origin = t.file;
  }
  s.workload = spec.workloads[cell.workload].workload;
  s.policies.placement = p.placement;
  s.policies.eviction = p.eviction;
  s.policies.granularity = p.granularity;
  s.policies.replication = spec.replication;
  s.policies.batch_size = cell.batch_size;
  s.policies.upload_cap = spec.upload_cap;
  s.seed = cell.seed;
  s.detection_delay_s = spec.detection_delay_s;
  sim::check_scenario(s);
  return s;
}

TraceFacts trace_facts(const traces::Trace& trace) {
  const traces::TraceSummary s = traces::summarize(trace);
  TraceFacts f;
  f.end_s = s.end_s;
  f.workers = s.workers;
  f.peak_up = s.peak_up;
  f.mean_up = s.mean_up;
  f.gpu_hours = s.gpu_seconds / 3600;
  f.preemptions = s.preemptions;
  f.preemptions_per_gpu_hour =
      f.gpu_hours > 0 ? static_cast<double>(s.preemptions) / f.gpu_hours : 0.0;
  if (s.lifetime) {
    f.lifetime_p50_s = s.lifetime->p50_s;
    f.lifetime_mean_s = s.lifetime->mean_s;
  }
  return f;
}

CellOutcome simulate_cell(const ExperimentSpec& spec, const Cell& cell,
                          const std::string& timeline_dir) {
  const sim::Scenario scenario = cell_scenario(spec, cell);
  sim::SimOptions options;
  options.in_process = true;  // the cell's own process is the simulation's
  const sim::SimResult result = sim::simulate(scenario, options);
  if (!timeline_dir.empty()) sim::write_outputs(result, timeline_dir, sim::HostTimings::include);
  return {result.summary, trace_facts(scenario.trace)};
}

CellState cell_state(const ExperimentSpec& spec, const Cell& cell, const std::string& out_dir) {
  const fs::path out(out_dir);
  const std::string key = cell_key(spec, cell);
  const std::string fingerprint = cell_fingerprint(spec, cell);
  if (auto done = read_json(done_path(out, key))) {
    if (done->value("fingerprint", "") != fingerprint) return CellState::stale;
    std::error_code ec;
    if (keeps_timeline(spec, cell) &&
        !fs::is_regular_file(gantt_path(out, key) / "timeline.csv", ec))
      return CellState::missing;
    return CellState::done;
  }
  if (auto failed = read_json(failed_path(out, key))) {
    return failed->value("fingerprint", "") == fingerprint ? CellState::failed : CellState::stale;
  }
  return CellState::missing;
}

namespace {

// The cells a run runs: those missing, failed or stale. Counts them and the done ones in `report`.
std::vector<Cell> cells_to_run(const ExperimentSpec& spec, const std::vector<Cell>& cells,
                               const std::string& out_dir, RunReport& report) {
  std::vector<Cell> todo;
  for (const Cell& cell : cells) {
    switch (cell_state(spec, cell, out_dir)) {
      case CellState::done:
        ++report.already_done;
        break;
      case CellState::stale:
        ++report.stale;
        todo.push_back(cell);
        break;
      case CellState::missing:
      case CellState::failed:
        todo.push_back(cell);
        break;
    }
  }
  report.to_run = todo.size();
  return todo;
}

// While alive, SIGCHLD, SIGINT and SIGTERM are blocked and taken synchronously (sigwaitinfo), so
// that none can slip between a check and a wait.
class WatchedSignals {
 public:
  WatchedSignals() {
    sigemptyset(&watched_);
    for (int signal : {SIGCHLD, SIGINT, SIGTERM})
      sigaddset(&watched_, signal);
    sigprocmask(SIG_BLOCK, &watched_, &old_mask_);
  }
  ~WatchedSignals() { sigprocmask(SIG_SETMASK, &old_mask_, nullptr); }
  WatchedSignals(const WatchedSignals&) = delete;
  WatchedSignals& operator=(const WatchedSignals&) = delete;

  // The next signal to come; 0 when the wait was cut short.
  int wait() {
    siginfo_t info;
    return sigwaitinfo(&watched_, &info) < 0 ? 0 : info.si_signo;
  }
  // Takes the signals that came meanwhile, without re-raising them; true if SIGINT or SIGTERM
  // was among them.
  bool drain() {
    timespec zero{0, 0};
    siginfo_t info;
    bool interrupted = false;
    while (sigtimedwait(&watched_, &info, &zero) > 0)
      interrupted = interrupted || info.si_signo != SIGCHLD;
    return interrupted;
  }
  // In a child: the signals of a plain process, so that it dies of SIGINT or SIGTERM.
  void reset_in_child() const {
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  }

 private:
  sigset_t watched_;
  sigset_t old_mask_;
};

// Runs cells in child processes, a few at a time, each one's end into the report as it comes,
// until every one has run or SIGINT or SIGTERM stops the sweep.
class Sweep {
 public:
  Sweep(const ExperimentSpec& spec, const fs::path& out, const std::vector<Cell>& todo,
        const RunOptions& options, RunReport& report)
      : spec_(spec), out_(out), todo_(todo), options_(options), report_(report) {
    run_cell_ = options.run_cell ? options.run_cell
                                 : CellFunction([&spec](const Cell& c, const std::string& dir) {
                                     return simulate_cell(spec, c, dir);
                                   });
    jobs_ = options.jobs;
    if (jobs_ == 0) jobs_ = static_cast<unsigned>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
  }

  void run() {
    WatchedSignals signals;
    try {
      for (;;) {
        start_cells(signals);
        const bool reaped = reap();
        if (running_.empty() && (stopping_ || next_ == todo_.size())) break;
        // A freed slot first takes the next cell: the SIGCHLD of what was just reaped may be
        // gone already (several exits make one signal), and nothing else would wake the wait.
        if (reaped) continue;
        const int signal = signals.wait();
        if ((signal == SIGINT || signal == SIGTERM) && !stopping_) stop();
      }
    } catch (...) {
      for (const auto& [pid, r] : running_)
        ::kill(pid, SIGTERM);
      for (const auto& [pid, r] : running_)
        ::waitpid(pid, nullptr, 0);
      throw;
    }
    // Signals that came meanwhile are not re-raised: the report says the run was interrupted.
    if (signals.drain()) report_.interrupted = true;
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Running {
    Cell cell;
    Clock::time_point start;
  };

  void start_cells(const WatchedSignals& signals) {
    const pid_t parent = getpid();
    while (!stopping_ && running_.size() < jobs_ && next_ < todo_.size()) {
      const Cell cell = todo_[next_++];
      std::fflush(nullptr);
      const pid_t pid = ::fork();
      if (pid < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
      if (pid == 0) {
        signals.reset_in_child();
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // a runner killed outright takes its cells along
        if (getppid() != parent) ::_exit(1);
        run_child(out_, spec_, cell, run_cell_);
      }
      running_[pid] = {cell, Clock::now()};
    }
  }

  // Reaps every child that ended; true if there was one.
  bool reap() {
    bool reaped = false;
    for (int status = 0;;) {
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return reaped;
      if (running_.count(pid) != 0) finish(pid, status);
      reaped = true;
    }
  }

  void stop() {
    stopping_ = true;
    report_.interrupted = true;
    for (const auto& [pid, r] : running_)
      ::kill(pid, SIGTERM);
  }

  void finish(pid_t pid, int status) {
    const Running r = running_.at(pid);
    running_.erase(pid);
    const std::string key = cell_key(spec_, r.cell);
    CellFinished event;
    event.key = key;
    event.to_run = todo_.size();
    event.running = running_.size();
    event.wall_s = std::chrono::duration<double>(Clock::now() - r.start).count();
    if (auto done = read_json(done_path(out_, key));
        done && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      event.ok = true;
      event.makespan_s = done->at("summary").value("makespan_s", 0.0);
    } else if (stopping_ && WIFSIGNALED(status)) {
      return;  // ended by the interruption: missing, not failed
    } else if (auto failed = read_json(failed_path(out_, key)); failed && WIFEXITED(status)) {
      event.error = failed->value("error", "");
    } else {
      event.error = WIFSIGNALED(status)
                        ? fmt::format("the cell's process died of signal {}", WTERMSIG(status))
                        : fmt::format("the cell's process exited with status {} and no result",
                                      WEXITSTATUS(status));
      write_failed(out_, spec_, r.cell, event.error);
    }
    ++report_.ran;
    if (!event.ok) report_.failures.push_back({key, event.error});
    event.finished = report_.ran;
    if (options_.on_finished) options_.on_finished(event);
  }

  const ExperimentSpec& spec_;
  const fs::path& out_;
  const std::vector<Cell>& todo_;
  const RunOptions& options_;
  RunReport& report_;
  CellFunction run_cell_;
  unsigned jobs_ = 1;
  std::map<pid_t, Running> running_;
  std::size_t next_ = 0;
  bool stopping_ = false;
};

}  // namespace

RunReport run_experiment(const ExperimentSpec& spec, const RunOptions& options) {
  const fs::path out(options.out_dir);
  std::error_code ec;
  fs::create_directories(out / "cells", ec);
  if (!ec && !spec.gantt.empty()) fs::create_directories(out / "gantt", ec);
  if (ec) throw InputError(fmt::format("{}: cannot create: {}", out.string(), ec.message()));
  FolderLock lock(out);
  remove_temporaries(out);

  const std::vector<Cell> cells = expand_grid(spec);
  RunReport report;
  report.cells = cells.size();
  const std::vector<Cell> todo = cells_to_run(spec, cells, options.out_dir, report);
  if (options.dry_run) {
    report.missing = todo.size();
    return report;
  }
  write_experiment_json(out, spec, cells.size());
  Sweep(spec, out, todo, options, report).run();

  remove_temporaries(out);
  for (const Cell& cell : todo) {
    const CellState state = cell_state(spec, cell, options.out_dir);
    if (state == CellState::missing || state == CellState::stale) ++report.missing;
  }
  write_results_csv(spec, options.out_dir);
  report.results_csv = (out / "results.csv").string();
  return report;
}

std::size_t write_results_csv(const ExperimentSpec& spec, const std::string& out_dir) {
  const fs::path out(out_dir);
  std::vector<std::string> header = {"cell",       "trace",     "trace_kind", "workload",
                                     "policy",     "placement", "eviction",   "granularity",
                                     "batch_size", "seed",      "status",     "error"};
  // Every field of the simulator's summary: those known here in a reading order, then any the
  // simulator added since, by name. Its scenario name is the cell key; its policy names, batch
  // size and seed are the key's own columns.
  Json summary_fields;
  flatten(Json::parse(sim::summary_json(sim::Summary{}, sim::HostTimings::include)), "",
          summary_fields);
  for (const char* name : kSummaryOrder) {
    if (summary_fields.contains(name)) header.push_back(name);
  }
  for (const auto& [name, v] : summary_fields.items()) {
    if (std::find(header.begin(), header.end(), name) == header.end() && name != "scenario")
      header.push_back(name);
  }
  const Json fact_names = facts_json(TraceFacts{});
  for (const auto& [name, v] : fact_names.items())
    header.push_back("trace_" + name);

  std::string text = fmt::format("{}\n", fmt::join(header, ","));
  std::size_t rows = 0;
  for (const Cell& cell : expand_grid(spec)) {
    const std::string key = cell_key(spec, cell);
    const std::string fingerprint = cell_fingerprint(spec, cell);
    std::optional<Json> j = read_json(done_path(out, key));
    if (!j || j->value("fingerprint", "") != fingerprint) j = read_json(failed_path(out, key));
    if (!j || j->value("fingerprint", "") != fingerprint) continue;

    Json row = Json::object();
    if (j->contains("summary")) flatten(j->at("summary"), "", row);
    if (j->contains("trace_facts")) flatten(j->at("trace_facts"), "trace", row);
    row.update(key_json(spec, cell));  // the key's names win over the summary's
    row["cell"] = key;
    row["trace_kind"] = spec.traces[cell.trace].kind;
    row["policy"] = spec.policies[cell.policy].label;
    row["status"] = j->value("status", "");
    row["error"] = j->value("error", "");
    std::vector<std::string> fields;
    for (const std::string& column : header)
      fields.push_back(row.contains(column) ? csv_field(row[column]) : "");
    text += fmt::format("{}\n", fmt::join(fields, ","));
    ++rows;
  }
  write_atomically(out / "results.csv", text);
  return rows;
}

}  // namespace hearth::experiments
