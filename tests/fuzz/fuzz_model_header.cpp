// Model file headers from model hubs and peers: the first byte picks hearth's raw format or
// safetensors; the rest is the start of the file, whose whole size is taken as 1 GiB more.

#include "real_backend/model/raw_model.hpp"
#include "real_backend/model/safetensors.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hearth;
  if (size == 0) return 0;
  const std::string_view bytes = fuzz::as_text(data + 1, size - 1);
  const std::uint64_t file_size = bytes.size() + (std::uint64_t{1} << 30);
  fuzz::expect_input_error([&] {
    if (data[0] % 2 == 0) {
      if (bytes.size() >= 16) real::raw_model_header_end(bytes.substr(0, 16));
      real::parse_raw_model(bytes, file_size, "fuzz.hearth");
    } else {
      if (bytes.size() >= 8) real::safetensors_header_end(bytes.substr(0, 8), file_size, "fuzz");
      real::parse_safetensors(bytes, file_size, "fuzz.safetensors");
    }
  });
  return 0;
}
