#pragma once
// What a worker asks of a model runtime, without a libtorch include: build a model from a
// TorchScript file's bytes on a device, and run inferences on it. The torch implementation lives
// in the libhearth_torch.so plugin (torch_runtime.cpp), loaded on first use, so that hearth
// itself starts without libtorch's ~300 libraries and builds against any libtorch, CPU or CUDA.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hearth::real {

struct BuiltinModel;

struct InferenceResult {
  int label = -1;                    // classify: index of the best label (first on ties)
  std::vector<float> scores;         // classify: logits of the label tokens at the last position
  std::vector<std::int32_t> tokens;  // generate: the new tokens
};

// How the last load went: which path the bytes took and where the time went (benchmarks and
// calibration read it).
struct LoadReport {
  std::string path;             // torchscript, raw-plain, raw-fast (from memory), raw-fast-file
  std::string fallback_reason;  // a raw model on a GPU without the fast loader: why
  double read_s = 0;            // load_file on a plain path: the file into host memory
  double copy_s = 0;            // the bytes onto the device (for torchscript: the whole load)
  double build_s = 0;           // the module made around the weights
  std::uint64_t bytes = 0;      // bytes copied to the device
};

// A model resident on a device. Used by one thread at a time.
class LoadedModel {
 public:
  virtual ~LoadedModel() = default;
  virtual InferenceResult classify(const std::vector<std::int32_t>& input,
                                   const std::vector<std::int32_t>& label_tokens) = 0;
  // Inputs of equal length in one forward pass, for throughput benchmarks. Results may differ
  // from classify()'s in the last bits (other kernels run for other shapes), which is why workers
  // classify one input at a time. Throws std::runtime_error for inputs of different lengths.
  virtual std::vector<InferenceResult> classify_batch(
      const std::vector<std::vector<std::int32_t>>& inputs,
      const std::vector<std::int32_t>& label_tokens) = 0;
  // Greedy decoding: up to max_new_tokens, stopping after stop_token (-1: never).
  virtual InferenceResult generate(const std::vector<std::int32_t>& input,
                                   std::uint32_t max_new_tokens, std::int32_t stop_token) = 0;
};

class ModelRuntime {
 public:
  virtual ~ModelRuntime() = default;
  // The device "auto", "cpu", "cuda" or "cuda:N" means here: "cuda:N" when this libtorch has CUDA
  // and the GPU is visible ("auto" picks cuda:0 then), else "cpu". Throws std::runtime_error if a
  // CUDA device was asked for and cannot be had.
  virtual std::string resolve_device(const std::string& requested) = 0;
  virtual void set_threads(int threads) = 0;
  // Builds a model from a file's bytes onto `device`: a TorchScript module, whose
  // forward(input_ids) takes int64 token ids [1, T] and returns logits [1, T, V] (or a tuple or
  // dict holding them first or as "logits"), or a raw model file
  // (real_backend/model/raw_model.hpp), whose weights reach a CUDA device through the fast loader
  // (real_backend/model/fast_loader.hpp) unless HEARTH_FAST_LOADER=0 or it is unavailable. Throws
  // std::runtime_error.
  virtual std::shared_ptr<LoadedModel> load(const std::string& bytes,
                                            const std::string& device) = 0;
  // The same from a file: a raw model goes from disk to a CUDA device through the fast loader's
  // pipeline without a host copy; anything else is read into memory and load()ed.
  virtual std::shared_ptr<LoadedModel> load_file(const std::string& path,
                                                 const std::string& device) = 0;
  // How the last load() or load_file() went.
  virtual LoadReport last_load() const = 0;
  // Writes the built-in model as a TorchScript file.
  virtual void save_builtin(const BuiltinModel& model, const std::string& path) = 0;
  // Writes a raw model file as a TorchScript file of the same module and weights, each tensor in
  // its own storage as PyTorch saves models.
  virtual void save_torchscript(const std::string& raw_model_path, const std::string& path) = 0;
};

// The torch runtime, loaded from libhearth_torch.so on first call: from $HEARTH_TORCH_RUNTIME, else
// next to the running executable, else where the build put it. Throws std::runtime_error.
ModelRuntime& torch_runtime();

}  // namespace hearth::real

// The plugin's one entry point.
extern "C" hearth::real::ModelRuntime* hearth_create_torch_runtime();
