#include "real_backend/model/random_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "os/atomic_file.hpp"
#include "policy/errors.hpp"
#include "real_backend/model/safetensors.hpp"

namespace hearth::real {

namespace {

using nlohmann::json;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::uint64_t tensor_key(std::uint64_t seed, std::string_view name) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (char c : name)
    h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return splitmix64(seed) ^ h;
}

// Mean 0, deviation 1, within +-3.46: the sum of four uniform 16-bit parts of one random word
// (Irwin-Hall), as normal as a test needs and a few instructions per value.
float normalish(std::uint64_t key, std::uint64_t index) {
  std::uint64_t r = splitmix64(key + index);
  float sum =
      static_cast<float>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
  return (sum - 131070.0f) / 37837.2f;  // 4 x 65535 / 2; 65536 x sqrt(4 / 12)
}

struct Scale {
  float mean;
  float deviation;
};
Scale scale_of(std::string_view name) {
  if (name.ends_with("norm.weight")) return {1.0f, 0.1f};
  if (name.ends_with(".bias")) return {0.0f, 0.05f};
  return {0.0f, 0.02f};
}

void fill_tensor(std::uint64_t seed, const std::string& name, DType dtype, std::uint64_t elements,
                 int threads, char* out) {
  const std::uint64_t key = tensor_key(seed, name);
  const Scale s = scale_of(name);
  auto make = [&](std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t i = from; i < to; ++i) {
      float v = s.mean + s.deviation * normalish(key, i);
      if (dtype == DType::f32) {
        std::memcpy(out + 4 * i, &v, 4);
      } else {
        std::uint16_t h = dtype == DType::bf16 ? to_bf16(v) : to_f16(v);
        std::memcpy(out + 2 * i, &h, 2);
      }
    }
  };
  const std::uint64_t parts = std::clamp<std::uint64_t>(
      elements >> 16, 1, static_cast<std::uint64_t>(std::max(threads, 1)));
  std::vector<std::jthread> workers;
  const std::uint64_t per_part = (elements + parts - 1) / parts;
  for (std::uint64_t p = 1; p < parts; ++p)
    workers.emplace_back(make, p * per_part, std::min(elements, (p + 1) * per_part));
  make(0, std::min(elements, per_part));
}

std::string shard_name(std::size_t i, std::size_t n) {
  return fmt::format("model-{:05}-of-{:05}.safetensors", i + 1, n);
}

std::optional<std::int32_t> id_of(const json& tokenizer, const std::string& token) {
  if (tokenizer.contains("added_tokens") && tokenizer["added_tokens"].is_array()) {
    for (const json& t : tokenizer["added_tokens"]) {
      if (t.is_object() && t.contains("content") && t["content"] == token && t.contains("id") &&
          t["id"].is_number_integer()) {
        return t["id"].get<std::int32_t>();
      }
    }
  }
  const json& vocab = tokenizer["model"]["vocab"];
  if (vocab.is_object() && vocab.contains(token) && vocab[token].is_number_integer()) {
    return vocab[token].get<std::int32_t>();
  }
  return std::nullopt;
}

// tokenizer_config.json's bos_token or eos_token: a string, or an object with "content".
std::optional<std::string> special_token(const json& config, const char* key) {
  if (!config.is_object() || !config.contains(key)) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

float random_weight(std::uint64_t seed, std::string_view name, std::uint64_t index) {
  const Scale s = scale_of(name);
  return s.mean + s.deviation * normalish(tensor_key(seed, name), index);
}

RandomModelStats write_random_model(const LlamaConfig& config, std::uint64_t seed,
                                    std::uint64_t shard_bytes, int threads,
                                    const std::filesystem::path& dir) {
  RandomModelStats stats;
  std::vector<std::vector<TensorToWrite>> files(1);
  std::uint64_t file_bytes = 0;
  for (const ExpectedTensor& e : expected_tensors(config)) {
    std::uint64_t elements = 1;
    for (std::int64_t d : e.shape)
      elements *= static_cast<std::uint64_t>(d);
    const std::uint64_t bytes = elements * element_bytes(config.dtype);
    if (shard_bytes > 0 && file_bytes > 0 && file_bytes + bytes > shard_bytes) {
      files.emplace_back();
      file_bytes = 0;
    }
    files.back().push_back(
        {e.name, config.dtype, e.shape, [=, name = e.name, dtype = config.dtype](char* out) {
           fill_tensor(seed, name, dtype, elements, threads, out);
         }});
    file_bytes += bytes;
    stats.parameters += static_cast<std::int64_t>(elements);
    stats.weight_bytes += bytes;
  }

  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (shard_bytes == 0) {
    write_safetensors(dir / "model.safetensors", files[0], metadata);
  } else {
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", stats.weight_bytes}};
    index["weight_map"] = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < files.size(); ++i) {
      const std::string name = shard_name(i, files.size());
      write_safetensors(dir / name, files[i], metadata);
      for (const TensorToWrite& t : files[i])
        index["weight_map"][t.name] = name;
    }
    os::write_file_atomically(dir / "model.safetensors.index.json", index.dump(2) + "\n");
  }
  stats.weight_files = static_cast<int>(files.size());

  os::write_file_atomically(dir / "config.json", llama_config_json(config));
  nlohmann::ordered_json generation;
  generation["_from_model_config"] = true;
  if (config.bos_token_id) generation["bos_token_id"] = *config.bos_token_id;
  if (config.eos_token_ids.size() == 1)
    generation["eos_token_id"] = config.eos_token_ids[0];
  else if (!config.eos_token_ids.empty())
    generation["eos_token_id"] = config.eos_token_ids;
  generation["transformers_version"] = "4.46.0";
  os::write_file_atomically(dir / "generation_config.json", generation.dump(2) + "\n");
  return stats;
}

TokenizerFacts read_tokenizer_facts(std::string_view tokenizer_json,
                                    std::string_view tokenizer_config_json,
                                    const std::string& what) {
  json t;
  try {
    t = json::parse(tokenizer_json);
  } catch (const json::exception& e) {
    throw InputError(fmt::format("{}: not JSON: {}", what, e.what()));
  }
  if (!t.is_object() || !t.contains("model") || !t["model"].is_object() ||
      !t["model"].contains("vocab")) {
    throw InputError(what + ": no model.vocab");
  }
  TokenizerFacts facts;
  auto count = [&](const json& id) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 ||
        id.get<std::int64_t>() >= std::numeric_limits<std::int32_t>::max()) {
      throw InputError(fmt::format("{}: token id {} is not a non-negative int32", what, id.dump()));
    }
    facts.size = std::max(facts.size, id.get<std::int64_t>() + 1);
  };
  const json& vocab = t["model"]["vocab"];
  if (vocab.is_object()) {
    for (const auto& [token, id] : vocab.items())
      count(id);
  } else if (vocab.is_array()) {  // Unigram: [token, score] pairs, the id the index
    facts.size = static_cast<std::int64_t>(vocab.size());
  } else {
    throw InputError(what + ": model.vocab is neither an object nor a list");
  }
  if (t.contains("added_tokens") && t["added_tokens"].is_array()) {
    for (const json& added : t["added_tokens"])
      if (added.is_object() && added.contains("id")) count(added["id"]);
  }

  json config;
  if (!tokenizer_config_json.empty()) {
    try {
      config = json::parse(tokenizer_config_json);
    } catch (const json::exception& e) {
      throw InputError(fmt::format("tokenizer_config.json: not JSON: {}", e.what()));
    }
  }
  auto find = [&](const char* key, std::initializer_list<const char*> well_known) {
    if (!config.is_null()) {
      std::optional<std::string> token = special_token(config, key);
      return token ? id_of(t, *token) : std::nullopt;
    }
    for (const char* token : well_known)
      if (auto id = id_of(t, token)) return id;
    return std::optional<std::int32_t>();
  };
  facts.bos_token_id = find("bos_token", {"<s>", "<|begin_of_text|>"});
  facts.eos_token_id =
      find("eos_token", {"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>"});
  return facts;
}

}  // namespace hearth::real
