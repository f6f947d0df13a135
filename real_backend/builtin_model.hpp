#pragma once
// The built-in model: a small byte-level (256-token) GPT-style transformer, written as TorchScript
// source with parameters drawn from the project's own seeded generator, so that the same options
// give the same file on every machine and every libtorch. `hearth model builtin` saves it; it is
// then a context file like any TorchScript model a user brings.

#include <cstdint>
#include <string>
#include <vector>

namespace hearth::real {

struct BuiltinModelOptions {
  int dim = 64;
  int layers = 2;
  int heads = 4;
  int context = 128;  // longest input it attends to; longer inputs keep their last tokens
  std::uint64_t seed = 1;
};

struct BuiltinTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> values;
  bool buffer = false;  // a constant, not a parameter
};

struct BuiltinModel {
  std::string source;  // TorchScript methods of the module
  std::vector<BuiltinTensor> tensors;
};

inline constexpr int kByteVocabulary = 256;

// Throws InputError for options that make no model (dim not divisible by heads, ...).
BuiltinModel make_builtin_model(const BuiltinModelOptions& options);

}  // namespace hearth::real
