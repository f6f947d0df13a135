#pragma once
// Worker processes on this machine, for `hearth run --workers N` and `--trace FILE`: N workers
// kept alive (one that dies is started again), and workers started and killed as an availability
// trace says, its time scaled, so that churn can be replayed on one machine.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "real_backend/factory/worker_factory.hpp"
#include "traces/trace.hpp"

namespace hearth::real {

struct LocalWorkersOptions {
  std::string executable;           // the hearth binary
  std::filesystem::path keys_file;  // the shared credentials, unless `keys` issues each its own
  WorkerKeys keys;                  // one key per worker process, revoked when it ends
  std::filesystem::path work_dir;   // caches and logs go under it
  int workers = 0;                  // kept alive throughout
  std::optional<traces::Trace> trace;
  double time_scale = 1.0;              // real seconds per trace second
  std::vector<std::string> extra_args;  // passed to every `hearth worker`
};

// Starts workers as `hearth worker` child processes, which die with the manager (PDEATHSIG).
// A trace's down kills the worker with SIGKILL; a notice sends SIGTERM carrying the grace period
// (sigqueue), which the worker announces to the manager. The trace's time 0 is its first event.
std::unique_ptr<WorkerFactory> make_local_workers(LocalWorkersOptions options);

}  // namespace hearth::real
