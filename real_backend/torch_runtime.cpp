// The libtorch side of a worker, built as the plugin libhearth_torch.so: the only file that
// includes libtorch. Models are TorchScript modules; inference is one input at a time, so a
// result never depends on what else ran beside it.

#include <ATen/Parallel.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <sstream>
#include <stdexcept>

#include "real_backend/builtin_model.hpp"
#include "real_backend/model_runtime.hpp"

namespace hearth::real {

namespace {

class TorchModel final : public LoadedModel {
 public:
  TorchModel(torch::jit::Module module, c10::Device device)
      : module_(std::move(module)), device_(device) {
    module_.eval();
  }

  InferenceResult classify(const std::vector<std::int32_t>& input,
                           const std::vector<std::int32_t>& label_tokens) override {
    c10::InferenceMode guard;
    at::Tensor last = last_logits(input);
    std::vector<std::int64_t> labels(label_tokens.begin(), label_tokens.end());
    at::Tensor index = torch::tensor(labels, torch::kLong).to(device_);
    at::Tensor scores = last.index_select(0, index).to(torch::kCPU, torch::kFloat).contiguous();
    InferenceResult r;
    r.scores.assign(scores.data_ptr<float>(), scores.data_ptr<float>() + scores.numel());
    r.label = 0;
    for (std::size_t i = 1; i < r.scores.size(); ++i) {
      if (r.scores[i] > r.scores[static_cast<std::size_t>(r.label)]) r.label = static_cast<int>(i);
    }
    return r;
  }

  InferenceResult generate(const std::vector<std::int32_t>& input, std::uint32_t max_new_tokens,
                           std::int32_t stop_token) override {
    c10::InferenceMode guard;
    std::vector<std::int32_t> ids = input;
    InferenceResult r;
    for (std::uint32_t i = 0; i < max_new_tokens; ++i) {
      auto next = static_cast<std::int32_t>(last_logits(ids).argmax().item<std::int64_t>());
      r.tokens.push_back(next);
      ids.push_back(next);
      if (next == stop_token) break;
    }
    return r;
  }

 private:
  // Logits at the last position, shape [V].
  at::Tensor last_logits(const std::vector<std::int32_t>& ids) {
    if (ids.empty()) throw std::runtime_error("empty input");
    std::vector<std::int64_t> wide(ids.begin(), ids.end());
    at::Tensor input =
        torch::tensor(wide, torch::kLong).reshape({1, static_cast<std::int64_t>(ids.size())});
    c10::IValue out = module_.forward({input.to(device_)});
    at::Tensor logits;
    if (out.isTensor()) {
      logits = out.toTensor();
    } else if (out.isTuple() && !out.toTupleRef().elements().empty()) {
      logits = out.toTupleRef().elements()[0].toTensor();
    } else if (out.isGenericDict() && out.toGenericDict().contains("logits")) {
      logits = out.toGenericDict().at("logits").toTensor();
    } else {
      throw std::runtime_error(
          "forward(input_ids) returned neither logits nor a tuple or dict of them");
    }
    if (logits.dim() == 3) return logits[0][-1];
    if (logits.dim() == 2) return logits[-1];
    throw std::runtime_error("logits must have shape [1, T, V] or [T, V]");
  }

  torch::jit::Module module_;
  c10::Device device_;
};

class TorchRuntime final : public ModelRuntime {
 public:
  TorchRuntime() {
    // The plain interpreter: the profiling executor may re-optimise a graph after its first runs,
    // which could change results in the last bits between a worker's first and later inferences.
    torch::jit::setGraphExecutorOptimize(false);
  }

  std::string resolve_device(const std::string& requested) override {
    bool cuda = torch::cuda::is_available();
    if (requested == "cpu" || (requested == "auto" && !cuda)) return "cpu";
    if (requested == "auto") return "cuda:0";
    if (requested.rfind("cuda", 0) != 0) {
      throw std::runtime_error("device must be auto, cpu, cuda or cuda:N, not " + requested);
    }
    if (!cuda)
      throw std::runtime_error(requested + " asked for, but this libtorch sees no CUDA GPU");
    c10::Device d(requested == "cuda" ? std::string("cuda:0") : requested);
    if (d.index() >= static_cast<int>(torch::cuda::device_count())) {
      throw std::runtime_error(requested + " asked for, but only " +
                               std::to_string(torch::cuda::device_count()) + " GPUs are visible");
    }
    return d.str();
  }

  void set_threads(int threads) override { at::set_num_threads(threads); }

  std::shared_ptr<LoadedModel> load(const std::string& bytes, const std::string& device) override {
    std::istringstream in(bytes);
    c10::Device d(device);
    try {
      return std::make_shared<TorchModel>(torch::jit::load(in, d), d);
    } catch (const c10::Error& e) {
      throw std::runtime_error(std::string("not a loadable TorchScript model: ") +
                               e.what_without_backtrace());
    }
  }

  void save_builtin(const BuiltinModel& model, const std::string& path) override {
    torch::jit::Module m("HearthBuiltin");
    for (const BuiltinTensor& t : model.tensors) {
      at::Tensor value =
          torch::from_blob(const_cast<float*>(t.values.data()), t.shape, torch::kFloat).clone();
      m.register_parameter(t.name, value, t.buffer);
    }
    m.define(model.source);
    m.save(path);
  }
};

}  // namespace

}  // namespace hearth::real

extern "C" hearth::real::ModelRuntime* hearth_create_torch_runtime() {
  return new hearth::real::TorchRuntime();
}
