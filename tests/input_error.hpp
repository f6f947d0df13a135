#pragma once
// The message of an expected InputError, for the tests of anything that reads a user's input.

#include <catch2/catch_test_macros.hpp>

#include <string>

#include "policy/errors.hpp"

namespace hearth::testing {

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

}  // namespace hearth::testing
