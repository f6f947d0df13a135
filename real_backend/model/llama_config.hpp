#pragma once
// A Llama-family checkpoint's config.json: LlamaForCausalLM (Llama 2, Llama 3.x with its rope
// scaling, SmolLM2), MistralForCausalLM, Qwen2ForCausalLM (q/k/v biases) and Qwen3ForCausalLM
// (q/k RMS norms per head). Anything else is refused by name.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "real_backend/model/raw_model.hpp"

namespace hearth::real {

enum class LlamaArch { llama, mistral, qwen2, qwen3 };
std::string_view to_string(LlamaArch a);  // "llama", "mistral", "qwen2", "qwen3"
// "llama" etc.; throws InputError otherwise.
LlamaArch parse_llama_arch(std::string_view name);
// The Hugging Face class name: LlamaForCausalLM, MistralForCausalLM, ...
std::string_view architecture_name(LlamaArch a);

// rope_scaling: none, or Llama 3.1's "llama3" (frequencies below the low band divided by factor,
// a smooth blend between the bands). Other types are refused by name.
struct RopeScaling {
  bool llama3 = false;
  double factor = 1;
  double low_freq_factor = 1;
  double high_freq_factor = 4;
  std::int64_t original_max_position_embeddings = 8192;
};

struct LlamaConfig {
  LlamaArch arch = LlamaArch::llama;
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;  // GQA: divides num_attention_heads
  std::int64_t head_dim = 0;             // hidden_size / num_attention_heads unless given
  std::int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections have biases (Qwen2)
  // o_proj has a bias too: Llama and Qwen3 with attention_bias true (their attention_bias covers
  // all four projections; Qwen2's only q/k/v).
  bool attention_output_bias = false;
  bool qk_norm = false;  // RMS norm of each head's q and k before rope (Qwen3)
  std::optional<std::int64_t> sliding_window;  // Mistral; null: full attention
  DType dtype = DType::f32;                    // torch_dtype
  std::optional<std::int32_t> bos_token_id;
  std::vector<std::int32_t> eos_token_ids;  // an int or a list in the file
};

// Throws InputError("config.json: ...") for what is missing, wrong, inconsistent (heads not
// dividing, sizes not positive) or unsupported (by name: architecture, rope_scaling type,
// hidden_act other than silu, ...).
LlamaConfig parse_llama_config(std::string_view json_text, const std::string& what = "config.json");
// config.json as Hugging Face writes it for this architecture.
std::string llama_config_json(const LlamaConfig& config);

// The tensors a checkpoint of this config holds, by Hugging Face name
// (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, ..., lm_head.weight unless
// tied), with their shapes.
struct ExpectedTensor {
  std::string name;
  std::vector<std::int64_t> shape;
};
std::vector<ExpectedTensor> expected_tensors(const LlamaConfig& config);

}  // namespace hearth::real
