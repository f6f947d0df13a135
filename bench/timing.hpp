#pragma once
// Wall-clock timing for the bench/ targets.

#include <algorithm>
#include <chrono>
#include <functional>

namespace hearth::bench {

// Seconds f takes.
inline double seconds(const std::function<void()>& f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The best of three runs of f.
inline double best_of_3(const std::function<void()>& f) {
  double best = 1e300;
  for (int i = 0; i < 3; ++i)
    best = std::min(best, seconds(f));
  return best;
}

}  // namespace hearth::bench
