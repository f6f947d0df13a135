#include "real_backend/text/bpe.hpp"

#include <cstdio>
#include <queue>

#include "real_backend/text/unicode.hpp"

namespace hearth::text {

Bpe::Bpe(Vocabulary vocab, const std::vector<Merge>& merges, BpeOptions options)
    : vocab_(std::move(vocab)), options_(options), byte_ids_(256, -1) {
  ranks_.reserve(merges.size());
  for (std::size_t k = 0; k < merges.size(); ++k) {
    // A repeated merge keeps its first (lowest) rank.
    ranks_.try_emplace(pair_key(merges[k].left, merges[k].right),
                       Rank{static_cast<std::int32_t>(k), merges[k].result});
  }
  if (options_.byte_fallback) {
    for (int byte = 0; byte < 256; ++byte) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", byte);
      auto it = vocab_.find(std::string_view(name));
      if (it != vocab_.end()) byte_ids_[byte] = it->second;
    }
  }
}

void Bpe::encode(std::string_view piece, std::vector<std::int32_t>& ids) const {
  if (piece.empty()) return;
  if (options_.ignore_merges) {
    auto it = vocab_.find(piece);
    if (it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  if (piece.size() > kLongestCachedPiece) {
    merge(piece, ids);
    return;
  }
  {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<std::int32_t> piece_ids;
  merge(piece, piece_ids);
  ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  std::lock_guard lock(cache_mutex_);
  if (cache_.size() >= kCacheCapacity) cache_.clear();
  cache_.emplace(std::string(piece), std::move(piece_ids));
}

void Bpe::merge(std::string_view piece, std::vector<std::int32_t>& ids) const {
  // The symbols, a linked list over the characters; id -1: a character not in the vocabulary
  // (no merge names one).
  struct Symbol {
    std::int32_t id;
    std::size_t begin, end;  // bytes of the piece
    int prev, next;          // -1: none
    bool alive;
  };
  std::vector<Symbol> symbols;
  for (std::size_t pos = 0; pos < piece.size();) {
    std::size_t begin = pos;
    unicode::next_code_point(piece, pos);
    auto it = vocab_.find(piece.substr(begin, pos - begin));
    int index = static_cast<int>(symbols.size());
    symbols.push_back(
        {it == vocab_.end() ? -1 : it->second, begin, pos, index - 1, index + 1, true});
  }
  symbols.back().next = -1;

  // (rank, position of the left symbol): the lowest rank first, the leftmost among equals.
  using Candidate = std::pair<std::int32_t, int>;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int left) {
    if (left < 0 || symbols[left].next < 0) return;
    const Symbol& a = symbols[left];
    const Symbol& b = symbols[a.next];
    if (a.id < 0 || b.id < 0) return;
    auto it = ranks_.find(pair_key(a.id, b.id));
    if (it != ranks_.end()) queue.emplace(it->second.rank, left);
  };
  for (int k = 0; k + 1 < static_cast<int>(symbols.size()); ++k)
    consider(k);
  while (!queue.empty()) {
    auto [rank, left] = queue.top();
    queue.pop();
    Symbol& a = symbols[left];
    if (!a.alive || a.next < 0 || a.id < 0) continue;
    Symbol& b = symbols[a.next];
    if (b.id < 0) continue;
    auto it = ranks_.find(pair_key(a.id, b.id));
    if (it == ranks_.end() || it->second.rank != rank) continue;  // a stale candidate
    a.id = it->second.result;
    a.end = b.end;
    b.alive = false;
    a.next = b.next;
    if (a.next >= 0) symbols[a.next].prev = left;
    consider(a.prev);
    consider(left);
  }

  bool last_was_unk = false;
  auto push_unk = [&] {
    if (!options_.unk_id) return;
    if (!(options_.fuse_unk && last_was_unk)) ids.push_back(*options_.unk_id);
    last_was_unk = true;
  };
  for (int k = 0; k >= 0; k = symbols[k].next) {
    const Symbol& s = symbols[k];
    if (s.id >= 0) {
      ids.push_back(s.id);
      last_was_unk = s.id == options_.unk_id;
      continue;
    }
    bool bytes_known = options_.byte_fallback;
    for (std::size_t b = s.begin; bytes_known && b < s.end; ++b) {
      bytes_known = byte_ids_[static_cast<unsigned char>(piece[b])] >= 0;
    }
    if (!bytes_known) {
      push_unk();
      continue;
    }
    for (std::size_t b = s.begin; b < s.end; ++b) {
      ids.push_back(byte_ids_[static_cast<unsigned char>(piece[b])]);
    }
    last_was_unk = false;
  }
}

}  // namespace hearth::text
