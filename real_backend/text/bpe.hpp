#pragma once
// The BPE model: a pre-token's characters merged pair by pair, lowest merge rank first (the
// leftmost pair among equal ranks), as Hugging Face's tokenizers do; results are cached per
// pre-token.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hearth::text {

// Hashes strings and string_views alike, so that maps keyed by std::string are searched by view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocabulary = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

struct BpeOptions {
  std::optional<std::int32_t> unk_id;  // unknown characters become it (else they are dropped)
  bool fuse_unk = false;               // consecutive unknowns become one
  bool byte_fallback = false;          // unknown characters become <0xXX> tokens where they exist
  bool ignore_merges = false;          // a pre-token that is a whole token is that token
};

class Bpe {
 public:
  // Requires each merge's parts and result in `vocab`; ranks are the merges' order.
  struct Merge {
    std::int32_t left;
    std::int32_t right;
    std::int32_t result;
  };
  Bpe(Vocabulary vocab, const std::vector<Merge>& merges, BpeOptions options);

  // Appends the ids of one pre-token (valid UTF-8) to `ids`.
  void encode(std::string_view piece, std::vector<std::int32_t>& ids) const;

  const Vocabulary& vocab() const { return vocab_; }
  const BpeOptions& options() const { return options_; }

 private:
  struct Rank {
    std::int32_t rank;
    std::int32_t result;
  };
  static std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
    return (std::uint64_t(std::uint32_t(left)) << 32) | std::uint32_t(right);
  }
  void merge(std::string_view piece, std::vector<std::int32_t>& ids) const;

  Vocabulary vocab_;
  std::unordered_map<std::uint64_t, Rank> ranks_;
  BpeOptions options_;
  std::vector<std::int32_t> byte_ids_;  // the id of <0xXX>, or -1

  static constexpr std::size_t kCacheCapacity = 100'000;
  static constexpr std::size_t kLongestCachedPiece = 256;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>, StringHash, std::equal_to<>>
      cache_;
};

}  // namespace hearth::text
