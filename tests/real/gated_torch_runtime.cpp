// libhearth_gated_torch.so: the torch plugin (libhearth_torch.so, loaded from where the build put
// it) behind the gate that HEARTH_TEST_GATE names (tests/real/gate.hpp). A test runs hearth with
// HEARTH_TORCH_RUNTIME naming this file; its workers then infer exactly as with the torch plugin,
// but only as fast as the test opens the gate.
//
// With HEARTH_TEST_STAND_IN_MODEL=1 it wraps a test stand-in instead of the torch plugin, for
// tests that run where there is no libtorch (the HTCondor chroot of scripts/htcondor-local): every
// model it "loads" ignores its bytes, classifies every input alike and generates nothing. Not a
// model: only a way to make inferences that wait at the gate and leave a result that can be
// checked.

#include <dlfcn.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "tests/real/gate.hpp"

namespace {

using namespace hearth::real;

// Of n labels, label i scores -(i + 1), a log-probability, so the first wins: {"label": first,
// "scores": {first: -1.0, second: -2.0}} on every line of a classify context's output with two
// labels.
class StandInModel final : public LoadedModel {
 public:
  std::vector<InferenceResult> classify(const std::vector<std::vector<std::int32_t>>& inputs,
                                        const std::vector<std::vector<std::int32_t>>& labels,
                                        const CancelCheck&) override {
    InferenceResult r;
    r.label = 0;
    for (std::size_t i = 0; i < labels.size(); ++i)
      r.scores.push_back(-static_cast<float>(i + 1));
    return std::vector<InferenceResult>(inputs.size(), r);
  }
  std::vector<InferenceResult> generate(const std::vector<std::vector<std::int32_t>>& inputs,
                                        const GenerateOptions&, const StopCheck&,
                                        const CancelCheck&) override {
    return std::vector<InferenceResult>(inputs.size());
  }
  void set_max_batch(std::size_t) override {}
};

class StandInRuntime final : public ModelRuntime {
 public:
  std::string resolve_device(const std::string&) override { return "cpu"; }
  void set_threads(int) override {}
  std::shared_ptr<LoadedModel> load(const std::string&, const std::string&) override {
    return std::make_shared<StandInModel>();
  }
  std::shared_ptr<LoadedModel> load_file(const std::string&, const std::string&) override {
    return std::make_shared<StandInModel>();
  }
  std::shared_ptr<LoadedModel> load_model(const ModelFiles&, const std::string&) override {
    return std::make_shared<StandInModel>();
  }
  LoadReport last_load() const override {
    LoadReport r;
    r.path = "stand-in";
    return r;
  }
  void save_builtin(const BuiltinModel&, const std::string&) override {
    throw std::runtime_error("the test stand-in runtime writes no models");
  }
  void save_torchscript(const std::string&, const std::string&) override {
    throw std::runtime_error("the test stand-in runtime writes no models");
  }
};

ModelRuntime* load_torch_plugin() {
  void* torch = dlopen(HEARTH_REAL_TORCH_MODULE, RTLD_NOW | RTLD_LOCAL);
  if (!torch) throw std::runtime_error(std::string("cannot load the torch plugin: ") + dlerror());
  auto create = reinterpret_cast<ModelRuntime* (*)()>(dlsym(torch, "hearth_create_torch_runtime"));
  if (!create) throw std::runtime_error("the torch plugin has no hearth_create_torch_runtime");
  return create();
}

}  // namespace

extern "C" hearth::real::ModelRuntime* hearth_create_torch_runtime() {
  const char* gate = std::getenv("HEARTH_TEST_GATE");
  if (!gate) throw std::runtime_error("the gated torch runtime needs HEARTH_TEST_GATE");
  // Asked for by name, never a fallback: a torch plugin that fails to load must fail the test.
  const char* stand_in = std::getenv("HEARTH_TEST_STAND_IN_MODEL");
  std::unique_ptr<ModelRuntime> inner(
      stand_in && std::string(stand_in) == "1" ? new StandInRuntime : load_torch_plugin());
  return new hearth::testing::GatedRuntime(std::move(inner), hearth::testing::Gate(gate));
}
