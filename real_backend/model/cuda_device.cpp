#include "real_backend/model/cuda_device.hpp"

#include <dlfcn.h>

#include <cstddef>

namespace hearth::real {

namespace {

// The few driver API entry points used; their C signatures are stable across CUDA releases.
struct Driver {
  using Init = int (*)(unsigned);
  using GetCount = int (*)(int*);
  using Get = int (*)(int*, int);
  using GetName = int (*)(char*, int, int);
  using TotalMem = int (*)(std::size_t*, int);
  GetCount get_count = nullptr;
  Get get = nullptr;
  GetName get_name = nullptr;
  TotalMem total_mem = nullptr;
  bool ok = false;

  Driver() {
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    auto init = reinterpret_cast<Init>(dlsym(lib, "cuInit"));
    get_count = reinterpret_cast<GetCount>(dlsym(lib, "cuDeviceGetCount"));
    get = reinterpret_cast<Get>(dlsym(lib, "cuDeviceGet"));
    get_name = reinterpret_cast<GetName>(dlsym(lib, "cuDeviceGetName"));
    total_mem = reinterpret_cast<TotalMem>(dlsym(lib, "cuDeviceTotalMem_v2"));
    ok = init && get_count && get && get_name && total_mem && init(0) == 0;
  }
};

const Driver& driver() {
  static const Driver d;
  return d;
}

}  // namespace

int cuda_device_count() {
  int n = 0;
  if (!driver().ok || driver().get_count(&n) != 0) return 0;
  return n;
}

std::optional<CudaDevice> cuda_device(int index) {
  const Driver& d = driver();
  int device = 0;
  if (!d.ok || d.get(&device, index) != 0) return std::nullopt;
  char name[256] = {};
  std::size_t bytes = 0;
  if (d.get_name(name, sizeof name, device) != 0 || d.total_mem(&bytes, device) != 0) {
    return std::nullopt;
  }
  return CudaDevice{name, static_cast<double>(bytes)};
}

}  // namespace hearth::real
