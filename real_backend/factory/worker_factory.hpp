#pragma once
// What the manager needs of a factory (whatever starts workers for a run), and worker processes
// on this machine, for `hearth run --workers N` and `--trace FILE`: N workers kept alive (one that
// dies is started again), and workers started and killed as an availability trace says, its time
// scaled, so that churn can be replayed on one machine. Factories that submit workers to a batch
// system (Slurm, HTCondor) are in batch_factory.hpp.

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/pool_sizing.hpp"
#include "traces/trace.hpp"

namespace hearth::real {

// What the manager's loop needs of a factory.
class WorkerFactory {
 public:
  virtual ~WorkerFactory() = default;
  // Called once, with the address workers must dial ("host:port").
  virtual void start(const std::string& manager_address) = 0;
  // Called often, with the work the core still has: starts, asks for or cancels workers as due,
  // reaps local processes that ended and returns their pids.
  virtual std::vector<pid_t> tick(const PoolStatus& pool) = 0;
  // A worker joined the manager under this name.
  virtual void worker_joined(const std::string& /*name*/) {}
  // True when no worker will start again (a replayed trace ended) and none is running.
  virtual bool exhausted() const = 0;
  // Stops every worker it started: asks them, waits up to `wait_s`, then kills (or cancels) the
  // rest.
  virtual void stop(double wait_s) = 0;
};

// `hearth worker` named `name`, dialing `manager` with the worker key file `keys`, its cache in
// work_dir/cache/name: what a factory on this machine starts, before its own arguments.
std::vector<std::string> local_worker_argv(const std::string& hearth, const std::string& manager,
                                           const std::filesystem::path& keys,
                                           const std::string& name,
                                           const std::filesystem::path& work_dir);

struct LocalWorkersOptions {
  std::string executable;  // the hearth binary
  std::filesystem::path keys_file;
  std::filesystem::path work_dir;  // caches and logs go under it
  int workers = 0;                 // kept alive throughout
  std::optional<traces::Trace> trace;
  double time_scale = 1.0;              // real seconds per trace second
  std::vector<std::string> extra_args;  // passed to every `hearth worker`
};

// Starts workers as `hearth worker` child processes, which die with the manager (PDEATHSIG).
// A trace's down kills the worker with SIGKILL; a notice sends SIGTERM carrying the grace period
// (sigqueue), which the worker announces to the manager. The trace's time 0 is its first event.
std::unique_ptr<WorkerFactory> make_local_workers(LocalWorkersOptions options);

}  // namespace hearth::real
