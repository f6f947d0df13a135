#pragma once
// The [factory] table of a job file: which batch system `hearth run` asks for workers, how many,
// and with what resources. docs/batch-systems.md describes every key.
//
//   [factory]
//   kind = "slurm"              # or "htcondor", "local"; hearth run --factory overrides
//   min_workers = 0
//   max_workers = 20
//   gpus = 1
//   memory_mb = 32000
//   [factory.slurm]
//   partition = "scavenger"
//   [factory.htcondor]
//   requirements = "CUDACapability >= 8.0"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hearth::real {

struct SlurmSettings {
  std::string partition;
  std::string qos;
  std::string account;
  std::string gres;                      // empty: "gpu:N" when gpus > 0
  bool array = true;                     // one array job per submission; false: one job each
  std::vector<std::string> sbatch_args;  // added after hearth's own sbatch options
};

struct HTCondorSettings {
  std::string requirements;
  std::vector<std::string> submit_lines;  // added to the submit description before `queue`
  bool transfer_keys = true;              // send worker.key with each job (else: shared path)
};

struct FactorySettings {
  std::string kind;  // "local", "slurm", "htcondor"; empty: none unless hearth run --factory
  int min_workers = 0;
  int max_workers = 0;                      // 0: not given; every factory needs it
  std::uint64_t inferences_per_worker = 0;  // 0: the policy's batch_size
  int submit_batch = 10;                    // the most workers asked for in one submission
  double submit_interval_s = 10;            // the least time between submissions
  double poll_interval_s = 5;               // how often the batch system is asked about its jobs
  std::string manager;                      // host:port workers dial; empty: hearth run's address
  std::filesystem::path hearth;             // the executable as nodes see it; empty: this one
  bool per_job_keys = true;                 // each job its own key, revoked when it ends
  std::filesystem::path
      keys;  // shared worker.key as nodes see it (per_job_keys off); empty: state's
  std::filesystem::path work_dir;  // job scripts and logs; empty: STATE/batch
  std::string cache;  // the worker's --cache, expanded by the job's shell; empty: its default
  std::vector<std::string> worker_args;  // more `hearth worker` arguments
  int gpus = 0;
  int cpus = 1;
  std::uint64_t memory_mb = 0;  // 0: the batch system's default
  std::uint64_t disk_mb = 0;    // 0: the batch system's default
  double time_limit_s = 0;      // 0: the batch system's default
  SlurmSettings slurm;
  HTCondorSettings htcondor;
};

}  // namespace hearth::real
