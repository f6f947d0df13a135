// The job file (`hearth run JOB.toml`, docs/real-backend.md).

#include "real_backend/manager/job_file.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hearth;
  fuzz::expect_input_error([&] { real::read_job_text(fuzz::as_text(data, size), "job.toml"); });
  return 0;
}
