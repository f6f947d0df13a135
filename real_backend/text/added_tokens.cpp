#include "real_backend/text/added_tokens.hpp"

#include <algorithm>

#include "real_backend/text/unicode.hpp"

namespace hearth::text {
namespace {

using unicode::Property;

bool is_word_char(char32_t c) {
  return c == '_' || unicode::has_property(Property::kLetter, c) ||
         unicode::has_property(Property::kNumber, c) || unicode::has_property(Property::kMark, c);
}

// Requires non-empty valid UTF-8. The byte offset of its last code point.
std::size_t last_code_point_at(std::string_view text) {
  std::size_t begin = text.size() - 1;
  while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80)
    --begin;
  return begin;
}

std::string trim_start(std::string_view text) {
  while (!text.empty()) {
    std::size_t end = 0;
    if (!unicode::has_property(Property::kWhiteSpace, unicode::next_code_point(text, end))) break;
    text.remove_prefix(end);
  }
  return std::string(text);
}

std::string trim_end(std::string_view text) {
  while (!text.empty()) {
    std::size_t begin = last_code_point_at(text);
    std::size_t pos = begin;
    if (!unicode::has_property(Property::kWhiteSpace, unicode::next_code_point(text, pos))) break;
    text.remove_suffix(text.size() - begin);
  }
  return std::string(text);
}

}  // namespace

void AddedTokens::add(AddedToken token, Pass pass, std::string_view found_as) {
  Trie& trie = tries_[static_cast<int>(pass)];
  std::size_t node = 0;
  for (unsigned char c : found_as) {
    auto& children = trie.nodes[node].children;
    auto it = std::find_if(children.begin(), children.end(),
                           [&](const auto& child) { return child.first == c; });
    if (it != children.end()) {
      node = it->second;
      continue;
    }
    children.emplace_back(c, trie.nodes.size());
    node = trie.nodes.size();
    trie.nodes.emplace_back();
  }
  if (!trie.nodes[node].token) trie.nodes[node].token = tokens_.size();
  trie.first_bytes[static_cast<unsigned char>(found_as[0])] = true;
  tokens_.push_back(std::move(token));
}

std::optional<std::pair<std::size_t, std::size_t>> AddedTokens::longest_at(const Trie& trie,
                                                                           std::string_view text,
                                                                           std::size_t pos) const {
  if (!trie.first_bytes[static_cast<unsigned char>(text[pos])]) return std::nullopt;
  std::optional<std::pair<std::size_t, std::size_t>> best;
  std::size_t node = 0;
  for (std::size_t k = pos; k < text.size(); ++k) {
    const auto& children = trie.nodes[node].children;
    auto it = std::find_if(children.begin(), children.end(), [&](const auto& child) {
      return child.first == static_cast<unsigned char>(text[k]);
    });
    if (it == children.end()) break;
    node = it->second;
    if (trie.nodes[node].token) best = {*trie.nodes[node].token, k + 1 - pos};
  }
  return best;
}

std::vector<AddedTokens::Section> AddedTokens::split(std::string_view text, Pass pass) const {
  const Trie& trie = tries_[static_cast<int>(pass)];
  std::vector<Section> sections;
  std::size_t start = 0;
  // Tokens start with a whole character, so no match starts inside one.
  for (std::size_t pos = 0; pos < text.size();) {
    auto match = longest_at(trie, text, pos);
    if (match) {
      const AddedToken& token = tokens_[match->first];
      std::size_t end = pos + match->second;
      std::size_t before = pos > 0 ? last_code_point_at(text.substr(0, pos)) : 0;
      std::size_t after = end;
      bool touches_word =
          (pos > 0 && is_word_char(unicode::next_code_point(text, before))) ||
          (end < text.size() && is_word_char(unicode::next_code_point(text, after)));
      if (!token.single_word || !touches_word) {
        if (pos > start) sections.push_back({std::string(text.substr(start, pos - start))});
        sections.push_back({token.content, &token});
        pos = start = end;
        continue;
      }
    }
    ++pos;
  }
  if (start < text.size()) sections.push_back({std::string(text.substr(start))});
  for (std::size_t k = 0; k < sections.size(); ++k) {
    const AddedToken* token = sections[k].token;
    if (token == nullptr) continue;
    if (token->lstrip && k > 0 && !sections[k - 1].token) {
      sections[k - 1].text = trim_end(sections[k - 1].text);
    }
    if (token->rstrip && k + 1 < sections.size() && !sections[k + 1].token) {
      sections[k + 1].text = trim_start(sections[k + 1].text);
    }
  }
  return sections;
}

}  // namespace hearth::text
