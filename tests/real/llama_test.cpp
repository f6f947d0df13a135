// The Llama family through the torch plugin (real_backend/model/llama_torch.cpp): tiny random
// models of each architecture against an independent reference, and the batch interface's
// promises: a result does not depend on what ran beside it, the KV cache changes nothing, a sample
// depends on its input and seed only, and one bad input fails alone.

#include <fmt/format.h>
#include <stdlib.h>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "os/process.hpp"
#include "policy/errors.hpp"
#include "real_backend/model/inference.hpp"
#include "real_backend/model/llama_config.hpp"
#include "real_backend/model/model_files.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "real_backend/model/safetensors.hpp"
#include "tests/input_error.hpp"
#include "tests/real/tiny_tokenizer.hpp"
#include "tests/temp_dir.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;
using Catch::Matchers::ContainsSubstring;
namespace fs = std::filesystem;
using Ids = std::vector<std::int32_t>;

namespace {

// A tiny model of `arch`: GQA (4 heads, 2 KV heads), head_dim 8, a context of 96.
LlamaConfig tiny(LlamaArch arch) {
  LlamaConfig c;
  c.arch = arch;
  c.vocab_size = 61;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 96;
  c.rms_norm_eps = 1e-5;
  c.attention_bias = arch == LlamaArch::qwen2;
  c.qk_norm = arch == LlamaArch::qwen3;
  c.eos_token_ids = {2};
  return c;
}

// Seeded random weights: large enough that the next-token distributions are far from uniform (so
// that greedy choices are clear), norms near 1.
std::vector<TensorToWrite> random_tensors(const LlamaConfig& config, DType dtype,
                                          std::uint64_t seed) {
  std::vector<TensorToWrite> out;
  std::uint64_t n = 0;
  for (const ExpectedTensor& e : expected_tensors(config)) {
    bool norm = e.name.find("norm") != std::string::npos;
    bool embed = e.name.find("embed_tokens") != std::string::npos;
    float scale = norm ? 0.1f : embed ? 1.0f : 0.25f;
    out.push_back({e.name, dtype, e.shape, [=, shape = e.shape](char* p) {
                     std::mt19937_64 rng(seed * 1000 + n);
                     std::normal_distribution<float> normal(0, scale);
                     std::int64_t count = 1;
                     for (std::int64_t d : shape)
                       count *= d;
                     for (std::int64_t i = 0; i < count; ++i) {
                       float v = (norm ? 1.0f : 0.0f) + normal(rng);
                       if (dtype == DType::f32) {
                         std::memcpy(p + 4 * i, &v, 4);
                       } else {
                         std::uint16_t bits = dtype == DType::bf16 ? to_bf16(v) : to_f16(v);
                         std::memcpy(p + 2 * i, &bits, 2);
                       }
                     }
                   }});
    ++n;
  }
  return out;
}

// A model directory; `shards` > 1 splits the tensors into that many files with an index.
fs::path write_model(const fs::path& dir, LlamaConfig config, DType dtype = DType::f32,
                     int shards = 1, std::uint64_t seed = 1) {
  config.dtype = dtype;
  fs::create_directories(dir);
  write_file(dir / "config.json", llama_config_json(config));
  std::vector<TensorToWrite> t = random_tensors(config, dtype, seed);
  if (shards == 1) {
    write_safetensors(dir / "model.safetensors", t);
    return dir;
  }
  nlohmann::json index;
  std::size_t per = (t.size() + shards - 1) / shards;
  for (int s = 0; s < shards; ++s) {
    std::string name = fmt::format("model-{:05}-of-{:05}.safetensors", s + 1, shards);
    std::size_t begin = s * per, end = std::min(t.size(), begin + per);
    write_safetensors(dir / name, {t.begin() + begin, t.begin() + end});
    for (std::size_t i = begin; i < end; ++i)
      index["weight_map"][t[i].name] = name;
  }
  write_file(dir / "model.safetensors.index.json", index.dump());
  return dir;
}

std::shared_ptr<LoadedModel> load(const fs::path& dir) {
  return torch_runtime().load_model(*directory_files(dir), "cpu");
}

// The directory's files packed in one string, as a worker holds a context in host memory; with
// `odd`, each file starts at an odd offset, so that no tensor is aligned.
std::unique_ptr<ModelFiles> packed(const fs::path& dir, bool odd) {
  auto pack = std::make_shared<std::string>();
  std::vector<FileSlice> slices;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    pack->append(odd ? (pack->size() % 2 ? 0 : 1) : (64 - pack->size() % 64) % 64, '\0');
    slices.push_back({entry.path().filename().string(), pack->size(), bytes.size()});
    *pack += bytes;
  }
  return packed_files(pack, slices, "packed " + dir.string());
}

Ids random_ids(std::mt19937& rng, std::size_t n, std::int32_t vocab) {
  std::uniform_int_distribution<std::int32_t> id(0, vocab - 1);
  Ids out(n);
  for (auto& t : out)
    t = id(rng);
  return out;
}

// Inputs of different lengths (1 to 40 tokens), some equal.
std::vector<Ids> mixed_inputs(std::int32_t vocab, std::uint32_t seed = 5) {
  std::mt19937 rng(seed);
  std::vector<Ids> out;
  for (std::size_t n : {7, 1, 23, 7, 40, 12, 3, 31, 19, 2})
    out.push_back(random_ids(rng, n, vocab));
  return out;
}

// Every token of the vocabulary as a one-token label: the scores are the log-probabilities of the
// next token.
std::vector<Ids> every_token(std::int64_t vocab) {
  std::vector<Ids> out;
  for (std::int32_t t = 0; t < vocab; ++t)
    out.push_back({t});
  return out;
}

GenerateOptions new_tokens(std::uint32_t n, float temperature = 0) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.temperature = temperature;
  return o;
}

std::vector<InferenceResult> greedy(LoadedModel& m, const std::vector<Ids>& inputs,
                                    std::uint32_t n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  return m.generate(inputs, o);
}

const std::vector<LlamaArch> kArchs = {LlamaArch::llama, LlamaArch::mistral, LlamaArch::qwen2,
                                       LlamaArch::qwen3};

std::string ids_text(const Ids& ids) {
  return fmt::format("{}", fmt::join(ids, ","));
}

// What tests/reference/llama_ref.py prints for these arguments, parsed.
nlohmann::json reference(const fs::path& model, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/python3", HEARTH_LLAMA_REFERENCE, model.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  os::CommandResult r = os::run_command(argv, 300);
  INFO(r.err);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out);
}

// The models the reference checks: each architecture, tied and untied, llama3 rope scaling,
// Mistral's sliding window, Qwen3 with head_dim other than dim / heads, biases, and shards.
// Llama 3's rope scaling with a context of 32 and rope_theta 100: the bands fall within head_dim 8
// (wavelengths 6, 20, 63, 199 against 8 and 32), so that scaling moves logits by ~1e-3.
const std::vector<std::pair<std::string, std::string>> kReferenceModels = {
    {"llama-tied", "--arch llama --tie --context 96"},
    {"llama3-rope-untied",
     "--arch llama --no-tie --rope-scaling llama3 --context 32 --rope-theta 100"},
    {"llama-bias-sharded", "--arch llama --attention-bias --shard-bytes 40000 --context 96"},
    {"mistral-window", "--arch mistral --sliding-window 6 --context 96"},
    {"qwen2", "--arch qwen2 --tie --context 96"},
    {"qwen3", "--arch qwen3 --head-dim 12 --no-tie --context 96"},
};

fs::path hearth_model_init(const fs::path& dir, const std::string& name, const std::string& args) {
  std::vector<std::string> argv = {HEARTH_EXECUTABLE,
                                   "model",
                                   "init",
                                   "--layers",
                                   "2",
                                   "--dim",
                                   "32",
                                   "--heads",
                                   "4",
                                   "--kv-heads",
                                   "2",
                                   "--ffn",
                                   "48",
                                   "--seed",
                                   "11",
                                   "--threads",
                                   "1",
                                   "--tokenizer",
                                   (dir / "tokenizer.json").string(),
                                   "-o",
                                   (dir / name).string()};
  std::istringstream extra(args);
  for (std::string word; extra >> word;)
    argv.push_back(word);
  os::CommandResult r = os::run_command(argv, 120);
  INFO(r.out + r.err);
  REQUIRE(r.status == 0);
  return dir / name;
}

}  // namespace

TEST_CASE("a result does not depend on the inputs batched beside it") {
  double max_score_difference = 0;
  for (LlamaArch arch : kArchs) {
    CAPTURE(to_string(arch));
    TempDir dir;
    LlamaConfig c = tiny(arch);
    if (arch == LlamaArch::mistral) c.sliding_window = 6;
    auto model = load(write_model(dir / "m", c));
    std::vector<Ids> inputs = mixed_inputs(static_cast<std::int32_t>(c.vocab_size));
    std::vector<Ids> labels = {{5}, {7, 8}, {9, 10, 11}, {3, 3}};
    model->set_max_batch(1);
    std::vector<InferenceResult> alone = model->classify(inputs, labels);
    std::vector<InferenceResult> alone_tokens = greedy(*model, inputs, 8);
    model->set_max_batch(0);
    std::vector<InferenceResult> together = model->classify(inputs, labels);
    std::vector<InferenceResult> together_tokens = greedy(*model, inputs, 8);
    model->set_max_batch(3);
    std::vector<InferenceResult> threes = model->classify(inputs, labels);
    REQUIRE(together.size() == inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      CAPTURE(i);
      REQUIRE(alone[i].error.empty());
      REQUIRE(together[i].scores.size() == labels.size());
      CHECK(together[i].label == alone[i].label);
      CHECK(threes[i].label == alone[i].label);
      for (std::size_t l = 0; l < labels.size(); ++l) {
        double d = std::max(std::abs(together[i].scores[l] - alone[i].scores[l]),
                            std::abs(threes[i].scores[l] - alone[i].scores[l]));
        max_score_difference = std::max(max_score_difference, d);
        CHECK(d < 1e-3);
      }
      CHECK(together_tokens[i].tokens == alone_tokens[i].tokens);
      CHECK(together_tokens[i].tokens.size() == 8);
    }
  }
  WARN(fmt::format("largest score difference, batched against one at a time: {:.3g}",
                   max_score_difference));
}

TEST_CASE("a label's score is the sum of its tokens' log-probabilities, each after the last") {
  TempDir dir;
  LlamaConfig c = tiny(LlamaArch::qwen3);
  auto model = load(write_model(dir / "m", c));
  Ids x = {4, 9, 33, 12, 7};
  std::vector<Ids> vocab = every_token(c.vocab_size);
  auto log_p = [&](const Ids& prefix, std::int32_t next) {
    return model->classify({prefix}, vocab).at(0).scores.at(next);
  };
  double expected =
      log_p(x, 21) + log_p({4, 9, 33, 12, 7, 21}, 8) + log_p({4, 9, 33, 12, 7, 21, 8}, 40);
  InferenceResult r = model->classify({x}, {{21, 8, 40}, {21}}).at(0);
  CHECK(std::abs(r.scores[0] - expected) < 1e-4);
  CHECK(std::abs(r.scores[1] - log_p(x, 21)) < 1e-6);
  CHECK(r.label == 1);  // one more token can only lower a log-probability
  // Log-probabilities of every next token sum to one.
  std::vector<InferenceResult> all = model->classify({x}, vocab);
  double total = 0;
  for (float s : all.at(0).scores)
    total += std::exp(s);
  CHECK(std::abs(total - 1) < 1e-5);
}

TEST_CASE("greedy decoding with the KV cache equals decoding each token from the whole prefix") {
  for (LlamaArch arch : kArchs) {
    CAPTURE(to_string(arch));
    TempDir dir;
    LlamaConfig c = tiny(arch);
    if (arch == LlamaArch::mistral) c.sliding_window = 6;
    auto model = load(write_model(dir / "m", c));
    std::vector<Ids> inputs = {{3, 14, 15, 9, 26}, {53}};
    std::vector<InferenceResult> cached = greedy(*model, inputs, 12);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      Ids prefix = inputs[i];
      Ids recomputed;
      for (int k = 0; k < 12; ++k) {
        std::int32_t next = greedy(*model, {prefix}, 1).at(0).tokens.at(0);
        recomputed.push_back(next);
        prefix.push_back(next);
      }
      CHECK(cached[i].tokens == recomputed);
    }
  }
}

TEST_CASE("generation ends at a stop token, at the stop check, or at the context's end") {
  TempDir dir;
  LlamaConfig c = tiny(LlamaArch::llama);
  auto model = load(write_model(dir / "m", c));
  std::vector<Ids> inputs = {{1, 2, 3}, {4, 5}};
  std::vector<InferenceResult> free_run = greedy(*model, inputs, 10);
  GenerateOptions o;
  o.max_new_tokens = 10;
  o.stop_tokens = {free_run[0].tokens[3]};
  std::vector<InferenceResult> stopped = model->generate(inputs, o);
  auto first = std::find(free_run[0].tokens.begin(), free_run[0].tokens.end(), o.stop_tokens[0]);
  CHECK(stopped[0].tokens == Ids(free_run[0].tokens.begin(), first + 1));
  // The stop check ends input 1 after 2 tokens; input 0 runs on.
  std::vector<std::size_t> asked;
  std::vector<InferenceResult> checked =
      model->generate(inputs, new_tokens(10), [&](std::size_t input, const Ids& tokens) {
        asked.push_back(input);
        return input == 1 && tokens.size() == 2;
      });
  CHECK(checked[0].tokens == free_run[0].tokens);
  CHECK(checked[1].tokens == Ids(free_run[1].tokens.begin(), free_run[1].tokens.begin() + 2));
  CHECK(std::count(asked.begin(), asked.end(), 1) == 2);
  // 90 tokens in a context of 96: six new ones at most.
  std::mt19937 rng(1);
  std::vector<InferenceResult> at_end = greedy(*model, {random_ids(rng, 90, 61)}, 20);
  CHECK(at_end[0].tokens.size() == 6);
  CHECK(at_end[0].error.empty());
}

TEST_CASE("a sample depends on its input and seed only, not on its batch") {
  TempDir dir;
  LlamaConfig c = tiny(LlamaArch::mistral);
  auto model = load(write_model(dir / "m", c));
  std::vector<Ids> inputs = mixed_inputs(61, 9);
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.temperature = 1.5f;
  o.top_p = 0.9f;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    o.seeds.push_back(100 + i);
  std::vector<InferenceResult> together = model->generate(inputs, o);
  CHECK(model->generate(inputs, o)[4].tokens == together[4].tokens);
  for (std::size_t i : {0, 4, 9}) {
    GenerateOptions one = o;
    one.seeds = {o.seeds[i]};
    CHECK(model->generate({inputs[i]}, one)[0].tokens == together[i].tokens);
  }
  // The same input twice with two seeds: two samples (12 tokens at temperature 1.5 differ).
  GenerateOptions two = o;
  two.seeds = {1, 2};
  std::vector<InferenceResult> r = model->generate({inputs[0], inputs[0]}, two);
  CHECK(r[0].tokens != r[1].tokens);
  CHECK_THROWS_WITH(model->generate(inputs, new_tokens(2, 1)),
                    ContainsSubstring("one seed per input"));
}

TEST_CASE("an empty, too long or out-of-vocabulary input fails alone") {
  TempDir dir;
  LlamaConfig c = tiny(LlamaArch::qwen2);
  auto model = load(write_model(dir / "m", c));
  std::mt19937 rng(3);
  std::vector<Ids> inputs = {{1, 2, 3}, {}, {1, 61, 2}, random_ids(rng, 96, 61), {-1}, {4}};
  std::vector<InferenceResult> r = model->classify(inputs, {{5}, {6, 7}});
  CHECK(r[0].error.empty());
  CHECK(r[1].error == "empty input");
  CHECK(r[2].error == "token 61 at position 1 is outside the vocabulary of 61");
  // 96 tokens and one more (the two-token label's first) do not fit in 96 positions.
  CHECK(r[3].error == "96 tokens and 1 more exceed the model's context of 96");
  CHECK_THAT(r[4].error, ContainsSubstring("token -1"));
  CHECK(r[5].error.empty());
  CHECK(r[1].scores.empty());
  // The same scores as alone, up to float rounding: how a batch is blocked in the matrix products
  // depends on the CPU's kernels.
  std::vector<float> alone = model->classify({inputs[0]}, {{5}, {6, 7}})[0].scores;
  REQUIRE(r[0].scores.size() == alone.size());
  for (std::size_t i = 0; i < alone.size(); ++i)
    CHECK(std::abs(r[0].scores[i] - alone[i]) < 1e-5 * (1 + std::abs(alone[i])));
  std::vector<InferenceResult> g = greedy(*model, inputs, 3);
  CHECK(g[0].tokens.size() == 3);
  CHECK(g[3].error == "96 tokens and 1 more exceed the model's context of 96");
  CHECK(g[3].tokens.empty());
  CHECK_THROWS_WITH(model->classify(inputs, {{5}, {}}), ContainsSubstring("a label has no tokens"));
  CHECK_THROWS_WITH(model->classify(inputs, {{99}}), ContainsSubstring("label token 99"));
}

TEST_CASE("a call checks its cancel callback and ends with Cancelled") {
  TempDir dir;
  auto model = load(write_model(dir / "m", tiny(LlamaArch::llama)));
  int asked = 0;
  auto cancel_second = [&] { return ++asked == 2; };
  model->set_max_batch(1);
  CHECK_THROWS_AS(model->classify(mixed_inputs(61), {{1}}, cancel_second), Cancelled);
  asked = 0;
  CHECK_THROWS_AS(model->generate({{1, 2}}, new_tokens(5), {}, cancel_second), Cancelled);
}

TEST_CASE("bf16 and f16 checkpoints load on the CPU in fp32 and agree with fp32 loosely") {
  TempDir dir;
  LlamaConfig c = tiny(LlamaArch::qwen3);
  auto fp32 = load(write_model(dir / "f32", c, DType::f32));
  std::vector<Ids> inputs = mixed_inputs(61);
  std::vector<InferenceResult> expected = fp32->classify(inputs, every_token(c.vocab_size));
  for (DType d : {DType::bf16, DType::f16}) {
    CAPTURE(to_string(d));
    auto model = load(write_model(dir / std::string(to_string(d)), c, d));
    CHECK(torch_runtime().last_load().path == "hf-plain");
    std::vector<InferenceResult> got = model->classify(inputs, every_token(c.vocab_size));
    double worst = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      for (std::size_t t = 0; t < got[i].scores.size(); ++t)
        worst = std::max(worst,
                         static_cast<double>(std::abs(got[i].scores[t] - expected[i].scores[t])));
    }
    // bf16 keeps 8 bits of mantissa: weights off by up to 0.4 %.
    CHECK(worst < (d == DType::bf16 ? 0.3 : 0.05));
  }
}

TEST_CASE("a directory packed in memory gives the directory's results, fp32 weights as views") {
  TempDir dir;
  LlamaConfig c = tiny(LlamaArch::mistral);
  fs::path m = write_model(dir / "m", c, DType::f32, 2);
  auto from_disk = load(m);
  CHECK(torch_runtime().last_load().path == "hf-plain");
  std::vector<Ids> inputs = mixed_inputs(61);
  std::vector<InferenceResult> expected = from_disk->classify(inputs, {{1}, {2, 3}});
  for (bool odd : {false, true}) {
    CAPTURE(odd);
    std::unique_ptr<ModelFiles> files = packed(m, odd);
    auto from_pack = torch_runtime().load_model(*files, "cpu");
    // Aligned tensors are views into the pack; misaligned ones are copied.
    CHECK(torch_runtime().last_load().path == (odd ? "hf-plain" : "hf-view"));
    files.reset();  // the model keeps the pack it views
    std::vector<InferenceResult> got = from_pack->classify(inputs, {{1}, {2, 3}});
    for (std::size_t i = 0; i < inputs.size(); ++i)
      CHECK(got[i].scores == expected[i].scores);
  }
}

TEST_CASE("a hostile or broken model directory is refused with InputError") {
  TempDir dir;
  fs::path m = write_model(dir / "m", tiny(LlamaArch::llama));
  std::string bytes;
  {
    std::ifstream in(m / "model.safetensors", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  SECTION("a truncated weight file") {
    write_file(m / "model.safetensors", bytes.substr(0, bytes.size() - 100));
    CHECK_THROWS_AS(load(m), InputError);
  }
  SECTION("a header length beyond the file") {
    bytes[5] = '\x7f';
    write_file(m / "model.safetensors", bytes);
    CHECK_THROWS_AS(load(m), InputError);
  }
  SECTION("an architecture that is not the Llama family") {
    write_file(m / "config.json", "{\"architectures\": [\"GPT2LMHeadModel\"]}");
    CHECK_THROWS_AS(load(m), InputError);
  }
  SECTION("no weights") {
    fs::remove(m / "model.safetensors");
    CHECK_THROWS_AS(load(m), InputError);
  }
}

TEST_CASE("each architecture's next-token log-probabilities match the numpy reference") {
  TempDir dir;
  write_tiny_tokenizer(dir.path, false);
  const std::vector<Ids> sequences = {{5},
                                      {3, 17, 40, 2, 9, 9, 31, 0, 12},
                                      {8,  1,  30, 22, 7,  19, 4,  4,  36, 11, 2,  27, 14, 5,  38,
                                       20, 33, 6,  1,  25, 13, 29, 10, 3,  39, 16, 21, 35, 24, 18}};
  double max_difference = 0, max_score_difference = 0;
  for (const auto& [name, args] : kReferenceModels) {
    CAPTURE(name);
    fs::path m = hearth_model_init(dir.path, name, args);
    auto model = load(m);
    std::vector<std::string> ref_args;
    for (const Ids& s : sequences) {
      ref_args.push_back("--ids");
      ref_args.push_back(ids_text(s));
    }
    nlohmann::json expected = reference(m, ref_args)["logits"];
    // Every prefix of every sequence in one call: log-probabilities of each next token.
    std::vector<Ids> prefixes;
    for (const Ids& s : sequences) {
      for (std::size_t n = 1; n <= s.size(); ++n)
        prefixes.emplace_back(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
    }
    std::vector<InferenceResult> got = model->classify(prefixes, every_token(41));
    std::size_t row = 0;
    for (std::size_t q = 0; q < sequences.size(); ++q) {
      for (std::size_t t = 0; t < sequences[q].size(); ++t, ++row) {
        std::vector<double> logits = expected[q][t].get<std::vector<double>>();
        REQUIRE(logits.size() == 41);
        double top = *std::max_element(logits.begin(), logits.end()), sum = 0;
        for (double l : logits)
          sum += std::exp(l - top);
        for (std::size_t v = 0; v < logits.size(); ++v) {
          double d = std::abs(got[row].scores[v] - (logits[v] - top - std::log(sum)));
          max_difference = std::max(max_difference, d);
          CHECK(d < 1e-4);
        }
      }
    }
    // Labels of one to three tokens after a prompt: the classify score.
    std::vector<Ids> labels = {{7}, {12, 3}, {40, 40, 1}};
    nlohmann::json scores = reference(m, {"--score", "--prompt", ids_text(sequences[1]), "--labels",
                                          "7", "--labels", "12,3", "--labels", "40,40,1"});
    InferenceResult r = model->classify({sequences[1]}, labels).at(0);
    for (std::size_t l = 0; l < labels.size(); ++l) {
      double d = std::abs(r.scores[l] - scores["scores"][l].get<double>());
      max_score_difference = std::max(max_score_difference, d);
      CHECK(d < 1e-3);
    }
  }
  WARN(
      fmt::format("largest log-probability difference from the reference: {:.3g}; largest "
                  "label score difference: {:.3g}",
                  max_difference, max_score_difference));
}

TEST_CASE("greedy takes the first of equal maxima; sampling keeps the top_p set only") {
  const std::vector<float> tied = {0.5f, 2.0f, -1.0f, 2.0f};
  CHECK(argmax_first(tied.data(), tied.size()) == 1);
  CHECK(TokenSampler(7).next(tied.data(), tied.size(), 0, 1) == 1);
  // Probabilities 0.5, 0.3, 0.2 (as logits: their logs): top_p 0.6 keeps {0, 1} (0.5 < 0.6 <=
  // 0.8), top_p 0.45 keeps {0} alone.
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  std::vector<int> drawn(3), alone(3), all(3);
  TokenSampler a(1), b(2), c(3);
  for (int i = 0; i < 2000; ++i) {
    ++drawn[static_cast<std::size_t>(a.next(logits.data(), 3, 1, 0.6f))];
    ++alone[static_cast<std::size_t>(b.next(logits.data(), 3, 1, 0.45f))];
    ++all[static_cast<std::size_t>(c.next(logits.data(), 3, 1, 1))];
  }
  CHECK(drawn[2] == 0);
  CHECK(std::abs(drawn[0] / 2000.0 - 0.5 / 0.8) < 0.05);
  CHECK(alone[0] == 2000);
  CHECK(std::abs(all[2] / 2000.0 - 0.2) < 0.05);
  // The same seed draws the same sequence.
  TokenSampler x(42), y(42);
  for (int i = 0; i < 50; ++i)
    CHECK(x.next(logits.data(), 3, 0.7f, 0.9f) == y.next(logits.data(), 3, 0.7f, 0.9f));
}
