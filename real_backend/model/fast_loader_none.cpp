// The fast loader where hearth was built without the CUDA Toolkit: there is never a fast path,
// and the reason says so. The ring (fast_loader.cpp) is built and tested everywhere.

#include "real_backend/model/fast_loader.hpp"

namespace hearth::real {

namespace {

[[noreturn]] void unreachable() {
  throw std::logic_error("fast loader: built without CUDA, no loader can exist");
}

}  // namespace

CudaAvailability cuda_availability() {
  CudaAvailability a;
  a.reason = "hearth was built without the CUDA Toolkit (HEARTH_CUDA found no nvcc)";
  return a;
}

struct FastLoader::Impl {};

FastLoader::FastLoader(int, FastLoaderOptions) {
  throw FastLoaderUnavailable(cuda_availability().reason);
}

FastLoader::~FastLoader() = default;

const FastLoaderOptions& FastLoader::options() const {
  unreachable();
}
LoadTimings FastLoader::file_to_device(const std::filesystem::path&, std::uint64_t, std::uint64_t,
                                       void*) {
  unreachable();
}
LoadTimings FastLoader::host_to_device(const void*, std::uint64_t, void*) {
  unreachable();
}
double FastLoader::pinned_copy_Bps(std::uint64_t, int) {
  unreachable();
}
double FastLoader::pageable_copy_Bps(std::uint64_t, int) {
  unreachable();
}
DeviceMemory FastLoader::memory() const {
  unreachable();
}
void* FastLoader::allocate(std::uint64_t) {
  unreachable();
}
void FastLoader::release(void*) {
  unreachable();
}
void FastLoader::device_to_host(const void*, std::uint64_t, void*) {
  unreachable();
}

}  // namespace hearth::real
