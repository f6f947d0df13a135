#include "real_backend/text/unicode.hpp"

#include <algorithm>
#include <span>
#include <vector>

#include "real_backend/text/unicode_tables.hpp"

namespace hearth::text::unicode {
namespace {

bool in_ranges(std::span<const CodepointRange> ranges, char32_t cp) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                             [](char32_t c, const CodepointRange& r) { return c < r.first; });
  return it != ranges.begin() && cp <= std::prev(it)->last;
}

std::span<const CodepointRange> ranges_of(Property property) {
  switch (property) {
    case Property::kLetter:
      return {kLetter, kLetterSize};
    case Property::kUppercaseLetter:
      return {kUppercaseLetter, kUppercaseLetterSize};
    case Property::kLowercaseLetter:
      return {kLowercaseLetter, kLowercaseLetterSize};
    case Property::kTitlecaseLetter:
      return {kTitlecaseLetter, kTitlecaseLetterSize};
    case Property::kModifierLetter:
      return {kModifierLetter, kModifierLetterSize};
    case Property::kOtherLetter:
      return {kOtherLetter, kOtherLetterSize};
    case Property::kMark:
      return {kMark, kMarkSize};
    case Property::kNumber:
      return {kNumber, kNumberSize};
    case Property::kDecimalNumber:
      return {kDecimalNumber, kDecimalNumberSize};
    case Property::kPunctuation:
      return {kPunctuation, kPunctuationSize};
    case Property::kSymbol:
      return {kSymbol, kSymbolSize};
    case Property::kWhiteSpace:
      return {kWhiteSpace, kWhiteSpaceSize};
  }
  return {};
}

// Hangul syllables, decomposed and composed by arithmetic (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr char32_t kSCount = kLCount * kNCount;

std::uint8_t combining_rank(char32_t cp) {
  if (cp < 0x300) return 0;
  std::span<const CombiningClass> table{kCombiningClass, kCombiningClassSize};
  auto it = std::lower_bound(table.begin(), table.end(), cp,
                             [](const CombiningClass& c, char32_t x) { return c.code_point < x; });
  return it != table.end() && it->code_point == cp ? it->rank : 0;
}

void decompose(char32_t cp, std::u32string& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  std::span<const Decomposition> table{kDecomposition, kDecompositionSize};
  auto it = std::lower_bound(table.begin(), table.end(), cp,
                             [](const Decomposition& d, char32_t x) { return d.code_point < x; });
  if (it == table.end() || it->code_point != cp) {
    out.push_back(cp);
    return;
  }
  out.append(kDecompositionData + it->offset, it->length);
}

// The primary composite of a pair, or 0.
char32_t compose(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase &&
      second < kVBase + kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount) {
    return first + (second - kTBase);
  }
  std::span<const Composition> table{kComposition, kCompositionSize};
  auto it = std::lower_bound(table.begin(), table.end(), std::pair{first, second},
                             [](const Composition& c, std::pair<char32_t, char32_t> key) {
                               return std::pair{c.first, c.second} < key;
                             });
  return it != table.end() && it->first == first && it->second == second ? it->composite : 0;
}

// Whether `cp` is a starter that neither decomposes nor is the second of a composition: NFC
// leaves it, and its neighbours, as they are.
bool nfc_inert_uncached(char32_t cp) {
  static const std::vector<char32_t> seconds = [] {
    std::vector<char32_t> out;
    for (std::size_t k = 0; k < kCompositionSize; ++k)
      out.push_back(kComposition[k].second);
    std::sort(out.begin(), out.end());
    return out;
  }();
  bool jamo_second =
      (cp >= kVBase && cp < kVBase + kVCount) || (cp > kTBase && cp < kTBase + kTCount);
  if (combining_rank(cp) != 0 || jamo_second ||
      std::binary_search(seconds.begin(), seconds.end(), cp)) {
    return false;
  }
  if (cp >= kSBase && cp < kSBase + kSCount) return true;  // decomposes, but recomposes
  std::u32string decomposed;
  decompose(cp, decomposed);
  return decomposed.size() == 1 && decomposed[0] == cp;
}

bool nfc_inert(char32_t cp) {
  static const std::vector<bool> bmp = [] {
    std::vector<bool> inert(0x10000);
    for (char32_t c = 0; c < 0x10000; ++c)
      inert[c] = nfc_inert_uncached(c);
    return inert;
  }();
  return cp < 0x10000 ? bmp[cp] : nfc_inert_uncached(cp);
}

}  // namespace

bool has_property(Property property, char32_t cp) {
  return in_ranges(ranges_of(property), cp);
}

void add_bmp_range(BmpSet& set, char32_t first, char32_t last) {
  last = std::min<char32_t>(last, 0xFFFF);
  if (first > last) return;
  const std::size_t head = first / 64, tail = last / 64;
  const auto from = [](char32_t cp) { return ~std::uint64_t{0} << (cp % 64); };       // cp.. 63
  const auto upto = [](char32_t cp) { return ~std::uint64_t{0} >> (63 - cp % 64); };  // 0.. cp
  if (head == tail) {
    set[head] |= from(first) & upto(last);
    return;
  }
  set[head] |= from(first);
  for (std::size_t w = head + 1; w < tail; ++w)
    set[w] = ~std::uint64_t{0};
  set[tail] |= upto(last);
}

const BmpSet& bmp_with(Property property) {
  constexpr std::size_t kProperties = static_cast<std::size_t>(Property::kWhiteSpace) + 1;
  static const auto sets = [] {
    std::array<BmpSet, kProperties> out{};
    for (std::size_t p = 0; p < kProperties; ++p) {
      for (const CodepointRange& r : ranges_of(static_cast<Property>(p)))
        add_bmp_range(out[p], r.first, r.last);
    }
    return out;
  }();
  return sets[static_cast<std::size_t>(property)];
}

std::string to_valid_utf8(std::string_view text) {
  std::size_t valid_prefix = 0;
  std::string out;
  std::size_t i = 0;
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  bool copying = false;
  while (i < text.size()) {
    unsigned char lead = byte(i);
    std::size_t need = 0;
    unsigned char lower = 0x80, upper = 0xBF;
    if (lead < 0x80) {
      need = 0;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      need = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      need = 2;
      if (lead == 0xE0) lower = 0xA0;
      if (lead == 0xED) upper = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      need = 3;
      if (lead == 0xF0) lower = 0x90;
      if (lead == 0xF4) upper = 0x8F;
    } else {
      need = 4;  // never a lead byte
    }
    std::size_t length = 1;
    bool ok = need != 4;
    if (ok) {
      for (std::size_t k = 0; k < need; ++k, lower = 0x80, upper = 0xBF) {
        if (i + length >= text.size() || byte(i + length) < lower || byte(i + length) > upper) {
          ok = false;
          break;
        }
        ++length;
      }
    }
    if (ok) {
      if (copying) out.append(text.substr(i, length));
      i += length;
      if (!copying) valid_prefix = i;
      continue;
    }
    if (!copying) {
      out.assign(text.substr(0, valid_prefix));
      copying = true;
    }
    append_utf8(out, kReplacementCharacter);
    i += length;  // the maximal subpart: the bytes that were a valid start
  }
  return copying ? out : std::string(text);
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string nfc(std::string_view text) {
  // Below U+0300 every code point is a starter that neither decomposes nor composes with
  // another code point below U+0300 (the generated tables have no pair second below it).
  if (std::all_of(text.begin(), text.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0xCC; })) {
    return std::string(text);
  }
  // Text in which no code point decomposes, is a non-starter or is the second of a composition
  // is already NFC: most text in most scripts.
  bool stable = true;
  for (std::size_t pos = 0; stable && pos < text.size();)
    stable = nfc_inert(next_code_point(text, pos));
  if (stable) return std::string(text);

  std::u32string buffer;
  for (std::size_t pos = 0; pos < text.size();)
    decompose(next_code_point(text, pos), buffer);

  // Canonical order: each run of non-starters stably sorted by combining class.
  std::vector<std::uint8_t> ranks(buffer.size());
  for (std::size_t k = 0; k < buffer.size(); ++k)
    ranks[k] = combining_rank(buffer[k]);
  for (std::size_t k = 1; k < buffer.size(); ++k) {
    for (std::size_t j = k; j > 0 && ranks[j] != 0 && ranks[j - 1] > ranks[j]; --j) {
      std::swap(ranks[j], ranks[j - 1]);
      std::swap(buffer[j], buffer[j - 1]);
    }
  }

  // Canonical composition (the algorithm of UAX #15's sample code).
  std::size_t kept = 0;
  if (!buffer.empty()) {
    std::size_t starter = 0;
    int last_rank = ranks[0] == 0 ? 0 : 256;
    kept = 1;
    for (std::size_t k = 1; k < buffer.size(); ++k) {
      char32_t cp = buffer[k];
      int rank = ranks[k];
      char32_t composite = compose(buffer[starter], cp);
      if (composite != 0 && (last_rank < rank || last_rank == 0) && ranks[starter] == 0) {
        buffer[starter] = composite;
        continue;
      }
      if (rank == 0) starter = kept;
      last_rank = rank;
      ranks[kept] = ranks[k];
      buffer[kept++] = cp;
    }
  }
  std::string out;
  out.reserve(text.size());
  for (std::size_t k = 0; k < kept; ++k)
    append_utf8(out, buffer[k]);
  return out;
}

}  // namespace hearth::text::unicode
