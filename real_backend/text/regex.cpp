#include "real_backend/text/regex.hpp"

#include <array>
#include <cctype>
#include <cstdint>
#include <deque>
#include <vector>

#include "real_backend/text/unicode.hpp"

namespace hearth::text {
namespace {

using unicode::Property;

// The most instructions a pattern may compile to: {n,m} copies its operand.
constexpr std::size_t kMaxInstructions = 100'000;
constexpr int kMaxRepeat = 1000;
constexpr int kMaxNesting = 200;

// A set of code points: ranges and properties, possibly negated as a whole. Membership below
// U+10000 is precomputed into a bitmap, since the tokenizer asks it for every code point; the
// bitmap is built from the ranges and the properties' own bitmaps, a word at a time (testing
// each of the 65,536 code points made a pattern of a few dozen sets take a second to compile in
// the fuzz build).
struct CharSet {
  bool negated = false;
  std::vector<std::pair<char32_t, char32_t>> ranges;
  std::vector<std::pair<Property, bool>> properties;  // (property, negated)
  std::vector<std::uint64_t> bmp;

  bool contains_slow(char32_t cp) const {
    bool in = false;
    for (const auto& [first, last] : ranges)
      in = in || (cp >= first && cp <= last);
    for (const auto& [property, property_negated] : properties) {
      in = in || (unicode::has_property(property, cp) != property_negated);
    }
    return in != negated;
  }
  void finish() {
    unicode::BmpSet set{};
    for (const auto& [first, last] : ranges)
      unicode::add_bmp_range(set, first, last);
    for (const auto& [property, property_negated] : properties) {
      const unicode::BmpSet& with = unicode::bmp_with(property);
      for (std::size_t w = 0; w < set.size(); ++w)
        set[w] |= property_negated ? ~with[w] : with[w];
    }
    bmp.assign(set.begin(), set.end());
    if (negated) {
      for (std::uint64_t& w : bmp)
        w = ~w;
    }
  }
  bool contains(char32_t cp) const {
    if (cp < 0x10000) return (bmp[cp / 64] >> (cp % 64)) & 1;
    return contains_slow(cp);
  }
};

enum class Op : std::uint8_t { kSet, kAny, kSplit, kJmp, kLook, kMatch };

// kSet: x = the set. kSplit: try x, then y. kJmp: x. kLook: the zero-width assertion at x
// (ending in kMatch), then continue at y; `negated` for (?!...).
struct Instruction {
  Op op;
  bool negated = false;
  int x = 0;
  int y = 0;
};

// The parsed pattern.
struct Node {
  enum class Kind { kSet, kAny, kConcat, kAlternation, kLook, kRepeat };
  explicit Node(Kind k) : kind(k) {}
  Kind kind;
  int set = 0;
  bool negated = false;  // kLook
  int min = 0, max = 0;  // kRepeat; max < 0: unbounded
  bool greedy = true;
  std::vector<Node> children;

  bool nullable() const {
    switch (kind) {
      case Kind::kSet:
      case Kind::kAny:
        return false;
      case Kind::kLook:
        return true;
      case Kind::kRepeat:
        return min == 0 || children[0].nullable();
      case Kind::kConcat:
        for (const Node& c : children) {
          if (!c.nullable()) return false;
        }
        return true;
      case Kind::kAlternation:
        for (const Node& c : children) {
          if (c.nullable()) return true;
        }
        return false;
    }
    return false;
  }
};

class Parser {
 public:
  Parser(std::string_view pattern, std::vector<CharSet>& sets) : p_(pattern), sets_(sets) {}

  Node parse() {
    Node node = alternation(0);
    if (pos_ < p_.size()) fail("unbalanced \")\"");
    return node;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw RegexError(what + " at offset " + std::to_string(pos_));
  }
  bool at_end() const { return pos_ >= p_.size(); }
  char peek() const { return p_[pos_]; }
  bool accept(std::string_view s) {
    if (p_.substr(pos_).starts_with(s)) {
      pos_ += s.size();
      return true;
    }
    return false;
  }
  char32_t code_point() {
    if (static_cast<unsigned char>(peek()) >= 0x80) {
      std::string_view rest = p_.substr(pos_);
      std::string valid =
          unicode::to_valid_utf8(rest.substr(0, std::min<std::size_t>(4, rest.size())));
      std::size_t k = 0;
      char32_t cp = unicode::next_code_point(valid, k);
      pos_ += cp == unicode::kReplacementCharacter ? 1 : k;
      return cp;
    }
    return static_cast<unsigned char>(p_[pos_++]);
  }

  Node alternation(int depth) {
    if (depth > kMaxNesting) fail("groups nested too deeply");
    Node node{Node::Kind::kAlternation};
    node.children.push_back(concat(depth));
    while (!at_end() && peek() == '|') {
      ++pos_;
      node.children.push_back(concat(depth));
    }
    if (node.children.size() == 1) return std::move(node.children[0]);
    return node;
  }

  Node concat(int depth) {
    Node node{Node::Kind::kConcat};
    while (!at_end() && peek() != '|' && peek() != ')') {
      Node atom_node = atom(depth);
      node.children.push_back(quantified(std::move(atom_node)));
    }
    return node;
  }

  Node quantified(Node operand) {
    while (!at_end()) {
      int min = 0, max = 0;
      std::size_t start = pos_;
      if (accept("*")) {
        min = 0, max = -1;
      } else if (accept("+")) {
        min = 1, max = -1;
      } else if (accept("?")) {
        min = 0, max = 1;
      } else if (peek() == '{') {
        ++pos_;
        min = number();
        max = min;
        if (accept(",")) max = !at_end() && peek() == '}' ? -1 : number();
        if (!accept("}")) fail("malformed {n,m} quantifier");
        if (max >= 0 && max < min) fail("quantifier {n,m} with m < n");
      } else {
        return operand;
      }
      bool greedy = true;
      if (accept("?")) greedy = false;
      if (!at_end() && peek() == '+') fail("possessive quantifier \"+\"");
      if (operand.kind == Node::Kind::kLook || (max != 1 && operand.nullable())) {
        pos_ = start;
        fail("quantifier on an operand that can match the empty string");
      }
      Node node{Node::Kind::kRepeat};
      node.min = min;
      node.max = max;
      node.greedy = greedy;
      node.children.push_back(std::move(operand));
      operand = std::move(node);
    }
    return operand;
  }

  int number() {
    int value = 0;
    std::size_t start = pos_;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      value = value * 10 + (peek() - '0');
      if (value > kMaxRepeat) fail("repeat count above " + std::to_string(kMaxRepeat));
      ++pos_;
    }
    if (pos_ == start) fail("malformed {n,m} quantifier");
    return value;
  }

  Node set_node(CharSet set) {
    if (ignore_case_) fold_ascii_case(set);
    set.finish();
    sets_.push_back(std::move(set));
    Node node{Node::Kind::kSet};
    node.set = static_cast<int>(sets_.size() - 1);
    return node;
  }

  static void fold_ascii_case(CharSet& set) {
    std::vector<std::pair<char32_t, char32_t>> extra;
    for (const auto& [first, last] : set.ranges) {
      for (char32_t c = std::max<char32_t>(first, 'A'); c <= std::min<char32_t>(last, 'Z'); ++c) {
        extra.emplace_back(c + 32, c + 32);
      }
      for (char32_t c = std::max<char32_t>(first, 'a'); c <= std::min<char32_t>(last, 'z'); ++c) {
        extra.emplace_back(c - 32, c - 32);
      }
    }
    set.ranges.insert(set.ranges.end(), extra.begin(), extra.end());
  }

  Node atom(int depth) {
    std::size_t start = pos_;
    char c = peek();
    if (c == '(') {
      ++pos_;
      bool saved_case = ignore_case_;
      Node node{Node::Kind::kConcat};
      if (accept("?:")) {
        node = alternation(depth + 1);
      } else if (accept("?i:")) {
        ignore_case_ = true;
        node = alternation(depth + 1);
      } else if (accept("?=") || accept("?!")) {
        node = Node{Node::Kind::kLook};
        node.negated = p_[pos_ - 1] == '!';
        node.children.push_back(alternation(depth + 1));
      } else if (!at_end() && peek() == '?') {
        fail("unsupported group \"(?" + std::string(p_.substr(pos_ + 1, 1)) + "\"");
      } else {
        node = alternation(depth + 1);
      }
      ignore_case_ = saved_case;
      if (!accept(")")) {
        pos_ = start;
        fail("unclosed group");
      }
      return node;
    }
    if (c == '[') return set_node(char_class());
    if (c == '.') {
      ++pos_;
      return Node{Node::Kind::kAny};
    }
    if (c == '^' || c == '$') fail(std::string("unsupported anchor \"") + c + "\"");
    if (c == '*' || c == '+' || c == '?' || c == '{') fail("nothing to repeat");
    CharSet set;
    if (c == '\\') {
      escape(set);
    } else {
      char32_t cp = code_point();
      set.ranges.emplace_back(cp, cp);
    }
    return set_node(std::move(set));
  }

  // An escape, added to `set`; returns the code point when it stands for one, else -1.
  long escape(CharSet& set) {
    std::size_t start = pos_;
    ++pos_;  // the backslash
    if (at_end()) fail("pattern ends in a backslash");
    char c = p_[pos_++];
    auto single = [&](char32_t cp) {
      set.ranges.emplace_back(cp, cp);
      return static_cast<long>(cp);
    };
    switch (c) {
      case 'r':
        return single('\r');
      case 'n':
        return single('\n');
      case 't':
        return single('\t');
      case 'f':
        return single('\f');
      case 'v':
        return single('\v');
      case 'a':
        return single(0x07);
      case 'e':
        return single(0x1B);
      case 's':
        set.properties.emplace_back(Property::kWhiteSpace, false);
        return -1;
      case 'S':
        set.properties.emplace_back(Property::kWhiteSpace, true);
        return -1;
      case 'd':
        set.properties.emplace_back(Property::kDecimalNumber, false);
        return -1;
      case 'D':
        set.properties.emplace_back(Property::kDecimalNumber, true);
        return -1;
      case 'p':
      case 'P': {
        if (!accept("{")) fail("\\p without {name}");
        bool negated = c == 'P';
        if (accept("^")) negated = !negated;
        std::size_t close = p_.find('}', pos_);
        if (close == std::string_view::npos) fail("unclosed \\p{");
        std::string name(p_.substr(pos_, close - pos_));
        pos_ = start;
        set.properties.emplace_back(property(name), negated);
        pos_ = close + 1;
        return -1;
      }
      case 'x':
      case 'u': {
        std::size_t digits = c == 'u' ? 4 : 2;
        bool braced = c == 'x' && accept("{");
        char32_t cp = 0;
        std::size_t count = 0;
        while (!at_end() && std::isxdigit(static_cast<unsigned char>(peek())) &&
               (braced || count < digits)) {
          char h = peek();
          cp = cp * 16 + (h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
          if (cp > 0x10FFFF) fail("code point above U+10FFFF");
          ++pos_, ++count;
        }
        if ((braced && !accept("}")) || count == 0 || (!braced && count != digits)) {
          fail(std::string("malformed \\") + c + " escape");
        }
        return single(cp);
      }
      default:
        if (std::isalnum(static_cast<unsigned char>(c))) {
          pos_ = start;
          fail(std::string("unsupported escape \"\\") + c + "\"");
        }
        --pos_;
        return single(code_point());
    }
  }

  Property property(const std::string& name) {
    static const std::array<std::pair<const char*, Property>, 22> kNames{{
        {"L", Property::kLetter},
        {"Letter", Property::kLetter},
        {"Lu", Property::kUppercaseLetter},
        {"Uppercase_Letter", Property::kUppercaseLetter},
        {"Ll", Property::kLowercaseLetter},
        {"Lowercase_Letter", Property::kLowercaseLetter},
        {"Lt", Property::kTitlecaseLetter},
        {"Titlecase_Letter", Property::kTitlecaseLetter},
        {"Lm", Property::kModifierLetter},
        {"Modifier_Letter", Property::kModifierLetter},
        {"Lo", Property::kOtherLetter},
        {"Other_Letter", Property::kOtherLetter},
        {"M", Property::kMark},
        {"Mark", Property::kMark},
        {"N", Property::kNumber},
        {"Number", Property::kNumber},
        {"Nd", Property::kDecimalNumber},
        {"Decimal_Number", Property::kDecimalNumber},
        {"P", Property::kPunctuation},
        {"Punctuation", Property::kPunctuation},
        {"S", Property::kSymbol},
        {"Symbol", Property::kSymbol},
    }};
    for (const auto& [n, property] : kNames) {
      if (name == n) return property;
    }
    if (name == "White_Space" || name == "Space") return Property::kWhiteSpace;
    fail("unsupported property \\p{" + name + "}");
  }

  CharSet char_class() {
    std::size_t start = pos_;
    ++pos_;  // [
    CharSet set;
    if (accept("^")) set.negated = true;
    if (!at_end() && peek() == ']') fail("empty character class");
    while (true) {
      if (at_end()) {
        pos_ = start;
        fail("unclosed character class");
      }
      char c = peek();
      if (c == ']') {
        ++pos_;
        return set;
      }
      if (c == '[') fail("nested character class");
      if (p_.substr(pos_).starts_with("&&")) fail("character class intersection \"&&\"");
      long first = -1;
      if (c == '\\') {
        first = escape(set);
      } else {
        first = code_point();
        set.ranges.emplace_back(first, first);
      }
      if (first >= 0 && pos_ + 1 < p_.size() && peek() == '-' && p_[pos_ + 1] != ']') {
        ++pos_;
        set.ranges.pop_back();
        long last = -1;
        if (peek() == '\\') {
          last = escape(set);
          if (last >= 0) set.ranges.pop_back();
        } else {
          last = code_point();
        }
        if (last < 0) fail("range to a class escape");
        if (last < first) fail("range out of order");
        set.ranges.emplace_back(static_cast<char32_t>(first), static_cast<char32_t>(last));
      }
    }
  }

  std::string_view p_;
  std::size_t pos_ = 0;
  bool ignore_case_ = false;
  std::vector<CharSet>& sets_;
};

class Compiler {
 public:
  explicit Compiler(std::vector<Instruction>& code) : code_(code) {}

  void compile(const Node& node) {
    if (code_.size() > kMaxInstructions) throw RegexError("pattern too large once compiled");
    switch (node.kind) {
      case Node::Kind::kSet:
        emit({Op::kSet, false, node.set});
        break;
      case Node::Kind::kAny:
        emit({Op::kAny});
        break;
      case Node::Kind::kConcat:
        for (const Node& c : node.children)
          compile(c);
        break;
      case Node::Kind::kAlternation: {
        std::vector<int> to_end;
        for (std::size_t k = 0; k < node.children.size(); ++k) {
          int split = -1;
          if (k + 1 < node.children.size()) split = emit({Op::kSplit});
          if (split >= 0) code_[split].x = here();
          compile(node.children[k]);
          if (k + 1 < node.children.size()) {
            to_end.push_back(emit({Op::kJmp}));
            code_[split].y = here();
          }
        }
        for (int j : to_end)
          code_[j].x = here();
        break;
      }
      case Node::Kind::kLook: {
        int look = emit({Op::kLook, node.negated});
        code_[look].x = here();
        compile(node.children[0]);
        emit({Op::kMatch});
        code_[look].y = here();
        break;
      }
      case Node::Kind::kRepeat: {
        const Node& body = node.children[0];
        for (int k = 0; k < node.min; ++k)
          compile(body);
        if (node.max < 0) {
          int split = emit({Op::kSplit});
          compile(body);
          emit({Op::kJmp, false, split});
          branch(split, split + 1, here(), node.greedy);
        } else {
          std::vector<int> splits;
          for (int k = node.min; k < node.max; ++k) {
            splits.push_back(emit({Op::kSplit}));
            compile(body);
          }
          for (int split : splits)
            branch(split, split + 1, here(), node.greedy);
        }
        break;
      }
    }
  }

 private:
  int emit(Instruction instruction) {
    code_.push_back(instruction);
    return static_cast<int>(code_.size() - 1);
  }
  int here() const { return static_cast<int>(code_.size()); }
  void branch(int split, int body, int skip, bool greedy) {
    code_[split].x = greedy ? body : skip;
    code_[split].y = greedy ? skip : body;
  }

  std::vector<Instruction>& code_;
};

struct Frame {
  int pc;
  std::size_t pos;
};

}  // namespace

struct Regex::Program {
  std::vector<CharSet> sets;
  std::vector<Instruction> code;

  // Runs from `pc` at `pos` until kMatch (true, `end` set) or until every branch fails.
  bool run(int pc, std::string_view text, std::size_t pos, std::size_t& end, long& budget,
           std::deque<std::vector<Frame>>& stacks, std::size_t depth) const {
    if (stacks.size() <= depth) stacks.resize(depth + 1);
    std::vector<Frame>& stack = stacks[depth];
    stack.clear();
    while (true) {
      if (--budget < 0) throw RegexError("pattern backtracks too much on this text");
      const Instruction& in = code[pc];
      bool ok = true;
      switch (in.op) {
        case Op::kSet:
        case Op::kAny: {
          ok = false;
          if (pos < text.size()) {
            std::size_t next = pos;
            char32_t cp = unicode::next_code_point(text, next);
            if (in.op == Op::kSet ? sets[in.x].contains(cp) : cp != '\n') {
              pos = next;
              ++pc;
              ok = true;
            }
          }
          break;
        }
        case Op::kSplit:
          stack.push_back({in.y, pos});
          pc = in.x;
          break;
        case Op::kJmp:
          pc = in.x;
          break;
        case Op::kLook: {
          std::size_t look_end = 0;
          bool matched = run(in.x, text, pos, look_end, budget, stacks, depth + 1);
          ok = matched != in.negated;
          pc = in.y;
          break;
        }
        case Op::kMatch:
          end = pos;
          return true;
      }
      if (!ok) {
        if (stack.empty()) return false;
        pc = stack.back().pc;
        pos = stack.back().pos;
        stack.pop_back();
      }
    }
  }
};

Regex::Regex(std::string_view pattern) {
  auto program = std::make_unique<Program>();
  Node root = Parser(pattern, program->sets).parse();
  // A split or a replacement at every position is never what a tokenizer means, and a
  // replacement there can grow the text without bound.
  if (root.nullable()) throw RegexError("pattern matches the empty string");
  Compiler(program->code).compile(root);
  program->code.push_back({Op::kMatch});
  if (program->code.size() > kMaxInstructions) throw RegexError("pattern too large once compiled");
  program_ = std::move(program);
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

std::vector<Match> Regex::find_all(std::string_view text) const {
  // One stack per lookahead depth; a deque keeps the outer ones in place as it grows.
  thread_local std::deque<std::vector<Frame>> stacks;
  // The patterns of real files run in a few steps per code point; the budget stops the
  // pathological ones (nested quantifiers, quadratic backtracking) on long texts.
  long budget = 1'000'000 + 200 * static_cast<long>(text.size());
  std::vector<Match> matches;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = 0;
    if (program_->run(0, text, start, end, budget, stacks, 0)) {
      matches.push_back({start, end});  // end > start: the pattern matches no empty string
      start = end;
    } else {
      unicode::next_code_point(text, start);
    }
  }
  return matches;
}

}  // namespace hearth::text
