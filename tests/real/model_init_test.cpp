// `hearth model init` and `hearth model inspect` for each architecture and dtype, and the numpy
// reference forward pass (tests/reference/llama_ref.py) on what init writes: finite, the same
// every time, causal, and at a sequence's first token equal to a forward pass computed here by
// hand (one token attends only to itself: no rotation, no softmax to speak of).

#include <fmt/format.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "real_backend/model/model_files.hpp"
#include "real_backend/model/random_model.hpp"
#include "tests/real/tiny_tokenizer.hpp"
#include "tests/temp_dir.hpp"

using namespace hearth::real;
using namespace hearth::testing;
using Catch::Matchers::ContainsSubstring;
namespace fs = std::filesystem;

namespace {

struct Ran {
  int status = -1;
  std::string output;  // stdout and stderr
};
Ran run(const std::string& command) {
  Ran r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(p);
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, p)) > 0;)
    r.output.append(buffer, n);
  int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string hearth_command(const std::string& args) {
  return std::string(HEARTH_EXECUTABLE) + " " + args;
}
std::string reference(const std::string& args) {
  return std::string("/usr/bin/python3 ") + LLAMA_REF_SCRIPT + " " + args;
}

std::vector<double> tensor(const ModelFiles& files, const ModelDirectory& d,
                           const std::string& name) {
  const auto& [file, t] = d.tensors.at(name);
  const WeightFile& w = d.weights[file];
  std::string bytes = files.read_range(w.name, w.header.data_offset + t->begin, t->end - t->begin);
  std::vector<double> out;
  for (std::size_t i = 0; i < bytes.size(); i += element_bytes(t->dtype)) {
    if (t->dtype == DType::f32) {
      float f;
      std::memcpy(&f, bytes.data() + i, 4);
      out.push_back(f);
    } else {
      std::uint16_t h;
      std::memcpy(&h, bytes.data() + i, 2);
      out.push_back(t->dtype == DType::bf16 ? from_bf16(h) : from_f16(h));
    }
  }
  return out;
}

std::vector<double> rms_norm(const std::vector<double>& x, const std::vector<double>& w,
                             double eps) {
  double sum = 0;
  for (double v : x)
    sum += v * v;
  const double scale = 1 / std::sqrt(sum / static_cast<double>(x.size()) + eps);
  std::vector<double> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = x[i] * scale * w[i];
  return out;
}

// w [rows, x.size()] times x, plus bias if given.
std::vector<double> times(const std::vector<double>& w, const std::vector<double>& x,
                          const std::vector<double>& bias = {}) {
  const std::size_t rows = w.size() / x.size();
  std::vector<double> out(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    double s = bias.empty() ? 0 : bias[r];
    for (std::size_t c = 0; c < x.size(); ++c)
      s += w[r * x.size() + c] * x[c];
    out[r] = s;
  }
  return out;
}

// The logits of a sequence of one token: each layer's attention is o_proj of v_proj, each query
// head taking its kv head's value whole.
std::vector<double> first_token_logits(const fs::path& dir, std::int32_t id) {
  auto files = directory_files(dir);
  ModelDirectory d = open_model_directory(*files);
  const LlamaConfig& c = d.config;
  auto w = [&](const std::string& name) { return tensor(*files, d, name); };
  auto none = std::vector<double>();
  const auto h_size = static_cast<std::size_t>(c.hidden_size);
  std::vector<double> embed = w("model.embed_tokens.weight");
  std::vector<double> h(embed.begin() + id * c.hidden_size,
                        embed.begin() + (id + 1) * c.hidden_size);
  for (std::int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    const std::string p = fmt::format("model.layers.{}.", layer);
    std::vector<double> x = rms_norm(h, w(p + "input_layernorm.weight"), c.rms_norm_eps);
    std::vector<double> v = times(w(p + "self_attn.v_proj.weight"), x,
                                  c.attention_bias ? w(p + "self_attn.v_proj.bias") : none);
    std::vector<double> heads;
    const std::int64_t group = c.num_attention_heads / c.num_key_value_heads;
    for (std::int64_t head = 0; head < c.num_attention_heads; ++head) {
      auto from = v.begin() + (head / group) * c.head_dim;
      heads.insert(heads.end(), from, from + c.head_dim);
    }
    std::vector<double> attn =
        times(w(p + "self_attn.o_proj.weight"), heads,
              c.attention_output_bias ? w(p + "self_attn.o_proj.bias") : none);
    for (std::size_t i = 0; i < h_size; ++i)
      h[i] += attn[i];
    x = rms_norm(h, w(p + "post_attention_layernorm.weight"), c.rms_norm_eps);
    std::vector<double> gate = times(w(p + "mlp.gate_proj.weight"), x);
    std::vector<double> up = times(w(p + "mlp.up_proj.weight"), x);
    for (std::size_t i = 0; i < gate.size(); ++i)
      gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
    std::vector<double> down = times(w(p + "mlp.down_proj.weight"), gate);
    for (std::size_t i = 0; i < h_size; ++i)
      h[i] += down[i];
  }
  h = rms_norm(h, w("model.norm.weight"), c.rms_norm_eps);
  return times(w(c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"), h);
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("hearth model init writes each architecture in each dtype, and inspect reads it back") {
  const std::string arch = GENERATE("llama", "mistral", "qwen2", "qwen3");
  const std::string dtype = GENERATE("f32", "bf16", "f16");
  TempDir dir;
  write_tiny_tokenizer(dir.path, true);
  const fs::path model = dir / "model";
  Ran init =
      run(hearth_command(fmt::format("model init --arch {} --dtype {} --tokenizer {} -o {}", arch,
                                     dtype, (dir / "tokenizer.json").string(), model.string())));
  INFO(init.output);
  REQUIRE(init.status == 0);
  CHECK_THAT(init.output, ContainsSubstring("in 1 file"));
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors",
                        "tokenizer.json", "tokenizer_config.json"}) {
    CHECK(fs::is_regular_file(model / f));
  }

  Ran inspect = run(hearth_command("model inspect --json " + model.string()));
  INFO(inspect.output);
  REQUIRE(inspect.status == 0);
  nlohmann::json j = nlohmann::json::parse(inspect.output);
  CHECK(j["arch"] == arch);
  CHECK(j["dtype"] == dtype);
  CHECK(j["tensor_dtypes"].size() == 1);
  CHECK(j["layers"] == 2);
  CHECK(j["hidden_size"] == 64);
  CHECK(j["heads"] == 4);
  CHECK(j["kv_heads"] == 2);
  CHECK(j["head_dim"] == 16);
  CHECK(j["intermediate_size"] == 256);
  CHECK(j["vocab_size"] == 41);  // the tokenizer's highest id, 40, plus one
  CHECK(j["tokenizer_tokens"] == 41);
  CHECK(j["bos_token_id"] == 1);
  CHECK(j["eos_token_ids"] == nlohmann::json::array({40}));
  CHECK(j["qk_norm"] == (arch == "qwen3"));
  CHECK(j["attention_bias"] == (arch == "qwen2"));
  // embed and lm_head 41 x 64; per layer: 2 norms of 64, q and o 64 x 64, k and v 32 x 64,
  // mlp 3 x 64 x 256, Qwen2's biases 64 + 32 + 32, Qwen3's q/k norms 2 x 16; the final norm 64.
  std::int64_t per_layer = 2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 256;
  if (arch == "qwen2") per_layer += 64 + 32 + 32;
  if (arch == "qwen3") per_layer += 2 * 16;
  const std::int64_t parameters = 2 * 41 * 64 + 2 * per_layer + 64;
  CHECK(j["parameters"] == parameters);
  CHECK(j["weight_bytes"] == parameters * (dtype == "f32" ? 4 : 2));

  Ran text = run(hearth_command("model inspect " + model.string()));
  CHECK(text.status == 0);
  CHECK_THAT(text.output, ContainsSubstring("BPE, 41 tokens (4 added)"));
  CHECK_THAT(text.output, ContainsSubstring(fmt::format("{} parameters", parameters)) ||
                              ContainsSubstring(fmt::format("parameters    {}", parameters)));

  // The reference runs on it: finite logits over the vocabulary, the same each time.
  const fs::path out = dir / "logits.json";
  REQUIRE(run(reference(
                  fmt::format("{} --ids 1,5,9,40 --ids 3 --out {}", model.string(), out.string())))
              .status == 0);
  nlohmann::json first = read_json(out);
  REQUIRE(first["logits"].size() == 2);
  REQUIRE(first["logits"][0].size() == 4);
  REQUIRE(first["logits"][1].size() == 1);
  for (const auto& sequence : first["logits"]) {
    for (const auto& row : sequence) {
      REQUIRE(row.size() == 41);
      for (const auto& v : row)
        REQUIRE(std::isfinite(v.get<double>()));
    }
  }
  REQUIRE(run(reference(
                  fmt::format("{} --ids 1,5,9,40 --ids 3 --out {}", model.string(), out.string())))
              .status == 0);
  CHECK(read_json(out) == first);
}

TEST_CASE("the reference at a first token equals a forward pass by hand, for each architecture") {
  const std::string arch = GENERATE("llama", "mistral", "qwen2", "qwen3");
  const std::string extra = GENERATE(as<std::string>{}, "", "--tie --attention-bias");
  if (arch == "mistral" && !extra.empty()) return;  // Mistral has no biases
  TempDir dir;
  write_tiny_tokenizer(dir.path, true);
  const fs::path model = dir / "model";
  Ran init = run(
      hearth_command(fmt::format("model init --arch {} {} --layers 2 --seed 7 --tokenizer {} -o {}",
                                 arch, extra, (dir / "tokenizer.json").string(), model.string())));
  INFO(init.output);
  REQUIRE(init.status == 0);
  const fs::path out = dir / "logits.json";
  REQUIRE(
      run(reference(fmt::format("{} --ids 17 --out {}", model.string(), out.string()))).status ==
      0);
  std::vector<double> by_hand = first_token_logits(model, 17);
  nlohmann::json ref = read_json(out)["logits"][0][0];
  REQUIRE(ref.size() == by_hand.size());
  double largest = 0;
  for (std::size_t i = 0; i < by_hand.size(); ++i) {
    largest = std::max(largest, std::abs(by_hand[i]));
    CHECK(std::abs(ref[i].get<double>() - by_hand[i]) < 1e-9);
  }
  CHECK(largest > 0.01);  // logits that are not all zero, or the check above proves nothing
}

TEST_CASE("the reference is causal, and its scores are its logits' log-probabilities") {
  TempDir dir;
  write_tiny_tokenizer(dir.path, true);
  const fs::path model = dir / "model";
  REQUIRE(
      run(hearth_command(fmt::format("model init --arch llama --rope-scaling llama3 --dtype bf16 "
                                     "--tokenizer {} -o {}",
                                     (dir / "tokenizer.json").string(), model.string())))
          .status == 0);
  const fs::path out = dir / "logits.json";
  REQUIRE(run(reference(fmt::format("{} --ids 4,8,15,16,23 --ids 4,8,15 --out {}", model.string(),
                                    out.string())))
              .status == 0);
  nlohmann::json logits = read_json(out)["logits"];
  // The first three positions of the longer sequence see only what the shorter one holds.
  for (std::size_t p = 0; p < 3; ++p) {
    for (std::size_t v = 0; v < 41; ++v) {
      CHECK(std::abs(logits[0][p][v].get<double>() - logits[1][p][v].get<double>()) < 1e-12);
    }
  }
  // Position 3 sees token 16, which the shorter sequence lacks: different logits.
  CHECK(logits[0][3] != logits[0][2]);

  Ran scored =
      run(reference(model.string() + " --score --prompt 4,8,15 --labels 16,23 --labels 16"));
  REQUIRE(scored.status == 0);
  nlohmann::json scores = nlohmann::json::parse(scored.output)["scores"];
  auto log_prob = [&](std::size_t position, std::size_t token) {
    const nlohmann::json& row = logits[0][position];
    double sum = 0;
    for (const auto& v : row)
      sum += std::exp(v.get<double>());
    return row[token].get<double>() - std::log(sum);
  };
  CHECK(std::abs(scores[1].get<double>() - log_prob(2, 16)) < 1e-9);
  CHECK(std::abs(scores[0].get<double>() - (log_prob(2, 16) + log_prob(3, 23))) < 1e-9);
}

TEST_CASE("hearth model init shards as asked, with the values of one file") {
  TempDir dir;
  write_tiny_tokenizer(dir.path, true);
  const std::string tokenizer = (dir / "tokenizer.json").string();
  REQUIRE(
      run(hearth_command(fmt::format("model init --arch qwen2 --dtype bf16 --tokenizer {} -o {}",
                                     tokenizer, (dir / "one").string())))
          .status == 0);
  REQUIRE(run(hearth_command(fmt::format("model init --arch qwen2 --dtype bf16 --shard-bytes 40000 "
                                         "--threads 3 --tokenizer {} -o {}",
                                         tokenizer, (dir / "shards").string())))
              .status == 0);
  auto one_files = directory_files(dir / "one");
  auto shard_files = directory_files(dir / "shards");
  ModelDirectory one = open_model_directory(*one_files);
  ModelDirectory shards = open_model_directory(*shard_files);
  CHECK(one.weights.size() == 1);
  CHECK(shards.weights.size() > 3);
  for (const WeightFile& w : shards.weights) {
    // A shard holds at most 40000 bytes of tensors, unless one tensor alone is larger.
    CHECK((w.header.data_bytes <= 40000 || w.header.tensors.size() == 1));
  }
  for (const auto& [name, where] : one.tensors)
    CHECK(tensor(*one_files, one, name) == tensor(*shard_files, shards, name));
  nlohmann::json index = read_json(dir / "shards" / "model.safetensors.index.json");
  CHECK(index["metadata"]["total_size"] == one.weight_bytes);
}

TEST_CASE(
    "hearth model init keeps an existing directory unless forced; inspect exits 2 on a "
    "bad one") {
  TempDir dir;
  write_tiny_tokenizer(dir.path, true);
  const std::string init = fmt::format("model init --tokenizer {} -o {}",
                                       (dir / "tokenizer.json").string(), (dir / "m").string());
  fs::create_directories(dir / "m");
  std::ofstream(dir / "m" / "notes.txt") << "mine";
  Ran refused = run(hearth_command(init));
  CHECK(refused.status == 2);
  CHECK_THAT(refused.output, ContainsSubstring("exists and is not an empty directory"));
  CHECK(fs::exists(dir / "m" / "notes.txt"));
  REQUIRE(run(hearth_command(init + " --force")).status == 0);
  CHECK_FALSE(fs::exists(dir / "m" / "notes.txt"));
  // Nothing left beside it: the temporary directory was renamed into place.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 3);

  fs::remove(dir / "m" / "model.safetensors");
  Ran bad = run(hearth_command("model inspect " + (dir / "m").string()));
  CHECK(bad.status == 2);
  CHECK_THAT(bad.output, ContainsSubstring("no model.safetensors or model.safetensors.index.json"));

  Ran small_vocab = run(hearth_command(init + " --force --vocab 10"));
  CHECK(small_vocab.status == 2);
  CHECK_THAT(small_vocab.output,
             ContainsSubstring("--vocab 10 is smaller than the tokenizer's 41"));
  Ran bad_heads = run(hearth_command(init + " --force --kv-heads 3"));
  CHECK(bad_heads.status == 2);
  CHECK_THAT(bad_heads.output, ContainsSubstring("num_key_value_heads 3 does not divide"));
}

TEST_CASE("random weights: matrices about normal(0, 0.02), norms about 1, biases small") {
  auto moments = [](const std::string& name) {
    double sum = 0, squares = 0;
    const int n = 100000;
    for (int i = 0; i < n; ++i) {
      double v = random_weight(5, name, static_cast<std::uint64_t>(i));
      sum += v;
      squares += v * v;
    }
    double mean = sum / n;
    return std::pair{mean, std::sqrt(squares / n - mean * mean)};
  };
  auto [m_mean, m_dev] = moments("model.layers.0.mlp.up_proj.weight");
  CHECK(std::abs(m_mean) < 0.001);
  CHECK(std::abs(m_dev - 0.02) < 0.001);
  auto [n_mean, n_dev] = moments("model.layers.0.input_layernorm.weight");
  CHECK(std::abs(n_mean - 1) < 0.005);
  CHECK(std::abs(n_dev - 0.1) < 0.005);
  auto [b_mean, b_dev] = moments("model.layers.0.self_attn.q_proj.bias");
  CHECK(std::abs(b_dev - 0.05) < 0.003);
  CHECK(random_weight(5, "a.weight", 0) == random_weight(5, "a.weight", 0));
  CHECK(random_weight(5, "a.weight", 0) != random_weight(6, "a.weight", 0));
  CHECK(random_weight(5, "a.weight", 0) != random_weight(5, "b.weight", 0));
}

TEST_CASE("tokenizer facts: size from vocab and added tokens, ids from tokenizer_config") {
  const std::string t = R"({"model": {"vocab": {"a": 0, "b": 7}},
      "added_tokens": [{"id": 9, "content": "<|endoftext|>"}, {"id": 3, "content": "<s>"}]})";
  TokenizerFacts f = read_tokenizer_facts(t, R"({"bos_token": null, "eos_token": "b"})", "t");
  CHECK(f.size == 10);
  CHECK_FALSE(f.bos_token_id);
  CHECK(f.eos_token_id == 7);
  TokenizerFacts guessed = read_tokenizer_facts(t, "", "t");
  CHECK(guessed.bos_token_id == 3);
  CHECK(guessed.eos_token_id == 9);
  TokenizerFacts unigram =
      read_tokenizer_facts(R"({"model": {"vocab": [["a", 0], ["b", -1]]}})", "", "t");
  CHECK(unigram.size == 2);
}

TEST_CASE("the reference's sliding window: a token sees itself and the window - 1 before it") {
  TempDir dir;
  write_tiny_tokenizer(dir.path, true);
  const std::string tokenizer = (dir / "tokenizer.json").string();
  for (const char* window : {"0", "2"}) {
    REQUIRE(run(hearth_command(fmt::format("model init --arch mistral --sliding-window {} "
                                           "--tokenizer {} -o {}",
                                           window, tokenizer, (dir / window).string())))
                .status == 0);
    REQUIRE(run(reference(fmt::format("{} --ids 4,8,15,16 --out {}.json", (dir / window).string(),
                                      (dir / window).string())))
                .status == 0);
  }
  CHECK(read_json(dir / "2" / "config.json")["sliding_window"] == 2);
  nlohmann::json full = read_json(dir / "0.json")["logits"][0];
  nlohmann::json windowed = read_json(dir / "2.json")["logits"][0];
  CHECK(full[0] == windowed[0]);
  CHECK(full[1] == windowed[1]);  // sees positions 0 and 1, as without a window
  CHECK(full[2] != windowed[2]);  // no longer sees position 0
  CHECK(full[3] != windowed[3]);
}
