#include "policy/command_log.hpp"

#include <fmt/format.h>

#include <cassert>
#include <sstream>

#include "policy/wired_engine.hpp"

namespace hearth {

namespace {

std::string source_text(Source s) {
  return s.kind == SourceKind::peer ? fmt::format("peer:{}", s.peer) : to_string(s.kind);
}

Tier parse_tier(const std::string& s) {
  if (s == "gpu") return Tier::gpu;
  if (s == "host") return Tier::host;
  assert(s == "disk");
  return Tier::disk;
}

// The cluster of a replay: time is whatever the event being replayed says.
class ReplayClock final : public Cluster {
 public:
  double now_s = 0;
  double now() const override { return now_s; }
  void stage_context(WorkerId, ContextId, Tier, Source) override {}
  void evict_context(WorkerId, ContextId, Tier) override {}
  void start_task(WorkerId, const TaskSpec&) override {}
  void cancel_task(WorkerId, AttemptId) override {}
};

}  // namespace

// Times are printed exactly (17 significant digits) so that logs compare bit for bit.
void CommandLog::stage_context(WorkerId worker, ContextId context, Tier tier, Source source) {
  lines_.push_back(fmt::format("{:.17g} stage w{} c{} {} from {}", now(), worker, context,
                               to_string(tier), source_text(source)));
  ClusterWrapper::stage_context(worker, context, tier, source);
}

void CommandLog::evict_context(WorkerId worker, ContextId context, Tier tier) {
  lines_.push_back(
      fmt::format("{:.17g} evict w{} c{} {}", now(), worker, context, to_string(tier)));
  ClusterWrapper::evict_context(worker, context, tier);
}

void CommandLog::start_task(WorkerId worker, const TaskSpec& t) {
  lines_.push_back(fmt::format("{:.17g} start w{} task {} attempt {} c{} [{},{})", now(), worker,
                               t.task, t.attempt, t.context, t.first, t.first + t.count));
  ClusterWrapper::start_task(worker, t);
}

void CommandLog::cancel_task(WorkerId worker, AttemptId attempt) {
  lines_.push_back(fmt::format("{:.17g} cancel w{} attempt {}", now(), worker, attempt));
  ClusterWrapper::cancel_task(worker, attempt);
}

void EventLog::record(std::string line) {
  lines_.push_back(fmt::format("{:.17g} {}", clock_.now(), line));
}

void EventLog::worker_joined(const WorkerSpec& s) {
  record(fmt::format("joined {} {} {} {:.17g} {:.17g} {:.17g} {:.17g} {:.17g} {:.17g} {:.17g}",
                     s.id, s.name, s.gpu_type, s.gpu_memory_bytes, s.host_memory_bytes,
                     s.disk_bytes, s.speed, s.disk_read_Bps, s.host_to_gpu_Bps, s.network_Bps));
  ClusterEventsWrapper::worker_joined(s);
}

void EventLog::preemption_notice(WorkerId worker, double grace_s) {
  record(fmt::format("notice {} {:.17g}", worker, grace_s));
  ClusterEventsWrapper::preemption_notice(worker, grace_s);
}

void EventLog::worker_lost(WorkerId worker) {
  record(fmt::format("lost {}", worker));
  ClusterEventsWrapper::worker_lost(worker);
}

void EventLog::context_ready(WorkerId worker, ContextId context, Tier tier) {
  record(fmt::format("ready {} {} {}", worker, context, to_string(tier)));
  ClusterEventsWrapper::context_ready(worker, context, tier);
}

void EventLog::stage_failed(WorkerId worker, ContextId context, Tier tier,
                            std::string_view reason) {
  record(fmt::format("stage_failed {} {} {}", worker, context, to_string(tier)));
  ClusterEventsWrapper::stage_failed(worker, context, tier, reason);
}

void EventLog::task_finished(WorkerId worker, AttemptId attempt, double output_bytes) {
  record(fmt::format("finished {} {} {:.17g}", worker, attempt, output_bytes));
  ClusterEventsWrapper::task_finished(worker, attempt, output_bytes);
}

void EventLog::task_failed(WorkerId worker, AttemptId attempt, std::string_view reason) {
  record(fmt::format("failed {} {}", worker, attempt));
  ClusterEventsWrapper::task_failed(worker, attempt, reason);
}

std::vector<std::string> replay_events(const std::vector<std::string>& events,
                                       const Workload& workload, const EngineConfig& config) {
  ReplayClock clock;
  Wiring wiring;
  wiring.record = true;
  WiredEngine wired(clock, workload, config, wiring);
  ClusterEvents& engine = wired.events();
  for (const std::string& line : events) {
    std::istringstream in(line);
    std::string kind;
    in >> clock.now_s >> kind;
    WorkerId w = 0;
    if (kind == "joined") {
      WorkerSpec s;
      in >> s.id >> s.name >> s.gpu_type >> s.gpu_memory_bytes >> s.host_memory_bytes >>
          s.disk_bytes >> s.speed >> s.disk_read_Bps >> s.host_to_gpu_Bps >> s.network_Bps;
      engine.worker_joined(s);
    } else if (kind == "notice") {
      double grace = 0;
      in >> w >> grace;
      engine.preemption_notice(w, grace);
    } else if (kind == "lost") {
      in >> w;
      engine.worker_lost(w);
    } else if (kind == "ready" || kind == "stage_failed") {
      ContextId c = 0;
      std::string tier;
      in >> w >> c >> tier;
      if (kind == "ready") {
        engine.context_ready(w, c, parse_tier(tier));
      } else {
        engine.stage_failed(w, c, parse_tier(tier), "replayed");
      }
    } else if (kind == "finished") {
      AttemptId a = 0;
      double bytes = 0;
      in >> w >> a >> bytes;
      engine.task_finished(w, a, bytes);
    } else if (kind == "failed") {
      AttemptId a = 0;
      in >> w >> a;
      engine.task_failed(w, a, "replayed");
    } else {
      assert(false && "not an EventLog line");
    }
  }
  return wired.command_lines();
}

}  // namespace hearth
