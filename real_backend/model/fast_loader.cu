// The fast loader's CUDA side: pinned ring buffers, streams and events on one device, against
// the CUDA runtime of the CUDA Toolkit (linked statically, so that a machine without CUDA still
// loads the program and is told why there is no fast path).

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "real_backend/model/fast_loader.hpp"

namespace hearth::real {

namespace {

using Clock = std::chrono::steady_clock;

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("fast loader: ") + what + ": " + cudaGetErrorName(status) +
                             " (" + cudaGetErrorString(status) + ")");
  }
}

// Pinned buffers, streams and one event per buffer, marking the end of its last copy.
class CudaRing final : public RingDevice {
 public:
  CudaRing(int device, const FastLoaderOptions& o) : device_(device), chunk_bytes_(o.chunk_bytes) {
    check(cudaSetDevice(device_), "cudaSetDevice");
    for (int i = 0; i < o.buffers; ++i) {
      void* p = nullptr;
      check(cudaHostAlloc(&p, chunk_bytes_, cudaHostAllocDefault), "cudaHostAlloc");
      buffers_.push_back(static_cast<char*>(p));
      cudaEvent_t e = nullptr;
      check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
      events_.push_back(e);
    }
    for (int i = 0; i < o.streams; ++i) {
      cudaStream_t s = nullptr;
      check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
      streams_.push_back(s);
    }
  }
  ~CudaRing() override {
    cudaSetDevice(device_);
    for (cudaStream_t s : streams_)
      cudaStreamSynchronize(s);
    for (cudaStream_t s : streams_)
      cudaStreamDestroy(s);
    for (cudaEvent_t e : events_)
      cudaEventDestroy(e);
    for (char* p : buffers_)
      cudaFreeHost(p);
  }

  void set_destination(char* device_destination) { destination_ = device_destination; }

  void enter_thread() override { check(cudaSetDevice(device_), "cudaSetDevice"); }
  char* buffer(int b) override { return buffers_[static_cast<std::size_t>(b)]; }
  void copy_async(const LoadChunk& c) override {
    cudaStream_t s = streams_[static_cast<std::size_t>(c.stream)];
    check(cudaMemcpyAsync(destination_ + c.offset, buffer(c.buffer), c.bytes,
                          cudaMemcpyHostToDevice, s),
          "cudaMemcpyAsync");
    check(cudaEventRecord(events_[static_cast<std::size_t>(c.buffer)], s), "cudaEventRecord");
  }
  void wait_buffer(int b) override {
    check(cudaEventSynchronize(events_[static_cast<std::size_t>(b)]), "cudaEventSynchronize");
  }
  void wait_all() override {
    for (cudaStream_t s : streams_)
      check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  }

 private:
  int device_;
  std::uint64_t chunk_bytes_;
  char* destination_ = nullptr;
  std::vector<char*> buffers_;
  std::vector<cudaEvent_t> events_;
  std::vector<cudaStream_t> streams_;
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

CudaAvailability cuda_availability() {
  CudaAvailability a;
  cudaError_t status = cudaGetDeviceCount(&a.devices);
  if (status != cudaSuccess) {
    a.devices = 0;
    a.reason = std::string("no usable CUDA driver or GPU: ") + cudaGetErrorName(status) + " (" +
               cudaGetErrorString(status) + ")";
    return a;
  }
  if (a.devices == 0) {
    a.reason = "no CUDA GPU is visible";
    return a;
  }
  a.usable = true;
  return a;
}

struct FastLoader::Impl {
  int device = 0;
  FastLoaderOptions options;
  std::unique_ptr<CudaRing> ring;

  // The ring is made on first use; returns the seconds that took (0 after).
  double ensure_ring() {
    if (ring) return 0;
    auto start = Clock::now();
    ring = std::make_unique<CudaRing>(device, options);
    return seconds_since(start);
  }
};

FastLoader::FastLoader(int device, FastLoaderOptions options) : impl_(std::make_unique<Impl>()) {
  CudaAvailability a = cuda_availability();
  if (!a.usable) throw FastLoaderUnavailable(a.reason);
  if (device < 0 || device >= a.devices) {
    throw FastLoaderUnavailable("no CUDA device " + std::to_string(device) + " (" +
                                std::to_string(a.devices) + " visible)");
  }
  if (options.chunk_bytes == 0 || options.chunk_bytes % 4096 != 0 || options.buffers <= 0 ||
      options.streams <= 0 || options.producers <= 0) {
    throw std::invalid_argument(
        "fast loader: chunk_bytes must be a positive multiple of 4096; buffers, streams and "
        "producers positive");
  }
  impl_->device = device;
  impl_->options = options;
}

FastLoader::~FastLoader() = default;

const FastLoaderOptions& FastLoader::options() const {
  return impl_->options;
}

LoadTimings FastLoader::file_to_device(const std::filesystem::path& path, std::uint64_t offset,
                                       std::uint64_t length, void* device_destination) {
  LoadTimings t;
  t.setup_s = impl_->ensure_ring();
  impl_->ring->set_destination(static_cast<char*>(device_destination));
  t.ring = file_through_ring(path, offset, length, impl_->options, *impl_->ring, t.direct_io);
  return t;
}

LoadTimings FastLoader::host_to_device(const void* source, std::uint64_t length,
                                       void* device_destination) {
  LoadTimings t;
  t.setup_s = impl_->ensure_ring();
  impl_->ring->set_destination(static_cast<char*>(device_destination));
  t.ring = memory_through_ring(source, length, impl_->options, *impl_->ring);
  return t;
}

namespace {

double best_copy_Bps(int device, void* host, std::uint64_t bytes, int repeats) {
  check(cudaSetDevice(device), "cudaSetDevice");
  void* d = nullptr;
  check(cudaMalloc(&d, bytes), "cudaMalloc");
  double best = 0;
  try {
    check(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");  // warm-up
    for (int i = 0; i < repeats; ++i) {
      auto start = Clock::now();
      check(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
      best = std::max(best, static_cast<double>(bytes) / seconds_since(start));
    }
  } catch (...) {
    cudaFree(d);
    throw;
  }
  cudaFree(d);
  return best;
}

}  // namespace

double FastLoader::pinned_copy_Bps(std::uint64_t bytes, int repeats) {
  check(cudaSetDevice(impl_->device), "cudaSetDevice");
  void* host = nullptr;
  check(cudaHostAlloc(&host, bytes, cudaHostAllocDefault), "cudaHostAlloc");
  std::memset(host, 0x5a, bytes);
  double bps = 0;
  try {
    bps = best_copy_Bps(impl_->device, host, bytes, repeats);
  } catch (...) {
    cudaFreeHost(host);
    throw;
  }
  cudaFreeHost(host);
  return bps;
}

double FastLoader::pageable_copy_Bps(std::uint64_t bytes, int repeats) {
  std::vector<char> host(bytes, 0x5a);
  return best_copy_Bps(impl_->device, host.data(), bytes, repeats);
}

DeviceMemory FastLoader::memory() const {
  check(cudaSetDevice(impl_->device), "cudaSetDevice");
  std::size_t free_bytes = 0, total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  return DeviceMemory{free_bytes, total_bytes};
}

void* FastLoader::allocate(std::uint64_t bytes) {
  check(cudaSetDevice(impl_->device), "cudaSetDevice");
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), "cudaMalloc");
  return p;
}

void FastLoader::release(void* device_pointer) {
  check(cudaSetDevice(impl_->device), "cudaSetDevice");
  check(cudaFree(device_pointer), "cudaFree");
}

void FastLoader::device_to_host(const void* device_source, std::uint64_t length,
                                void* host_destination) {
  check(cudaSetDevice(impl_->device), "cudaSetDevice");
  check(cudaMemcpy(host_destination, device_source, length, cudaMemcpyDeviceToHost), "cudaMemcpy");
}

}  // namespace hearth::real
