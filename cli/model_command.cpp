// `hearth model builtin OUT`: writes the built-in byte-level transformer as a TorchScript file,
// a context like any model exported from PyTorch.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/commands.hpp"
#include "real_backend/builtin_model.hpp"
#include "real_backend/file_hash.hpp"
#include "real_backend/model_runtime.hpp"

namespace hearth::cli {

void add_model_command(CLI::App& app) {
  auto* model = app.add_subcommand("model", "Make models for hearth run");
  model->require_subcommand(1);
  struct Args {
    real::BuiltinModelOptions options;
    std::string output;
  };
  auto a = std::make_shared<Args>();
  auto* builtin = model->add_subcommand(
      "builtin", "Write the built-in byte-level transformer (seeded weights) as TorchScript");
  builtin->add_option("output", a->output, "The model file to write")->required();
  builtin->add_option("--dim", a->options.dim, "Width")->capture_default_str();
  builtin->add_option("--layers", a->options.layers, "Transformer blocks")->capture_default_str();
  builtin->add_option("--heads", a->options.heads, "Attention heads")->capture_default_str();
  builtin->add_option("--context", a->options.context, "Longest input it attends to, in bytes")
      ->capture_default_str();
  builtin->add_option("--seed", a->options.seed, "Seed of the weights")->capture_default_str();
  builtin->callback([a] {
    real::BuiltinModel m = real::make_builtin_model(a->options);
    real::torch_runtime().save_builtin(m, a->output);
    real::FileDigest d = real::digest_file(a->output);
    fmt::print("{}: {} bytes, blake2b {}\n", a->output, d.size_bytes, d.hash);
  });
}

}  // namespace hearth::cli
