#include "sim_backend/simulation.hpp"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>
#include <simgrid/s4u.hpp>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "policy/errors.hpp"
#include "policy/wired_engine.hpp"
#include "sim_backend/lower_bound.hpp"
#include "sim_backend/result_codec.hpp"
#include "sim_backend/sim_cluster.hpp"

namespace hearth::sim {

namespace {

// The policy engine as the simulator's core, optionally with its traffic logged.
class EngineCore final : public SimCore {
 public:
  EngineCore(Cluster& cluster, const Scenario& s, bool record_logs)
      : core_(cluster, s.workload, engine_config(s), wiring(record_logs)) {}

  ClusterEvents& events() override { return core_.events(); }
  bool finished() const override { return core_.engine().finished(); }
  std::uint64_t inferences_done() const override { return core_.engine().stats().inferences_done; }

  void fill(Summary& s) const override {
    const EngineStats& e = core_.engine().stats();
    s.inferences_done = e.inferences_done;
    s.tasks_done = e.tasks_done;
    s.attempts = e.attempts;
    s.backups = e.backups;
    s.tasks_requeued = e.tasks_requeued;
    s.preemptions = e.preemptions;
    s.notices = e.notices;
    s.stage_failures = e.stage_failures;
    s.evictions = e.evictions;
    s.context_loads = e.context_loads;
    if (e.finished_s >= 0) s.makespan_s = e.finished_s;
  }
  std::vector<std::string> event_log() const override { return core_.event_lines(); }
  std::vector<std::string> command_log() const override { return core_.command_lines(); }

 private:
  static Wiring wiring(bool record_logs) {
    Wiring w;
    w.record = record_logs;
    return w;
  }
  WiredEngine core_;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

SimResult run_here(const Scenario& scenario, const SimOptions& options,
                   const CoreFactory& make_core) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<PlannedWorker> plan = plan_workers(scenario);
  // SimGrid allows one engine per process and its teardown is of no use here: it is never freed.
  static char program[] = "hearth-simulate";
  static char quiet[] = "--log=root.thres:critical";
  static char* argv[] = {program, quiet, nullptr};
  int argc = 2;
  auto* engine = new simgrid::s4u::Engine(&argc, argv);
  Platform platform = build_platform(plan);
  SimCluster cluster(scenario, platform, plan);
  std::unique_ptr<SimCore> core = make_core(cluster, scenario);
  simgrid::s4u::Actor::create("manager", platform.manager,
                              [&] { cluster.run(*core, options.progress); });
  const double setup_s = seconds_since(t0);
  auto t1 = std::chrono::steady_clock::now();
  engine->run();
  const double run_s = seconds_since(t1);

  SimResult r;
  cluster.fill(r);
  core->fill(r.summary);
  Summary& s = r.summary;
  s.scenario = scenario.name;
  s.placement = scenario.policies.placement;
  s.eviction = scenario.policies.eviction;
  s.granularity = scenario.policies.granularity;
  s.replication = scenario.policies.replication;
  s.batch_size = scenario.policies.batch_size;
  s.seed = scenario.seed;
  s.detection_delay_s = scenario.detection_delay_s;
  s.inferences_total = scenario.workload.total_inferences();
  s.lower_bound_s = lower_bound_s(scenario);
  s.wall_s = run_s;
  s.setup_wall_s = setup_s;
  r.event_log = core->event_log();
  r.command_log = core->command_log();
  return r;
}

void write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

std::string read_all(int fd) {
  std::string bytes;
  char buffer[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes.append(buffer, static_cast<std::size_t>(n));
  }
  return bytes;
}

}  // namespace

EngineConfig engine_config(const Scenario& s) {
  EngineConfig config;
  config.policies = s.policies;
  const GpuType& reference = s.cluster.reference();
  config.estimates.task_overhead_s = reference.per_batch_s;
  config.estimates.inference_s = reference.per_inference_s;
  config.estimates.shared_storage_Bps = s.cluster.shared_storage_Bps;
  return config;
}

std::unique_ptr<SimCore> make_engine_core(Cluster& cluster, const Scenario& scenario,
                                          bool record_logs) {
  return std::make_unique<EngineCore>(cluster, scenario, record_logs);
}

SimResult simulate(const Scenario& scenario, const SimOptions& options) {
  bool logs = options.record_logs;
  return simulate_with(scenario, options, [logs](Cluster& cluster, const Scenario& s) {
    return make_engine_core(cluster, s, logs);
  });
}

SimResult simulate_with(const Scenario& scenario, const SimOptions& options,
                        const CoreFactory& make_core) {
  // HEARTH_SIM_IN_PROCESS=1 does the same from outside, for debuggers and profilers.
  if (options.in_process || std::getenv("HEARTH_SIM_IN_PROCESS") != nullptr) {
    return run_here(scenario, options, make_core);
  }

  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
  std::fflush(nullptr);
  pid_t child = ::fork();
  if (child < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
  if (child == 0) {
    ::close(fds[0]);
    std::string bytes;
    try {
      bytes = encode_result(run_here(scenario, options, make_core));
    } catch (const std::exception& e) {
      bytes = encode_failure(e);
    }
    write_all(fds[1], bytes);
    std::fflush(nullptr);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string bytes = read_all(fds[0]);
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (bytes.empty()) {
    throw std::runtime_error(
        WIFSIGNALED(status)
            ? fmt::format("the simulation process died of signal {}", WTERMSIG(status))
            : fmt::format("the simulation process exited with status {} and no result",
                          WEXITSTATUS(status)));
  }
  return decode_result(bytes);
}

}  // namespace hearth::sim
