#include "real_backend/model/llama_config.hpp"

#include <fmt/format.h>

#include <array>
#include <limits>
#include <nlohmann/json.hpp>

#include "policy/errors.hpp"

namespace hearth::real {

namespace {

using nlohmann::json;

struct ArchNames {
  LlamaArch arch;
  std::string_view name;        // ours, and Hugging Face's model_type
  std::string_view class_name;  // architectures[0]
};
constexpr std::array<ArchNames, 4> kArchs = {{
    {LlamaArch::llama, "llama", "LlamaForCausalLM"},
    {LlamaArch::mistral, "mistral", "MistralForCausalLM"},
    {LlamaArch::qwen2, "qwen2", "Qwen2ForCausalLM"},
    {LlamaArch::qwen3, "qwen3", "Qwen3ForCausalLM"},
}};

const ArchNames& names(LlamaArch a) {
  return kArchs[static_cast<std::size_t>(a)];
}

// Each size is at most this: far above any real model, and small enough that products of a few
// never overflow an int64.
constexpr std::int64_t kMaxDimension = std::int64_t{1} << 24;
// A hostile count would otherwise make a list of expected tensors as long as it says.
constexpr std::int64_t kMaxLayers = 4096;

class ConfigReader {
 public:
  ConfigReader(const json& j, const std::string& what) : j_(j), what_(what) {}

  InputError fail(const std::string& fault) const { return InputError(what_ + ": " + fault); }

  bool present(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  std::int64_t size(const char* key, std::optional<std::int64_t> fallback = std::nullopt) const {
    if (!present(key)) {
      if (fallback) return *fallback;
      throw fail(fmt::format("{} is missing", key));
    }
    const json& v = j_.at(key);
    if (!v.is_number_integer() || v.get<std::int64_t>() <= 0 ||
        v.get<std::int64_t>() > kMaxDimension) {
      throw fail(
          fmt::format("{} is {}, not an integer from 1 to {}", key, v.dump(), kMaxDimension));
    }
    return v.get<std::int64_t>();
  }

  double positive(const char* key, double fallback) const {
    if (!present(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_number() || !(v.get<double>() > 0) ||
        v.get<double>() == std::numeric_limits<double>::infinity()) {
      throw fail(fmt::format("{} is {}, not a positive number", key, v.dump()));
    }
    return v.get<double>();
  }

  bool flag(const char* key, bool fallback) const {
    if (!present(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_boolean()) throw fail(fmt::format("{} is {}, not true or false", key, v.dump()));
    return v.get<bool>();
  }

  std::string text(const char* key, std::string fallback) const {
    if (!present(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_string()) throw fail(fmt::format("{} is {}, not a string", key, v.dump()));
    return v.get<std::string>();
  }

  // A token id: an integer in [0, vocab_size).
  std::int32_t token(const json& v, const char* key, std::int64_t vocab_size) const {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 ||
        v.get<std::int64_t>() >= vocab_size) {
      throw fail(
          fmt::format("{} {} is not a token id below vocab_size {}", key, v.dump(), vocab_size));
    }
    return static_cast<std::int32_t>(v.get<std::int64_t>());
  }

 private:
  const json& j_;
  const std::string& what_;
};

RopeScaling parse_rope_scaling(const json& j, const ConfigReader& config) {
  RopeScaling r;
  if (j.is_null()) return r;
  if (!j.is_object()) throw config.fail("rope_scaling is not an object");
  std::string type;
  if (j.contains("rope_type") && j["rope_type"].is_string())
    type = j["rope_type"];
  else if (j.contains("type") && j["type"].is_string())
    type = j["type"];
  if (type == "default") return r;
  if (type != "llama3") {
    throw config.fail(
        fmt::format("rope_scaling type '{}' is not supported (llama3 or none)", type));
  }
  auto number = [&](const char* key) {
    if (!j.contains(key) || !j[key].is_number() || !(j[key].get<double>() > 0)) {
      throw config.fail(fmt::format("rope_scaling {} is missing or not a positive number", key));
    }
    return j[key].get<double>();
  };
  r.llama3 = true;
  r.factor = number("factor");
  r.low_freq_factor = number("low_freq_factor");
  r.high_freq_factor = number("high_freq_factor");
  const double original = number("original_max_position_embeddings");
  if (r.high_freq_factor <= r.low_freq_factor) {
    throw config.fail("rope_scaling high_freq_factor must exceed low_freq_factor");
  }
  if (original != static_cast<double>(static_cast<std::int64_t>(original)) ||
      original > static_cast<double>(kMaxDimension)) {
    throw config.fail("rope_scaling original_max_position_embeddings is not a sensible integer");
  }
  r.original_max_position_embeddings = static_cast<std::int64_t>(original);
  return r;
}

DType parse_torch_dtype(const std::string& name, const ConfigReader& config) {
  if (name == "float32") return DType::f32;
  if (name == "bfloat16") return DType::bf16;
  if (name == "float16") return DType::f16;
  throw config.fail(
      fmt::format("torch_dtype '{}' is not supported (float32, bfloat16 or float16)", name));
}

std::string_view torch_dtype_name(DType d) {
  switch (d) {
    case DType::f32:
      return "float32";
    case DType::bf16:
      return "bfloat16";
    case DType::f16:
      return "float16";
  }
  return "?";
}

}  // namespace

std::string_view to_string(LlamaArch a) {
  return names(a).name;
}

LlamaArch parse_llama_arch(std::string_view name) {
  for (const ArchNames& n : kArchs)
    if (n.name == name) return n.arch;
  throw InputError(fmt::format("unknown architecture '{}' (llama, mistral, qwen2 or qwen3)", name));
}

std::string_view architecture_name(LlamaArch a) {
  return names(a).class_name;
}

LlamaConfig parse_llama_config(std::string_view json_text, const std::string& what) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw InputError(fmt::format("{}: not JSON: {}", what, e.what()));
  }
  if (!j.is_object()) throw InputError(what + ": not a JSON object");
  ConfigReader r(j, what);
  LlamaConfig c;

  if (!j.contains("architectures") || !j["architectures"].is_array() ||
      j["architectures"].empty() || !j["architectures"][0].is_string()) {
    throw r.fail("architectures is missing");
  }
  const std::string class_name = j["architectures"][0];
  const ArchNames* arch = nullptr;
  for (const ArchNames& n : kArchs)
    if (n.class_name == class_name) arch = &n;
  if (!arch) {
    throw r.fail(
        fmt::format("architecture {} is not supported (LlamaForCausalLM, MistralForCausalLM, "
                    "Qwen2ForCausalLM or Qwen3ForCausalLM)",
                    class_name));
  }
  c.arch = arch->arch;
  const std::string model_type = r.text("model_type", std::string(arch->name));
  if (model_type != arch->name) {
    throw r.fail(
        fmt::format("model_type {} does not match architecture {}", model_type, class_name));
  }
  const std::string act = r.text("hidden_act", "silu");
  if (act != "silu") throw r.fail(fmt::format("hidden_act {} is not supported (silu)", act));

  c.vocab_size = r.size("vocab_size");
  c.hidden_size = r.size("hidden_size");
  c.intermediate_size = r.size("intermediate_size");
  c.num_hidden_layers = r.size("num_hidden_layers");
  if (c.num_hidden_layers > kMaxLayers) {
    throw r.fail(
        fmt::format("num_hidden_layers {} is more than {}", c.num_hidden_layers, kMaxLayers));
  }
  c.num_attention_heads = r.size("num_attention_heads");
  c.num_key_value_heads = r.size("num_key_value_heads", c.num_attention_heads);
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    throw r.fail(fmt::format("num_key_value_heads {} does not divide num_attention_heads {}",
                             c.num_key_value_heads, c.num_attention_heads));
  }
  if (r.present("head_dim")) {
    c.head_dim = r.size("head_dim");
  } else if (c.arch == LlamaArch::qwen3) {
    c.head_dim = 128;  // Qwen3Config's default
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      throw r.fail(fmt::format("num_attention_heads {} does not divide hidden_size {}",
                               c.num_attention_heads, c.hidden_size));
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0)
    throw r.fail(fmt::format("head_dim {} is odd: rotary needs pairs", c.head_dim));
  c.max_position_embeddings = r.size("max_position_embeddings");
  c.rms_norm_eps = r.positive("rms_norm_eps", 1e-6);
  c.rope_theta = r.positive("rope_theta", 10000);
  if (j.contains("rope_scaling")) c.rope_scaling = parse_rope_scaling(j["rope_scaling"], r);
  c.tie_word_embeddings = r.flag("tie_word_embeddings", false);

  switch (c.arch) {
    case LlamaArch::llama:
      if (r.flag("mlp_bias", false)) throw r.fail("mlp_bias true is not supported");
      c.attention_bias = c.attention_output_bias = r.flag("attention_bias", false);
      break;
    case LlamaArch::qwen3:
      c.attention_bias = c.attention_output_bias = r.flag("attention_bias", false);
      c.qk_norm = true;
      break;
    case LlamaArch::qwen2:
      c.attention_bias = true;  // Qwen2's q/k/v always have biases; its config says nothing
      break;
    case LlamaArch::mistral:
      break;
  }
  if (c.arch == LlamaArch::mistral) {
    if (r.present("sliding_window")) c.sliding_window = r.size("sliding_window");
  } else if ((c.arch == LlamaArch::qwen2 || c.arch == LlamaArch::qwen3) &&
             r.flag("use_sliding_window", false)) {
    throw r.fail("use_sliding_window true is not supported");
  }

  // Newer transformers write "dtype", older "torch_dtype".
  const std::string dtype = r.text("torch_dtype", r.text("dtype", "float32"));
  c.dtype = parse_torch_dtype(dtype, r);

  if (r.present("bos_token_id"))
    c.bos_token_id = r.token(j["bos_token_id"], "bos_token_id", c.vocab_size);
  if (r.present("eos_token_id")) {
    const json& eos = j["eos_token_id"];
    if (eos.is_array()) {
      for (const json& id : eos)
        c.eos_token_ids.push_back(r.token(id, "eos_token_id", c.vocab_size));
    } else {
      c.eos_token_ids.push_back(r.token(eos, "eos_token_id", c.vocab_size));
    }
  }
  return c;
}

std::string llama_config_json(const LlamaConfig& c) {
  nlohmann::ordered_json j;
  j["architectures"] = {architecture_name(c.arch)};
  if (c.arch == LlamaArch::llama || c.arch == LlamaArch::qwen3) {
    j["attention_bias"] = c.attention_bias;
  }
  j["attention_dropout"] = 0.0;
  if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
  if (c.eos_token_ids.size() == 1)
    j["eos_token_id"] = c.eos_token_ids[0];
  else if (!c.eos_token_ids.empty())
    j["eos_token_id"] = c.eos_token_ids;
  j["head_dim"] = c.head_dim;
  j["hidden_act"] = "silu";
  j["hidden_size"] = c.hidden_size;
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = c.intermediate_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  if (c.arch == LlamaArch::llama) j["mlp_bias"] = false;
  if (c.arch == LlamaArch::qwen2 || c.arch == LlamaArch::qwen3) {
    j["max_window_layers"] = c.num_hidden_layers;
  }
  j["model_type"] = to_string(c.arch);
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["rms_norm_eps"] = c.rms_norm_eps;
  if (c.rope_scaling.llama3) {
    j["rope_scaling"] = {
        {"factor", c.rope_scaling.factor},
        {"high_freq_factor", c.rope_scaling.high_freq_factor},
        {"low_freq_factor", c.rope_scaling.low_freq_factor},
        {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings},
        {"rope_type", "llama3"}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["rope_theta"] = c.rope_theta;
  if (c.arch == LlamaArch::mistral) {
    j["sliding_window"] = c.sliding_window ? nlohmann::ordered_json(*c.sliding_window) : nullptr;
  } else if (c.arch == LlamaArch::qwen2 || c.arch == LlamaArch::qwen3) {
    j["sliding_window"] = nullptr;
    j["use_sliding_window"] = false;
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["torch_dtype"] = torch_dtype_name(c.dtype);
  j["transformers_version"] = "4.46.0";
  j["use_cache"] = true;
  j["vocab_size"] = c.vocab_size;
  return j.dump(2) + "\n";
}

std::vector<ExpectedTensor> expected_tensors(const LlamaConfig& c) {
  const std::int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                     kv = c.num_key_value_heads * c.head_dim, f = c.intermediate_size;
  std::vector<ExpectedTensor> out;
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, h}});
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    out.push_back({p + "input_layernorm.weight", {h}});
    out.push_back({p + "self_attn.q_proj.weight", {q, h}});
    out.push_back({p + "self_attn.k_proj.weight", {kv, h}});
    out.push_back({p + "self_attn.v_proj.weight", {kv, h}});
    out.push_back({p + "self_attn.o_proj.weight", {h, q}});
    if (c.attention_bias) {
      out.push_back({p + "self_attn.q_proj.bias", {q}});
      out.push_back({p + "self_attn.k_proj.bias", {kv}});
      out.push_back({p + "self_attn.v_proj.bias", {kv}});
    }
    if (c.attention_output_bias) out.push_back({p + "self_attn.o_proj.bias", {h}});
    if (c.qk_norm) {
      out.push_back({p + "self_attn.q_norm.weight", {c.head_dim}});
      out.push_back({p + "self_attn.k_norm.weight", {c.head_dim}});
    }
    out.push_back({p + "post_attention_layernorm.weight", {h}});
    out.push_back({p + "mlp.gate_proj.weight", {f, h}});
    out.push_back({p + "mlp.up_proj.weight", {f, h}});
    out.push_back({p + "mlp.down_proj.weight", {h, f}});
  }
  out.push_back({"model.norm.weight", {h}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, h}});
  return out;
}

}  // namespace hearth::real
