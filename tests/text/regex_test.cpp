// The regex engine of the pre-tokenizers: Oniguruma's leftmost-first matching on the subset that
// tokenizer.json files use, refusals by name, and a budget instead of a hang.

#include <catch2/catch_test_macros.hpp>

#include <functional>
#include <string>
#include <vector>

#include "real_backend/text/regex.hpp"
#include "real_backend/text/unicode.hpp"

namespace {

using hearth::text::Regex;
using hearth::text::RegexError;

std::vector<std::string> matches(const std::string& pattern, const std::string& text) {
  std::vector<std::string> out;
  for (const auto& m : Regex(pattern).find_all(text))
    out.push_back(text.substr(m.begin, m.end - m.begin));
  return out;
}

std::string regex_refusal(const std::string& pattern) {
  try {
    Regex regex(pattern);
  } catch (const RegexError& e) {
    return e.what();
  }
  return "accepted";
}

constexpr const char* kLlama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

}  // namespace

TEST_CASE("the llama3 pattern splits words, digits in threes, punctuation and spaces") {
  CHECK(matches(kLlama3, "Hello world, it's 12345 DON'T\n\n  x") ==
        std::vector<std::string>{"Hello", " world", ",", " it", "'s", " ", "123", "45", " DON",
                                 "'T", "\n\n", " ", " x"});
}

TEST_CASE("a whitespace run before a word leaves its last space to the word") {
  CHECK(matches(kLlama3, "a    b") == std::vector<std::string>{"a", "   ", " b"});
  CHECK(matches(kLlama3, "a   ") == std::vector<std::string>{"a", "   "});
}

TEST_CASE("letters and numbers are Unicode properties, not ASCII ranges") {
  CHECK(matches("\\p{L}+|\\p{N}+", "Ωμέγα٣٤x") == std::vector<std::string>{"Ωμέγα", "٣٤", "x"});
  CHECK(matches("[^\\p{L}]+", "ab12 cd") == std::vector<std::string>{"12 "});
}

TEST_CASE("a class holds exactly its code points, in the plane its bitmap covers and past it") {
  using hearth::text::unicode::has_property;
  using P = hearth::text::unicode::Property;
  // Every scalar value below U+10000 and a few past it, each once.
  std::vector<char32_t> points;
  for (char32_t cp = 0; cp < 0x10000; ++cp) {
    if (cp < 0xD800 || cp > 0xDFFF) points.push_back(cp);
  }
  for (char32_t cp : {0x10000, 0x1D7CE, 0x20000, 0x1F600, 0xE0001, 0x10FFFF})
    points.push_back(cp);
  std::string text;
  for (char32_t cp : points)
    hearth::text::unicode::append_utf8(text, cp);
  const auto white = [&](char32_t c) { return has_property(P::kWhiteSpace, c); };
  const auto letter = [&](char32_t c) { return has_property(P::kLetter, c); };
  const auto number = [&](char32_t c) { return has_property(P::kNumber, c); };
  struct Case {
    const char* pattern;
    std::function<bool(char32_t)> holds;  // by the property tables' own lookup
  };
  const std::vector<Case> cases = {
      {"[^\\s\\p{L}\\p{N}]", [&](char32_t c) { return !white(c) && !letter(c) && !number(c); }},
      {"[^\\r\\n\\p{L}\\p{N}]",
       [&](char32_t c) { return c != '\r' && c != '\n' && !letter(c) && !number(c); }},
      {"[a-f\\x{3B1}-\\x{3C9}\\p{Lu}\\x{FFFE}-\\x{10001}]",
       [&](char32_t c) {
         return (c >= 'a' && c <= 'f') || (c >= 0x3B1 && c <= 0x3C9) ||
                has_property(P::kUppercaseLetter, c) || (c >= 0xFFFE && c <= 0x10001);
       }},
      {"[\\P{L}\\d]", [&](char32_t c) { return !letter(c) || has_property(P::kDecimalNumber, c); }},
      {"[^\\P{N}x-z]", [&](char32_t c) { return number(c) && !(c >= 'x' && c <= 'z'); }},
      {"\\S", [&](char32_t c) { return !white(c); }},
      {"[\\x{40}-\\x{7F}\\x{80}-\\x{BF}]", [](char32_t c) { return c >= 0x40 && c <= 0xBF; }},
  };
  for (const Case& k : cases) {
    CAPTURE(k.pattern);
    std::size_t at = 0, next = 0, wrong = 0;
    std::vector<hearth::text::Match> found = Regex(k.pattern).find_all(text);
    for (char32_t cp : points) {
      std::size_t begin = at;
      hearth::text::unicode::next_code_point(text, at);
      const bool matched = next < found.size() && found[next].begin == begin;
      if (matched) ++next;
      if (matched != k.holds(cp) && ++wrong <= 5) FAIL_CHECK("U+" << std::hex << unsigned{cp});
    }
    CHECK(next == found.size());
    CHECK(wrong == 0);
  }
}

TEST_CASE("alternation is leftmost-first and quantifiers greedy unless lazy") {
  CHECK(matches("a|ab", "ab") == std::vector<std::string>{"a"});
  CHECK(matches("a+?", "aaa") == std::vector<std::string>{"a", "a", "a"});
  CHECK(matches("a{2,3}", "aaaaaaa") == std::vector<std::string>{"aaa", "aaa"});
  CHECK(matches("a{2}", "aaaaa") == std::vector<std::string>{"aa", "aa"});
  CHECK(matches("x(?=y)", "xxy") == std::vector<std::string>{"x"});
  CHECK(matches(".", "a\nb") == std::vector<std::string>{"a", "b"});
}

TEST_CASE("(?i:...) folds ASCII letters only, as the JavaScript reference does") {
  CHECK(matches("(?i:'s)", "'s 'S") == std::vector<std::string>{"'s", "'S"});
  CHECK(matches("(?i:[a-c]+)", "xAbCy") == std::vector<std::string>{"AbC"});
  CHECK(matches("(?i:s)", "\u017F").empty());  // the long s folds to s in Oniguruma, not here
}

TEST_CASE("a pattern that matches the empty string is refused") {
  CHECK(regex_refusal("x*") == "pattern matches the empty string");
  CHECK(regex_refusal("(?=a)") == "pattern matches the empty string");
}

TEST_CASE("syntax outside the subset is refused by name and offset") {
  CHECK(regex_refusal("\\bword") == "unsupported escape \"\\b\" at offset 0");
  CHECK(regex_refusal("(?<=a)b") == "unsupported group \"(?<\" at offset 1");
  CHECK(regex_refusal("^a") == "unsupported anchor \"^\" at offset 0");
  CHECK(regex_refusal("\\p{Greek}") == "unsupported property \\p{Greek} at offset 0");
  CHECK(regex_refusal("a++") == "possessive quantifier \"+\" at offset 2");
  CHECK(regex_refusal("(a*)*") ==
        "quantifier on an operand that can match the empty string at offset 4");
  CHECK(regex_refusal("[a-") == "unclosed character class at offset 0");
  CHECK(regex_refusal("(ab") == "unclosed group at offset 0");
  CHECK(regex_refusal("ab)") == "unbalanced \")\" at offset 2");
  CHECK(regex_refusal("a{5000}") == "repeat count above 1000 at offset 5");
  CHECK(regex_refusal("[[a]]") == "nested character class at offset 1");
  CHECK(regex_refusal("((((a{1000}){1000}){1000}))").starts_with("pattern too large"));
}

TEST_CASE("a pattern that backtracks catastrophically throws instead of hanging") {
  Regex regex("(a|a)*b");
  CHECK_THROWS_AS(regex.find_all(std::string(40, 'a')), RegexError);
}
