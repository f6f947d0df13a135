#pragma once
// The chat template of a Hugging Face tokenizer_config.json, rendered as transformers'
// apply_chat_template(messages, tokenize=False, add_generation_prompt=...) renders it: the
// template's globals are messages, tools and documents (none), add_generation_prompt, the special
// tokens that are set (bos_token, eos_token, unk_token, pad_token, additional_special_tokens),
// the caller's extra variables, and the functions raise_exception and strftime_now.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::text {

struct ChatMessage {
  std::string role;
  std::string content;
};

class ChatTemplate {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  // From tokenizer_config.json's text: its chat_template (a string, or a list of {name, template}
  // where "default" is used) and its special tokens (strings, AddedToken objects {"content": ...},
  // or null). Throws hearth::InputError if there is no template or it does not parse:
  // "tokenizer_config.json: chat_template line 3 column 14: unknown tag 'macroo'".
  static ChatTemplate from_tokenizer_config(std::string_view json_text,
                                            std::string_view origin = "tokenizer_config.json");
  // The same from a file; its path is the origin of errors.
  static ChatTemplate from_file(const std::filesystem::path& tokenizer_config);

  // The prompt. Throws InputError for the template's raise_exception() (with its message) and for
  // errors while rendering (with where in the template).
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  // The same with extra template variables (e.g. {"enable_thinking": false}) given as the text of
  // a JSON object; they replace variables of the same name.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     std::string_view extra_variables_json) const;

  // The clock of strftime_now (local time, as Python's datetime.now()); the system clock unless
  // set, for tests.
  void set_clock(Clock clock);

 private:
  struct Impl;
  explicit ChatTemplate(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
  Clock clock_;
};

}  // namespace hearth::text
