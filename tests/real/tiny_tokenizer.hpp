#pragma once
// A tokenizer for tests of model directories: a BPE tokenizer.json of 41 ids (<unk>, <s>, </s>,
// the 26 lowercase letters, and <|im_end|> added as id 40, the highest), for `hearth model init`
// to size a vocabulary by.

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace hearth::testing {

// Writes dir/tokenizer.json and, if asked, a tokenizer_config.json naming <s> and <|im_end|>.
inline void write_tiny_tokenizer(const std::filesystem::path& dir, bool with_config) {
  nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int i = 0; i < 26; ++i)
    vocab[std::string(1, static_cast<char>('a' + i))] = 3 + i;
  nlohmann::json t = {
      {"version", "1.0"},
      {"added_tokens",
       {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
        {{"id", 1}, {"content", "<s>"}, {"special", true}},
        {{"id", 2}, {"content", "</s>"}, {"special", true}},
        {{"id", 40}, {"content", "<|im_end|>"}, {"special", true}}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
  std::ofstream(dir / "tokenizer.json") << t.dump();
  if (with_config) {
    std::ofstream(dir / "tokenizer_config.json")
        << R"({"bos_token": "<s>", "eos_token": {"content": "<|im_end|>"}})";
  }
}

}  // namespace hearth::testing
