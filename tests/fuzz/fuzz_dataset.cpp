// A job's dataset (JSON lines of {"id", "prompt" or "messages", ...}).

#include <sstream>

#include "real_backend/manager/dataset.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hearth;
  std::istringstream in{std::string(fuzz::as_text(data, size))};
  fuzz::expect_input_error([&] { real::read_dataset(in, "data.jsonl"); });
  return 0;
}
