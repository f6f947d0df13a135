// The sweep runner: every cell once, in child processes; results that survive interruptions and
// reruns exactly; failures reported, never dropped; one tidy CSV.

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch_test_macros.hpp>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "experiments/runner.hpp"
#include "tests/experiments/helpers.hpp"

namespace hearth::experiments {
namespace {

namespace fs = std::filesystem;
using testing::read_file;
using testing::write_file;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  for (std::string f; std::getline(in, f, ',');)
    fields.push_back(f);
  return fields;
}

// The value of `column` in each data row of a CSV.
std::vector<std::string> column(const std::string& csv, const std::string& name) {
  const auto lines = lines_of(csv);
  const auto header = fields_of(lines.at(0));
  const auto at = std::find(header.begin(), header.end(), name) - header.begin();
  std::vector<std::string> values;
  for (std::size_t i = 1; i < lines.size(); ++i)
    values.push_back(fields_of(lines[i]).at(at));
  return values;
}

std::size_t files_in(const fs::path& dir, const std::string& ending) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    n += name.size() >= ending.size() &&
         name.compare(name.size() - ending.size(), ending.size(), ending) == 0;
  }
  return n;
}

// A stand-in for the simulator: the makespan is the batch size, instantly (or after a nap).
CellFunction fake(int nap_ms = 0) {
  return [nap_ms](const Cell& cell, const std::string&) {
    if (nap_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(nap_ms));
    CellOutcome o;
    o.summary.makespan_s = static_cast<double>(cell.batch_size);
    o.summary.finished = true;
    return o;
  };
}

struct Fixture {
  testing::Scratch scratch;
  fs::path dir;
  ExperimentSpec spec;
  RunOptions options;
  explicit Fixture(const std::string& name, const std::string& extra = "")
      : scratch(name), dir(scratch.path) {
    spec = load_spec(write_file(dir / "spec.toml", testing::tiny_spec(extra)));
    options.out_dir = (dir / "out").string();
    options.jobs = 2;
  }
};

TEST_CASE("every cell runs once, and the CSV has one row per cell in grid order") {
  Fixture f("all");
  const RunReport r = run_experiment(f.spec, f.options);
  CHECK(r.cells == 4);
  CHECK(r.ran == 4);
  CHECK(r.failures.empty());
  CHECK(!r.interrupted);
  const std::string csv = read_file(f.dir / "out" / "results.csv");
  REQUIRE(lines_of(csv).size() == 5);
  const auto header = fields_of(lines_of(csv)[0]);
  for (const char* name : {"cell",
                           "trace",
                           "workload",
                           "policy",
                           "placement",
                           "eviction",
                           "granularity",
                           "batch_size",
                           "seed",
                           "status",
                           "error",
                           "makespan_s",
                           "lower_bound_s",
                           "ratio_to_lower_bound",
                           "finished",
                           "inferences_done",
                           "tasks_requeued",
                           "preemptions",
                           "context_loads_shared_storage",
                           "context_loads_peer",
                           "shared_storage_bytes",
                           "gpu_seconds_available",
                           "gpu_seconds_computing",
                           "gpu_seconds_loading",
                           "gpu_seconds_idle",
                           "gpu_seconds_lost",
                           "wall_s",
                           "trace_gpu_hours",
                           "trace_preemptions_per_gpu_hour"}) {
    CAPTURE(name);
    CHECK(std::find(header.begin(), header.end(), name) != header.end());
  }
  CHECK(column(csv, "cell") == std::vector<std::string>{"one__w__naive-lru-fixed__b10__s1",
                                                        "one__w__naive-lru-fixed__b50__s1",
                                                        "one__w__pcm-lru-fixed__b10__s1",
                                                        "one__w__pcm-lru-fixed__b50__s1"});
  // By hand (tests/sim): naive loads the 60 s context for each task of 10 (5 s): 10 x 65 s;
  // pcm loads it once: 60 s + 10 x 5 s; with tasks of 50 (25 s): 2 x 85 s and 60 + 2 x 25 s.
  CHECK(column(csv, "makespan_s") == std::vector<std::string>{"650.0", "170.0", "110.0", "110.0"});
  CHECK(column(csv, "lower_bound_s") ==
        std::vector<std::string>{"110.0", "110.0", "110.0", "110.0"});
  CHECK(column(csv, "status") == std::vector<std::string>{"done", "done", "done", "done"});
  CHECK(column(csv, "policy") == std::vector<std::string>{"naive", "naive", "pcm", "pcm"});
}

TEST_CASE("a second run keeps every result and runs nothing") {
  Fixture f("again");
  f.options.run_cell = fake();
  run_experiment(f.spec, f.options);
  const RunReport again = run_experiment(f.spec, f.options);
  CHECK(again.already_done == 4);
  CHECK(again.ran == 0);
  CHECK(lines_of(read_file(f.dir / "out" / "results.csv")).size() == 5);
}

TEST_CASE("after an interruption only the missing cells run") {
  Fixture f("resume");
  f.options.run_cell = fake();
  run_experiment(f.spec, f.options);
  const fs::path cells = f.dir / "out" / "cells";
  fs::remove(cells / "one__w__naive-lru-fixed__b50__s1.json");
  fs::remove(cells / "one__w__pcm-lru-fixed__b10__s1.json");
  // What a process killed while writing leaves behind: ignored, then removed.
  write_file(cells / ".tmp-one__w__pcm-lru-fixed__b10__s1.json-99999", "{\"status\": \"do");

  RunOptions dry = f.options;
  dry.dry_run = true;
  const RunReport counted = run_experiment(f.spec, dry);
  CHECK(counted.already_done == 2);
  CHECK(counted.to_run == 2);
  CHECK(counted.ran == 0);

  std::vector<std::string> ran;
  f.options.on_finished = [&](const CellFinished& e) { ran.push_back(e.key); };
  const RunReport r = run_experiment(f.spec, f.options);
  CHECK(r.already_done == 2);
  CHECK(r.ran == 2);
  std::sort(ran.begin(), ran.end());
  CHECK(ran == std::vector<std::string>{"one__w__naive-lru-fixed__b50__s1",
                                        "one__w__pcm-lru-fixed__b10__s1"});
  CHECK(files_in(cells, ".json") == 4);
  CHECK(!fs::exists(cells / ".tmp-one__w__pcm-lru-fixed__b10__s1.json-99999"));
}

TEST_CASE("results of other inputs are stale and run again") {
  Fixture f("stale");
  f.options.run_cell = fake();
  run_experiment(f.spec, f.options);
  std::string text = testing::tiny_spec();
  text.replace(text.find("inferences = 100"), 16, "inferences = 200");
  const ExperimentSpec changed = load_spec(write_file(f.dir / "spec.toml", text));
  const RunReport r = run_experiment(changed, f.options);
  CHECK(r.stale == 4);
  CHECK(r.already_done == 0);
  CHECK(r.ran == 4);
}

TEST_CASE("a failing cell is reported with its error; the others run; the next run retries it") {
  Fixture f("failing");
  f.options.run_cell = [](const Cell& cell, const std::string& dir) {
    if (cell.batch_size == 50 && cell.policy == 1) throw std::runtime_error("out of luck, x=1");
    return fake()(cell, dir);
  };
  const RunReport r = run_experiment(f.spec, f.options);
  CHECK(r.ran == 4);
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].key == "one__w__pcm-lru-fixed__b50__s1");
  CHECK(r.failures[0].error == "out of luck, x=1");
  const std::string csv = read_file(f.dir / "out" / "results.csv");
  CHECK(column(csv, "status") == std::vector<std::string>{"done", "done", "done", "failed"});
  CHECK(lines_of(csv)[4].find(",failed,\"out of luck, x=1\",") != std::string::npos);

  f.options.run_cell = fake();
  const RunReport retry = run_experiment(f.spec, f.options);
  CHECK(retry.already_done == 3);
  CHECK(retry.ran == 1);
  CHECK(retry.failures.empty());
  CHECK(column(read_file(f.dir / "out" / "results.csv"), "status") ==
        std::vector<std::string>{"done", "done", "done", "done"});
}

TEST_CASE("a cell whose process dies is a failure, not a silent gap") {
  Fixture f("dies");
  f.options.run_cell = [](const Cell& cell, const std::string& dir) {
    if (cell.batch_size == 10 && cell.policy == 0) kill(getpid(), SIGKILL);
    return fake()(cell, dir);
  };
  const RunReport r = run_experiment(f.spec, f.options);
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].key == "one__w__naive-lru-fixed__b10__s1");
  CHECK(r.failures[0].error == "the cell's process died of signal 9");
  CHECK(column(read_file(f.dir / "out" / "results.csv"), "status")[0] == "failed");
}

TEST_CASE("SIGINT stops the run, keeps whole cells, and the next run runs only the missing") {
  Fixture f("sigint", "");
  std::string text = testing::tiny_spec();
  text.replace(text.find("batch_sizes = [10, 50]"), 22,
               "batch_sizes = [10, 20, 30, 40, 50, 60]\nseeds = [1, 2]");
  f.spec = load_spec(write_file(f.dir / "spec.toml", text));  // 24 cells
  f.options.jobs = 1;
  f.options.run_cell = fake(100);
  const pid_t runner = fork();
  if (runner == 0) {
    const RunReport r = run_experiment(f.spec, f.options);
    _exit(r.interrupted ? 130 : 0);
  }
  // Interrupt as soon as the first cell is whole: most of the 24 (2.4 s of naps) are still to go.
  const fs::path cells = f.dir / "out" / "cells";
  for (int waited_ms = 0; waited_ms < 10000; waited_ms += 10) {
    if (fs::is_directory(cells) && files_in(cells, ".json") > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(runner, SIGINT);
  int status = 0;
  waitpid(runner, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);

  const std::size_t done = files_in(cells, ".json");
  CHECK(done > 0);
  CHECK(done < 24);
  CHECK(files_in(cells, ".failed.json") == 0);
  for (const auto& e : fs::directory_iterator(cells))
    CHECK(e.path().filename().string().rfind(".tmp-", 0) != 0);
  CHECK(lines_of(read_file(f.dir / "out" / "results.csv")).size() == done + 1);

  f.options.run_cell = fake();
  f.options.jobs = 2;
  const RunReport r = run_experiment(f.spec, f.options);
  CHECK(r.already_done == done);
  CHECK(r.ran == 24 - done);
  CHECK(lines_of(read_file(f.dir / "out" / "results.csv")).size() == 25);
}

TEST_CASE("two runs cannot share a folder") {
  Fixture f("lock");
  fs::create_directories(f.dir / "out");
  const int fd = open((f.dir / "out" / ".lock").c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(flock(fd, LOCK_EX) == 0);
  const pid_t other = fork();  // flock is per open file: take it from another process
  if (other == 0) {
    try {
      run_experiment(f.spec, f.options);
    } catch (const InputError& e) {
      _exit(std::string(e.what()) == (f.dir / "out").string() +
                                         ": another hearth experiment run is using this folder"
                ? 0
                : 1);
    }
    _exit(2);
  }
  int status = 0;
  waitpid(other, &status, 0);
  close(fd);
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a gantt cell keeps its run's timeline") {
  Fixture f("gantt", "[[gantt]]\npolicy = \"pcm\"\n");
  const RunReport r = run_experiment(f.spec, f.options);
  CHECK(r.ran == 4);
  const fs::path timeline =
      f.dir / "out" / "gantt" / "one__w__pcm-lru-fixed__b10__s1" / "timeline.csv";
  REQUIRE(fs::exists(timeline));
  // One worker: loading 0-60 s, then ten tasks of 5 s.
  const auto rows = lines_of(read_file(timeline));
  CHECK(rows[0] == "worker,gpu_type,incarnation,start_s,end_s,state");
  CHECK(rows[1] == "a,G,1,0.000000,60.000000,loading");
  CHECK(rows.size() == 12);
  CHECK(files_in(f.dir / "out" / "gantt", "") == 1);
}

}  // namespace
}  // namespace hearth::experiments
