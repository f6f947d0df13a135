// tokenizer_config.json's chat template (a Jinja subset) from a model hub: read, then render a
// fixed conversation with it.

#include "real_backend/text/chat_template.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hearth;
  fuzz::expect_input_error([&] {
    const auto t = text::ChatTemplate::from_tokenizer_config(fuzz::as_text(data, size));
    t.render({{"system", "Be brief."}, {"user", "Is the sky blue?"}}, true);
  });
  return 0;
}
