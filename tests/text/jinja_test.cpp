// The Jinja interpreter: each construct chat templates use, rendered as Python's Jinja2 renders
// it in Hugging Face's environment (trim_blocks, lstrip_blocks, loop controls); what it refuses,
// and where; the limits of a render. Expected texts were checked with Jinja2 3.1.

#include "real_backend/text/jinja.hpp"

#include <catch2/catch_test_macros.hpp>

#include <string>

namespace hearth::text::jinja {
namespace {

Value str(std::string s) {
  return Value::string(std::move(s));
}

Value message(std::string role, std::string content) {
  Dict d;
  d.set("role", str(std::move(role)));
  d.set("content", str(std::move(content)));
  return Value::dict(std::move(d));
}

Dict chat() {
  Dict variables;
  variables.set("messages", Value::list({message("system", "Be kind."), message("user", "Hi"),
                                         message("assistant", "Hello!")}));
  variables.set("bos_token", str("<s>"));
  variables.set("flag", Value::boolean(true));
  variables.set("n", Value::integer(7));
  variables.set("x", Value::floating(2.5));
  variables.set("nothing", Value::none());
  return variables;
}

std::string render(std::string_view source, const Dict& variables = chat(),
                   const RenderLimits& limits = {}) {
  return Template(source).render(variables, limits);
}

// "line:column: message" of the SyntaxError that parsing `source` throws.
std::string syntax_error(std::string_view source) {
  try {
    Template t(source);
  } catch (const SyntaxError& e) {
    return std::to_string(e.line()) + ":" + std::to_string(e.column()) + ": " + e.message();
  }
  FAIL("expected a SyntaxError for: " << source);
  return {};
}

std::string render_error(std::string_view source, const RenderLimits& limits = {}) {
  try {
    render(source, chat(), limits);
  } catch (const RenderError& e) {
    return e.what();
  }
  FAIL("expected a RenderError for: " << source);
  return {};
}

TEST_CASE("text, expressions and comments render; one trailing newline is dropped") {
  CHECK(render("a {{ 'b' }} {# gone #}c\n") == "a b c");
  CHECK(render("a\n\n") == "a\n");
  CHECK(render("{{ n }} {{ x }} {{ flag }} {{ nothing }} {{ missing }}|") == "7 2.5 True None |");
  CHECK(render("{{ [1, 'a', none, true] }} {{ {'k': 1.0} }}") == "[1, 'a', None, True] {'k': 1.0}");
  CHECK(render("{{ 1e20 }} {{ 0.1 + 0.2 }} {{ 1e-5 }} {{ 10 / 4 }} {{ 4 / 2 }}") ==
        "1e+20 0.30000000000000004 1e-05 2.5 2.0");
}

TEST_CASE("trim_blocks drops the newline after a block tag and lstrip_blocks the blanks before") {
  CHECK(render("{% if flag %}\n  yes\n{% endif %}\nend") == "  yes\nend");
  CHECK(render("x\n    {% if flag %}\ty{% endif %}  \nz") == "x\n\ty  \nz");
  // Not at the start of a line: nothing is stripped before the tag.
  CHECK(render("x  {% if flag %}y{% endif %}") == "x  y");
  // Expressions keep their blanks and newline; comments are treated as blocks.
  CHECK(render("  {{ n }}\nz\n  {# c #}\nw") == "  7\nz\nw");
  // + turns both off.
  CHECK(render("  {%+ if flag +%}\nz{% endif %}") == "  \nz");
}

TEST_CASE("a tag with - strips all whitespace on that side of it") {
  CHECK(render("a  \n {{- n -}} \n\t b") == "a7b");
  CHECK(render("a \n{%- if flag -%}\n b {%- endif %}") == "ab");
  CHECK(render("a \n{#- c -#}\n b") == "ab");
}

TEST_CASE("raw blocks keep their text as it is") {
  CHECK(render("{% raw %}{{ x }}{% if %}{% endraw %}") == "{{ x }}{% if %}");
  CHECK(render("{% raw %}\n  {{ x }}\n{% endraw %}\nafter") == "\n  {{ x }}\nafter");
  CHECK(render("a\n  {% raw %}x{% endraw %}  \n  {# c #}\nb") == "a\nx  \nb");
}

TEST_CASE("if, elif and else choose by Python's truth") {
  const char* t = "{% if v %}T{% elif w %}W{% else %}F{% endif %}";
  auto with = [](Value v, Value w) {
    Dict d;
    d.set("v", std::move(v));
    d.set("w", std::move(w));
    return d;
  };
  CHECK(render(t, with(str(""), Value::list({}))) == "F");
  CHECK(render(t, with(Value::integer(0), Value::list({Value::none()}))) == "W");
  CHECK(render(t, with(Value::dict({}), Value::floating(0.0))) == "F");
  CHECK(render(t, with(str(" "), Value())) == "T");
  CHECK(render(t, with(Value(), Value())) == "F");
}

TEST_CASE("for loops set loop.index, index0, first, last, length and revindex") {
  CHECK(render("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}"
               "{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }};"
               "{% endfor %}") == "10TrueFalse332;21FalseFalse321;32FalseTrue310;");
  CHECK(render("{% for i in [1, 2, 3] %}{{ loop.previtem }}>{{ loop.nextitem }} {% endfor %}") ==
        ">2 1>3 2> ");
  CHECK(render("{% for m in [] %}x{% else %}empty{% endfor %}") == "empty");
  CHECK(render("{% for c in 'héllo' %}{{ c }}.{% endfor %}") == "h.é.l.l.o.");
  CHECK(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }} {% endfor %}") ==
        "a=1 b=2 ");
  CHECK(render("{% for k in {'a': 1, 'b': 2} %}{{ k }}{% endfor %}") == "ab");
  CHECK(render("{% for m in messages if m.role != 'system' %}{{ loop.index }}{{ m.role }} "
               "{% endfor %}") == "1user 2assistant ");
  CHECK(render("{% for m in missing %}x{% endfor %}ok") == "ok");
  CHECK(render("{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}"
               "{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}") == "02");
  CHECK(render("{% for i in range(2, 9, 3) %}{{ i }}{% endfor %}{% for i in range(3, 0, -1) %}"
               "{{ i }}{% endfor %}") == "258321");
}

TEST_CASE("set inside a loop stays in its iteration; a namespace carries values out") {
  CHECK(render("{% set x = 0 %}{% for i in [1, 2] %}[{{ x }}]{% set x = i %}{% endfor %}{{ x }}") ==
        "[0][0]0");
  CHECK(render("{% set ns = namespace(total=0, seen=false) %}{% for i in [1, 2, 3] %}"
               "{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }} {{ ns.seen }}") ==
        "6 False");
  CHECK(render("{% set a, b = [1, 2] %}{{ b }}{{ a }}") == "21");
  CHECK(render("{% set block %}  {{ n }} apples {% endset %}[{{ block }}]") == "[  7 apples ]");
  CHECK(render("{% set block | trim | upper %}  {{ n }} apples {% endset %}[{{ block }}]") ==
        "[7 APPLES]");
  CHECK(render_error("{% set n.x = 1 %}") == "cannot set 'x' of 'n': it is not a namespace");
}

TEST_CASE("macros take positional, keyword and default arguments") {
  CHECK(render("{% macro tag(name, attr='x') %}<{{ name }} {{ attr }}>{% endmacro %}"
               "{{ tag('a') }}{{ tag('b', attr='y') }}{{ tag(attr='z', name='c') }}") ==
        "<a x><b y><c z>");
  CHECK(render("{% macro show(m) %}{{ bos_token }}{{ m.role }}{% endmacro %}"
               "{% for m in messages %}{{ show(m) }}{% endfor %}") ==
        "<s>system<s>user<s>assistant");
  CHECK(render_error("{% macro f(a) %}{% endmacro %}{{ f(1, 2) }}") ==
        "macro 'f' takes 1 argument(s), not 2");
}

TEST_CASE("filter blocks apply a filter to their body") {
  CHECK(render("{% filter upper %}a{{ n }}b{% endfilter %}") == "A7B");
}

TEST_CASE("expressions follow Python's operators and precedence") {
  CHECK(render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }}") == "7 9 64 4");
  CHECK(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7.5 // 2 }}") ==
        "3 -4 2 -2 3.0");
  CHECK(render("{{ 'a' ~ 1 ~ none ~ missing }} {{ 'ab' * 2 }} {{ [1] + [2] }}") ==
        "a1None abab [1, 2]");
  CHECK(
      render(
          "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1,2] == [1,2] }}") ==
      "True False True True True");
  CHECK(render("{{ 'ell' in 'hello' }} {{ 2 not in [1, 2] }} {{ 'a' in {'a': 1} }} "
               "{{ 'x' in missing }}") == "True False True False");
  CHECK(render("{{ none or 'b' }} {{ 0 and 1 }} {{ not 0 }} {{ not 1 == 2 }}") == "b 0 True True");
  CHECK(render("{{ 'y' if flag else 'n' }} {{ 'y' if not flag else 'n' }} [{{ 'y' if false }}]") ==
        "y n []");
  CHECK(render("{{ true == 1 }} {{ 'a' 'b' }}") == "True ab");
  CHECK(render_error("{{ 'a' + 1 }}") == "unsupported operand types for +: string and int");
  CHECK(render_error("{{ missing + 'a' }}") == "an undefined value in '+'");
  CHECK(render_error("{{ 1 / 0 }}") == "division by zero");
}

TEST_CASE("attribute, item and slice access") {
  CHECK(render("{{ messages[1].content }} {{ messages[-1]['role'] }} {{ messages.0.role }}") ==
        "Hi assistant system");
  CHECK(render("{{ messages[1:]|length }} {{ (messages[::-1]|first).role }} "
               "{{ 'héllo'[1:3] }} {{ 'abc'[::-1] }} {{ [1,2,3,4][::2] }} {{ [1,2,3][-2:] }}") ==
        "2 assistant él cba [1, 3] [2, 3]");
  CHECK(render("[{{ messages[9] }}][{{ messages[0].nope }}][{{ nothing.x }}]") == "[][][]");
  CHECK(render_error("{{ missing.x }}") == "cannot read 'x' of an undefined value");
}

TEST_CASE(
    "tests: defined, none, string, number, mapping, iterable, sequence, true, even and the "
    "rest") {
  CHECK(render("{{ n is defined }}{{ missing is undefined }}{{ nothing is none }}"
               "{{ 'a' is string }}{{ x is number }}{{ n is integer }}{{ x is float }}") ==
        "TrueTrueTrueTrueTrueTrueTrue");
  CHECK(render("{{ messages[0] is mapping }}{{ messages is iterable }}{{ 'a' is sequence }}"
               "{{ flag is true }}{{ flag is false }}{{ flag is boolean }}{{ n is boolean }}") ==
        "TrueTrueTrueTrueFalseTrueFalse");
  CHECK(render(
            "{{ 4 is even }}{{ n is odd }}{{ 9 is divisibleby 3 }}{{ n is not none }}"
            "{{ 'ab' is lower }}{{ 'a' is eq 'a' }}{{ 'a' is in ['a'] }}{{ range is callable }}") ==
        "TrueTrueTrueTrueTrueTrueTrueTrue");
  CHECK(render("{{ none is sameas none }}{{ flag is sameas true }}{{ 1 is sameas true }}") ==
        "TrueTrueFalse");
}

TEST_CASE("string methods behave as Python's") {
  CHECK(render("{{ '  a b  '.strip() }}|{{ '\\n\\na \\n'.strip('\\n') }}|{{ 'xxaxx'.lstrip('x') }}|"
               "{{ '  a  '.rstrip() }}|") == "a b|a |axx|  a|");
  CHECK(render("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }}") ==
        "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c']");
  CHECK(render("{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}"
               "{{ 'aaa'.replace('a', 'b', 2) }}{{ 'hi'.upper() }}{{ 'HI'.lower() }}") ==
        "TrueTruebbaHIhi");
  CHECK(render("{{ \"they're bill's\".title() }} {{ 'hELLO wORLD'.capitalize() }}") ==
        "They'Re Bill'S Hello world");
  CHECK(render("{{ '<think>a</think>b'.split('</think>')[-1] }}") == "b");
}

TEST_CASE("dict methods: get, items, keys, values") {
  CHECK(render("{{ {'a': 1}.get('a') }} {{ {'a': 1}.get('b') }} {{ {'a': 1}.get('b', 2) }} "
               "{{ {'a': 1, 'b': 2}.keys()|list }} {{ {'a': 1}.values()|list }} "
               "{{ {'a': 1}.items()|list }} {{ (1,) }}") ==
        "1 None 2 ['a', 'b'] [1] [('a', 1)] (1,)");
}

TEST_CASE("filters: trim, length, upper, lower, title, capitalize, replace, join, first, last") {
  CHECK(render("[{{ '\\u3000 a \\n'|trim }}][{{ 'xxaxx'|trim('x') }}]") == "[a][a]");
  CHECK(
      render(
          "{{ messages|length }} {{ 'héllo'|count }} {{ {'a': 1}|length }} {{ missing|length }}") ==
      "3 5 1 0");
  CHECK(render("{{ 'aB'|upper }} {{ 'aB'|lower }} {{ 'hello-world (x)'|title }} "
               "{{ 'hELLO'|capitalize }}") == "AB ab Hello-World (X) Hello");
  CHECK(render("{{ 'a-b-c'|replace('-', '+') }} {{ 'abc'|replace('', '.') }} "
               "{{ 'aaa'|replace('a', 'b', 1) }}") == "a+b+c .a.b.c. baa");
  CHECK(render("{{ [1, 2, 3]|join(', ') }} {{ messages|join('|', attribute='role') }} "
               "{{ 'abc'|join('-') }}") == "1, 2, 3 system|user|assistant a-b-c");
  CHECK(render("{{ (messages|first).role }} {{ (messages|last).role }} {{ 'abc'|last }} "
               "[{{ []|first }}]") == "system assistant c []");
}

TEST_CASE("filters: default, string, int, float, list, items, reverse, unique, abs, safe") {
  CHECK(render("{{ missing|default('d') }} {{ nothing|default('d') }} {{ ''|d('e', true) }} "
               "[{{ missing|default }}]") == "d None e []");
  CHECK(render("{{ 5|string ~ 1 }} {{ '42'|int + 1 }} {{ '4.7'|int }} {{ 'x'|int(3) }} "
               "{{ 4.9|int }} {{ '2.5'|float }} {{ 3|float }}") == "51 43 4 3 4 2.5 3.0");
  CHECK(render("{{ 'ab'|list }} {{ {'a': 1}|items|list }} {{ [1, 2]|reverse|list }} "
               "{{ 'abc'|reverse }}") == "['a', 'b'] [('a', 1)] [2, 1] cba");
  CHECK(render("{{ ['a', 'A', 'b', 'a']|unique|list }} {{ -3|abs }} {{ '<b>'|safe }}") ==
        "['a', 'b'] 3 <b>");
}

TEST_CASE("filters: selectattr, rejectattr, select, reject and map") {
  CHECK(render("{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }} "
               "{{ messages|rejectattr('role', 'eq', 'system')|list|length }} "
               "{{ messages|selectattr('content')|list|length }}") == "['Hi'] 2 3");
  CHECK(render("{{ [0, 1, 2, none]|select|list }} {{ [1, 2, 3, 4]|reject('odd')|list }} "
               "{{ ['a', 'b']|map('upper')|list }} {{ [1, 5]|select('gt', 2)|list }}") ==
        "[1, 2] [2, 4] ['A', 'B'] [5]");
}

TEST_CASE("tojson writes Python's json.dumps with ensure_ascii off, and indents on request") {
  Dict d;
  Dict tool;
  tool.set("name", str("météo"));
  tool.set("args", Value::list({Value::integer(1), Value::floating(2.0), Value::boolean(false),
                                Value::none(), str("a\"b\\c\n\u0001")}));
  tool.set("empty", Value::dict({}));
  d.set("tool", Value::dict(std::move(tool)));
  CHECK(render("{{ tool|tojson }}", d) ==
        R"({"name": "météo", "args": [1, 2.0, false, null, "a\"b\\c\n\u0001"], "empty": {}})");
  CHECK(render("{{ tool|tojson(indent=2) }}", d) ==
        "{\n  \"name\": \"météo\",\n  \"args\": [\n    1,\n    2.0,\n    false,\n    null,\n"
        "    \"a\\\"b\\\\c\\n\\u0001\"\n  ],\n  \"empty\": {}\n}");
  CHECK(render("{{ {'b': 1, 'a': 'é'}|tojson(ensure_ascii=true, sort_keys=true) }}") ==
        R"({"a": "\u00e9", "b": 1})");
}

TEST_CASE("indent indents every line but the first, and blank lines only when asked") {
  CHECK(render("{{ 'a\nb\n\nc'|indent(2) }}") == "a\n  b\n\n  c");
  CHECK(render("{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent('> ', blank=true) }}") ==
        "  a\n  b|a\n> \n> b");
}

TEST_CASE("raise_exception stops the render with the template's message") {
  try {
    render(
        "{% if messages|length > 2 %}{{ raise_exception('too many: ' ~ messages|length) }}{% endif "
        "%}");
    FAIL("expected a RenderError");
  } catch (const RenderError& e) {
    CHECK(e.raised());
    CHECK(std::string(e.what()) == "too many: 3");
    CHECK(e.line() == 1);
  }
}

TEST_CASE("render errors say where in the template they happened") {
  try {
    render("line one\n{% for m in messages %}\n  {{ m.content + 1 }}{% endfor %}");
    FAIL("expected a RenderError");
  } catch (const RenderError& e) {
    CHECK(!e.raised());
    CHECK(e.line() == 3);
    CHECK(e.column() == 6);
  }
}

TEST_CASE(
    "templates that do not parse, or use what is not supported, are refused with line and "
    "column") {
  CHECK(syntax_error("a\n{% if x %}\n  {% macroo %}") == "3:6: unknown tag 'macroo'");
  CHECK(syntax_error("{% for x in y %}") == "1:4: 'for' is not closed: missing {% endfor %}");
  CHECK(syntax_error("{% if x %}{% endfor %}") == "1:14: unexpected tag 'endfor'");
  CHECK(syntax_error("{% include 'x' %}") == "1:4: unsupported tag 'include'");
  CHECK(syntax_error("{% call f() %}{% endcall %}") == "1:4: unsupported tag 'call'");
  CHECK(syntax_error("{{ x | frobnicate }}") == "1:8: unknown filter 'frobnicate'");
  CHECK(syntax_error("{{ x is frob }}") == "1:9: unknown test 'frob'");
  CHECK(syntax_error("{{ xs.append(1) }}") == "1:7: unsupported method 'append'");
  CHECK(syntax_error("{{ f(*args) }}") == "1:6: *args and **kwargs are not supported");
  CHECK(syntax_error("{% for x in y recursive %}{% endfor %}") ==
        "1:15: recursive loops are not supported");
  CHECK(syntax_error("{% macro m() %}{{ varargs }}{% endmacro %}") ==
        "1:19: 'varargs' in a macro is not supported");
  CHECK(syntax_error("{% break %}") == "1:4: 'break' outside of a loop");
  CHECK(syntax_error("{{ 'abc }}") == "1:4: string is not closed");
  CHECK(syntax_error("{{ x ") == "1:1: expression is not closed: missing '}}'");
  CHECK(syntax_error("{# x") == "1:1: comment is not closed: missing '#}'");
  CHECK(syntax_error("{{ x ! y }}") == "1:6: unexpected character '!'");
  CHECK(syntax_error("{{ 'a' }} {{ ) }}") == "1:14: expected an expression, found ')'");
  CHECK(syntax_error("{% if %}{% endif %}") == "1:7: expected an expression, found '%}'");
  CHECK(syntax_error("é {{ '\\0' }}") == "1:7: unsupported escape '\\0' in a string");
  // Found by fuzz_chat_template: an item index past 64 bits threw std::out_of_range.
  CHECK(syntax_error("{{ x.99999999999999999999 }}") == "1:6: integer out of range");
  CHECK(syntax_error("{{ 99999999999999999999 }}") == "1:4: integer out of range");
}

TEST_CASE("hostile templates hit a limit with a clear error instead of exhausting the machine") {
  CHECK(syntax_error("{{ " + std::string(200, '(') + "1" + std::string(200, ')') + " }}")
            .ends_with("template is nested too deeply"));
  std::string nested_ifs;
  for (int k = 0; k < 100; ++k)
    nested_ifs += "{% if true %}";
  CHECK(syntax_error(nested_ifs).ends_with("template is nested too deeply"));
  CHECK(render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}") ==
        "macro calls nest deeper than the limit of 64");
  RenderLimits small;
  small.max_iterations = 1000;
  small.max_output_bytes = 1000;
  small.max_bytes_built = 5000;
  // Depth is bounded, and so are calls: this would make 2^61 of them.
  CHECK(render_error("{% macro f(n) %}{% if n < 60 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}"
                     "{% endmacro %}{{ f(0) }}",
                     small) ==
        "the render exceeds the limit of 1000 loop iterations and macro calls");
  CHECK(render_error("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}",
                     small) ==
        "the render exceeds the limit of 1000 loop iterations and macro calls");
  CHECK(render_error("{% set ns = namespace(s='x') %}{% for i in range(200) %}"
                     "{% set ns.s = ns.s ~ 'xxxxxxxxx' %}{% endfor %}",
                     small) == "the render builds more than the limit of 5000 bytes of values");
  CHECK(render_error("{% for i in range(500) %}abc{% endfor %}", small) ==
        "the output exceeds the limit of 1000 bytes");
  CHECK(render_error("{{ 'x' * 100000000000 }}") ==
        "a value of 100000000000 bytes exceeds the limit of 67108864 bytes");
  CHECK(render_error("{{ range(100000000000) }}") ==
        "range of 100000000000 items is over the limit of 10000000");
}

}  // namespace
}  // namespace hearth::text::jinja
