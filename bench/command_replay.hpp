#pragma once
// A core that is no core: it replays a recorded command log (policy/command_log.hpp lines) at the
// recorded times and ignores what the cluster reports. Run on the same scenario, the simulator
// then performs the same activities without the policy engine, which shows what the engine costs.

#include <cstdint>
#include <string>
#include <vector>

#include "sim_backend/simulation.hpp"

namespace hearth::bench {

class CommandReplay final : public sim::SimCore, public ClusterEvents {
 public:
  // Ends once every command was issued and `finished_attempts` tasks finished.
  CommandReplay(Cluster& cluster, const std::vector<std::string>& log,
                std::uint64_t finished_attempts);

  ClusterEvents& events() override { return *this; }
  bool finished() const override;
  std::uint64_t inferences_done() const override { return 0; }
  double next_wakeup_s() const override;
  void wake_up() override;

  void worker_joined(const WorkerSpec&) override {}
  void preemption_notice(WorkerId, double) override {}
  void worker_lost(WorkerId) override {}
  void context_ready(WorkerId, ContextId, Tier) override {}
  void stage_failed(WorkerId, ContextId, Tier, std::string_view) override {}
  void task_finished(WorkerId, AttemptId, double) override { ++finished_; }
  void task_failed(WorkerId, AttemptId, std::string_view) override {}

 private:
  struct Command {
    enum class Kind : std::uint8_t { stage, evict, start, cancel };
    double at_s = 0;
    Kind kind = Kind::stage;
    WorkerId worker = 0;
    ContextId context = 0;
    Tier tier = Tier::disk;
    Source source;
    TaskSpec task;
  };
  static Command parse(const std::string& line);

  Cluster& cluster_;
  std::vector<Command> commands_;
  std::size_t next_ = 0;
  std::uint64_t finished_ = 0;
  std::uint64_t expected_finished_ = 0;
};

}  // namespace hearth::bench
