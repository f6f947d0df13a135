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

// The spec data/NAME with the files it names there (round.toml, one-worker.csv) given by their
// absolute paths, so that a test can change it and write it anywhere.
inline std::string data_spec(const std::string& name) {
  std::string text = read_file(kDataDir / name);
  for (const std::string file : {"round.toml", "one-worker.csv"}) {
    const std::string quoted = fmt::format("\"{}\"", file);
    if (const auto at = text.find(quoted); at != std::string::npos)
      text.replace(at, quoted.size(), fmt::format("\"{}\"", (kDataDir / file).string()));
  }
  return text;
}

// data/tiny.toml (one worker up for good, 100 inferences), with `extra` after it.
inline std::string tiny_spec(const std::string& extra = "") {
  return data_spec("tiny.toml") + extra;
}

}  // namespace hearth::experiments::testing
