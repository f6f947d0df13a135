#include "real_backend/text/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "policy/errors.hpp"
#include "real_backend/text/added_tokens.hpp"
#include "real_backend/text/bpe.hpp"
#include "real_backend/text/pipeline.hpp"
#include "real_backend/text/unicode.hpp"

namespace hearth::text {
namespace {

using nlohmann::json;

// Ids must fit a table indexed by id: 16.7 million is 64 times the largest vocabulary in use.
constexpr std::int64_t kMaxId = (1 << 24) - 1;
// A tokenizer's ids are dense, and the table by id costs what they span: an id may lie at most
// this far past the tokens the file names, so that a few bytes cannot ask for 16.7 million
// entries (fuzz_tokenizer: one token with id 16,777,215 took over a second).
constexpr std::int64_t kMaxIdGap = 1 << 16;
// Sequences of normalizers, pre-tokenizers or decoders nested deeper than this are refused.
constexpr int kMaxNesting = 16;

// A value of the file and where it is, for messages such as
// "tokenizer.json: model.merges[3]: \"x\" is not in the vocabulary".
class Node {
 public:
  Node(const json& value, std::string path, const std::string& origin)
      : value_(value), path_(std::move(path)), origin_(origin) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(origin_ + ": " + (path_.empty() ? "" : path_ + ": ") + what);
  }
  const json& value() const { return value_; }

  // The member `key`, which must be there.
  Node at(const std::string& key) const {
    const json* member = find(key);
    if (member == nullptr) fail("missing key \"" + key + "\"");
    return child(*member, key);
  }
  // The member `key`, or none when it is absent or null.
  std::optional<Node> get(const std::string& key) const {
    const json* member = find(key);
    if (member == nullptr || member->is_null()) return std::nullopt;
    return child(*member, key);
  }
  // An object's member shown as a map entry: model.vocab["token"].
  Node entry(const std::string& key, const json& value) const {
    return Node(value, path_ + "[" + json(key).dump() + "]", origin_);
  }
  Node at(std::size_t index) const {
    return Node(value_[index], path_ + "[" + std::to_string(index) + "]", origin_);
  }
  std::size_t size() const { return value_.size(); }

  const json& object() const {
    if (!value_.is_object()) fail("expected an object, found " + describe());
    return value_;
  }
  const json& array() const {
    if (!value_.is_array()) fail("expected an array, found " + describe());
    return value_;
  }
  std::string string() const {
    if (!value_.is_string()) fail("expected a string, found " + describe());
    return value_.get<std::string>();
  }
  bool boolean() const {
    if (!value_.is_boolean()) fail("expected true or false, found " + describe());
    return value_.get<bool>();
  }
  std::int64_t integer(std::int64_t min, std::int64_t max) const {
    std::int64_t v = 0;
    if (value_.is_number_unsigned()) {
      auto u = value_.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(max))
        fail(describe() + " is above " + std::to_string(max));
      v = static_cast<std::int64_t>(u);
    } else if (value_.is_number_integer()) {
      v = value_.get<std::int64_t>();
    } else {
      fail("expected an integer, found " + describe());
    }
    if (v < min || v > max) {
      fail(describe() + " is outside [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    return v;
  }
  std::int32_t id() const { return static_cast<std::int32_t>(integer(0, kMaxId)); }
  std::string type() const { return at("type").string(); }
  [[noreturn]] void unsupported(const std::string& what) const {
    throw InputError(origin_ + ": " + path_ + " " + what + " is not supported");
  }

  // The value in a message: scalars as written (shortened), containers by kind only (dumping
  // one would recurse as deep as a hostile file nests).
  std::string describe() const {
    if (value_.is_array()) return "an array";
    if (value_.is_object()) return "an object";
    std::string text = value_.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return text;
  }

 private:
  const json* find(const std::string& key) const {
    const json& o = object();
    auto it = o.find(key);
    return it == o.end() ? nullptr : &*it;
  }
  Node child(const json& value, const std::string& key) const {
    return Node(value, path_.empty() ? key : path_ + "." + key, origin_);
  }

  const json& value_;
  std::string path_;
  const std::string& origin_;
};

std::string in_quotes(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

}  // namespace

// What a file says, ready to use. Tokenizer::Impl is this under the header's private name; the
// readers below need one they can see.
struct TokenizerState {
  std::unique_ptr<Bpe> model;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Decoder> decoder;
  AddedTokens added;
  Vocabulary added_ids;             // content -> id
  std::vector<std::string> tokens;  // by id; empty where no token has the id
  std::vector<bool> special;        // by id
  // The post-processor's ids for a single sequence: before and after it.
  std::vector<std::int32_t> prefix_ids, suffix_ids;
  bool byte_level = false;

  std::vector<std::int32_t> encode(std::string_view text) const;
};

struct Tokenizer::Impl : TokenizerState {};

namespace {

// Readers of the parts of the file.
class Reader {
 public:
  explicit Reader(TokenizerState& state) : state_(state) {}

  std::unique_ptr<Normalizer> normalizer(const Node& node, int depth = 0) {
    if (depth > kMaxNesting) node.fail("sequences nested too deeply");
    std::string type = node.type();
    if (type == "NFC") return nfc_normalizer();
    if (type == "Prepend") return prepend_normalizer(node.at("prepend").string());
    if (type == "Replace") {
      return replace_normalizer(pattern(node.at("pattern")), node.at("content").string());
    }
    if (type == "Sequence") {
      Node steps = node.at("normalizers");
      steps.array();
      std::vector<std::unique_ptr<Normalizer>> out;
      for (std::size_t k = 0; k < steps.size(); ++k)
        out.push_back(normalizer(steps.at(k), depth + 1));
      return sequence_normalizer(std::move(out));
    }
    node.unsupported("type " + in_quotes(type));
  }

  std::unique_ptr<PreTokenizer> pre_tokenizer(const Node& node, int depth = 0) {
    if (depth > kMaxNesting) node.fail("sequences nested too deeply");
    std::string type = node.type();
    if (type == "Split") {
      std::string behavior = node.at("behavior").string();
      if (behavior != "Isolated" && behavior != "Removed") {
        node.at("behavior").unsupported(in_quotes(behavior));
      }
      if (auto invert = node.get("invert"); invert && invert->boolean()) {
        invert->unsupported("true");
      }
      return split_pre_tokenizer(pattern(node.at("pattern")), behavior == "Isolated"
                                                                  ? SplitBehavior::kIsolated
                                                                  : SplitBehavior::kRemoved);
    }
    if (type == "ByteLevel") {
      state_.byte_level = true;
      return byte_level_pre_tokenizer(flag(node, "add_prefix_space", true),
                                      flag(node, "use_regex", true));
    }
    if (type == "Metaspace") {
      return metaspace_pre_tokenizer(replacement(node), prepend_scheme(node),
                                     flag(node, "split", true));
    }
    if (type == "Sequence") {
      Node steps = node.at("pretokenizers");
      steps.array();
      std::vector<std::unique_ptr<PreTokenizer>> out;
      for (std::size_t k = 0; k < steps.size(); ++k) {
        out.push_back(pre_tokenizer(steps.at(k), depth + 1));
      }
      return sequence_pre_tokenizer(std::move(out));
    }
    node.unsupported("type " + in_quotes(type));
  }

  std::unique_ptr<Decoder> decoder(const Node& node, int depth = 0) {
    if (depth > kMaxNesting) node.fail("sequences nested too deeply");
    std::string type = node.type();
    if (type == "ByteLevel") {
      std::unordered_set<std::string> added;
      for (const AddedToken& token : state_.added.tokens())
        added.insert(token.content);
      return byte_level_decoder(std::move(added));
    }
    if (type == "Metaspace") return metaspace_decoder(replacement(node), prepend_scheme(node));
    if (type == "Replace") {
      return replace_decoder(pattern(node.at("pattern")), node.at("content").string());
    }
    if (type == "ByteFallback") return byte_fallback_decoder();
    if (type == "Fuse") return fuse_decoder();
    if (type == "Strip") {
      Node content = node.at("content");
      std::string c = content.string();
      std::size_t pos = 0;
      char32_t cp = c.empty() ? 0 : unicode::next_code_point(c, pos);
      if (c.empty() || pos != c.size()) content.fail("expected one character");
      return strip_decoder(cp, node.at("start").integer(0, 1 << 20),
                           node.at("stop").integer(0, 1 << 20));
    }
    if (type == "Sequence") {
      Node steps = node.at("decoders");
      steps.array();
      std::vector<std::unique_ptr<Decoder>> out;
      for (std::size_t k = 0; k < steps.size(); ++k)
        out.push_back(decoder(steps.at(k), depth + 1));
      return sequence_decoder(std::move(out));
    }
    node.unsupported("type " + in_quotes(type));
  }

  // The BPE model; fills state_.tokens with the vocabulary.
  std::unique_ptr<Bpe> model(const Node& model) {
    model.object();
    if (auto type = model.get("type"); type && type->string() != "BPE") {
      type->unsupported(in_quotes(type->string()));
    }
    if (auto dropout = model.get("dropout")) dropout->unsupported("(not null)");
    for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (auto value = model.get(affix); value && !value->string().empty()) {
        value->unsupported(in_quotes(value->string()));
      }
    }
    Vocabulary vocab;
    Node vocab_node = model.at("vocab");
    const json& vocab_object = vocab_node.object();
    vocab.reserve(vocab_object.size());
    std::int32_t highest = -1;
    std::unordered_map<std::int32_t, const std::string*> owner;
    for (auto it = vocab_object.begin(); it != vocab_object.end(); ++it) {
      Node entry = vocab_node.entry(it.key(), it.value());
      std::int32_t id = entry.id();
      if (it.key().empty()) entry.fail("the empty string is not a token");
      auto [previous, fresh] = owner.emplace(id, &it.key());
      if (!fresh) {
        vocab_node.fail("id " + std::to_string(id) + " given to both " +
                        in_quotes(*previous->second) + " and " + in_quotes(it.key()));
      }
      vocab.emplace(it.key(), id);
      highest = std::max(highest, id);
    }
    named_ = vocab.size();
    if (highest >= static_cast<std::int64_t>(named_) + kMaxIdGap) {
      vocab_node.fail("id " + std::to_string(highest) + " is too far past its " +
                      std::to_string(named_) + " tokens (ids are dense: at most " +
                      std::to_string(named_ + kMaxIdGap - 1) + ")");
    }
    state_.tokens.assign(static_cast<std::size_t>(highest + 1), std::string());
    for (const auto& [token, id] : vocab)
      state_.tokens[id] = token;

    Node merges_node = model.at("merges");
    merges_node.array();
    std::vector<Bpe::Merge> merges;
    merges.reserve(merges_node.size());
    for (std::size_t k = 0; k < merges_node.size(); ++k) {
      Node merge = merges_node.at(k);
      std::string left, right;
      if (merge.value().is_string()) {
        std::string line = merge.string();
        std::size_t space = line.find(' ');
        if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
          merge.fail("expected two tokens separated by one space");
        }
        left = line.substr(0, space);
        right = line.substr(space + 1);
      } else {
        merge.array();
        if (merge.size() != 2) merge.fail("expected a pair of tokens");
        left = merge.at(0).string();
        right = merge.at(1).string();
      }
      auto id_of = [&](const std::string& token) {
        auto it = vocab.find(token);
        if (it == vocab.end()) merge.fail(in_quotes(token) + " is not in the vocabulary");
        return it->second;
      };
      merges.push_back({id_of(left), id_of(right), id_of(left + right)});
    }

    BpeOptions options;
    if (auto unk = model.get("unk_token")) {
      auto it = vocab.find(unk->string());
      if (it == vocab.end()) unk->fail(in_quotes(unk->string()) + " is not in the vocabulary");
      options.unk_id = it->second;
    }
    if (auto v = model.get("fuse_unk")) options.fuse_unk = v->boolean();
    if (auto v = model.get("byte_fallback")) options.byte_fallback = v->boolean();
    if (auto v = model.get("ignore_merges")) options.ignore_merges = v->boolean();
    return std::make_unique<Bpe>(std::move(vocab), merges, options);
  }

  // Added tokens, after the vocabulary and the normalizer.
  void added_tokens(const Node& added) {
    added.array();
    for (std::size_t k = 0; k < added.size(); ++k) {
      Node entry = added.at(k);
      entry.object();
      auto flag = [&](const char* key, bool otherwise) {
        auto value = entry.get(key);
        return value ? value->boolean() : otherwise;
      };
      AddedToken token;
      token.id = entry.at("id").id();
      token.content = entry.at("content").string();
      if (token.content.empty()) entry.at("content").fail("an added token cannot be empty");
      token.single_word = flag("single_word", false);
      token.lstrip = flag("lstrip", false);
      token.rstrip = flag("rstrip", false);
      token.special = flag("special", false);
      token.normalized = flag("normalized", !token.special);
      if (state_.added_ids.contains(token.content))
        entry.fail(in_quotes(token.content) + " is added twice");
      if (static_cast<std::size_t>(token.id) >= state_.tokens.size()) {
        if (static_cast<std::int64_t>(token.id) >= static_cast<std::int64_t>(named_) + kMaxIdGap) {
          entry.at("id").fail(std::to_string(token.id) + " is too far past the " +
                              std::to_string(named_) +
                              " tokens named before it (ids are dense: at most " +
                              std::to_string(named_ + kMaxIdGap - 1) + ")");
        }
        state_.tokens.resize(static_cast<std::size_t>(token.id) + 1);
      }
      state_.tokens[token.id] = token.content;
      ++named_;
      state_.added_ids.emplace(token.content, token.id);
      bool normalized = token.normalized && state_.normalizer;
      std::string found_as =
          normalized ? state_.normalizer->normalize(token.content) : token.content;
      if (found_as.empty()) entry.at("content").fail("normalizes to nothing");
      state_.added.add(std::move(token),
                       normalized ? AddedTokens::Pass::kNormalized : AddedTokens::Pass::kRaw,
                       found_as);
    }
  }

  // Appends the single-sequence template's ids around the sequence to state_.
  void post_processor(const Node& node, int depth = 0) {
    if (depth > kMaxNesting) node.fail("sequences nested too deeply");
    std::string type = node.type();
    if (type == "ByteLevel") return;
    if (type == "Sequence") {
      Node steps = node.at("processors");
      steps.array();
      for (std::size_t k = 0; k < steps.size(); ++k)
        post_processor(steps.at(k), depth + 1);
      return;
    }
    if (type != "TemplateProcessing") node.unsupported("type " + in_quotes(type));
    Node special_tokens = node.at("special_tokens");
    special_tokens.object();
    Node single = node.at("single");
    single.array();
    bool after = false, seen_sequence = false;
    for (std::size_t k = 0; k < single.size(); ++k) {
      Node item = single.at(k);
      if (auto sequence = item.get("Sequence")) {
        std::string id = sequence->at("id").string();
        if (id != "A") sequence->at("id").unsupported(in_quotes(id) + " in a single template");
        if (seen_sequence) item.fail("the sequence appears twice");
        seen_sequence = after = true;
        continue;
      }
      auto special = item.get("SpecialToken");
      if (!special) item.fail("expected a Sequence or a SpecialToken");
      std::string name = special->at("id").string();
      auto entry = special_tokens.get(name);
      if (!entry) special->at("id").fail(in_quotes(name) + " is not in special_tokens");
      Node ids = entry->at("ids");
      ids.array();
      for (std::size_t j = 0; j < ids.size(); ++j) {
        std::int32_t id = ids.at(j).id();
        if (id >= static_cast<std::int32_t>(state_.tokens.size()) || state_.tokens[id].empty()) {
          ids.at(j).fail("id " + std::to_string(id) + " names no token");
        }
        (after ? state_.suffix_ids : state_.prefix_ids).push_back(id);
      }
    }
  }

 private:
  static bool flag(const Node& node, const std::string& key, bool otherwise) {
    auto value = node.get(key);
    return value ? value->boolean() : otherwise;
  }

  static std::string replacement(const Node& node) {
    auto value = node.get("replacement");
    std::string r = value ? value->string() : "\u2581";
    if (r.empty()) value->fail("expected a non-empty string");
    return r;
  }

  static PrependScheme prepend_scheme(const Node& node) {
    if (auto scheme = node.get("prepend_scheme")) {
      std::string s = scheme->string();
      if (s == "always") return PrependScheme::kAlways;
      if (s == "first") return PrependScheme::kFirst;
      if (s == "never") return PrependScheme::kNever;
      scheme->unsupported(in_quotes(s));
    }
    // Files older than prepend_scheme say add_prefix_space.
    return flag(node, "add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
  }

  static Pattern pattern(const Node& node) {
    if (auto literal = node.get("String")) {
      std::string s = literal->string();
      if (s.empty()) literal->fail("expected a non-empty string");
      return Pattern::literal(std::move(s));
    }
    if (auto regex = node.get("Regex")) {
      try {
        return Pattern::regex(regex->string());
      } catch (const RegexError& e) {
        regex->fail(std::string("regex not supported: ") + e.what());
      }
    }
    node.fail("expected {\"String\": ...} or {\"Regex\": ...}");
  }

  TokenizerState& state_;
  std::size_t named_ = 0;  // the tokens the file has named so far: vocabulary, then added
};

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_json(std::string_view json_text, std::string_view origin_view) {
  const std::string origin(origin_view);
  json document;
  try {
    document = json::parse(json_text);
  } catch (const json::exception& e) {
    throw InputError(origin + ": not valid JSON: " + e.what());
  }
  auto impl = std::make_shared<Impl>();
  Reader reader(*impl);
  Node root(document, "", origin);
  root.object();
  for (const char* batch_only : {"truncation", "padding"}) {
    if (auto value = root.get(batch_only)) value->unsupported("(not null)");
  }

  // In this order: added tokens take over vocabulary ids and may be normalized; the
  // post-processor and the decoder name tokens.
  impl->model = reader.model(root.at("model"));
  if (auto normalizer = root.get("normalizer")) impl->normalizer = reader.normalizer(*normalizer);
  if (auto added = root.get("added_tokens")) reader.added_tokens(*added);
  impl->special.assign(impl->tokens.size(), false);
  for (const AddedToken& token : impl->added.tokens())
    impl->special[token.id] = token.special;

  if (auto pre_tokenizer = root.get("pre_tokenizer")) {
    impl->pre_tokenizer = reader.pre_tokenizer(*pre_tokenizer);
  }
  if (auto post_processor = root.get("post_processor")) reader.post_processor(*post_processor);
  if (auto decoder = root.get("decoder")) impl->decoder = reader.decoder(*decoder);
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string() + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InputError(file.string() + ": cannot be read");
  return from_json(text.str(), file.string());
}

std::vector<std::int32_t> TokenizerState::encode(std::string_view text) const {
  std::vector<std::int32_t> ids;
  auto sections = added.split(text, AddedTokens::Pass::kRaw);
  for (std::size_t index = 0; index < sections.size(); ++index) {
    auto& section = sections[index];
    if (section.token) {
      ids.push_back(section.token->id);
      continue;
    }
    if (section.text.empty()) continue;
    std::string normalized =
        normalizer ? normalizer->normalize(std::move(section.text)) : std::move(section.text);
    for (auto& part : added.split(normalized, AddedTokens::Pass::kNormalized)) {
      if (part.token) {
        ids.push_back(part.token->id);
        continue;
      }
      if (part.text.empty()) continue;
      std::vector<std::string> pieces{std::move(part.text)};
      if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces, index);
      for (const std::string& piece : pieces)
        model->encode(piece, ids);
    }
  }
  return ids;
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<std::int32_t> body = impl_->encode(unicode::to_valid_utf8(text));
  if (!add_special_tokens || (impl_->prefix_ids.empty() && impl_->suffix_ids.empty())) return body;
  std::vector<std::int32_t> ids = impl_->prefix_ids;
  ids.insert(ids.end(), body.begin(), body.end());
  ids.insert(ids.end(), impl_->suffix_ids.begin(), impl_->suffix_ids.end());
  return ids;
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids, DecodeOptions options) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (std::int32_t id : ids) {
    std::string token = id_to_token(id);
    if (options.skip_special_tokens && impl_->special[id]) continue;
    tokens.push_back(std::move(token));
  }
  std::string text;
  if (impl_->decoder) {
    impl_->decoder->decode_chain(tokens);
    for (const std::string& piece : tokens)
      text += piece;
  } else {
    for (std::size_t k = 0; k < tokens.size(); ++k)
      text += (k ? " " : "") + tokens[k];
  }
  return options.clean_up_tokenization_spaces ? clean_up_tokenization(std::move(text)) : text;
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids) const {
  return decode(ids, DecodeOptions{});
}

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_ids.find(token); it != impl_->added_ids.end()) {
    return it->second;
  }
  const Vocabulary& vocab = impl_->model->vocab();
  if (auto it = vocab.find(token); it != vocab.end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::id_to_token(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->tokens.size() || impl_->tokens[id].empty()) {
    throw InputError("token id " + std::to_string(id) + " is not in the vocabulary (" +
                     std::to_string(impl_->tokens.size()) + " ids)");
  }
  return impl_->tokens[id];
}

bool Tokenizer::is_special(std::int32_t id) const {
  return id >= 0 && static_cast<std::size_t>(id) < impl_->special.size() && impl_->special[id];
}

std::size_t Tokenizer::vocab_size() const {
  return impl_->tokens.size();
}

std::string Tokenizer::summary() const {
  std::string kind = impl_->byte_level                       ? "byte-level BPE"
                     : impl_->model->options().byte_fallback ? "BPE with byte fallback"
                                                             : "BPE";
  std::string adds;
  for (const auto* list : {&impl_->prefix_ids, &impl_->suffix_ids}) {
    for (std::int32_t id : *list)
      adds += (adds.empty() ? "" : " ") + impl_->tokens[id];
  }
  return kind + ", " + std::to_string(vocab_size()) + " tokens (" +
         std::to_string(impl_->added.tokens().size()) + " added), post-processor adds " +
         (adds.empty() ? "nothing" : adds);
}

}  // namespace hearth::text
