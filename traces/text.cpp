#include "traces/text.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "policy/errors.hpp"

namespace hearth::traces {

void fail(std::string_view source, std::size_t line, std::string_view what) {
  if (line == 0) throw InputError(fmt::format("{}: {}", source, what));
  throw InputError(fmt::format("{}:{}: {}", source, line, what));
}

std::string read_text_file(const std::string& path) {
  // A folder opens like a file and reads as nothing: it would pass for an empty file.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, 0, "is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, 0, fmt::format("cannot read: {}", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  const auto first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(kSpace);
  return s.substr(first, last - first + 1);
}

std::vector<TextLine> content_lines(std::string_view text, std::string_view source,
                                    std::string_view if_none) {
  std::vector<TextLine> lines;
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    const auto newline = text.find('\n');
    const auto raw = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    const auto line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    lines.push_back({number, line});
  }
  if (lines.empty()) fail(source, 1, if_none);
  return lines;
}

std::vector<std::string_view> split_fields(std::string_view line, char separator) {
  std::vector<std::string_view> fields;
  while (true) {
    const auto at = line.find(separator);
    fields.push_back(trim(line.substr(0, at)));
    if (at == std::string_view::npos) return fields;
    line.remove_prefix(at + 1);
  }
}

double parse_nonnegative(std::string_view field, std::string_view what, std::string_view source,
                         std::size_t line) {
  if (field.empty()) fail(source, line, fmt::format("{} is missing", what));
  double value = 0;
  const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (error != std::errc{} || end != field.data() + field.size()) {
    fail(source, line, fmt::format("{} '{}' is not a number", what, field));
  }
  if (!std::isfinite(value)) {
    fail(source, line, fmt::format("{} {} is not a finite number", what, field));
  }
  if (value < 0) fail(source, line, fmt::format("{} {} is negative", what, field));
  return value + 0.0;  // turns -0 into 0
}

double round_to_ms(double seconds) {
  return std::round(seconds * 1000) / 1000;
}

}  // namespace hearth::traces
