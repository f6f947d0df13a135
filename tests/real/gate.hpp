#pragma once
// Inferences that wait for the test: a gate is a quota of inferences, kept in a directory so that
// worker processes and worker threads share it, and a GatedRuntime is a model runtime whose every
// inference first takes one unit of a gate's quota. A test opens the gate a step at a time and
// acts (kills a worker, sends a notice, starts another) while the quota is spent, so that the run
// cannot end, or move on, before the event the test needs: no assumption about how long work
// takes.
//
// Worker processes use it through libhearth_gated_torch.so (gated_torch_runtime.cpp): run them
// with HEARTH_TORCH_RUNTIME naming that plugin and HEARTH_TEST_GATE naming the gate's directory
// (and HEARTH_TEST_STAND_IN_MODEL=1 where there is no libtorch: a test stand-in model behind the
// gate).
//
// On disk, also read and written from bash by scripts/htcondor-local: `quota` (a number, or
// "open"; replaced whole, by a rename), `used` (a number, changed under flock() of `lock`) and a
// file `waiting/PID-TID` for each inference waiting for a unit.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "real_backend/model/model_runtime.hpp"

namespace hearth::testing {

class Gate {
 public:
  // The gate kept in `dir` (created by the first allow()). Closed until allow() or open().
  explicit Gate(std::filesystem::path dir);

  // The test's side. allow(n): at most n units taken in all, counting those already taken.
  void allow(std::uint64_t total);
  // No limit, until the next allow(); inferences are not counted meanwhile.
  void open();
  // Units taken so far (while the gate was not open).
  std::uint64_t used() const;
  // Whether an inference of process `pid` (any process: 0) waits for a unit now.
  bool waiting(pid_t pid = 0) const;

  // The workers' side: waits until a unit is left, then takes it.
  void take() const;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

// `inner`, but every inference of its models takes one unit of `gate` first.
class GatedRuntime final : public real::ModelRuntime {
 public:
  GatedRuntime(real::ModelRuntime& inner, Gate gate);
  // Owns what it wraps (the plugin's case).
  GatedRuntime(std::unique_ptr<real::ModelRuntime> inner, Gate gate);
  ~GatedRuntime() override;

  const Gate& gate() const { return gate_; }

  std::string resolve_device(const std::string& requested) override;
  void set_threads(int threads) override;
  std::shared_ptr<real::LoadedModel> load(const std::string& bytes,
                                          const std::string& device) override;
  std::shared_ptr<real::LoadedModel> load_file(const std::string& path,
                                               const std::string& device) override;
  std::shared_ptr<real::LoadedModel> load_model(const real::ModelFiles& files,
                                                const std::string& device) override;
  real::LoadReport last_load() const override;
  void save_builtin(const real::BuiltinModel& model, const std::string& path) override;
  void save_torchscript(const std::string& raw_model_path, const std::string& path) override;

 private:
  std::unique_ptr<real::ModelRuntime> owned_;
  real::ModelRuntime& inner_;
  Gate gate_;
};

}  // namespace hearth::testing
