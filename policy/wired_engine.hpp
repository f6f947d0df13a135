#pragma once
// The policy engine as a backend runs it: wired to the backend's cluster through the contract
// check (contract_check.hpp) and the command and event logs (command_log.hpp), each if asked.
// Commands go engine -> command log -> check -> cluster; the cluster delivers its events to
// events(), from where they go check -> event log -> engine. The simulator, the manager, the
// policy tests and the replay of an event log all wire their engine this way.

#include <memory>
#include <string>
#include <vector>

#include "policy/command_log.hpp"
#include "policy/contract_check.hpp"
#include "policy/engine.hpp"

namespace hearth {

struct Wiring {
  bool check_contract = true;  // every command checked against cluster.hpp's Requires
  bool record = false;         // keep the events and commands as command_log.hpp lines
  ContractCheck::OnBroken on_broken = ContractCheck::abort_on_broken;
};

class WiredEngine {
 public:
  WiredEngine(Cluster& cluster, Workload workload, EngineConfig config, Wiring wiring = {});
  WiredEngine(const WiredEngine&) = delete;
  WiredEngine& operator=(const WiredEngine&) = delete;

  Engine& engine() { return *engine_; }
  const Engine& engine() const { return *engine_; }
  // Where the cluster delivers its events.
  ClusterEvents& events() { return *events_in_; }

  // With Wiring::record: what the engine received and what it issued; empty otherwise.
  std::vector<std::string> event_lines() const;
  std::vector<std::string> command_lines() const;

 private:
  std::unique_ptr<ContractCheck> check_;
  std::unique_ptr<CommandLog> commands_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<EventLog> events_;
  ClusterEvents* events_in_ = nullptr;
};

}  // namespace hearth
