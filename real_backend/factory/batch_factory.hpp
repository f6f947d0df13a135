#pragma once
// The factory of `hearth run --factory slurm|htcondor|local`: keeps a run's pool of workers sized
// to its work (pool_sizing.hpp) by submitting `hearth worker` jobs to a batch system and
// withdrawing or cancelling them. A job the batch system preempts or kills is only a lost worker,
// which the manager handles as any other.
//
// At each tick it
//  - asks the batch system about its jobs every poll_interval_s; a job gone from its answer has
//    ended, and one held (HTCondor) is removed;
//  - submits min(target - jobs, submit_batch) more workers when it has fewer jobs than the target,
//    some inference waits, the last poll worked and submit_interval_s has passed since the last
//    submission; every job queued or running counts, so a queue that does not move is not flooded;
//  - withdraws queued jobs beyond the target, newest first; running ones are left to the manager.
// A job that ends before its worker joins is reported with its log; each submission in a row with
// such jobs doubles the submission interval (up to 32 times), and 10 such jobs in a row stop the
// run with an error. A worker that joins ends the row. A submission
// the batch system refuses is an error if it is the run's first (a wrong setting, most likely),
// else it is retried, and 3 refused in a row stop the run.
//
// Every job it holds is listed in `record` (rewritten as they change): stop() cancels them all,
// and start() cancels those a previous run left there when it was killed before it could.
//
// With `keys` set, each job gets a key of its own: issued before the submission (labelled
// SYSTEM-pending.PID.N.I, their files key_dir/sN/I.key), relabelled with the job's worker name
// (slurm-4242_3) once the batch system has named the jobs, and revoked, its file removed, when the
// job ends, is withdrawn, held or cancelled, or was never submitted. The record lists each job's
// key (and the keys of a submission under way), so that start() revokes a killed run's keys as it
// cancels its jobs, and removes their files.

#include <filesystem>
#include <functional>
#include <memory>

#include "policy/pool_sizing.hpp"
#include "real_backend/factory/batch_system.hpp"
#include "real_backend/factory/worker_factory.hpp"

namespace hearth::real {

struct BatchFactoryOptions {
  // What workers dial; empty: the manager's address, a wildcard host (0.0.0.0, [::]) replaced by
  // this machine's name.
  std::string manager_address;
  PoolLimits limits;
  int submit_batch = 10;
  double submit_interval_s = 10;
  double poll_interval_s = 5;
  std::filesystem::path record;     // the jobs that may still run, one per line; empty: none
  WorkerKeys keys;                  // issue_many, relabel, revoke; empty: the shared key
  std::filesystem::path key_dir;    // where jobs' key files go (mode 0700)
  std::function<double()> clock_s;  // seconds, for the intervals; empty: a steady clock
};

std::unique_ptr<WorkerFactory> make_batch_workers(std::unique_ptr<BatchSystem> system,
                                                  BatchFactoryOptions options);

// The factory of `hearth run --factory KIND` (kind "local", "slurm" or "htcondor"), from the job's
// [factory] settings with hearth, keys, work_dir and inferences_per_worker filled in, max_workers
// given. `job_name` names the jobs in the batch system's queue. With settings.per_job_keys, `keys`
// gives each job its own key (in work_dir/keys).
std::unique_ptr<WorkerFactory> make_factory(const std::string& kind,
                                            const FactorySettings& settings,
                                            const std::string& job_name, WorkerKeys keys);

// `address` ("host:port") with a wildcard host replaced by this machine's name.
std::string reachable_address(const std::string& address);

}  // namespace hearth::real
