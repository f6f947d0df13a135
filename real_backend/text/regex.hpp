#pragma once
// The regular expressions of tokenizer.json files (Oniguruma syntax, as the Rust tokenizers use
// them), in the subset that real files use: literals, `.`, classes with ranges and negation,
// \s \S \d \D \p{..} \P{..} (the properties of unicode.hpp), \r \n \t \f \v \xHH \uHHHH \x{H..},
// groups (...) (?:...) (?i:...), lookahead (?=...) (?!...), alternation, and the quantifiers
// * + ? {n} {n,} {n,m}, greedy or lazy. (?i:) folds ASCII letters only, as Hugging Face's
// JavaScript tokenizer does. Matching is leftmost-first over code points by backtracking, with a
// step budget so that no pattern can hang on any input.

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::text {

// A pattern outside the subset, or malformed: what and at which offset.
class RegexError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A match's byte range in the searched text.
struct Match {
  std::size_t begin;
  std::size_t end;
};

class Regex {
 public:
  // Compiles `pattern`; throws RegexError, also for a pattern that matches the empty string.
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // Requires valid UTF-8. The successive leftmost matches in `text`, none overlapping, as
  // JavaScript's matchAll finds them (none is empty). Throws RegexError when the step budget,
  // linear in the text, is spent: a pattern that backtracks catastrophically on this text.
  std::vector<Match> find_all(std::string_view text) const;

 private:
  struct Program;
  std::unique_ptr<const Program> program_;
};

}  // namespace hearth::text
