#pragma once
// A Jinja2 interpreter for the subset that Hugging Face chat templates use, with the environment
// Hugging Face renders them in (trim_blocks, lstrip_blocks, loop controls, the `generation` tag,
// an immutable sandbox: lists and dicts cannot be changed, namespaces can). A template is parsed
// once into a tree and rendered many times. Whatever the parser does not support is refused with
// its line and column, never rendered some other way; rendering is bounded (RenderLimits).

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace hearth::text::jinja {

class Value;
using List = std::vector<Value>;

// A mapping from strings to values that keeps the order of insertion (as Python's dict does).
class Dict {
 public:
  // The value of `key`, or nullptr.
  const Value* find(std::string_view key) const;
  // Sets `key`, keeping its place when it exists.
  void set(std::string key, Value value);
  // reserve() and size() are defined below Value: std::pair<std::string, Value> needs it whole.
  void reserve(std::size_t n);
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  std::size_t size() const;

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// The arguments of a call: positional ones, then keyword ones.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// A function the host gives a template (raise_exception, strftime_now). It throws RenderError.
using Function = std::function<Value(const CallArgs&)>;

// A {% macro %} (jinja.cpp). Its body sees its arguments and the template's top-level variables,
// not those of a loop it is defined in (Jinja's would).
struct Macro;

// A template value: none, undefined, bool, int, float, string, list, dict, namespace, function,
// macro. Strings are UTF-8. Lists and dicts are immutable once made and shared on copy; a
// namespace is shared and mutable, as in Jinja.
class Value {
 public:
  enum class Kind : std::uint8_t {
    undefined,
    none,
    boolean,
    integer,
    floating,
    string,
    list,
    dict,
    namespace_object,
    function,
    macro
  };

  Value() = default;  // undefined
  static Value none();
  static Value boolean(bool b);
  static Value integer(std::int64_t i);
  static Value floating(double d);
  static Value string(std::string s);
  static Value list(List items);
  // A list that prints as Python's tuple: (a, b).
  static Value tuple(List items);
  static Value dict(Dict entries);
  static Value namespace_object(Dict entries);
  static Value function(Function f);
  static Value macro(std::shared_ptr<const Macro> m);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::undefined; }
  bool is_string() const { return kind_ == Kind::string; }
  bool is_tuple() const { return tuple_; }

  // Requires the matching kind.
  bool as_bool() const { return std::get<bool>(data_); }
  std::int64_t as_int() const { return std::get<std::int64_t>(data_); }
  double as_float() const { return std::get<double>(data_); }
  const std::string& as_string() const { return std::get<std::string>(data_); }
  const List& as_list() const { return *std::get<std::shared_ptr<const List>>(data_); }
  // A dict or a namespace.
  const Dict& as_dict() const { return *std::get<std::shared_ptr<Dict>>(data_); }
  Dict& namespace_entries() const { return *std::get<std::shared_ptr<Dict>>(data_); }
  const Function& as_function() const { return *std::get<std::shared_ptr<const Function>>(data_); }
  const std::shared_ptr<const Macro>& as_macro() const {
    return std::get<std::shared_ptr<const Macro>>(data_);
  }

  // Python's truth: empty strings, lists and dicts, 0, none and undefined are false.
  bool truthy() const;

 private:
  Kind kind_ = Kind::undefined;
  bool tuple_ = false;
  std::variant<std::monostate, bool, std::int64_t, double, std::string, std::shared_ptr<const List>,
               std::shared_ptr<Dict>, std::shared_ptr<const Function>, std::shared_ptr<const Macro>>
      data_;
};

inline void Dict::reserve(std::size_t n) {
  items_.reserve(n);
}
inline std::size_t Dict::size() const {
  return items_.size();
}

// A template that does not parse: where, and what.
class SyntaxError : public std::runtime_error {
 public:
  SyntaxError(int line, int column, const std::string& message);
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& message() const { return message_; }

 private:
  int line_;
  int column_;
  std::string message_;
};

// A render that failed: an error in the template's logic or data (`'x' is undefined`, a call of
// raise_exception), or a limit reached. what() is the message; line() is 0 when unknown.
class RenderError : public std::runtime_error {
 public:
  explicit RenderError(const std::string& message, int line = 0, int column = 0,
                       bool raised = false);
  int line() const { return line_; }
  int column() const { return column_; }
  // True for an error the template raised itself (raise_exception): what() is its message.
  bool raised() const { return raised_; }

 private:
  int line_;
  int column_;
  bool raised_;
};

// What one render may use; a render that would use more throws RenderError.
struct RenderLimits {
  std::size_t max_output_bytes = std::size_t{64} << 20;    // also the bound of any one value
  int max_call_depth = 64;                                 // nested macro calls
  std::uint64_t max_iterations = 10'000'000;               // loop iterations and macro calls
  std::uint64_t max_bytes_built = std::uint64_t{1} << 30;  // by ~, +, *, join, replace, indent
};

struct Program;  // the parsed tree (jinja.cpp)

class Template {
 public:
  // Parses `source`. Throws SyntaxError (with its line and column) if it does not parse or uses
  // anything this interpreter does not support.
  explicit Template(std::string_view source);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  Template(const Template&) = delete;
  Template& operator=(const Template&) = delete;

  // Renders with `variables` as the template's globals (beside the built-in range, namespace and
  // raise_exception). Throws RenderError. Safe to call from several threads at once.
  std::string render(const Dict& variables, const RenderLimits& limits = {}) const;

 private:
  std::unique_ptr<const Program> program_;
};

}  // namespace hearth::text::jinja
