#include "real_backend/model/model_runtime.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace hearth::real {

ModelRuntime& torch_runtime() {
  static std::once_flag once;
  static std::unique_ptr<ModelRuntime> runtime;
  static std::string error;
  std::call_once(once, [] {
    // Parallelism is libtorch's (set_threads); OpenBLAS threads on top would oversubscribe.
    setenv("OPENBLAS_NUM_THREADS", "1", /*overwrite=*/0);
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("HEARTH_TORCH_RUNTIME")) candidates.emplace_back(env);
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) candidates.push_back((exe.parent_path() / "libhearth_torch.so").string());
    candidates.emplace_back(HEARTH_TORCH_MODULE);
    for (const std::string& path : candidates) {
      if (!std::filesystem::exists(path)) continue;
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        error += fmt::format("\n  {}: {}", path, dlerror());
        continue;
      }
      auto create =
          reinterpret_cast<ModelRuntime* (*)()>(dlsym(handle, "hearth_create_torch_runtime"));
      if (!create) {
        error += fmt::format("\n  {}: no hearth_create_torch_runtime", path);
        continue;
      }
      runtime.reset(create());  // the library stays loaded for the life of the process
      return;
    }
    error = fmt::format("cannot load the torch runtime (libhearth_torch.so); tried {}{}",
                        fmt::join(candidates, ", "), error);
  });
  if (!runtime) throw std::runtime_error(error);
  return *runtime;
}

}  // namespace hearth::real
