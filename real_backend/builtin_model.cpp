#include "real_backend/builtin_model.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "policy/errors.hpp"

namespace hearth::real {

namespace {

// splitmix64: tiny, and the same everywhere (unlike std:: distributions).
class Generator {
 public:
  explicit Generator(std::uint64_t seed) : state_(seed) {}
  // Uniform in [-limit, limit).
  float uniform(double limit) {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    double u = static_cast<double>(z >> 11) * 0x1.0p-53;
    return static_cast<float>((2 * u - 1) * limit);
  }

 private:
  std::uint64_t state_;
};

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

BuiltinModel make_builtin_model(const BuiltinModelOptions& o) {
  if (o.dim < 1 || o.layers < 1 || o.heads < 1 || o.context < 1) {
    throw InputError("built-in model: dim, layers, heads and context must be positive");
  }
  if (o.dim % o.heads != 0) {
    throw InputError(
        fmt::format("built-in model: dim {} is not a multiple of heads {}", o.dim, o.heads));
  }
  const std::int64_t d = o.dim;
  Generator gen(o.seed);
  BuiltinModel m;
  auto add = [&](std::string name, std::vector<std::int64_t> shape, double limit, float fill) {
    BuiltinTensor t{std::move(name), std::move(shape), {}, false};
    std::int64_t n = 1;
    for (std::int64_t s : t.shape)
      n *= s;
    t.values.resize(static_cast<std::size_t>(n), fill);
    if (limit > 0) {
      for (float& v : t.values)
        v = gen.uniform(limit);
    }
    m.tensors.push_back(std::move(t));
  };
  // Embeddings of unit variance; linear layers as PyTorch initialises them (+-1/sqrt(fan_in)).
  add("tok", {kByteVocabulary, d}, std::sqrt(3.0), 0);
  add("pos", {o.context, d}, std::sqrt(3.0) / 2, 0);
  for (int l = 0; l < o.layers; ++l) {
    std::string p = fmt::format("l{}_", l);
    add(p + "ln1_w", {d}, 0, 1);
    add(p + "ln1_b", {d}, 0, 0);
    add(p + "qkv_w", {d, 3 * d}, 1 / std::sqrt(double(d)), 0);
    add(p + "qkv_b", {3 * d}, 0, 0);
    add(p + "proj_w", {d, d}, 1 / std::sqrt(double(d)), 0);
    add(p + "proj_b", {d}, 0, 0);
    add(p + "ln2_w", {d}, 0, 1);
    add(p + "ln2_b", {d}, 0, 0);
    add(p + "fc_w", {d, 4 * d}, 1 / std::sqrt(double(d)), 0);
    add(p + "fc_b", {4 * d}, 0, 0);
    add(p + "out_w", {4 * d, d}, 1 / std::sqrt(4.0 * d), 0);
    add(p + "out_b", {d}, 0, 0);
  }
  add("lnf_w", {d}, 0, 1);
  add("lnf_b", {d}, 0, 0);
  // Causal mask: position i attends to positions <= i.
  add("causal", {o.context, o.context}, 0, 0);
  for (int i = 0; i < o.context; ++i) {
    for (int j = i + 1; j < o.context; ++j)
      m.tensors.back().values[static_cast<std::size_t>(i * o.context + j)] =
          -std::numeric_limits<float>::infinity();
  }
  m.tensors.back().buffer = true;

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

}  // namespace hearth::real
