// Every message the manager, a worker and a peer decode (real_backend/wire/protocol.hpp): what
// decodes must encode back to the very same bytes.

#include <cstdlib>

#include "real_backend/wire/protocol.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hearth;
  const std::string_view bytes = fuzz::as_text(data, size);
  fuzz::expect_input_error([&] {
    const real::Message m = real::decode(bytes);
    if (real::encode(m) != bytes) std::abort();  // a message decodes one way only
    real::message_name(m);
  });
  return 0;
}
