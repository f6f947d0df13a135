#include "real_backend/manager/run_monitor.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "policy/errors.hpp"

namespace hearth::real {

namespace {

using nlohmann::ordered_json;

// The snapshot's timeline: what the status page draws (the events file keeps everything).
constexpr std::size_t kMaxSegments = 30;  // per worker
constexpr double kTimelineWindowS = 300;
constexpr std::size_t kMaxErrors = 20;
constexpr double kRateWindowS = 60;

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string dump(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

}  // namespace

RunMonitor::RunMonitor(RunMonitorSetup setup, std::function<double()> clock_s)
    : setup_(std::move(setup)), clock_s_(std::move(clock_s)) {
  if (!setup_.events_path.empty()) {
    int fd = ::open(setup_.events_path.c_str(),
                    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || !(events_ = ::fdopen(fd, "a"))) {
      if (fd >= 0) ::close(fd);
      throw InputError(fmt::format("{}: cannot write the events file: {}",
                                   setup_.events_path.string(), std::strerror(errno)));
    }
  }
  samples_.push_back({0, 0});
  ordered_json contexts = ordered_json::array();
  for (std::size_t c = 0; c < setup_.contexts.size(); ++c) {
    contexts.push_back(
        {{"id", c}, {"name", setup_.contexts[c].first}, {"size_bytes", setup_.contexts[c].second}});
  }
  emit({{"event", "run_started"},
        {"run", setup_.run},
        {"job", setup_.job},
        {"total", setup_.total},
        {"done_before", setup_.done_before},
        {"contexts", contexts},
        {"policy", setup_.policy}});
}

RunMonitor::~RunMonitor() {
  if (events_) std::fclose(events_);
}

const char* RunMonitor::name_of(State s) {
  switch (s) {
    case State::idle:
      return "idle";
    case State::loading:
      return "loading";
    case State::computing:
      return "computing";
    case State::lost:
      return "lost";
    case State::quarantined:
      return "quarantined";
  }
  return "?";
}

std::string RunMonitor::context_name(ContextId c) const {
  return c < setup_.contexts.size() ? setup_.contexts[c].first : std::to_string(c);
}

void RunMonitor::emit(ordered_json event) {
  if (!events_ || events_failed_) return;
  ordered_json line = {{"t", clock_s_()}};
  line.update(event);
  std::string text = dump(line) + '\n';
  if (std::fwrite(text.data(), 1, text.size(), events_) != text.size() ||
      std::fflush(events_) != 0) {
    events_failed_ = true;  // the run goes on; the file says where it stopped
    spdlog::error("{}: cannot write the events file any more: {}", setup_.events_path.string(),
                  std::strerror(errno));
  }
}

RunMonitor::WorkerRecord& RunMonitor::at(WorkerId w) {
  if (w >= workers_.size()) workers_.resize(w + 1);
  return workers_[w];
}

void RunMonitor::set_state(WorkerRecord& r, State s) {
  if (r.state == s) return;
  double now = clock_s_();
  // A state that lasted no time (a stage ends and the next starts at once) leaves no segment:
  // the one before it goes on.
  if (r.since_s == now && !r.timeline.empty() && r.timeline.back().state == s &&
      r.timeline.back().end_s == now) {
    r.state = s;
    r.since_s = r.timeline.back().start_s;
    r.timeline.pop_back();
    return;
  }
  r.timeline.push_back({r.state, r.since_s, now});
  if (r.timeline.size() > kMaxSegments) r.timeline.pop_front();
  r.state = s;
  r.since_s = now;
}

void RunMonitor::refresh(WorkerId w) {
  WorkerRecord& r = at(w);
  if (!r.alive) return;
  set_state(r, !r.running.empty()  ? State::computing
               : !r.stages.empty() ? State::loading
                                   : State::idle);
}

// ---- workers ----------------------------------------------------------------------------------

void RunMonitor::worker_joined(WorkerId w, const std::string& name, const std::string& gpu_type,
                               const std::string& host) {
  WorkerRecord& r = at(w);
  bool first = r.name.empty();
  if (first) r.since_s = clock_s_();  // no segment before its first join
  r.name = name;
  r.gpu_type = gpu_type;
  r.host = host;
  r.alive = true;
  r.quarantined = false;
  r.left_s = -1;
  r.running.clear();
  r.stages.clear();
  for (auto& tier : r.contexts)
    tier.clear();
  set_state(r, State::idle);
  emit({{"event", "worker_joined"},
        {"worker", w},
        {"name", name},
        {"gpu_type", gpu_type},
        {"host", host}});
}

void RunMonitor::worker_lost(WorkerId w, const std::string& why) {
  WorkerRecord& r = at(w);
  if (!r.alive) return;
  r.alive = false;
  r.left_s = clock_s_();
  r.running.clear();
  r.stages.clear();
  for (auto& tier : r.contexts)
    tier.clear();
  set_state(r, State::lost);
  emit({{"event", "worker_lost"}, {"worker", w}, {"reason", why}});
}

void RunMonitor::worker_quarantined(WorkerId w, const std::string& why) {
  WorkerRecord& r = at(w);
  ++quarantines_;
  emit({{"event", "worker_quarantined"}, {"worker", w}, {"reason", why}});
  r.alive = false;
  r.quarantined = true;
  r.quarantine_reason = why;
  r.left_s = clock_s_();
  r.running.clear();
  r.stages.clear();
  for (auto& tier : r.contexts)
    tier.clear();
  set_state(r, State::quarantined);
  error(w, "quarantined: " + why);
}

void RunMonitor::notice(WorkerId w, double grace_s) {
  ++notices_;
  emit({{"event", "notice"}, {"worker", w}, {"grace_s", grace_s}});
}

// ---- stages -----------------------------------------------------------------------------------

void RunMonitor::stage_started(WorkerId w, ContextId c, Tier tier, const std::string& source,
                               WorkerId from) {
  WorkerRecord& r = at(w);
  r.stages.push_back({c, tier, source, from, clock_s_()});
  emit({{"event", "stage_started"},
        {"worker", w},
        {"context", c},
        {"tier", to_string(tier)},
        {"source", source},
        {"from", from == kNoWorker ? ordered_json(nullptr) : ordered_json(from)},
        {"bytes", c < setup_.contexts.size() ? setup_.contexts[c].second : 0.0}});
  refresh(w);
}

void RunMonitor::stage_ready(WorkerId w, ContextId c, Tier tier) {
  WorkerRecord& r = at(w);
  auto it = std::find_if(r.stages.begin(), r.stages.end(),
                         [&](const Stage& s) { return s.context == c && s.tier == tier; });
  if (it != r.stages.end()) {
    if (tier == Tier::disk && c < setup_.contexts.size())
      bytes_[it->source] += setup_.contexts[c].second;
    r.stages.erase(it);
  }
  r.contexts[static_cast<int>(tier)].insert(c);
  emit({{"event", "stage_ready"}, {"worker", w}, {"context", c}, {"tier", to_string(tier)}});
  refresh(w);
}

void RunMonitor::stage_failed(WorkerId w, ContextId c, Tier tier, const std::string& reason) {
  WorkerRecord& r = at(w);
  std::erase_if(r.stages, [&](const Stage& s) { return s.context == c && s.tier == tier; });
  r.contexts[static_cast<int>(tier)].erase(c);
  emit({{"event", "stage_failed"},
        {"worker", w},
        {"context", c},
        {"tier", to_string(tier)},
        {"reason", reason}});
  error(w, fmt::format("stage of {} to {} failed: {}", context_name(c), to_string(tier), reason));
  refresh(w);
}

void RunMonitor::evicted(WorkerId w, ContextId c, Tier tier) {
  at(w).contexts[static_cast<int>(tier)].erase(c);
  emit({{"event", "evicted"}, {"worker", w}, {"context", c}, {"tier", to_string(tier)}});
}

// ---- tasks ------------------------------------------------------------------------------------

void RunMonitor::task_started(WorkerId w, const TaskSpec& task, bool verify) {
  at(w).running[task.attempt] = {task, clock_s_(), verify};
  emit({{"event", "task_started"},
        {"worker", w},
        {"task", task.task},
        {"attempt", task.attempt},
        {"context", task.context},
        {"inferences", task.count},
        {"verify", verify}});
  refresh(w);
}

void RunMonitor::task_finished(WorkerId w, AttemptId attempt) {
  WorkerRecord& r = at(w);
  auto it = r.running.find(attempt);
  if (it == r.running.end()) return;
  std::uint64_t n = it->second.task.count;
  ++r.tasks_done;
  r.computing_s += clock_s_() - it->second.started_s;
  if (!it->second.verify) {
    r.inferences += n;
  }
  r.running.erase(it);
  emit({{"event", "task_finished"}, {"worker", w}, {"attempt", attempt}, {"inferences", n}});
  refresh(w);
}

void RunMonitor::task_failed(WorkerId w, AttemptId attempt, const std::string& reason) {
  WorkerRecord& r = at(w);
  if (!r.running.erase(attempt)) return;
  ++r.tasks_failed;
  ++failed_attempts_;
  emit({{"event", "task_failed"}, {"worker", w}, {"attempt", attempt}, {"reason", reason}});
  error(w, "task failed: " + reason);
  refresh(w);
}

void RunMonitor::task_cancelled(WorkerId w, AttemptId attempt) {
  if (!at(w).running.erase(attempt)) return;
  emit({{"event", "task_cancelled"}, {"worker", w}, {"attempt", attempt}});
  refresh(w);
}

void RunMonitor::task_given_up(TaskId task, ContextId c, std::uint64_t inferences,
                               const std::string& reason) {
  given_up_inferences_ += inferences;
  emit({{"event", "task_given_up"},
        {"task", task},
        {"context", c},
        {"inferences", inferences},
        {"reason", reason}});
}

void RunMonitor::verified(bool agreed) {
  ++verified_;
  if (!agreed) ++disagreements_;
}

void RunMonitor::error(WorkerId w, const std::string& what) {
  errors_.push_back({{"t_s", clock_s_()},
                     {"worker", w < workers_.size() ? workers_[w].name : std::string()},
                     {"what", what}});
  if (errors_.size() > kMaxErrors) errors_.pop_front();
}

void RunMonitor::ended(const std::string& end, const std::string& why, std::uint64_t done) {
  end_ = end;
  end_reason_ = why;
  for (WorkerId w = 0; w < workers_.size(); ++w) {
    if (workers_[w].alive) set_state(workers_[w], State::idle);
  }
  emit({{"event", "run_ended"},
        {"end", end},
        {"reason", why},
        {"done", done},
        {"given_up", given_up_inferences_}});
}

bool RunMonitor::idle(WorkerId w) const {
  if (w >= workers_.size()) return false;
  const WorkerRecord& r = workers_[w];
  return r.alive && r.running.empty() && r.stages.empty();
}

bool RunMonitor::idle_holding(WorkerId w, ContextId c) const {
  return idle(w) && workers_[w].contexts[static_cast<int>(Tier::gpu)].count(c) > 0;
}

bool RunMonitor::holding(WorkerId w, ContextId c) const {
  return w < workers_.size() && workers_[w].alive &&
         workers_[w].contexts[static_cast<int>(Tier::gpu)].count(c) > 0;
}

double RunMonitor::measured_speed(WorkerId w) const {
  if (w >= workers_.size()) return 0;
  const WorkerRecord& r = workers_[w];
  return r.computing_s > 0 ? static_cast<double>(r.inferences) / r.computing_s : 0;
}

// ---- the snapshot -----------------------------------------------------------------------------

ordered_json RunMonitor::snapshot(const RunTotals& t) const {
  double now = clock_s_();
  std::uint64_t done = setup_.done_before + t.done;
  while (samples_.size() > 1 && samples_[1].t_s <= now - kRateWindowS)
    samples_.pop_front();
  if (samples_.back().t_s < now) samples_.push_back({now, t.done});
  const Sample& oldest = samples_.front();
  double span = now - oldest.t_s;
  double rate = span > 0 ? static_cast<double>(t.done - oldest.done) / span : 0;
  std::uint64_t left = setup_.total - std::min(setup_.total, done + given_up_inferences_);
  ordered_json eta = rate > 0 ? ordered_json(static_cast<double>(left) / rate) : nullptr;
  if (left == 0) eta = 0.0;

  ordered_json workers = ordered_json::array(), timeline = ordered_json::array(),
               transfers = ordered_json::array();
  std::map<std::string, ordered_json> types;
  std::uint64_t running = 0;
  for (WorkerId w = 0; w < workers_.size(); ++w) {
    const WorkerRecord& r = workers_[w];
    if (r.name.empty()) continue;
    ordered_json task = nullptr;
    if (!r.running.empty()) {
      const Running& run = r.running.begin()->second;
      task = {{"task", run.task.task},
              {"attempt", run.task.attempt},
              {"context", context_name(run.task.context)},
              {"inferences", run.task.count},
              {"verify", run.verify}};
    }
    running += r.running.size();
    ordered_json contexts = ordered_json::object();
    for (Tier tier : {Tier::gpu, Tier::host, Tier::disk}) {
      ordered_json names = ordered_json::array();
      for (ContextId c : r.contexts[static_cast<int>(tier)])
        names.push_back(context_name(c));
      contexts[to_string(tier)] = names;
    }
    double speed = measured_speed(w);
    workers.push_back({{"id", w},
                       {"name", r.name},
                       {"gpu_type", r.gpu_type},
                       {"host", r.host},
                       {"state", name_of(r.state)},
                       {"since_s", r.since_s},
                       {"task", task},
                       {"contexts", contexts},
                       {"tasks_done", r.tasks_done},
                       {"tasks_failed", r.tasks_failed},
                       {"inferences", r.inferences},
                       {"speed", speed > 0 ? ordered_json(speed) : nullptr},
                       {"quarantined", r.quarantine_reason},
                       {"left_s", r.left_s >= 0 ? ordered_json(r.left_s) : nullptr}});
    for (const Segment& s : r.timeline) {
      if (s.end_s > s.start_s && s.end_s >= now - kTimelineWindowS) {
        timeline.push_back({{"worker", r.name},
                            {"state", name_of(s.state)},
                            {"start_s", s.start_s},
                            {"end_s", s.end_s}});
      }
    }
    timeline.push_back(
        {{"worker", r.name}, {"state", name_of(r.state)}, {"start_s", r.since_s}, {"end_s", now}});
    for (const Stage& s : r.stages) {
      if (s.tier != Tier::disk) continue;
      transfers.push_back(
          {{"worker", r.name},
           {"context", context_name(s.context)},
           {"tier", to_string(s.tier)},
           {"source", s.source},
           {"from", s.from < workers_.size() ? ordered_json(workers_[s.from].name) : nullptr},
           {"bytes", s.context < setup_.contexts.size() ? setup_.contexts[s.context].second : 0},
           {"started_s", s.started_s}});
    }
    ordered_json& type = types[r.gpu_type];
    if (type.is_null()) {
      type = {{"gpu_type", r.gpu_type},
              {"workers", 0},
              {"inferences", 0},
              {"busy_s", 0.0},
              {"per_s", 0.0}};
    }
    type["workers"] = type["workers"].get<int>() + (r.alive ? 1 : 0);
    type["inferences"] = type["inferences"].get<std::uint64_t>() + r.inferences;
    type["busy_s"] = type["busy_s"].get<double>() + r.computing_s;
  }
  ordered_json gpu_types = ordered_json::array();
  for (auto& [name, type] : types) {
    double busy = type["busy_s"].get<double>();
    type["per_s"] = busy > 0 ? type["inferences"].get<double>() / busy : 0.0;
    gpu_types.push_back(type);
  }
  ordered_json bytes = {{"manager", 0.0}, {"shared", 0.0}, {"peer", 0.0}};
  for (const auto& [source, b] : bytes_)
    bytes[source] = b;
  ordered_json errors = ordered_json::array();
  for (const ordered_json& e : errors_)
    errors.push_back(e);

  return {{"version", 1},
          {"job", setup_.job},
          {"state_dir", setup_.state_dir},
          {"run", setup_.run},
          {"pid", static_cast<long>(::getpid())},
          {"updated_at", unix_now()},
          {"elapsed_s", now},
          {"ended", end_.empty() ? ordered_json(nullptr) : ordered_json(end_)},
          {"end_reason", end_reason_},
          {"progress",
           {{"total", setup_.total},
            {"done", done},
            {"done_before", setup_.done_before},
            {"given_up", given_up_inferences_},
            {"rate_per_s", rate},
            {"eta_s", eta}}},
          {"tasks",
           {{"running", running},
            {"queued", t.pending},
            {"requeued", t.requeued},
            {"failed_attempts", failed_attempts_},
            {"given_up", t.given_up_tasks},
            {"verified", verified_},
            {"disagreements", disagreements_}}},
          {"counts",
           {{"joins", t.joins},
            {"losses", t.losses},
            {"notices", notices_},
            {"quarantines", quarantines_},
            {"stage_failures", t.stage_failures},
            {"refused_connections", t.refused_connections}}},
          {"bytes", bytes},
          {"gpu_types", gpu_types},
          {"workers", workers},
          {"transfers", transfers},
          {"timeline", timeline},
          {"errors", errors}};
}

}  // namespace hearth::real
