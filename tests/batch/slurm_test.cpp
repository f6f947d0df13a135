// Slurm's commands as hearth's factory issues them, against a scripted runner: the exact sbatch,
// squeue and scancel command lines, the job script, and how their answers are read.

#include <catch2/catch_test_macros.hpp>

#include "real_backend/factory/slurm_batch.hpp"
#include "tests/batch/batch_commands.hpp"

using namespace hearth::real;
using namespace hearth::testing;

namespace {

// How every worker's job script starts: $job is the job's id.
const std::string kScriptStart =
    "#!/bin/sh\n"
    "# A hearth worker, submitted to Slurm by `hearth run`.\n"
    "if [ -n \"${SLURM_ARRAY_JOB_ID:-}\" ]; then\n"
    "  job=\"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n"
    "else\n"
    "  job=\"$SLURM_JOB_ID\"\n"
    "fi\n";

}  // namespace

TEST_CASE("slurm: one array job per submission, with the settings as sbatch options") {
  BatchCommands batch(
      {.gpus = 1, .cpus = 4, .memory_mb = 32000, .disk_mb = 50000, .time_limit_s = 3601});
  batch.settings.slurm.partition = "scavenger";
  batch.settings.slurm.qos = "preemptible";
  batch.settings.slurm.account = "lab";
  batch.settings.slurm.sbatch_args = {"--constraint=a100", "--requeue"};
  batch.run.answer("sbatch", {0, "4242\n", ""});
  auto slurm = make_slurm(batch.settings, "hearth-claims", batch.run.runner());
  slurm->prepare("login1:7700");
  CHECK(slurm->submit(3, {}) == std::vector<std::string>{"4242_0", "4242_1", "4242_2"});
  std::string logs = (batch.dir / "logs").string();
  CHECK(batch.run.calls ==
        std::vector<std::vector<std::string>>{
            {"sbatch", "--parsable", "--job-name=hearth-claims", "--array=0-2",
             "--output=" + logs + "/slurm-%A_%a.log", "--chdir=" + batch.dir.path.string(),
             "--partition=scavenger", "--qos=preemptible", "--account=lab", "--gres=gpu:1",
             "--cpus-per-task=4", "--mem=32000", "--tmp=50000", "--time=61", "--constraint=a100",
             "--requeue", (batch.dir / "slurm-worker.sh").string()}});
  CHECK(slurm->worker_name("4242_1") == "slurm-4242_1");
  CHECK(slurm->log_of("4242_1") == logs + "/slurm-4242_1.log");
}

TEST_CASE("slurm: the job script names the worker after its job and execs it") {
  BatchCommands batch;
  batch.settings.cache = "$LOCAL_SCRATCH/hearth";
  batch.settings.worker_args = {"--grace", "25", "--gpu-type", "A100 80GB"};
  auto slurm = make_slurm(batch.settings, "hearth-claims", batch.run.runner());
  slurm->prepare("login1:7700");
  CHECK(read_file(batch.dir / "slurm-worker.sh") ==
        kScriptStart +
            "exec /shared/bin/hearth worker --manager login1:7700 --keys "
            "/shared/job.state/keys/worker.key --name slurm-\"$job\" --cache "
            "\"$LOCAL_SCRATCH/hearth\" --grace 25 --gpu-type 'A100 80GB'\n");
  CHECK((fs::status(batch.dir / "slurm-worker.sh").permissions() & fs::perms::owner_exec) !=
        fs::perms::none);
}

TEST_CASE("slurm: with keys per job, each job's script reads its own key from the submission's") {
  BatchCommands batch;
  batch.settings.per_job_keys = true;
  batch.run.answer("sbatch", {0, "4242\n", ""});
  auto slurm = make_slurm(batch.settings, "hearth-x", batch.run.runner());
  slurm->prepare("login1:7700");
  CHECK(read_file(batch.dir / "slurm-worker.sh") ==
        kScriptStart +
            "# Its own key: $1 holds one per job of the submission, named by array task or by $2.\n"
            "keys=\"$1/${SLURM_ARRAY_TASK_ID:-$2}.key\"\n"
            "exec /shared/bin/hearth worker --manager login1:7700 --keys \"$keys\" --name "
            "slurm-\"$job\"\n");
  // An array: task I reads DIR/I.key.
  CHECK(slurm->submit(2, batch.dir / "keys/s1") == std::vector<std::string>{"4242_0", "4242_1"});
  REQUIRE(batch.run.calls.size() == 1);
  CHECK(batch.run.calls[0].back() == (batch.dir / "keys/s1").string());
  CHECK(batch.run.calls[0].end()[-2] == (batch.dir / "slurm-worker.sh").string());
  // Single jobs: job I is told its index.
  batch.settings.slurm.array = false;
  batch.run.answer("sbatch", {0, "4243\n", ""});
  auto single = make_slurm(batch.settings, "hearth-x", batch.run.runner());
  single->prepare("login1:7700");
  CHECK(single->submit(2, batch.dir / "keys/s2") == std::vector<std::string>{"4242", "4243"});
  REQUIRE(batch.run.calls.size() == 3);
  for (int i : {0, 1}) {
    std::vector<std::string> tail(batch.run.calls[1 + i].end() - 3, batch.run.calls[1 + i].end());
    CHECK(tail == std::vector<std::string>{(batch.dir / "slurm-worker.sh").string(),
                                           (batch.dir / "keys/s2").string(), std::to_string(i)});
  }
}

TEST_CASE("slurm: without arrays, one sbatch per worker; gres as given") {
  BatchCommands batch;
  batch.settings.gpus = 2;
  batch.settings.slurm.gres = "gpu:a100:2";
  batch.settings.slurm.array = false;
  batch.run.answer("sbatch", {0, "77;cluster-b\n", ""});
  batch.run.answer("sbatch", {0, "78\n", ""});
  auto slurm = make_slurm(batch.settings, "hearth-x", batch.run.runner());
  slurm->prepare("m:1");
  CHECK(slurm->submit(2, {}) == std::vector<std::string>{"77", "78"});
  REQUIRE(batch.run.calls.size() == 2);
  CHECK(batch.run.calls[0] ==
        std::vector<std::string>{"sbatch", "--parsable", "--job-name=hearth-x",
                                 "--output=" + (batch.dir / "logs/slurm-%j.log").string(),
                                 "--chdir=" + batch.dir.path.string(), "--gres=gpu:a100:2",
                                 "--cpus-per-task=1", (batch.dir / "slurm-worker.sh").string()});
  CHECK(slurm->log_of("77") == (batch.dir / "logs/slurm-77.log").string());
}

TEST_CASE("slurm: a refused sbatch is an error carrying its message and the command") {
  BatchCommands batch;
  batch.run.answer("sbatch", {1, "", "sbatch: error: invalid partition specified: gpu-nope\n"});
  batch.run.answer("sbatch", {0, "Submitted batch job 12\n", ""});
  auto slurm = make_slurm(batch.settings, "hearth-x", batch.run.runner());
  slurm->prepare("m:1");
  CHECK(batch_error([&] { slurm->submit(2, {}); }) ==
        "sbatch refused the workers: sbatch: error: invalid partition specified: "
        "gpu-nope\n  the command: sbatch --parsable --job-name=hearth-x --array=0-1 "
        "--output=" +
            (batch.dir / "logs/slurm-%A_%a.log").string() + " --chdir=" + batch.dir.path.string() +
            " --cpus-per-task=1 " + (batch.dir / "slurm-worker.sh").string());
  CHECK(batch_error([&] { slurm->submit(1, {}); }) ==
        "sbatch printed \"Submitted batch job 12\", not a job id");
}

TEST_CASE("slurm: squeue's answer gives each job's state; jobs it does not list have ended") {
  BatchCommands batch;
  batch.run.answer("squeue", {0,
                              "4242_0 RUNNING\n"
                              "4242_1 PENDING\n"
                              "4242_2 COMPLETING\n"
                              "4242_7 RUNNING\n"  // not asked about
                              "4250 CONFIGURING\n"
                              "4251 REQUEUED\n",
                              ""});
  auto slurm = make_slurm(batch.settings, "hearth-x", batch.run.runner());
  auto alive = slurm->poll({"4242_0", "4242_1", "4242_2", "4242_3", "4250", "4251"});
  CHECK(batch.run.calls[0] == std::vector<std::string>{"squeue", "--noheader", "--array",
                                                       "--jobs=4242,4250,4251", "--format=%i %T"});
  REQUIRE(alive.size() == 4);
  CHECK(alive.at("4242_0").state == BatchJobState::running);
  CHECK(alive.at("4242_1").state == BatchJobState::queued);
  CHECK(alive.at("4250").state == BatchJobState::running);
  CHECK(alive.at("4251").state == BatchJobState::queued);
}

TEST_CASE("slurm: jobs squeue has forgotten have ended; any other squeue failure is an error") {
  BatchCommands batch;
  batch.run.answer("squeue", {1, "", "slurm_load_jobs error: Invalid job id specified\n"});
  batch.run.answer("squeue",
                   {1, "", "slurm_load_jobs error: Unable to contact slurm controller\n"});
  auto slurm = make_slurm(batch.settings, "hearth-x", batch.run.runner());
  CHECK(slurm->poll({"17_0"}).empty());
  CHECK(batch_error([&] { slurm->poll({"17_0"}); }) ==
        "squeue failed: slurm_load_jobs error: Unable to contact slurm controller");
}

TEST_CASE("slurm: scancel names the jobs, never a user") {
  BatchCommands batch;
  batch.run.answer("scancel", {0, "", ""});
  auto slurm = make_slurm(batch.settings, "hearth-x", batch.run.runner());
  slurm->cancel({"4242_1", "4250"});
  CHECK(batch.run.calls == std::vector<std::vector<std::string>>{{"scancel", "4242_1", "4250"}});
}
