#pragma once
// The stages around the model, each a small class named as in tokenizer.json: normalizers
// (text to text), pre-tokenizers (pieces to smaller pieces) and decoders (tokens to text pieces).
// Their semantics are those of Hugging Face's tokenizers; where its Rust and JavaScript versions
// differ, the comment says which one is followed.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>
#include <vector>

#include "real_backend/text/bpe.hpp"
#include "real_backend/text/regex.hpp"

namespace hearth::text {

// A Replace or Split pattern: {"String": ...} or {"Regex": ...}.
class Pattern {
 public:
  // Requires a non-empty literal.
  static Pattern literal(std::string text);
  static Pattern regex(std::string_view pattern);  // throws RegexError
  // Requires valid UTF-8. The successive non-overlapping matches in `text`, leftmost first.
  std::vector<Match> find_all(std::string_view text) const;

 private:
  std::variant<std::string, std::shared_ptr<const Regex>> pattern_;
};

// Requires valid UTF-8 and the matches of `pattern` in `text`: `text` with each replaced.
std::string replace_all(std::string_view text, const Pattern& pattern, std::string_view content);

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Requires and returns valid UTF-8.
  virtual std::string normalize(std::string text) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Requires valid UTF-8 pieces; replaces each by its parts. `section_index` is the index of the
  // text between added tokens that the pieces come from (Metaspace's prepend_scheme "first").
  virtual void pre_tokenize(std::vector<std::string>& pieces, std::size_t section_index) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Turns the tokens into the pieces of text that are joined to make the decoded text.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

std::unique_ptr<Normalizer> nfc_normalizer();
std::unique_ptr<Normalizer> prepend_normalizer(std::string prefix);
std::unique_ptr<Normalizer> replace_normalizer(Pattern pattern, std::string content);
std::unique_ptr<Normalizer> sequence_normalizer(std::vector<std::unique_ptr<Normalizer>> steps);

enum class SplitBehavior { kIsolated, kRemoved };
std::unique_ptr<PreTokenizer> split_pre_tokenizer(Pattern pattern, SplitBehavior behavior);
// Splits with the GPT-2 regex when use_regex, then maps each byte to its byte-level character.
std::unique_ptr<PreTokenizer> byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex);
enum class PrependScheme { kAlways, kFirst, kNever };
// Follows the Rust tokenizers: with `split`, pieces are cut before each replacement character
// (the JavaScript one never cuts).
std::unique_ptr<PreTokenizer> metaspace_pre_tokenizer(std::string replacement, PrependScheme scheme,
                                                      bool split);
std::unique_ptr<PreTokenizer> sequence_pre_tokenizer(
    std::vector<std::unique_ptr<PreTokenizer>> steps);

// Maps byte-level characters back to bytes, except in `added_tokens` (kept as they are), and
// decodes the bytes as UTF-8, U+FFFD for each maximal ill-formed subpart.
std::unique_ptr<Decoder> byte_level_decoder(std::unordered_set<std::string> added_tokens);
std::unique_ptr<Decoder> metaspace_decoder(std::string replacement, PrependScheme scheme);
std::unique_ptr<Decoder> replace_decoder(Pattern pattern, std::string content);
// Runs of <0xXX> tokens become their bytes as UTF-8, or one U+FFFD per byte when not valid
// UTF-8 (the Rust tokenizers' rule).
std::unique_ptr<Decoder> byte_fallback_decoder();
std::unique_ptr<Decoder> fuse_decoder();
// Removes up to `start` leading and `stop` trailing `content` characters from each token.
std::unique_ptr<Decoder> strip_decoder(char32_t content, std::size_t start, std::size_t stop);
std::unique_ptr<Decoder> sequence_decoder(std::vector<std::unique_ptr<Decoder>> steps);

// The byte-level alphabet (GPT-2's bytes_to_unicode): the character standing for each byte.
char32_t byte_to_char(unsigned char byte);

// Hugging Face's clean_up_tokenization: " ." to "." and the like, and " n't", " 's" ...
std::string clean_up_tokenization(std::string text);

}  // namespace hearth::text
