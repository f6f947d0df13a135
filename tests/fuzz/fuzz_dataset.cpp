// A job's dataset (JSON lines of {"id", "prompt" or "messages", ...}).

#include "real_backend/manager/dataset.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hearth;
  const auto path = fuzz::as_file(fuzz::as_text(data, size), "data.jsonl");
  fuzz::expect_input_error([&] { real::read_dataset(path); });
  return 0;
}
