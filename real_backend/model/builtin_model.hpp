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
  int ffn = 0;        // width of each block's MLP; 0: 4 * dim
  std::uint64_t seed = 1;
};

// How one tensor's values are made, so that any element can be made on its own (and a large
// model written in parallel, never whole in memory): drawn uniformly from [-limit, limit) (the
// generator's draws first_draw, first_draw + 1, ... in row-major order), a constant, or the
// causal mask (-inf above the diagonal, 0 elsewhere).
struct BuiltinTensorSpec {
  enum class Init { uniform, constant, causal_mask };
  std::string name;
  std::vector<std::int64_t> shape;
  Init init = Init::constant;
  double limit = 0;    // uniform
  float constant = 0;  // constant
  std::uint64_t first_draw = 0;
  bool buffer = false;  // a constant, not a parameter

  std::int64_t elements() const;
  float value(std::uint64_t seed, std::int64_t index) const;
};

struct BuiltinModelPlan {
  std::string source;  // TorchScript methods of the module
  std::vector<BuiltinTensorSpec> tensors;
  std::int64_t parameters() const;  // elements of every tensor but the buffers
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

// Both throw InputError for options that make no model (dim not divisible by heads, ...).
BuiltinModelPlan plan_builtin_model(const BuiltinModelOptions& options);
BuiltinModel make_builtin_model(const BuiltinModelOptions& options);

}  // namespace hearth::real
