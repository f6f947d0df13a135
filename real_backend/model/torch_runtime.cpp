// The libtorch side of a worker, built as the plugin libhearth_torch.so (with llama_torch.cpp, the
// Llama family from Hugging Face directories). Models here are TorchScript modules, or raw model
// files whose weights are views into one device buffer; their inference is one input at a time,
// so a result never depends on what else ran beside it.

#include <ATen/Parallel.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "os/clock.hpp"
#include "real_backend/model/builtin_model.hpp"
#include "real_backend/model/fast_loader.hpp"
#include "real_backend/model/inference.hpp"
#include "real_backend/model/llama_torch.hpp"
#include "real_backend/model/model_files.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "real_backend/model/raw_model.hpp"
#include "real_backend/model/torch_dtype.hpp"

namespace hearth::real {

namespace {

using Clock = std::chrono::steady_clock;

using os::seconds_since;

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
            .view(torch_dtype(t.dtype))
            .view(t.shape);
    m.register_parameter(t.name, value, t.buffer);
  }
  m.define(layout.source);
  return m;
}

// A TorchScript module (or a raw model's) behind the batch interface: one input at a time, each
// label token after the first by one more forward pass, since such a module offers nothing but
// forward(input_ids).
class TorchModel final : public LoadedModel {
 public:
  TorchModel(torch::jit::Module module, c10::Device device)
      : module_(std::move(module)), device_(device) {
    module_.eval();
  }

  std::vector<InferenceResult> classify(const std::vector<std::vector<std::int32_t>>& inputs,
                                        const std::vector<std::vector<std::int32_t>>& labels,
                                        const CancelCheck& cancelled) override {
    c10::InferenceMode guard;
    check_labels(labels);
    std::vector<InferenceResult> out(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (cancelled && cancelled()) throw Cancelled();
      out[i] = per_input([&](InferenceResult& r) {
        // The input's own next-token distribution serves every label's first token.
        at::Tensor first = last_log_probs(inputs[i]);
        for (const auto& label : labels) {
          double score = first[label[0]].item<double>();
          std::vector<std::int32_t> ids = inputs[i];
          for (std::size_t k = 1; k < label.size(); ++k) {
            ids.push_back(label[k - 1]);
            score += last_log_probs(ids)[label[k]].item<double>();
          }
          r.scores.push_back(static_cast<float>(score));
        }
        r.label = best_label(r.scores);
      });
    }
    return out;
  }

  std::vector<InferenceResult> generate(const std::vector<std::vector<std::int32_t>>& inputs,
                                        const GenerateOptions& options, const StopCheck& stop,
                                        const CancelCheck& cancelled) override {
    c10::InferenceMode guard;
    check_generate_options(options, inputs.size());
    std::vector<InferenceResult> out(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      out[i] = per_input([&](InferenceResult& r) {
        TokenSampler sampler(options.seeds.empty() ? 0 : options.seeds[i]);
        std::vector<std::int32_t> ids = inputs[i];
        while (r.tokens.size() < options.max_new_tokens) {
          if (cancelled && cancelled()) throw Cancelled();
          at::Tensor logits = last_logits(ids).to(torch::kCPU, torch::kFloat).contiguous();
          std::int32_t next =
              sampler.next(logits.data_ptr<float>(), static_cast<std::size_t>(logits.numel()),
                           options.temperature, options.top_p);
          r.tokens.push_back(next);
          ids.push_back(next);
          if (is_stop_token(options, next) || (stop && stop(i, r.tokens))) break;
        }
      });
    }
    return out;
  }

  void set_max_batch(std::size_t) override {}

 private:
  // Runs one input's work into its result; a failure of the module on this input (an id out of
  // range, an empty input) becomes the result's error. Cancelled passes through.
  template <class Work>
  static InferenceResult per_input(Work work) {
    InferenceResult r;
    try {
      work(r);
    } catch (const Cancelled&) {
      throw;
    } catch (const c10::Error& e) {
      r = InferenceResult{};
      r.error = e.what_without_backtrace();
    } catch (const std::exception& e) {
      r = InferenceResult{};
      r.error = e.what();
    }
    return r;
  }

  at::Tensor last_log_probs(const std::vector<std::int32_t>& ids) {
    return torch::log_softmax(last_logits(ids).to(torch::kCPU, torch::kFloat), 0);
  }

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
    report() = LoadReport{};
    try {
      if (is_raw_model(bytes)) return load_raw(bytes, d);
      auto start = Clock::now();
      std::istringstream in(bytes);
      auto model = std::make_shared<TorchModel>(torch::jit::load(in, d), d);
      report().path = "torchscript";
      report().copy_s = seconds_since(start);
      report().bytes = bytes.size();
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
    FastLease lease;
    std::string reason;
    if (is_raw_model(first) && d.is_cuda()) lease = fast_loader(d, reason);
    if (!lease.loader) {
      auto start = Clock::now();
      std::string bytes = read_file(path);
      double read_s = seconds_since(start);
      auto model = load(bytes, device);
      report().read_s = read_s;
      return model;
    }
    report() = LoadReport{};
    try {
      RawModelLayout layout = read_raw_model_layout(path);
      auto start = Clock::now();
      at::Tensor blob = torch::empty({static_cast<std::int64_t>(layout.data_bytes)},
                                     torch::TensorOptions().dtype(torch::kByte).device(d));
      torch::cuda::synchronize(d.index());  // as in load_raw
      lease.loader->file_to_device(path, layout.data_offset, layout.data_bytes, blob.data_ptr());
      report().path = "raw-fast-file";
      return build_raw(layout, blob, d, start);
    } catch (const c10::Error& e) {
      throw std::runtime_error(std::string("cannot build the model: ") +
                               e.what_without_backtrace());
    }
  }

  std::shared_ptr<LoadedModel> load_model(const ModelFiles& files,
                                          const std::string& device) override {
    c10::Device d(device);
    report() = LoadReport{};
    FastLease lease = d.is_cuda() ? fast_loader(d, report().fallback_reason) : FastLease{};
    try {
      return load_llama(files, device, lease.loader, report());
    } catch (const c10::Error& e) {
      throw std::runtime_error(files.where() +
                               ": cannot build the model: " + e.what_without_backtrace());
    }
  }

  LoadReport last_load() const override { return report(); }

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
      m.register_parameter(t.name, torch::from_blob(data, t.shape, torch_dtype(t.dtype)).clone(),
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
    report().path = "raw-plain";
    if (d.is_cuda()) {
      blob = torch::empty({n}, torch::TensorOptions().dtype(torch::kByte).device(d));
      if (FastLease lease = fast_loader(d, report().fallback_reason); lease.loader) {
        // The loader copies on streams of its own: nothing queued on libtorch's may still use
        // the memory the new buffer reuses.
        torch::cuda::synchronize(d.index());
        lease.loader->host_to_device(data, layout.data_bytes, blob.data_ptr());
        report().path = "raw-fast";
      } else {
        blob.copy_(host);
      }
    } else {
      blob = host.clone();  // the model outlives the caller's bytes
    }
    return build_raw(layout, blob, d, start);
  }

  // The module made around a raw model's data, now in `blob` on `d` (copied since `copy_start`),
  // with the copy and the build timed in the report.
  std::shared_ptr<LoadedModel> build_raw(const RawModelLayout& layout, const at::Tensor& blob,
                                         c10::Device d, Clock::time_point copy_start) {
    report().copy_s = seconds_since(copy_start);
    report().bytes = layout.data_bytes;
    auto start = Clock::now();
    auto model = std::make_shared<TorchModel>(raw_module(layout, blob), d);
    report().build_s = seconds_since(start);
    return model;
  }

  // The fast loader of a CUDA device, made on first use, leased to one load at a time (its ring
  // of pinned buffers serves one transfer); an empty lease, with the reason, where there is none
  // (no CUDA build, no driver) or HEARTH_FAST_LOADER=0 turns it off.
  struct FastLease {
    FastLoader* loader = nullptr;
    std::unique_lock<std::mutex> lock;
  };
  FastLease fast_loader(c10::Device d, std::string& reason) {
    if (const char* env = std::getenv("HEARTH_FAST_LOADER"); env && std::string(env) == "0") {
      reason = "HEARTH_FAST_LOADER=0";
      return {};
    }
    const int index = d.has_index() ? d.index() : 0;
    std::unique_lock<std::mutex> lock(loaders_mutex_);
    Loader& l = loaders_[index];  // a map: the entry stays where it is
    if (!l.tried) {
      l.tried = true;
      try {
        l.loader = std::make_unique<FastLoader>(index);
      } catch (const FastLoaderUnavailable& e) {
        l.reason = e.what();
      }
    }
    reason = l.reason;
    if (!l.loader) return {};
    lock.unlock();
    return {l.loader.get(), std::unique_lock<std::mutex>(l.busy)};
  }

  // How the last load on the calling thread went: threads share the runtime, and each reads its
  // own report.
  static LoadReport& report() {
    thread_local LoadReport r;
    return r;
  }

  struct Loader {
    bool tried = false;
    std::unique_ptr<FastLoader> loader;
    std::string reason;
    std::mutex busy;
  };
  std::mutex loaders_mutex_;
  std::map<int, Loader> loaders_;
};

}  // namespace

}  // namespace hearth::real

extern "C" hearth::real::ModelRuntime* hearth_create_torch_runtime() {
  return new hearth::real::TorchRuntime();
}
