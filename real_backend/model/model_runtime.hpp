#pragma once
// What a worker asks of a model runtime, without a libtorch include: build a model from a
// TorchScript file's bytes or a Hugging Face directory on a device, and run inferences on it. The
// torch implementation lives in the libhearth_torch.so plugin (torch_runtime.cpp), loaded on first
// use, so that hearth itself starts without libtorch's ~300 libraries and builds against any
// libtorch, CPU or CUDA.

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace hearth::real {

struct BuiltinModel;
class ModelFiles;

struct InferenceResult {
  int label = -1;                    // classify: index of the best label (first on ties)
  std::vector<float> scores;         // classify: each label's sum of log-probabilities of its
                                     // tokens after the input
  std::vector<std::int32_t> tokens;  // generate: the new tokens, a stop token included
  std::string error;  // non-empty: this input failed (empty, too long for the model, token id out
                      // of range) and the fields above are empty; the other inputs ran
};

struct GenerateOptions {
  std::uint32_t max_new_tokens = 16;
  std::vector<std::int32_t> stop_tokens;  // an input ends after any of these
  float temperature = 0;                  // 0: greedy (argmax, first on ties)
  float top_p = 1;
  std::vector<std::uint64_t> seeds;  // sampling: one per input; a sample depends on its input
                                     // and seed only
};

// After each decode step, per unfinished input: its new tokens so far; true ends that input (stop
// strings).
using StopCheck = std::function<bool(std::size_t input, const std::vector<std::int32_t>& tokens)>;
// Checked between forward passes (batches, decode steps); true abandons the call, which then
// throws Cancelled.
using CancelCheck = std::function<bool()>;

// Thrown by LoadedModel calls whose CancelCheck said true: nothing of the call is returned.
class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("cancelled") {}
};

// How the last load went: which path the bytes took and where the time went (benchmarks and
// calibration read it).
struct LoadReport {
  std::string path;  // torchscript, raw-plain, raw-fast (from memory), raw-fast-file, hf-plain,
                     // hf-view (CPU views into an fp32 pack), hf-fast, hf-fast-file
  std::string fallback_reason;  // a raw model on a GPU without the fast loader: why
  double read_s = 0;            // load_file on a plain path: the file into host memory
  double copy_s = 0;            // the bytes onto the device (for torchscript: the whole load)
  double build_s = 0;           // the module made around the weights
  std::uint64_t bytes = 0;      // bytes copied to the device
};

// A model resident on a device. Used by one thread at a time. Every call takes many inputs and
// returns one result per input, in input order; a result does not depend on what ran beside it
// beyond floating-point noise (labels and greedy tokens identical, scores within 1e-3). An input
// that cannot run gets its `error` and the others run. Bad labels or options throw
// std::invalid_argument; a call whose `cancelled` said true throws Cancelled.
class LoadedModel {
 public:
  virtual ~LoadedModel() = default;
  // Scores each label (a token sequence, lengths may differ) as the continuation of each input.
  // Requires at least one label, none empty.
  virtual std::vector<InferenceResult> classify(
      const std::vector<std::vector<std::int32_t>>& inputs,
      const std::vector<std::vector<std::int32_t>>& labels, const CancelCheck& cancelled = {}) = 0;
  // Continues each input: up to options.max_new_tokens, ending after a stop token, when `stop`
  // says so, or at the model's context length (input and new tokens fill max_position_embeddings;
  // an input with no room for one new token gets an error up front). With temperature > 0,
  // requires one seed per input.
  virtual std::vector<InferenceResult> generate(
      const std::vector<std::vector<std::int32_t>>& inputs, const GenerateOptions& options,
      const StopCheck& stop = {}, const CancelCheck& cancelled = {}) = 0;
  // Most inputs per forward pass: 0 (the default) sizes batches to the device's free memory; 1:
  // one at a time.
  virtual void set_max_batch(std::size_t inputs) = 0;
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
  // Builds a Llama-family model (llama_config.hpp) from a Hugging Face directory, on disk or
  // packed in memory, onto `device`: on the CPU in fp32 (bf16 and f16 weights converted once),
  // on CUDA in the checkpoint's dtype, each weight file's data in one device buffer (through the
  // fast loader unless HEARTH_FAST_LOADER=0 or it is unavailable). Throws InputError
  // for a directory that is not a usable model, std::runtime_error otherwise.
  virtual std::shared_ptr<LoadedModel> load_model(const ModelFiles& files,
                                                  const std::string& device) = 0;
  // How the calling thread's last load(), load_file() or load_model() went (threads may load at
  // once: each sees its own).
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
