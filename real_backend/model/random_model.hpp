#pragma once
// A Llama-family model directory with seeded random weights (`hearth model init`): test models
// of any shape, in any of the four architectures, whose numbers a bug cannot hide in. Matrices
// are normal(0, 0.02)-like, norm weights 1 plus noise (so that a missing or misplaced norm
// shows), biases small but not zero. Each value depends only on the seed, the tensor's name and
// its index, so that any thread can make any part, in any order.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "real_backend/model/llama_config.hpp"

namespace hearth::real {

// The value of element `index` of tensor `name`, before rounding to the config's dtype.
float random_weight(std::uint64_t seed, std::string_view name, std::uint64_t index);

struct RandomModelStats {
  std::int64_t parameters = 0;
  std::uint64_t weight_bytes = 0;
  int weight_files = 0;
};
// Writes config.json, generation_config.json and the weights of `config` into `dir`, which must
// exist: model.safetensors, or, with shard_bytes > 0, shards of at most shard_bytes each (a tensor
// larger goes alone) named by model.safetensors.index.json. Tensors are made `threads` at a time
// and one at a time in memory. Throws std::runtime_error if a file cannot be written.
RandomModelStats write_random_model(const LlamaConfig& config, std::uint64_t seed,
                                    std::uint64_t shard_bytes, int threads,
                                    const std::filesystem::path& dir);

// What a tokenizer.json says about the ids a model needs: its size (the highest id of its vocab
// and added tokens, plus one) and its bos and eos ids. These come from tokenizer_config.json's
// bos_token and eos_token when given (its text, may be empty), else from special tokens with
// well-known names (</s>, <|endoftext|>, ...). Throws InputError naming `what`.
struct TokenizerFacts {
  std::int64_t size = 0;
  std::optional<std::int32_t> bos_token_id;
  std::optional<std::int32_t> eos_token_id;
};
TokenizerFacts read_tokenizer_facts(std::string_view tokenizer_json,
                                    std::string_view tokenizer_config_json,
                                    const std::string& what);

}  // namespace hearth::real
