// `hearth run --factory local`: the batch factory's pool sizing with worker processes on this
// machine, no batch system needed. Workers are killed under it; every input must still come out
// exactly once.

#include <catch2/catch_test_macros.hpp>

#include "tests/real/hearth_process.hpp"

using namespace hearth::testing;

namespace {

// A 2,000-prompt classification with the built-in model, with `factory` as its [factory] table.
fs::path write_job(const TempDir& dir, const std::string& factory) {
  REQUIRE(exit_status(start_hearth({"model", "builtin", (dir / "tiny.pt").string()},
                                   dir / "model.log")) == 0);
  write_prompts(dir / "prompts.jsonl", 2000);
  write_file(dir / "job.toml", R"(output = "out.jsonl"
[policy]
batch_size = 20
[[contexts]]
name = "verdict"
model = "tiny.pt"
dataset = "prompts.jsonl"
template = "Claim: {prompt}\nVerdict:"
labels = ["SUPPORTS", "REFUTES"]
label_tokens = ["S", "R"]
)" + factory);
  return dir / "job.toml";
}

}  // namespace

TEST_CASE("the local factory keeps max_workers running, replaces killed ones, loses nothing") {
  TempDir dir;
  write_job(dir,
            "[factory]\nkind = \"slurm\"\nmax_workers = 3\nsubmit_interval_s = 0.2\n"
            "poll_interval_s = 0.2\n");
  fs::path db = dir / "job.state/results.db";
  // --factory overrides the job's kind.
  pid_t manager =
      start_hearth({"run", (dir / "job.toml").string(), "--factory", "local"}, dir / "run.log");
  REQUIRE(wait_for([&] { return recorded_rows(db) >= 300; }, 60));
  std::size_t most = 0;
  std::vector<pid_t> workers = children_of(manager);
  REQUIRE(workers.size() == 3);
  kill(workers[0], SIGKILL);
  kill(workers[1], SIGKILL);
  int status = -1;
  while (waitpid(manager, &status, WNOHANG) == 0) {
    most = std::max(most, children_of(manager).size());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(most <= 3);
  CHECK(ids_once(dir / "out.jsonl") == prompt_ids(2000));
  std::string log = read_file(dir / "run.log");
  CHECK(log.find("asked local for 3 workers: job local-0 ... local-2") != std::string::npos);
  CHECK(log.find("(local-3) joined") != std::string::npos);
  CHECK(log.find("(local-4) joined") != std::string::npos);
  CHECK(log.find("(local-5)") == std::string::npos);
}

TEST_CASE("a factory without max_workers stops hearth run with status 2, naming the job file") {
  TempDir dir;
  fs::path job = write_noop_job(dir.path, 10, 5);
  pid_t run = start_hearth({"run", job.string(), "--factory", "slurm"}, dir / "run.log");
  CHECK(exit_status(run) == 2);
  CHECK(read_file(dir / "run.log")
            .find("hearth: " + job.string() +
                  ": --factory slurm needs max_workers in [factory]\n") != std::string::npos);
}
