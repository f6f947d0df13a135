// The random draws behind the generators: defined from std::mt19937_64's raw output (which the
// C++ standard fixes), so a seed gives the same trace with any standard library.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "traces/sampling.hpp"

namespace hearth::traces {
namespace {

using Catch::Matchers::WithinRel;

TEST_CASE("uniform is the top 53 bits of one mt19937_64 draw, and distributions invert it") {
  std::mt19937_64 engine(7);
  const double u1 = static_cast<double>(engine() >> 11) * 0x1.0p-53;
  const double u2 = static_cast<double>(engine() >> 11) * 0x1.0p-53;
  const double u3 = static_cast<double>(engine() >> 11) * 0x1.0p-53;
  Rng rng(7);
  CHECK(rng.uniform() == u1);
  CHECK(rng.exponential(10) == -10 * std::log1p(-u2));
  CHECK(rng.weibull(0.5, 3) == 3 * std::pow(-std::log1p(-u3), 2.0));
}

TEST_CASE("the standard fixes mt19937_64: its 10000th draw from the default seed") {
  std::mt19937_64 engine;
  engine.discard(9999);
  CHECK(engine() == 9981545732273789042ULL);
}

TEST_CASE("exponential and Weibull draws have the means their parameters give") {
  Rng rng(11);
  constexpr int kDraws = 200000;
  double exp_sum = 0, weibull_sum = 0;
  for (int i = 0; i < kDraws; ++i) {
    exp_sum += rng.exponential(3600);
    weibull_sum += rng.weibull(0.7, 14400);
  }
  // Standard errors: 3600/sqrt(n) = 0.22% of the mean; Weibull(0.7) has CV 1.46, 0.33%.
  CHECK_THAT(exp_sum / kDraws, WithinRel(3600.0, 0.01));
  CHECK_THAT(weibull_sum / kDraws, WithinRel(14400 * std::tgamma(1 + 1 / 0.7), 0.015));
}

TEST_CASE("index draws every value below n about equally often and nothing else") {
  Rng rng(3);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) {
    const auto k = rng.index(7);
    REQUIRE(k < 7);
    ++counts[k];
  }
  for (int c : counts)
    CHECK(std::abs(c - 10000) < 400);  // 4 standard deviations
}

}  // namespace
}  // namespace hearth::traces
