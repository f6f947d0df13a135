#pragma once
// Test support for the real backend: scratch directories, job and dataset files, and a manager
// running on a thread.

#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <sqlite3.h>

#include <chrono>
#include <functional>

#include "real_backend/manager/manager.hpp"
#include "real_backend/manager/run_plan.hpp"
#include "real_backend/model/builtin_model.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "real_backend/worker/worker.hpp"
#include "tests/input_error.hpp"
#include "tests/temp_dir.hpp"

namespace hearth::testing {

namespace fs = std::filesystem;

// One input through a model's batch interface, each label one token, as a worker's task asks.
// Throws std::runtime_error with the input's error.
inline real::InferenceResult classify_one(real::LoadedModel& model,
                                          const std::vector<std::int32_t>& input,
                                          const std::vector<std::int32_t>& label_tokens) {
  std::vector<std::vector<std::int32_t>> labels;
  for (std::int32_t t : label_tokens)
    labels.push_back({t});
  real::InferenceResult r = model.classify({input}, labels).at(0);
  if (!r.error.empty()) throw std::runtime_error(r.error);
  return r;
}

// Greedy generation of one input, stopping after `stop_token` (-1: none).
inline real::InferenceResult generate_one(real::LoadedModel& model,
                                          const std::vector<std::int32_t>& input,
                                          std::uint32_t max_new_tokens, std::int32_t stop_token) {
  real::GenerateOptions options;
  options.max_new_tokens = max_new_tokens;
  if (stop_token >= 0) options.stop_tokens = {stop_token};
  real::InferenceResult r = model.generate({input}, options).at(0);
  if (!r.error.empty()) throw std::runtime_error(r.error);
  return r;
}

// n bytes of a fixed pseudo-random pattern (an LCG from `seed`): data no copy gets right by luck.
inline std::string pattern_bytes(std::size_t n, std::uint64_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    s[i] = static_cast<char>(seed >> 56);
  }
  return s;
}

// A model-like directory of 4.5 MB: a config, two shards of pseudo-random bytes, an empty file and
// a small one in nested subdirectories, and a file of exactly one page. Packed (wire/pack.hpp):
//   config.json                        19 bytes at 0
//   model-00001-of-00002.safetensors   3,000,001 at 4,096 (1 page)      ends at 3,004,097
//   model-00002-of-00002.safetensors   1,500,000 at 3,006,464 (734 pages) ends at 4,506,464
//   sub/deeper/empty.txt               0 at 4,509,696 (1,101 pages)
//   sub/notes.md                       5 at 4,509,696                   ends at 4,509,701
//   tokenizer.json                     4,096 at 4,513,792 (1,102 pages) ends at 4,517,888
inline void write_model_directory(const fs::path& dir) {
  fs::create_directories(dir / "sub/deeper");
  write_file(dir / "config.json", R"({"hidden_size": 64})");
  write_file(dir / "model-00001-of-00002.safetensors", pattern_bytes(3'000'001, 1));
  write_file(dir / "model-00002-of-00002.safetensors", pattern_bytes(1'500'000, 2));
  write_file(dir / "sub/deeper/empty.txt", "");
  write_file(dir / "sub/notes.md", "notes");
  write_file(dir / "tokenizer.json", pattern_bytes(4096, 3));
}
inline constexpr std::uint64_t kModelDirectoryPackBytes = 4'517'888;

// A text's bytes as the built-in byte-level model's token ids.
inline std::vector<std::int32_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

// n prompts {"id": "p<i>", "prompt": "..."}, the same every time.
inline void write_prompts(const fs::path& path, int n) {
  static const char* words[] = {"the", "tower",  "is",   "in",    "Paris", "Rome",  "a",
                                "cat", "claims", "that", "river", "flows", "north", "never"};
  std::ofstream out(path);
  std::uint64_t x = 7;
  for (int i = 0; i < n; ++i) {
    out << "{\"id\": \"p" << i << "\", \"prompt\": \"";
    for (int w = 0; w < 6; ++w) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      out << (w ? " " : "") << words[(x >> 33) % 14];
    }
    out << "\"}\n";
  }
}

// A job of one no-op context (a small file of bytes, no model) over n prompts, in `dir`.
inline fs::path write_noop_job(const fs::path& dir, int n, int batch_size,
                               const std::string& source = "manager") {
  write_prompts(dir / "prompts.jsonl", n);
  write_file(dir / "context.bin", std::string(100000, 'x'));
  write_file(dir / "job.toml",
             "output = \"out.jsonl\"\n"
             "[policy]\nbatch_size = " +
                 std::to_string(batch_size) +
                 "\ntask_overhead_s = 0.001\ninference_s = 0.0001\n"
                 "[[contexts]]\nname = \"noop\"\nmodel = \"context.bin\"\nformat = \"bytes\"\n"
                 "task = \"noop\"\ndataset = \"prompts.jsonl\"\nsource = \"" +
                 source + "\"\n");
  return dir / "job.toml";
}

// The built-in model (real_backend/model/builtin_model.hpp) as a TorchScript file.
inline void write_builtin_model(const fs::path& path) {
  real::torch_runtime().save_builtin(real::make_builtin_model({}), path.string());
}

// A job file at `job` that classifies n prompts (write_prompts) with the built-in model, in tasks
// of at most batch_size, with the prompts, the model and the output (out.jsonl) beside it; `more`
// is TOML added at its end (more contexts, a [factory] table).
inline fs::path write_classify_job(const fs::path& job, int n, int batch_size,
                                   const std::string& more = "") {
  write_builtin_model(job.parent_path() / "tiny.pt");
  write_prompts(job.parent_path() / "prompts.jsonl", n);
  write_file(job, "output = \"out.jsonl\"\n[policy]\nbatch_size = " + std::to_string(batch_size) +
                      "\ntask_overhead_s = 0.005\ninference_s = 0.001\n" +
                      R"([[contexts]]
name = "verdict"
model = "tiny.pt"
task = "classify"
dataset = "prompts.jsonl"
template = "Claim: {prompt}\nVerdict:"
labels = ["SUPPORTS", "REFUTES", "NOT-ENOUGH-INFO"]
label_tokens = ["S", "R", "N"]
)" + more);
  return job;
}

// Where and what `read` (a job file's or a dataset's reader) says is wrong with a file at `path`
// holding `text`: its InputError's message after the path (":7: unknown key ..."). Fails the test
// if it throws none.
template <class Read>
std::string error_reading(const fs::path& path, const std::string& text, Read read) {
  write_file(path, text);
  std::string message = input_error([&] { read(path); });
  return message.starts_with(path.string()) ? message.substr(path.string().size()) : message;
}

// A manager running its job on a thread until the job is done or stop() is called.
class ManagerThread {
 public:
  ManagerThread(real::RunPlan& plan, real::ManagerOptions options)
      : manager_(plan, plan.job().engine, std::move(options)) {}
  ~ManagerThread() { stop(); }

  real::Manager& manager() { return manager_; }
  void start() {
    thread_ = std::thread([this] { end_ = manager_.run(stop_); });
  }
  // Waits for the run to end (or stops it) and returns how it ended.
  real::RunEnd join() {
    if (thread_.joinable()) thread_.join();
    return end_;
  }
  void stop() {
    stop_ = true;
    join();
  }

 private:
  real::Manager manager_;
  std::atomic<bool> stop_{false};
  real::RunEnd end_ = real::RunEnd::stopped;
  std::thread thread_;
};

// A worker on a thread, built and run there; told to leave when destroyed.
class WorkerThread {
 public:
  explicit WorkerThread(real::WorkerOptions options)
      : thread_([this, options] {
          real::Worker w(options, control);
          w.run();
          returned = true;
        }) {}
  ~WorkerThread() {
    control.leave = true;
    join();
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  real::WorkerControl control;
  // run() has returned: the worker tells the manager nothing more, though it may still be waiting
  // for its inference to end before its connection closes.
  std::atomic<bool> returned{false};

 private:
  std::thread thread_;
};

// A worker of the manager `m`, caching in `dir`, inferring with `runtime` (null: torch's).
inline real::WorkerOptions worker_options(const real::Manager& m, const real::ManagerKeys& keys,
                                          const fs::path& dir, const std::string& name,
                                          real::ModelRuntime* runtime = nullptr) {
  real::WorkerOptions o;
  o.runtime = runtime;
  o.manager = m.address();
  o.keys = keys.workers;
  o.name = name;
  o.cache_dir = dir / ("cache-" + name);
  o.device = "cpu";
  return o;
}

// Rows recorded in a state database, read while the manager writes it.
inline int recorded_rows(const fs::path& db) {
  sqlite3* h = nullptr;
  int n = -1;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 2000);
    sqlite3_exec(
        h, "SELECT count(*) FROM results",
        [](void* out, int, char** values, char**) {
          *static_cast<int*>(out) = std::atoi(values[0]);
          return 0;
        },
        &n, nullptr);
  }
  sqlite3_close(h);
  return n;
}

// Polls `done` every 10 ms for up to `timeout_s`; returns whether it became true.
inline bool wait_for(const std::function<bool()>& done, double timeout_s = 20) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace hearth::testing
