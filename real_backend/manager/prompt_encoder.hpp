#pragma once
// How a context's dataset rows become the token ids its model reads. A model file reads bytes:
// the rendered template's UTF-8 bytes, or the rows' own input_ids. A Hugging Face model directory
// brings its tokenizer (tokenizer.json) and, for chat = true, its chat template
// (tokenizer_config.json): the rendered template becomes the user's message (after an optional
// system message), the template adds the generation prompt, and the tokenizer encodes the whole
// text without adding special tokens again, as Hugging Face's apply_chat_template does. Without
// chat the tokenizer's post-processor adds what the model expects (Llama's BOS).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "real_backend/manager/dataset.hpp"

namespace hearth::text {
class Tokenizer;
class ChatTemplate;
}  // namespace hearth::text

namespace hearth::real {

struct JobContext;

class PromptEncoder {
 public:
  // Reads the model directory's tokenizer (and chat template) when the context has one, or takes
  // them from `same_model`, an encoder of another context of the same model. Throws InputError
  // naming the file and the fault.
  explicit PromptEncoder(const JobContext& context, const PromptEncoder* same_model = nullptr);
  ~PromptEncoder();
  PromptEncoder(const PromptEncoder&) = delete;
  PromptEncoder& operator=(const PromptEncoder&) = delete;

  // The prompt as text, as the tokenizer will see it (chat template applied). Throws InputError
  // for a row the template cannot fill. Requires a template.
  std::string text(const DatasetRow& row, const std::string& source) const;
  // The row's token ids. Throws InputError as text() does.
  std::vector<std::int32_t> encode(const DatasetRow& row, const std::string& source) const;
  // Ids of text that follows a prompt (a label): no special tokens. Requires a tokenizer.
  std::vector<std::int32_t> continuation(std::string_view text) const;
  bool has_tokenizer() const { return tokenizer_ != nullptr; }

 private:
  PromptTemplate prompt_;
  bool chat_ = false;
  std::optional<std::string> system_;
  std::shared_ptr<const text::Tokenizer> tokenizer_;
  std::shared_ptr<const text::ChatTemplate> chat_template_;
};

}  // namespace hearth::real
