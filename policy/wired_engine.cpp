#include "policy/wired_engine.hpp"

namespace hearth {

WiredEngine::WiredEngine(Cluster& cluster, Workload workload, EngineConfig config, Wiring wiring) {
  Cluster* out = &cluster;
  if (wiring.check_contract) {
    check_ = std::make_unique<ContractCheck>(cluster, workload, std::move(wiring.on_broken),
                                             config.pipeline);
    out = check_.get();
  }
  if (wiring.record) {
    commands_ = std::make_unique<CommandLog>(*out);
    out = commands_.get();
  }
  engine_ = std::make_unique<Engine>(*out, std::move(workload), std::move(config));
  ClusterEvents* in = engine_.get();
  if (wiring.record) {
    events_ = std::make_unique<EventLog>(cluster, in);
    in = events_.get();
  }
  if (check_) {
    check_->set_target(*in);
    in = check_.get();
  }
  events_in_ = in;
}

std::vector<std::string> WiredEngine::event_lines() const {
  return events_ ? events_->lines() : std::vector<std::string>{};
}

std::vector<std::string> WiredEngine::command_lines() const {
  return commands_ ? commands_->lines() : std::vector<std::string>{};
}

}  // namespace hearth
