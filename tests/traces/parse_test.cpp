// The trace format of traces/FORMAT.md as the parser enforces it: what a good trace means, and
// each class of bad input, reported as "file:line: what is wrong".

#include <catch2/catch_test_macros.hpp>

#include "tests/traces/helpers.hpp"
#include "traces/trace.hpp"

namespace hearth::traces {
namespace {

using testing::input_error;

constexpr const char* kHeader = "time_s,event,worker,gpu_type,grace_s,attributes\n";

// The trace of t.csv: the full header, then `rows`.
Trace trace_of(const std::string& rows) {
  return parse_trace_text(std::string(kHeader) + rows, "t.csv");
}

std::string error_in(const std::string& rows) {
  return input_error([&] { trace_of(rows); });
}

TEST_CASE("a trace gives its events in file order with line, GPU type, grace and attributes") {
  const auto trace = parse_trace_text(
      "# two workers, one warned before it goes\n"
      "time_s,event,worker,gpu_type,grace_s,attributes\n"
      "0,up,a,A100-40GB,,zone=east;rack=3\n"
      "\n"
      "5.5,up,b,T4-16GB,,\n"
      "10,notice,a,,30,\n"
      "40,down,a,,,\n"
      "50,end,,,,\n",
      "t.csv");
  REQUIRE(trace.events.size() == 4);
  const auto& a_up = trace.events[0];
  CHECK(a_up.time_s == 0);
  CHECK(a_up.worker == "a");
  CHECK(a_up.kind == EventKind::up);
  CHECK(a_up.gpu_type == "A100-40GB");
  CHECK(a_up.line == 3);
  CHECK(a_up.attributes == std::map<std::string, std::string>{{"rack", "3"}, {"zone", "east"}});
  CHECK(trace.events[1].time_s == 5.5);
  CHECK(trace.events[1].line == 5);
  CHECK(trace.events[1].attributes.empty());
  CHECK(trace.events[2].kind == EventKind::notice);
  CHECK(trace.events[2].grace_s == 30);
  CHECK(trace.events[3].kind == EventKind::down);
  CHECK(trace.events[3].gpu_type.empty());
  CHECK(trace.end_s == 50);
  CHECK(trace.end_line == 8);
  CHECK(trace.source == "t.csv");
}

TEST_CASE("without an end row a trace ends at its last event") {
  const auto trace = trace_of(
      "0,up,a,T4-16GB,,\n"
      "7,up,b,T4-16GB,,\n");
  CHECK(trace.end_s == 7);
  CHECK(trace.end_line == 0);
}

TEST_CASE("columns may come in any order, optional ones may be left out, CRLF and spaces pass") {
  const auto trace = parse_trace_text(
      "event, time_s, gpu_type, worker\r\n"
      "up, 1.25, V100-32GB, w-1\r\n"
      "down, 2, , w-1\r\n",
      "t.csv");
  REQUIRE(trace.events.size() == 2);
  CHECK(trace.events[0].time_s == 1.25);
  CHECK(trace.events[0].worker == "w-1");
  CHECK(trace.events[0].gpu_type == "V100-32GB");
  CHECK(trace.events[1].kind == EventKind::down);
}

TEST_CASE("a worker may come back after its down, even at the same instant") {
  const auto trace = trace_of(
      "0,up,a,T4-16GB,,\n"
      "9,down,a,,,\n"
      "9,up,a,T4-16GB,,\n");
  CHECK(trace.events.size() == 3);
  CHECK(trace.events[2].kind == EventKind::up);
}

TEST_CASE("time going backwards is rejected at its line") {
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "5,up,b,T4-16GB,,\n"
                 "3,down,a,,,\n") == "t.csv:4: time 3 goes backwards (previous 5 at line 3)");
}

TEST_CASE("a worker that is up cannot come up again") {
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "1,up,a,T4-16GB,,\n") == "t.csv:3: worker a is already up (since line 2)");
}

TEST_CASE("a worker keeps its GPU type when it comes back") {
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "1,down,a,,,\n"
                 "2,up,a,A10-24GB,,\n") ==
        "t.csv:4: worker a comes back as A10-24GB but was T4-16GB at line 2");
}

TEST_CASE("down and notice need a worker that is up") {
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "1,down,b,,,\n") == "t.csv:3: down for worker b, which is not up");
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "1,down,a,,,\n"
                 "2,down,a,,,\n") == "t.csv:4: down for worker a, which is not up");
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "1,notice,b,,30,\n") == "t.csv:3: notice for worker b, which is not up");
}

TEST_CASE("a down within a notice's grace keeps its promise") {
  const auto trace = trace_of(
      "0,up,a,T4-16GB,,\n"
      "10,notice,a,,30,\n"
      "40,down,a,,,\n");
  CHECK(trace.events.size() == 3);
}

TEST_CASE("unknown events are rejected") {
  CHECK(error_in("0,crash,a,,,\n") ==
        "t.csv:2: unknown event 'crash' (expected up, down, notice or end)");
  CHECK(error_in("0,UP,a,T4-16GB,,\n") ==
        "t.csv:2: unknown event 'UP' (expected up, down, notice or end)");
}

TEST_CASE("times and graces must be finite non-negative numbers") {
  CHECK(error_in("-1,up,a,T4-16GB,,\n") == "t.csv:2: time -1 is negative");
  CHECK(error_in("soon,up,a,T4-16GB,,\n") == "t.csv:2: time 'soon' is not a number");
  CHECK(error_in("12s,up,a,T4-16GB,,\n") == "t.csv:2: time '12s' is not a number");
  CHECK(error_in("nan,up,a,T4-16GB,,\n") == "t.csv:2: time nan is not a finite number");
  CHECK(error_in("inf,up,a,T4-16GB,,\n") == "t.csv:2: time inf is not a finite number");
  CHECK(error_in(",up,a,T4-16GB,,\n") == "t.csv:2: time is missing");
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "1,notice,a,,-5,\n") == "t.csv:3: grace_s -5 is negative");
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "1,notice,a,,NaN,\n") == "t.csv:3: grace_s NaN is not a finite number");
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "1,notice,a,,,\n") == "t.csv:3: grace_s is missing");
}

TEST_CASE("missing columns are rejected, in the header and in a row") {
  CHECK(input_error([] { parse_trace_text("time_s,event,worker\n0,up,a\n", "t.csv"); }) ==
        "t.csv:1: the header lacks column 'gpu_type' (it needs time_s,event,worker,gpu_type)");
  CHECK(error_in("0,up,a,T4-16GB\n") == "t.csv:2: row has 4 fields, the header has 6");
  CHECK(input_error([] {
          parse_trace_text("time_s,event,worker,gpu_type\n0,up,a,T4-16GB\n1,notice,a\n", "t.csv");
        }) == "t.csv:3: row has 3 fields, the header has 4");
  CHECK(input_error([] {
          parse_trace_text("time_s,event,worker,gpu_type\n0,up,a,T4-16GB\n1,notice,a,\n", "t.csv");
        }) == "t.csv:3: notice row, but the header has no grace_s column");
}

TEST_CASE("the header names known columns, each once") {
  CHECK(input_error([] {
          parse_trace_text("time_s,event,worker,gpu_type,zone\n0,up,a,T4-16GB,x\n", "t.csv");
        }) ==
        "t.csv:1: unknown column 'zone' in the header (columns are time_s, event, worker, "
        "gpu_type, grace_s, attributes)");
  CHECK(input_error([] {
          parse_trace_text("time_s,event,worker,gpu_type,time_s\n0,up,a,T4-16GB,0\n", "t.csv");
        }) == "t.csv:1: column 'time_s' appears twice in the header");
}

TEST_CASE("an empty trace is rejected") {
  CHECK(input_error([] { parse_trace_text("", "t.csv"); }) ==
        "t.csv:1: empty trace: no header and no events");
  CHECK(input_error([] { parse_trace_text("# nothing here\n\n", "t.csv"); }) ==
        "t.csv:1: empty trace: no header and no events");
  CHECK(input_error([] {
          parse_trace_text(std::string("# c\n") + kHeader + "9,end,,,,\n", "t.csv");
        }) == "t.csv:2: no events after the header: nothing is ever up");
}

TEST_CASE("each field belongs to its own kind of row") {
  CHECK(error_in("0,up,,T4-16GB,,\n") == "t.csv:2: up row without a worker");
  CHECK(error_in("0,up,a,,,\n") == "t.csv:2: up row without a gpu_type");
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "1,down,a,T4-16GB,,\n") ==
        "t.csv:3: gpu_type 'T4-16GB' given for event down; only up rows take gpu_type");
  CHECK(error_in("0,up,a,T4-16GB,5,\n") ==
        "t.csv:2: grace_s '5' given for event up; only notice rows take grace_s");
  CHECK(error_in("0,up,a,T4-16GB,,zone\n") == "t.csv:2: attribute 'zone' is not key=value");
  CHECK(error_in("0,up,a,T4-16GB,,k=1;k=2\n") == "t.csv:2: attribute 'k' appears twice");
}

TEST_CASE("the end row comes last, after every event, without a worker") {
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "5,end,,,,\n"
                 "6,up,b,T4-16GB,,\n") == "t.csv:4: row after the end row at line 3");
  CHECK(error_in("10,up,a,T4-16GB,,\n"
                 "5,end,,,,\n") == "t.csv:3: end 5 comes before the last event (10 at line 2)");
  CHECK(error_in("10,up,a,T4-16GB,,\n"
                 "15,end,a,,,\n") == "t.csv:3: the end row takes no worker");
}

TEST_CASE("a notice promises a down within its grace") {
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "10,notice,a,,30,\n"
                 "41,down,a,,,\n") ==
        "t.csv:4: worker a goes down at 41, later than its notice at line 3 promised (40)");
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "10,notice,a,,30,\n"
                 "60,end,,,,\n") ==
        "t.csv:3: notice promises worker a goes down by 40, but it is still up at the end (60)");
  CHECK(error_in("0,up,a,T4-16GB,,\n"
                 "10,notice,a,,30,\n"
                 "20,notice,a,,5,\n") ==
        "t.csv:4: second notice for worker a (the first is at line 3)");
}

TEST_CASE("a notice whose grace runs past the end is kept: the worker is still up at the end") {
  const auto trace = trace_of(
      "0,up,a,T4-16GB,,\n"
      "10,notice,a,,120,\n"
      "60,end,,,,\n");
  CHECK(trace.events.size() == 2);
  CHECK(trace.end_s == 60);
}

TEST_CASE("GPU types are checked against a cluster description's names") {
  const auto trace = trace_of(
      "0,up,a,T4-16GB,,\n"
      "1,up,b,H100-80GB,,\n");
  CHECK_NOTHROW(validate_gpu_types(trace, {"T4-16GB", "H100-80GB"}));
  CHECK(input_error([&] {
          validate_gpu_types(trace, {"A100-40GB", "T4-16GB"});
        }) ==
        "t.csv:3: unknown GPU type 'H100-80GB' (the cluster description has A100-40GB, T4-16GB)");
}

TEST_CASE("a file that cannot be read is reported with its path") {
  CHECK(input_error([] { parse_trace_file("/nonexistent/trace.csv"); }) ==
        "/nonexistent/trace.csv: cannot read: No such file or directory");
}

}  // namespace
}  // namespace hearth::traces
