// Converting SpotServe's node events, CSV and JSON lines: meaning, errors, the published files
// pinned by their counts, and a SpotServe-style file written for this test that replays exactly.

#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <set>
#include <sstream>

#include "tests/traces/helpers.hpp"
#include "traces/convert_spotserve.hpp"
#include "traces/summary.hpp"
#include "traces/text.hpp"
#include "traces/trace_writer.hpp"

namespace hearth::traces {
namespace {

using testing::input_error;
using testing::kPublicDir;
using testing::kTestDataDir;

const SpotServeOptions kT4{TimeUnit::ms, "T4-16GB"};

std::string error_in(const char* text) {
  return input_error([&] { convert_spotserve(text, "s.csv", kT4); });
}

// The workers up after every event at or before t: what a replay of the trace sees at t.
std::set<std::string> alive_at(const Trace& trace, double t) {
  std::set<std::string> alive;
  for (const auto& e : trace.events) {
    if (e.time_s > t) break;
    if (e.kind == EventKind::up) alive.insert(e.worker);
    if (e.kind == EventKind::down) alive.erase(e.worker);
  }
  return alive;
}

TEST_CASE("spotserve CSV: add is up, remove is down, milliseconds become seconds") {
  const auto trace = convert_spotserve(
      "0,add,node1\n"
      "0,add,node2\n"
      "60000,remove,node1\n"
      "90500,add,node3\n",
      "s.csv", kT4);
  REQUIRE(trace.events.size() == 4);
  CHECK(trace.events[0].worker == "node1");
  CHECK(trace.events[0].gpu_type == "T4-16GB");
  CHECK(trace.events[2].kind == EventKind::down);
  CHECK(trace.events[2].time_s == 60);
  CHECK(trace.events[2].line == 3);
  CHECK(trace.events[3].time_s == 90.5);
  CHECK(trace.end_s == 90.5);
}

TEST_CASE("spotserve JSON lines: one line adds or removes several nodes; DONE ends the trace") {
  const auto trace = convert_spotserve(
      "[0, \"add\", {\"nodes\": [\"node-0\", \"node-1\", \"node-2\"]}]\n"
      "[60000, \"remove\", {\"nodes\": [\"node-1\"]}]\n"
      "[90000, \"DONE\", {\"nodes\": []}]\n",
      "seg.txt", kT4);
  REQUIRE(trace.events.size() == 4);
  CHECK(trace.events[2].worker == "node-2");
  CHECK(trace.events[3].kind == EventKind::down);
  CHECK(trace.events[3].line == 2);
  CHECK(trace.end_s == 90);
  CHECK(trace.end_line == 3);
}

TEST_CASE("spotserve: bad input is reported at the line of the published file") {
  CHECK(error_in("") == "s.csv:1: empty file: no node events");
  CHECK(error_in("0,add\n") == "s.csv:1: expected time_ms,add|remove,node but found 2 fields");
  CHECK(error_in("0,reboot,n1\n") == "s.csv:1: unknown action 'reboot' (expected add or remove)");
  CHECK(error_in("x,add,n1\n") == "s.csv:1: time 'x' is not a number");
  CHECK(error_in("-5,add,n1\n") == "s.csv:1: time -5 is negative");
  CHECK(error_in("0,add,n1\n10,remove,n2\n") == "s.csv:2: down for worker n2, which is not up");
  CHECK(error_in("0,add,n1\n10,add,n1\n") == "s.csv:2: worker n1 is already up (since line 1)");
  CHECK(error_in("5000,add,n1\n1000,add,n2\n") ==
        "s.csv:2: time 1000 goes backwards (previous 5000 at line 1)");
  CHECK(error_in("[0, \"add\", {\"nodes\": [\"a\"]}]\n[5, \"DONE\", {\"nodes\": []}]\n"
                 "[9, \"add\", {\"nodes\": [\"b\"]}]\n") == "s.csv:3: event after DONE at line 2");
  CHECK(error_in("[0, \"add\", {\"nodes\": [\"a\"]}]\n[5, \"boot\", {\"nodes\": []}]\n") ==
        "s.csv:2: unknown action 'boot' (expected add, remove or DONE)");
  CHECK(error_in("[0, \"add\", [\"a\"]]\n") ==
        "s.csv:1: expected [time_ms, \"add\"|\"remove\", {\"nodes\": [...]}]");
  CHECK(error_in("[0, \"add\", {\"nodes\": [\"a\"]}\n").starts_with("s.csv:1: not JSON: "));
  // A number too big for a double: a JSON library exception that used to escape.
  CHECK(error_in("[1e999, \"add\", {\"nodes\": [\"a\"]}]\n").starts_with("s.csv:1: not JSON: "));
}

const std::filesystem::path kSpotServe = kPublicDir / "spotserve-aws-spot";

TEST_CASE("spotserve: the published g4dn.csv has 153 events and at most 24 nodes alive") {
  const auto path = (kSpotServe / "g4dn.csv").string();
  const auto s = summarize(convert_spotserve(read_text_file(path), path, kT4));
  CHECK(s.events == 153);
  CHECK(s.peak_up == 24);
  CHECK(s.workers == 79);
  CHECK(s.preemptions == 74);
  CHECK(s.up_at_end == 5);
  CHECK(s.end_s == 38760);
}

TEST_CASE("spotserve: the published JSON-lines segments convert to pinned counts") {
  struct Expected {
    std::string file;
    std::size_t events, workers, peak;
    double end_s;
  };
  for (const auto& p : std::vector<Expected>{{"trace_0203.txt", 16, 13, 10, 540},
                                             {"trace_0304.txt", 14, 11, 10, 1320},
                                             {"trace_0506.txt", 15, 12, 10, 1440}}) {
    CAPTURE(p.file);
    const auto path = (kSpotServe / p.file).string();
    const auto s = summarize(convert_spotserve(read_text_file(path), path, kT4));
    CHECK(s.events == p.events);
    CHECK(s.workers == p.workers);
    CHECK(s.peak_up == p.peak);
    CHECK(s.end_s == p.end_s);
  }
}

TEST_CASE("a SpotServe-style CSV never seen before converts, round-trips and replays exactly") {
  const auto path = (kTestDataDir / "spotserve-style-unseen.csv").string();
  const auto converted = convert_spotserve(read_text_file(path), path, {TimeUnit::ms, "V100-32GB"});
  std::ostringstream out;
  write_trace(out, converted, {"converted for a test"});
  const auto trace = parse_trace_text(out.str(), "unseen.csv");
  // The conversion worked out by hand, row for row.
  const auto by_hand = (kTestDataDir / "spotserve-style-unseen.trace.csv").string();
  std::ostringstream expected;
  write_trace(expected, parse_trace_file(by_hand), {"converted for a test"});
  CHECK(out.str() == expected.str());

  CHECK(alive_at(trace, 0) == std::set<std::string>{"gpu-a", "gpu-b", "gpu-c"});
  CHECK(alive_at(trace, 300) == std::set<std::string>{"gpu-a", "gpu-b", "gpu-c", "gpu-d"});
  CHECK(alive_at(trace, 900) == std::set<std::string>{"gpu-a", "gpu-c", "gpu-d", "gpu-e"});
  CHECK(alive_at(trace, 1800) == std::set<std::string>{"gpu-c", "gpu-e"});
  CHECK(alive_at(trace, 2400) == std::set<std::string>{"gpu-b", "gpu-c", "gpu-e"});
  CHECK(alive_at(trace, 3599.999) == std::set<std::string>{"gpu-b", "gpu-c", "gpu-e", "gpu-f"});
  CHECK(alive_at(trace, 5400) == std::set<std::string>{"gpu-b", "gpu-f"});

  const auto s = summarize(trace);
  CHECK(s.events == 12);
  CHECK(s.workers == 6);
  CHECK(s.ups == 7);  // gpu-b comes back
  CHECK(s.preemptions == 5);
  CHECK(s.peak_up == 4);
  CHECK(s.peak_at_s == 300);
  CHECK(s.end_s == 5400);
  CHECK(s.gpu_seconds == 17700);
  CHECK(s.up_at_end == 2);
  REQUIRE(s.lifetime.has_value());
  CHECK(s.lifetime->completed == 5);  // b 900, d 1500, a 1800, c 3600, e 4500
  CHECK(s.lifetime->p10_s == 900);
  CHECK(s.lifetime->p50_s == 1800);
  CHECK(s.lifetime->p90_s == 4500);
  CHECK(s.lifetime->mean_s == 2460);
  REQUIRE(s.by_type.size() == 1);
  CHECK(s.by_type[0].gpu_type == "V100-32GB");
}

}  // namespace
}  // namespace hearth::traces
