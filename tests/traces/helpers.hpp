#pragma once
// Small helpers shared by the trace tests.

#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <string>

#include "policy/errors.hpp"

namespace hearth::traces::testing {

// The message of the InputError that f throws; fails the test when it throws none.
template <class F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  FAIL("expected an InputError, but nothing was thrown");
  return {};
}

inline const std::filesystem::path kShippedDir = HEARTH_SHIPPED_TRACES_DIR;
inline const std::filesystem::path kTestDataDir = HEARTH_TEST_DATA_DIR;
inline const std::filesystem::path kPublicDir = HEARTH_PUBLIC_TRACES_DIR;

}  // namespace hearth::traces::testing
