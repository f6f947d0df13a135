#pragma once
// What every LoadedModel (model_runtime.hpp) does alike, without libtorch: checking a call's
// arguments, picking the best label, and choosing the next token from a row of logits: greedy
// (argmax, the first of equal maxima), or sampling at a temperature from the smallest set of most
// likely tokens whose probability reaches top_p, with a generator of the input's own, so that a
// sample depends on its input's logits and seed only, never on the batch it ran in.

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "real_backend/model/model_runtime.hpp"

namespace hearth::real {

// Throws std::invalid_argument unless there is a label, none is empty and no token is negative.
void check_labels(const std::vector<std::vector<std::int32_t>>& labels);
// Throws std::invalid_argument for a negative temperature, top_p outside (0, 1], or sampling
// without one seed per input.
void check_generate_options(const GenerateOptions& options, std::size_t inputs);
// The index of the highest score, the first on ties. Requires scores.
int best_label(const std::vector<float>& scores);
bool is_stop_token(const GenerateOptions& options, std::int32_t token);
// Why `input` cannot run on a model of `vocab` tokens and `context` positions when `extra` more
// tokens follow it (label tokens, new tokens), or "" if it can.
std::string input_error(const std::vector<std::int32_t>& input, std::int64_t vocab,
                        std::int64_t context, std::int64_t extra);

// Index of the largest of `n` values, the first on ties. Requires n > 0.
std::int32_t argmax_first(const float* values, std::size_t n);

class TokenSampler {
 public:
  explicit TokenSampler(std::uint64_t seed) : engine_(seed) {}
  // The next token for `logits` (n of them): argmax_first when temperature is 0, else a draw from
  // softmax(logits / temperature) cut to top_p. Requires n > 0, temperature >= 0, top_p in (0, 1].
  std::int32_t next(const float* logits, std::size_t n, float temperature, float top_p);

 private:
  std::mt19937_64 engine_;
};

}  // namespace hearth::real
