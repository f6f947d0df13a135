#pragma once
// Reading the line-oriented text files that traces come in (hearth's own format and the published
// ones it converts): lines with their numbers, fields, strict numbers, and errors that say where.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::traces {

// Throws hearth::InputError("source:line: what"), or "source: what" when line is 0.
[[noreturn]] void fail(std::string_view source, std::size_t line, std::string_view what);

// The whole file; throws InputError("path: cannot read: reason") when it cannot be read.
std::string read_text_file(const std::string& path);

struct TextLine {
  std::size_t number = 0;  // 1-based
  std::string_view text;   // trimmed of spaces, tabs and '\r'
};

// The lines that carry content: blank lines and lines starting with '#' are left out. A file
// without any is an error: throws InputError("source:1: <if_none>").
std::vector<TextLine> content_lines(std::string_view text, std::string_view source,
                                    std::string_view if_none);

std::string_view trim(std::string_view s);

// Splits on every `separator`; fields are trimmed. "a,,b" gives three fields.
std::vector<std::string_view> split_fields(std::string_view line, char separator);

// A number that is finite and >= 0, written in full (no trailing characters). Otherwise throws
// InputError at source:line naming the field: "time 'abc' is not a number", "grace_s -2 is
// negative", "time nan is not a finite number", "time is missing".
double parse_nonnegative(std::string_view field, std::string_view what, std::string_view source,
                         std::size_t line);

// Rounds to the nearest millisecond: producers of traces write times at this resolution.
double round_to_ms(double seconds);

}  // namespace hearth::traces
