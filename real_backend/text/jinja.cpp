#include "real_backend/text/jinja.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

namespace hearth::text::jinja {

// ---------------------------------------------------------------------------------------------
// Values

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::set(std::string key, Value value) {
  for (auto& [k, v] : items_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items_.emplace_back(std::move(key), std::move(value));
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::none;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::boolean;
  v.data_ = b;
  return v;
}

Value Value::integer(std::int64_t i) {
  Value v;
  v.kind_ = Kind::integer;
  v.data_ = i;
  return v;
}

Value Value::floating(double d) {
  Value v;
  v.kind_ = Kind::floating;
  v.data_ = d;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::string;
  v.data_ = std::move(s);
  return v;
}

Value Value::list(List items) {
  Value v;
  v.kind_ = Kind::list;
  v.data_ = std::shared_ptr<const List>(std::make_shared<List>(std::move(items)));
  return v;
}

Value Value::tuple(List items) {
  Value v = list(std::move(items));
  v.tuple_ = true;
  return v;
}

Value Value::dict(Dict entries) {
  Value v;
  v.kind_ = Kind::dict;
  v.data_ = std::make_shared<Dict>(std::move(entries));
  return v;
}

Value Value::namespace_object(Dict entries) {
  Value v;
  v.kind_ = Kind::namespace_object;
  v.data_ = std::make_shared<Dict>(std::move(entries));
  return v;
}

Value Value::function(Function f) {
  Value v;
  v.kind_ = Kind::function;
  v.data_ = std::shared_ptr<const Function>(std::make_shared<Function>(std::move(f)));
  return v;
}

Value Value::macro(std::shared_ptr<const Macro> m) {
  Value v;
  v.kind_ = Kind::macro;
  v.data_ = std::move(m);
  return v;
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::undefined:
    case Kind::none:
      return false;
    case Kind::boolean:
      return as_bool();
    case Kind::integer:
      return as_int() != 0;
    case Kind::floating:
      return as_float() != 0.0;
    case Kind::string:
      return !as_string().empty();
    case Kind::list:
      return !as_list().empty();
    case Kind::dict:
      return as_dict().size() != 0;
    case Kind::namespace_object:
    case Kind::function:
    case Kind::macro:
      return true;
  }
  return false;
}

SyntaxError::SyntaxError(int line, int column, const std::string& message)
    : std::runtime_error(fmt::format("line {} column {}: {}", line, column, message)),
      line_(line),
      column_(column),
      message_(message) {}

RenderError::RenderError(const std::string& message, int line, int column, bool raised)
    : std::runtime_error(message), line_(line), column_(column), raised_(raised) {}

namespace {

[[noreturn]] void fail(const std::string& message) {
  throw RenderError(message);
}

// ---------------------------------------------------------------------------------------------
// UTF-8 and Python's string semantics (code points, str.isspace, repr)

// The code point at s[i], advancing i; a malformed byte is taken as itself.
char32_t next_code_point(std::string_view s, std::size_t& i) {
  auto b = static_cast<unsigned char>(s[i]);
  int extra = b < 0x80 ? 0 : (b >> 5) == 0x6 ? 1 : (b >> 4) == 0xE ? 2 : (b >> 3) == 0x1E ? 3 : -1;
  if (extra <= 0 || i + static_cast<std::size_t>(extra) >= s.size()) {
    ++i;
    return b;
  }
  char32_t cp = extra == 1 ? (b & 0x1F) : extra == 2 ? (b & 0x0F) : (b & 0x07);
  for (int k = 1; k <= extra; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) {
      ++i;
      return b;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  i += 1 + extra;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The byte offset of each code point of s, and s.size() at the end.
std::vector<std::size_t> code_point_offsets(std::string_view s) {
  std::vector<std::size_t> offsets;
  offsets.reserve(s.size() + 1);
  for (std::size_t i = 0; i < s.size();) {
    offsets.push_back(i);
    next_code_point(s, i);
  }
  offsets.push_back(s.size());
  return offsets;
}

std::size_t code_point_count(std::string_view s) {
  std::size_t n = 0;
  for (char c : s)
    n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Python's str.isspace().
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Python's str.strip / lstrip / rstrip: whitespace, or any code point of `chars`.
std::string strip(std::string_view s, bool left, bool right, const std::string* chars = nullptr) {
  std::vector<char32_t> set;
  if (chars) {
    for (std::size_t i = 0; i < chars->size();)
      set.push_back(next_code_point(*chars, i));
  }
  auto strippable = [&](char32_t c) {
    return chars ? std::find(set.begin(), set.end(), c) != set.end() : is_space(c);
  };
  auto offsets = code_point_offsets(s);
  std::size_t first = 0, last = offsets.size() - 1;  // code point indices [first, last)
  auto at = [&](std::size_t k) {
    std::size_t i = offsets[k];
    return next_code_point(s, i);
  };
  if (left) {
    while (first < last && strippable(at(first)))
      ++first;
  }
  if (right) {
    while (last > first && strippable(at(last - 1)))
      --last;
  }
  return std::string(s.substr(offsets[first], offsets[last] - offsets[first]));
}

char ascii_upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c;
}
char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}
bool ascii_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Case changes are ASCII-only: other letters keep their case.
std::string to_upper(std::string s) {
  for (char& c : s)
    c = ascii_upper(c);
  return s;
}

std::string to_lower(std::string s) {
  for (char& c : s)
    c = ascii_lower(c);
  return s;
}

std::string capitalize(const std::string& s) {
  std::string r = to_lower(s);
  if (!r.empty()) r[0] = ascii_upper(r[0]);
  return r;
}

// Python's str.title(): a letter after a non-letter starts a word.
std::string title_method(const std::string& s) {
  std::string r = s;
  bool previous_cased = false;
  for (char& c : r) {
    if (ascii_alpha(c)) {
      c = previous_cased ? ascii_lower(c) : ascii_upper(c);
      previous_cased = true;
    } else {
      previous_cased = (static_cast<unsigned char>(c) & 0x80) != 0 && previous_cased;
    }
  }
  return r;
}

// Jinja's title filter: words begin after whitespace, '-', '(', '{', '[' or '<'.
std::string title_filter(const std::string& s) {
  std::string r;
  r.reserve(s.size());
  bool start = true;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t begin = i;
    char32_t c = next_code_point(s, i);
    bool separator = is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (separator) {
      r.append(s, begin, i - begin);
      start = true;
    } else if (start) {
      for (std::size_t k = begin; k < i; ++k)
        r += ascii_upper(s[k]);
      start = false;
    } else {
      for (std::size_t k = begin; k < i; ++k)
        r += ascii_lower(s[k]);
    }
  }
  return r;
}

// Python's str.splitlines().
std::vector<std::string> split_lines(std::string_view s) {
  std::vector<std::string> lines;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t begin = i;
    char32_t c = next_code_point(s, i);
    bool breaks = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D ||
                  c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!breaks) continue;
    lines.emplace_back(s.substr(line_start, begin - line_start));
    if (c == '\r' && i < s.size() && s[i] == '\n') ++i;
    line_start = i;
  }
  if (line_start < s.size()) lines.emplace_back(s.substr(line_start));
  return lines;
}

std::string replace_all(const std::string& s, const std::string& old, const std::string& with,
                        std::int64_t count) {
  std::string r;
  if (old.empty()) {
    // Python inserts `with` before each code point and at the end.
    std::size_t done = 0, i = 0;
    while (i < s.size()) {
      if (count >= 0 && static_cast<std::int64_t>(done) >= count) break;
      r += with;
      ++done;
      std::size_t begin = i;
      next_code_point(s, i);
      r.append(s, begin, i - begin);
    }
    r.append(s, i, std::string::npos);
    if (i == s.size() && (count < 0 || static_cast<std::int64_t>(done) < count)) r += with;
    return r;
  }
  std::size_t from = 0;
  std::int64_t done = 0;
  while (count < 0 || done < count) {
    std::size_t at = s.find(old, from);
    if (at == std::string::npos) break;
    r.append(s, from, at - from);
    r += with;
    from = at + old.size();
    ++done;
  }
  r.append(s, from, std::string::npos);
  return r;
}

std::string repr_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  (void)ec;
  std::string_view sci(buf, end - buf);  // "-d.ddde+XX"
  bool negative = sci[0] == '-';
  if (negative) sci.remove_prefix(1);
  std::size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exponent = std::stoi(std::string(sci.substr(e + 1)));
  int decimal_point = exponent + 1;  // digits d1d2... are 0.d1d2... * 10^decimal_point
  std::string r = negative ? "-" : "";
  if (decimal_point > 16 || decimal_point < -3) {
    r += digits[0];
    if (digits.size() > 1) r += "." + digits.substr(1);
    r += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  } else if (decimal_point <= 0) {
    r += "0." + std::string(-decimal_point, '0') + digits;
  } else if (static_cast<std::size_t>(decimal_point) >= digits.size()) {
    r += digits + std::string(decimal_point - digits.size(), '0') + ".0";
  } else {
    r += digits.substr(0, decimal_point) + "." + digits.substr(decimal_point);
  }
  return r;
}

std::string repr_string(const std::string& s) {
  char quote = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string r(1, quote);
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      r += '\\';
      r += c;
    } else if (c == '\n') {
      r += "\\n";
    } else if (c == '\r') {
      r += "\\r";
    } else if (c == '\t') {
      r += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      r += fmt::format("\\x{:02x}", u);
    } else {
      r += c;
    }
  }
  return r + quote;
}

std::string repr(const Value& v);

// Python's str() of a value, as {{ }} prints it.
std::string to_str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined:
      return "";
    case Value::Kind::string:
      return v.as_string();
    default:
      return repr(v);
  }
}

std::string repr(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined:
      return "";
    case Value::Kind::none:
      return "None";
    case Value::Kind::boolean:
      return v.as_bool() ? "True" : "False";
    case Value::Kind::integer:
      return std::to_string(v.as_int());
    case Value::Kind::floating:
      return repr_float(v.as_float());
    case Value::Kind::string:
      return repr_string(v.as_string());
    case Value::Kind::list: {
      std::string r = v.is_tuple() ? "(" : "[";
      for (const auto& item : v.as_list()) {
        if (r.size() > 1) r += ", ";
        r += repr(item);
      }
      if (v.is_tuple()) return r + (v.as_list().size() == 1 ? ",)" : ")");
      return r + "]";
    }
    case Value::Kind::dict:
    case Value::Kind::namespace_object: {
      std::string r = v.kind() == Value::Kind::dict ? "{" : "<Namespace {";
      bool first = true;
      for (const auto& [key, item] : v.as_dict().items()) {
        if (!first) r += ", ";
        first = false;
        r += repr_string(key) + ": " + repr(item);
      }
      return r + (v.kind() == Value::Kind::dict ? "}" : "}>");
    }
    case Value::Kind::function:
    case Value::Kind::macro:
      return "<function>";
  }
  return "";
}

std::string_view kind_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined:
      return "undefined";
    case Value::Kind::none:
      return "none";
    case Value::Kind::boolean:
      return "bool";
    case Value::Kind::integer:
      return "int";
    case Value::Kind::floating:
      return "float";
    case Value::Kind::string:
      return "string";
    case Value::Kind::list:
      return "list";
    case Value::Kind::dict:
      return "dict";
    case Value::Kind::namespace_object:
      return "namespace";
    case Value::Kind::function:
    case Value::Kind::macro:
      return "function";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// JSON as Hugging Face's tojson writes it: Python's json.dumps(value, ensure_ascii=False,
// indent=indent, separators=None, sort_keys=False) unless told otherwise.

struct JsonStyle {
  std::optional<std::string> indent;  // none: one line
  bool ensure_ascii = false;
  bool sort_keys = false;
  std::string item_separator;
  std::string key_separator;
};

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    std::size_t begin = i;
    char32_t c = next_code_point(s, i);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
          if (c >= 0x10000) {
            char32_t v = c - 0x10000;
            out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
          } else {
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
          }
        } else {
          out.append(s, begin, i - begin);
        }
    }
  }
  out += '"';
}

void to_json(std::string& out, const Value& v, const JsonStyle& style, int depth) {
  auto newline = [&](int level) {
    if (!style.indent) return;
    out += '\n';
    for (int k = 0; k < level; ++k)
      out += *style.indent;
  };
  if (depth > 128) fail("tojson: value nested too deeply");
  switch (v.kind()) {
    case Value::Kind::none:
      out += "null";
      return;
    case Value::Kind::boolean:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Kind::integer:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::floating: {
      double d = v.as_float();
      out += std::isnan(d)   ? "NaN"
             : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity")
                             : repr_float(d);
      return;
    }
    case Value::Kind::string:
      json_string(out, v.as_string(), style.ensure_ascii);
      return;
    case Value::Kind::list: {
      const List& items = v.as_list();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (std::size_t k = 0; k < items.size(); ++k) {
        if (k > 0) out += style.item_separator;
        newline(depth + 1);
        to_json(out, items[k], style, depth + 1);
      }
      newline(depth);
      out += ']';
      return;
    }
    case Value::Kind::dict:
    case Value::Kind::namespace_object: {
      if (v.kind() == Value::Kind::namespace_object) fail("tojson: a namespace is not JSON");
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& entry : v.as_dict().items())
        entries.push_back(&entry);
      if (entries.empty()) {
        out += "{}";
        return;
      }
      if (style.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](auto* a, auto* b) { return a->first < b->first; });
      }
      out += '{';
      for (std::size_t k = 0; k < entries.size(); ++k) {
        if (k > 0) out += style.item_separator;
        newline(depth + 1);
        json_string(out, entries[k]->first, style.ensure_ascii);
        out += style.key_separator;
        to_json(out, entries[k]->second, style, depth + 1);
      }
      newline(depth);
      out += '}';
      return;
    }
    case Value::Kind::undefined:
      fail("tojson: an undefined value is not JSON");
    case Value::Kind::function:
    case Value::Kind::macro:
      fail("tojson: a function is not JSON");
  }
}

// ---------------------------------------------------------------------------------------------
// Comparisons and arithmetic with Python's semantics

bool is_numeric(const Value& v) {
  return v.kind() == Value::Kind::integer || v.kind() == Value::Kind::floating ||
         v.kind() == Value::Kind::boolean;
}

double numeric(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::boolean:
      return v.as_bool() ? 1 : 0;
    case Value::Kind::integer:
      return static_cast<double>(v.as_int());
    default:
      return v.as_float();
  }
}

// Integers and booleans (Python's bool is an int).
bool is_integral(const Value& v) {
  return v.kind() == Value::Kind::integer || v.kind() == Value::Kind::boolean;
}

std::int64_t integral(const Value& v) {
  return v.kind() == Value::Kind::boolean ? (v.as_bool() ? 1 : 0) : v.as_int();
}

bool equal(const Value& a, const Value& b) {
  if (is_numeric(a) && is_numeric(b)) {
    if (is_integral(a) && is_integral(b)) return integral(a) == integral(b);
    return numeric(a) == numeric(b);
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::undefined:
    case Value::Kind::none:
      return true;
    case Value::Kind::string:
      return a.as_string() == b.as_string();
    case Value::Kind::list: {
      const List &x = a.as_list(), &y = b.as_list();
      if (x.size() != y.size()) return false;
      for (std::size_t k = 0; k < x.size(); ++k) {
        if (!equal(x[k], y[k])) return false;
      }
      return true;
    }
    case Value::Kind::dict: {
      const Dict &x = a.as_dict(), &y = b.as_dict();
      if (x.size() != y.size()) return false;
      for (const auto& [key, item] : x.items()) {
        const Value* other = y.find(key);
        if (!other || !equal(item, *other)) return false;
      }
      return true;
    }
    case Value::Kind::namespace_object:
      return &a.namespace_entries() == &b.namespace_entries();
    default:
      return false;
  }
}

// <0, 0, >0 as Python orders a and b; throws where Python cannot order them.
int compare(const Value& a, const Value& b, std::string_view op) {
  if (is_numeric(a) && is_numeric(b)) {
    if (is_integral(a) && is_integral(b)) {
      return integral(a) < integral(b) ? -1 : integral(a) > integral(b) ? 1 : 0;
    }
    double x = numeric(a), y = numeric(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.as_string().compare(b.as_string());
  if (a.kind() == Value::Kind::list && b.kind() == Value::Kind::list) {
    const List &x = a.as_list(), &y = b.as_list();
    for (std::size_t k = 0; k < x.size() && k < y.size(); ++k) {
      if (!equal(x[k], y[k])) return compare(x[k], y[k], op);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  fail(fmt::format("'{}' is not supported between a {} and a {}", op, kind_name(a), kind_name(b)));
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::string:
      if (!item.is_string()) fail("'in <string>' requires a string on its left");
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::list:
      for (const auto& x : container.as_list()) {
        if (equal(x, item)) return true;
      }
      return false;
    case Value::Kind::dict:
      return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
    case Value::Kind::undefined:
      return false;
    default:
      fail(fmt::format("'in' needs a string, list or dict on its right, not a {}",
                       kind_name(container)));
  }
}

// The items a for loop or a filter iterates: a list's items, a string's characters, a dict's
// keys; nothing for undefined.
List iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::list:
      return v.as_list();
    case Value::Kind::undefined:
      return {};
    case Value::Kind::string: {
      List chars;
      const std::string& s = v.as_string();
      for (std::size_t i = 0; i < s.size();) {
        std::size_t begin = i;
        next_code_point(s, i);
        chars.push_back(Value::string(s.substr(begin, i - begin)));
      }
      return chars;
    }
    case Value::Kind::dict: {
      List keys;
      for (const auto& [key, item] : v.as_dict().items())
        keys.push_back(Value::string(key));
      return keys;
    }
    default:
      fail(fmt::format("a {} is not iterable", kind_name(v)));
  }
}

std::int64_t length_of(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::string:
      return static_cast<std::int64_t>(code_point_count(v.as_string()));
    case Value::Kind::list:
      return static_cast<std::int64_t>(v.as_list().size());
    case Value::Kind::dict:
      return static_cast<std::int64_t>(v.as_dict().size());
    case Value::Kind::undefined:
      return 0;
    default:
      fail(fmt::format("a {} has no length", kind_name(v)));
  }
}

// Python's index rules: negative counts from the end; out of range is nullopt.
std::optional<std::size_t> python_index(std::int64_t index, std::size_t size) {
  if (index < 0) index += static_cast<std::int64_t>(size);
  if (index < 0 || index >= static_cast<std::int64_t>(size)) return std::nullopt;
  return static_cast<std::size_t>(index);
}

// The indices of Python's slice [start:stop:step] of a sequence of `size`.
std::vector<std::size_t> slice_indices(std::optional<std::int64_t> start,
                                       std::optional<std::int64_t> stop,
                                       std::optional<std::int64_t> step, std::size_t size) {
  std::int64_t n = static_cast<std::int64_t>(size);
  std::int64_t s = step.value_or(1);
  if (s == 0) fail("slice step cannot be zero");
  auto clamp = [&](std::optional<std::int64_t> v, std::int64_t if_none) {
    if (!v) return if_none;
    std::int64_t x = *v < 0 ? *v + n : *v;
    if (s > 0) return std::clamp<std::int64_t>(x, 0, n);
    return std::clamp<std::int64_t>(x, -1, n - 1);
  };
  std::int64_t from = clamp(start, s > 0 ? 0 : n - 1);
  std::int64_t to = clamp(stop, s > 0 ? n : -1);
  std::vector<std::size_t> indices;
  for (std::int64_t k = from; s > 0 ? k < to : k > to; k += s) {
    indices.push_back(static_cast<std::size_t>(k));
  }
  return indices;
}

// ---------------------------------------------------------------------------------------------
// The tree

struct Location {
  int line = 0;
  int column = 0;
};

enum class Filter {
  abs,
  capitalize,
  default_,
  first,
  float_,
  indent,
  int_,
  items,
  join,
  last,
  length,
  list,
  lower,
  map,
  reject,
  rejectattr,
  replace,
  reverse,
  safe,
  select,
  selectattr,
  string,
  title,
  tojson,
  trim,
  unique,
  upper,
};

enum class Test {
  boolean,
  callable,
  defined,
  divisibleby,
  eq,
  even,
  false_,
  float_,
  ge,
  gt,
  in,
  integer,
  iterable,
  le,
  lower,
  lt,
  mapping,
  ne,
  none,
  number,
  odd,
  sameas,
  sequence,
  string,
  true_,
  undefined,
  upper,
};

enum class Op { add, sub, mul, div, floordiv, mod, pow, concat };
enum class CompareOp { eq, ne, lt, le, gt, ge, in, not_in };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    literal,
    name,
    list,
    dict,       // children: key, value, key, value...
    attribute,  // children[0] . name
    item,       // children[0] [ children[1] ]
    slice,      // children[0] [ children[1] : children[2] : children[3] ] (nullptr: absent)
    call,       // children[0] ( children[1..], keywords )
    filter,     // children[0] | name ( children[1..], keywords ); children[0] null in a block
    test,       // children[0] is [not] name ( children[1..] )
    not_,
    negate,
    plus,
    binary,  // children[0] op children[1]
    and_,
    or_,
    compare,      // children[0] ops[0] children[1] ops[1] children[2] ...
    conditional,  // children[0] if children[1] else children[2] (nullptr: undefined)
  };
  Kind kind;
  Location where;
  Value literal;
  std::string name;  // name, attribute, filter, test
  int id = -1;       // name: its slot; filter, test: the enum
  Op op = Op::add;
  bool negated = false;  // is not
  bool tuple = false;    // a list written (a, b)
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> keywords;
  std::vector<CompareOp> compare_ops;
};

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

}  // namespace

struct Macro {
  std::string name;
  std::vector<int> parameters;
  std::vector<ExprPtr> defaults;  // one per parameter, nullptr where none
  Body body;
};

namespace {

struct Node {
  enum class Kind {
    text,
    output,
    if_,
    for_,
    set,
    set_block,
    macro,
    filter_block,
    break_,
    continue_
  };
  Kind kind;
  Location where;
  std::string text;
  ExprPtr expr;  // output; set's value; for's iterable; filter_block's and set_block's filter
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, elif..., else (condition nullptr)
  std::vector<int> targets;                        // for, set: names (several: unpacking)
  std::string attribute;                           // set ns.attribute: targets[0] is ns
  ExprPtr condition;                               // for ... if condition
  bool uses_loop = false;                          // for: the body reads `loop`
  Body body;
  Body else_body;
  std::shared_ptr<Macro> macro;
};

}  // namespace

struct Program {
  Body body;
  std::vector<std::string> names;  // by slot
  std::vector<Value> builtins;     // by slot: range, namespace, raise_exception, or undefined
};

namespace {

// ---------------------------------------------------------------------------------------------
// The lexer: Jinja's, with Hugging Face's trim_blocks and lstrip_blocks

struct Token {
  enum class Kind {
    text,
    block_begin,
    block_end,
    var_begin,
    var_end,
    name,
    string,
    integer,
    floating,
    op,
    eof
  };
  Kind kind;
  std::string value;
  std::size_t offset;
};

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(source) {
    // keep_trailing_newline=False
    if (!src_.empty() && src_.back() == '\n') src_.remove_suffix(1);
    line_starts_.push_back(0);
    for (std::size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  Location locate(std::size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    std::size_t line_start = *(it - 1);
    int column =
        1 + static_cast<int>(code_point_count(src_.substr(line_start, offset - line_start)));
    return {static_cast<int>(it - line_starts_.begin()), column};
  }

  [[noreturn]] void error(std::size_t offset, const std::string& message) const {
    Location where = locate(offset);
    throw SyntaxError(where.line, where.column, message);
  }

  std::vector<Token> run() {
    std::size_t pos = 0;
    while (pos < src_.size()) {
      std::size_t start = find_tag(pos);
      if (start == std::string_view::npos) {
        emit_text(src_.substr(pos));
        break;
      }
      char kind = src_[start + 1];
      char modifier = start + 2 < src_.size() ? src_[start + 2] : '\0';
      std::string_view text = src_.substr(pos, start - pos);
      if (modifier == '-') {
        text = rstrip_view(text);
      } else if (kind != '{' && modifier != '+') {
        // lstrip_blocks: blanks between the start of a line and a block or comment tag.
        std::size_t newline = text.rfind('\n');
        std::size_t tail = newline == std::string_view::npos ? 0 : newline + 1;
        bool at_line_start = newline != std::string_view::npos || pos == 0 || src_[pos - 1] == '\n';
        if (at_line_start && text.find_first_not_of(" \t", tail) == std::string_view::npos) {
          text = text.substr(0, tail);
        }
      }
      emit_text(text);
      if (kind == '#') {
        pos = comment(start, modifier);
      } else if (kind == '%' && raw(start, pos)) {
        continue;
      } else {
        pos = tag(start, kind, modifier);
      }
    }
    tokens_.push_back({Token::Kind::eof, "", src_.size()});
    return std::move(tokens_);
  }

 private:
  std::size_t find_tag(std::size_t from) const {
    for (std::size_t i = src_.find('{', from); i != std::string_view::npos;
         i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return std::string_view::npos;
  }

  static std::string_view rstrip_view(std::string_view s) {
    auto offsets = code_point_offsets(s);
    std::size_t k = offsets.size() - 1;
    while (k > 0) {
      std::size_t i = offsets[k - 1];
      if (!is_space(next_code_point(s, i))) break;
      --k;
    }
    return s.substr(0, offsets[k]);
  }

  std::size_t skip_space(std::size_t pos) const {
    while (pos < src_.size()) {
      std::size_t i = pos;
      if (!is_space(next_code_point(src_, i))) break;
      pos = i;
    }
    return pos;
  }

  // Jinja turns every \r\n and \r of the template's text into \n.
  static std::string normalize_newlines(std::string_view s) {
    std::string r;
    r.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\r') {
        r += '\n';
        if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
      } else {
        r += s[i];
      }
    }
    return r;
  }

  void emit_text(std::string_view text) {
    if (!text.empty()) {
      tokens_.push_back({Token::Kind::text, normalize_newlines(text),
                         static_cast<std::size_t>(text.data() - src_.data())});
    }
  }

  // After a block or comment tag: `-` strips all whitespace, trim_blocks one newline.
  std::size_t after_block_end(std::size_t pos, char modifier) const {
    if (modifier == '-') return skip_space(pos);
    if (modifier != '+' && pos < src_.size() && src_[pos] == '\n') return pos + 1;
    return pos;
  }

  std::size_t comment(std::size_t start, char modifier) {
    std::size_t body = start + 2 + (modifier == '-' || modifier == '+' ? 1 : 0);
    std::size_t end = src_.find("#}", body);
    if (end == std::string_view::npos) error(start, "comment is not closed: missing '#}'");
    char end_modifier = end > body ? src_[end - 1] : '\0';
    return after_block_end(end + 2, end_modifier);
  }

  // Matches `{%[-+]? name [-+]?%}` at pos; returns the offset after it, and its modifiers.
  std::optional<std::size_t> simple_tag(std::size_t pos, std::string_view name, char& open,
                                        char& close) const {
    if (src_.substr(pos, 2) != "{%") return std::nullopt;
    pos += 2;
    open = pos < src_.size() ? src_[pos] : '\0';
    if (open == '-' || open == '+') ++pos;
    while (pos < src_.size() && (src_[pos] == ' ' || src_[pos] == '\t' || src_[pos] == '\n'))
      ++pos;
    if (src_.substr(pos, name.size()) != name) return std::nullopt;
    pos += name.size();
    while (pos < src_.size() && (src_[pos] == ' ' || src_[pos] == '\t' || src_[pos] == '\n'))
      ++pos;
    close = pos < src_.size() ? src_[pos] : '\0';
    if (close == '-' || close == '+') ++pos;
    if (src_.substr(pos, 2) != "%}") return std::nullopt;
    return pos + 2;
  }

  // {% raw %}...{% endraw %}: the text between as it is.
  bool raw(std::size_t start, std::size_t& pos) {
    char open, close;
    auto body = simple_tag(start, "raw", open, close);
    if (!body) return false;
    std::size_t begin = close == '-' ? skip_space(*body) : *body;
    for (std::size_t at = src_.find("{%", begin); at != std::string_view::npos;
         at = src_.find("{%", at + 1)) {
      char end_open, end_close;
      auto after = simple_tag(at, "endraw", end_open, end_close);
      if (!after) continue;
      std::string_view text = src_.substr(begin, at - begin);
      if (end_open == '-') {
        text = rstrip_view(text);
      } else if (end_open != '+') {
        std::size_t newline = text.rfind('\n');
        std::size_t tail = newline == std::string_view::npos ? 0 : newline + 1;
        if ((newline != std::string_view::npos || src_[begin - 1] == '\n') &&
            text.find_first_not_of(" \t", tail) == std::string_view::npos) {
          text = text.substr(0, tail);
        }
      }
      if (!text.empty()) {
        tokens_.push_back({Token::Kind::text, normalize_newlines(text), begin});
      }
      pos = after_block_end(*after, end_close);
      return true;
    }
    error(start, "raw block is not closed: missing {% endraw %}");
  }

  std::size_t tag(std::size_t start, char kind, char modifier) {
    bool block = kind == '%';
    tokens_.push_back({block ? Token::Kind::block_begin : Token::Kind::var_begin, "", start});
    std::size_t pos = start + 2;
    if (modifier == '-' || (block && modifier == '+')) ++pos;
    int depth = 0;
    while (true) {
      pos = skip_space(pos);
      if (pos >= src_.size()) {
        error(start,
              block ? "tag is not closed: missing '%}'" : "expression is not closed: missing '}}'");
      }
      if (depth == 0) {
        char end_char = block ? '%' : '}';
        char c = src_[pos];
        char end_modifier = '\0';
        std::size_t end = pos;
        if ((c == '-' || (block && c == '+')) && pos + 1 < src_.size() &&
            src_[pos + 1] == end_char) {
          end_modifier = c;
          ++end;
        }
        if (src_.substr(end, 2) == (block ? "%}" : "}}")) {
          tokens_.push_back({block ? Token::Kind::block_end : Token::Kind::var_end, "", pos});
          end += 2;
          if (block) return after_block_end(end, end_modifier);
          return end_modifier == '-' ? skip_space(end) : end;
        }
      }
      pos = token(pos, depth);
    }
  }

  std::size_t token(std::size_t pos, int& depth) {
    char c = src_[pos];
    if (c == '\'' || c == '"') return string_literal(pos);
    if (c >= '0' && c <= '9') return number(pos);
    if (ascii_alpha(c) || c == '_') {
      std::size_t end = pos;
      while (end < src_.size() && (ascii_alpha(src_[end]) || src_[end] == '_' ||
                                   (src_[end] >= '0' && src_[end] <= '9'))) {
        ++end;
      }
      tokens_.push_back({Token::Kind::name, std::string(src_.substr(pos, end - pos)), pos});
      return end;
    }
    static constexpr std::string_view two[] = {"**", "//", "==", "!=", "<=", ">="};
    for (auto op : two) {
      if (src_.substr(pos, 2) == op) {
        tokens_.push_back({Token::Kind::op, std::string(op), pos});
        return pos + 2;
      }
    }
    if (std::string_view("+-*/%~<>=()[]{},.:|").find(c) != std::string_view::npos) {
      if (c == '(' || c == '[' || c == '{') ++depth;
      if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
      tokens_.push_back({Token::Kind::op, std::string(1, c), pos});
      return pos + 1;
    }
    error(pos, fmt::format("unexpected character '{}'", std::string(1, c)));
  }

  std::size_t number(std::size_t pos) {
    std::size_t end = pos;
    auto digits = [&] {
      while (end < src_.size() && src_[end] >= '0' && src_[end] <= '9')
        ++end;
    };
    digits();
    bool is_float = false;
    if (end + 1 < src_.size() && src_[end] == '.' && src_[end + 1] >= '0' && src_[end + 1] <= '9') {
      is_float = true;
      ++end;
      digits();
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      std::size_t exponent = end + 1;
      if (exponent < src_.size() && (src_[exponent] == '+' || src_[exponent] == '-')) ++exponent;
      if (exponent < src_.size() && src_[exponent] >= '0' && src_[exponent] <= '9') {
        is_float = true;
        end = exponent;
        digits();
      }
    }
    if (end < src_.size() && (ascii_alpha(src_[end]) || src_[end] == '_')) {
      error(pos, "malformed number");
    }
    tokens_.push_back({is_float ? Token::Kind::floating : Token::Kind::integer,
                       std::string(src_.substr(pos, end - pos)), pos});
    return end;
  }

  // A string literal with Python's escapes.
  std::size_t string_literal(std::size_t start) {
    char quote = src_[start];
    std::string value;
    std::size_t pos = start + 1;
    auto hex = [&](std::size_t at, int count) -> char32_t {
      char32_t v = 0;
      for (int k = 0; k < count; ++k) {
        char h = at + k < src_.size() ? src_[at + k] : '\0';
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;
        if (d < 0) error(at - 2, "malformed \\x, \\u or \\U escape");
        v = v * 16 + d;
      }
      return v;
    };
    while (true) {
      if (pos >= src_.size()) error(start, "string is not closed");
      char c = src_[pos];
      if (c == quote) break;
      if (c == '\r') {
        value += '\n';
        pos += pos + 1 < src_.size() && src_[pos + 1] == '\n' ? 2 : 1;
        continue;
      }
      if (c != '\\') {
        value += c;
        ++pos;
        continue;
      }
      if (pos + 1 >= src_.size()) error(start, "string is not closed");
      char e = src_[pos + 1];
      pos += 2;
      switch (e) {
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'r':
          value += '\r';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'v':
          value += '\v';
          break;
        case 'a':
          value += '\a';
          break;
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case '\n':
          break;
        case 'x':
          append_utf8(value, hex(pos, 2));
          pos += 2;
          break;
        case 'u':
          append_utf8(value, hex(pos, 4));
          pos += 4;
          break;
        case 'U': {
          char32_t cp = hex(pos, 8);
          if (cp > 0x10FFFF) error(pos - 2, "\\U escape out of range");
          append_utf8(value, cp);
          pos += 8;
          break;
        }
        default:
          if ((e >= '0' && e <= '7') || e == 'N') {
            error(pos - 2, fmt::format("unsupported escape '\\{}' in a string", e));
          }
          value += '\\';  // Python keeps an unknown escape as it is
          value += e;
      }
    }
    tokens_.push_back({Token::Kind::string, std::move(value), start});
    return pos + 1;
  }

  std::string_view src_;
  std::vector<std::size_t> line_starts_;
  std::vector<Token> tokens_;
};

// ---------------------------------------------------------------------------------------------
// The parser: Jinja's grammar and precedence

constexpr std::pair<std::string_view, Filter> kFilters[] = {
    {"abs", Filter::abs},
    {"capitalize", Filter::capitalize},
    {"count", Filter::length},
    {"d", Filter::default_},
    {"default", Filter::default_},
    {"first", Filter::first},
    {"float", Filter::float_},
    {"indent", Filter::indent},
    {"int", Filter::int_},
    {"items", Filter::items},
    {"join", Filter::join},
    {"last", Filter::last},
    {"length", Filter::length},
    {"list", Filter::list},
    {"lower", Filter::lower},
    {"map", Filter::map},
    {"reject", Filter::reject},
    {"rejectattr", Filter::rejectattr},
    {"replace", Filter::replace},
    {"reverse", Filter::reverse},
    {"safe", Filter::safe},
    {"select", Filter::select},
    {"selectattr", Filter::selectattr},
    {"string", Filter::string},
    {"title", Filter::title},
    {"tojson", Filter::tojson},
    {"trim", Filter::trim},
    {"unique", Filter::unique},
    {"upper", Filter::upper},
};

constexpr std::pair<std::string_view, Test> kTests[] = {
    {"boolean", Test::boolean},
    {"callable", Test::callable},
    {"defined", Test::defined},
    {"divisibleby", Test::divisibleby},
    {"eq", Test::eq},
    {"equalto", Test::eq},
    {"==", Test::eq},
    {"even", Test::even},
    {"false", Test::false_},
    {"float", Test::float_},
    {"ge", Test::ge},
    {">=", Test::ge},
    {"gt", Test::gt},
    {"greaterthan", Test::gt},
    {">", Test::gt},
    {"in", Test::in},
    {"integer", Test::integer},
    {"iterable", Test::iterable},
    {"le", Test::le},
    {"<=", Test::le},
    {"lower", Test::lower},
    {"lt", Test::lt},
    {"lessthan", Test::lt},
    {"<", Test::lt},
    {"mapping", Test::mapping},
    {"ne", Test::ne},
    {"!=", Test::ne},
    {"none", Test::none},
    {"number", Test::number},
    {"odd", Test::odd},
    {"sameas", Test::sameas},
    {"sequence", Test::sequence},
    {"string", Test::string},
    {"true", Test::true_},
    {"undefined", Test::undefined},
    {"upper", Test::upper},
};

// Tests that take an argument, which may follow without parentheses: `x is divisibleby 3`.
bool test_takes_argument(Test t) {
  switch (t) {
    case Test::divisibleby:
    case Test::eq:
    case Test::ge:
    case Test::gt:
    case Test::in:
    case Test::le:
    case Test::lt:
    case Test::ne:
    case Test::sameas:
      return true;
    default:
      return false;
  }
}

std::optional<Filter> filter_named(std::string_view name) {
  for (auto [n, f] : kFilters) {
    if (n == name) return f;
  }
  return std::nullopt;
}

std::optional<Test> test_named(std::string_view name) {
  for (auto [n, t] : kTests) {
    if (n == name) return t;
  }
  return std::nullopt;
}

constexpr std::string_view kStringMethods[] = {"capitalize", "endswith", "lower", "lstrip",
                                               "replace",    "rstrip",   "split", "startswith",
                                               "strip",      "title",    "upper"};
constexpr std::string_view kDictMethods[] = {"get", "items", "keys", "values"};

bool is_string_method(std::string_view name) {
  return std::find(std::begin(kStringMethods), std::end(kStringMethods), name) !=
         std::end(kStringMethods);
}

bool is_dict_method(std::string_view name) {
  return std::find(std::begin(kDictMethods), std::end(kDictMethods), name) !=
         std::end(kDictMethods);
}

// Tags Jinja knows that this interpreter refuses.
constexpr std::string_view kUnsupportedTags[] = {
    "autoescape", "block", "call", "do", "extends", "from", "import", "include", "trans", "with"};
constexpr std::string_view kEndTags[] = {
    "elif",          "else",   "endif",   "endfor",   "endset",  "endmacro",     "endfilter",
    "endgeneration", "endraw", "endcall", "endblock", "endwith", "endautoescape"};

constexpr int kMaxNesting = 64;

class Parser {
 public:
  Parser(const Lexer& lexer, std::vector<Token> tokens, Program& program)
      : lexer_(lexer), tokens_(std::move(tokens)), program_(program) {}

  void run() {
    std::string end = parse_body(program_.body, {}, {});
    (void)end;
  }

 private:
  const Token& peek(std::size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  Location where(const Token& t) const { return lexer_.locate(t.offset); }
  [[noreturn]] void error(const Token& t, const std::string& message) const {
    lexer_.error(t.offset, message);
  }

  bool at_op(std::string_view op) const {
    return peek().kind == Token::Kind::op && peek().value == op;
  }
  bool at_name(std::string_view name) const {
    return peek().kind == Token::Kind::name && peek().value == name;
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Token::Kind::eof:
        return "the end of the template";
      case Token::Kind::block_end:
        return "'%}'";
      case Token::Kind::var_end:
        return "'}}'";
      case Token::Kind::text:
        return "text";
      case Token::Kind::string:
        return "a string";
      default:
        return "'" + t.value + "'";
    }
  }
  void expect_op(std::string_view op) {
    if (!at_op(op)) error(peek(), fmt::format("expected '{}', found {}", op, describe(peek())));
    next();
  }
  void expect(Token::Kind kind, std::string_view what) {
    if (peek().kind != kind)
      error(peek(), fmt::format("expected {}, found {}", what, describe(peek())));
    next();
  }
  void expect_block_end() { expect(Token::Kind::block_end, "'%}'"); }
  const Token& expect_name(std::string_view what) {
    if (peek().kind != Token::Kind::name) {
      error(peek(), fmt::format("expected {}, found {}", what, describe(peek())));
    }
    return next();
  }

  int slot(const std::string& name) {
    for (std::size_t k = 0; k < program_.names.size(); ++k) {
      if (program_.names[k] == name) return static_cast<int>(k);
    }
    program_.names.push_back(name);
    return static_cast<int>(program_.names.size() - 1);
  }

  struct Nesting {
    Parser& parser;
    Nesting(Parser& p, const Token& at) : parser(p) {
      if (++parser.depth_ > kMaxNesting) parser.error(at, "template is nested too deeply");
    }
    ~Nesting() { --parser.depth_; }
  };

  // Parses nodes into `body` until one of `ends` (a tag name, left unconsumed after the block
  // begin), which it returns. `opener` names the block for the error when the template ends.
  std::string parse_body(Body& body, std::initializer_list<std::string_view> ends,
                         std::optional<Token> opener) {
    Nesting nesting(*this, peek());
    while (true) {
      const Token& t = peek();
      switch (t.kind) {
        case Token::Kind::eof:
          if (opener) {
            error(*opener, fmt::format("'{}' is not closed: missing {{% {} %}}", opener->value,
                                       *ends.begin()));
          }
          return "";
        case Token::Kind::text: {
          auto node = std::make_unique<Node>();
          node->kind = Node::Kind::text;
          node->where = where(t);
          node->text = t.value;
          body.push_back(std::move(node));
          next();
          break;
        }
        case Token::Kind::var_begin: {
          next();
          auto node = std::make_unique<Node>();
          node->kind = Node::Kind::output;
          node->where = where(peek());
          node->expr = parse_expression();
          expect(Token::Kind::var_end, "'}}'");
          body.push_back(std::move(node));
          break;
        }
        case Token::Kind::block_begin: {
          next();
          const Token& name = expect_name("a tag name");
          if (std::find(ends.begin(), ends.end(), name.value) != ends.end()) return name.value;
          body.push_back(parse_statement(name));
          break;
        }
        default:
          error(t, fmt::format("unexpected {}", describe(t)));
      }
    }
  }

  std::unique_ptr<Node> parse_statement(const Token& name) {
    auto node = std::make_unique<Node>();
    node->where = where(name);
    const std::string& tag = name.value;
    if (tag == "if") {
      node->kind = Node::Kind::if_;
      ExprPtr condition = parse_expression();
      while (true) {
        expect_block_end();
        Body branch;
        std::string end = parse_body(branch, {"endif", "elif", "else"}, name);
        node->branches.emplace_back(std::move(condition), std::move(branch));
        if (end == "endif") break;
        if (end == "elif") {
          condition = parse_expression();
          continue;
        }
        expect_block_end();
        Body otherwise;
        parse_body(otherwise, {"endif"}, name);
        node->branches.emplace_back(nullptr, std::move(otherwise));
        break;
      }
      expect_block_end();
    } else if (tag == "for") {
      node->kind = Node::Kind::for_;
      parse_targets(node->targets, "in");
      if (!at_name("in")) error(peek(), fmt::format("expected 'in', found {}", describe(peek())));
      next();
      node->expr = parse_expression(/*allow_conditional=*/false);
      if (at_name("if")) {
        next();
        node->condition = parse_expression();
      }
      if (at_name("recursive")) error(peek(), "recursive loops are not supported");
      expect_block_end();
      ++loop_depth_;
      for_stack_.push_back(node.get());
      std::string end = parse_body(node->body, {"endfor", "else"}, name);
      for_stack_.pop_back();
      --loop_depth_;
      if (end == "else") {
        expect_block_end();
        parse_body(node->else_body, {"endfor"}, name);
      }
      expect_block_end();
    } else if (tag == "set") {
      const Token& target = expect_name("a variable name");
      if (at_op(".")) {
        next();
        node->targets.push_back(slot(target.value));
        node->attribute = expect_name("an attribute name").value;
      } else {
        node->targets.push_back(slot(target.value));
        while (at_op(",")) {
          next();
          node->targets.push_back(slot(expect_name("a variable name").value));
        }
      }
      if (at_op("=")) {
        next();
        node->kind = Node::Kind::set;
        node->expr = parse_expression();
        expect_block_end();
      } else {
        if (node->targets.size() != 1 || !node->attribute.empty()) {
          error(peek(), "a block set assigns one variable");
        }
        node->kind = Node::Kind::set_block;
        if (at_op("|")) node->expr = parse_filters(nullptr);
        expect_block_end();
        parse_body(node->body, {"endset"}, name);
        expect_block_end();
      }
    } else if (tag == "macro") {
      node->kind = Node::Kind::macro;
      auto macro = std::make_shared<Macro>();
      macro->name = expect_name("a macro name").value;
      node->targets.push_back(slot(macro->name));
      expect_op("(");
      while (!at_op(")")) {
        macro->parameters.push_back(slot(expect_name("a parameter name").value));
        if (at_op("=")) {
          next();
          macro->defaults.push_back(parse_expression());
        } else {
          macro->defaults.push_back(nullptr);
        }
        if (!at_op(")")) expect_op(",");
      }
      next();
      expect_block_end();
      int saved_loops = loop_depth_;
      auto saved_stack = std::move(for_stack_);
      for_stack_.clear();
      loop_depth_ = 0;
      ++macro_depth_;
      parse_body(macro->body, {"endmacro"}, name);
      --macro_depth_;
      loop_depth_ = saved_loops;
      for_stack_ = std::move(saved_stack);
      if (peek().kind == Token::Kind::name) next();  // {% endmacro name %}
      expect_block_end();
      node->macro = std::move(macro);
    } else if (tag == "filter") {
      node->kind = Node::Kind::filter_block;
      node->expr = parse_filter_chain(nullptr);
      expect_block_end();
      parse_body(node->body, {"endfilter"}, name);
      expect_block_end();
    } else if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) error(name, fmt::format("'{}' outside of a loop", tag));
      node->kind = tag == "break" ? Node::Kind::break_ : Node::Kind::continue_;
      expect_block_end();
    } else if (tag == "generation") {
      // Hugging Face's tag that marks what the assistant generates: its body renders as is.
      expect_block_end();
      node->kind = Node::Kind::if_;
      node->branches.emplace_back(nullptr, Body{});
      parse_body(node->branches.back().second, {"endgeneration"}, name);
      expect_block_end();
    } else if (std::find(std::begin(kUnsupportedTags), std::end(kUnsupportedTags), tag) !=
               std::end(kUnsupportedTags)) {
      error(name, fmt::format("unsupported tag '{}'", tag));
    } else if (std::find(std::begin(kEndTags), std::end(kEndTags), tag) != std::end(kEndTags)) {
      error(name, fmt::format("unexpected tag '{}'", tag));
    } else {
      error(name, fmt::format("unknown tag '{}'", tag));
    }
    return node;
  }

  void parse_targets(std::vector<int>& targets, std::string_view before) {
    bool parenthesized = at_op("(");
    if (parenthesized) next();
    targets.push_back(slot(expect_name("a variable name").value));
    while (at_op(",")) {
      next();
      if (!parenthesized && at_name(before)) break;
      targets.push_back(slot(expect_name("a variable name").value));
    }
    if (parenthesized) expect_op(")");
  }

  ExprPtr make(Expr::Kind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->where = where(at);
    return e;
  }

  ExprPtr parse_expression(bool allow_conditional = true) {
    Nesting nesting(*this, peek());
    const Token& start = peek();
    ExprPtr e = parse_or();
    while (allow_conditional && at_name("if")) {
      next();
      auto conditional = make(Expr::Kind::conditional, start);
      conditional->children.push_back(std::move(e));
      conditional->children.push_back(parse_or());
      if (at_name("else")) {
        next();
        conditional->children.push_back(parse_expression());
      } else {
        conditional->children.push_back(nullptr);
      }
      e = std::move(conditional);
    }
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (at_name("or")) {
      auto e = make(Expr::Kind::or_, next());
      e->children.push_back(std::move(left));
      e->children.push_back(parse_and());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (at_name("and")) {
      auto e = make(Expr::Kind::and_, next());
      e->children.push_back(std::move(left));
      e->children.push_back(parse_not());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (at_name("not")) {
      Nesting nesting(*this, peek());
      auto e = make(Expr::Kind::not_, next());
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token& start = peek();
    ExprPtr first = parse_math1();
    ExprPtr chain;
    while (true) {
      std::optional<CompareOp> op;
      const Token& t = peek();
      if (t.kind == Token::Kind::op) {
        if (t.value == "==") op = CompareOp::eq;
        if (t.value == "!=") op = CompareOp::ne;
        if (t.value == "<") op = CompareOp::lt;
        if (t.value == "<=") op = CompareOp::le;
        if (t.value == ">") op = CompareOp::gt;
        if (t.value == ">=") op = CompareOp::ge;
        if (op) next();
      } else if (at_name("in")) {
        next();
        op = CompareOp::in;
      } else if (at_name("not") && peek(1).kind == Token::Kind::name && peek(1).value == "in") {
        next();
        next();
        op = CompareOp::not_in;
      }
      if (!op) break;
      if (!chain) {
        chain = make(Expr::Kind::compare, start);
        chain->children.push_back(std::move(first));
      }
      chain->compare_ops.push_back(*op);
      chain->children.push_back(parse_math1());
    }
    return chain ? std::move(chain) : std::move(first);
  }

  ExprPtr binary(Op op, const Token& at, ExprPtr left, ExprPtr right) {
    auto e = make(Expr::Kind::binary, at);
    e->op = op;
    e->children.push_back(std::move(left));
    e->children.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (at_op("+") || at_op("-")) {
      const Token& t = next();
      left = binary(t.value == "+" ? Op::add : Op::sub, t, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (at_op("~")) {
      const Token& t = next();
      left = binary(Op::concat, t, std::move(left), parse_math2());
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      const Token& t = next();
      Op op = t.value == "*"    ? Op::mul
              : t.value == "/"  ? Op::div
              : t.value == "//" ? Op::floordiv
                                : Op::mod;
      left = binary(op, t, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (at_op("**")) {
      const Token& t = next();
      left = binary(Op::pow, t, std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    Nesting nesting(*this, peek());
    ExprPtr e;
    if (at_op("-") || at_op("+")) {
      const Token& t = next();
      e = make(t.value == "-" ? Expr::Kind::negate : Expr::Kind::plus, t);
      e->children.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = peek();
    switch (t.kind) {
      case Token::Kind::name: {
        next();
        auto e = make(Expr::Kind::literal, t);
        if (t.value == "true" || t.value == "True") {
          e->literal = Value::boolean(true);
        } else if (t.value == "false" || t.value == "False") {
          e->literal = Value::boolean(false);
        } else if (t.value == "none" || t.value == "None") {
          e->literal = Value::none();
        } else {
          if (macro_depth_ > 0 &&
              (t.value == "varargs" || t.value == "kwargs" || t.value == "caller")) {
            error(t, fmt::format("'{}' in a macro is not supported", t.value));
          }
          if (t.value == "loop" && !for_stack_.empty()) for_stack_.back()->uses_loop = true;
          e->kind = Expr::Kind::name;
          e->name = t.value;
          e->id = slot(t.value);
        }
        return e;
      }
      case Token::Kind::string: {
        next();
        std::string s = t.value;
        while (peek().kind == Token::Kind::string)
          s += next().value;  // 'a' 'b' is 'ab'
        auto e = make(Expr::Kind::literal, t);
        e->literal = Value::string(std::move(s));
        return e;
      }
      case Token::Kind::integer:
      case Token::Kind::floating: {
        next();
        auto e = make(Expr::Kind::literal, t);
        if (t.kind == Token::Kind::integer) {
          e->literal = Value::integer(integer_of(t));
        } else {
          e->literal = Value::floating(std::strtod(t.value.c_str(), nullptr));
        }
        return e;
      }
      case Token::Kind::op:
        if (t.value == "(") {
          next();
          if (at_op(")")) error(peek(), "empty tuples are not supported");
          ExprPtr inner = parse_expression();
          if (at_op(",")) {
            auto tuple = make(Expr::Kind::list, t);
            tuple->tuple = true;
            tuple->children.push_back(std::move(inner));
            while (at_op(",")) {
              next();
              if (at_op(")")) break;
              tuple->children.push_back(parse_expression());
            }
            inner = std::move(tuple);
          }
          expect_op(")");
          return inner;
        }
        if (t.value == "[") {
          next();
          auto list = make(Expr::Kind::list, t);
          while (!at_op("]")) {
            list->children.push_back(parse_expression());
            if (!at_op("]")) expect_op(",");
          }
          next();
          return list;
        }
        if (t.value == "{") {
          next();
          auto dict = make(Expr::Kind::dict, t);
          while (!at_op("}")) {
            dict->children.push_back(parse_expression());
            expect_op(":");
            dict->children.push_back(parse_expression());
            if (!at_op("}")) expect_op(",");
          }
          next();
          return dict;
        }
        break;
      default:
        break;
    }
    error(t, fmt::format("expected an expression, found {}", describe(t)));
  }

  // An integer token's value; an error where it does not fit 64 bits (`x.99999999999999999999`).
  std::int64_t integer_of(const Token& t) {
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(t.value.data(), t.value.data() + t.value.size(), v);
    (void)end;
    if (ec != std::errc()) error(t, "integer out of range");
    return v;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (at_op(".")) {
        const Token& dot = next();
        const Token& t = peek();
        if (t.kind == Token::Kind::integer) {
          next();
          auto item = make(Expr::Kind::item, dot);
          auto index = make(Expr::Kind::literal, t);
          index->literal = Value::integer(integer_of(t));
          item->children.push_back(std::move(e));
          item->children.push_back(std::move(index));
          e = std::move(item);
          continue;
        }
        const Token& name = expect_name("an attribute name");
        if (at_op("(") && !is_string_method(name.value) && !is_dict_method(name.value)) {
          error(name, fmt::format("unsupported method '{}'", name.value));
        }
        auto attribute = make(Expr::Kind::attribute, name);
        attribute->name = name.value;
        attribute->children.push_back(std::move(e));
        e = std::move(attribute);
      } else if (at_op("[")) {
        const Token& open = next();
        ExprPtr parts[3];
        bool is_slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!at_op(":") && !at_op("]")) parts[k] = parse_expression();
          if (k < 2 && at_op(":")) {
            next();
            is_slice = true;
          } else {
            break;
          }
        }
        expect_op("]");
        if (!is_slice && !parts[0]) error(open, "expected a subscript");
        auto item = make(is_slice ? Expr::Kind::slice : Expr::Kind::item, open);
        item->children.push_back(std::move(e));
        item->children.push_back(std::move(parts[0]));
        if (is_slice) {
          item->children.push_back(std::move(parts[1]));
          item->children.push_back(std::move(parts[2]));
        }
        e = std::move(item);
      } else if (at_op("(")) {
        auto call = make(Expr::Kind::call, peek());
        call->children.push_back(std::move(e));
        parse_arguments(*call);
        e = std::move(call);
      } else {
        return e;
      }
    }
  }

  // ( positional..., name=value... ) into e's children (after those it has) and keywords.
  void parse_arguments(Expr& e) {
    expect_op("(");
    while (!at_op(")")) {
      if (at_op("*") || at_op("**")) error(peek(), "*args and **kwargs are not supported");
      if (peek().kind == Token::Kind::name && peek(1).kind == Token::Kind::op &&
          peek(1).value == "=") {
        std::string key = next().value;
        next();
        e.keywords.emplace_back(std::move(key), parse_expression());
      } else {
        if (!e.keywords.empty()) error(peek(), "a positional argument after a keyword argument");
        e.children.push_back(parse_expression());
      }
      if (!at_op(")")) expect_op(",");
    }
    next();
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (at_op("|")) {
        e = parse_filters(std::move(e));
      } else if (at_name("is")) {
        next();
        auto test = make(Expr::Kind::test, peek());
        if (at_name("not")) {
          next();
          test->negated = true;
        }
        const Token& name = expect_name("a test name");
        auto t = test_named(name.value);
        if (!t) error(name, fmt::format("unknown test '{}'", name.value));
        test->id = static_cast<int>(*t);
        test->name = name.value;
        test->where = where(name);
        test->children.push_back(std::move(e));
        if (at_op("(")) {
          parse_arguments(*test);
        } else if (test_takes_argument(*t) &&
                   (peek().kind == Token::Kind::name || peek().kind == Token::Kind::string ||
                    peek().kind == Token::Kind::integer || peek().kind == Token::Kind::floating ||
                    at_op("[") || at_op("{")) &&
                   !at_name("else") && !at_name("or") && !at_name("and")) {
          test->children.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(test);
      } else {
        return e;
      }
    }
  }

  // | f(args) | g ... applied to e (nullptr: the body of a filter block or block set).
  ExprPtr parse_filters(ExprPtr e) {
    while (at_op("|")) {
      next();
      e = parse_filter_chain(std::move(e), /*one=*/true);
    }
    return e;
  }

  ExprPtr parse_filter_chain(ExprPtr operand, bool one = false) {
    do {
      if (!one && operand && at_op("|")) next();
      const Token& name = expect_name("a filter name");
      auto f = filter_named(name.value);
      if (!f) error(name, fmt::format("unknown filter '{}'", name.value));
      auto e = make(Expr::Kind::filter, name);
      e->name = name.value;
      e->id = static_cast<int>(*f);
      e->children.push_back(std::move(operand));
      if (at_op("(")) parse_arguments(*e);
      operand = std::move(e);
    } while (!one && at_op("|"));
    return operand;
  }

  const Lexer& lexer_;
  std::vector<Token> tokens_;
  Program& program_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  int macro_depth_ = 0;
  std::vector<Node*> for_stack_;
};

// ---------------------------------------------------------------------------------------------
// Rendering

// The variables of a for loop's iteration or a macro call; lookups walk to the parent.
struct Scope {
  Scope* parent = nullptr;
  std::vector<std::pair<int, Value>> variables;

  const Value* find(int id) const {
    for (const Scope* s = this; s; s = s->parent) {
      for (const auto& [k, v] : s->variables) {
        if (k == id) return &v;
      }
    }
    return nullptr;
  }
  void set(int id, Value value) {
    for (auto& [k, v] : variables) {
      if (k == id) {
        v = std::move(value);
        return;
      }
    }
    variables.emplace_back(id, std::move(value));
  }
};

// The positional and keyword arguments of a filter, method or test, by position or name.
class Arguments {
 public:
  Arguments(std::string_view what, const CallArgs& args) : what_(what), args_(args) {}

  // The argument at `index` (not counting the operand) or named `name`, or nullptr.
  const Value* get(std::size_t index, std::string_view name) const {
    if (index < args_.positional.size()) return &args_.positional[index];
    for (const auto& [k, v] : args_.keyword) {
      if (k == name) return &v;
    }
    return nullptr;
  }
  // Fails unless every argument is one of `names` (in order, for positional ones).
  void allow(std::initializer_list<std::string_view> names) const {
    if (args_.positional.size() > names.size()) {
      fail(fmt::format("{} takes at most {} argument(s)", what_, names.size()));
    }
    for (const auto& [k, v] : args_.keyword) {
      if (std::find(names.begin(), names.end(), k) == names.end()) {
        fail(fmt::format("{} has no argument '{}'", what_, k));
      }
    }
  }
  std::string string_arg(std::size_t index, std::string_view name, std::string otherwise) const {
    const Value* v = get(index, name);
    if (!v || v->is_undefined()) return otherwise;
    if (!v->is_string()) fail(fmt::format("{}: '{}' must be a string", what_, name));
    return v->as_string();
  }
  std::int64_t int_arg(std::size_t index, std::string_view name, std::int64_t otherwise) const {
    const Value* v = get(index, name);
    if (!v || v->is_undefined() || v->kind() == Value::Kind::none) return otherwise;
    if (!is_integral(*v)) fail(fmt::format("{}: '{}' must be an integer", what_, name));
    return integral(*v);
  }
  bool bool_arg(std::size_t index, std::string_view name, bool otherwise) const {
    const Value* v = get(index, name);
    return v ? v->truthy() : otherwise;
  }

 private:
  std::string_view what_;
  const CallArgs& args_;
};

const std::string& need_string(const Value& v, std::string_view what) {
  if (!v.is_string()) fail(fmt::format("{} needs a string, not a {}", what, kind_name(v)));
  return v.as_string();
}

// Python's str.split(sep=None, maxsplit=-1).
Value split(const std::string& s, const Arguments& args) {
  args.allow({"sep", "maxsplit"});
  const Value* sep = args.get(0, "sep");
  std::int64_t max_splits = args.int_arg(1, "maxsplit", -1);
  List parts;
  if (!sep || sep->kind() == Value::Kind::none) {
    std::size_t i = 0;
    auto skip = [&](bool space) {
      while (i < s.size()) {
        std::size_t at = i;
        if (is_space(next_code_point(s, at)) != space) break;
        i = at;
      }
    };
    skip(true);
    while (i < s.size()) {
      if (max_splits >= 0 && static_cast<std::int64_t>(parts.size()) >= max_splits) {
        parts.push_back(Value::string(strip(s.substr(i), false, true)));
        break;
      }
      std::size_t begin = i;
      skip(false);
      parts.push_back(Value::string(s.substr(begin, i - begin)));
      skip(true);
    }
    return Value::list(std::move(parts));
  }
  const std::string& separator = need_string(*sep, "split");
  if (separator.empty()) fail("split: empty separator");
  std::size_t from = 0;
  while (max_splits < 0 || static_cast<std::int64_t>(parts.size()) < max_splits) {
    std::size_t at = s.find(separator, from);
    if (at == std::string::npos) break;
    parts.push_back(Value::string(s.substr(from, at - from)));
    from = at + separator.size();
  }
  parts.push_back(Value::string(s.substr(from)));
  return Value::list(std::move(parts));
}

bool affix_matches(const std::string& s, const Value& affix, bool prefix, std::string_view what) {
  auto one = [&](const Value& a) {
    const std::string& x = need_string(a, what);
    return prefix ? s.starts_with(x) : s.ends_with(x);
  };
  if (affix.kind() == Value::Kind::list) {
    for (const auto& a : affix.as_list()) {
      if (one(a)) return true;
    }
    return false;
  }
  return one(affix);
}

std::optional<Value> call_string_method(const std::string& s, std::string_view name,
                                        const CallArgs& call) {
  Arguments args(name, call);
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    args.allow({});
    return Value::string(name == "upper"   ? to_upper(s)
                         : name == "lower" ? to_lower(s)
                         : name == "title" ? title_method(s)
                                           : capitalize(s));
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    args.allow({"chars"});
    const Value* chars = args.get(0, "chars");
    std::optional<std::string> set;
    if (chars && chars->kind() != Value::Kind::none) set = need_string(*chars, name);
    return Value::string(strip(s, name != "rstrip", name != "lstrip", set ? &*set : nullptr));
  }
  if (name == "startswith" || name == "endswith") {
    args.allow({"prefix"});
    const Value* affix = args.get(0, "prefix");
    if (!affix) fail(fmt::format("{} needs an argument", name));
    return Value::boolean(affix_matches(s, *affix, name == "startswith", name));
  }
  if (name == "split") return split(s, args);
  if (name == "replace") {
    args.allow({"old", "new", "count"});
    const Value* old = args.get(0, "old");
    const Value* with = args.get(1, "new");
    if (!old || !with) fail("replace needs two arguments");
    return Value::string(replace_all(s, need_string(*old, "replace"), need_string(*with, "replace"),
                                     args.int_arg(2, "count", -1)));
  }
  return std::nullopt;
}

std::optional<Value> call_dict_method(const Dict& d, std::string_view name, const CallArgs& call) {
  Arguments args(name, call);
  if (name == "get") {
    args.allow({"key", "default"});
    const Value* key = args.get(0, "key");
    if (!key) fail("get needs a key");
    const Value* found = key->is_string() ? d.find(key->as_string()) : nullptr;
    if (found) return *found;
    const Value* otherwise = args.get(1, "default");
    return otherwise ? *otherwise : Value::none();
  }
  if (name == "items" || name == "keys" || name == "values") {
    args.allow({});
    List out;
    for (const auto& [k, v] : d.items()) {
      if (name == "items") {
        out.push_back(Value::tuple({Value::string(k), v}));
      } else {
        out.push_back(name == "keys" ? Value::string(k) : v);
      }
    }
    return Value::list(std::move(out));
  }
  return std::nullopt;
}

// obj.name: a dict's method, a dict's or namespace's entry, a string's method, or undefined.
Value get_attribute(const Value& object, const std::string& name) {
  switch (object.kind()) {
    case Value::Kind::dict:
      if (is_dict_method(name)) {
        return Value::function([object, name](const CallArgs& args) {
          return *call_dict_method(object.as_dict(), name, args);
        });
      }
      [[fallthrough]];
    case Value::Kind::namespace_object: {
      const Value* v = object.as_dict().find(name);
      return v ? *v : Value();
    }
    case Value::Kind::string:
      if (is_string_method(name)) {
        return Value::function([object, name](const CallArgs& args) {
          return *call_string_method(object.as_string(), name, args);
        });
      }
      return Value();
    case Value::Kind::undefined:
      fail(fmt::format("cannot read '{}' of an undefined value", name));
    default:
      return Value();
  }
}

// obj[key]: an entry, an item (negative counts from the end), or undefined.
Value get_item(const Value& object, const Value& key) {
  switch (object.kind()) {
    case Value::Kind::dict:
    case Value::Kind::namespace_object:
      if (key.is_string()) {
        const Value* v = object.as_dict().find(key.as_string());
        if (v) return *v;
        return get_attribute(object, key.as_string());
      }
      return Value();
    case Value::Kind::list:
      if (is_integral(key)) {
        auto index = python_index(integral(key), object.as_list().size());
        return index ? object.as_list()[*index] : Value();
      }
      return Value();
    case Value::Kind::string:
      if (is_integral(key)) {
        const std::string& s = object.as_string();
        auto offsets = code_point_offsets(s);
        auto index = python_index(integral(key), offsets.size() - 1);
        if (!index) return Value();
        return Value::string(s.substr(offsets[*index], offsets[*index + 1] - offsets[*index]));
      }
      if (key.is_string()) return get_attribute(object, key.as_string());
      return Value();
    case Value::Kind::undefined:
      fail(fmt::format("cannot read [{}] of an undefined value", repr(key)));
    default:
      return Value();
  }
}

// An entry found by a dotted path ("a.b", "items.0"), as the attribute of selectattr and map.
Value get_path(const Value& v, const std::string& path) {
  Value current = v;
  std::size_t from = 0;
  while (true) {
    std::size_t dot = path.find('.', from);
    std::string part = path.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
    std::int64_t index = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), index);
    if (current.is_undefined()) return current;
    if (ec == std::errc() && end == part.data() + part.size() &&
        current.kind() == Value::Kind::list) {
      current = get_item(current, Value::integer(index));
    } else {
      current = get_item(current, Value::string(part));
    }
    if (dot == std::string::npos) return current;
    from = dot + 1;
  }
}

Value make_range(const CallArgs& args, std::uint64_t max_items) {
  if (!args.keyword.empty() || args.positional.empty() || args.positional.size() > 3) {
    fail("range takes one to three integers");
  }
  std::int64_t n[3] = {0, 0, 1};
  for (std::size_t k = 0; k < args.positional.size(); ++k) {
    if (!is_integral(args.positional[k])) fail("range takes integers");
    n[args.positional.size() == 1 ? 1 : k] = integral(args.positional[k]);
  }
  if (n[2] == 0) fail("range step cannot be zero");
  std::int64_t count = n[2] > 0 ? (n[1] > n[0] ? (n[1] - n[0] + n[2] - 1) / n[2] : 0)
                                : (n[0] > n[1] ? (n[0] - n[1] - n[2] - 1) / -n[2] : 0);
  if (static_cast<std::uint64_t>(count) > max_items) {
    fail(fmt::format("range of {} items is over the limit of {}", count, max_items));
  }
  List items;
  items.reserve(count);
  for (std::int64_t k = 0; k < count; ++k)
    items.push_back(Value::integer(n[0] + k * n[2]));
  return Value::list(std::move(items));
}

Value make_namespace(const CallArgs& args) {
  Dict entries;
  if (args.positional.size() > 1) fail("namespace takes at most one positional argument");
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.kind() != Value::Kind::dict) fail("namespace's argument must be a dict");
    for (const auto& [k, v] : source.as_dict().items())
      entries.set(k, v);
  }
  for (const auto& [k, v] : args.keyword)
    entries.set(k, v);
  return Value::namespace_object(std::move(entries));
}

class Renderer {
 public:
  Renderer(const Program& program, const Dict& variables, const RenderLimits& limits)
      : program_(program), limits_(limits), globals_(program.names.size(), nullptr) {
    for (std::size_t id = 0; id < program.names.size(); ++id) {
      globals_[id] = variables.find(program.names[id]);
      if (program.names[id] == "loop") loop_id_ = static_cast<int>(id);
    }
  }

  std::string run() {
    std::string out;
    exec(program_.body, root_, out);
    return out;
  }

 private:
  enum class Flow { normal, break_, continue_ };

  void append(std::string& out, std::string_view s) const {
    if (out.size() + s.size() > limits_.max_output_bytes) {
      fail(fmt::format("the output exceeds the limit of {} bytes", limits_.max_output_bytes));
    }
    out += s;
  }

  Flow exec(const Body& body, Scope& scope, std::string& out) {
    for (const auto& node : body) {
      Flow flow;
      try {
        flow = exec_node(*node, scope, out);
      } catch (const RenderError& e) {
        if (e.line() != 0) throw;
        throw RenderError(e.what(), node->where.line, node->where.column, e.raised());
      }
      if (flow != Flow::normal) return flow;
    }
    return Flow::normal;
  }

  Flow exec_node(const Node& node, Scope& scope, std::string& out) {
    switch (node.kind) {
      case Node::Kind::text:
        append(out, node.text);
        return Flow::normal;
      case Node::Kind::output: {
        Value v = eval(*node.expr, scope);
        if (v.is_string()) {
          append(out, v.as_string());
        } else {
          append(out, to_str(v));
        }
        return Flow::normal;
      }
      case Node::Kind::if_:
        for (const auto& [condition, branch] : node.branches) {
          if (!condition || eval(*condition, scope).truthy()) return exec(branch, scope, out);
        }
        return Flow::normal;
      case Node::Kind::for_:
        exec_for(node, scope, out);
        return Flow::normal;
      case Node::Kind::set: {
        Value v = eval(*node.expr, scope);
        assign(node, std::move(v), scope);
        return Flow::normal;
      }
      case Node::Kind::set_block: {
        std::string text;
        Scope inner{&scope, {}};
        exec(node.body, inner, text);
        Value v = Value::string(std::move(text));
        if (node.expr) v = apply_filter_chain(*node.expr, std::move(v), scope);
        scope.set(node.targets[0], std::move(v));
        return Flow::normal;
      }
      case Node::Kind::macro:
        scope.set(node.targets[0], Value::macro(node.macro));
        return Flow::normal;
      case Node::Kind::filter_block: {
        std::string text;
        Flow flow = exec(node.body, scope, text);
        append(out, to_str(apply_filter_chain(*node.expr, Value::string(std::move(text)), scope)));
        return flow;
      }
      case Node::Kind::break_:
        return Flow::break_;
      case Node::Kind::continue_:
        return Flow::continue_;
    }
    return Flow::normal;
  }

  void assign(const Node& node, Value v, Scope& scope) {
    if (!node.attribute.empty()) {
      Value target = lookup(node.targets[0], scope);
      if (target.kind() != Value::Kind::namespace_object) {
        fail(fmt::format("cannot set '{}' of '{}': it is not a namespace", node.attribute,
                         program_.names[node.targets[0]]));
      }
      target.namespace_entries().set(node.attribute, std::move(v));
      return;
    }
    if (node.targets.size() == 1) {
      scope.set(node.targets[0], std::move(v));
      return;
    }
    unpack(node.targets, v, scope);
  }

  void unpack(const std::vector<int>& targets, const Value& v, Scope& scope) {
    List items = iterate(v);
    if (items.size() != targets.size()) {
      fail(fmt::format("cannot unpack {} values into {} names", items.size(), targets.size()));
    }
    for (std::size_t k = 0; k < targets.size(); ++k)
      scope.set(targets[k], items[k]);
  }

  void count_iteration() {
    if (++iterations_ > limits_.max_iterations) {
      fail(fmt::format("the render exceeds the limit of {} loop iterations and macro calls",
                       limits_.max_iterations));
    }
  }

  void exec_for(const Node& node, Scope& scope, std::string& out) {
    Value iterable = eval(*node.expr, scope);
    List materialized;
    const List* items = &materialized;
    if (iterable.kind() == Value::Kind::list) {
      items = &iterable.as_list();
    } else {
      materialized = iterate(iterable);
    }
    List selected;
    if (node.condition) {
      for (const auto& item : *items) {
        count_iteration();
        Scope filter_scope{&scope, {}};
        bind(node.targets, item, filter_scope);
        if (eval(*node.condition, filter_scope).truthy()) selected.push_back(item);
      }
      items = &selected;
    }
    const std::size_t n = items->size();
    for (std::size_t k = 0; k < n; ++k) {
      count_iteration();
      Scope iteration{&scope, {}};
      if (node.uses_loop) {
        Dict loop;
        loop.reserve(11);
        auto count = static_cast<std::int64_t>(n), i = static_cast<std::int64_t>(k);
        loop.set("index", Value::integer(i + 1));
        loop.set("index0", Value::integer(i));
        loop.set("revindex", Value::integer(count - i));
        loop.set("revindex0", Value::integer(count - i - 1));
        loop.set("first", Value::boolean(k == 0));
        loop.set("last", Value::boolean(k + 1 == n));
        loop.set("length", Value::integer(count));
        loop.set("previtem", k > 0 ? (*items)[k - 1] : Value());
        loop.set("nextitem", k + 1 < n ? (*items)[k + 1] : Value());
        loop.set("depth", Value::integer(1));
        loop.set("depth0", Value::integer(0));
        iteration.variables.emplace_back(loop_id_, Value::dict(std::move(loop)));
      }
      bind(node.targets, (*items)[k], iteration);
      if (exec(node.body, iteration, out) == Flow::break_) break;
    }
    if (n == 0) {
      Scope otherwise{&scope, {}};
      exec(node.else_body, otherwise, out);
    }
  }

  void bind(const std::vector<int>& targets, const Value& item, Scope& scope) {
    if (targets.size() == 1) {
      scope.set(targets[0], item);
    } else {
      unpack(targets, item, scope);
    }
  }

  Value lookup(int id, const Scope& scope) const {
    if (const Value* v = scope.find(id)) return *v;
    if (globals_[id]) return *globals_[id];
    return program_.builtins[id];
  }

  Value eval(const Expr& e, Scope& scope) {
    switch (e.kind) {
      case Expr::Kind::literal:
        return e.literal;
      case Expr::Kind::name:
        return lookup(e.id, scope);
      case Expr::Kind::list: {
        List items;
        items.reserve(e.children.size());
        for (const auto& c : e.children)
          items.push_back(eval(*c, scope));
        return e.tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
      }
      case Expr::Kind::dict: {
        Dict d;
        for (std::size_t k = 0; k < e.children.size(); k += 2) {
          Value key = eval(*e.children[k], scope);
          if (!key.is_string()) fail("dict keys must be strings");
          d.set(key.as_string(), eval(*e.children[k + 1], scope));
        }
        return Value::dict(std::move(d));
      }
      case Expr::Kind::attribute:
        return get_attribute(eval(*e.children[0], scope), e.name);
      case Expr::Kind::item: {
        Value object = eval(*e.children[0], scope);
        return get_item(object, eval(*e.children[1], scope));
      }
      case Expr::Kind::slice:
        return eval_slice(e, scope);
      case Expr::Kind::call:
        return eval_call(e, scope);
      case Expr::Kind::filter: {
        Value operand = eval(*e.children[0], scope);
        return apply_filter(e, std::move(operand), scope);
      }
      case Expr::Kind::test: {
        Value operand = eval(*e.children[0], scope);
        CallArgs args = eval_arguments(e, scope);
        bool result = apply_test(static_cast<Test>(e.id), e.name, operand, args);
        return Value::boolean(result != e.negated);
      }
      case Expr::Kind::not_:
        return Value::boolean(!eval(*e.children[0], scope).truthy());
      case Expr::Kind::negate:
      case Expr::Kind::plus: {
        Value v = eval(*e.children[0], scope);
        if (!is_numeric(v)) fail(fmt::format("bad operand type for unary -/+: {}", kind_name(v)));
        if (e.kind == Expr::Kind::plus) return v;
        if (is_integral(v)) return Value::integer(-integral(v));
        return Value::floating(-v.as_float());
      }
      case Expr::Kind::binary: {
        Value left = eval(*e.children[0], scope);
        Value right = eval(*e.children[1], scope);
        return binary(e.op, left, right);
      }
      case Expr::Kind::and_: {
        Value left = eval(*e.children[0], scope);
        return left.truthy() ? eval(*e.children[1], scope) : left;
      }
      case Expr::Kind::or_: {
        Value left = eval(*e.children[0], scope);
        return left.truthy() ? left : eval(*e.children[1], scope);
      }
      case Expr::Kind::compare: {
        Value left = eval(*e.children[0], scope);
        for (std::size_t k = 0; k < e.compare_ops.size(); ++k) {
          Value right = eval(*e.children[k + 1], scope);
          if (!compare_op(e.compare_ops[k], left, right)) return Value::boolean(false);
          left = std::move(right);
        }
        return Value::boolean(true);
      }
      case Expr::Kind::conditional:
        if (eval(*e.children[1], scope).truthy()) return eval(*e.children[0], scope);
        return e.children[2] ? eval(*e.children[2], scope) : Value();
    }
    return Value();
  }

  static bool compare_op(CompareOp op, const Value& a, const Value& b) {
    switch (op) {
      case CompareOp::eq:
        return equal(a, b);
      case CompareOp::ne:
        return !equal(a, b);
      case CompareOp::lt:
        return compare(a, b, "<") < 0;
      case CompareOp::le:
        return compare(a, b, "<=") <= 0;
      case CompareOp::gt:
        return compare(a, b, ">") > 0;
      case CompareOp::ge:
        return compare(a, b, ">=") >= 0;
      case CompareOp::in:
        return contains(b, a);
      case CompareOp::not_in:
        return !contains(b, a);
    }
    return false;
  }

  // Before building a value of `bytes`: no value may be larger than the output, and a render
  // (e.g. a loop that doubles a string) may build only so much in all.
  void check_size(std::size_t bytes) {
    if (bytes > limits_.max_output_bytes) {
      fail(fmt::format("a value of {} bytes exceeds the limit of {} bytes", bytes,
                       limits_.max_output_bytes));
    }
    bytes_built_ += bytes;
    if (bytes_built_ > limits_.max_bytes_built) {
      fail(fmt::format("the render builds more than the limit of {} bytes of values",
                       limits_.max_bytes_built));
    }
  }

  Value repeat(const Value& sequence, std::int64_t times) {
    times = std::max<std::int64_t>(times, 0);
    if (sequence.is_string()) {
      const std::string& s = sequence.as_string();
      check_size(s.size() * static_cast<std::size_t>(times));
      std::string r;
      for (std::int64_t k = 0; k < times; ++k)
        r += s;
      return Value::string(std::move(r));
    }
    const List& items = sequence.as_list();
    check_size(items.size() * static_cast<std::size_t>(times) * sizeof(Value));
    List r;
    for (std::int64_t k = 0; k < times; ++k)
      r.insert(r.end(), items.begin(), items.end());
    return Value::list(std::move(r));
  }

  Value binary(Op op, const Value& a, const Value& b) {
    static constexpr std::string_view kSymbols[] = {"+", "-", "*", "/", "//", "%", "**", "~"};
    if (op == Op::concat) {
      std::string left = to_str(a), right = to_str(b);
      check_size(left.size() + right.size());
      return Value::string(left + right);
    }
    if (is_numeric(a) && is_numeric(b)) {
      bool integers = is_integral(a) && is_integral(b);
      std::int64_t x = integers ? integral(a) : 0, y = integers ? integral(b) : 0, r = 0;
      double p = numeric(a), q = numeric(b);
      switch (op) {
        case Op::add:
          if (integers && !__builtin_add_overflow(x, y, &r)) return Value::integer(r);
          if (integers) fail("integer overflow");
          return Value::floating(p + q);
        case Op::sub:
          if (integers && !__builtin_sub_overflow(x, y, &r)) return Value::integer(r);
          if (integers) fail("integer overflow");
          return Value::floating(p - q);
        case Op::mul:
          if (integers && !__builtin_mul_overflow(x, y, &r)) return Value::integer(r);
          if (integers) fail("integer overflow");
          return Value::floating(p * q);
        case Op::div:
          if (q == 0) fail("division by zero");
          return Value::floating(p / q);
        case Op::floordiv:
        case Op::mod:
          if (q == 0) fail("division by zero");
          if (integers) {
            std::int64_t quotient = x / y, remainder = x % y;
            if (remainder != 0 && ((remainder < 0) != (y < 0))) {
              --quotient;
              remainder += y;
            }
            return Value::integer(op == Op::floordiv ? quotient : remainder);
          }
          if (op == Op::floordiv) return Value::floating(std::floor(p / q));
          {
            double m = std::fmod(p, q);
            if (m != 0 && ((m < 0) != (q < 0))) m += q;
            return Value::floating(m);
          }
        case Op::pow:
          if (integers && y >= 0) {
            std::int64_t result = 1;
            for (std::int64_t k = 0; k < y; ++k) {
              if (__builtin_mul_overflow(result, x, &result)) fail("integer overflow");
              if (result == 0 || result == 1) break;
            }
            return Value::integer(result);
          }
          return Value::floating(std::pow(p, q));
        case Op::concat:
          break;
      }
    }
    if (op == Op::add && a.is_string() && b.is_string()) {
      check_size(a.as_string().size() + b.as_string().size());
      return Value::string(a.as_string() + b.as_string());
    }
    if (op == Op::add && a.kind() == Value::Kind::list && b.kind() == Value::Kind::list) {
      check_size((a.as_list().size() + b.as_list().size()) * sizeof(Value));
      List r = a.as_list();
      r.insert(r.end(), b.as_list().begin(), b.as_list().end());
      return Value::list(std::move(r));
    }
    if (op == Op::mul) {
      bool a_sequence = a.is_string() || a.kind() == Value::Kind::list;
      bool b_sequence = b.is_string() || b.kind() == Value::Kind::list;
      if (a_sequence && is_integral(b)) return repeat(a, integral(b));
      if (b_sequence && is_integral(a)) return repeat(b, integral(a));
    }
    if (a.is_undefined() || b.is_undefined()) {
      fail(fmt::format("an undefined value in '{}'", kSymbols[static_cast<int>(op)]));
    }
    fail(fmt::format("unsupported operand types for {}: {} and {}", kSymbols[static_cast<int>(op)],
                     kind_name(a), kind_name(b)));
  }

  Value eval_slice(const Expr& e, Scope& scope) {
    Value object = eval(*e.children[0], scope);
    std::optional<std::int64_t> bounds[3];
    for (int k = 0; k < 3; ++k) {
      if (!e.children[k + 1]) continue;
      Value v = eval(*e.children[k + 1], scope);
      if (v.kind() == Value::Kind::none) continue;
      if (!is_integral(v)) fail("slice indices must be integers");
      bounds[k] = integral(v);
    }
    if (object.kind() == Value::Kind::list) {
      const List& items = object.as_list();
      List r;
      for (std::size_t k : slice_indices(bounds[0], bounds[1], bounds[2], items.size())) {
        r.push_back(items[k]);
      }
      return Value::list(std::move(r));
    }
    if (object.is_string()) {
      const std::string& s = object.as_string();
      auto offsets = code_point_offsets(s);
      std::string r;
      for (std::size_t k : slice_indices(bounds[0], bounds[1], bounds[2], offsets.size() - 1)) {
        r.append(s, offsets[k], offsets[k + 1] - offsets[k]);
      }
      return Value::string(std::move(r));
    }
    if (object.is_undefined()) fail("cannot slice an undefined value");
    fail(fmt::format("cannot slice a {}", kind_name(object)));
  }

  CallArgs eval_arguments(const Expr& e, Scope& scope, std::size_t first = 1) {
    CallArgs args;
    args.positional.reserve(e.children.size() - first);
    for (std::size_t k = first; k < e.children.size(); ++k) {
      args.positional.push_back(eval(*e.children[k], scope));
    }
    for (const auto& [name, value] : e.keywords)
      args.keyword.emplace_back(name, eval(*value, scope));
    return args;
  }

  Value eval_call(const Expr& e, Scope& scope) {
    const Expr& callee = *e.children[0];
    if (callee.kind == Expr::Kind::attribute) {
      // obj.method(...) without making a bound method.
      Value object = eval(*callee.children[0], scope);
      if (object.is_string() || object.kind() == Value::Kind::dict) {
        CallArgs args = eval_arguments(e, scope);
        auto result = object.is_string() ? call_string_method(object.as_string(), callee.name, args)
                                         : call_dict_method(object.as_dict(), callee.name, args);
        if (result) return *result;
      }
      return call(get_attribute(object, callee.name), callee.name, eval_arguments(e, scope));
    }
    Value function = eval(callee, scope);
    return call(function, callee.kind == Expr::Kind::name ? callee.name : "value",
                eval_arguments(e, scope));
  }

  Value call(const Value& function, const std::string& name, const CallArgs& args) {
    switch (function.kind()) {
      case Value::Kind::function:
        return function.as_function()(args);
      case Value::Kind::macro:
        return call_macro(*function.as_macro(), args);
      case Value::Kind::undefined:
        fail(fmt::format("'{}' is undefined", name));
      default:
        fail(fmt::format("'{}' is a {}, not a function", name, kind_name(function)));
    }
  }

  Value call_macro(const Macro& macro, const CallArgs& args) {
    if (call_depth_ >= limits_.max_call_depth) {
      fail(fmt::format("macro calls nest deeper than the limit of {}", limits_.max_call_depth));
    }
    if (args.positional.size() > macro.parameters.size()) {
      fail(fmt::format("macro '{}' takes {} argument(s), not {}", macro.name,
                       macro.parameters.size(), args.positional.size()));
    }
    count_iteration();
    Scope scope{&root_, {}};
    for (std::size_t k = 0; k < macro.parameters.size(); ++k) {
      const std::string& parameter = program_.names[macro.parameters[k]];
      const Value* given = k < args.positional.size() ? &args.positional[k] : nullptr;
      for (const auto& [key, value] : args.keyword) {
        if (key == parameter) given = &value;
      }
      if (given) {
        scope.set(macro.parameters[k], *given);
      } else if (macro.defaults[k]) {
        scope.set(macro.parameters[k], eval(*macro.defaults[k], scope));
      } else {
        scope.set(macro.parameters[k], Value());
      }
    }
    for (const auto& [key, value] : args.keyword) {
      bool known = false;
      for (int id : macro.parameters)
        known = known || program_.names[id] == key;
      if (!known) fail(fmt::format("macro '{}' has no parameter '{}'", macro.name, key));
    }
    ++call_depth_;
    std::string out;
    try {
      exec(macro.body, scope, out);
    } catch (...) {
      --call_depth_;
      throw;
    }
    --call_depth_;
    return Value::string(std::move(out));
  }

  // The filter chain of a block set or filter block applied to its rendered body.
  Value apply_filter_chain(const Expr& e, Value body, Scope& scope) {
    Value operand = e.children[0] ? apply_filter_chain(*e.children[0], std::move(body), scope)
                                  : std::move(body);
    return apply_filter(e, std::move(operand), scope);
  }

  Value apply_filter(const Expr& e, Value operand, Scope& scope) {
    CallArgs args = eval_arguments(e, scope);
    return filter(static_cast<Filter>(e.id), e.name, operand, args);
  }

  Value filter(Filter f, std::string_view name, const Value& v, const CallArgs& call_args);
  bool apply_test(Test t, std::string_view name, const Value& v, const CallArgs& args);
  List select(const Value& v, const CallArgs& call_args, bool by_attribute, bool keep);

  const Program& program_;
  const RenderLimits& limits_;
  std::vector<const Value*> globals_;
  Scope root_;
  int loop_id_ = -1;
  int call_depth_ = 0;
  std::uint64_t iterations_ = 0;
  std::uint64_t bytes_built_ = 0;
};

bool Renderer::apply_test(Test t, std::string_view name, const Value& v, const CallArgs& call) {
  Arguments args(name, call);
  auto argument = [&]() -> const Value& {
    const Value* a = args.get(0, "other");
    if (!a) fail(fmt::format("test '{}' needs an argument", name));
    return *a;
  };
  if (!test_takes_argument(t)) args.allow({});
  switch (t) {
    case Test::boolean:
      return v.kind() == Value::Kind::boolean;
    case Test::callable:
      return v.kind() == Value::Kind::function || v.kind() == Value::Kind::macro;
    case Test::defined:
      return !v.is_undefined();
    case Test::undefined:
      return v.is_undefined();
    case Test::none:
      return v.kind() == Value::Kind::none;
    case Test::string:
      return v.is_string();
    case Test::number:
      return is_numeric(v);  // Python's bool is a number
    case Test::integer:
      return v.kind() == Value::Kind::integer;
    case Test::float_:
      return v.kind() == Value::Kind::floating;
    case Test::mapping:
      return v.kind() == Value::Kind::dict;
    case Test::iterable:
      return v.is_string() || v.kind() == Value::Kind::list || v.kind() == Value::Kind::dict ||
             v.is_undefined();
    case Test::sequence:
      return v.is_string() || v.kind() == Value::Kind::list || v.kind() == Value::Kind::dict;
    case Test::true_:
      return v.kind() == Value::Kind::boolean && v.as_bool();
    case Test::false_:
      return v.kind() == Value::Kind::boolean && !v.as_bool();
    case Test::even:
    case Test::odd:
      if (!is_integral(v)) fail(fmt::format("test '{}' needs an integer", name));
      return (integral(v) % 2 == 0) == (t == Test::even);
    case Test::lower:
    case Test::upper:
      return v.is_string() && v.as_string() == (t == Test::lower ? to_lower(v.as_string())
                                                                 : to_upper(v.as_string()));
    case Test::divisibleby: {
      const Value& d = argument();
      if (!is_integral(v) || !is_integral(d) || integral(d) == 0) {
        fail("test 'divisibleby' needs integers and a divisor that is not 0");
      }
      return integral(v) % integral(d) == 0;
    }
    case Test::eq:
      return equal(v, argument());
    case Test::ne:
      return !equal(v, argument());
    case Test::lt:
      return compare(v, argument(), "<") < 0;
    case Test::le:
      return compare(v, argument(), "<=") <= 0;
    case Test::gt:
      return compare(v, argument(), ">") > 0;
    case Test::ge:
      return compare(v, argument(), ">=") >= 0;
    case Test::in:
      return contains(argument(), v);
    case Test::sameas: {
      const Value& other = argument();
      if (v.kind() != other.kind()) return false;
      switch (v.kind()) {
        case Value::Kind::none:
        case Value::Kind::undefined:
          return true;
        case Value::Kind::boolean:
          return v.as_bool() == other.as_bool();
        case Value::Kind::namespace_object:
          return &v.namespace_entries() == &other.namespace_entries();
        default:
          return false;  // Python's `is` on other values depends on object identity
      }
    }
  }
  return false;
}

// select / reject (by_attribute false) and selectattr / rejectattr (true).
List Renderer::select(const Value& v, const CallArgs& call, bool by_attribute, bool keep) {
  std::size_t first = by_attribute ? 1 : 0;
  if (by_attribute && call.positional.empty()) fail("selectattr/rejectattr need an attribute");
  if (!call.keyword.empty()) fail("select/reject take no keyword arguments");
  std::optional<Test> test;
  std::string test_name;
  CallArgs test_args;
  if (call.positional.size() > first) {
    test_name = need_string(call.positional[first], "the test of select");
    test = test_named(test_name);
    if (!test) fail(fmt::format("unknown test '{}'", test_name));
    test_args.positional.assign(call.positional.begin() + first + 1, call.positional.end());
  }
  std::string attribute = by_attribute ? need_string(call.positional[0], "selectattr") : "";
  List out;
  for (const auto& item : iterate(v)) {
    Value subject = by_attribute ? get_path(item, attribute) : item;
    bool passes = test ? apply_test(*test, test_name, subject, test_args) : subject.truthy();
    if (passes == keep) out.push_back(item);
  }
  return out;
}

Value Renderer::filter(Filter f, std::string_view name, const Value& v, const CallArgs& call) {
  Arguments args(name, call);
  auto string_operand = [&] { return to_str(v); };
  switch (f) {
    case Filter::abs:
      args.allow({});
      if (!is_numeric(v)) fail("abs needs a number");
      if (is_integral(v)) return Value::integer(std::abs(integral(v)));
      return Value::floating(std::fabs(v.as_float()));
    case Filter::capitalize:
      args.allow({});
      return Value::string(capitalize(string_operand()));
    case Filter::upper:
      args.allow({});
      return Value::string(to_upper(string_operand()));
    case Filter::lower:
      args.allow({});
      return Value::string(to_lower(string_operand()));
    case Filter::title:
      args.allow({});
      return Value::string(title_filter(string_operand()));
    case Filter::trim: {
      args.allow({"chars"});
      const Value* chars = args.get(0, "chars");
      std::optional<std::string> set;
      if (chars && chars->kind() != Value::Kind::none) set = need_string(*chars, "trim");
      return Value::string(strip(string_operand(), true, true, set ? &*set : nullptr));
    }
    case Filter::default_: {
      args.allow({"default_value", "boolean"});
      bool use_default = args.bool_arg(1, "boolean", false) ? !v.truthy() : v.is_undefined();
      if (!use_default) return v;
      const Value* otherwise = args.get(0, "default_value");
      return otherwise ? *otherwise : Value::string("");
    }
    case Filter::first:
    case Filter::last: {
      args.allow({});
      List items = iterate(v);
      if (items.empty()) return Value();
      return f == Filter::first ? items.front() : items.back();
    }
    case Filter::length:
      args.allow({});
      return Value::integer(length_of(v));
    case Filter::list:
      args.allow({});
      return Value::list(iterate(v));
    case Filter::reverse: {
      args.allow({});
      if (v.is_string()) {
        auto offsets = code_point_offsets(v.as_string());
        std::string r;
        for (std::size_t k = offsets.size() - 1; k > 0; --k) {
          r.append(v.as_string(), offsets[k - 1], offsets[k] - offsets[k - 1]);
        }
        return Value::string(std::move(r));
      }
      List items = iterate(v);
      std::reverse(items.begin(), items.end());
      return Value::list(std::move(items));
    }
    case Filter::items: {
      args.allow({});
      if (v.is_undefined()) return Value::list({});
      if (v.kind() != Value::Kind::dict) fail("items needs a dict");
      return *call_dict_method(v.as_dict(), "items", {});
    }
    case Filter::join: {
      args.allow({"d", "attribute"});
      std::string separator = args.string_arg(0, "d", "");
      const Value* attribute = args.get(1, "attribute");
      std::string r;
      bool first = true;
      for (const auto& item : iterate(v)) {
        if (!first) r += separator;
        first = false;
        r += to_str(attribute ? get_path(item, to_str(*attribute)) : item);
        check_size(r.size());
      }
      return Value::string(std::move(r));
    }
    case Filter::string:
      args.allow({});
      return Value::string(string_operand());
    case Filter::safe:
      args.allow({});
      return v;
    case Filter::int_: {
      args.allow({"default", "base"});
      std::int64_t otherwise = args.int_arg(0, "default", 0);
      if (is_integral(v)) return Value::integer(integral(v));
      if (v.kind() == Value::Kind::floating) {
        if (!std::isfinite(v.as_float())) return Value::integer(otherwise);
        return Value::integer(static_cast<std::int64_t>(std::trunc(v.as_float())));
      }
      if (v.is_string()) {
        std::string s = strip(v.as_string(), true, true);
        std::int64_t i = 0;
        const char* begin = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
        auto [end, ec] = std::from_chars(begin, s.data() + s.size(), i);
        if (ec == std::errc() && end == s.data() + s.size()) return Value::integer(i);
        double d = 0;
        auto [end2, ec2] = std::from_chars(begin, s.data() + s.size(), d);
        if (ec2 == std::errc() && end2 == s.data() + s.size() && std::isfinite(d)) {
          return Value::integer(static_cast<std::int64_t>(std::trunc(d)));
        }
      }
      return Value::integer(otherwise);
    }
    case Filter::float_: {
      args.allow({"default"});
      const Value* otherwise = args.get(0, "default");
      if (is_numeric(v)) return Value::floating(numeric(v));
      if (v.is_string()) {
        std::string s = strip(v.as_string(), true, true);
        double d = 0;
        const char* begin = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
        auto [end, ec] = std::from_chars(begin, s.data() + s.size(), d);
        if (ec == std::errc() && end == s.data() + s.size()) return Value::floating(d);
      }
      return otherwise ? *otherwise : Value::floating(0.0);
    }
    case Filter::tojson: {
      args.allow({"indent", "ensure_ascii", "separators", "sort_keys"});
      JsonStyle style;
      const Value* indent = args.get(0, "indent");
      if (indent && indent->kind() != Value::Kind::none) {
        if (indent->is_string()) {
          style.indent = indent->as_string();
        } else if (is_integral(*indent)) {
          style.indent = std::string(std::max<std::int64_t>(integral(*indent), 0), ' ');
        } else {
          fail("tojson: indent must be an integer or a string");
        }
      }
      style.ensure_ascii = args.bool_arg(1, "ensure_ascii", false);
      style.sort_keys = args.bool_arg(3, "sort_keys", false);
      style.item_separator = style.indent ? "," : ", ";
      style.key_separator = ": ";
      const Value* separators = args.get(2, "separators");
      if (separators && separators->kind() != Value::Kind::none) {
        if (separators->kind() != Value::Kind::list || separators->as_list().size() != 2) {
          fail("tojson: separators must be a pair of strings");
        }
        style.item_separator = need_string(separators->as_list()[0], "tojson separators");
        style.key_separator = need_string(separators->as_list()[1], "tojson separators");
      }
      std::string out;
      to_json(out, v, style, 0);
      return Value::string(std::move(out));
    }
    case Filter::replace: {
      args.allow({"old", "new", "count"});
      const Value* old = args.get(0, "old");
      const Value* with = args.get(1, "new");
      if (!old || !with) fail("replace needs two arguments");
      std::string r =
          replace_all(string_operand(), to_str(*old), to_str(*with), args.int_arg(2, "count", -1));
      check_size(r.size());
      return Value::string(std::move(r));
    }
    case Filter::indent: {
      args.allow({"width", "first", "blank"});
      const Value* width = args.get(0, "width");
      std::string indention =
          width && width->is_string()
              ? width->as_string()
              : std::string(std::max<std::int64_t>(args.int_arg(0, "width", 4), 0), ' ');
      bool indent_first = args.bool_arg(1, "first", false);
      bool blank = args.bool_arg(2, "blank", false);
      std::vector<std::string> lines = split_lines(string_operand() + "\n");
      std::string r;
      for (std::size_t k = 0; k < lines.size(); ++k) {
        if (k > 0) {
          r += '\n';
          if (blank || !lines[k].empty()) r += indention;
        }
        r += lines[k];
      }
      if (indent_first) r = indention + r;
      check_size(r.size());
      return Value::string(std::move(r));
    }
    case Filter::unique: {
      args.allow({"case_sensitive", "attribute"});
      bool case_sensitive = args.bool_arg(0, "case_sensitive", false);
      const Value* attribute = args.get(1, "attribute");
      List out;
      std::vector<Value> seen;
      for (const auto& item : iterate(v)) {
        Value key = attribute ? get_path(item, to_str(*attribute)) : item;
        if (!case_sensitive && key.is_string()) key = Value::string(to_lower(key.as_string()));
        bool duplicate = false;
        for (const auto& s : seen)
          duplicate = duplicate || equal(s, key);
        if (duplicate) continue;
        seen.push_back(std::move(key));
        out.push_back(item);
      }
      return Value::list(std::move(out));
    }
    case Filter::select:
    case Filter::reject:
      return Value::list(select(v, call, false, f == Filter::select));
    case Filter::selectattr:
    case Filter::rejectattr:
      return Value::list(select(v, call, true, f == Filter::selectattr));
    case Filter::map: {
      List out;
      const Value* attribute = nullptr;
      for (const auto& [k, value] : call.keyword) {
        if (k == "attribute") attribute = &value;
      }
      if (attribute) {
        args.allow({"attribute", "default"});
        const Value* otherwise = args.get(call.positional.size(), "default");  // keyword only
        std::string path = to_str(*attribute);
        for (const auto& item : iterate(v)) {
          Value x = get_path(item, path);
          out.push_back(x.is_undefined() && otherwise ? *otherwise : x);
        }
        return Value::list(std::move(out));
      }
      if (call.positional.empty() || !call.keyword.empty()) {
        fail("map needs a filter name or attribute=");
      }
      const std::string& filter_name = need_string(call.positional[0], "map");
      auto mapped = filter_named(filter_name);
      if (!mapped) fail(fmt::format("unknown filter '{}'", filter_name));
      CallArgs rest;
      rest.positional.assign(call.positional.begin() + 1, call.positional.end());
      for (const auto& item : iterate(v))
        out.push_back(filter(*mapped, filter_name, item, rest));
      return Value::list(std::move(out));
    }
  }
  fail(fmt::format("filter '{}' is not implemented", name));
}

}  // namespace

Template::Template(std::string_view source) {
  auto program = std::make_unique<Program>();
  Lexer lexer(source);
  Parser parser(lexer, lexer.run(), *program);
  parser.run();
  program->builtins.resize(program->names.size());
  static const Value kRaise = Value::function([](const CallArgs& args) -> Value {
    std::string message = args.positional.empty() ? "" : to_str(args.positional[0]);
    throw RenderError(message, 0, 0, /*raised=*/true);
  });
  static const Value kNamespace = Value::function(make_namespace);
  for (std::size_t id = 0; id < program->names.size(); ++id) {
    const std::string& name = program->names[id];
    if (name == "raise_exception") program->builtins[id] = kRaise;
    if (name == "namespace") program->builtins[id] = kNamespace;
    if (name == "range") {
      program->builtins[id] = Value::function(
          [](const CallArgs& args) { return make_range(args, RenderLimits{}.max_iterations); });
    }
  }
  program_ = std::move(program);
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const Dict& variables, const RenderLimits& limits) const {
  return Renderer(*program_, variables, limits).run();
}

}  // namespace hearth::text::jinja
