#pragma once
// Checks for numeric command-line options, applied to the text before CLI11 converts it: CLI11
// alone reads "-1" into an unsigned option as 18446744073709551615, and a number too large for it
// as the largest one.

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdint>
#include <limits>
#include <string>

namespace hearth::cli {

// The most inferences a task may have (--batch-size): far above any useful size.
inline constexpr std::uint64_t kMaxBatchSize = 4294967295;

// A whole number from `min` to `max`, in plain digits.
inline CLI::Validator whole_number(std::uint64_t min,
                                   std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        std::uint64_t value = 0;
        const char* end = text.data() + text.size();
        auto [at, error] = std::from_chars(text.data(), end, value);
        if (text.empty() || error != std::errc{} || at != end || value < min || value > max) {
          return fmt::format("must be a whole number from {} to {} (is {})", min, max, text);
        }
        return {};
      },
      fmt::format("UINT:{}..{}", min, max));
}

}  // namespace hearth::cli
