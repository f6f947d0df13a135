// libhearth_gated_torch.so: the torch plugin (libhearth_torch.so, loaded from where the build put
// it) behind the gate that HEARTH_TEST_GATE names (tests/real/gate.hpp). A test runs hearth with
// HEARTH_TORCH_RUNTIME naming this file; its workers then infer exactly as with the torch plugin,
// but only as fast as the test opens the gate.

#include <dlfcn.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "tests/real/gate.hpp"

extern "C" hearth::real::ModelRuntime* hearth_create_torch_runtime() {
  const char* gate = std::getenv("HEARTH_TEST_GATE");
  if (!gate) throw std::runtime_error("the gated torch runtime needs HEARTH_TEST_GATE");
  void* torch = dlopen(HEARTH_REAL_TORCH_MODULE, RTLD_NOW | RTLD_LOCAL);
  if (!torch) throw std::runtime_error(std::string("cannot load the torch plugin: ") + dlerror());
  auto create = reinterpret_cast<hearth::real::ModelRuntime* (*)()>(
      dlsym(torch, "hearth_create_torch_runtime"));
  if (!create) throw std::runtime_error("the torch plugin has no hearth_create_torch_runtime");
  return new hearth::testing::GatedRuntime(std::unique_ptr<hearth::real::ModelRuntime>(create()),
                                           hearth::testing::Gate(gate));
}
