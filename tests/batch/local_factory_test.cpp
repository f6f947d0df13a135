// `hearth run --factory local`: the batch factory's pool sizing with worker processes on this
// machine, no batch system needed. Workers are killed under it; every input must still come out
// exactly once.

#include <catch2/catch_test_macros.hpp>

#include "real_backend/wire/key_registry.hpp"
#include "tests/real/hearth_process.hpp"

using namespace hearth::testing;
using hearth::real::KeyEntry;
using hearth::real::read_key_registry;

TEST_CASE("the local factory keeps max_workers running, replaces killed ones, loses nothing") {
  TempDir dir;
  fs::path job = write_classify_job(dir / "job.toml", 2000, 20,
                                    "[factory]\nkind = \"slurm\"\nmax_workers = 3\n"
                                    "submit_interval_s = 0.2\npoll_interval_s = 0.2\n");
  // 300 inferences, then none until both replacements have joined: the run cannot end first.
  Gate gate(dir / "gate");
  gate.allow(300);
  fs::path log = dir / "run.log";
  // --factory overrides the job's kind.
  pid_t manager = start_hearth({"run", job.string(), "--factory", "local"}, log, behind(gate));
  for (const char* name : {"(local-0) joined: ", "(local-1) joined: ", "(local-2) joined: "})
    wait_for_log(log, name, manager);
  REQUIRE(wait_for([&] { return gate.used() == 300; }, 120));
  std::vector<pid_t> workers = children_of(manager);
  REQUIRE(workers.size() == 3);
  kill(workers[0], SIGKILL);
  kill(workers[1], SIGKILL);
  std::size_t most = 0;
  auto replaced = [&] {
    most = std::max(most, children_of(manager).size());
    return lines_with(log, "(local-3) joined: ") == 1 && lines_with(log, "(local-4) joined: ") == 1;
  };
  REQUIRE(wait_for(replaced, 120));
  gate.open();
  while (still_running(manager)) {
    most = std::max(most, children_of(manager).size());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(exit_status(manager) == 0);
  CHECK(most <= 3);
  CHECK(ids_once(dir / "out.jsonl") == prompt_ids(2000));
  std::string text = read_file(log);
  CHECK(text.find("asked local for 3 workers: job local-0 ... local-2") != std::string::npos);
  CHECK(text.find("(local-5)") == std::string::npos);
  // Each job joined with a key of its own, named after it, revoked when the job ended.
  for (int i = 0; i < 5; ++i) {
    std::string name = "local-" + std::to_string(i);
    CHECK(lines_with(log, "(" + name + ") joined: ") == 1);
    CHECK(text.find("device memory, key " + name + "\n") != std::string::npos);
  }
  for (const KeyEntry& k : read_key_registry(dir / "job.state/keys/registry"))
    CHECK((k.revoked || k.label == "shared"));
  CHECK(fs::is_empty(dir / "job.state/batch/keys"));
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
