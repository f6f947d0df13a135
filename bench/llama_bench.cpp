// bench_llama: the Llama path (real_backend/model/llama_torch.cpp) on a small model, on the CPU:
// classify throughput of a task of 100 prompts in one call, batched and one at a time; decode
// speed after prompts of 100 and 900 tokens (with the KV cache a new token costs about the same
// after both); and the load time of the model directory, from disk and packed in memory.
//
//   bench_llama MODEL_DIR [threads]    (MODEL_DIR: `hearth model init`, context >= 1000)

#include <fmt/core.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "bench/timing.hpp"
#include "real_backend/model/model_files.hpp"
#include "real_backend/model/model_runtime.hpp"

namespace fs = std::filesystem;
using namespace hearth;
using namespace hearth::real;
using hearth::bench::best_of_3;
using hearth::bench::seconds;

namespace {

std::vector<std::int32_t> random_ids(std::mt19937& rng, std::size_t n, std::int32_t vocab) {
  std::uniform_int_distribution<std::int32_t> id(0, vocab - 1);
  std::vector<std::int32_t> out(n);
  for (auto& t : out)
    t = id(rng);
  return out;
}

// The directory's files one after another in one string, as a worker holds a context.
std::unique_ptr<ModelFiles> packed(const fs::path& dir) {
  auto pack = std::make_shared<std::string>();
  std::vector<FileSlice> slices;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    pack->append((64 - pack->size() % 64) % 64, '\0');  // each file 64-byte aligned
    slices.push_back({entry.path().filename().string(), pack->size(), bytes.size()});
    *pack += bytes;
  }
  return packed_files(pack, slices, "packed " + dir.string());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_llama MODEL_DIR [threads]\n");
    return 2;
  }
  fs::path dir = argv[1];
  ModelRuntime& rt = torch_runtime();
  rt.set_threads(argc > 2 ? std::stoi(argv[2]) : 1);
  std::shared_ptr<LoadedModel> model;
  double load_disk = best_of_3([&] { model = rt.load_model(*directory_files(dir), "cpu"); });
  LoadReport disk = rt.last_load();
  std::unique_ptr<ModelFiles> pack = packed(dir);
  double load_pack = best_of_3([&] { model = rt.load_model(*pack, "cpu"); });
  LoadReport mem = rt.last_load();
  ModelDirectory info = open_model_directory(*pack);
  const LlamaConfig& c = info.config;
  fmt::print(
      "model: {} layers, hidden {}, {} heads ({} kv), vocab {}, {:.1f} M parameters, {:.1f} MB\n",
      c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
      c.vocab_size, static_cast<double>(info.parameters) / 1e6,
      static_cast<double>(info.weight_bytes) / 1e6);
  fmt::print("load from disk: {:.3f} s ({}), packed in memory: {:.3f} s ({})\n", load_disk,
             disk.path, load_pack, mem.path);

  std::mt19937 rng(7);
  auto vocab = static_cast<std::int32_t>(c.vocab_size);
  std::vector<std::vector<std::int32_t>> prompts;
  std::uniform_int_distribution<std::size_t> length(60, 140);
  for (int i = 0; i < 100; ++i)
    prompts.push_back(random_ids(rng, length(rng), vocab));
  std::vector<std::vector<std::int32_t>> labels = {{1}, {2}, {3, 4}};
  for (std::size_t batch : {std::size_t{1}, std::size_t{0}}) {
    model->set_max_batch(batch);
    model->classify({prompts[0]}, labels);  // warm-up
    double s = best_of_3([&] { model->classify(prompts, labels); });
    fmt::print(
        "classify, 100 prompts of 60-140 tokens, labels of 1, 1 and 2 tokens, {}: {:.1f} "
        "inferences/s\n",
        batch == 1 ? "one at a time" : "batched", 100 / s);
  }
  // Generation of a task of 16 prompts, 32 new tokens each (no stop token): one call.
  std::vector<std::vector<std::int32_t>> task(prompts.begin(), prompts.begin() + 16);
  GenerateOptions options;
  options.max_new_tokens = 32;
  for (std::size_t batch : {std::size_t{1}, std::size_t{0}}) {
    model->set_max_batch(batch);
    double s = best_of_3([&] { model->generate(task, options); });
    fmt::print(
        "generate, 16 prompts of 60-140 tokens, 32 new tokens each, {}: {:.1f} tokens/s "
        "({:.2f} s, prefill included)\n",
        batch == 1 ? "one at a time" : "batched", 16 * 32 / s, s);
  }
  model->set_max_batch(0);
  // A decode step's time from the stop check's calls, one after each step: no prefill in it.
  for (std::size_t n : {100, 900}) {
    std::vector<std::int32_t> prompt = random_ids(rng, n, vocab);
    GenerateOptions options;
    options.max_new_tokens = 65;
    double best = 1e300, prefill = 0;
    for (int run = 0; run < 3; ++run) {
      std::vector<std::chrono::steady_clock::time_point> steps;
      auto start = std::chrono::steady_clock::now();
      model->generate({prompt}, options, [&](std::size_t, const std::vector<std::int32_t>&) {
        steps.push_back(std::chrono::steady_clock::now());
        return false;
      });
      double per = std::chrono::duration<double>(steps.back() - steps.front()).count() /
                   static_cast<double>(steps.size() - 1);
      if (per < best) {
        best = per;
        prefill = std::chrono::duration<double>(steps.front() - start).count();
      }
    }
    fmt::print(
        "decode after {} prompt tokens: {:.1f} tokens/s ({:.2f} ms a token; prefill and "
        "first token {:.3f} s)\n",
        n, 1 / best, best * 1e3, prefill);
  }
  return 0;
}
