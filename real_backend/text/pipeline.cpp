#include "real_backend/text/pipeline.hpp"

#include <array>
#include <cctype>

#include "real_backend/text/unicode.hpp"

namespace hearth::text {
namespace {

std::string_view view(const std::string& s, const Match& m) {
  return std::string_view(s).substr(m.begin, m.end - m.begin);
}

// bytes_to_unicode: printable bytes stand for themselves, the others for 256, 257, ... in order.
const std::array<char32_t, 256>& byte_chars() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> chars{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      chars[b] = printable ? static_cast<char32_t>(b) : next++;
    }
    return chars;
  }();
  return table;
}

// The byte a byte-level character stands for, or -1.
int char_to_byte(char32_t c) {
  static const std::array<int, 324> table = [] {
    std::array<int, 324> bytes;
    bytes.fill(-1);
    for (int b = 0; b < 256; ++b)
      bytes[byte_chars()[b]] = b;
    return bytes;
  }();
  return c < table.size() ? table[c] : -1;
}

class Nfc : public Normalizer {
 public:
  std::string normalize(std::string text) const override { return unicode::nfc(text); }
};

class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(std::string text) const override {
    return text.empty() ? text : prefix_ + text;
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string normalize(std::string text) const override {
    return replace_all(text, pattern_, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  std::string normalize(std::string text) const override {
    for (const auto& step : steps_)
      text = step->normalize(std::move(text));
    return text;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// Each piece cut around the matches of a pattern.
void split_pieces(std::vector<std::string>& pieces, const Pattern& pattern, bool keep_matches) {
  std::vector<std::string> out;
  for (const std::string& piece : pieces) {
    std::size_t previous = 0;
    for (const Match& m : pattern.find_all(piece)) {
      if (m.begin > previous) out.emplace_back(piece, previous, m.begin - previous);
      if (keep_matches && m.end > m.begin) out.emplace_back(view(piece, m));
      previous = m.end;
    }
    if (previous < piece.size()) out.emplace_back(piece, previous);
  }
  pieces = std::move(out);
}

class Split : public PreTokenizer {
 public:
  Split(Pattern pattern, SplitBehavior behavior)
      : pattern_(std::move(pattern)), behavior_(behavior) {}
  void pre_tokenize(std::vector<std::string>& pieces, std::size_t) const override {
    split_pieces(pieces, pattern_, behavior_ == SplitBehavior::kIsolated);
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
};

class ByteLevel : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space),
        gpt2_(use_regex ? std::optional(Pattern::regex(
                              "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
                              "\\s+(?!\\S)|\\s+"))
                        : std::nullopt) {}
  void pre_tokenize(std::vector<std::string>& pieces, std::size_t) const override {
    if (add_prefix_space_) {
      for (std::string& piece : pieces) {
        if (!piece.starts_with(' ')) piece.insert(0, 1, ' ');
      }
    }
    if (gpt2_) split_pieces(pieces, *gpt2_, true);
    for (std::string& piece : pieces) {
      std::string mapped;
      mapped.reserve(piece.size() * 2);
      for (char c : piece)
        unicode::append_utf8(mapped, byte_to_char(static_cast<unsigned char>(c)));
      piece = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  std::optional<Pattern> gpt2_;
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<std::string>& pieces, std::size_t section_index) const override {
    std::vector<std::string> out;
    for (const std::string& piece : pieces) {
      std::string text = replace_all(piece, Pattern::literal(" "), replacement_);
      bool prepend = scheme_ == PrependScheme::kAlways ||
                     (scheme_ == PrependScheme::kFirst && section_index == 0);
      if (prepend && !text.starts_with(replacement_)) text.insert(0, replacement_);
      if (!split_) {
        out.push_back(std::move(text));
        continue;
      }
      std::size_t begin = 0;
      while (begin < text.size()) {
        std::size_t next = text.find(replacement_, begin + 1);
        if (next == std::string::npos) next = text.size();
        out.emplace_back(text, begin, next - begin);
        begin = next;
      }
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<std::string>& pieces, std::size_t section_index) const override {
    for (const auto& step : steps_)
      step->pre_tokenize(pieces, section_index);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class ByteLevelDecoder : public Decoder {
 public:
  explicit ByteLevelDecoder(std::unordered_set<std::string> added_tokens)
      : added_tokens_(std::move(added_tokens)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    bool in_run = false;
    auto flush = [&] {
      if (in_run) out.push_back(unicode::to_valid_utf8(bytes));
      bytes.clear();
      in_run = false;
    };
    for (std::string& token : tokens) {
      if (added_tokens_.contains(token)) {
        flush();
        out.push_back(std::move(token));
        continue;
      }
      in_run = true;
      for (std::size_t pos = 0; pos < token.size();) {
        std::size_t begin = pos;
        int byte = char_to_byte(unicode::next_code_point(token, pos));
        if (byte >= 0) {
          bytes.push_back(static_cast<char>(byte));
        } else {
          bytes.append(token, begin, pos - begin);
        }
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  std::unordered_set<std::string> added_tokens_;
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, PrependScheme scheme)
      : replacement_(std::move(replacement)), scheme_(scheme) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::size_t k = 0; k < tokens.size(); ++k) {
      tokens[k] = replace_all(tokens[k], Pattern::literal(replacement_), " ");
      if (k == 0 && scheme_ != PrependScheme::kNever && tokens[k].starts_with(' ')) {
        tokens[k].erase(0, 1);
      }
    }
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens)
      token = replace_all(token, pattern_, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      std::string text = unicode::to_valid_utf8(bytes);
      if (text != bytes) {
        text.clear();
        for (std::size_t k = 0; k < bytes.size(); ++k) {
          unicode::append_utf8(text, unicode::kReplacementCharacter);
        }
      }
      out.push_back(std::move(text));
      bytes.clear();
    };
    for (std::string& token : tokens) {
      int byte = -1;
      if (token.size() == 6 && token.starts_with("<0x") && token.ends_with('>') &&
          std::isxdigit(static_cast<unsigned char>(token[3])) &&
          std::isxdigit(static_cast<unsigned char>(token[4]))) {
        byte = std::stoi(token.substr(3, 2), nullptr, 16);
      }
      if (byte >= 0) {
        bytes.push_back(static_cast<char>(byte));
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens = std::move(out);
  }
};

class Fuse : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& token : tokens)
      all += token;
    tokens.assign(1, std::move(all));
  }
};

class Strip : public Decoder {
 public:
  Strip(char32_t content, std::size_t start, std::size_t stop) : start_(start), stop_(stop) {
    unicode::append_utf8(content_, content);
  }
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::string_view t = token;
      for (std::size_t k = 0; k < start_ && t.starts_with(content_); ++k)
        t.remove_prefix(content_.size());
      for (std::size_t k = 0; k < stop_ && t.ends_with(content_); ++k)
        t.remove_suffix(content_.size());
      token = std::string(t);
    }
  }

 private:
  std::string content_;
  std::size_t start_, stop_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_)
      step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

Pattern Pattern::literal(std::string text) {
  Pattern p;
  p.pattern_ = std::move(text);
  return p;
}

Pattern Pattern::regex(std::string_view pattern) {
  Pattern p;
  p.pattern_ = std::make_shared<const Regex>(pattern);
  return p;
}

std::vector<Match> Pattern::find_all(std::string_view text) const {
  if (const auto* regex = std::get_if<std::shared_ptr<const Regex>>(&pattern_)) {
    return (*regex)->find_all(text);
  }
  const std::string& literal = std::get<std::string>(pattern_);
  std::vector<Match> matches;
  for (std::size_t at = text.find(literal); at != std::string_view::npos;
       at = text.find(literal, at + literal.size())) {
    matches.push_back({at, at + literal.size()});
  }
  return matches;
}

std::string replace_all(std::string_view text, const Pattern& pattern, std::string_view content) {
  std::string out;
  std::size_t previous = 0;
  for (const Match& m : pattern.find_all(text)) {
    out.append(text.substr(previous, m.begin - previous));
    out.append(content);
    previous = m.end;
  }
  out.append(text.substr(previous));
  return out;
}

std::unique_ptr<Normalizer> nfc_normalizer() {
  return std::make_unique<Nfc>();
}
std::unique_ptr<Normalizer> prepend_normalizer(std::string prefix) {
  return std::make_unique<Prepend>(std::move(prefix));
}
std::unique_ptr<Normalizer> replace_normalizer(Pattern pattern, std::string content) {
  return std::make_unique<ReplaceNormalizer>(std::move(pattern), std::move(content));
}
std::unique_ptr<Normalizer> sequence_normalizer(std::vector<std::unique_ptr<Normalizer>> steps) {
  return std::make_unique<SequenceNormalizer>(std::move(steps));
}
std::unique_ptr<PreTokenizer> split_pre_tokenizer(Pattern pattern, SplitBehavior behavior) {
  return std::make_unique<Split>(std::move(pattern), behavior);
}
std::unique_ptr<PreTokenizer> byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex) {
  return std::make_unique<ByteLevel>(add_prefix_space, use_regex);
}
std::unique_ptr<PreTokenizer> metaspace_pre_tokenizer(std::string replacement, PrependScheme scheme,
                                                      bool split) {
  return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), scheme, split);
}
std::unique_ptr<PreTokenizer> sequence_pre_tokenizer(
    std::vector<std::unique_ptr<PreTokenizer>> steps) {
  return std::make_unique<SequencePreTokenizer>(std::move(steps));
}
std::unique_ptr<Decoder> byte_level_decoder(std::unordered_set<std::string> added_tokens) {
  return std::make_unique<ByteLevelDecoder>(std::move(added_tokens));
}
std::unique_ptr<Decoder> metaspace_decoder(std::string replacement, PrependScheme scheme) {
  return std::make_unique<MetaspaceDecoder>(std::move(replacement), scheme);
}
std::unique_ptr<Decoder> replace_decoder(Pattern pattern, std::string content) {
  return std::make_unique<ReplaceDecoder>(std::move(pattern), std::move(content));
}
std::unique_ptr<Decoder> byte_fallback_decoder() {
  return std::make_unique<ByteFallbackDecoder>();
}
std::unique_ptr<Decoder> fuse_decoder() {
  return std::make_unique<Fuse>();
}
std::unique_ptr<Decoder> strip_decoder(char32_t content, std::size_t start, std::size_t stop) {
  return std::make_unique<Strip>(content, start, stop);
}
std::unique_ptr<Decoder> sequence_decoder(std::vector<std::unique_ptr<Decoder>> steps) {
  return std::make_unique<SequenceDecoder>(std::move(steps));
}

char32_t byte_to_char(unsigned char byte) {
  return byte_chars()[byte];
}

std::string clean_up_tokenization(std::string text) {
  static const std::array<std::pair<std::string_view, std::string_view>, 10> kRules{{
      {" .", "."},
      {" ?", "?"},
      {" !", "!"},
      {" ,", ","},
      {" ' ", "'"},
      {" n't", "n't"},
      {" 'm", "'m"},
      {" 's", "'s"},
      {" 've", "'ve"},
      {" 're", "'re"},
  }};
  for (const auto& [from, to] : kRules) {
    text = replace_all(text, Pattern::literal(std::string(from)), to);
  }
  return text;
}

}  // namespace hearth::text
