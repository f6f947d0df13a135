#pragma once
// What a CUDA GPU is, asked of the driver (libcuda.so.1, opened at run time), so that hearth needs
// no CUDA header and runs unchanged where there is no GPU.

#include <optional>
#include <string>

namespace hearth::real {

struct CudaDevice {
  std::string name;  // e.g. "NVIDIA H200"
  double memory_bytes = 0;
};

// GPUs the driver sees (after CUDA_VISIBLE_DEVICES); 0 without a driver.
int cuda_device_count();
std::optional<CudaDevice> cuda_device(int index);

}  // namespace hearth::real
