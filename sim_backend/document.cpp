#include "sim_backend/document.hpp"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <cmath>
#include <filesystem>
#include <optional>

#include "policy/errors.hpp"
#include "traces/text.hpp"

namespace hearth::sim {

namespace {

// TOML values become the JSON values that mean the same; dates and times have no use here.
nlohmann::json to_json(const toml::node& node, const std::string& source) {
  if (const auto* t = node.as_table()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : *t)
      out[std::string(key.str())] = to_json(value, source);
    return out;
  }
  if (const auto* a = node.as_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& value : *a)
      out.push_back(to_json(value, source));
    return out;
  }
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return i->get();
  if (const auto* f = node.as_floating_point()) return f->get();
  if (const auto* b = node.as_boolean()) return b->get();
  throw InputError(
      fmt::format("{}:{}: dates and times are not used here", source, node.source().begin.line));
}

}  // namespace

DocumentFormat format_of(const std::string& path) {
  auto ends_with = [&](std::string_view suffix) {
    return path.size() >= suffix.size() &&
           path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".toml")) return DocumentFormat::toml;
  if (ends_with(".json")) return DocumentFormat::json;
  throw InputError(fmt::format("{}: expected a .toml or .json file", path));
}

Document read_document(const std::string& path) {
  DocumentFormat format = format_of(path);
  return parse_document(traces::read_text_file(path), path, format);
}

std::string relative_to(const std::string& file, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_absolute()) return path;
  return (std::filesystem::path(file).parent_path() / p).lexically_normal().string();
}

Document parse_document(std::string_view text, std::string_view source, DocumentFormat format) {
  Document doc;
  doc.source = std::string(source);
  if (format == DocumentFormat::toml) {
    try {
      toml::table table = toml::parse(text, source);
      doc.root = to_json(table, doc.source);
    } catch (const toml::parse_error& e) {
      throw InputError(fmt::format("{}:{}: {}", source, e.source().begin.line, e.description()));
    }
  } else {
    try {
      doc.root = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw InputError(fmt::format("{}: byte {}: not valid JSON", source, e.byte));
    } catch (const nlohmann::json::exception& e) {  // a number too big for a double
      throw InputError(fmt::format("{}: not valid JSON: {}", source, e.what()));
    }
    if (!doc.root.is_object()) throw InputError(fmt::format("{}: expected a JSON object", source));
  }
  return doc;
}

std::string Node::key_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

void Node::fail(std::string_view key, std::string_view what) const {
  throw InputError(fmt::format("{}: key {}: {}", source_, key_path(key), what));
}

void Node::fail_here(std::string_view what) const {
  if (path_.empty()) throw InputError(fmt::format("{}: {}", source_, what));
  throw InputError(fmt::format("{}: key {}: {}", source_, path_, what));
}

bool Node::has(std::string_view key) const {
  return value_->contains(key);
}

bool Node::is_string(std::string_view key) const {
  return has(key) && at(key).is_string();
}

bool Node::is_table(std::string_view key) const {
  return has(key) && at(key).is_object();
}

const nlohmann::json& Node::at(std::string_view key) const {
  auto it = value_->find(key);
  if (it == value_->end()) fail(key, "missing");
  return *it;
}

std::string Node::text(std::string_view key) const {
  const auto& v = at(key);
  if (!v.is_string()) fail(key, "must be a string");
  return v.get<std::string>();
}

std::string Node::text_or(std::string_view key, std::string fallback) const {
  return has(key) ? text(key) : fallback;
}

double Node::number(std::string_view key) const {
  const auto& v = at(key);
  if (!v.is_number()) fail(key, "must be a number");
  double x = v.get<double>();
  if (!std::isfinite(x)) fail(key, "must be finite");
  return x;
}

double Node::number_or(std::string_view key, double fallback) const {
  return has(key) ? number(key) : fallback;
}

double Node::positive(std::string_view key) const {
  double x = number(key);
  if (!(x > 0)) fail(key, fmt::format("must be above 0 (is {})", x));
  return x;
}

double Node::positive_or(std::string_view key, double fallback) const {
  return has(key) ? positive(key) : fallback;
}

double Node::non_negative_or(std::string_view key, double fallback) const {
  if (!has(key)) return fallback;
  double x = number(key);
  if (x < 0) fail(key, fmt::format("must not be negative (is {})", x));
  return x;
}

std::uint64_t Node::whole(std::string_view key, std::uint64_t at_least) const {
  const auto& v = at(key);
  std::optional<std::uint64_t> n;
  if (v.is_number_unsigned()) n = v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) n = v.get<std::int64_t>();
  // 1e6 is a float in TOML and JSON alike; accept it when it is whole.
  if (v.is_number_float()) {
    double x = v.get<double>();
    if (x >= 0 && x <= 9.0e18 && std::floor(x) == x) n = static_cast<std::uint64_t>(x);
  }
  if (!n || *n < at_least) fail(key, fmt::format("must be a whole number, at least {}", at_least));
  return *n;
}

std::uint64_t Node::count(std::string_view key) const {
  return whole(key, 1);
}

std::uint64_t Node::whole_or(std::string_view key, std::uint64_t fallback) const {
  return has(key) ? whole(key, 0) : fallback;
}

std::uint64_t Node::count_or(std::string_view key, std::uint64_t fallback) const {
  return has(key) ? count(key) : fallback;
}

std::string Node::file_path(std::string_view key) const {
  return relative_to(source_, text(key));
}

std::optional<std::string> Node::optional_text(std::string_view key) const {
  return has(key) ? std::optional(text(key)) : std::nullopt;
}

std::optional<std::uint64_t> Node::optional_count(std::string_view key) const {
  return has(key) ? std::optional(count(key)) : std::nullopt;
}

Node Node::table(std::string_view key) const {
  const auto& v = at(key);
  if (!v.is_object()) fail(key, "must be a table");
  return Node(source_, key_path(key), &v);
}

std::vector<Node> Node::tables(std::string_view key) const {
  const auto& v = at(key);
  if (!v.is_array()) fail(key, "must be an array of tables");
  std::vector<Node> out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::string path = fmt::format("{}[{}]", key_path(key), i);
    if (!v[i].is_object())
      throw InputError(fmt::format("{}: key {}: must be a table", source_, path));
    out.emplace_back(source_, path, &v[i]);
  }
  return out;
}

std::vector<std::pair<std::string, Node>> Node::named_tables(std::string_view key) const {
  Node t = table(key);
  std::vector<std::pair<std::string, Node>> out;
  for (const auto& [name, value] : t.value_->items()) {
    if (!value.is_object()) t.fail(name, "must be a table");
    out.emplace_back(name, Node(source_, t.key_path(name), &value));
  }
  return out;
}

void Node::only_keys(std::initializer_list<std::string_view> known) const {
  for (const auto& [key, value] : value_->items()) {
    bool ok = false;
    for (std::string_view k : known)
      ok = ok || k == key;
    if (ok) continue;
    std::string list;
    for (std::string_view k : known)
      list += fmt::format("{}{}", list.empty() ? "" : ", ", k);
    fail(key, fmt::format("unknown key (known here: {})", list));
  }
}

}  // namespace hearth::sim
