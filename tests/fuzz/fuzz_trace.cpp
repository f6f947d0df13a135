// The availability-trace parser (traces/FORMAT.md), and what is computed from a trace it accepts.

#include "tests/fuzz/fuzz_support.hpp"
#include "traces/availability.hpp"
#include "traces/summary.hpp"
#include "traces/trace.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hearth;
  fuzz::expect_input_error([&] {
    const traces::Trace trace = traces::parse_trace_text(fuzz::as_text(data, size), "fuzz.csv");
    traces::check_trace(trace);
    traces::summarize(trace);
    traces::availability_series(trace);
  });
  return 0;
}
