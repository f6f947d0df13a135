#pragma once
// What every libFuzzer harness shares. A parser given bad input must answer with
// hearth::InputError (a message that says where and what) and nothing else: any other exception
// escapes the harness and libFuzzer reports it as a crash, as it does a sanitizer's report, a
// hang (-timeout) or an allocation past -malloc_limit_mb.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "policy/errors.hpp"

namespace hearth::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs f; an InputError is a right answer to bad input.
template <class F>
void expect_input_error(F&& f) {
  try {
    f();
  } catch (const InputError&) {
  }
}

// A folder of this process's own, for the files a harness writes.
inline const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("hearth-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// The input as a file at `name` (a relative path), for parsers that read files (and name them in
// messages): in work_dir(), rewritten for every input.
inline std::filesystem::path as_file(std::string_view bytes, const std::string& name) {
  const auto path = work_dir() / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace hearth::fuzz
