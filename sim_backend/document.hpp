#pragma once
// The files a user writes for the simulator (cluster descriptions, scenarios) are TOML or JSON.
// Both are read into one tree, and every getter names the file and the key path when the value
// is missing or wrong: "campus.toml: key gpu_types.T4-16GB.per_inference_s: must be above 0".
// Paths in a document are relative to its file.
//
// Read by sim_backend/ and by experiments/ (specs are documents too). It includes nlohmann/json:
// include it from .cpp files and from headers that only they include, not from public headers.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/errors.hpp"

namespace hearth::sim {

enum class DocumentFormat { toml, json };

// The format a file name asks for (.toml or .json); throws InputError for anything else.
DocumentFormat format_of(const std::string& path);

// One table of a document, with where it sits for messages.
class Node {
 public:
  Node(std::string source, std::string path, const nlohmann::json* value)
      : source_(std::move(source)), path_(std::move(path)), value_(value) {}

  const std::string& source() const { return source_; }
  const std::string& path() const { return path_; }

  bool has(std::string_view key) const;
  bool is_string(std::string_view key) const;
  bool is_table(std::string_view key) const;

  std::string text(std::string_view key) const;
  std::string text_or(std::string_view key, std::string fallback) const;
  // A number of any kind (an integer is fine where a real is asked for).
  double number(std::string_view key) const;
  double number_or(std::string_view key, double fallback) const;
  double positive(std::string_view key) const;
  double positive_or(std::string_view key, double fallback) const;
  double non_negative_or(std::string_view key, double fallback) const;
  std::uint64_t whole(std::string_view key, std::uint64_t at_least) const;
  std::uint64_t whole_or(std::string_view key, std::uint64_t fallback) const;
  std::uint64_t count(std::string_view key) const;  // a whole number, at least 1
  std::uint64_t count_or(std::string_view key, std::uint64_t fallback) const;
  // The path at `key`, relative to the document's folder unless absolute.
  std::string file_path(std::string_view key) const;
  // `parse(text(key))`, an InputError the parser throws reported at the key.
  template <class Parse>
  auto parsed(std::string_view key, Parse parse) const {
    const std::string value = text(key);
    try {
      return parse(value);
    } catch (const InputError& e) {
      // Parsers shared with the command line name the value themselves ("arrivals 'x': ..."),
      // which the key's path has said already.
      std::string_view what = e.what();
      if (what.starts_with(key) && what.substr(key.size()).starts_with(' ')) {
        what.remove_prefix(key.size() + 1);
      }
      fail(key, what);
    }
  }
  // The value, checked as text() and count() check it; nothing when the key is absent.
  std::optional<std::string> optional_text(std::string_view key) const;
  std::optional<std::uint64_t> optional_count(std::string_view key) const;

  Node table(std::string_view key) const;
  // The tables of an array of tables ([[key]] in TOML, a list of objects in JSON).
  std::vector<Node> tables(std::string_view key) const;
  // Each entry of a table of tables ([key.NAME] in TOML), sorted by name.
  std::vector<std::pair<std::string, Node>> named_tables(std::string_view key) const;

  // Throws InputError naming the first key not in `known`, so that typos do not go unnoticed.
  void only_keys(std::initializer_list<std::string_view> known) const;

  [[noreturn]] void fail(std::string_view key, std::string_view what) const;
  [[noreturn]] void fail_here(std::string_view what) const;

 private:
  const nlohmann::json& at(std::string_view key) const;
  std::string key_path(std::string_view key) const;

  std::string source_;
  std::string path_;
  const nlohmann::json* value_;
};

struct Document {
  std::string source;  // the file name, for messages
  nlohmann::json root;
  Node top() const { return Node(source, "", &root); }
};

Document read_document(const std::string& path);
// `path` as a document `file` writes it: relative to the file's folder unless absolute.
std::string relative_to(const std::string& file, const std::string& path);
Document parse_document(std::string_view text, std::string_view source, DocumentFormat format);

}  // namespace hearth::sim
