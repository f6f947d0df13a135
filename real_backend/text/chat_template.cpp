#include "real_backend/text/chat_template.hpp"

#include <fmt/format.h>

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "policy/errors.hpp"
#include "real_backend/text/jinja.hpp"

namespace hearth::text {

namespace {

using nlohmann::json;

jinja::Value to_value(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return jinja::Value::none();
    case json::value_t::boolean:
      return jinja::Value::boolean(j.get<bool>());
    case json::value_t::number_integer:
      return jinja::Value::integer(j.get<std::int64_t>());
    case json::value_t::number_unsigned:
      if (j.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
        return jinja::Value::floating(j.get<double>());
      }
      return jinja::Value::integer(static_cast<std::int64_t>(j.get<std::uint64_t>()));
    case json::value_t::number_float:
      return jinja::Value::floating(j.get<double>());
    case json::value_t::string:
      return jinja::Value::string(j.get<std::string>());
    case json::value_t::array: {
      jinja::List items;
      for (const auto& item : j)
        items.push_back(to_value(item));
      return jinja::Value::list(std::move(items));
    }
    case json::value_t::object: {
      jinja::Dict entries;
      for (const auto& [key, item] : j.items())
        entries.set(key, to_value(item));
      return jinja::Value::dict(std::move(entries));
    }
    default:
      return jinja::Value::none();
  }
}

// A special token as transformers' special_tokens_map holds it: the string, or an AddedToken's
// content; nullopt where it is not set.
std::optional<std::string> token_text(const json& config, const char* name) {
  auto it = config.find(name);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return std::nullopt;
}

std::string strftime_local(std::chrono::system_clock::time_point now, const std::string& format) {
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm local{};
  localtime_r(&t, &local);
  std::string out(format.size() * 4 + 64, '\0');
  std::size_t n = std::strftime(out.data(), out.size(), format.c_str(), &local);
  if (n == 0 && !format.empty())
    throw jinja::RenderError("strftime_now: cannot format '" + format + "'");
  out.resize(n);
  return out;
}

}  // namespace

struct ChatTemplate::Impl {
  std::string origin;
  jinja::Template program;
  jinja::Dict special_tokens;
};

ChatTemplate::ChatTemplate(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

ChatTemplate ChatTemplate::from_tokenizer_config(std::string_view json_text,
                                                 std::string_view origin) {
  json config;
  try {
    config = json::parse(json_text);
  } catch (const json::exception& e) {
    throw InputError(fmt::format("{}: not JSON: {}", origin, e.what()));
  }
  if (!config.is_object()) throw InputError(fmt::format("{}: not a JSON object", origin));
  auto it = config.find("chat_template");
  std::string source;
  if (it == config.end() || it->is_null()) {
    throw InputError(fmt::format("{}: no chat_template", origin));
  } else if (it->is_string()) {
    source = it->get<std::string>();
  } else if (it->is_array()) {
    bool found = false;
    for (const auto& entry : *it) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        source = entry["template"].get<std::string>();
        found = true;
      }
    }
    if (!found)
      throw InputError(fmt::format("{}: chat_template has no template named \"default\"", origin));
  } else {
    throw InputError(fmt::format("{}: chat_template is neither a string nor a list", origin));
  }
  jinja::Dict special_tokens;
  for (const char* name : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    if (auto text = token_text(config, name)) special_tokens.set(name, jinja::Value::string(*text));
  }
  auto additional = config.find("additional_special_tokens");
  if (additional != config.end() && additional->is_array() && !additional->empty()) {
    jinja::List tokens;
    for (const auto& token : *additional) {
      if (token.is_string()) tokens.push_back(jinja::Value::string(token.get<std::string>()));
      if (token.is_object() && token.contains("content") && token["content"].is_string()) {
        tokens.push_back(jinja::Value::string(token["content"].get<std::string>()));
      }
    }
    special_tokens.set("additional_special_tokens", jinja::Value::list(std::move(tokens)));
  }
  try {
    return ChatTemplate(std::make_shared<const Impl>(
        Impl{std::string(origin), jinja::Template(source), std::move(special_tokens)}));
  } catch (const jinja::SyntaxError& e) {
    throw InputError(fmt::format("{}: chat_template {}", origin, e.what()));
  }
}

ChatTemplate ChatTemplate::from_file(const std::filesystem::path& tokenizer_config) {
  std::ifstream in(tokenizer_config, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open", tokenizer_config.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return from_tokenizer_config(text.str(), tokenizer_config.string());
}

void ChatTemplate::set_clock(Clock clock) {
  clock_ = std::move(clock);
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt) const {
  return render(messages, add_generation_prompt, "{}");
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt,
                                 std::string_view extra_variables_json) const {
  jinja::Dict variables;
  jinja::List list;
  list.reserve(messages.size());
  for (const auto& m : messages) {
    jinja::Dict message;
    message.set("role", jinja::Value::string(m.role));
    message.set("content", jinja::Value::string(m.content));
    list.push_back(jinja::Value::dict(std::move(message)));
  }
  variables.set("messages", jinja::Value::list(std::move(list)));
  variables.set("tools", jinja::Value::none());
  variables.set("documents", jinja::Value::none());
  variables.set("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
  for (const auto& [name, value] : impl_->special_tokens.items())
    variables.set(name, value);
  Clock clock = clock_ ? clock_ : [] { return std::chrono::system_clock::now(); };
  variables.set(
      "strftime_now", jinja::Value::function([clock](const jinja::CallArgs& args) {
        if (args.positional.size() != 1 || !args.positional[0].is_string()) {
          throw jinja::RenderError("strftime_now takes one format string");
        }
        return jinja::Value::string(strftime_local(clock(), args.positional[0].as_string()));
      }));
  if (extra_variables_json != "{}") {
    json extra;
    try {
      extra = json::parse(extra_variables_json);
    } catch (const json::exception& e) {
      throw InputError(fmt::format("extra chat template variables: not JSON: {}", e.what()));
    }
    if (!extra.is_object()) throw InputError("extra chat template variables: not a JSON object");
    for (const auto& [name, value] : extra.items())
      variables.set(name, to_value(value));
  }
  try {
    return impl_->program.render(variables);
  } catch (const jinja::RenderError& e) {
    if (e.raised())
      throw InputError(fmt::format("{}: chat_template raised: {}", impl_->origin, e.what()));
    throw InputError(fmt::format("{}: chat_template line {} column {}: {}", impl_->origin, e.line(),
                                 e.column(), e.what()));
  }
}

}  // namespace hearth::text
