// HTCondor's commands as hearth's factory issues them, against a scripted runner: the exact
// submit description, the condor_submit, condor_q and condor_rm command lines, and how their
// answers are read.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_exception.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "real_backend/factory/htcondor_batch.hpp"
#include "tests/batch/scripted_runner.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth::real;
using namespace hearth::testing;
using Catch::Matchers::Equals;

namespace {

FactorySettings settings(const fs::path& dir) {
  FactorySettings s;
  s.hearth = "/shared/bin/hearth";
  s.keys = "/home/ann/job.state/keys/worker.key";
  s.work_dir = dir;
  return s;
}

}  // namespace

TEST_CASE("htcondor: one cluster per submission, `queue N`, with the settings as requests") {
  TempDir dir;
  FactorySettings s = settings(dir.path);
  s.gpus = 1;
  s.cpus = 2;
  s.memory_mb = 24000;
  s.disk_mb = 40000;
  s.time_limit_s = 7200;
  s.htcondor.requirements = "(GPUs_Capability >= 8.0)";
  s.htcondor.submit_lines = {"+ProjectName = \"llm-eval\"",
                             "accounting_group = group_opportunistic"};
  ScriptedRunner run;
  run.answer("condor_submit", {0, "311.0 - 311.2\n", ""});
  auto condor = make_htcondor(s, "hearth-claims", run.runner());
  condor->prepare("submit1.cluster:7700");
  CHECK(condor->submit(3) == std::vector<std::string>{"311.0", "311.1", "311.2"});
  fs::path description = dir / "htcondor-worker.sub";
  CHECK(run.calls ==
        std::vector<std::vector<std::string>>{{"condor_submit", "-terse", description.string()}});
  CHECK(read_file(description) ==
        "# hearth workers, submitted to HTCondor by `hearth run`\n"
        "universe = vanilla\n"
        "executable = " +
            (dir / "htcondor-worker.sh").string() +
            "\n"
            "arguments = $(ClusterId).$(ProcId)\n"
            "initialdir = " +
            dir.path.string() +
            "\n"
            "batch_name = hearth-claims\n"
            "output = logs/condor-$(ClusterId).$(ProcId).out\n"
            "error = logs/condor-$(ClusterId).$(ProcId).err\n"
            "log = logs/condor.log\n"
            "should_transfer_files = YES\n"
            "when_to_transfer_output = ON_EXIT_OR_EVICT\n"
            "transfer_input_files = /home/ann/job.state/keys/worker.key\n"
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
  CHECK(condor->log_of("311.2") == (dir / "logs/condor-311.2.err").string());
}

TEST_CASE("htcondor: the job's worker reads the transferred key and caches in its scratch dir") {
  TempDir dir;
  ScriptedRunner run;
  auto condor = make_htcondor(settings(dir.path), "hearth-x", run.runner());
  condor->prepare("submit1:7700");
  CHECK(read_file(dir / "htcondor-worker.sh") ==
        "#!/bin/sh\n"
        "# A hearth worker, submitted to HTCondor by `hearth run`.\n"
        "job=\"$1\"  # CLUSTER.PROC\n"
        "exec /shared/bin/hearth worker --manager submit1:7700 --keys worker.key --name "
        "condor-\"$job\" --cache \"${_CONDOR_SCRATCH_DIR:-${TMPDIR:-/tmp}}/hearth-cache\"\n");
}

TEST_CASE("htcondor: without transfer_keys the worker reads the key where the settings say") {
  TempDir dir;
  FactorySettings s = settings(dir.path);
  s.htcondor.transfer_keys = false;
  s.cache = "/scratch/hearth";
  ScriptedRunner run;
  run.answer("condor_submit", {0, "5.0 - 5.0\n", ""});
  auto condor = make_htcondor(s, "hearth-x", run.runner());
  condor->prepare("submit1:7700");
  CHECK(condor->submit(1) == std::vector<std::string>{"5.0"});
  CHECK(read_file(dir / "htcondor-worker.sh")
            .find("--keys /home/ann/job.state/keys/worker.key --name condor-\"$job\" --cache "
                  "\"/scratch/hearth\"\n") != std::string::npos);
  CHECK(read_file(dir / "htcondor-worker.sub").find("transfer_input_files") == std::string::npos);
}

TEST_CASE("htcondor: a refused condor_submit is an error carrying its message") {
  TempDir dir;
  ScriptedRunner run;
  run.answer("condor_submit", {1, "", "\nERROR: Can't find address of local schedd\n"});
  run.answer("condor_submit", {0, "Submitting job(s).\n", ""});
  auto condor = make_htcondor(settings(dir.path), "hearth-x", run.runner());
  condor->prepare("m:1");
  CHECK_THROWS_MATCHES(condor->submit(2), BatchError,
                       Catch::Matchers::MessageMatches(
                           Equals("condor_submit refused the workers: ERROR: Can't find address of "
                                  "local schedd\n  the command: condor_submit -terse " +
                                  (dir / "htcondor-worker.sub").string())));
  CHECK_THROWS_MATCHES(
      condor->submit(2), BatchError,
      Catch::Matchers::MessageMatches(Equals("condor_submit printed \"Submitting job(s).\", "
                                             "not job ids")));
}

TEST_CASE("htcondor: condor_q's answer gives each job's state; a held job carries its reason") {
  TempDir dir;
  ScriptedRunner run;
  run.answer("condor_q", {0,
                          "311.0 2 undefined\n"
                          "311.1 1 undefined\n"
                          "311.2 5 Error from slot1_2@node7: Failed to open 'worker.key'\n"
                          "311.3 4 undefined\n"
                          "312.0 6 undefined\n"
                          "312.1 7 undefined\n"
                          "312.2 3 undefined\n"
                          "999.0 2 undefined\n",
                          ""});
  run.answer("condor_q", {1, "", "-- Failed to fetch ads from: <127.0.0.1:9618> : submit1\n"});
  auto condor = make_htcondor(settings(dir.path), "hearth-x", run.runner());
  auto alive = condor->poll({"311.0", "311.1", "311.2", "311.3", "312.0", "312.1", "312.2"});
  CHECK(run.calls[0] == std::vector<std::string>{"condor_q", "311", "312", "-af:j",
                                                 "BatchJobStatus", "HoldReason"});
  REQUIRE(alive.size() == 5);
  CHECK(alive.at("311.0").state == BatchJobState::running);
  CHECK(alive.at("311.1").state == BatchJobState::queued);
  CHECK(alive.at("311.2").state == BatchJobState::held);
  CHECK(alive.at("311.2").reason == "Error from slot1_2@node7: Failed to open 'worker.key'");
  CHECK(alive.at("312.0").state == BatchJobState::running);  // transferring its output
  CHECK(alive.at("312.1").state == BatchJobState::running);  // suspended
  CHECK_THROWS_MATCHES(condor->poll({"311.0"}), BatchError,
                       Catch::Matchers::MessageMatches(Equals(
                           "condor_q failed: -- Failed to fetch ads from: <127.0.0.1:9618> : "
                           "submit1")));
}

TEST_CASE("htcondor: condor_rm names the jobs, never a user") {
  TempDir dir;
  ScriptedRunner run;
  run.answer("condor_rm", {0, "", ""});
  auto condor = make_htcondor(settings(dir.path), "hearth-x", run.runner());
  condor->cancel({"311.0", "312.1"});
  CHECK(run.calls == std::vector<std::vector<std::string>>{{"condor_rm", "311.0", "312.1"}});
}
