#pragma once
// The names of an enum's values, written once as an array indexed by the value, serve both its
// to_string and its parsing. The enum's values must be 0, 1, 2, ... in the array's order; where the
// enum has a count (kTierCount), a static_assert beside the array keeps the two the same length.

#include <cstddef>
#include <optional>
#include <string_view>

namespace hearth {

// names[value]; "?" for a value past the array's end.
template <class Enum, std::size_t N>
constexpr const char* enum_name(Enum value, const char* const (&names)[N]) {
  const auto i = static_cast<std::size_t>(value);
  return i < N ? names[i] : "?";
}

// The value named `name`, if one is.
template <class Enum, std::size_t N>
constexpr std::optional<Enum> enum_named(std::string_view name, const char* const (&names)[N]) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

}  // namespace hearth
