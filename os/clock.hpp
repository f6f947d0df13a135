#pragma once
// Elapsed time on the monotonic clock, as the durations in logs and reports give it.

#include <chrono>

namespace hearth::os {

// Seconds from t to now, on std::chrono::steady_clock.
inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace hearth::os
