// The [factory] table of a job file: what each key means, the defaults, and every mistake
// reported at its line.

#include <catch2/catch_test_macros.hpp>

#include "real_backend/manager/job_file.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;

namespace {

const std::string kContext =
    "[[contexts]]\nname = \"a\"\nmodel = \"m\"\ndataset = \"d\"\ntask = \"noop\"\n";

}  // namespace

TEST_CASE("a [factory] table gives the batch system, the pool's limits and the resources") {
  TempDir dir;
  write_file(dir / "job.toml", kContext + R"toml([factory]
kind = "slurm"
min_workers = 2
max_workers = 40
inferences_per_worker = 5000
submit_batch = 20
submit_interval_s = 30
poll_interval_s = 15
manager = "login1.cluster:7700"
hearth = "bin/hearth"
per_job_keys = false
keys = "/shared/keys/worker.key"
work_dir = "batch"
cache = "$LOCAL_SCRATCH/hearth"
worker_args = ["--grace", "25"]
gpus = 1
cpus = 4
memory_mb = 32000
disk_mb = 50000
time_limit_s = 14400
[factory.slurm]
partition = "scavenger"
qos = "preemptible"
account = "lab"
gres = "gpu:a100:1"
array = false
sbatch_args = ["--constraint=a100"]
[factory.htcondor]
requirements = "(GPUs_Capability >= 8.0)"
submit_lines = ["+ProjectName = \"llm\""]
transfer_keys = false
)toml");
  FactorySettings f = read_job_file(dir / "job.toml").factory;
  CHECK(f.kind == "slurm");
  CHECK(f.min_workers == 2);
  CHECK(f.max_workers == 40);
  CHECK(f.inferences_per_worker == 5000);
  CHECK(f.submit_batch == 20);
  CHECK(f.submit_interval_s == 30);
  CHECK(f.poll_interval_s == 15);
  CHECK(f.manager == "login1.cluster:7700");
  CHECK(f.hearth == dir / "bin/hearth");  // relative to the job file
  CHECK(!f.per_job_keys);
  CHECK(f.keys == "/shared/keys/worker.key");
  CHECK(f.work_dir == dir / "batch");
  CHECK(f.cache == "$LOCAL_SCRATCH/hearth");
  CHECK(f.worker_args == std::vector<std::string>{"--grace", "25"});
  CHECK(f.gpus == 1);
  CHECK(f.cpus == 4);
  CHECK(f.memory_mb == 32000);
  CHECK(f.disk_mb == 50000);
  CHECK(f.time_limit_s == 14400);
  CHECK(f.slurm.partition == "scavenger");
  CHECK(f.slurm.qos == "preemptible");
  CHECK(f.slurm.account == "lab");
  CHECK(f.slurm.gres == "gpu:a100:1");
  CHECK(!f.slurm.array);
  CHECK(f.slurm.sbatch_args == std::vector<std::string>{"--constraint=a100"});
  CHECK(f.htcondor.requirements == "(GPUs_Capability >= 8.0)");
  CHECK(f.htcondor.submit_lines == std::vector<std::string>{"+ProjectName = \"llm\""});
  CHECK(!f.htcondor.transfer_keys);
}

TEST_CASE("without a [factory] table, no factory runs and the defaults hold") {
  TempDir dir;
  write_file(dir / "job.toml", kContext);
  FactorySettings f = read_job_file(dir / "job.toml").factory;
  CHECK(f.kind.empty());
  CHECK(f.min_workers == 0);
  CHECK(f.max_workers == 0);
  CHECK(f.inferences_per_worker == 0);  // the policy's batch_size
  CHECK(f.submit_batch == 10);
  CHECK(f.submit_interval_s == 10);
  CHECK(f.poll_interval_s == 5);
  CHECK(f.hearth.empty());
  CHECK(f.per_job_keys);
  CHECK(f.keys.empty());
  CHECK(f.work_dir.empty());
  CHECK(f.cpus == 1);
  CHECK(f.gpus == 0);
  CHECK(f.slurm.array);
  CHECK(f.htcondor.transfer_keys);
}

TEST_CASE("mistakes in [factory] are reported with file and line") {
  TempDir dir;
  auto error_of = [&](const std::string& table) {
    return error_reading(dir / "job.toml", kContext + "[factory]\n" + table,
                         [](const fs::path& p) { read_job_file(p); });
  };
  // The table starts on line 6.
  CHECK(error_of("kind = \"pbs\"\n") == ":7: kind must be \"slurm\", \"htcondor\" or \"local\"");
  CHECK(error_of("max_worker = 3\n") == ":7: unknown key \"max_worker\" in [factory]");
  CHECK(error_of("max_workers = 0\n") == ":7: max_workers must be at least 1");
  CHECK(error_of("max_workers = 2.5\n") == ":7: max_workers must be a whole number");
  CHECK(error_of("max_workers = 2\nmin_workers = 3\n") ==
        ":8: min_workers 3 is more than max_workers 2");
  CHECK(error_of("submit_batch = 0\n") == ":7: submit_batch must be at least 1");
  CHECK(error_of("poll_interval_s = 0\n") == ":7: poll_interval_s must be at least 0.1");
  CHECK(error_of("memory_mb = \"16G\"\n") == ":7: memory_mb must be a whole number");
  CHECK(error_of("manager = \"login1\"\n") == ":7: manager must be host:port");
  CHECK(error_of("cache = \"/tmp/\\\"x\"\n") ==
        ":7: cache must not hold \", `, \\ or a newline (the job's shell expands it)");
  CHECK(error_of("keys = \"/shared/worker.key\"\n") ==
        ":7: keys names the shared worker key, which jobs use only with per_job_keys = false");
  CHECK(error_of("per_job_keys = 1\n") == ":7: per_job_keys must be true or false");
  CHECK(error_of("worker_args = \"--grace 5\"\n") == ":7: worker_args must be an array of strings");
  CHECK(error_of("[factory.slurm]\npartition = \"a b\"\n") == ":8: partition must be one word");
  CHECK(error_of("[factory.slurm]\narray = \"yes\"\n") == ":8: array must be true or false");
  CHECK(error_of("[factory.slurm]\nnodes = 2\n") == ":8: unknown key \"nodes\" in [factory.slurm]");
  CHECK(error_of("[factory.htcondor]\nrequirements = \"\"\"a\nb\"\"\"\n") ==
        ":8: requirements must be one line");
  CHECK(error_of("[factory.htcondor]\nsubmit_lines = [\"a\\nqueue 100\"]\n") ==
        ":8: submit_lines must be one line");
}

TEST_CASE("the sample job files in docs/examples are valid and ask for what the docs say") {
  fs::path examples = fs::path(HEARTH_SOURCE_DIR) / "docs/examples";
  JobFile slurm = read_job_file(examples / "slurm-job.toml");
  CHECK(slurm.factory.kind == "slurm");
  CHECK(slurm.factory.max_workers == 64);
  CHECK(slurm.factory.slurm.partition == "scavenger");
  CHECK(slurm.factory.slurm.sbatch_args == std::vector<std::string>{"--requeue"});
  JobFile condor = read_job_file(examples / "htcondor-job.toml");
  CHECK(condor.factory.kind == "htcondor");
  CHECK(condor.factory.gpus == 1);
  CHECK(condor.factory.htcondor.requirements ==
        "(GPUs_GlobalMemoryMb >= 40000) && (OpSys == \"LINUX\")");
  CHECK(condor.factory.htcondor.submit_lines ==
        std::vector<std::string>{"+ProjectName = \"llm-eval\"",
                                 "accounting_group = group_opportunistic.llm"});
}
