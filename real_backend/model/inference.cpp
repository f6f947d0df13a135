#include "real_backend/model/inference.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace hearth::real {

void check_labels(const std::vector<std::vector<std::int32_t>>& labels) {
  if (labels.empty()) throw std::invalid_argument("classify needs at least one label");
  for (const auto& label : labels) {
    if (label.empty()) throw std::invalid_argument("a label has no tokens");
    for (std::int32_t t : label) {
      if (t < 0) throw std::invalid_argument(fmt::format("label token {} is negative", t));
    }
  }
}

void check_generate_options(const GenerateOptions& options, std::size_t inputs) {
  if (!(options.temperature >= 0)) throw std::invalid_argument("temperature must be >= 0");
  if (!(options.top_p > 0 && options.top_p <= 1)) {
    throw std::invalid_argument("top_p must be in (0, 1]");
  }
  if (options.temperature > 0 && options.seeds.size() != inputs) {
    throw std::invalid_argument(fmt::format(
        "sampling needs one seed per input: {} seeds, {} inputs", options.seeds.size(), inputs));
  }
}

int best_label(const std::vector<float>& scores) {
  return argmax_first(scores.data(), scores.size());
}

bool is_stop_token(const GenerateOptions& options, std::int32_t token) {
  return std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) !=
         options.stop_tokens.end();
}

std::string input_error(const std::vector<std::int32_t>& input, std::int64_t vocab,
                        std::int64_t context, std::int64_t extra) {
  if (input.empty()) return "empty input";
  for (std::size_t i = 0; i < input.size(); ++i) {
    if (input[i] < 0 || input[i] >= vocab) {
      return fmt::format("token {} at position {} is outside the vocabulary of {}", input[i], i,
                         vocab);
    }
  }
  auto length = static_cast<std::int64_t>(input.size());
  if (length + extra > context) {
    return fmt::format("{} tokens{} exceed the model's context of {}", length,
                       extra > 0 ? fmt::format(" and {} more", extra) : std::string(), context);
  }
  return "";
}

std::int32_t argmax_first(const float* values, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < n; ++i) {
    if (values[i] > values[best]) best = i;
  }
  return static_cast<std::int32_t>(best);
}

std::int32_t TokenSampler::next(const float* logits, std::size_t n, float temperature,
                                float top_p) {
  if (temperature <= 0) return argmax_first(logits, n);
  const double top = logits[argmax_first(logits, n)];
  std::vector<double> p(n);
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    p[i] = std::exp((logits[i] - top) / temperature);
    total += p[i];
  }
  // The most likely tokens first (ties by id, so that the order is the logits' alone), cut after
  // the first whose cumulative probability reaches top_p: at least one token stays.
  std::vector<std::int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::size_t kept = n;
  if (top_p < 1) {
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int32_t a, std::int32_t b) { return p[a] > p[b]; });
    double cumulative = 0;
    for (std::size_t i = 0; i < n; ++i) {
      cumulative += p[order[i]] / total;
      if (cumulative >= top_p) {
        kept = i + 1;
        break;
      }
    }
  }
  double kept_total = 0;
  for (std::size_t i = 0; i < kept; ++i)
    kept_total += p[order[i]];
  // 53 random bits: the same draw from the same seed on every platform.
  double u = static_cast<double>(engine_() >> 11) * 0x1.0p-53 * kept_total;
  for (std::size_t i = 0; i < kept; ++i) {
    u -= p[order[i]];
    if (u < 0) return order[i];
  }
  return order[kept - 1];
}

}  // namespace hearth::real
