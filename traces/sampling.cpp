#include "traces/sampling.hpp"

#include <cassert>
#include <cmath>
#include <limits>

namespace hearth::traces {

double Rng::uniform() {
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

double Rng::exponential(double mean) {
  assert(mean > 0);
  return -mean * std::log1p(-uniform());
}

double Rng::weibull(double shape, double scale) {
  assert(shape > 0 && scale > 0);
  return scale * std::pow(-std::log1p(-uniform()), 1 / shape);
}

std::size_t Rng::index(std::size_t n) {
  assert(n > 0);
  const std::uint64_t range = n;
  // The largest multiple of n that fits: draws at or above it would favour small values.
  const std::uint64_t limit =
      std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % range;
  std::uint64_t draw = engine_();
  while (draw >= limit)
    draw = engine_();
  return static_cast<std::size_t>(draw % range);
}

}  // namespace hearth::traces
