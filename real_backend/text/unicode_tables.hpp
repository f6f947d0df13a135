#pragma once
// Unicode data generated from the JavaScript engine the reference tokenizer runs on (see
// generate_unicode_tables.mjs): property ranges, canonical combining classes (as ranks that keep
// the classes' order) and canonical decompositions and compositions, Hangul syllables excepted.
// Every table is sorted by its first field.

#include <cstddef>
#include <cstdint>

namespace hearth::text::unicode {

struct CodepointRange {
  char32_t first;
  char32_t last;
};
struct CombiningClass {
  char32_t code_point;
  std::uint8_t rank;
};
struct Decomposition {
  char32_t code_point;
  std::uint32_t offset;  // into kDecompositionData
  std::uint32_t length;
};
struct Composition {
  char32_t first;
  char32_t second;
  char32_t composite;
};

#define HEARTH_TEXT_TABLE(type, name) \
  extern const type name[];           \
  extern const std::size_t name##Size;
HEARTH_TEXT_TABLE(CodepointRange, kLetter)
HEARTH_TEXT_TABLE(CodepointRange, kUppercaseLetter)
HEARTH_TEXT_TABLE(CodepointRange, kLowercaseLetter)
HEARTH_TEXT_TABLE(CodepointRange, kTitlecaseLetter)
HEARTH_TEXT_TABLE(CodepointRange, kModifierLetter)
HEARTH_TEXT_TABLE(CodepointRange, kOtherLetter)
HEARTH_TEXT_TABLE(CodepointRange, kMark)
HEARTH_TEXT_TABLE(CodepointRange, kNumber)
HEARTH_TEXT_TABLE(CodepointRange, kDecimalNumber)
HEARTH_TEXT_TABLE(CodepointRange, kPunctuation)
HEARTH_TEXT_TABLE(CodepointRange, kSymbol)
HEARTH_TEXT_TABLE(CodepointRange, kWhiteSpace)
HEARTH_TEXT_TABLE(CombiningClass, kCombiningClass)
HEARTH_TEXT_TABLE(Decomposition, kDecomposition)
HEARTH_TEXT_TABLE(char32_t, kDecompositionData)
HEARTH_TEXT_TABLE(Composition, kComposition)
#undef HEARTH_TEXT_TABLE

}  // namespace hearth::text::unicode
