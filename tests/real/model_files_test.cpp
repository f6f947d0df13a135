// Hugging Face model directories: safetensors headers written and read back, every hostile header
// refused with the file's name, config.json of each architecture, and a directory checked against
// its config, whether on disk or packed in memory.

#include <fmt/format.h>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "policy/errors.hpp"
#include "real_backend/model/llama_config.hpp"
#include "real_backend/model/model_files.hpp"
#include "real_backend/model/safetensors.hpp"
#include "tests/input_error.hpp"
#include "tests/temp_dir.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;
using Catch::Matchers::ContainsSubstring;
namespace fs = std::filesystem;

namespace {

// A safetensors file: the header's length, the header, the data region.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

// What parse_safetensors says of a file with this header and `data_bytes` bytes of data.
std::string header_error(const std::string& header, std::size_t data_bytes = 8) {
  std::string file = safetensors_bytes(header, std::string(data_bytes, '\0'));
  return input_error([&] { parse_safetensors(file, file.size(), "m.safetensors"); });
}

LlamaConfig tiny(LlamaArch arch) {
  LlamaConfig c;
  c.arch = arch;
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  c.max_position_embeddings = 64;
  c.rms_norm_eps = 1e-5;
  c.attention_bias = arch == LlamaArch::qwen2;
  c.qk_norm = arch == LlamaArch::qwen3;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

// The tensors of `config`, each element its index in the tensor (as f32).
std::vector<TensorToWrite> tensors_of(const LlamaConfig& config) {
  std::vector<TensorToWrite> out;
  for (const ExpectedTensor& e : expected_tensors(config)) {
    out.push_back({e.name, DType::f32, e.shape, [shape = e.shape](char* p) {
                     std::int64_t n = 1;
                     for (std::int64_t d : shape)
                       n *= d;
                     for (std::int64_t i = 0; i < n; ++i) {
                       float v = static_cast<float>(i);
                       std::memcpy(p + 4 * i, &v, 4);
                     }
                   }});
  }
  return out;
}

void write_model(const fs::path& dir, const LlamaConfig& config,
                 std::vector<TensorToWrite> tensors) {
  fs::create_directories(dir);
  write_file(dir / "config.json", llama_config_json(config));
  write_safetensors(dir / "model.safetensors", tensors);
}

}  // namespace

TEST_CASE("a safetensors file is read back as written, header padded to 8 bytes") {
  TempDir dir;
  std::vector<TensorToWrite> tensors = {
      {"b", DType::bf16, {3}, [](char* p) { std::memcpy(p, "\x01\x02\x03\x04\x05\x06", 6); }},
      {"a", DType::f32, {2, 1}, [](char* p) { std::memcpy(p, "abcdefgh", 8); }},
      {"empty", DType::f16, {0, 5}, [](char*) {}},
  };
  write_safetensors(dir / "m.safetensors", tensors, {{"format", "pt"}});
  std::string file = read_file(dir / "m.safetensors");
  SafetensorsHeader h = read_safetensors_header(dir / "m.safetensors");
  CHECK(h.data_offset % 8 == 0);
  CHECK(h.data_bytes == 14);
  CHECK(file.size() == h.data_offset + 14);
  CHECK(h.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(h.tensors.size() == 3);
  const SafetensorsTensor* b = h.find("b");
  REQUIRE(b);
  CHECK(b->dtype == DType::bf16);
  CHECK(b->shape == std::vector<std::int64_t>{3});
  CHECK(file.substr(h.data_offset + b->begin, b->end - b->begin) == "\x01\x02\x03\x04\x05\x06");
  const SafetensorsTensor* a = h.find("a");
  REQUIRE(a);
  CHECK(a->dtype == DType::f32);
  CHECK(a->shape == std::vector<std::int64_t>{2, 1});
  CHECK(file.substr(h.data_offset + a->begin, 8) == "abcdefgh");
  CHECK(h.find("empty")->dtype == DType::f16);
  CHECK(h.find("empty")->begin == h.find("empty")->end);
  CHECK(h.find("c") == nullptr);
  CHECK(h.tensors[0].name == "b");  // in file order
  CHECK_FALSE(fs::exists(dir / "m.safetensors.tmp"));
}

TEST_CASE("a safetensors header is parsed from its first bytes alone") {
  std::string file = safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                       std::string(8, '\0'));
  std::uint64_t end = safetensors_header_end(file.substr(0, 8), file.size(), "m");
  CHECK(end == file.size() - 8);
  SafetensorsHeader h = parse_safetensors(file.substr(0, end), file.size(), "m");
  CHECK(h.data_offset == end);
  CHECK(h.data_bytes == 8);
}

TEST_CASE("hostile safetensors headers are refused with the file's name and the fault") {
  const std::string x = R"("x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  SECTION("a header longer than the file") {
    std::string file = safetensors_bytes("{}", "");
    file[0] = 100;
    CHECK_THAT(input_error([&] { parse_safetensors(file, file.size(), "m.safetensors"); }),
               ContainsSubstring("m.safetensors: header of 100 bytes is longer than the file"));
  }
  SECTION("a header longer than the most allowed") {
    std::string first(8, '\0');
    first[4] = 1;  // 2^32
    CHECK_THAT(input_error([&] { safetensors_header_end(first, 1ull << 40, "m.safetensors"); }),
               ContainsSubstring("longer than the most allowed"));
  }
  SECTION("a file shorter than 8 bytes") {
    CHECK_THAT(input_error([&] { safetensors_header_end("abc", 3, "m.safetensors"); }),
               ContainsSubstring("m.safetensors: too short"));
  }
  SECTION("not JSON, or not an object") {
    CHECK_THAT(header_error("{nope"), ContainsSubstring("m.safetensors: the header is not JSON"));
    CHECK_THAT(header_error("[1]"), ContainsSubstring("not a JSON object"));
    CHECK_THAT(header_error(std::string(10, '[') + std::string(10, ']')),
               ContainsSubstring("nests too deeply"));
  }
  SECTION("an unknown dtype") {
    CHECK_THAT(header_error(R"({"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})"),
               ContainsSubstring("m.safetensors: tensor x: dtype I64 is not supported"));
  }
  SECTION("a shape whose bytes differ from the offsets") {
    CHECK_THAT(header_error(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})"),
               ContainsSubstring("tensor x: shape [3] of F32 takes 12 bytes, data_offsets hold 8"));
  }
  SECTION("a shape that is not non-negative integers, or overflows") {
    CHECK_THAT(header_error(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})"),
               ContainsSubstring("not a list of non-negative integers"));
    CHECK_THAT(header_error(R"({"x":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})"),
               ContainsSubstring("not a list of non-negative integers"));
    CHECK_THAT(header_error(
                   R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})"),
               ContainsSubstring("overflows"));
    CHECK_THAT(
        header_error(R"({"x":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})"),
        ContainsSubstring("overflows"));
  }
  SECTION("offsets outside the data region, or backwards") {
    CHECK_THAT(header_error(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})"),
               ContainsSubstring("outside the data region of 8 bytes"));
    CHECK_THAT(header_error(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})"),
               ContainsSubstring("outside the data region"));
    CHECK_THAT(header_error(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})"),
               ContainsSubstring("not a pair of non-negative integers"));
  }
  SECTION("overlapping tensors, gaps, bytes left over") {
    CHECK_THAT(header_error(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})"),
               ContainsSubstring("tensors x and y overlap"));
    CHECK_THAT(header_error(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})"),
               ContainsSubstring("bytes [0, 4) before tensor x belong to no tensor"));
    CHECK_THAT(header_error(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})"),
               ContainsSubstring("the data region holds 8 bytes, its tensors 4"));
  }
  SECTION("a name twice") {
    CHECK_THAT(header_error(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})"),
               ContainsSubstring("m.safetensors: tensor x appears twice"));
  }
  SECTION("metadata that is not strings") {
    CHECK_THAT(header_error(R"({"__metadata__":{"n":1},)" + x + "}"),
               ContainsSubstring("__metadata__ n is not a string"));
  }
}

TEST_CASE("config.json of each architecture is read as Hugging Face writes it") {
  for (LlamaArch arch :
       {LlamaArch::llama, LlamaArch::mistral, LlamaArch::qwen2, LlamaArch::qwen3}) {
    LlamaConfig c = tiny(arch);
    c.tie_word_embeddings = arch == LlamaArch::llama;
    if (arch == LlamaArch::mistral) c.sliding_window = 32;
    c.dtype = DType::bf16;
    LlamaConfig back = parse_llama_config(llama_config_json(c));
    CHECK(back.arch == arch);
    CHECK(back.vocab_size == 40);
    CHECK(back.hidden_size == 16);
    CHECK(back.intermediate_size == 24);
    CHECK(back.num_hidden_layers == 2);
    CHECK(back.num_attention_heads == 4);
    CHECK(back.num_key_value_heads == 2);
    CHECK(back.head_dim == 4);
    CHECK(back.max_position_embeddings == 64);
    CHECK(back.rms_norm_eps == 1e-5);
    CHECK(back.rope_theta == 10000);
    CHECK(back.tie_word_embeddings == (arch == LlamaArch::llama));
    CHECK(back.attention_bias == (arch == LlamaArch::qwen2));
    CHECK_FALSE(back.attention_output_bias);
    CHECK(back.qk_norm == (arch == LlamaArch::qwen3));
    CHECK(back.sliding_window ==
          (arch == LlamaArch::mistral ? std::optional<std::int64_t>(32) : std::nullopt));
    CHECK(back.dtype == DType::bf16);
    CHECK(back.bos_token_id == 1);
    CHECK(back.eos_token_ids == std::vector<std::int32_t>{2});
  }
}

TEST_CASE("real configs: SmolLM2, Llama 3.2 with rope scaling, Qwen2.5, Qwen3") {
  // Trimmed from the published config.json files; their keys kept.
  LlamaConfig smol = parse_llama_config(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "silu", "hidden_size": 2048,
    "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 8192,
    "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 24,
    "num_key_value_heads": 32, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null,
    "rope_theta": 130000, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 49152})");
  CHECK(smol.head_dim == 64);
  CHECK(smol.rope_theta == 130000);
  CHECK(smol.tie_word_embeddings);
  CHECK(smol.eos_token_ids == std::vector<std::int32_t>{0});

  LlamaConfig llama32 = parse_llama_config(R"({
    "architectures": ["LlamaForCausalLM"], "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009], "head_dim": 64, "hidden_act": "silu",
    "hidden_size": 2048, "intermediate_size": 8192, "max_position_embeddings": 131072,
    "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16,
    "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "vocab_size": 128256})");
  CHECK(llama32.rope_scaling.llama3);
  CHECK(llama32.rope_scaling.factor == 32);
  CHECK(llama32.rope_scaling.low_freq_factor == 1);
  CHECK(llama32.rope_scaling.high_freq_factor == 4);
  CHECK(llama32.rope_scaling.original_max_position_embeddings == 8192);
  CHECK(llama32.eos_token_ids == std::vector<std::int32_t>{128001, 128008, 128009});
  CHECK(parse_llama_config(llama_config_json(llama32)).rope_scaling.factor == 32);

  LlamaConfig qwen25 = parse_llama_config(R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "intermediate_size": 4864,
    "max_position_embeddings": 32768, "max_window_layers": 24, "model_type": "qwen2",
    "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_sliding_window": false,
    "vocab_size": 151936})");
  CHECK(qwen25.attention_bias);
  CHECK_FALSE(qwen25.attention_output_bias);
  CHECK(qwen25.head_dim == 64);
  CHECK_FALSE(qwen25.sliding_window);

  LlamaConfig qwen3 = parse_llama_config(R"({
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "bos_token_id": 151643,
    "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024,
    "intermediate_size": 3072, "max_position_embeddings": 40960, "model_type": "qwen3",
    "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_sliding_window": false,
    "vocab_size": 151936})");
  CHECK(qwen3.qk_norm);
  CHECK(qwen3.head_dim == 128);  // not hidden_size / heads = 64
  CHECK(qwen3.num_attention_heads * qwen3.head_dim == 2048);
}

TEST_CASE("config.json refusals name what is unsupported or wrong") {
  nlohmann::json base = nlohmann::json::parse(llama_config_json(tiny(LlamaArch::llama)));
  auto error_with = [&](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json j = base;
    change(j);
    return input_error([&] { parse_llama_config(j.dump()); });
  };
  CHECK_THAT(error_with([](auto& j) { j["architectures"] = {"GPT2LMHeadModel"}; }),
             ContainsSubstring("config.json: architecture GPT2LMHeadModel is not supported"));
  CHECK_THAT(error_with([](auto& j) { j.erase("architectures"); }),
             ContainsSubstring("architectures is missing"));
  CHECK_THAT(error_with([](auto& j) { j["model_type"] = "qwen2"; }),
             ContainsSubstring("model_type qwen2 does not match architecture LlamaForCausalLM"));
  CHECK_THAT(error_with([](auto& j) { j["hidden_act"] = "gelu"; }),
             ContainsSubstring("hidden_act gelu is not supported"));
  CHECK_THAT(error_with([](auto& j) { j["mlp_bias"] = true; }),
             ContainsSubstring("mlp_bias true is not supported"));
  for (const char* type : {"linear", "dynamic", "yarn"}) {
    CHECK_THAT(error_with([&](auto& j) {
                 j["rope_scaling"] = {{"type", type}, {"factor", 2.0}};
               }),
               ContainsSubstring(fmt::format("rope_scaling type '{}' is not supported", type)));
  }
  CHECK_THAT(error_with([](auto& j) {
               j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
             }),
             ContainsSubstring("rope_scaling low_freq_factor is missing"));
  CHECK_THAT(error_with([](auto& j) { j["num_key_value_heads"] = 3; }),
             ContainsSubstring("num_key_value_heads 3 does not divide num_attention_heads 4"));
  CHECK_THAT(error_with([](auto& j) {
               j.erase("head_dim");
               j["hidden_size"] = 18;
             }),
             ContainsSubstring("num_attention_heads 4 does not divide hidden_size 18"));
  CHECK_THAT(error_with([](auto& j) { j["hidden_size"] = 0; }),
             ContainsSubstring("hidden_size is 0, not an integer from 1"));
  CHECK_THAT(error_with([](auto& j) { j["vocab_size"] = "40"; }),
             ContainsSubstring("vocab_size is \"40\""));
  CHECK_THAT(error_with([](auto& j) { j.erase("intermediate_size"); }),
             ContainsSubstring("intermediate_size is missing"));
  CHECK_THAT(error_with([](auto& j) { j["num_hidden_layers"] = 1 << 20; }),
             ContainsSubstring("num_hidden_layers 1048576 is more than 4096"));
  CHECK_THAT(error_with([](auto& j) { j["torch_dtype"] = "float64"; }),
             ContainsSubstring("torch_dtype 'float64' is not supported"));
  CHECK_THAT(error_with([](auto& j) {
               j["eos_token_id"] = {2, 40};
             }),
             ContainsSubstring("eos_token_id 40 is not a token id below vocab_size 40"));
  CHECK_THAT(error_with([](auto& j) { j["head_dim"] = 5; }),
             ContainsSubstring("head_dim 5 is odd"));
  CHECK_THAT(input_error([] { parse_llama_config("{", "m/config.json"); }),
             ContainsSubstring("m/config.json: not JSON"));

  nlohmann::json qwen = nlohmann::json::parse(llama_config_json(tiny(LlamaArch::qwen2)));
  qwen["use_sliding_window"] = true;
  CHECK_THAT(input_error([&] { parse_llama_config(qwen.dump()); }),
             ContainsSubstring("use_sliding_window true is not supported"));
}

TEST_CASE("attention_bias gives Llama and Qwen3 biases on all four projections, Qwen2 on three") {
  for (LlamaArch arch : {LlamaArch::llama, LlamaArch::qwen3}) {
    nlohmann::json j = nlohmann::json::parse(llama_config_json(tiny(arch)));
    j["attention_bias"] = true;
    LlamaConfig c = parse_llama_config(j.dump());
    CHECK(c.attention_bias);
    CHECK(c.attention_output_bias);
    CHECK(parse_llama_config(llama_config_json(c)).attention_output_bias);
  }
  std::vector<std::string> names;
  for (const ExpectedTensor& e : expected_tensors(tiny(LlamaArch::qwen2)))
    names.push_back(e.name);
  CHECK(std::count(names.begin(), names.end(), "model.layers.1.self_attn.k_proj.bias") == 1);
  CHECK(std::count(names.begin(), names.end(), "model.layers.1.self_attn.o_proj.bias") == 0);
}

TEST_CASE("a model's expected tensors: names and shapes as Hugging Face's") {
  LlamaConfig c = tiny(LlamaArch::qwen3);
  c.head_dim = 8;  // Qwen3: heads x head_dim need not be hidden_size
  std::vector<ExpectedTensor> t = expected_tensors(c);
  // embed, 2 x (2 norms, 4 projections, 2 q/k norms, 3 mlp), final norm, lm_head
  REQUIRE(t.size() == 1 + 2 * 11 + 2);
  CHECK(t.front().name == "model.embed_tokens.weight");
  CHECK(t.front().shape == std::vector<std::int64_t>{40, 16});
  auto shape_of = [&](const std::string& name) {
    for (const ExpectedTensor& e : t)
      if (e.name == name) return e.shape;
    FAIL("no tensor " << name);
    return std::vector<std::int64_t>{};
  };
  CHECK(shape_of("model.layers.0.self_attn.q_proj.weight") == std::vector<std::int64_t>{32, 16});
  CHECK(shape_of("model.layers.0.self_attn.k_proj.weight") == std::vector<std::int64_t>{16, 16});
  CHECK(shape_of("model.layers.1.self_attn.o_proj.weight") == std::vector<std::int64_t>{16, 32});
  CHECK(shape_of("model.layers.1.self_attn.q_norm.weight") == std::vector<std::int64_t>{8});
  CHECK(shape_of("model.layers.1.mlp.down_proj.weight") == std::vector<std::int64_t>{16, 24});
  CHECK(shape_of("lm_head.weight") == std::vector<std::int64_t>{40, 16});
  c.tie_word_embeddings = true;
  CHECK(expected_tensors(c).size() == t.size() - 1);
}

TEST_CASE("a model directory on disk and the same files packed agree") {
  TempDir dir;
  LlamaConfig c = tiny(LlamaArch::qwen2);
  write_model(dir.path, c, tensors_of(c));
  write_file(dir / "generation_config.json", R"({"bos_token_id": 1, "eos_token_id": [2, 3]})");
  write_file(dir / "tokenizer.json", "{}");

  auto on_disk = directory_files(dir.path);
  ModelDirectory d = open_model_directory(*on_disk);
  CHECK(d.config.arch == LlamaArch::qwen2);
  CHECK(d.weights.size() == 1);
  CHECK(d.tensors.size() == expected_tensors(c).size());
  CHECK(d.eos_token_ids == std::vector<std::int32_t>{2, 3});  // generation_config.json's
  CHECK(d.bos_token_id == 1);
  CHECK(d.has_tokenizer);
  CHECK_FALSE(d.has_tokenizer_config);
  // embed 40x16, per layer 2x16 + 16x16 + 2x(8x16) + 16x16 + 16+8+8 + 3x(24x16), norm, lm_head
  const std::int64_t per_layer = 32 + 256 + 256 + 256 + 32 + 3 * 384;
  CHECK(d.parameters == 640 + 2 * per_layer + 16 + 640);
  CHECK(d.weight_bytes == 4 * static_cast<std::uint64_t>(d.parameters));

  auto pack = std::make_shared<std::string>();
  std::vector<FileSlice> slices;
  for (const char* name : {"config.json", "model.safetensors", "generation_config.json"}) {
    std::string bytes = read_file(dir / name);
    slices.push_back({name, pack->size(), bytes.size()});
    *pack += bytes;
  }
  auto packed = packed_files(pack, slices, "context c");
  ModelDirectory p = open_model_directory(*packed);
  CHECK(p.parameters == d.parameters);
  CHECK(p.eos_token_ids == d.eos_token_ids);
  CHECK_FALSE(p.has_tokenizer);
  for (const auto& [name, where] : d.tensors) {
    const auto& [pf, pt] = p.tensors.at(name);
    const auto& [df, dt] = where;
    const std::string& file = d.weights[df].name;
    CHECK(on_disk->read_range(file, d.weights[df].header.data_offset + dt->begin,
                              dt->end - dt->begin) ==
          packed->read_range(p.weights[pf].name, p.weights[pf].header.data_offset + pt->begin,
                             pt->end - pt->begin));
  }
  CHECK(packed->pack() == pack);
  CHECK(packed->slice("model.safetensors").offset == slices[1].offset);
  CHECK(packed->path("config.json").empty());
  CHECK(on_disk->path("config.json") == dir / "config.json");
  CHECK_THAT(input_error([&] { packed->read_range("config.json", 1, slices[0].size); }),
             ContainsSubstring("context c: config.json: bytes [1, +"));
  CHECK_THAT(input_error([&] {
               packed_files(pack, {{"x", pack->size(), 1}}, "context c");
             }),
             ContainsSubstring("beyond the"));
  CHECK_THAT(input_error([&] {
               packed_files(pack, {{"../x", 0, 1}}, "context c");
             }),
             ContainsSubstring("bad file name '../x'"));
}

TEST_CASE("a model directory refuses missing, misshapen and unknown tensors by name") {
  TempDir dir;
  LlamaConfig c = tiny(LlamaArch::llama);
  const std::string where = (dir / "m").string() + "/";
  SECTION("a missing tensor") {
    std::vector<TensorToWrite> t = tensors_of(c);
    t.erase(t.begin() + 3);
    write_model(dir / "m", c, t);
    CHECK(input_error([&] { open_model_directory(*directory_files(dir / "m")); }) ==
          where + ": tensor model.layers.0.self_attn.k_proj.weight is missing");
  }
  SECTION("a wrong shape") {
    std::vector<TensorToWrite> t = tensors_of(c);
    for (TensorToWrite& w : t)
      if (w.name == "model.norm.weight") w.shape = {8};
    write_model(dir / "m", c, t);
    CHECK(input_error([&] { open_model_directory(*directory_files(dir / "m")); }) ==
          where +
              "model.safetensors: tensor model.norm.weight has shape [8], config.json says [16]");
  }
  SECTION("an unknown tensor") {
    std::vector<TensorToWrite> t = tensors_of(c);
    t.push_back({"model.layers.2.input_layernorm.weight", DType::f32, {16}, [](char*) {}});
    write_model(dir / "m", c, t);
    CHECK(input_error([&] { open_model_directory(*directory_files(dir / "m")); }) ==
          where +
              "model.safetensors: unknown tensor model.layers.2.input_layernorm.weight (not in a "
              "llama model of 2 layers)");
  }
  SECTION("ignorable tensors are left out") {
    std::vector<TensorToWrite> t = tensors_of(c);
    t.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::f32, {2}, [](char*) {}});
    c.tie_word_embeddings = true;  // lm_head.weight stays in the file
    write_model(dir / "m", c, t);
    ModelDirectory d = open_model_directory(*directory_files(dir / "m"));
    CHECK_FALSE(d.tensors.contains("lm_head.weight"));
    CHECK(d.tensors.size() == expected_tensors(c).size());
  }
  SECTION("no config, no weights") {
    fs::create_directories(dir / "m");
    CHECK(input_error([&] { open_model_directory(*directory_files(dir / "m")); }) ==
          where + ": no config.json");
    write_file(dir / "m" / "config.json", llama_config_json(c));
    CHECK_THAT(input_error([&] { open_model_directory(*directory_files(dir / "m")); }),
               ContainsSubstring("no model.safetensors or model.safetensors.index.json"));
    CHECK_THAT(input_error([&] { directory_files(dir / "none"); }),
               ContainsSubstring("not a directory"));
  }
}

TEST_CASE("a sharded model directory: each tensor in the shard its index names") {
  TempDir dir;
  LlamaConfig c = tiny(LlamaArch::mistral);
  std::vector<TensorToWrite> t = tensors_of(c);
  const std::size_t half = t.size() / 2;
  fs::path m = dir / "m";
  fs::create_directories(m);
  write_file(m / "config.json", llama_config_json(c));
  write_safetensors(m / "model-00001-of-00002.safetensors", {t.begin(), t.begin() + half});
  write_safetensors(m / "model-00002-of-00002.safetensors", {t.begin() + half, t.end()});
  nlohmann::json index;
  for (std::size_t i = 0; i < t.size(); ++i) {
    index["weight_map"][t[i].name] =
        i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  auto write_index = [&](const nlohmann::json& j) {
    write_file(m / "model.safetensors.index.json", j.dump());
  };
  write_index(index);
  ModelDirectory d = open_model_directory(*directory_files(m));
  CHECK(d.weights.size() == 2);
  CHECK(d.tensors.at("lm_head.weight").first == 1);
  CHECK(d.tensors.at("model.embed_tokens.weight").first == 0);

  const std::string where = m.string() + "/model.safetensors.index.json: ";
  SECTION("a shard that is missing") {
    nlohmann::json j = index;
    j["weight_map"]["lm_head.weight"] = "model-00003-of-00003.safetensors";
    write_index(j);
    CHECK(input_error([&] { open_model_directory(*directory_files(m)); }) ==
          where + "lm_head.weight is in model-00003-of-00003.safetensors, which is missing");
  }
  SECTION("a shard outside the directory") {
    for (const char* bad : {"../model-00002-of-00002.safetensors", "/etc/passwd", "a/../b", ""}) {
      nlohmann::json j = index;
      j["weight_map"]["lm_head.weight"] = bad;
      write_index(j);
      CHECK(input_error([&] { open_model_directory(*directory_files(m)); }) ==
            where + fmt::format("lm_head.weight is in '{}', not a file of the directory", bad));
    }
  }
  SECTION("a tensor in another shard than the index says") {
    nlohmann::json j = index;
    j["weight_map"]["lm_head.weight"] = "model-00001-of-00002.safetensors";
    write_index(j);
    CHECK_THAT(input_error([&] { open_model_directory(*directory_files(m)); }),
               ContainsSubstring("model-00002-of-00002.safetensors: tensor lm_head.weight is here, "
                                 "the index says model-00001-of-00002.safetensors"));
  }
  SECTION("a tensor the index names but no shard holds") {
    nlohmann::json j = index;
    j["weight_map"]["model.layers.0.mlp.up_proj.bias"] = "model-00001-of-00002.safetensors";
    write_index(j);
    CHECK_THAT(input_error([&] { open_model_directory(*directory_files(m)); }),
               ContainsSubstring("tensor model.layers.0.mlp.up_proj.bias is missing"));
  }
  SECTION("no weight map") {
    write_index(nlohmann::json::object());
    CHECK(input_error([&] { open_model_directory(*directory_files(m)); }) ==
          where + "no weight_map object");
  }
}

TEST_CASE("f16 and bf16 conversions round to nearest, ties to even, and read back exactly") {
  CHECK(to_f16(1.0f) == 0x3c00);
  CHECK(to_f16(-2.0f) == 0xc000);
  CHECK(to_f16(65504.0f) == 0x7bff);
  CHECK(to_f16(65520.0f) == 0x7c00);  // halfway to 65536: rounds to even, out of range
  CHECK(to_f16(1e9f) == 0x7c00);
  CHECK(to_f16(-INFINITY) == 0xfc00);
  CHECK(to_f16(NAN) == 0x7e00);
  CHECK(to_f16(1.0f + 0x1.0p-11f) == 0x3c00);      // halfway, down to even
  CHECK(to_f16(1.0f + 3 * 0x1.0p-11f) == 0x3c02);  // halfway, up to even
  CHECK(to_f16(0x1.0p-14f) == 0x0400);             // the least normal
  CHECK(to_f16(0x1.0p-24f) == 0x0001);             // the least subnormal
  CHECK(to_f16(0x1.0p-25f) == 0x0000);             // halfway to it: down to even zero
  CHECK(to_f16(0x1.8p-25f) == 0x0001);
  CHECK(to_f16(0x1.ffcp-15f) == 0x0400);  // rounds up from subnormal into the least normal
  CHECK(to_f16(-0.0f) == 0x8000);
  for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
    auto h = static_cast<std::uint16_t>(bits);
    float f = from_f16(h);
    if (std::isnan(f)) continue;
    INFO(bits);
    REQUIRE(to_f16(f) == h);
    REQUIRE(to_bf16(from_bf16(h)) == h);
  }
  CHECK(from_f16(0x3555) == 0x1.554p-2f);
  CHECK(from_bf16(0x3f80) == 1.0f);
}

TEST_CASE("dtype names: f32, bf16 and f16") {
  CHECK(parse_dtype("f16") == DType::f16);
  CHECK(to_string(DType::f16) == "f16");
  CHECK(element_bytes(DType::f16) == 2);
  CHECK_THAT(input_error([] { parse_dtype("f64"); }), ContainsSubstring("f32, bf16 or f16"));
}
