#pragma once
// Code points in UTF-8 text: decoding (lossy, as a browser's TextDecoder does), encoding, the
// Unicode properties the pre-tokenizer regexes use, and NFC.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::text::unicode {

constexpr char32_t kReplacementCharacter = 0xFFFD;

// The properties a regex may name with \p{...}; "White_Space" is also what \s means.
enum class Property {
  kLetter,
  kUppercaseLetter,
  kLowercaseLetter,
  kTitlecaseLetter,
  kModifierLetter,
  kOtherLetter,
  kMark,
  kNumber,
  kDecimalNumber,
  kPunctuation,
  kSymbol,
  kWhiteSpace,  // the last
};

// Whether `cp` has `property`.
bool has_property(Property property, char32_t cp);

// A set of the code points below U+10000: bit cp % 64 of word cp / 64.
constexpr std::size_t kBmpWords = 0x10000 / 64;
using BmpSet = std::array<std::uint64_t, kBmpWords>;

// The code points below U+10000 with `property`, built once from its ranges.
const BmpSet& bmp_with(Property property);

// Adds [first, last], or its part below U+10000, to `set` (nothing if last < first).
void add_bmp_range(BmpSet& set, char32_t first, char32_t last);

// `text` with each ill-formed subsequence replaced by U+FFFD, following the WHATWG Encoding
// standard (maximal subparts), as TextDecoder and Rust's from_utf8_lossy do. Returns text
// unchanged (and cheaply) when it is valid.
std::string to_valid_utf8(std::string_view text);

// Requires valid UTF-8 and pos < text.size(). The code point at `pos`; advances pos past it.
inline char32_t next_code_point(std::string_view text, std::size_t& pos) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(pos);
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  if (lead < 0xE0) {
    char32_t cp = (char32_t{lead & 0x1Fu} << 6) | (byte(pos + 1) & 0x3Fu);
    pos += 2;
    return cp;
  }
  if (lead < 0xF0) {
    char32_t cp = (char32_t{lead & 0x0Fu} << 12) | (char32_t{byte(pos + 1) & 0x3Fu} << 6) |
                  (byte(pos + 2) & 0x3Fu);
    pos += 3;
    return cp;
  }
  char32_t cp = (char32_t{lead & 0x07u} << 18) | (char32_t{byte(pos + 1) & 0x3Fu} << 12) |
                (char32_t{byte(pos + 2) & 0x3Fu} << 6) | (byte(pos + 3) & 0x3Fu);
  pos += 4;
  return cp;
}

// Appends the UTF-8 form of `cp` (a scalar value) to `out`.
void append_utf8(std::string& out, char32_t cp);

// Requires valid UTF-8. The NFC form of `text`.
std::string nfc(std::string_view text);

}  // namespace hearth::text::unicode
