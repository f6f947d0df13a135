#include "real_backend/worker/inference.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "real_backend/text/tokenizer.hpp"

namespace hearth::real {

namespace {

using nlohmann::ordered_json;

std::string dump(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

std::string error_json(const std::string& what) {
  return dump(ordered_json{{"error", what}});
}

std::string text_of(const text::Tokenizer* tokenizer, const std::vector<std::int32_t>& tokens) {
  if (tokenizer) return tokenizer->decode(tokens, {.skip_special_tokens = true});
  std::string text;
  for (std::int32_t t : tokens) {
    if (t >= 0 && t < 256) text += static_cast<char>(t);
  }
  return text;
}

// Where the first stop string starts in `text`, if one is there.
std::optional<std::size_t> first_stop(const std::string& text,
                                      const std::vector<std::string>& stops) {
  std::optional<std::size_t> first;
  for (const std::string& s : stops) {
    std::size_t at = text.find(s);
    if (at != std::string::npos && (!first || at < *first)) first = at;
  }
  return first;
}

std::vector<std::string> classify(const InferenceSettings& s, LoadedModel& model, const Task& task,
                                  const CancelCheck& cancelled) {
  std::vector<InferenceResult> results = model.classify(task.inputs, s.label_tokens, cancelled);
  std::vector<std::string> out;
  out.reserve(results.size());
  for (const InferenceResult& r : results) {
    if (!r.error.empty()) {
      out.push_back(error_json(r.error));
      continue;
    }
    ordered_json scores = ordered_json::object();
    for (std::size_t i = 0; i < r.scores.size() && i < s.labels.size(); ++i)
      scores[s.labels[i]] = r.scores[i];
    out.push_back(dump(ordered_json{{"label", s.labels.at(static_cast<std::size_t>(r.label))},
                                    {"scores", scores}}));
  }
  return out;
}

std::vector<std::string> generate(const InferenceSettings& s, LoadedModel& model,
                                  const text::Tokenizer* tokenizer, const Task& task,
                                  const CancelCheck& cancelled) {
  GenerateOptions options;
  options.max_new_tokens = s.max_new_tokens;
  options.stop_tokens = s.stop_tokens;
  options.temperature = s.temperature;
  options.top_p = s.top_p;
  options.seeds = task.seeds;
  StopCheck stop;
  if (!s.stop_strings.empty()) {
    stop = [&](std::size_t, const std::vector<std::int32_t>& tokens) {
      try {
        return first_stop(text_of(tokenizer, tokens), s.stop_strings).has_value();
      } catch (const std::exception&) {
        return false;  // tokens the tokenizer cannot decode: the result below says so
      }
    };
  }
  std::vector<InferenceResult> results = model.generate(task.inputs, options, stop, cancelled);
  std::vector<std::string> out;
  out.reserve(results.size());
  for (const InferenceResult& r : results) {
    if (!r.error.empty()) {
      out.push_back(error_json(r.error));
      continue;
    }
    std::string text;
    try {
      text = text_of(tokenizer, r.tokens);
    } catch (const std::exception& e) {
      out.push_back(error_json(e.what()));
      continue;
    }
    bool stopped = !r.tokens.empty() && std::find(s.stop_tokens.begin(), s.stop_tokens.end(),
                                                  r.tokens.back()) != s.stop_tokens.end();
    if (std::optional<std::size_t> at = first_stop(text, s.stop_strings)) {
      text.resize(*at);
      stopped = true;
    }
    out.push_back(dump(ordered_json{
        {"text", text}, {"tokens", r.tokens}, {"finish", stopped ? "stop" : "length"}}));
  }
  return out;
}

}  // namespace

std::string task_problem(const InferenceSettings& s, const Task& task) {
  if (!task.seeds.empty() && task.seeds.size() != task.inputs.size()) {
    return fmt::format("{} seeds for {} inputs", task.seeds.size(), task.inputs.size());
  }
  if (s.task == TaskKind::generate) {
    if (!std::isfinite(s.temperature) || s.temperature < 0)
      return fmt::format("temperature {} is not a number >= 0", s.temperature);
    if (!(s.top_p > 0 && s.top_p <= 1)) return fmt::format("top_p {} is not in (0, 1]", s.top_p);
    if (s.temperature > 0 && task.seeds.size() != task.inputs.size())
      return "sampling needs a seed per input";
  }
  if (s.task == TaskKind::classify) {
    if (s.labels.empty() || s.labels.size() != s.label_tokens.size())
      return fmt::format("{} labels with {} token lists", s.labels.size(), s.label_tokens.size());
    for (const auto& l : s.label_tokens) {
      if (l.empty()) return "a label without tokens";
    }
  }
  return {};
}

std::vector<std::string> run_inferences(const InferenceSettings& s, LoadedModel* model,
                                        const text::Tokenizer* tokenizer, const Task& task,
                                        const CancelCheck& cancelled) {
  if (s.task == TaskKind::noop) return std::vector<std::string>(task.inputs.size(), "null");
  if (!model) {
    return std::vector<std::string>(task.inputs.size(), error_json("the context has no model"));
  }
  if (s.task == TaskKind::classify) return classify(s, *model, task, cancelled);
  return generate(s, *model, tokenizer, task, cancelled);
}

}  // namespace hearth::real
