// real_dispatch_bench: how fast the manager dispatches tasks. No-op tasks of one inference each,
// over loopback TCP with CURVE, to 1..16 workers on threads of this process; every finished task
// is committed to SQLite in its own transaction, as in a real run. Prints tasks per second, the
// time per task (with one worker: a task's whole round trip), and what the commit alone costs.
//
//   real_dispatch_bench [tasks]     (default 20000)

#include <fmt/core.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "os/logging.hpp"
#include "real_backend/manager/manager.hpp"
#include "real_backend/manager/result_store.hpp"
#include "real_backend/manager/run_plan.hpp"
#include "real_backend/wire/auth.hpp"
#include "real_backend/worker/worker.hpp"

namespace fs = std::filesystem;
using namespace hearth;
using namespace hearth::real;

namespace {

// A job of `tasks` no-op inferences, one per task, in a fresh directory.
fs::path write_job(const fs::path& dir, int tasks) {
  fs::create_directories(dir);
  {
    std::ofstream d(dir / "rows.jsonl");
    for (int i = 0; i < tasks; ++i)
      d << "{\"id\": " << i << ", \"prompt\": \"x\"}\n";
  }
  std::ofstream(dir / "context.bin") << std::string(1000, 'c');
  std::ofstream(dir / "job.toml")
      << "output = \"out.jsonl\"\n[policy]\nbatch_size = 1\n"
         "[[contexts]]\nname = \"noop\"\nmodel = \"context.bin\"\nformat = \"bytes\"\n"
         "task = \"noop\"\ndataset = \"rows.jsonl\"\n";
  return dir / "job.toml";
}

struct Result {
  double seconds = 0;
  std::uint64_t tasks = 0;
};

Result measure(const fs::path& scratch, int workers, int tasks) {
  fs::path dir = scratch / fmt::format("w{}", workers);
  RunPlan plan(read_job_file(write_job(dir, tasks)));
  ManagerOptions options;
  options.keys.manager = make_key_pair();
  options.keys.workers = {options.keys.manager.public_z85, make_key_pair(), make_key_pair()};
  Manager manager(plan, plan.job().engine, options);
  std::vector<std::unique_ptr<WorkerControl>> controls;
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) {
    WorkerOptions o;
    o.manager = manager.address();
    o.keys = options.keys.workers;
    o.name = fmt::format("w{}", i);
    o.cache_dir = dir / o.name;
    o.device = "cpu";
    controls.push_back(std::make_unique<WorkerControl>());
    threads.emplace_back([o, c = controls.back().get()] {
      Worker w(o, *c);
      w.run();
    });
  }
  std::atomic<bool> stop{false};
  auto start = std::chrono::steady_clock::now();
  manager.run(stop);
  Result r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.tasks = manager.stats().tasks_done;
  for (auto& t : threads)
    t.join();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int tasks = argc > 1 ? std::atoi(argv[1]) : 20000;
  os::configure_logging("bench", os::LogLevel::quiet);
  std::string pattern = (fs::temp_directory_path() / "hearth-bench-XXXXXX").string();
  fs::path scratch = mkdtemp(pattern.data());
  fmt::print("{:>8} {:>8} {:>10} {:>10} {:>14}\n", "workers", "tasks", "seconds", "tasks/s",
             "us per task");
  for (int workers : {1, 2, 4, 8, 16}) {
    Result r = measure(scratch, workers, tasks);
    // Includes joining and each worker's first load of the (tiny) context.
    fmt::print("{:>8} {:>8} {:>10.3f} {:>10.0f} {:>14.1f}\n", workers, r.tasks, r.seconds,
               r.tasks / r.seconds, 1e6 * r.seconds / r.tasks);
  }
  // The part of a task's overhead that is the SQLite transaction recording it.
  ResultStore store(scratch / "commit.db", "bench");
  int commits = 5000;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < commits; ++i)
    store.record_task(i, 0, {static_cast<std::uint64_t>(i)}, {"null"}, "w0");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("one-row task committed to SQLite: {:.1f} us\n", 1e6 * s / commits);
  fs::remove_all(scratch);
}
