// The writer: what it prints, and that the parser reads back exactly what was written.

#include <catch2/catch_test_macros.hpp>

#include <sstream>

#include "traces/trace.hpp"
#include "traces/trace_writer.hpp"

namespace hearth::traces {
namespace {

std::string written(const Trace& trace, const std::vector<std::string>& comments = {}) {
  std::ostringstream out;
  write_trace(out, trace, comments);
  return out.str();
}

TEST_CASE("the writer prints comments, the header, one row per event and an end row") {
  Trace trace;
  trace.events = {{0, "a", EventKind::up, "T4-16GB", 0, 0, {{"zone", "us-east-1c"}}},
                  {108, "a", EventKind::notice, "", 120, 0, {}},
                  {228, "a", EventKind::down, "", 0, 0, {}}};
  trace.end_s = 3600.5;
  CHECK(written(trace, {"made by hand"}) ==
        "# made by hand\n"
        "time_s,event,worker,gpu_type,grace_s,attributes\n"
        "0,up,a,T4-16GB,,zone=us-east-1c\n"
        "108,notice,a,,120,\n"
        "228,down,a,,,\n"
        "3600.5,end,,,,\n");
}

TEST_CASE("a written trace parses back to the same events, attributes and end") {
  const auto original = parse_trace_text(
      "time_s,event,worker,gpu_type,grace_s,attributes\n"
      "0,up,a,A100-40GB,,owner=lab1;slot=2\n"
      "0.001,up,b,TITANX-12GB,,\n"
      "17.25,notice,b,,2.5,\n"
      "19.75,down,b,,,\n"
      "19.75,up,b,TITANX-12GB,,\n"
      "86400,end,,,,\n",
      "in.csv");
  const auto again = parse_trace_text(written(original), "out.csv");
  REQUIRE(again.events.size() == original.events.size());
  for (std::size_t i = 0; i < again.events.size(); ++i) {
    const auto& x = original.events[i];
    const auto& y = again.events[i];
    CHECK(x.time_s == y.time_s);
    CHECK(x.worker == y.worker);
    CHECK(x.kind == y.kind);
    CHECK(x.gpu_type == y.gpu_type);
    CHECK(x.grace_s == y.grace_s);
    CHECK(x.attributes == y.attributes);
  }
  CHECK(again.end_s == 86400);
  CHECK(written(again) == written(original));
}

}  // namespace
}  // namespace hearth::traces
