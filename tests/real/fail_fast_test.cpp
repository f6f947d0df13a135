// Runs that cannot go on end, with status 2 and the reason on the manager's stderr, instead of
// waiting forever with GPUs held: a model no worker can load, a model no joined worker has room
// for.

#include <catch2/catch_test_macros.hpp>

#include <chrono>

#include "tests/real/hearth_process.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::testing;

namespace {

// A job classifying 20 prompts with the TorchScript file `model` (relative to `dir`).
fs::path write_torchscript_job(const fs::path& dir, const std::string& model) {
  write_prompts(dir / "prompts.jsonl", 20);
  write_file(dir / "job.toml", R"(output = "out.jsonl"
[[contexts]]
name = "verdict"
model = ")" + model + R"("
format = "torchscript"
task = "classify"
dataset = "prompts.jsonl"
template = "Claim: {prompt}\nVerdict:"
labels = ["SUPPORTS", "REFUTES"]
label_tokens = ["S", "R"]
)");
  return dir / "job.toml";
}

// What a worker's log says after "stage of verdict to gpu failed: ".
std::string worker_stage_error(const fs::path& log) {
  std::string text = read_file(log);
  const std::string marker = "stage of verdict to gpu failed: ";
  auto at = text.find(marker);
  if (at == std::string::npos) return "";
  at += marker.size();
  return text.substr(at, text.find('\n', at) - at);
}

}  // namespace

TEST_CASE("a model no worker can load ends the run with status 2 and the workers' own error") {
  TempDir dir;
  write_file(dir / "junk.pt", pattern_bytes(300000, 7));
  auto start = std::chrono::steady_clock::now();
  pid_t manager =
      start_hearth({"run", write_torchscript_job(dir.path, "junk.pt").string(), "--workers", "2"},
                   dir / "manager.log");
  // Within 60 s, loads included on a loaded machine; without the check it waits forever.
  CHECK(exit_status(manager, 60) == 2);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("took " << took << " s");
  std::string log = read_file(dir / "manager.log");
  INFO(log);
  CHECK(log.find("hearth: the run cannot go on: context verdict cannot be loaded: it failed on "
                 "2 workers") != std::string::npos);
  // The worker's own message, as its log has it, is on the manager's stderr.
  std::string own;
  for (const auto& e : fs::recursive_directory_iterator(dir / "job.state/workers")) {
    if (e.path().extension() == ".log" && own.empty()) own = worker_stage_error(e.path());
  }
  REQUIRE(!own.empty());
  CHECK(log.find(own.substr(0, 60)) != std::string::npos);
  // The status file says so too.
  nlohmann::json status = nlohmann::json::parse(read_file(dir / "job.state/status.json"));
  CHECK(status["ended"] == "failed");
  CHECK(status["end_reason"].get<std::string>().find("cannot be loaded") != std::string::npos);
}

TEST_CASE("a model no joined worker has room for is reported at once and ends the run") {
  TempDir dir;
  write_builtin_model(dir / "tiny.pt");
  std::uintmax_t size = fs::file_size(dir / "tiny.pt");
  pid_t manager = start_hearth(
      {"run", write_torchscript_job(dir.path, "tiny.pt").string(), "--workers", "2",
       "--wait-for-capacity", "2", "--worker-arg=--device-memory=" + std::to_string(size / 2)},
      dir / "manager.log");
  wait_for_log(dir / "manager.log", "waiting up to 2 s for a worker that can hold it", manager);
  CHECK(exit_status(manager, 60) == 2);
  std::string log = read_file(dir / "manager.log");
  INFO(log);
  CHECK(log.find("context verdict needs ") != std::string::npos);
  CHECK(log.find("no worker with room joined within 2 s") != std::string::npos);
  CHECK(lines_with(dir / "manager.log", "the largest have ") >= 2);  // reported, then failed
}

TEST_CASE("a run's report goes to stdout, its log to --log, its events to --events") {
  TempDir dir;
  write_classify_job(dir / "job.toml", 30, 7);
  pid_t manager =
      start_hearth({"run", (dir / "job.toml").string(), "--workers", "2", "--log",
                    (dir / "manager.log").string(), "--events", (dir / "events.jsonl").string()},
                   dir / "out.txt");
  REQUIRE(exit_status(manager) == 0);
  std::string out = read_file(dir / "out.txt");
  INFO(out);
  CHECK(out.find("run 1: 30 of 30 inferences done (0 before this run), 0 given up") !=
        std::string::npos);
  CHECK(out.find("  workers: 2 joins, 0 lost, 0 preemption notices, 0 quarantined") !=
        std::string::npos);
  CHECK(out.find("] info: ") == std::string::npos);  // no log line
  CHECK(lines_with(dir / "manager.log", ") joined: cpu") == 2);
  CHECK((fs::status(dir / "manager.log").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  std::string events = read_file(dir / "events.jsonl");
  CHECK(events.starts_with(R"({"t":)"));
  CHECK(events.find(R"("event":"run_started")") != std::string::npos);
  CHECK(lines_with(dir / "events.jsonl", R"("event":"task_finished")") == 5);  // ceil(30 / 7)
  CHECK(lines_with(dir / "events.jsonl", R"("event":"run_ended","end":"finished")") == 1);
}
