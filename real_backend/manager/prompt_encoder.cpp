#include "real_backend/manager/prompt_encoder.hpp"

#include "real_backend/manager/job_file.hpp"
#include "real_backend/text/chat_template.hpp"
#include "real_backend/text/tokenizer.hpp"

namespace hearth::real {

PromptEncoder::PromptEncoder(const JobContext& context, const PromptEncoder* same_model)
    : prompt_(context.prompt), chat_(context.chat), system_(context.system) {
  if (context.format != ModelFormat::hf) return;
  if (same_model) {
    tokenizer_ = same_model->tokenizer_;
    if (chat_) chat_template_ = same_model->chat_template_;
  }
  if (!tokenizer_) {
    tokenizer_ = std::make_shared<const text::Tokenizer>(
        text::Tokenizer::from_file(context.model / "tokenizer.json"));
  }
  if (chat_ && !chat_template_) {
    chat_template_ = std::make_shared<const text::ChatTemplate>(
        text::ChatTemplate::from_file(context.model / "tokenizer_config.json"));
  }
}

PromptEncoder::~PromptEncoder() = default;

std::string PromptEncoder::text(const DatasetRow& row, const std::string& source) const {
  std::string prompt = prompt_.render(row, source);
  if (!chat_template_) return prompt;
  std::vector<text::ChatMessage> messages;
  if (system_) messages.push_back({"system", *system_});
  messages.push_back({"user", std::move(prompt)});
  return chat_template_->render(messages, /*add_generation_prompt=*/true);
}

std::vector<std::int32_t> PromptEncoder::encode(const DatasetRow& row,
                                                const std::string& source) const {
  if (!tokenizer_) return prompt_.tokens(row, source);
  // The chat template writes the special tokens itself (Llama 3's <|begin_of_text|>).
  return tokenizer_->encode(text(row, source), /*add_special_tokens=*/!chat_template_);
}

std::vector<std::int32_t> PromptEncoder::continuation(std::string_view text) const {
  return tokenizer_->encode(text, /*add_special_tokens=*/false);
}

}  // namespace hearth::real
