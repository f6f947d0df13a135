// hearth on a real (one-node) Slurm: workers started by sbatch, preempted by scancel, killed, and
// preempted by a higher-priority partition; the manager interrupted and killed. Every input must
// come out exactly once, and no job may outlive its run.
//
// Needs the Slurm that ctest's slurm fixture starts (scripts/slurm-local, SLURM_CONF set): its
// default partition `scavenger` is preempted by jobs in `owner`. Hidden from plain runs ([.]);
// `test_batch [slurm]` runs them.

#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cstdlib>

#include "real_backend/factory/batch_system.hpp"
#include "real_backend/wire/key_registry.hpp"
#include "tests/real/hearth_process.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;

namespace {

void require_slurm() {
  const char* conf = std::getenv("SLURM_CONF");
  if (!conf || !fs::exists(conf)) {
    FAIL(
        "SLURM_CONF does not name a slurm.conf: run this through ctest, whose slurm fixture "
        "starts a one-node Slurm (scripts/slurm-local, as root)");
  }
  CommandResult r = run_command({"sinfo", "-h", "-o", "%T"}, 10);
  if (r.status != 0) FAIL("sinfo failed: " << complaint(r));
}

// `squeue` for the jobs named `name`: id -> state (PENDING, RUNNING, ...).
std::map<std::string, std::string> jobs_named(const std::string& name) {
  CommandResult r =
      run_command({"squeue", "--noheader", "--array", "--name=" + name, "--format=%i %T"}, 10);
  REQUIRE(r.status == 0);
  std::map<std::string, std::string> jobs;
  std::istringstream lines(r.out);
  for (std::string id, state; lines >> id >> state;)
    jobs[id] = state;
  return jobs;
}

std::set<std::string> running(const std::map<std::string, std::string>& jobs) {
  std::set<std::string> ids;
  for (const auto& [id, state] : jobs) {
    if (state == "RUNNING") ids.insert(id);
  }
  return ids;
}

// Jobs that ignore SIGTERM (a worker waiting at the gate, say) end KillWait (10 s) after it.
bool gone(const std::string& name) {
  return wait_for([&] { return jobs_named(name).empty(); }, 60);
}

// Checks that every job dialed with a key of its own, labelled with its worker's name
// (slurm-JOB), and that none is active now: each was revoked when its job ended or was cancelled.
void each_job_had_its_own_key(const fs::path& state, std::size_t at_least) {
  std::vector<KeyEntry> keys = read_key_registry(state / "keys/registry");
  std::size_t per_job = 0;
  for (const KeyEntry& k : keys) {
    if (k.label.starts_with("slurm-") && k.label.find("pending") == std::string::npos) ++per_job;
    if (k.label != "shared") CHECK(k.revoked);
  }
  CHECK(per_job >= at_least);
  CHECK((!fs::exists(state / "batch/keys") || fs::is_empty(state / "batch/keys")));
}

// `prompts` claims for the built-in model in <stem>.toml, and a [factory] asking Slurm for 3
// workers with a GPU each, named "hearth-<stem>"; its runs' workers infer behind a gate, closed
// until the test opens it.
struct GatedJob {
  GatedJob(const std::string& stem, int prompts) {
    require_slurm();
    file = write_classify_job(dir / (stem + ".toml"), prompts, 20, R"([factory]
kind = "slurm"
max_workers = 3
submit_interval_s = 1
poll_interval_s = 0.5
gpus = 1
memory_mb = 400
time_limit_s = 600
worker_args = ["--grace", "3"]
)");
  }
  // Starts `hearth run` on it, logging to `log` in its directory.
  pid_t run(const std::string& log) {
    return start_hearth({"run", file.string()}, dir / log, behind(gate));
  }

  TempDir dir;
  fs::path file;
  Gate gate{dir / "gate"};
};

}  // namespace

TEST_CASE("Slurm workers preempted by scancel, killed, or by an owner's job lose no input",
          "[.][slurm][preempted]") {
  GatedJob job("preempted", 6000);
  // 300 inferences, then none until the owner's job has preempted the pool: the run cannot end
  // before.
  job.gate.allow(300);
  pid_t manager = job.run("run.log");
  REQUIRE(wait_for([&] { return running(jobs_named("hearth-preempted")).size() == 3; }, 60));
  REQUIRE(wait_for([&] { return job.gate.used() == 300; }, 60));

  // scancel: SIGTERM, a preemption notice the worker announces; scancel -s KILL: gone at once.
  std::set<std::string> first = running(jobs_named("hearth-preempted"));
  // A job runs before its worker has joined; the notice is the manager's to hear. (Two quick
  // workers may use the gate's 300 inferences before the third has joined.)
  REQUIRE(wait_for(
      [&] {
        std::string log = read_file(job.dir / "run.log");
        return std::all_of(first.begin(), first.end(), [&](const std::string& id) {
          return log.find("(slurm-" + id + ") joined") != std::string::npos;
        });
      },
      60));
  auto it = first.begin();
  std::string noticed = *it++, killed = *it++;
  REQUIRE(run_command({"scancel", noticed}).status == 0);
  REQUIRE(run_command({"scancel", "--signal=KILL", killed}).status == 0);
  // Two jobs take their place: the three the owner's job will preempt.
  std::set<std::string> before_owner;
  REQUIRE(wait_for(
      [&] {
        before_owner = running(jobs_named("hearth-preempted"));
        return before_owner.size() == 3 && !before_owner.count(noticed) &&
               !before_owner.count(killed);
      },
      60));

  // An owner's job in the higher-priority partition preempts every scavenger job; the factory's
  // replacements wait in the queue meanwhile, never more than the pool's 3.
  CommandResult owner =
      run_command({"sbatch", "--parsable", "--partition=owner", "--exclusive", "--job-name=owner",
                   "--output=" + (job.dir / "owner.log").string(), "--wrap", "sleep 4"});
  REQUIRE(owner.status == 0);  // Slurm may preempt at once: the pool was read before
  std::size_t most_jobs = 0;
  auto count_pool = [&] {
    // Jobs ending (COMPLETING) hold nothing any more; the others are the pool.
    auto jobs = jobs_named("hearth-preempted");
    std::erase_if(jobs, [](const auto& job) { return job.second == "COMPLETING"; });
    most_jobs = std::max(most_jobs, jobs.size());
  };
  REQUIRE(wait_for(
      [&] {
        count_pool();
        return !running(jobs_named("owner")).empty();
      },
      120));
  job.gate.open();
  while (still_running(manager)) {
    count_pool();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  CHECK(exit_status(manager) == 0);
  CHECK(most_jobs <= 3);

  CHECK(ids_once(job.dir / "out.jsonl") == prompt_ids(6000));
  std::string log = read_file(job.dir / "run.log");
  CHECK(log.find("(slurm-" + noticed + ") will leave within 3.0 s") != std::string::npos);
  // A job's key outlives the job until its worker has left: none was cut off by its revocation.
  CHECK(log.find("was revoked") == std::string::npos);
  // The owner's job came before the end: Slurm preempted all three.
  for (const std::string& id : before_owner) {
    CHECK(read_file(job.dir / ("preempted.state/batch/logs/slurm-" + id + ".log"))
              .find("PREEMPTION") != std::string::npos);
  }
  CHECK(gone("hearth-preempted"));
  // 3, the 2 that replaced the cancelled ones, and at least one after the owner's job.
  each_job_had_its_own_key(job.dir / "preempted.state", 6);
}

TEST_CASE("an interrupted run cancels its Slurm jobs, and a killed run's are cancelled by the next",
          "[.][slurm][interrupted]") {
  GatedJob job("interrupted", 3000);
  // Each run is stopped after 100 more inferences, the rest waiting at the gate.
  // Ctrl-C: status 3, and none of its jobs is left.
  job.gate.allow(100);
  pid_t manager = job.run("run1.log");
  REQUIRE(wait_for([&] { return job.gate.used() == 100; }, 60));
  kill(manager, SIGINT);
  CHECK(exit_status(manager) == 3);
  job.gate.open();  // its workers, told to stop, may end their inference and leave
  CHECK(gone("hearth-interrupted"));

  // kill -9: the jobs stay, dialing a manager that is gone...
  std::uint64_t allowed = job.gate.used() + 100;
  job.gate.allow(allowed);
  manager = job.run("run2.log");
  REQUIRE(wait_for([&] { return job.gate.used() == allowed; }, 60));
  REQUIRE(wait_for([&] { return jobs_named("hearth-interrupted").size() == 3; }, 20));
  kill(manager, SIGKILL);
  CHECK(exit_status(manager) == 128 + SIGKILL);
  std::map<std::string, std::string> left = jobs_named("hearth-interrupted");
  CHECK(left.size() == 3);

  // ...until the next run cancels them, then finishes the job.
  job.gate.open();
  manager = job.run("run3.log");
  REQUIRE(wait_for(
      [&] {
        auto now = jobs_named("hearth-interrupted");
        return std::none_of(left.begin(), left.end(),
                            [&](const auto& j) { return now.count(j.first); });
      },
      30));
  CHECK(exit_status(manager) == 0);
  CHECK(read_file(job.dir / "run3.log").find("cancelling 3 slurm jobs left by an earlier run") !=
        std::string::npos);
  CHECK(read_file(job.dir / "run3.log").find("revoking 3 keys of jobs left by an earlier run") !=
        std::string::npos);
  CHECK(ids_once(job.dir / "out.jsonl") == prompt_ids(3000));
  CHECK(gone("hearth-interrupted"));
  // 3 in each of the first two runs, and at least one in the last.
  each_job_had_its_own_key(job.dir / "interrupted.state", 7);
}
