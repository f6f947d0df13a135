// The libtorch side of a worker, built as the plugin libhearth_torch.so: the only file that
// includes libtorch. Models are TorchScript modules, or raw model files whose weights are views
// into one device buffer; inference is one input at a time, so a result never depends on what
// else ran beside it.

#include <ATen/Parallel.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "real_backend/model/builtin_model.hpp"
#include "real_backend/model/fast_loader.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "real_backend/model/raw_model.hpp"

namespace hearth::real {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

c10::ScalarType scalar_type(DType d) {
  return d == DType::bf16 ? torch::kBFloat16 : torch::kFloat;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::string bytes(std::filesystem::file_size(path), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!in) throw std::runtime_error(path + ": cannot read");
  return bytes;
}

// A module around the weights of a raw model: each tensor a view into `blob` (bytes, on the
// module's device), so that the weights are never copied again.
torch::jit::Module raw_module(const RawModelLayout& layout, const at::Tensor& blob) {
  torch::jit::Module m("HearthBuiltin");
  for (const RawTensor& t : layout.tensors) {
    at::Tensor value =
        blob.narrow(0, static_cast<std::int64_t>(t.offset), static_cast<std::int64_t>(t.bytes))
            .view(scalar_type(t.dtype))
            .view(t.shape);
    m.register_parameter(t.name, value, t.buffer);
  }
  m.define(layout.source);
  return m;
}

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

  std::vector<InferenceResult> classify_batch(
      const std::vector<std::vector<std::int32_t>>& inputs,
      const std::vector<std::int32_t>& label_tokens) override {
    c10::InferenceMode guard;
    if (inputs.empty()) return {};
    const auto length = static_cast<std::int64_t>(inputs.front().size());
    if (length == 0) throw std::runtime_error("empty input");
    std::vector<std::int64_t> ids;
    ids.reserve(inputs.size() * inputs.front().size());
    for (const auto& input : inputs) {
      if (static_cast<std::int64_t>(input.size()) != length) {
        throw std::runtime_error("classify_batch: inputs of different lengths");
      }
      ids.insert(ids.end(), input.begin(), input.end());
    }
    at::Tensor batch = torch::tensor(ids, torch::kLong)
                           .reshape({static_cast<std::int64_t>(inputs.size()), length})
                           .to(device_);
    at::Tensor logits = logits_of(module_.forward({batch}));
    if (logits.dim() != 3) throw std::runtime_error("batched logits must have shape [B, T, V]");
    std::vector<std::int64_t> labels(label_tokens.begin(), label_tokens.end());
    at::Tensor index = torch::tensor(labels, torch::kLong).to(device_);
    at::Tensor scores =
        logits.select(1, -1).index_select(1, index).to(torch::kCPU, torch::kFloat).contiguous();
    std::vector<InferenceResult> out(inputs.size());
    const float* s = scores.data_ptr<float>();
    for (std::size_t b = 0; b < out.size(); ++b) {
      out[b].scores.assign(s + b * labels.size(), s + (b + 1) * labels.size());
      out[b].label = 0;
      for (std::size_t i = 1; i < labels.size(); ++i) {
        if (out[b].scores[i] > out[b].scores[static_cast<std::size_t>(out[b].label)]) {
          out[b].label = static_cast<int>(i);
        }
      }
    }
    return out;
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
    at::Tensor logits = logits_of(module_.forward({input.to(device_)}));
    if (logits.dim() == 3) return logits[0][-1];
    if (logits.dim() == 2) return logits[-1];
    throw std::runtime_error("logits must have shape [1, T, V] or [T, V]");
  }

  static at::Tensor logits_of(const c10::IValue& out) {
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
    return logits;
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
    c10::Device d(device);
    report_ = LoadReport{};
    try {
      if (is_raw_model(bytes)) return load_raw(bytes, d);
      auto start = Clock::now();
      std::istringstream in(bytes);
      auto model = std::make_shared<TorchModel>(torch::jit::load(in, d), d);
      report_.path = "torchscript";
      report_.copy_s = seconds_since(start);
      report_.bytes = bytes.size();
      return model;
    } catch (const c10::Error& e) {
      throw std::runtime_error(std::string("not a loadable TorchScript model: ") +
                               e.what_without_backtrace());
    }
  }

  std::shared_ptr<LoadedModel> load_file(const std::string& path,
                                         const std::string& device) override {
    c10::Device d(device);
    std::string first(16, '\0');
    {
      std::ifstream in(path, std::ios::binary);
      in.read(first.data(), 16);
    }
    FastLoader* loader = nullptr;
    std::string reason;
    if (is_raw_model(first) && d.is_cuda()) loader = fast_loader(d, reason);
    if (!loader) {
      auto start = Clock::now();
      std::string bytes = read_file(path);
      double read_s = seconds_since(start);
      auto model = load(bytes, device);
      report_.read_s = read_s;
      return model;
    }
    report_ = LoadReport{};
    try {
      RawModelLayout layout = read_raw_model_layout(path);
      auto start = Clock::now();
      at::Tensor blob = torch::empty({static_cast<std::int64_t>(layout.data_bytes)},
                                     torch::TensorOptions().dtype(torch::kByte).device(d));
      torch::cuda::synchronize(d.index());  // as in load_raw
      loader->file_to_device(path, layout.data_offset, layout.data_bytes, blob.data_ptr());
      report_.path = "raw-fast-file";
      return build_raw(layout, blob, d, start);
    } catch (const c10::Error& e) {
      throw std::runtime_error(std::string("cannot build the model: ") +
                               e.what_without_backtrace());
    }
  }

  LoadReport last_load() const override { return report_; }

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

  void save_torchscript(const std::string& raw_model_path, const std::string& path) override {
    std::string bytes = read_file(raw_model_path);
    RawModelLayout layout = parse_raw_model(bytes, bytes.size(), raw_model_path);
    torch::jit::Module m("HearthBuiltin");
    for (const RawTensor& t : layout.tensors) {
      void* data = bytes.data() + layout.data_offset + t.offset;
      m.register_parameter(t.name, torch::from_blob(data, t.shape, scalar_type(t.dtype)).clone(),
                           t.buffer);
    }
    m.define(layout.source);
    m.save(path);
  }

 private:
  // A raw model from host memory: its data region into one device buffer, the fast way on a GPU
  // when the fast loader is there, else with one plain copy.
  std::shared_ptr<LoadedModel> load_raw(const std::string& bytes, c10::Device d) {
    RawModelLayout layout = parse_raw_model(bytes, bytes.size(), "the model");
    const char* data = bytes.data() + layout.data_offset;
    const auto n = static_cast<std::int64_t>(layout.data_bytes);
    auto start = Clock::now();
    at::Tensor host = torch::from_blob(const_cast<char*>(data), {n}, torch::kByte);
    at::Tensor blob;
    report_.path = "raw-plain";
    if (d.is_cuda()) {
      blob = torch::empty({n}, torch::TensorOptions().dtype(torch::kByte).device(d));
      if (FastLoader* loader = fast_loader(d, report_.fallback_reason)) {
        // The loader copies on streams of its own: nothing queued on libtorch's may still use
        // the memory the new buffer reuses.
        torch::cuda::synchronize(d.index());
        loader->host_to_device(data, layout.data_bytes, blob.data_ptr());
        report_.path = "raw-fast";
      } else {
        blob.copy_(host);
      }
    } else {
      blob = host.clone();  // the model outlives the caller's bytes
    }
    return build_raw(layout, blob, d, start);
  }

  // The model whose data region `blob` holds on `d`, copied there since `copy_start`; the copy's
  // and the build's times go into the report.
  std::shared_ptr<LoadedModel> build_raw(const RawModelLayout& layout, const at::Tensor& blob,
                                         c10::Device d, Clock::time_point copy_start) {
    report_.copy_s = seconds_since(copy_start);
    report_.bytes = layout.data_bytes;
    auto start = Clock::now();
    auto model = std::make_shared<TorchModel>(raw_module(layout, blob), d);
    report_.build_s = seconds_since(start);
    return model;
  }

  // The fast loader of a CUDA device, made on first use; null, with the reason, where there is
  // none (no CUDA build, no driver) or HEARTH_FAST_LOADER=0 turns it off.
  FastLoader* fast_loader(c10::Device d, std::string& reason) {
    if (const char* env = std::getenv("HEARTH_FAST_LOADER"); env && std::string(env) == "0") {
      reason = "HEARTH_FAST_LOADER=0";
      return nullptr;
    }
    int index = d.has_index() ? d.index() : 0;
    if (auto it = loaders_.find(index); it != loaders_.end()) {
      reason = it->second.reason;
      return it->second.loader.get();
    }
    Loader& l = loaders_[index];
    try {
      l.loader = std::make_unique<FastLoader>(index);
    } catch (const FastLoaderUnavailable& e) {
      l.reason = e.what();
    }
    reason = l.reason;
    return l.loader.get();
  }

  struct Loader {
    std::unique_ptr<FastLoader> loader;
    std::string reason;
  };
  std::map<int, Loader> loaders_;
  LoadReport report_;
};

}  // namespace

}  // namespace hearth::real

extern "C" hearth::real::ModelRuntime* hearth_create_torch_runtime() {
  return new hearth::real::TorchRuntime();
}
