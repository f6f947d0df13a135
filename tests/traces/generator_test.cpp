// The generators: reproducible from a seed, faithful to each setting, and the campus preset's
// pool as GENERATORS.md describes it.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "tests/traces/helpers.hpp"
#include "traces/generator.hpp"
#include "traces/generator_spec.hpp"
#include "traces/summary.hpp"
#include "traces/trace_writer.hpp"

namespace hearth::traces {
namespace {

using testing::input_error;

std::string text_of(const Trace& trace) {
  std::ostringstream out;
  write_trace(out, trace, {});
  return out.str();
}

// Generates, writes and parses back: every generated trace must obey the format.
Trace generated(const GeneratorConfig& config) {
  check_generator_config(config);
  return parse_trace_text(text_of(generate_trace(config)), "generated.csv");
}

GeneratorConfig big_pool(double rate_per_h, double duration_s) {
  GeneratorConfig c;
  c.pool = {{"T4-16GB", 100000}};
  c.max_held = 100000;
  c.arrivals = {Arrivals::Kind::poisson, rate_per_h, 0, 0};
  c.duration_s = duration_s;
  return c;
}

TEST_CASE("the same seed gives the same trace, byte for byte") {
  auto config = preset("campus");
  config.duration_s = 6 * 3600;
  config.seed = 42;
  const auto first = text_of(generate_trace(config));
  CHECK(first.size() > 1000);
  CHECK(text_of(generate_trace(config)) == first);
}

TEST_CASE("a different seed gives a different trace") {
  auto config = preset("campus");
  config.duration_s = 6 * 3600;
  const auto seed1 = text_of(generate_trace(config));
  config.seed = 2;
  CHECK(text_of(generate_trace(config)) != seed1);
}

TEST_CASE("campus: 567 GPUs of six types, at most 186 held at once, and near that at night") {
  const auto config = preset("campus");
  std::size_t pool = 0;
  for (const auto& g : config.pool)
    pool += g.count;
  CHECK(pool == 567);
  CHECK(config.max_held == 186);

  const auto trace = generated(config);
  const auto s = summarize(trace);
  CHECK(s.peak_up <= 186);
  CHECK(s.peak_up >= 180);
  CHECK(s.notices == 0);  // owners reclaim without notice
  CHECK(s.preemptions > 100);
  std::set<std::string> types;
  for (const auto& t : s.by_type)
    types.insert(t.gpu_type);
  CHECK(types == std::set<std::string>{"A100-40GB", "A10-24GB", "RTX6000-24GB", "T4-16GB",
                                       "TITANX-12GB", "V100-32GB"});
  CHECK(s.end_s == 86400);
}

TEST_CASE("campus: owners reclaim more around 14:00 than around 02:00") {
  auto config = preset("campus");
  config.duration_s = 7 * 86400;
  config.lifetime = {};  // only owners end a worker's life
  const auto trace = generated(config);
  std::size_t day = 0, night = 0;
  for (const auto& e : trace.events) {
    if (e.kind != EventKind::down) continue;
    const double hour = std::fmod(e.time_s / 3600, 24);
    if (hour >= 10 && hour < 18) ++day;
    if (hour >= 22 || hour < 6) ++night;
  }
  CHECK(day > 2 * night);
}

TEST_CASE("poisson arrivals come at the asked rate") {
  const auto s = summarize(generated(big_pool(3600, 10 * 3600)));
  // 36000 expected; the standard deviation is 190.
  CHECK(s.ups > 36000 - 760);
  CHECK(s.ups < 36000 + 760);
  CHECK(s.preemptions == 0);  // no lifetime and no reclaim: nobody leaves
}

TEST_CASE("bursts bring their size of offers at one instant") {
  auto config = big_pool(0, 48 * 3600);
  config.arrivals = parse_arrivals("bursts:1h:5");
  const auto trace = generated(config);
  std::map<double, int> ups_at;
  for (const auto& e : trace.events)
    ups_at[e.time_s] += e.kind == EventKind::up;
  CHECK(ups_at.size() > 20);  // about 48 bursts
  for (const auto& [t, n] : ups_at)
    CHECK(n == 5);
}

TEST_CASE("max-held caps the workers held at once, and the pool caps it too") {
  auto config = big_pool(3600, 3600);
  config.max_held = 10;
  CHECK(summarize(generated(config)).peak_up == 10);
  config.pool = {{"A10-24GB", 4}};
  CHECK(summarize(generated(config)).peak_up == 4);
}

TEST_CASE("initial offers bring workers up at time 0") {
  auto config = big_pool(0, 3600);
  config.initial = 12;
  const auto s = summarize(generated(config));
  CHECK(s.ups == 12);
  CHECK(s.peak_at_s == 0);
}

TEST_CASE("a notice comes notice_s before each down, or at the up when the worker is younger") {
  auto config = big_pool(60, 48 * 3600);
  config.lifetime = parse_lifetime("exp:10m");
  config.notice_s = 120;
  const auto trace = generated(config);
  std::map<std::string, double> up_at, notice_at;
  std::size_t downs = 0;
  for (const auto& e : trace.events) {
    if (e.kind == EventKind::up) up_at[e.worker] = e.time_s;
    if (e.kind == EventKind::notice) {
      notice_at[e.worker] = e.time_s;
      CHECK(e.grace_s <= 120);
    }
    if (e.kind != EventKind::down) continue;
    ++downs;
    REQUIRE(notice_at.contains(e.worker));
    const double expected = std::max(up_at[e.worker], e.time_s - 120);
    CHECK(std::abs(notice_at[e.worker] - expected) < 0.0015);
    notice_at.erase(e.worker);
  }
  CHECK(downs > 2000);
}

TEST_CASE("empirical lifetimes are drawn from a trace's completed up periods") {
  const auto source = (testing::kTestDataDir / "spotserve-style-unseen.trace.csv").string();
  auto config = big_pool(30, 48 * 3600);
  config.lifetime = parse_lifetime("empirical:" + source);
  CHECK(config.lifetime.samples_s == std::vector<double>{900, 1800, 1500, 3600, 4500});
  std::set<double> seen;
  for (double lifetime : completed_lifetimes_s(generated(config))) {
    seen.insert(std::round(lifetime * 1000) / 1000);  // times are rounded to the millisecond
  }
  CHECK(seen == std::set<double>{900, 1500, 1800, 3600, 4500});
}

TEST_CASE("generator settings parse from their command-line spelling") {
  CHECK(parse_duration_s("90") == 90);
  CHECK(parse_duration_s("90s") == 90);
  CHECK(parse_duration_s("30m") == 1800);
  CHECK(parse_duration_s("1.5h") == 5400);
  CHECK(parse_duration_s("7d") == 604800);
  const auto pool = parse_pool("A100-40GB=32,T4-16GB=47");
  REQUIRE(pool.size() == 2);
  CHECK(pool[1].gpu_type == "T4-16GB");
  CHECK(pool[1].count == 47);
  const auto arrivals = parse_arrivals("poisson:360");
  CHECK(arrivals.kind == Arrivals::Kind::poisson);
  CHECK(arrivals.rate_per_h == 360);
  const auto weibull = parse_lifetime("weibull:0.7:4h");
  CHECK(weibull.kind == Lifetime::Kind::weibull);
  CHECK(weibull.shape == 0.7);
  CHECK(weibull.scale_s == 14400);
  const auto reclaim = parse_reclaim("daily:0.1:0.8:14");
  CHECK(reclaim.rate_per_h == 0.1);
  CHECK(reclaim.amplitude == 0.8);
  CHECK(reclaim.peak_hour == 14);
  CHECK(parse_reclaim("none").rate_per_h == 0);
  CHECK(parse_lifetime("none").kind == Lifetime::Kind::unlimited);
}

TEST_CASE("malformed generator settings are rejected with what was expected") {
  CHECK(input_error([] { parse_duration_s("soon"); }) ==
        "duration 'soon': expected a duration like 90, 90s, 30m, 24h or 7d");
  CHECK(input_error([] { parse_pool("A100-40GB"); }) ==
        "pool 'A100-40GB': expected GPU_TYPE=COUNT,... like A100-40GB=32,T4-16GB=47");
  CHECK(input_error([] { parse_pool("T4-16GB=2,T4-16GB=3"); }) ==
        "pool 'T4-16GB=2,T4-16GB=3': T4-16GB appears twice");
  CHECK(input_error([] { parse_arrivals("poisson:-1"); }) ==
        "arrivals 'poisson:-1': expected poisson:RATE_PER_H or bursts:MEAN_GAP:SIZE");
  CHECK(input_error([] { parse_lifetime("weibull:0.7"); }) ==
        "lifetime 'weibull:0.7': expected none, exp:MEAN, weibull:SHAPE:SCALE or "
        "empirical:TRACE_FILE");
  CHECK(input_error([] { parse_reclaim("daily:0.1:1.5:14"); }) ==
        "reclaim 'daily:0.1:1.5:14': expected none or daily:RATE_PER_H:AMPLITUDE:PEAK_HOUR "
        "(amplitude 0-1, hour 0-24)");
  CHECK(input_error([] { preset("cloud"); }) == "unknown preset 'cloud' (known: campus)");
  CHECK(input_error([] { check_generator_config(GeneratorConfig{}); }) ==
        "generate needs a pool (--pool or --preset)");
}

TEST_CASE("a trace past the generator's limits is refused, saying which limit it met") {
  // The harness-sized limits; the defaults are the same code with larger numbers.
  const GeneratorLimits limits{.max_machines = 1000, .max_steps = 20000, .max_events = 5000};
  auto config = big_pool(1e9, 365 * 86400.0);  // a billion offers an hour for a year
  config.pool = {{"T4-16GB", 600}, {"A10-24GB", 401}};
  CHECK(input_error([&] { generate_trace(config, limits); }) ==
        "the pool has more than 1000 machines, the most a generated trace takes");
  config.pool = {{"T4-16GB", 600}, {"A10-24GB", std::numeric_limits<std::size_t>::max()}};
  CHECK(input_error([&] { generate_trace(config, limits); }) ==
        "the pool has more than 1000 machines, the most a generated trace takes");

  // Offers every few microseconds, all refused once 10 are held: steps, not events, run out.
  config.pool = {{"T4-16GB", 1000}};
  config.max_held = 10;
  CHECK_THAT(
      input_error([&] { generate_trace(config, limits); }),
      Catch::Matchers::StartsWith(
          "the trace takes more than 20000 steps (offers, and arrival and reclaim draws) by 0 s of "
          "its 31536000 s: lower the arrival rate"));
  // A burst of 10^18 offers at one instant is as many steps.
  config.arrivals = {Arrivals::Kind::bursts, 0, 3600, std::size_t{1} << 60};
  CHECK_THAT(input_error([&] { generate_trace(config, limits); }),
             Catch::Matchers::StartsWith("the trace takes more than 20000 steps"));

  // Short lives and many offers: the events run out first.
  config.arrivals = {Arrivals::Kind::poisson, 3600, 0, 0};
  config.lifetime = {Lifetime::Kind::exponential, 1, 0, 0, {}, {}};
  CHECK_THAT(input_error([&] { generate_trace(config, limits); }),
             Catch::Matchers::StartsWith("the trace has more than 5000 events by "));

  // Within them, the same config makes its trace.
  config.duration_s = 600;
  CHECK(generate_trace(config, limits).events.size() > 100);
}

TEST_CASE("the campus preset's command line spells out every setting") {
  CHECK(generator_command(preset("campus")) ==
        "hearth trace generate --seed 1 --duration 86400 --start-hour 0 --pool "
        "TITANX-12GB=200,A10-24GB=128,RTX6000-24GB=96,V100-32GB=64,T4-16GB=47,A100-40GB=32 "
        "--max-held 186 --initial 0 --arrivals poisson:180 --lifetime weibull:0.7:14400 "
        "--reclaim daily:0.1:0.8:14 --notice-s 0");
}

}  // namespace
}  // namespace hearth::traces
