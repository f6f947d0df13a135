#pragma once
// A tokenizer read from a Hugging Face tokenizer.json: text to token ids and back, with the
// semantics of Hugging Face's tokenizers for the parts Llama-family files use (BPE; NFC, Prepend,
// Replace normalizers; Split, ByteLevel, Metaspace pre-tokenizers; added tokens; template and
// byte-level post-processors; the usual decoders). Anything else in a file is refused by name
// when it is read, never ignored.
//
// Text that is not valid UTF-8 is encoded as if each ill-formed sequence were U+FFFD (what
// JavaScript's TextDecoder and Rust's from_utf8_lossy make of it); Hugging Face's own
// tokenizers take only valid text.
//
// Copies share the read data, which is immutable; every method is safe to call from several
// threads at once.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::text {

class Tokenizer {
 public:
  // Reads tokenizer.json's text; `origin` names it in errors. Throws hearth::InputError
  // (policy/errors.hpp) saying what is wrong or unsupported, by name: e.g.
  // "tokenizer.json: pre_tokenizer type \"Whitespace\" is not supported".
  static Tokenizer from_json(std::string_view json_text,
                             std::string_view origin = "tokenizer.json");
  // Reads the file; throws InputError when it cannot be read, or as from_json.
  static Tokenizer from_file(const std::filesystem::path& file);

  // Token ids of `text`; with add_special_tokens, the post-processor's (BOS/EOS as the file
  // says). Added tokens in the text are matched whether or not add_special_tokens is set.
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  struct DecodeOptions {
    bool skip_special_tokens = false;
    bool clean_up_tokenization_spaces = false;
  };
  // Text of `ids` through the decoder; invalid UTF-8 becomes U+FFFD as HF does. Throws
  // InputError for ids out of range.
  std::string decode(const std::vector<std::int32_t>& ids, DecodeOptions options) const;
  std::string decode(const std::vector<std::int32_t>& ids) const;  // default options

  // The id of a vocabulary or added token, or none.
  std::optional<std::int32_t> token_to_id(std::string_view token) const;
  // The token of an id (an added token's content where one has the id); throws InputError for an
  // id that names no token.
  std::string id_to_token(std::int32_t id) const;
  // Whether `id` is an added token marked special.
  bool is_special(std::int32_t id) const;
  // The highest id + 1, added tokens included.
  std::size_t vocab_size() const;
  // One line, e.g. "byte-level BPE, 128256 tokens (256 added), post-processor adds
  // <|begin_of_text|>".
  std::string summary() const;

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace hearth::text
