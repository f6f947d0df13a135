// `hearth model init` writes a Hugging Face model directory (Llama, Mistral, Qwen2, Qwen3) with
// seeded random weights, for tests and benchmarks of any size; `hearth model inspect` checks one
// (real_backend/model/model_files.hpp) and says what it holds; `hearth model tokenize` prints the
// token ids of lines on stdin.

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.hpp"
#include "policy/errors.hpp"
#include "real_backend/model/llama_config.hpp"
#include "real_backend/model/model_files.hpp"
#include "real_backend/model/random_model.hpp"
#include "real_backend/text/tokenizer.hpp"

namespace hearth::cli {

namespace {

namespace fs = std::filesystem;

struct InitArgs {
  std::string arch = "llama";
  std::string tokenizer;
  std::string tokenizer_config;
  std::int64_t layers = 2;
  std::int64_t dim = 64;
  std::int64_t heads = 4;
  std::int64_t kv_heads = 2;
  std::int64_t ffn = 0;
  std::int64_t vocab = 0;
  std::int64_t head_dim = 0;
  std::int64_t context = 256;
  double rope_theta = 10000;
  double rms_norm_eps = 1e-5;
  std::string rope_scaling = "none";
  std::int64_t sliding_window = 0;
  bool attention_bias = false;
  std::string dtype = "f32";
  std::uint64_t seed = 1;
  bool tie = false;
  std::uint64_t shard_bytes = 0;
  int threads = 0;
  bool force = false;
  std::string output;
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": cannot read");
  return {std::istreambuf_iterator<char>(in), {}};
}

real::LlamaConfig config_of(const InitArgs& a, const real::TokenizerFacts& tokenizer) {
  real::LlamaConfig c;
  c.arch = real::parse_llama_arch(a.arch);
  c.vocab_size = a.vocab > 0 ? a.vocab : tokenizer.size;
  if (c.vocab_size < tokenizer.size) {
    throw InputError(fmt::format("--vocab {} is smaller than the tokenizer's {} tokens",
                                 c.vocab_size, tokenizer.size));
  }
  c.hidden_size = a.dim;
  c.intermediate_size = a.ffn > 0 ? a.ffn : 4 * a.dim;
  c.num_hidden_layers = a.layers;
  c.num_attention_heads = a.heads;
  c.num_key_value_heads = a.kv_heads;
  c.head_dim = a.head_dim > 0 ? a.head_dim : (a.heads > 0 ? a.dim / a.heads : 0);
  c.max_position_embeddings = a.context;
  c.rms_norm_eps = a.rms_norm_eps;
  c.rope_theta = a.rope_theta;
  if (a.rope_scaling == "llama3") {
    // Llama 3.1's factors; the original context is this one's, so that a tiny head_dim still has
    // frequencies in all three bands (kept, blended, divided).
    c.rope_scaling = {.llama3 = true,
                      .factor = 8,
                      .low_freq_factor = 1,
                      .high_freq_factor = 4,
                      .original_max_position_embeddings = a.context};
  }
  c.tie_word_embeddings = a.tie;
  if (a.sliding_window > 0) {
    if (c.arch != real::LlamaArch::mistral) throw InputError("--sliding-window: Mistral's only");
    c.sliding_window = a.sliding_window;
  }
  c.dtype = real::parse_dtype(a.dtype);
  c.bos_token_id = tokenizer.bos_token_id;
  if (tokenizer.eos_token_id) c.eos_token_ids = {*tokenizer.eos_token_id};
  // Through config.json's own parser: one set of checks (heads dividing, sizes positive, the
  // architecture's biases and norms) whether the config comes from a file or from flags.
  std::string json = real::llama_config_json(c);
  if (a.attention_bias && c.arch != real::LlamaArch::qwen2) {
    if (c.arch == real::LlamaArch::mistral) {
      throw InputError("--attention-bias: Mistral has no attention biases");
    }
    auto j = nlohmann::json::parse(json);
    j["attention_bias"] = true;
    json = j.dump();
  }
  return real::parse_llama_config(json, "the flags");
}

void init(const InitArgs& a) {
  auto start = std::chrono::steady_clock::now();
  const fs::path tokenizer_path = a.tokenizer;
  fs::path tokenizer_config_path = a.tokenizer_config;
  if (tokenizer_config_path.empty() &&
      fs::is_regular_file(tokenizer_path.parent_path() / "tokenizer_config.json")) {
    tokenizer_config_path = tokenizer_path.parent_path() / "tokenizer_config.json";
  }
  const real::TokenizerFacts tokenizer = real::read_tokenizer_facts(
      read_text(tokenizer_path),
      tokenizer_config_path.empty() ? "" : read_text(tokenizer_config_path),
      tokenizer_path.string());
  const real::LlamaConfig config = config_of(a, tokenizer);

  const fs::path out = fs::path(a.output).lexically_normal();
  std::error_code ec;
  if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec)) && !a.force) {
    throw InputError(fmt::format("{}: exists and is not an empty directory (--force replaces it)",
                                 out.string()));
  }
  // Made beside it, then renamed: a crash leaves no half model where the model should be.
  const fs::path temp = out.parent_path() / fmt::format(".{}.init-{}", out.filename().string(),
                                                        static_cast<long>(::getpid()));
  fs::remove_all(temp);
  fs::create_directories(temp);
  try {
    const int threads =
        a.threads > 0 ? a.threads : static_cast<int>(std::thread::hardware_concurrency());
    real::RandomModelStats stats =
        real::write_random_model(config, a.seed, a.shard_bytes, threads, temp);
    fs::copy_file(tokenizer_path, temp / "tokenizer.json");
    if (!tokenizer_config_path.empty()) {
      fs::copy_file(tokenizer_config_path, temp / "tokenizer_config.json");
    }
    if (fs::exists(out)) fs::remove_all(out);
    fs::rename(temp, out);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print(
        "{}: {} {}, {} parameters, {} bytes of {} weights in {} file{}, written in {:.2f} s\n",
        out.string(), real::architecture_name(config.arch), real::to_string(config.arch),
        stats.parameters, stats.weight_bytes, real::to_string(config.dtype), stats.weight_files,
        stats.weight_files == 1 ? "" : "s", seconds);
  } catch (...) {
    fs::remove_all(temp, ec);
    throw;
  }
}

std::string id_text(const std::optional<std::int32_t>& id) {
  return id ? std::to_string(*id) : "none";
}

void inspect(const std::string& dir, bool as_json) {
  auto files = real::directory_files(dir);
  real::ModelDirectory d = real::open_model_directory(*files);
  const real::LlamaConfig& c = d.config;
  std::optional<std::int64_t> tokens;
  std::string tokenizer_summary;
  if (d.has_tokenizer) {
    // The tokenizer as runs read it: an unsupported one is refused here, by name.
    text::Tokenizer t = text::Tokenizer::from_json(files->read("tokenizer.json"),
                                                   files->where() + "tokenizer.json");
    tokens = static_cast<std::int64_t>(t.vocab_size());
    tokenizer_summary = t.summary();
  }
  std::vector<std::string> weight_files;
  for (const real::WeightFile& w : d.weights)
    weight_files.push_back(w.name);
  std::map<std::string, int> dtypes;  // of the tensors, which may differ from torch_dtype
  for (const auto& [name, where] : d.tensors)
    ++dtypes[std::string(real::to_string(where.second->dtype))];

  if (as_json) {
    nlohmann::ordered_json j;
    j["directory"] = dir;
    j["architecture"] = real::architecture_name(c.arch);
    j["arch"] = real::to_string(c.arch);
    j["layers"] = c.num_hidden_layers;
    j["hidden_size"] = c.hidden_size;
    j["heads"] = c.num_attention_heads;
    j["kv_heads"] = c.num_key_value_heads;
    j["head_dim"] = c.head_dim;
    j["intermediate_size"] = c.intermediate_size;
    j["vocab_size"] = c.vocab_size;
    j["context"] = c.max_position_embeddings;
    j["rope_theta"] = c.rope_theta;
    j["rope_scaling"] = c.rope_scaling.llama3 ? "llama3" : "none";
    j["tie_word_embeddings"] = c.tie_word_embeddings;
    j["attention_bias"] = c.attention_bias;
    j["attention_output_bias"] = c.attention_output_bias;
    j["qk_norm"] = c.qk_norm;
    j["sliding_window"] = c.sliding_window ? nlohmann::ordered_json(*c.sliding_window) : nullptr;
    j["dtype"] = real::to_string(c.dtype);
    j["tensor_dtypes"] = dtypes;
    j["parameters"] = d.parameters;
    j["weight_bytes"] = d.weight_bytes;
    j["weight_files"] = weight_files;
    j["tokenizer"] = d.has_tokenizer;
    j["tokenizer_tokens"] = tokens ? nlohmann::ordered_json(*tokens) : nullptr;
    j["tokenizer_summary"] = tokenizer_summary;
    j["tokenizer_config"] = d.has_tokenizer_config;
    j["bos_token_id"] = d.bos_token_id ? nlohmann::ordered_json(*d.bos_token_id) : nullptr;
    j["eos_token_ids"] = d.eos_token_ids;
    fmt::print("{}\n", j.dump(2));
    return;
  }
  std::vector<std::string> features;
  if (c.rope_scaling.llama3) {
    features.push_back(fmt::format("llama3 rope scaling x{} from {}", c.rope_scaling.factor,
                                   c.rope_scaling.original_max_position_embeddings));
  }
  if (c.attention_output_bias)
    features.push_back("q/k/v/o biases");
  else if (c.attention_bias)
    features.push_back("q/k/v biases");
  if (c.qk_norm) features.push_back("q/k norms");
  if (c.sliding_window) features.push_back(fmt::format("sliding window {}", *c.sliding_window));
  features.push_back(c.tie_word_embeddings ? "tied embeddings" : "untied embeddings");
  std::vector<std::string> dtype_counts;
  for (const auto& [dtype, n] : dtypes)
    dtype_counts.push_back(fmt::format("{} {}", n, dtype));

  fmt::print("{}\n", files->where());
  fmt::print("  architecture  {} ({})\n", real::architecture_name(c.arch), real::to_string(c.arch));
  fmt::print("  shape         {} layers, dim {}, {} heads, {} kv heads, head dim {}, ffn {}\n",
             c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
             c.head_dim, c.intermediate_size);
  fmt::print("  vocab         {}\n", c.vocab_size);
  fmt::print("  context       {} (rope theta {})\n", c.max_position_embeddings, c.rope_theta);
  fmt::print("  features      {}\n", fmt::join(features, ", "));
  fmt::print("  parameters    {}\n", d.parameters);
  fmt::print("  dtype         {} (tensors: {})\n", real::to_string(c.dtype),
             fmt::join(dtype_counts, ", "));
  fmt::print("  weight bytes  {}\n", d.weight_bytes);
  fmt::print("  files         {}\n", fmt::join(weight_files, ", "));
  fmt::print("  tokenizer     {}{}\n",
             tokens ? tokenizer_summary : std::string("no tokenizer.json"),
             d.has_tokenizer_config ? "; tokenizer_config.json present" : "");
  fmt::print("  bos           {}\n", id_text(d.bos_token_id));
  fmt::print("  eos           {}\n", fmt::join(d.eos_token_ids, ", "));
}

// Each line of stdin (without its newline) as a JSON array of token ids, one line out per line in.
void tokenize(const std::string& dir, bool add_special_tokens) {
  fs::path file = fs::path(dir) / "tokenizer.json";
  if (!fs::is_regular_file(file)) {
    throw InputError(fmt::format("{}: no tokenizer.json in the model directory", dir));
  }
  text::Tokenizer t = text::Tokenizer::from_file(file);
  std::string line;
  while (std::getline(std::cin, line)) {
    fmt::print("[{}]\n", fmt::join(t.encode(line, add_special_tokens), ","));
    std::fflush(stdout);
  }
}

}  // namespace

void add_model_directory_commands(CLI::App& model) {
  auto a = std::make_shared<InitArgs>();
  auto* init_command = model.add_subcommand(
      "init",
      "Write a Hugging Face model directory (Llama, Mistral, Qwen2, Qwen3) with seeded "
      "random weights");
  init_command->add_option("-o,--output", a->output, "The directory to write")->required();
  init_command->add_option("--arch", a->arch, "llama, mistral, qwen2 or qwen3")
      ->check(CLI::IsMember({"llama", "mistral", "qwen2", "qwen3"}))
      ->capture_default_str();
  init_command->add_option("--tokenizer", a->tokenizer, "tokenizer.json to copy in")
      ->required()
      ->check(CLI::ExistingFile);
  init_command
      ->add_option("--tokenizer-config", a->tokenizer_config,
                   "tokenizer_config.json to copy in (default: the one beside "
                   "--tokenizer, if any); its bos_token and eos_token give the ids")
      ->check(CLI::ExistingFile);
  init_command->add_option("--layers", a->layers, "Decoder layers")->capture_default_str();
  init_command->add_option("--dim", a->dim, "hidden_size")->capture_default_str();
  init_command->add_option("--heads", a->heads, "Attention heads")->capture_default_str();
  init_command->add_option("--kv-heads", a->kv_heads, "Key/value heads (GQA)")
      ->capture_default_str();
  init_command->add_option("--ffn", a->ffn, "intermediate_size (0: 4 x dim)")
      ->capture_default_str();
  init_command->add_option("--vocab", a->vocab, "vocab_size (0: the tokenizer's size)")
      ->capture_default_str();
  init_command->add_option("--head-dim", a->head_dim, "head_dim (0: dim / heads)")
      ->capture_default_str();
  init_command->add_option("--context", a->context, "max_position_embeddings")
      ->capture_default_str();
  init_command->add_option("--rope-theta", a->rope_theta, "rope_theta")->capture_default_str();
  init_command->add_option("--rms-norm-eps", a->rms_norm_eps, "rms_norm_eps")
      ->capture_default_str();
  init_command
      ->add_option("--rope-scaling", a->rope_scaling,
                   "none, or llama3 (factor 8, frequency factors 1 and 4, from --context)")
      ->check(CLI::IsMember({"none", "llama3"}))
      ->capture_default_str();
  init_command->add_option("--sliding-window", a->sliding_window, "Mistral's (0: none)")
      ->capture_default_str();
  init_command->add_flag("--attention-bias", a->attention_bias,
                         "Biases on q/k/v/o (Llama, Qwen3; Qwen2 always has q/k/v biases)");
  init_command->add_option("--dtype", a->dtype, "f32, bf16 or f16")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}))
      ->capture_default_str();
  init_command->add_option("--seed", a->seed, "Seed of the weights")->capture_default_str();
  init_command->add_flag("--tie,!--no-tie", a->tie, "lm_head shares the embedding's weights")
      ->capture_default_str();
  init_command
      ->add_option("--shard-bytes", a->shard_bytes,
                   "Shards of at most this many bytes, with an index (0: one file)")
      ->capture_default_str();
  init_command->add_option("--threads", a->threads, "Threads making weights (0: every core)")
      ->capture_default_str();
  init_command->add_flag("--force", a->force, "Replace the directory if it exists");
  init_command->callback([a] { init(*a); });

  auto dir = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto* inspect_command =
      model.add_subcommand("inspect", "Check a Hugging Face model directory and say what it holds");
  inspect_command->add_option("directory", *dir, "The model directory")->required();
  inspect_command->add_flag("--json", *as_json, "Print JSON");
  inspect_command->callback([dir, as_json] { inspect(*dir, *as_json); });

  auto tokenize_dir = std::make_shared<std::string>();
  auto no_special = std::make_shared<bool>(false);
  auto* tokenize_command = model.add_subcommand(
      "tokenize",
      "Token ids of each line on stdin, as a JSON array per line, with the special tokens the "
      "tokenizer's post-processor adds");
  tokenize_command->add_option("directory", *tokenize_dir, "The model directory")->required();
  tokenize_command->add_flag("--no-special-tokens", *no_special,
                             "Leave out the special tokens the post-processor adds");
  tokenize_command->callback([tokenize_dir, no_special] { tokenize(*tokenize_dir, !*no_special); });
}

}  // namespace hearth::cli
