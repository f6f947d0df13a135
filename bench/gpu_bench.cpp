// gpu_bench: the figures experiments/h200/run.sh collects on a GPU machine, each a row
// "section,key,value,unit,note" appended to a CSV (several processes may append at once).
//
//   gpu_bench raw    MODEL.raw CSV              the hardware: raw disk read, raw host-to-device
//                                               copy, and the fast loader's ring alone (no
//                                               libtorch: runs even where the plugin does not)
//   gpu_bench load   MODEL.raw MODEL.pt CSV     context load per tier through the runtime: the
//                                               plain libtorch paths and the fast loader (cold
//                                               reads: the page cache dropped first)
//   gpu_bench infer  MODEL.raw CSV [BATCHES]    classify throughput of 256-token prompts per
//                                               batch size (comma list), device memory in use
//   gpu_bench rate   MODEL.raw CSV TAG START_UNIX_S SECONDS
//                                               one-at-a-time classify (as workers run) from a
//                                               wall-clock start, for several processes at once
//   gpu_bench stages MODEL.raw CSV DIR COPIES   the worker's own stage code, for the simulator's
//                                               calibration: checked copy from a shared path
//                                               (alone and COPIES at once), read into memory,
//                                               build on the device, fetch from a peer
//
// The device is cuda:0 when there is a GPU, else the CPU (experiments/h200/run.sh --cpu-dry-run),
// where the GPU-only rows are left out and say why.

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <thread>
#include <zmq.hpp>

#include "real_backend/model/fast_loader.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "real_backend/model/raw_model.hpp"
#include "real_backend/wire/auth.hpp"
#include "real_backend/wire/bulk.hpp"
#include "real_backend/wire/file_hash.hpp"
#include "real_backend/wire/transfer.hpp"

namespace fs = std::filesystem;
using namespace hearth::real;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double seconds(const std::function<void()>& f) {
  auto start = Clock::now();
  f();
  return since(start);
}

// Appends rows with one write() each (O_APPEND), so that processes writing at once do not mix.
class Csv {
 public:
  explicit Csv(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644)) {
    if (fd_ < 0) throw std::runtime_error(path + ": cannot open");
  }
  ~Csv() { ::close(fd_); }
  void row(const std::string& section, const std::string& key, double value,
           const std::string& unit, const std::string& note = "") {
    std::string line = fmt::format("{},{},{:.6g},{},{}\n", section, key, value, unit, quoted(note));
    if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      throw std::runtime_error("cannot write the CSV");
    }
    fmt::print("{:<8} {:<36} {:>14.6g} {:<6} {}\n", section, key, value, unit, note);
    std::fflush(stdout);
  }
  void note(const std::string& section, const std::string& key, const std::string& note) {
    std::string line = fmt::format("{},{},,,{}\n", section, key, quoted(note));
    (void)!::write(fd_, line.data(), line.size());
    fmt::print("{:<8} {:<36} {:>14} {:<6} {}\n", section, key, "-", "", note);
    std::fflush(stdout);
  }

 private:
  static std::string quoted(std::string text) {
    std::replace(text.begin(), text.end(), '"', '\'');
    std::replace(text.begin(), text.end(), '\n', ' ');
    return '"' + text + '"';
  }
  int fd_;
};

// Writes the file's dirty pages and drops its pages from the page cache, so that the next read
// comes from the disk; returns the fraction still cached afterwards (0 when it worked).
double drop_cache(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(path.string() + ": cannot open");
  ::fsync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  struct stat st {};
  ::fstat(fd, &st);
  double cached = 0;
  if (st.st_size > 0) {
    void* map = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
    if (map != MAP_FAILED) {
      const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
      std::vector<unsigned char> in((static_cast<std::size_t>(st.st_size) + page - 1) / page);
      if (::mincore(map, static_cast<std::size_t>(st.st_size), in.data()) == 0) {
        std::size_t n = 0;
        for (unsigned char c : in)
          n += c & 1;
        cached = static_cast<double>(n) / static_cast<double>(in.size());
      }
      ::munmap(map, static_cast<std::size_t>(st.st_size));
    }
  }
  ::close(fd);
  return cached;
}

std::string cache_note(double cached) {
  return cached < 0.01 ? "cold"
                       : fmt::format("page cache not dropped: {:.0f}% cached", cached * 100);
}

// A plain sequential read() of the whole file through a 64 MiB buffer.
void plain_read(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(path.string() + ": cannot open");
  std::vector<char> buffer(64 << 20);
  while (::read(fd, buffer.data(), buffer.size()) > 0) {
  }
  ::close(fd);
}

// `threads` threads reading disjoint 16 MiB chunks with O_DIRECT (buffered where refused):
// what the disk gives with requests in flight. Returns whether O_DIRECT was used.
bool parallel_read(const fs::path& path, int threads, bool allow_direct = true) {
  const std::uint64_t size = fs::file_size(path), chunk = 16 << 20;
  int fd = allow_direct ? ::open(path.c_str(), O_RDONLY | O_DIRECT) : -1;
  bool direct = fd >= 0;
  if (!direct) fd = ::open(path.c_str(), O_RDONLY);
  std::atomic<std::uint64_t> next{0};
  std::atomic<bool> refused{false};
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&] {
      void* buffer = std::aligned_alloc(4096, chunk);
      for (std::uint64_t c = next++; c * chunk < size; c = next++) {
        if (::pread(fd, buffer, chunk, static_cast<off_t>(c * chunk)) < 0) refused = true;
      }
      std::free(buffer);
    });
  }
  for (auto& t : pool)
    t.join();
  ::close(fd);
  if (refused && direct) {
    drop_cache(path);
    return parallel_read(path, threads, false);  // O_DIRECT refused: buffered instead
  }
  return direct;
}

double gb_per_s(std::uint64_t bytes, double s) {
  return s > 0 ? static_cast<double>(bytes) / s / 1e9 : 0;
}

std::string device_of(ModelRuntime& rt) {
  return rt.resolve_device("auto");
}

// The GPU's loader, or null (saying why in the CSV) where there is none.
std::unique_ptr<FastLoader> gpu_loader(Csv& csv, const std::string& section) {
  CudaAvailability a = cuda_availability();
  if (!a.usable) {
    csv.note(section, "gpu", "no GPU rows: " + a.reason);
    return nullptr;
  }
  return std::make_unique<FastLoader>(0);
}

// Best (shortest) of `repeats` runs of f.
double best_of(int repeats, const std::function<double()>& f) {
  double best = 1e300;
  for (int i = 0; i < repeats; ++i)
    best = std::min(best, f());
  return best;
}

// The hardware's own speeds, and the fast loader's ring alone: no libtorch involved.
void raw_mode(const fs::path& raw, Csv& csv) {
  const std::uint64_t raw_bytes = fs::file_size(raw);
  const RawModelLayout layout = read_raw_model_layout(raw);
  csv.row("load", "raw_file_bytes", static_cast<double>(raw_bytes), "B");
  double cached = 0;
  double read_s = best_of(2, [&] {
    cached = drop_cache(raw);
    return seconds([&] { plain_read(raw); });
  });
  csv.row("load", "raw_read_s", read_s, "s", "plain read(), 64 MiB buffer, " + cache_note(cached));
  csv.row("load", "raw_read_GBps", gb_per_s(raw_bytes, read_s), "GB/s");
  bool direct = false;
  double parallel_s = best_of(2, [&] {
    drop_cache(raw);
    return seconds([&] { direct = parallel_read(raw, 4); });
  });
  csv.row("load", "raw_read_parallel_GBps", gb_per_s(raw_bytes, parallel_s), "GB/s",
          direct ? "4 threads, O_DIRECT, 16 MiB" : "4 threads, buffered (O_DIRECT refused), cold");
  std::unique_ptr<FastLoader> fl = gpu_loader(csv, "load");
  if (!fl) return;
  csv.row("load", "h2d_pinned_GBps", fl->pinned_copy_Bps(1ull << 30, 3) / 1e9, "GB/s",
          "cudaMemcpy of 1 GiB from pinned memory, best of 3");
  csv.row("load", "h2d_pageable_GBps", fl->pageable_copy_Bps(1ull << 30, 3) / 1e9, "GB/s",
          "cudaMemcpy of 1 GiB from pageable memory, best of 3");
  // The ring from pageable memory (the worker's gpu stage) by producers and chunk size: what the
  // defaults should be.
  {
    const std::uint64_t n = std::min<std::uint64_t>(2ull << 30, layout.data_bytes);
    std::vector<char> host(n, 0x5a);
    for (int producers : {1, 2, 4, 8}) {
      for (std::uint64_t chunk_mib : {4, 16, 64}) {
        FastLoaderOptions o;
        o.producers = producers;
        o.chunk_bytes = chunk_mib << 20;
        FastLoader loader(0, o);
        void* dst = loader.allocate(n);
        double s =
            best_of(2, [&] { return loader.host_to_device(host.data(), n, dst).ring.seconds; });
        loader.release(dst);
        csv.row("load", fmt::format("ring_memory_p{}_c{}_GBps", producers, chunk_mib),
                gb_per_s(n, s), "GB/s",
                fmt::format("{} producers, {} MiB chunks x {}, {} streams, {:.2f} GB from pageable "
                            "memory, best of 2",
                            producers, chunk_mib, o.buffers, o.streams, n / 1e9));
      }
    }
  }
  for (bool use_direct : {false, true}) {
    FastLoaderOptions o;
    o.direct_io = use_direct;
    FastLoader loader(0, o);
    void* dst = loader.allocate(layout.data_bytes);
    LoadTimings t;
    double s = best_of(2, [&] {
      cached = drop_cache(raw);
      t = loader.file_to_device(raw, layout.data_offset, layout.data_bytes, dst);
      return t.ring.seconds;
    });
    loader.release(dst);
    csv.row("load", use_direct ? "ring_file_direct_s" : "ring_file_buffered_s", s, "s",
            fmt::format("ring alone, {} (O_DIRECT {}), {} MiB chunks x {}, {} producers, "
                        "{} streams; setup {:.3f} s",
                        cache_note(cached), t.direct_io ? "used" : "not used", o.chunk_bytes >> 20,
                        o.buffers, o.producers, o.streams, t.setup_s));
  }
}

// Context loads through the runtime: the plain libtorch paths and the fast loader.
void load_mode(const fs::path& raw, const fs::path& pt, Csv& csv) {
  ModelRuntime& rt = torch_runtime();
  const std::string device = device_of(rt);
  csv.row("load", "torchscript_file_bytes", static_cast<double>(fs::file_size(pt)), "B", device);
  double cached = 0;

  // The plain libtorch path: TorchScript read into memory, then torch::jit::load onto the device.
  auto cold_load = [&](const fs::path& file, const char* what, int repeats) {
    double best_read = 1e300, best_copy = 1e300, best_build = 1e300, best_total = 1e300;
    LoadReport r;
    for (int i = 0; i < repeats; ++i) {
      double c = drop_cache(file);
      auto start = Clock::now();
      auto model = rt.load_file(file.string(), device);
      double total = since(start);
      r = rt.last_load();
      best_read = std::min(best_read, r.read_s);
      best_copy = std::min(best_copy, r.copy_s);
      best_build = std::min(best_build, r.build_s);
      best_total = std::min(best_total, total);
      if (i == 0) cached = c;
    }
    std::string note =
        fmt::format("{} ({}), {}, best of {}", what, r.path, cache_note(cached), repeats);
    if (!r.fallback_reason.empty()) note += "; fast loader not used: " + r.fallback_reason;
    std::string k = what;
    csv.row("load", k + "_disk_to_host_s", best_read, "s", note);
    csv.row("load", k + "_host_to_device_s", best_copy, "s", note);
    csv.row("load", k + "_build_s", best_build, "s", note);
    csv.row("load", k + "_cold_start_s", best_total, "s", note);
  };
  cold_load(pt, "torchscript", 2);
  setenv("HEARTH_FAST_LOADER", "0", 1);
  cold_load(raw, "raw_plain", 2);
  unsetenv("HEARTH_FAST_LOADER");

  // The fast loader: from host memory (the worker's gpu stage), and from the file (cold start).
  std::string bytes;
  {
    std::ifstream in(raw, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  LoadReport r;
  double host_s = best_of(2, [&] {
    auto model = rt.load(bytes, device);
    r = rt.last_load();
    return r.copy_s;
  });
  csv.row("load", "fast_host_to_device_s", host_s, "s",
          fmt::format("{}{}", r.path, r.fallback_reason.empty() ? "" : "; " + r.fallback_reason));
  csv.row("load", "fast_build_s", r.build_s, "s", r.path);
  bytes.clear();
  bytes.shrink_to_fit();
  cold_load(raw, "fast_file", 2);
}

std::vector<std::vector<std::int32_t>> prompts(std::size_t n, std::size_t tokens) {
  std::vector<std::vector<std::int32_t>> out(n);
  std::uint64_t x = 17;
  const char* alphabet = "abcdefghijklmnopqrstuvwxyz ,.";
  for (auto& p : out) {
    p.resize(tokens);
    for (auto& t : p) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      t = alphabet[(x >> 33) % 29];
    }
  }
  return out;
}

void infer_mode(const fs::path& raw, Csv& csv, const std::vector<int>& batches) {
  ModelRuntime& rt = torch_runtime();
  const std::string device = device_of(rt);
  std::unique_ptr<FastLoader> fl = gpu_loader(csv, "infer");
  double first = seconds([&] { rt.load_file(raw.string(), device); });
  csv.row("infer", "first_load_s", first, "s", rt.last_load().path + ", in a fresh process");
  std::shared_ptr<LoadedModel> model;
  double steady = seconds([&] { model = rt.load_file(raw.string(), device); });
  csv.row("infer", "second_load_s", steady, "s", rt.last_load().path);
  if (fl) {
    DeviceMemory m = fl->memory();
    csv.row("infer", "device_memory_used_after_load_GB",
            static_cast<double>(m.total_bytes - m.free_bytes) / 1e9, "GB",
            "cudaMemGetInfo total - free, whole device");
    csv.row("infer", "device_memory_total_GB", static_cast<double>(m.total_bytes) / 1e9, "GB");
  }
  const std::vector<std::vector<std::int32_t>> labels = {{'S'}, {'R'}};
  const auto pool = prompts(256, 256);
  double first_inference = seconds([&] { model->classify({pool[0]}, labels); });
  csv.row("infer", "first_inference_s", first_inference, "s", "256 tokens, one input");
  // The worker's path: one input at a time.
  std::size_t n = 0;
  auto start = Clock::now();
  while (since(start) < 2.0 || n < 3)
    model->classify({pool[n++ % pool.size()]}, labels);
  double per = since(start) / static_cast<double>(n);
  csv.row("infer", "one_at_a_time_inference_s", per, "s",
          fmt::format("256 tokens, {} inferences, as workers run them", n));
  for (int b : batches) {
    std::vector<std::vector<std::int32_t>> batch(
        pool.begin(), pool.begin() + std::min<std::size_t>(b, pool.size()));
    while (static_cast<int>(batch.size()) < b)
      batch.push_back(pool[batch.size() % pool.size()]);
    try {
      model->classify(batch, labels);  // warm-up: kernels chosen for this shape
      std::size_t calls = 0;
      auto t0 = Clock::now();
      while (since(t0) < 1.0 || calls < 2) {
        model->classify(batch, labels);
        ++calls;
      }
      double s = since(t0);
      csv.row("infer", fmt::format("batch_{}_inferences_per_s", b),
              static_cast<double>(b * calls) / s, "1/s",
              fmt::format("{} calls of {} inputs of 256 tokens in {:.2f} s (a raw model runs "
                          "a call's inputs one at a time)",
                          calls, b, s));
      if (fl) {
        DeviceMemory m = fl->memory();
        csv.row("infer", fmt::format("batch_{}_device_memory_used_GB", b),
                static_cast<double>(m.total_bytes - m.free_bytes) / 1e9, "GB",
                "whole device, libtorch's cache included");
      }
    } catch (const std::exception& e) {
      csv.note("infer", fmt::format("batch_{}_error", b), e.what());
    }
  }
}

void rate_mode(const fs::path& raw, Csv& csv, const std::string& tag, double start_at,
               double duration) {
  ModelRuntime& rt = torch_runtime();
  auto model = rt.load_file(raw.string(), device_of(rt));
  const auto pool = prompts(64, 256);
  const std::vector<std::vector<std::int32_t>> labels = {{'S'}, {'R'}};
  model->classify({pool[0]}, labels);
  using Wall = std::chrono::system_clock;
  auto wall = [] { return std::chrono::duration<double>(Wall::now().time_since_epoch()).count(); };
  double late = wall() - start_at;
  while (wall() < start_at)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::size_t n = 0;
  while (wall() < start_at + duration)
    model->classify({pool[n++ % pool.size()]}, labels);
  csv.row("rate", tag, static_cast<double>(n) / duration, "1/s",
          fmt::format("one at a time, 256 tokens, {:.1f} s{}", duration,
                      late > 0 ? fmt::format(", ready {:.1f} s late", late) : ""));
}

void stages_mode(const fs::path& raw, Csv& csv, const fs::path& dir, int copies) {
  ModelRuntime& rt = torch_runtime();
  const std::string device = device_of(rt);
  fs::create_directories(dir);
  FileDigest digest;
  double hash_s = seconds([&] { digest = digest_file(raw); });
  csv.row("stages", "hash_GBps", gb_per_s(digest.size_bytes, hash_s), "GB/s",
          "BLAKE2b, one thread");
  ContextInfo info;
  info.name = "model";
  info.size_bytes = digest.size_bytes;
  info.hash = digest.hash;
  info.shared_path = raw.string();
  std::atomic<bool> abort{false};
  plain_read(raw);  // the shared copy in the page cache, as after the first reader in a run
  double copy_s = seconds([&] { copy_file(info, dir / "copy-0.bin", abort); });
  csv.row("stages", "disk_from_shared_GBps", gb_per_s(info.size_bytes, copy_s), "GB/s",
          "copy_file (read, write, BLAKE2b check), one at a time, source in the page cache");
  double host_s = seconds([&] { read_whole_file(dir / "copy-0.bin", info.size_bytes); });
  csv.row("stages", "host_from_disk_GBps", gb_per_s(info.size_bytes, host_s), "GB/s",
          "read_whole_file of the file just copied (in the page cache, as in a run)");
  std::string bytes = read_whole_file(dir / "copy-0.bin", info.size_bytes);
  rt.load(bytes, device);  // the device's context made outside the timing
  LoadReport r;
  double gpu_s = best_of(2, [&] {
    double s = seconds([&] { rt.load(bytes, device); });
    r = rt.last_load();
    return s;
  });
  csv.row("stages", "gpu_from_host_s", gpu_s, "s", r.path);
  csv.row("stages", "gpu_from_host_copy_GBps", gb_per_s(r.bytes, r.copy_s), "GB/s", r.path);
  csv.row("stages", "gpu_from_host_build_s", r.build_s, "s", "module made around the weights");
  bytes.clear();
  bytes.shrink_to_fit();
  fs::remove(dir / "copy-0.bin");

  // `copies` checked copies at once, as workers joining together read the shared path.
  std::vector<std::thread> pool;
  std::atomic<int> failures{0};
  double together_s = seconds([&] {
    for (int i = 0; i < copies; ++i) {
      pool.emplace_back([&, i] {
        try {
          copy_file(info, dir / fmt::format("copy-{}.bin", i), abort);
        } catch (const std::exception&) {
          ++failures;
        }
      });
    }
    for (auto& t : pool)
      t.join();
  });
  for (int i = 0; i < copies; ++i)
    fs::remove(dir / fmt::format("copy-{}.bin", i));
  csv.row("stages", fmt::format("disk_from_shared_{}_at_once_GBps", copies),
          gb_per_s(info.size_bytes * static_cast<std::uint64_t>(copies), together_s), "GB/s",
          fmt::format("all {} together{}", copies,
                      failures ? fmt::format(", {} failed", failures.load()) : ""));

  // A fetch of the whole context from a peer over loopback (CURVE, 1 MiB chunks, 8 in flight,
  // BLAKE2b check), the peer serving it from host memory as workers do.
  auto held = std::make_shared<const std::string>(read_whole_file(raw, info.size_bytes));
  zmq::context_t zmq;
  KeyPair server = make_key_pair(), client = make_key_pair();
  // Serving from host memory, as a worker's peer server does when it holds the context there
  // (as every holder does under pcm).
  FetchServer peer(
      zmq, server, {client.public_z85}, "bench", "tcp://127.0.0.1:0",
      [&](hearth::ContextId, std::uint64_t offset, std::uint32_t length, std::string& out) {
        if (offset >= held->size()) return std::string("past the end");
        out.assign(*held, offset, length);
        return std::string();
      });
  double curve_s = seconds([&] {
    fetch_file(zmq, peer.endpoint(), server.public_z85, client, 0, info, dir / "fetched.bin",
               abort);
  });
  csv.row("stages", "disk_from_peer_curve_GBps", gb_per_s(info.size_bytes, curve_s), "GB/s",
          fmt::format("fetch_file over loopback (CURVE, BLAKE2b check) of {:.2f} GB, served from "
                      "host memory (the path before bulk transfers)",
                      info.size_bytes / 1e9));
  // What workers do now: a bulk transfer (two streams, AES-256-GCM, SHA-256 of every chunk),
  // the peer serving its host copy without copying it.
  ContextInfo bulk_info = info;
  bulk_info.chunk_bytes = kDigestChunkBytes;
  bulk_info.chunk_digests = chunk_digests(*held, kDigestChunkBytes);
  zmq::context_t holder_zmq;  // the holder is a process of its own: one ZAP handler per context
  FetchServer holder(
      holder_zmq, server, {client.public_z85}, "bench holder", "tcp://127.0.0.1:0",
      [](hearth::ContextId, std::uint64_t, std::uint32_t, std::string&) {
        return std::string("served from memory");
      },
      [&](hearth::ContextId) { return held; });
  double fetch_s = seconds([&] {
    fetch_bulk({open_bulk(zmq, holder.endpoint(), server.public_z85, client, 0, true, abort)},
               bulk_info, dir / "fetched.bin", abort);
  });
  csv.row("stages", "disk_from_peer_GBps", gb_per_s(info.size_bytes, fetch_s), "GB/s",
          fmt::format("bulk transfer over loopback (2 streams, AES-256-GCM, SHA-256 per 4 MiB "
                      "chunk) of {:.2f} GB, served from host memory",
                      info.size_bytes / 1e9));
  fs::remove(dir / "fetched.bin");
}

std::vector<int> parse_batches(const std::string& text) {
  std::vector<int> out;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    out.push_back(std::stoi(text.substr(i, j - i)));
    i = j + 1;
  }
  return out;
}

int usage() {
  fmt::print(stderr,
             "usage: gpu_bench raw MODEL.raw CSV\n"
             "       gpu_bench load MODEL.raw MODEL.pt CSV\n"
             "       gpu_bench infer MODEL.raw CSV [BATCHES]\n"
             "       gpu_bench rate MODEL.raw CSV TAG START_UNIX_S SECONDS\n"
             "       gpu_bench stages MODEL.raw CSV DIR COPIES\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() == 3 && a[0] == "raw") {
      Csv csv(a[2]);
      raw_mode(a[1], csv);
    } else if (a.size() == 4 && a[0] == "load") {
      Csv csv(a[3]);
      load_mode(a[1], a[2], csv);
    } else if ((a.size() == 3 || a.size() == 4) && a[0] == "infer") {
      Csv csv(a[2]);
      infer_mode(a[1], csv, parse_batches(a.size() == 4 ? a[3] : "1,2,4,8,16,32,64,128,256"));
    } else if (a.size() == 6 && a[0] == "rate") {
      Csv csv(a[2]);
      rate_mode(a[1], csv, a[3], std::stod(a[4]), std::stod(a[5]));
    } else if (a.size() == 5 && a[0] == "stages") {
      Csv csv(a[2]);
      stages_mode(a[1], csv, a[3], std::stoi(a[4]));
    } else {
      return usage();
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "gpu_bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
