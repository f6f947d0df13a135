// HTCondor's commands as hearth's factory issues them, against a scripted runner: the exact
// submit description, the condor_submit, condor_q and condor_rm command lines, and how their
// answers are read.

#include <catch2/catch_test_macros.hpp>

#include "real_backend/factory/htcondor_batch.hpp"
#include "tests/batch/batch_commands.hpp"

using namespace hearth::real;
using namespace hearth::testing;

TEST_CASE("htcondor: one cluster per submission, `queue N`, with the settings as requests") {
  BatchCommands batch(
      {.gpus = 1, .cpus = 2, .memory_mb = 24000, .disk_mb = 40000, .time_limit_s = 7200});
  batch.settings.htcondor.requirements = "(GPUs_Capability >= 8.0)";
  batch.settings.htcondor.submit_lines = {"+ProjectName = \"llm-eval\"",
                                          "accounting_group = group_opportunistic"};
  batch.run.answer("condor_submit", {0, "311.0 - 311.2\n", ""});
  auto condor = make_htcondor(batch.settings, "hearth-claims", batch.run.runner());
  condor->prepare("submit1.cluster:7700");
  CHECK(condor->submit(3, {}) == std::vector<std::string>{"311.0", "311.1", "311.2"});
  fs::path description = batch.dir / "htcondor-worker.sub";
  CHECK(batch.run.calls ==
        std::vector<std::vector<std::string>>{{"condor_submit", "-terse", description.string()}});
  CHECK(read_file(description) ==
        "# hearth workers, submitted to HTCondor by `hearth run`\n"
        "universe = vanilla\n"
        "executable = " +
            (batch.dir / "htcondor-worker.sh").string() +
            "\n"
            "arguments = \"$(ClusterId).$(ProcId) worker.key\"\n"
            "initialdir = " +
            batch.dir.path.string() +
            "\n"
            "batch_name = hearth-claims\n"
            "output = logs/condor-$(ClusterId).$(ProcId).out\n"
            "error = logs/condor-$(ClusterId).$(ProcId).err\n"
            "log = logs/condor.log\n"
            "should_transfer_files = YES\n"
            "when_to_transfer_output = ON_EXIT_OR_EVICT\n"
            "transfer_input_files = /shared/job.state/keys/worker.key\n"
            "request_cpus = 2\n"
            "request_memory = 24000M\n"
            "request_disk = 40000M\n"
            "request_gpus = 1\n"
            "requirements = (GPUs_Capability >= 8.0)\n"
            "allowed_job_duration = 7200\n"
            "+ProjectName = \"llm-eval\"\n"
            "accounting_group = group_opportunistic\n"
            "queue 3\n");
  CHECK(condor->worker_name("311.2") == "condor-311.2");
  CHECK(condor->log_of("311.2") == (batch.dir / "logs/condor-311.2.err").string());
}

TEST_CASE("htcondor: the job's worker reads the transferred key and caches in its scratch dir") {
  BatchCommands batch;
  auto condor = make_htcondor(batch.settings, "hearth-x", batch.run.runner());
  condor->prepare("submit1:7700");
  CHECK(read_file(batch.dir / "htcondor-worker.sh") ==
        "#!/bin/sh\n"
        "# A hearth worker, submitted to HTCondor by `hearth run`.\n"
        "job=\"$1\"  # CLUSTER.PROC\n"
        "keys=\"$2\"  # its key file\n"
        "exec /shared/bin/hearth worker --manager submit1:7700 --keys \"$keys\" --name "
        "condor-\"$job\" --cache \"${_CONDOR_SCRATCH_DIR:-${TMPDIR:-/tmp}}/hearth-cache\"\n");
}

TEST_CASE("htcondor: without transfer_keys the worker reads the key where the settings say") {
  BatchCommands batch;
  batch.settings.htcondor.transfer_keys = false;
  batch.settings.cache = "/scratch/hearth";
  batch.run.answer("condor_submit", {0, "5.0 - 5.0\n", ""});
  auto condor = make_htcondor(batch.settings, "hearth-x", batch.run.runner());
  condor->prepare("submit1:7700");
  CHECK(condor->submit(1, {}) == std::vector<std::string>{"5.0"});
  CHECK(read_file(batch.dir / "htcondor-worker.sh")
            .find("--keys \"$keys\" --name condor-\"$job\" --cache \"/scratch/hearth\"\n") !=
        std::string::npos);
  std::string description = read_file(batch.dir / "htcondor-worker.sub");
  CHECK(description.find(
            "arguments = \"$(ClusterId).$(ProcId) /shared/job.state/keys/worker.key\"\n") !=
        std::string::npos);
  CHECK(description.find("transfer_input_files") == std::string::npos);
}

TEST_CASE("htcondor: with keys per job, job PROC gets the submission's PROC.key") {
  BatchCommands batch;
  batch.settings.per_job_keys = true;
  batch.run.answer("condor_submit", {0, "40.0 - 40.1\n", ""});
  auto condor = make_htcondor(batch.settings, "hearth-x", batch.run.runner());
  condor->prepare("submit1:7700");
  CHECK(condor->submit(2, batch.dir / "keys/s1") == std::vector<std::string>{"40.0", "40.1"});
  std::string description = read_file(batch.dir / "htcondor-worker.sub");
  // Transferred: the key lands in the job's scratch directory under its own name.
  CHECK(description.find("arguments = \"$(ClusterId).$(ProcId) $(ProcId).key\"\n") !=
        std::string::npos);
  CHECK(description.find("transfer_input_files = " + (batch.dir / "keys/s1").string() +
                         "/$(ProcId).key\n") != std::string::npos);

  // Read in place, the path quoted as condor_submit's arguments want it.
  batch.settings.htcondor.transfer_keys = false;
  auto in_place = make_htcondor(batch.settings, "hearth-x", batch.run.runner());
  in_place->prepare("submit1:7700");
  CHECK(in_place->submit(1, "/shared/it's here/s2") == std::vector<std::string>{"40.0", "40.1"});
  description = read_file(batch.dir / "htcondor-worker.sub");
  CHECK(description.find(
            "arguments = \"$(ClusterId).$(ProcId) '/shared/it''s here/s2/$(ProcId).key'\"\n") !=
        std::string::npos);
  CHECK(description.find("transfer_input_files") == std::string::npos);
}

TEST_CASE("htcondor: a refused condor_submit is an error carrying its message") {
  BatchCommands batch;
  batch.run.answer("condor_submit", {1, "", "\nERROR: Can't find address of local schedd\n"});
  batch.run.answer("condor_submit", {0, "Submitting job(s).\n", ""});
  auto condor = make_htcondor(batch.settings, "hearth-x", batch.run.runner());
  condor->prepare("m:1");
  CHECK(batch_error([&] { condor->submit(2, {}); }) ==
        "condor_submit refused the workers: ERROR: Can't find address of local schedd\n"
        "  the command: condor_submit -terse " +
            (batch.dir / "htcondor-worker.sub").string());
  CHECK(batch_error([&] { condor->submit(2, {}); }) ==
        "condor_submit printed \"Submitting job(s).\", not job ids");
}

TEST_CASE("htcondor: condor_q's answer gives each job's state; a held job carries its reason") {
  BatchCommands batch;
  batch.run.answer("condor_q", {0,
                                "311.0 2 undefined\n"
                                "311.1 1 undefined\n"
                                "311.2 5 Error from slot1_2@node7: Failed to open 'worker.key'\n"
                                "311.3 4 undefined\n"
                                "312.0 6 undefined\n"
                                "312.1 7 undefined\n"
                                "312.2 3 undefined\n"
                                "999.0 2 undefined\n",
                                ""});
  batch.run.answer("condor_q",
                   {1, "", "-- Failed to fetch ads from: <127.0.0.1:9618> : submit1\n"});
  auto condor = make_htcondor(batch.settings, "hearth-x", batch.run.runner());
  auto alive = condor->poll({"311.0", "311.1", "311.2", "311.3", "312.0", "312.1", "312.2"});
  CHECK(batch.run.calls[0] ==
        std::vector<std::string>{"condor_q", "311", "312", "-af:j", "JobStatus", "HoldReason"});
  REQUIRE(alive.size() == 5);
  CHECK(alive.at("311.0").state == BatchJobState::running);
  CHECK(alive.at("311.1").state == BatchJobState::queued);
  CHECK(alive.at("311.2").state == BatchJobState::held);
  CHECK(alive.at("311.2").reason == "Error from slot1_2@node7: Failed to open 'worker.key'");
  CHECK(alive.at("312.0").state == BatchJobState::running);  // transferring its output
  CHECK(alive.at("312.1").state == BatchJobState::running);  // suspended
  CHECK(batch_error([&] { condor->poll({"311.0"}); }) ==
        "condor_q failed: -- Failed to fetch ads from: <127.0.0.1:9618> : submit1");
}

TEST_CASE("htcondor: condor_rm names the jobs, never a user") {
  BatchCommands batch;
  batch.run.answer("condor_rm", {0, "", ""});
  auto condor = make_htcondor(batch.settings, "hearth-x", batch.run.runner());
  condor->cancel({"311.0", "312.1"});
  CHECK(batch.run.calls == std::vector<std::vector<std::string>>{{"condor_rm", "311.0", "312.1"}});
}
