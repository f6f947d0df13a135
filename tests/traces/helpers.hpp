#pragma once
// Small helpers shared by the trace tests.

#include <fmt/core.h>

#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <string>

#include "tests/input_error.hpp"
#include "traces/trace.hpp"

namespace hearth::traces::testing {

using hearth::testing::input_error;

inline const std::filesystem::path kShippedDir = HEARTH_SHIPPED_TRACES_DIR;
inline const std::filesystem::path kTestDataDir = HEARTH_TEST_DATA_DIR;
inline const std::filesystem::path kPublicDir = HEARTH_PUBLIC_TRACES_DIR;

// A trace's events, one line each: "TIME KIND WORKER GPU_TYPE", then any attributes as KEY=VALUE.
inline std::string events_text(const Trace& trace) {
  std::string s;
  for (const auto& e : trace.events) {
    s += fmt::format("{} {} {} {}", e.time_s, to_string(e.kind), e.worker, e.gpu_type);
    for (const auto& [k, v] : e.attributes)
      s += fmt::format(" {}={}", k, v);
    s += "\n";
  }
  return s;
}

}  // namespace hearth::traces::testing
