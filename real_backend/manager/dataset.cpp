#include "real_backend/manager/dataset.hpp"

#include <fmt/format.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "policy/errors.hpp"

namespace hearth::real {

using nlohmann::json;

Dataset read_dataset(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("{}: cannot open dataset", path.string()));
  return read_dataset(in, path.string());
}

Dataset read_dataset(std::istream& in, std::string source) {
  Dataset d;
  d.source = std::move(source);
  std::set<std::string> seen;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    auto where = [&] { return fmt::format("{}:{}", d.source, n); };
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) throw InputError(fmt::format("{}: not valid JSON", where()));
    if (!j.is_object()) throw InputError(fmt::format("{}: not a JSON object", where()));
    DatasetRow row;
    row.line = n;
    auto id = j.find("id");
    if (id == j.end()) throw InputError(fmt::format("{}: missing \"id\"", where()));
    if (!id->is_string() && !id->is_number_integer()) {
      throw InputError(fmt::format("{}: \"id\" must be a string or an integer", where()));
    }
    row.id_json = id->dump();
    if (!seen.insert(row.id_json).second) {
      throw InputError(fmt::format("{}: id {} appears twice", where(), row.id_json));
    }
    for (const auto& [key, value] : j.items()) {
      if (key == "id") continue;
      if (key == "input_ids") {
        if (!value.is_array())
          throw InputError(fmt::format("{}: \"input_ids\" must be an array", where()));
        for (const json& t : value) {
          if (!t.is_number_integer() || t.get<std::int64_t>() < 0 ||
              t.get<std::int64_t>() > std::numeric_limits<std::int32_t>::max()) {
            throw InputError(
                fmt::format("{}: \"input_ids\" must hold token ids (integers >= 0)", where()));
          }
          row.input_ids.push_back(t.get<std::int32_t>());
        }
        row.has_input_ids = true;
      } else if (value.is_string()) {
        row.fields[key] = value.get<std::string>();
      }
    }
    d.rows.push_back(std::move(row));
  }
  return d;
}

PromptTemplate::PromptTemplate(std::string text) {
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t open = text.find('{', i);
    std::size_t close = open == std::string::npos ? open : text.find('}', open);
    bool is_field = close != std::string::npos && close > open + 1 &&
                    text.find_first_not_of(
                        "abcdefghijklmnopqrstuvwxyz"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
                        open + 1) == close;
    if (!is_field) {
      std::size_t end = open == std::string::npos ? text.size() : open + 1;
      parts_.push_back({text.substr(i, end - i), false});
      i = end;
      continue;
    }
    if (open > i) parts_.push_back({text.substr(i, open - i), false});
    parts_.push_back({text.substr(open + 1, close - open - 1), true});
    i = close + 1;
  }
  if (parts_.empty()) parts_.push_back({"", false});
}

std::string PromptTemplate::render(const DatasetRow& row, const std::string& source) const {
  std::string out;
  for (const Part& p : parts_) {
    if (!p.field) {
      out += p.text;
      continue;
    }
    auto f = row.fields.find(p.text);
    if (f == row.fields.end()) {
      throw InputError(fmt::format("{}:{}: missing string field \"{}\" that the template uses",
                                   source, row.line, p.text));
    }
    out += f->second;
  }
  return out;
}

std::vector<std::int32_t> PromptTemplate::tokens(const DatasetRow& row,
                                                 const std::string& source) const {
  if (parts_.empty()) {
    if (!row.has_input_ids) {
      throw InputError(fmt::format("{}:{}: missing \"input_ids\" (the context has no template)",
                                   source, row.line));
    }
    return row.input_ids;
  }
  std::vector<std::int32_t> ids;
  for (unsigned char c : render(row, source))
    ids.push_back(c);
  return ids;
}

}  // namespace hearth::real
