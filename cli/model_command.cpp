// `hearth model builtin OUT`: writes the built-in byte-level transformer as a TorchScript file,
// a context like any model exported from PyTorch, or as a raw model file (real_backend/
// raw_model.hpp) that loads onto a GPU through the fast loader.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <thread>

#include "cli/commands.hpp"
#include "real_backend/model/builtin_model.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "real_backend/model/raw_model.hpp"
#include "real_backend/wire/file_hash.hpp"

namespace hearth::cli {

void add_model_command(CLI::App& app) {
  auto* model = app.add_subcommand("model", "Make models for hearth run");
  model->require_subcommand(1);
  struct Args {
    real::BuiltinModelOptions options;
    std::string output;
    std::string format = "torchscript";
    std::string dtype = "f32";
    int threads = 0;
  };
  add_model_directory_commands(*model);
  auto a = std::make_shared<Args>();
  auto* builtin = model->add_subcommand(
      "builtin", "Write the built-in byte-level transformer (seeded weights) as TorchScript");
  builtin->add_option("output", a->output, "The model file to write")->required();
  builtin->add_option("--dim", a->options.dim, "Width")->capture_default_str();
  builtin->add_option("--layers", a->options.layers, "Transformer blocks")->capture_default_str();
  builtin->add_option("--heads", a->options.heads, "Attention heads")->capture_default_str();
  builtin->add_option("--context", a->options.context, "Longest input it attends to, in bytes")
      ->capture_default_str();
  builtin->add_option("--ffn", a->options.ffn, "Width of each block's MLP (0: 4 x dim)")
      ->capture_default_str();
  builtin->add_option("--seed", a->options.seed, "Seed of the weights")->capture_default_str();
  builtin->add_option("--format", a->format, "torchscript, or raw (loads through the fast loader)")
      ->check(CLI::IsMember({"torchscript", "raw"}))
      ->capture_default_str();
  builtin->add_option("--dtype", a->dtype, "Weights as f32 or bf16")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  builtin->add_option("--threads", a->threads, "Threads writing a raw file (0: every core)")
      ->capture_default_str();
  builtin->callback([a] {
    real::DType dtype = real::parse_dtype(a->dtype);
    int threads =
        a->threads > 0 ? a->threads : static_cast<int>(std::thread::hardware_concurrency());
    if (a->format == "raw") {
      real::RawWriteStats s = real::write_builtin_raw_model(a->options, dtype, a->output, threads);
      fmt::print("{}: {} parameters, {} bytes, written in {:.2f} s\n", a->output, s.parameters,
                 s.file_bytes, s.seconds);
      return;
    }
    if (dtype == real::DType::f32) {
      real::torch_runtime().save_builtin(real::make_builtin_model(a->options), a->output);
    } else {
      // Made as a raw file first: the weights are never all in memory as floats.
      std::string raw = a->output + ".raw.tmp";
      real::write_builtin_raw_model(a->options, dtype, raw, threads);
      try {
        real::torch_runtime().save_torchscript(raw, a->output);
      } catch (...) {
        std::filesystem::remove(raw);
        throw;
      }
      std::filesystem::remove(raw);
    }
    real::FileDigest d = real::digest_file(a->output);
    fmt::print("{}: {} bytes, blake2b {}\n", a->output, d.size_bytes, d.hash);
  });
}

}  // namespace hearth::cli
