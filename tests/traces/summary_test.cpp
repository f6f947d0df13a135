// What `hearth trace info` reports, on a trace small enough to work out by hand.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>

#include "traces/availability.hpp"
#include "traces/summary.hpp"
#include "traces/trace.hpp"

namespace hearth::traces {
namespace {

// a (A100) up 0-40 with a notice at 30; b (T4) up 0-20 and again from 40; c (T4) up from 10.
const char* const kByHand =
    "time_s,event,worker,gpu_type,grace_s\n"
    "0,up,a,A100-40GB,\n"
    "0,up,b,T4-16GB,\n"
    "10,up,c,T4-16GB,\n"
    "20,down,b,,\n"
    "30,notice,a,,10\n"
    "40,down,a,,\n"
    "40,up,b,T4-16GB,\n"
    "100,end,,,\n";

TEST_CASE("the summary counts events, workers, peak, mean and GPU-seconds from 0 to the end") {
  const auto s = summarize(parse_trace_text(kByHand, "t.csv"));
  CHECK(s.end_s == 100);
  CHECK(s.first_event_s == 0);
  CHECK(s.events == 7);
  CHECK(s.workers == 3);
  CHECK(s.ups == 4);
  CHECK(s.preemptions == 2);
  CHECK(s.notices == 1);
  CHECK(s.peak_up == 3);
  CHECK(s.peak_at_s == 10);
  // 2 up for 10 s, 3 for 10 s, 2 for 20 s, 2 for 60 s (b and c, still up at the end).
  CHECK(s.gpu_seconds == 210);
  CHECK(s.mean_up == 2.1);
  CHECK(s.up_at_end == 2);
}

TEST_CASE("lifetime quantiles cover completed up periods only; open ones are left out") {
  const auto s = summarize(parse_trace_text(kByHand, "t.csv"));
  REQUIRE(s.lifetime.has_value());
  CHECK(s.lifetime->completed == 2);  // b for 20 s, a for 40 s; c and b's return are open
  CHECK(s.lifetime->p10_s == 20);
  CHECK(s.lifetime->p50_s == 20);
  CHECK(s.lifetime->p90_s == 40);
  CHECK(s.lifetime->mean_s == 30);
}

TEST_CASE("the summary splits workers, peak and GPU-seconds by GPU type") {
  const auto s = summarize(parse_trace_text(kByHand, "t.csv"));
  REQUIRE(s.by_type.size() == 2);
  CHECK(s.by_type[0].gpu_type == "A100-40GB");
  CHECK(s.by_type[0].workers == 1);
  CHECK(s.by_type[0].peak_up == 1);
  CHECK(s.by_type[0].gpu_seconds == 40);
  CHECK(s.by_type[0].mean_up == 0.4);
  CHECK(s.by_type[1].gpu_type == "T4-16GB");
  CHECK(s.by_type[1].workers == 2);
  CHECK(s.by_type[1].peak_up == 2);
  CHECK(s.by_type[1].gpu_seconds == 170);
  CHECK(s.by_type[1].mean_up == 1.7);
}

TEST_CASE("a trace where nothing ever goes down has no lifetime quantiles") {
  const auto s = summarize(
      parse_trace_text("time_s,event,worker,gpu_type\n5,up,a,T4-16GB\n10,end,,\n", "t.csv"));
  CHECK_FALSE(s.lifetime.has_value());
  CHECK(s.gpu_seconds == 5);
  CHECK(s.mean_up == 0.5);
}

TEST_CASE("nearest-rank quantiles pick a value of the data") {
  const std::vector<double> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  CHECK(nearest_rank(v, 0.1) == 1);
  CHECK(nearest_rank(v, 0.5) == 5);
  CHECK(nearest_rank(v, 0.9) == 9);
  CHECK(nearest_rank(v, 0.95) == 10);
  CHECK(nearest_rank(v, 1.0) == 10);
  CHECK(nearest_rank({42}, 0.1) == 42);
}

TEST_CASE("the availability series steps once per instant, after all its events") {
  const auto series = availability_series(parse_trace_text(kByHand, "t.csv"));
  CHECK(series.gpu_types == std::vector<std::string>{"A100-40GB", "T4-16GB"});
  REQUIRE(series.steps.size() == 4);
  CHECK(series.steps[0].time_s == 0);
  CHECK(series.steps[0].up == 2);
  CHECK(series.steps[1].time_s == 10);
  CHECK(series.steps[1].up == 3);
  CHECK(series.steps[2].time_s == 20);
  CHECK(series.steps[2].up == 2);
  // At 40 a leaves and b returns: the total stays 2, the mix changes from A100+T4 to T4+T4.
  CHECK(series.steps[3].time_s == 40);
  CHECK(series.steps[3].up == 2);
  CHECK(series.steps[3].up_by_type == std::vector<std::size_t>{0, 2});
  CHECK(series.end_s == 100);
}

TEST_CASE("a worker swapped for another of its type at one instant makes no step") {
  const auto series = availability_series(parse_trace_text(
      "time_s,event,worker,gpu_type\n0,up,a,T4-16GB\n5,down,a,\n5,up,b,T4-16GB\n9,end,,\n",
      "t.csv"));
  REQUIRE(series.steps.size() == 1);
  CHECK(series.steps[0].up == 1);
}

}  // namespace
}  // namespace hearth::traces
