#pragma once
// Random draws that are the same on every platform for the same seed: the engine is
// std::mt19937_64, whose output the C++ standard fixes, and each distribution is computed here
// from its raw bits, because std::*_distribution may differ between standard libraries.

#include <cstddef>
#include <cstdint>
#include <random>

namespace hearth::traces {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  // In [0, 1), from the top 53 bits of one draw.
  double uniform();
  // Exponential with the given mean (> 0), by inversion: -mean * ln(1 - U).
  double exponential(double mean);
  // Weibull with shape k > 0 and scale > 0, by inversion: scale * (-ln(1 - U))^(1/k).
  double weibull(double shape, double scale);
  // Uniform in [0, n) for n > 0, by rejection, so no value is favoured.
  std::size_t index(std::size_t n);

 private:
  std::mt19937_64 engine_;
};

}  // namespace hearth::traces
