// The fast loader's ring and its two sources, in plain C++: the CUDA device behind it is in
// fast_loader.cu (fast_loader_none.cpp where CUDA is not built).

#include "real_backend/model/fast_loader.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "os/fd.hpp"

namespace hearth::real {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

constexpr std::uint64_t kDirectAlignment = 4096;

// Opens `path` for reading, with O_DIRECT if asked and if a first aligned read works (tmpfs and
// some overlay file systems refuse it); closes on every path out.
class InputFile {
 public:
  InputFile(const std::filesystem::path& path, bool want_direct) : path_(path.string()) {
    if (want_direct) {
      fd_.reset(::open(path_.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
      if (fd_.is_open() && !direct_read_works()) fd_.reset();
      direct_ = fd_.is_open();
    }
    if (!fd_.is_open()) fd_.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_.is_open()) {
      throw std::runtime_error(fmt::format("{}: cannot open: {}", path_, strerror(errno)));
    }
  }
  bool direct() const { return direct_; }

  // Throws unless the file holds `end` bytes: checked once, before the producer threads read, so
  // that a short file is reported the same whichever chunk would meet its end first.
  void require(std::uint64_t end) const {
    if (size() < end) ends_before(end);
  }

  // Reads exactly `bytes` at `offset` into `out` (which has room for `room` bytes). With O_DIRECT
  // the read is rounded up to whole blocks, within `room`.
  void read(char* out, std::uint64_t bytes, std::uint64_t offset, std::uint64_t room) const {
    std::uint64_t want = bytes;
    if (direct_)
      want = std::min(room, (bytes + kDirectAlignment - 1) / kDirectAlignment * kDirectAlignment);
    std::uint64_t done = 0;
    while (done < bytes) {
      ssize_t n = ::pread(fd_.get(), out + done, want - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        throw std::runtime_error(
            fmt::format("{}: read at {} failed: {}", path_, offset + done, strerror(errno)));
      }
      if (n == 0) ends_before(offset + bytes);  // it shrank since require()
      done += static_cast<std::uint64_t>(n);
    }
  }

 private:
  std::uint64_t size() const {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) {
      throw std::runtime_error(fmt::format("{}: cannot stat: {}", path_, strerror(errno)));
    }
    return static_cast<std::uint64_t>(st.st_size);
  }

  [[noreturn]] void ends_before(std::uint64_t end) const {
    throw std::runtime_error(
        fmt::format("{}: ends at {}, before the {} bytes asked for", path_, size(), end));
  }

  bool direct_read_works() const {
    void* probe = nullptr;
    if (posix_memalign(&probe, kDirectAlignment, kDirectAlignment) != 0) return false;
    ssize_t n = ::pread(fd_.get(), probe, kDirectAlignment, 0);
    std::free(probe);
    return n >= 0;
  }

  std::string path_;
  os::Fd fd_;
  bool direct_ = false;
};

}  // namespace

std::vector<LoadChunk> plan_chunks(std::uint64_t total_bytes, const FastLoaderOptions& o) {
  std::vector<LoadChunk> chunks;
  if (o.chunk_bytes == 0 || o.buffers <= 0 || o.streams <= 0) {
    throw std::invalid_argument("fast loader: chunk_bytes, buffers and streams must be positive");
  }
  for (std::uint64_t offset = 0, i = 0; offset < total_bytes; offset += o.chunk_bytes, ++i) {
    chunks.push_back(LoadChunk{i, offset, std::min(o.chunk_bytes, total_bytes - offset),
                               static_cast<int>(i % static_cast<std::uint64_t>(o.buffers)),
                               static_cast<int>(i % static_cast<std::uint64_t>(o.streams))});
  }
  return chunks;
}

RingTimings run_ring(std::uint64_t total_bytes, const FastLoaderOptions& options,
                     RingDevice& device,
                     const std::function<void(const LoadChunk&, char* buffer)>& fill) {
  const auto start = Clock::now();
  const std::vector<LoadChunk> chunks = plan_chunks(total_bytes, options);
  const std::uint64_t buffers = static_cast<std::uint64_t>(options.buffers);
  std::mutex mutex;
  std::condition_variable started_cv;
  // started[b]: 1 + the index of the last chunk whose copy out of buffer b has been started.
  std::vector<std::uint64_t> started(buffers, 0);
  std::atomic<std::uint64_t> next{0};
  bool failed = false;
  std::exception_ptr error;
  RingTimings timings;

  auto produce = [&] {
    double fill_s = 0, wait_s = 0;
    try {
      device.enter_thread();
      for (std::uint64_t i = next++; i < chunks.size(); i = next++) {
        const LoadChunk& c = chunks[i];
        auto t0 = Clock::now();
        if (i >= buffers) {
          // The chunk before in this buffer must have its copy started before it can be waited.
          std::unique_lock lock(mutex);
          started_cv.wait(lock, [&] { return failed || started[c.buffer] >= i - buffers + 1; });
          if (failed) break;
          lock.unlock();
          device.wait_buffer(c.buffer);
        }
        auto t1 = Clock::now();
        fill(c, device.buffer(c.buffer));
        auto t2 = Clock::now();
        device.copy_async(c);
        wait_s += std::chrono::duration<double>(t1 - t0).count();
        fill_s += std::chrono::duration<double>(t2 - t1).count();
        {
          std::lock_guard lock(mutex);
          started[c.buffer] = i + 1;
        }
        started_cv.notify_all();
      }
    } catch (...) {
      std::lock_guard lock(mutex);
      if (!failed) error = std::current_exception();
      failed = true;
      next = chunks.size();
      started_cv.notify_all();
    }
    std::lock_guard lock(mutex);
    timings.fill_s += fill_s;
    timings.wait_s += wait_s;
  };

  std::vector<std::thread> threads;
  const int producers =
      std::max(1, std::min<int>(options.producers, static_cast<int>(chunks.size())));
  for (int i = 1; i < producers; ++i)
    threads.emplace_back(produce);
  produce();
  for (std::thread& t : threads)
    t.join();
  device.wait_all();
  if (error) std::rethrow_exception(error);
  timings.seconds = since(start);
  timings.bytes = total_bytes;
  timings.chunks = chunks.size();
  return timings;
}

RingTimings file_through_ring(const std::filesystem::path& path, std::uint64_t offset,
                              std::uint64_t length, const FastLoaderOptions& options,
                              RingDevice& device, bool& direct_io_used) {
  const bool aligned =
      offset % kDirectAlignment == 0 && options.chunk_bytes % kDirectAlignment == 0;
  InputFile file(path, options.direct_io && aligned);
  file.require(offset + length);
  direct_io_used = file.direct();
  return run_ring(length, options, device, [&](const LoadChunk& c, char* buffer) {
    file.read(buffer, c.bytes, offset + c.offset, options.chunk_bytes);
  });
}

RingTimings memory_through_ring(const void* source, std::uint64_t length,
                                const FastLoaderOptions& options, RingDevice& device) {
  const char* bytes = static_cast<const char*>(source);
  return run_ring(length, options, device, [&](const LoadChunk& c, char* buffer) {
    std::memcpy(buffer, bytes + c.offset, c.bytes);
  });
}

}  // namespace hearth::real
