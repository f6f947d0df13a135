#pragma once
// Strings that exercise a tokenizer: claims to fact-check, many scripts with composed and
// decomposed marks, emoji sequences, code, whitespace runs, numbers, contractions in both cases
// and special-token text, alone and mixed. The same seed gives the same strings everywhere.

#include <cstdint>
#include <string>
#include <vector>

namespace hearth::testing {

std::vector<std::string> tokenizer_test_strings(std::uint32_t seed, std::size_t count);

}  // namespace hearth::testing
