#pragma once
// A file's added tokens and how text is cut on them, as Hugging Face's tokenizers do: before
// normalization on the contents of tokens that are not `normalized`, after it on the normalized
// contents of the others; the longest token at the leftmost position wins.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::text {

struct AddedToken {
  std::string content;
  std::int32_t id = 0;
  bool single_word = false;  // only where no word character (letter, number, mark, _) touches it
  bool lstrip = false;       // takes the whitespace before it
  bool rstrip = false;       // takes the whitespace after it
  bool normalized = false;   // found in the normalized text (else in the raw text)
  bool special = false;      // skipped by decode's skip_special_tokens
};

class AddedTokens {
 public:
  enum class Pass { kRaw, kNormalized };

  // Requires a non-empty `found_as`: the text that stands for the token in `pass`'s text (its
  // content, or the normalized content). A content added twice keeps its first token.
  void add(AddedToken token, Pass pass, std::string_view found_as);

  // A stretch of text: an added token, or the text between tokens.
  struct Section {
    std::string text;
    const AddedToken* token = nullptr;
  };
  // Requires valid UTF-8. `text` cut on the tokens of `pass`, whitespace taken by lstrip and
  // rstrip removed from the text beside them.
  std::vector<Section> split(std::string_view text, Pass pass) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie of the texts tokens are found as.
  struct Trie {
    struct Node {
      std::vector<std::pair<unsigned char, std::size_t>> children;
      std::optional<std::size_t> token;  // index into tokens_
    };
    std::vector<Node> nodes{1};
    std::array<bool, 256> first_bytes{};
  };
  // The longest token at `pos`: (index into tokens_, length), or none.
  std::optional<std::pair<std::size_t, std::size_t>> longest_at(const Trie& trie,
                                                                std::string_view text,
                                                                std::size_t pos) const;

  std::vector<AddedToken> tokens_;
  std::array<Trie, 2> tries_;  // by Pass
};

}  // namespace hearth::text
