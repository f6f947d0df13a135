#pragma once
// Small helpers shared by the experiment tests: a fresh folder per test, spec files written
// into it next to the test data, and the message of an expected InputError.

#include <fmt/format.h>
#include <unistd.h>
#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/input_error.hpp"

namespace hearth::experiments::testing {

inline const std::filesystem::path kDataDir = HEARTH_EXPERIMENT_TEST_DATA;

using hearth::testing::input_error;

// A folder of its own under /tmp, emptied first.
inline std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             fmt::format("hearth-experiments-test-{}-{}", name, getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A fresh folder, removed again when the test is done with it.
struct Scratch {
  std::filesystem::path path;
  explicit Scratch(const std::string& name) : path(fresh_dir(name)) {}
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

inline std::string write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
  return path.string();
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The round cluster and a trace with one G worker up for good: a pcm run of 100 inferences in
// tasks of 10 takes 110 s (one 60 s load, then 10 tasks of 5 s), a naive one 650 s.
inline std::string tiny_spec(const std::string& extra = "") {
  return fmt::format(R"(
name = "tiny"
cluster = "{0}/round.toml"
policies = ["naive", "pcm"]
batch_sizes = [10, 50]

[[traces]]
name = "one"
file = "{0}/one-worker.csv"

[[workloads]]
name = "w"
[[workloads.contexts]]
name = "model"
size_bytes = 1e9
init_s = 30
inferences = 100
{1})",
                     kDataDir.string(), extra);
}

}  // namespace hearth::experiments::testing
