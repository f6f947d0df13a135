#include "traces/time_unit.hpp"

#include <fmt/core.h>

#include "policy/errors.hpp"

namespace hearth::traces {

TimeUnit parse_time_unit(std::string_view word) {
  if (word == "ms") return TimeUnit::ms;
  if (word == "s") return TimeUnit::s;
  if (word == "h") return TimeUnit::h;
  throw InputError(fmt::format("time unit '{}' is not one of ms, s, h", word));
}

double seconds_per(TimeUnit unit) {
  switch (unit) {
    case TimeUnit::ms:
      return 1e-3;
    case TimeUnit::s:
      return 1;
    case TimeUnit::h:
      return 3600;
  }
  return 1;
}

}  // namespace hearth::traces
