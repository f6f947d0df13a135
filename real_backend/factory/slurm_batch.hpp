#pragma once
// Slurm as a batch system for hearth's factory. A submission is one array job
// (`sbatch --array=0-N-1`), or N single jobs when arrays are off; each job runs
// WORK_DIR/slurm-worker.sh, which execs `hearth worker --name slurm-JOB` (JOB: 123_4 for an array
// task, 123 for a single job) with the settings' resources as sbatch options (--partition,
// --qos, --account, --gres, --cpus-per-task, --mem, --tmp, --time, then sbatch_args) and its
// output in WORK_DIR/logs/slurm-JOB.log. Jobs are watched with squeue and cancelled with scancel,
// always by id.

#include <memory>
#include <string>

#include "real_backend/factory/batch_settings.hpp"
#include "real_backend/factory/batch_system.hpp"

namespace hearth::real {

// `settings` with hearth, keys and work_dir set (absolute). `job_name` is sbatch's --job-name.
std::unique_ptr<BatchSystem> make_slurm(FactorySettings settings, std::string job_name,
                                        CommandRunner run);

}  // namespace hearth::real
