// The job file (`hearth run JOB.toml`, docs/real-backend.md).

#include "real_backend/manager/job_file.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hearth;
  const auto path = fuzz::as_file(fuzz::as_text(data, size), "job.toml");
  fuzz::expect_input_error([&] { real::read_job_file(path); });
  return 0;
}
