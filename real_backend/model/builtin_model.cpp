#include "real_backend/model/builtin_model.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "policy/errors.hpp"

namespace hearth::real {

namespace {

// The k-th draw (from 0) of splitmix64 seeded with `seed`, uniform in [-limit, limit): tiny, the
// same everywhere (unlike std:: distributions), and computable for any k on its own.
float uniform_draw(std::uint64_t seed, std::uint64_t k, double limit) {
  std::uint64_t z = seed + (k + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  double u = static_cast<double>(z >> 11) * 0x1.0p-53;
  return static_cast<float>((2 * u - 1) * limit);
}

constexpr const char* kBlock = R"(
def _block(self, x: Tensor, mask: Tensor, ln1_w: Tensor, ln1_b: Tensor, qkv_w: Tensor,
           qkv_b: Tensor, proj_w: Tensor, proj_b: Tensor, ln2_w: Tensor, ln2_b: Tensor,
           fc_w: Tensor, fc_b: Tensor, out_w: Tensor, out_b: Tensor) -> Tensor:
    B = x.size(0)
    T = x.size(1)
    h = torch.layer_norm(x, [{D}], ln1_w, ln1_b, 1e-5)
    qkv = torch.matmul(h, qkv_w) + qkv_b
    q = qkv[:, :, 0:{D}].reshape(B, T, {H}, {HD}).transpose(1, 2)
    k = qkv[:, :, {D}:{D2}].reshape(B, T, {H}, {HD}).transpose(1, 2)
    v = qkv[:, :, {D2}:{D3}].reshape(B, T, {H}, {HD}).transpose(1, 2)
    att = torch.softmax(torch.matmul(q, k.transpose(2, 3)) * {SCALE} + mask, -1)
    y = torch.matmul(att, v).transpose(1, 2).reshape(B, T, {D})
    x = x + torch.matmul(y, proj_w) + proj_b
    h = torch.layer_norm(x, [{D}], ln2_w, ln2_b, 1e-5)
    h = torch.gelu(torch.matmul(h, fc_w) + fc_b)
    return x + torch.matmul(h, out_w) + out_b
)";

}  // namespace

std::int64_t BuiltinTensorSpec::elements() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape)
    n *= d;
  return n;
}

float BuiltinTensorSpec::value(std::uint64_t seed, std::int64_t index) const {
  switch (init) {
    case Init::uniform:
      return uniform_draw(seed, first_draw + static_cast<std::uint64_t>(index), limit);
    case Init::constant:
      return constant;
    case Init::causal_mask:
      return index % shape[1] > index / shape[1] ? -std::numeric_limits<float>::infinity() : 0.0f;
  }
  return 0;
}

std::int64_t BuiltinModelPlan::parameters() const {
  std::int64_t n = 0;
  for (const BuiltinTensorSpec& t : tensors) {
    if (!t.buffer) n += t.elements();
  }
  return n;
}

BuiltinModelPlan plan_builtin_model(const BuiltinModelOptions& o) {
  if (o.dim < 1 || o.layers < 1 || o.heads < 1 || o.context < 1 || o.ffn < 0) {
    throw InputError("built-in model: dim, layers, heads and context must be positive");
  }
  if (o.dim % o.heads != 0) {
    throw InputError(
        fmt::format("built-in model: dim {} is not a multiple of heads {}", o.dim, o.heads));
  }
  const std::int64_t d = o.dim;
  const std::int64_t f = o.ffn > 0 ? o.ffn : 4 * d;
  BuiltinModelPlan m;
  std::uint64_t draws = 0;
  auto uniform = [&](std::string name, std::vector<std::int64_t> shape, double limit) {
    BuiltinTensorSpec t{std::move(name),
                        std::move(shape),
                        BuiltinTensorSpec::Init::uniform,
                        limit,
                        0,
                        draws,
                        false};
    draws += static_cast<std::uint64_t>(t.elements());
    m.tensors.push_back(std::move(t));
  };
  auto constant = [&](std::string name, std::vector<std::int64_t> shape, float value) {
    m.tensors.push_back(BuiltinTensorSpec{std::move(name), std::move(shape),
                                          BuiltinTensorSpec::Init::constant, 0, value, 0, false});
  };
  // Embeddings of unit variance; linear layers as PyTorch initialises them (+-1/sqrt(fan_in)).
  uniform("tok", {kByteVocabulary, d}, std::sqrt(3.0));
  uniform("pos", {o.context, d}, std::sqrt(3.0) / 2);
  for (int l = 0; l < o.layers; ++l) {
    std::string p = fmt::format("l{}_", l);
    constant(p + "ln1_w", {d}, 1);
    constant(p + "ln1_b", {d}, 0);
    uniform(p + "qkv_w", {d, 3 * d}, 1 / std::sqrt(double(d)));
    constant(p + "qkv_b", {3 * d}, 0);
    uniform(p + "proj_w", {d, d}, 1 / std::sqrt(double(d)));
    constant(p + "proj_b", {d}, 0);
    constant(p + "ln2_w", {d}, 1);
    constant(p + "ln2_b", {d}, 0);
    uniform(p + "fc_w", {d, f}, 1 / std::sqrt(double(d)));
    constant(p + "fc_b", {f}, 0);
    uniform(p + "out_w", {f, d}, 1 / std::sqrt(double(f)));
    constant(p + "out_b", {d}, 0);
  }
  constant("lnf_w", {d}, 1);
  constant("lnf_b", {d}, 0);
  // Causal mask: position i attends to positions <= i.
  m.tensors.push_back(BuiltinTensorSpec{
      "causal", {o.context, o.context}, BuiltinTensorSpec::Init::causal_mask, 0, 0, 0, true});

  m.source =
      fmt::format(kBlock, fmt::arg("D", d), fmt::arg("D2", 2 * d), fmt::arg("D3", 3 * d),
                  fmt::arg("H", o.heads), fmt::arg("HD", d / o.heads),
                  fmt::arg("SCALE", fmt::format("{:.17g}", 1 / std::sqrt(double(d / o.heads)))));
  std::string forward = fmt::format(
      "\ndef forward(self, input_ids: Tensor) -> Tensor:\n"
      "    input_ids = input_ids[:, -{P}:]\n"
      "    T = input_ids.size(1)\n"
      "    x = torch.embedding(self.tok, input_ids) + self.pos[0:T]\n"
      "    mask = self.causal[0:T, 0:T]\n",
      fmt::arg("P", o.context));
  for (int l = 0; l < o.layers; ++l) {
    forward += fmt::format(
        "    x = self._block(x, mask, self.l{0}_ln1_w, self.l{0}_ln1_b, self.l{0}_qkv_w, "
        "self.l{0}_qkv_b, self.l{0}_proj_w, self.l{0}_proj_b, self.l{0}_ln2_w, self.l{0}_ln2_b, "
        "self.l{0}_fc_w, self.l{0}_fc_b, self.l{0}_out_w, self.l{0}_out_b)\n",
        l);
  }
  forward += "    x = torch.layer_norm(x, [" + std::to_string(d) +
             "], self.lnf_w, self.lnf_b, 1e-5)\n"
             "    return torch.matmul(x, self.tok.t())\n";
  m.source += forward;
  return m;
}

BuiltinModel make_builtin_model(const BuiltinModelOptions& options) {
  BuiltinModelPlan plan = plan_builtin_model(options);
  BuiltinModel m;
  m.source = std::move(plan.source);
  for (BuiltinTensorSpec& spec : plan.tensors) {
    BuiltinTensor t{spec.name, spec.shape, {}, spec.buffer};
    t.values.resize(static_cast<std::size_t>(spec.elements()));
    for (std::int64_t i = 0; i < spec.elements(); ++i)
      t.values[static_cast<std::size_t>(i)] = spec.value(options.seed, i);
    m.tensors.push_back(std::move(t));
  }
  return m;
}

}  // namespace hearth::real
