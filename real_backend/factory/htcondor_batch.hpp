#pragma once
// HTCondor as a batch system for hearth's factory. A submission is one cluster: the submit
// description WORK_DIR/htcondor-worker.sub (universe vanilla, request_cpus/memory/disk/gpus,
// requirements, allowed_job_duration, then submit_lines) ending in `queue N`, given to
// `condor_submit -terse`. Each job runs WORK_DIR/htcondor-worker.sh, which execs
// `hearth worker --name condor-CLUSTER.PROC` with its cache in the job's scratch directory;
// worker.key travels with the job unless transfer_keys is off. Jobs are watched with condor_q and
// removed with condor_rm, by id. An eviction (condor_vacate_job, a preempting owner) sends the
// worker SIGTERM, a preemption notice, and puts the job back in the queue.

#include <memory>
#include <string>

#include "real_backend/factory/batch_settings.hpp"
#include "real_backend/factory/batch_system.hpp"

namespace hearth::real {

// `settings` with hearth, keys and work_dir set (absolute). `batch_name` groups the jobs in
// condor_q.
std::unique_ptr<BatchSystem> make_htcondor(FactorySettings settings, std::string batch_name,
                                           CommandRunner run);

}  // namespace hearth::real
