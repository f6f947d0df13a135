// The fast loader without a GPU: how a load is cut into chunks, the ring of buffers (against a
// fake device whose copies end late, so that a buffer refilled too early would corrupt the
// result), both sources, and the fallback where there is no CUDA.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "real_backend/model/cuda_device.hpp"
#include "real_backend/model/fast_loader.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth::real;
using namespace hearth::testing;
using Catch::Matchers::ContainsSubstring;

namespace {

// A device whose "copies" happen on a thread of its own, each a while after it was started, out
// of the ring buffer as it is then: like DMA, which reads the pinned buffer while it runs.
class LateDevice final : public RingDevice {
 public:
  LateDevice(const FastLoaderOptions& o, std::uint64_t total)
      : destination(total, '\0'),
        buffers_(static_cast<std::size_t>(o.buffers)),
        busy_(buffers_.size()) {
    for (auto& b : buffers_) {
      b = static_cast<char*>(std::aligned_alloc(4096, o.chunk_bytes));
    }
    copier_ = std::thread([this] { copy_loop(); });
  }
  ~LateDevice() override {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    copier_.join();
    for (char* b : buffers_)
      std::free(b);
  }

  char* buffer(int b) override {
    std::lock_guard lock(mutex_);
    if (busy_[static_cast<std::size_t>(b)]) ++refilled_while_busy;
    return buffers_[static_cast<std::size_t>(b)];
  }
  void copy_async(const LoadChunk& c) override {
    std::lock_guard lock(mutex_);
    busy_[static_cast<std::size_t>(c.buffer)] = true;
    queue_.push_back(c);
    cv_.notify_all();
  }
  void wait_buffer(int b) override {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return !busy_[static_cast<std::size_t>(b)]; });
  }
  void wait_all() override {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return queue_.empty() && !copying_; });
  }

  std::string destination;
  int refilled_while_busy = 0;  // buffer() asked for while a copy out of it was pending

 private:
  void copy_loop() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      LoadChunk c = queue_.front();
      queue_.pop_front();
      copying_ = true;
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      std::memcpy(destination.data() + c.offset, buffers_[static_cast<std::size_t>(c.buffer)],
                  c.bytes);
      lock.lock();
      copying_ = false;
      busy_[static_cast<std::size_t>(c.buffer)] = false;
      cv_.notify_all();
    }
  }

  std::vector<char*> buffers_;
  std::vector<bool> busy_;
  std::deque<LoadChunk> queue_;
  bool copying_ = false;
  bool stop_ = false;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::thread copier_;
};

}  // namespace

TEST_CASE("a load is cut into chunks that take the ring's buffers and the streams in turn") {
  FastLoaderOptions o;
  o.chunk_bytes = 4 << 20;
  o.buffers = 2;
  o.streams = 3;
  std::vector<LoadChunk> chunks = plan_chunks((10 << 20) + 5, o);
  REQUIRE(chunks.size() == 3);
  CHECK(chunks[0].offset == 0);
  CHECK(chunks[1].offset == 4 << 20);
  CHECK(chunks[2].offset == 8 << 20);
  CHECK(chunks[0].bytes == 4 << 20);
  CHECK(chunks[2].bytes == (2 << 20) + 5);
  CHECK(chunks[0].buffer == 0);
  CHECK(chunks[1].buffer == 1);
  CHECK(chunks[2].buffer == 0);
  CHECK(chunks[2].stream == 2);
  CHECK(chunks[2].index == 2);
  CHECK(plan_chunks(0, o).empty());
  o.chunk_bytes = 0;
  CHECK_THROWS_AS(plan_chunks(1, o), std::invalid_argument);
}

TEST_CASE("the ring delivers every byte in place and never refills a buffer still being copied") {
  const std::string source = pattern_bytes(1'000'003, 11);
  for (int producers : {1, 2, 4}) {
    for (int buffers : {1, 2, 3}) {
      CAPTURE(producers, buffers);
      FastLoaderOptions o;
      o.chunk_bytes = 64 << 10;
      o.buffers = buffers;
      o.streams = 2;
      o.producers = producers;
      LateDevice device(o, source.size());
      RingTimings t = memory_through_ring(source.data(), source.size(), o, device);
      CHECK(device.destination == source);
      CHECK(device.refilled_while_busy == 0);
      CHECK(t.bytes == source.size());
      CHECK(t.chunks == 16);  // 1,000,003 bytes in 65,536-byte chunks
    }
  }
}

TEST_CASE("a failing read stops the load and its error reaches the caller") {
  FastLoaderOptions o;
  o.chunk_bytes = 4096;
  o.buffers = 2;
  o.producers = 3;
  LateDevice device(o, 100 * 4096);
  int filled = 0;
  std::mutex m;
  CHECK_THROWS_WITH(run_ring(100 * 4096, o, device,
                             [&](const LoadChunk& c, char*) {
                               std::lock_guard lock(m);
                               ++filled;
                               if (c.index == 5) throw std::runtime_error("disk on fire");
                             }),
                    "disk on fire");
  CHECK(filled < 100);
}

TEST_CASE("a file region reaches the device whole, with and without O_DIRECT") {
  TempDir dir;
  const std::string bytes = pattern_bytes(3 * 4096 + 123 + 700'000, 5);
  write_file(dir / "f.bin", bytes);
  const std::uint64_t offset = 3 * 4096, length = bytes.size() - offset;
  for (bool direct : {false, true}) {
    CAPTURE(direct);
    FastLoaderOptions o;
    o.chunk_bytes = 64 << 10;
    o.buffers = 3;
    o.direct_io = direct;
    LateDevice device(o, length);
    bool used = true;
    file_through_ring(dir / "f.bin", offset, length, o, device, used);
    CHECK(device.destination == bytes.substr(offset));
    if (!direct) CHECK_FALSE(used);
  }
  // An offset O_DIRECT cannot read at falls back to buffered reads.
  FastLoaderOptions o;
  o.chunk_bytes = 64 << 10;
  o.direct_io = true;
  LateDevice device(o, 1000);
  bool used = true;
  file_through_ring(dir / "f.bin", 17, 1000, o, device, used);
  CHECK_FALSE(used);
  CHECK(device.destination == bytes.substr(17, 1000));
}

TEST_CASE("a file shorter than the region asked for is an error naming the file") {
  TempDir dir;
  write_file(dir / "short.bin", std::string(5000, 'x'));
  FastLoaderOptions o;
  o.chunk_bytes = 4096;
  LateDevice device(o, 9000);
  bool used = false;
  CHECK_THROWS_WITH(file_through_ring(dir / "short.bin", 0, 9000, o, device, used),
                    ContainsSubstring("short.bin: ends at 5000, before the 9000 bytes asked for"));
}

TEST_CASE("without a usable GPU the fast loader is unavailable and says why") {
  CudaAvailability a = cuda_availability();
  if (cuda_device_count() == 0) {
    CHECK_FALSE(a.usable);
    CHECK_FALSE(a.reason.empty());
    CHECK_THROWS_AS(FastLoader(0), FastLoaderUnavailable);
    CHECK_THROWS_WITH(FastLoader(0), a.reason);
  } else {
    // A GPU machine: the same question answered the other way.
    CHECK(a.usable);
    CHECK(a.devices == cuda_device_count());
    CHECK_THROWS_AS(FastLoader(a.devices), FastLoaderUnavailable);
  }
}
