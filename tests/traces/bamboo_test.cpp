// Converting Bamboo's count series: which instances leave, time units, malformed series, and the
// published files pinned by their counts.

#include <fmt/core.h>
#include <catch2/catch_test_macros.hpp>

#include <filesystem>

#include "tests/traces/helpers.hpp"
#include "traces/convert_bamboo.hpp"
#include "traces/summary.hpp"
#include "traces/text.hpp"

namespace hearth::traces {
namespace {

using testing::input_error;
using testing::kPublicDir;

// 0 alive, then 3 at 10 s, 1 at 20 s, 2 at 30 s; each change written as two rows.
const char* const kSeries =
    "0,0\n"
    "10,0\n"
    "10,3\n"
    "20,3\n"
    "20,1\n"
    "30,1\n"
    "30,2\n";

BambooOptions options(LeaveOrder leave = LeaveOrder::newest_first, TimeUnit unit = TimeUnit::s) {
  return {unit, "T4-16GB", leave, "spot-"};
}

std::string story(const Trace& trace) {
  std::string s;
  for (const auto& e : trace.events) {
    s += std::to_string(static_cast<int>(e.time_s)) + " " + to_string(e.kind) + " " + e.worker +
         "\n";
  }
  return s;
}

TEST_CASE("bamboo: when the count drops, the most recently added instances leave first") {
  const auto trace = convert_bamboo(kSeries, "b.csv", options());
  CHECK(story(trace) ==
        "10 up spot-1\n"
        "10 up spot-2\n"
        "10 up spot-3\n"
        "20 down spot-3\n"
        "20 down spot-2\n"
        "30 up spot-4\n");
  CHECK(trace.events[0].gpu_type == "T4-16GB");
  CHECK(trace.events[0].line == 3);
  CHECK(trace.events[3].line == 5);
  CHECK(trace.end_s == 30);
}

TEST_CASE("bamboo: with --leave oldest the longest-lived instances leave first") {
  const auto trace = convert_bamboo(kSeries, "b.csv", options(LeaveOrder::oldest_first));
  CHECK(story(trace) ==
        "10 up spot-1\n"
        "10 up spot-2\n"
        "10 up spot-3\n"
        "20 down spot-1\n"
        "20 down spot-2\n"
        "30 up spot-4\n");
}

TEST_CASE("counts: with --leave random the leavers are drawn, the same for the same seed") {
  // 20 up, then down to 10, 5, 0: every instance leaves once, in an order the seed decides.
  const char* series = "time,count\n0,20\n10,10\n20,5\n30,0\n";
  auto random = [&](std::uint64_t seed) {
    BambooOptions o = options(LeaveOrder::random);
    o.seed = seed;
    o.header = true;
    return convert_bamboo(series, "c.csv", o);
  };
  const Trace a = random(7);
  CHECK(story(a) == story(random(7)));
  CHECK(story(a) != story(random(8)));
  REQUIRE(a.events.size() == 40);
  CHECK(a.events.front().line == 2);  // the header is not a row
  // Not the newest-first or oldest-first order: the first ten leavers mix old and new.
  std::string leavers;
  for (std::size_t i = 20; i < 30; ++i)
    leavers += a.events[i].worker + " ";
  CHECK(leavers !=
        "spot-20 spot-19 spot-18 spot-17 spot-16 spot-15 spot-14 spot-13 spot-12 spot-11 ");
  CHECK(leavers != "spot-1 spot-2 spot-3 spot-4 spot-5 spot-6 spot-7 spot-8 spot-9 spot-10 ");
  // The counts over time are the rule's to keep whatever the order: 10 after 10 s, 5 after 20 s.
  const TraceSummary s = summarize(a);
  CHECK(s.peak_up == 20);
  CHECK(s.workers == 20);
  CHECK(s.gpu_seconds == 20 * 10 + 10 * 10 + 5 * 10);
  CHECK(parse_leave_order("random") == LeaveOrder::random);
}

TEST_CASE("counts: a header is taken only where allowed and only as the first row") {
  BambooOptions o = options();
  o.header = true;
  CHECK(convert_bamboo("time,count\n0,1\n5,0\n", "c.csv", o).events.size() == 2);
  CHECK(input_error([&] { convert_bamboo("0,1\ntime,count\n", "c.csv", o); }) ==
        "c.csv:2: time 'time' is not a number");
  CHECK(input_error([] { convert_bamboo("time,count\n0,1\n", "b.csv", options()); }) ==
        "b.csv:1: time 'time' is not a number");
}

TEST_CASE("skypilot: a spot-traces count per gap_seconds tick becomes a count series") {
  // Two instances, then three, one, none, two: ticks of 300 s; the trace ends a tick after the
  // last one.
  const char* json =
      R"({"metadata": {"gap_seconds": 300, "region": "us-west-2a"}, "data": [2, 3, 3, 1, 0, 2]})";
  const Trace t = convert_skypilot(json, "s.json", options());
  CHECK(story(t) ==
        "0 up spot-1\n"
        "0 up spot-2\n"
        "300 up spot-3\n"
        "900 down spot-3\n"
        "900 down spot-2\n"
        "1200 down spot-1\n"
        "1500 up spot-4\n"
        "1500 up spot-5\n");
  CHECK(t.end_s == 1800);
  CHECK(story(convert_skypilot(R"({"metadata": {"gap_seconds": 60}, "data": [true, false]})",
                               "s.json", options())) == "0 up spot-1\n60 down spot-1\n");
}

TEST_CASE("skypilot: files that are not spot-traces JSON are refused, saying what is wrong") {
  auto error = [](const char* json) {
    return input_error([&] { convert_skypilot(json, "s.json", options()); });
  };
  CHECK(error("[1, 2]") ==
        "s.json: expected {\"metadata\": {\"gap_seconds\": ...}, \"data\": "
        "[...]} (skypilot-org/spot-traces)");
  CHECK(error(R"({"metadata": {"gap_seconds": 0}, "data": [1]})") ==
        "s.json: metadata.gap_seconds must be more than 0 (is 0)");
  CHECK(error(R"({"metadata": {"gap_seconds": 300}, "data": []})") ==
        "s.json: data: expected a non-empty array of instance counts");
  CHECK(error(R"({"metadata": {"gap_seconds": 300}, "data": [1, 2.5]})") ==
        "s.json: data[1]: 2.5 is not a whole number of instances");
  CHECK(error(R"({"metadata": {"gap_seconds": 300}, "data": [1, -1]})") ==
        "s.json: data[1]: -1 is not a whole number of instances");
  CHECK(error(R"({"metadata": {"gap_seconds": 300}, "data": [0, 0]})") ==
        "s.json:1: no instance is ever alive");
  CHECK(error("{").starts_with("s.json: not JSON: "));
  // Found by fuzzing (tests/fuzz/corpus/convert/skypilot-number-overflow.bin): a number too big
  // for a double escaped as a JSON library exception and ended the program.
  CHECK(error(R"({"metadata": {"gap_seconds": 600}, "data": [1, 1e3083]})")
            .starts_with("s.json: not JSON: "));
}

TEST_CASE("bamboo: times are read in the unit the caller names") {
  const auto trace = convert_bamboo("0,0\n0.03,0\n0.03,2\n1.5,2\n1.5,1\n", "b.csv",
                                    options(LeaveOrder::newest_first, TimeUnit::h));
  REQUIRE(trace.events.size() == 3);
  CHECK(trace.events[0].time_s == 108);  // 0.03 h, rounded to the millisecond
  CHECK(trace.events[2].time_s == 5400);
  CHECK(trace.end_s == 5400);
}

TEST_CASE("bamboo: a series that starts with instances alive brings them up at its first time") {
  const auto trace = convert_bamboo("0,10\n41093,10\n41093,9\n", "b.csv", options());
  CHECK(trace.events.size() == 11);
  CHECK(trace.events[9].time_s == 0);
  CHECK(trace.events[10].kind == EventKind::down);
  CHECK(trace.events[10].worker == "spot-10");
}

TEST_CASE("bamboo: malformed series are rejected at their line") {
  const auto error = [](std::string_view text) {
    return input_error([&] { convert_bamboo(text, "b.csv", options()); });
  };
  CHECK(error("") == "b.csv:1: empty file: no time,count rows");
  CHECK(error("0,0\n10\n") == "b.csv:2: expected time,count but found 1 fields");
  CHECK(error("0,0\n10,x\n") == "b.csv:2: count 'x' is not a number");
  CHECK(error("0,0\n10,2.5\n") == "b.csv:2: count 2.5 is not a whole number");
  CHECK(error("0,0\n10,-1\n") == "b.csv:2: count -1 is negative");
  CHECK(error("0,0\n10,1e15\n") == "b.csv:2: count 1e15 is more than 100000 instances at once");
  // A few hundred bytes of large counts going up and down would make any number of events.
  std::string storm;
  for (int i = 0; i < 120; ++i)
    storm += fmt::format("{},{}\n", i, i % 2 == 0 ? 100000 : 0);
  CHECK(error(storm) == "b.csv:101: the series makes more than 10000000 up and down events");
  // Both limits are options (the fuzz harness sets them smaller).
  BambooOptions small = options();
  small.max_at_once = 5;
  small.max_events = 7;
  CHECK(input_error([&] { convert_bamboo("0,6\n", "b.csv", small); }) ==
        "b.csv:1: count 6 is more than 5 instances at once");
  CHECK(input_error([&] { convert_bamboo("0,5\n1,0\n", "b.csv", small); }) ==
        "b.csv:2: the series makes more than 7 up and down events");
  CHECK(error("0,1\n10,2\n5,3\n") == "b.csv:3: time 5 goes backwards (previous 10)");
  CHECK(error("0,0\n5,0\n") == "b.csv:1: no instance is ever alive");
}

TEST_CASE("bamboo: the leave order and the time unit are named, never guessed") {
  CHECK(parse_leave_order("newest") == LeaveOrder::newest_first);
  CHECK(parse_leave_order("oldest") == LeaveOrder::oldest_first);
  CHECK(input_error([] { parse_leave_order("fifo"); }) ==
        "leave order 'fifo' is not one of newest, oldest, random");
  CHECK(input_error([] { parse_time_unit("min"); }) == "time unit 'min' is not one of ms, s, h");
}

const std::filesystem::path kBamboo = kPublicDir / "bamboo-aws-spot";

Trace convert_published(const std::string& name, TimeUnit unit) {
  const auto path = (kBamboo / name).string();
  return convert_bamboo(read_text_file(path), path, options(LeaveOrder::newest_first, unit));
}

TEST_CASE("bamboo: the published series convert to pinned counts") {
  struct Expected {
    std::string file;
    TimeUnit unit;
    std::size_t events, workers, peak;
    double end_s;
  };
  const std::vector<Expected> published = {
      {"aws-spot-instances-g4dn-xlarge-us-east-1c-2020-11-20-1930-to-2020-11-21-2200.csv",
       TimeUnit::s, 177, 92, 12, 88194},
      {"aws-spot-instances-g4dn-xlarge-us-east-1d-2020-11-23-1730-to-2020-11-24-1530.csv",
       TimeUnit::s, 110, 59, 12, 45668},
      {"aws-spot-instances-p2-xlarge-us-east-1e-2020-11-23-1700-to-2020-11-24-0700.csv",
       TimeUnit::s, 16, 13, 10, 68252},
      {"aws-spot-instances-p2-xlarge-2020-11-20-to-2020-11-23.csv", TimeUnit::h, 370, 192, 16,
       319302},
  };
  for (const auto& p : published) {
    CAPTURE(p.file);
    const auto s = summarize(convert_published(p.file, p.unit));
    CHECK(s.events == p.events);
    CHECK(s.workers == p.workers);
    CHECK(s.peak_up == p.peak);
    CHECK(s.end_s == p.end_s);
  }
}

TEST_CASE("bamboo: a _scaled file (hours) tells the same story as its seconds original") {
  const std::string stem =
      "aws-spot-instances-g4dn-xlarge-us-east-1c-2020-11-20-1930-to-2020-11-21-2200";
  const auto seconds = convert_published(stem + ".csv", TimeUnit::s);
  const auto hours = convert_published(stem + "_scaled.csv", TimeUnit::h);
  REQUIRE(hours.events.size() == seconds.events.size());
  for (std::size_t i = 0; i < hours.events.size(); ++i) {
    CHECK(hours.events[i].worker == seconds.events[i].worker);
    CHECK(hours.events[i].kind == seconds.events[i].kind);
    // Three decimals of an hour: 3.6 s resolution, so at most 1.8 s apart.
    CHECK(std::abs(hours.events[i].time_s - seconds.events[i].time_s) <= 1.8);
  }
}

}  // namespace
}  // namespace hearth::traces
