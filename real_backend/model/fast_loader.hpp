#pragma once
// The fast path from a file (or host memory) into GPU memory, as ServerlessLLM loads checkpoints:
// the bytes go in chunks through a ring of pinned host buffers, several producer threads filling
// buffers (reading the file, or copying from pageable memory) while earlier buffers are copied to
// the device on CUDA streams, so that disk reads and host-to-device copies overlap and the copy
// engine always reads pinned memory at full speed.
//
// No CUDA header here: the CUDA part (fast_loader.cu) is built where the CUDA Toolkit is found
// (HEARTH_CUDA in real_backend/CMakeLists.txt); elsewhere fast_loader_none.cpp reports why there
// is no fast path. The ring itself (run_ring) is plain C++, and is tested with a fake device.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace hearth::real {

struct FastLoaderOptions {
  std::uint64_t chunk_bytes = 16ull << 20;  // a multiple of 4096 (O_DIRECT reads)
  int buffers = 8;                          // pinned chunks in the ring
  int streams = 2;                          // CUDA streams the copies alternate on
  int producers = 4;                        // threads reading or copying into the ring
  bool direct_io = false;                   // read files with O_DIRECT (bypass the page cache)
};

// Where each chunk goes: chunk i is bytes [offset, offset + bytes) of the source and of the
// destination, staged in ring buffer i % buffers and copied on stream i % streams.
struct LoadChunk {
  std::uint64_t index = 0;
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  int buffer = 0;
  int stream = 0;
};
// Every chunk of `total_bytes`, in order. Requires chunk_bytes, buffers, streams > 0.
std::vector<LoadChunk> plan_chunks(std::uint64_t total_bytes, const FastLoaderOptions& options);

// What the ring needs of a device; the CUDA implementation is in fast_loader.cu.
class RingDevice {
 public:
  virtual ~RingDevice() = default;
  // Called once on each producer thread before it touches the device.
  virtual void enter_thread() {}
  // Host memory of ring buffer `buffer` (chunk_bytes long).
  virtual char* buffer(int buffer) = 0;
  // Starts copying chunk c from its buffer to the destination; returns at once.
  virtual void copy_async(const LoadChunk& c) = 0;
  // Blocks until the last copy started from `buffer` has finished (at once if none was).
  virtual void wait_buffer(int buffer) = 0;
  // Blocks until every copy started has finished.
  virtual void wait_all() = 0;
};

struct RingTimings {
  double seconds = 0;  // the whole transfer, to the last copy's end
  double fill_s = 0;   // producer time spent filling buffers (reads or memcpy), summed
  double wait_s = 0;   // producer time spent waiting for a buffer's copy to end, summed
  std::uint64_t bytes = 0;
  std::uint64_t chunks = 0;
};

// Moves `total_bytes` through the ring: `options.producers` threads take chunks in order, wait
// until the chunk's buffer is free, fill it with fill(chunk, buffer memory) and start its copy.
// A buffer is refilled only once the copy of the chunk before in it has been started and has
// ended. Returns when every copy has ended; rethrows the first exception of fill or the device,
// after every thread has stopped.
RingTimings run_ring(std::uint64_t total_bytes, const FastLoaderOptions& options,
                     RingDevice& device,
                     const std::function<void(const LoadChunk&, char* buffer)>& fill);

// The two sources of a load, through any device. file_through_ring reads bytes [offset, offset +
// length) of the file with pread, with O_DIRECT if options.direct_io and the offset and the file
// system allow it (`direct_io_used` says). Both throw std::runtime_error naming what failed.
RingTimings file_through_ring(const std::filesystem::path& path, std::uint64_t offset,
                              std::uint64_t length, const FastLoaderOptions& options,
                              RingDevice& device, bool& direct_io_used);
RingTimings memory_through_ring(const void* source, std::uint64_t length,
                                const FastLoaderOptions& options, RingDevice& device);

// Whether this process can use a CUDA GPU, and if not, why not.
struct CudaAvailability {
  bool usable = false;
  int devices = 0;
  std::string reason;  // empty when usable
};
CudaAvailability cuda_availability();

struct DeviceMemory {
  std::uint64_t free_bytes = 0;
  std::uint64_t total_bytes = 0;
};

class FastLoaderUnavailable : public std::runtime_error {
 public:
  explicit FastLoaderUnavailable(const std::string& why) : std::runtime_error(why) {}
};

struct LoadTimings {
  RingTimings ring;
  double setup_s = 0;      // pinned buffers and streams, on the first load only
  bool direct_io = false;  // whether the file was read with O_DIRECT
};

// Loads into device memory through a ring of pinned buffers. One load at a time per loader.
class FastLoader {
 public:
  // Throws FastLoaderUnavailable (with the reason) where there is no usable GPU `device`.
  FastLoader(int device, FastLoaderOptions options = {});
  ~FastLoader();
  FastLoader(const FastLoader&) = delete;
  FastLoader& operator=(const FastLoader&) = delete;

  const FastLoaderOptions& options() const;
  // Bytes [offset, offset + length) of the file into device memory at `device_destination`.
  // O_DIRECT is used when asked for, and the offset and the file system allow it.
  LoadTimings file_to_device(const std::filesystem::path& path, std::uint64_t offset,
                             std::uint64_t length, void* device_destination);
  // `length` bytes of (pageable) host memory into device memory.
  LoadTimings host_to_device(const void* source, std::uint64_t length, void* device_destination);

  // The raw speeds the loader is measured against: one cudaMemcpy of `bytes` from pinned
  // (page-locked) or pageable host memory to the device; the best of `repeats`, in bytes/s.
  double pinned_copy_Bps(std::uint64_t bytes, int repeats);
  double pageable_copy_Bps(std::uint64_t bytes, int repeats);
  DeviceMemory memory() const;
  // Device memory for tests and benchmarks (cudaMalloc / cudaFree); throws std::runtime_error.
  void* allocate(std::uint64_t bytes);
  void release(void* device_pointer);
  // Copies device memory back, to check what a load put there.
  void device_to_host(const void* device_source, std::uint64_t length, void* host_destination);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::real
