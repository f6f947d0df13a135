#pragma once
// What the manager needs of a factory (whatever starts workers for a run), and how factories on
// this machine start a worker. The factories: local_workers.hpp (`hearth run --workers N` and
// `--trace FILE`) and batch_factory.hpp (Slurm, HTCondor, and processes here as a batch system).

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "os/process.hpp"
#include "policy/pool_sizing.hpp"

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
  // A worker that joined under this name is gone (left, lost, dropped or quarantined).
  virtual void worker_left(const std::string& /*name*/) {}
  // True when no worker will start again (a replayed trace ended) and none is running.
  virtual bool exhausted() const = 0;
  // Stops every worker it started: asks them, waits up to `wait_s`, then kills (or cancels) the
  // rest.
  virtual void stop(double wait_s) = 0;
};

// How a factory gives each worker a key of its own (real_backend/wire/key_registry.hpp). Empty:
// every worker dials with the shared key file.
struct WorkerKeys {
  // Writes one worker's credentials to `file`, labelled `label`; returns its public key.
  std::function<std::string(const std::string& label, const std::filesystem::path& file)> issue;
  // Issues `count` keys at once, labelled `label_prefix` + index, their files dir/0.key ...
  // dir/(count-1).key; returns their public keys in that order.
  std::function<std::vector<std::string>(const std::string& label_prefix, int count,
                                         const std::filesystem::path& dir)>
      issue_many;
  // Relabels keys (public key -> label).
  std::function<void(const std::map<std::string, std::string>& labels)> relabel;
  // Revokes these public keys, once their workers have ended.
  std::function<void(const std::vector<std::string>& public_keys)> revoke;
};

// `hearth worker` named `name`, dialing `manager` with the worker key file `keys`, its cache in
// work_dir/cache/name: what a factory on this machine starts, before its own arguments.
std::vector<std::string> local_worker_argv(const std::string& hearth, const std::string& manager,
                                           const std::filesystem::path& keys,
                                           const std::string& name,
                                           const std::filesystem::path& work_dir);

// How a factory on this machine starts `hearth worker`: killed when the manager dies, and with
// SIGTERM (a preemption notice) held until the worker can take it.
os::StartOptions worker_process();

}  // namespace hearth::real
