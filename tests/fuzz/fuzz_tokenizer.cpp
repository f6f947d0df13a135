// tokenizer.json from a model hub: read, then encode and decode a fixed text with it.

#include "real_backend/text/tokenizer.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hearth;
  fuzz::expect_input_error([&] {
    const auto tok = text::Tokenizer::from_json(fuzz::as_text(data, size));
    const auto ids = tok.encode("Hello, world! 123 \xe4\xbd\xa0\xe5\xa5\xbd <|endoftext|>\n");
    tok.decode(ids);
  });
  return 0;
}
