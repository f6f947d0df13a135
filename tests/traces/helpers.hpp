#pragma once
// Small helpers shared by the trace tests.

#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <string>

#include "tests/input_error.hpp"

namespace hearth::traces::testing {

using hearth::testing::input_error;

inline const std::filesystem::path kShippedDir = HEARTH_SHIPPED_TRACES_DIR;
inline const std::filesystem::path kTestDataDir = HEARTH_TEST_DATA_DIR;
inline const std::filesystem::path kPublicDir = HEARTH_PUBLIC_TRACES_DIR;

}  // namespace hearth::traces::testing
