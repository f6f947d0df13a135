// real_load_bench: how fast a worker brings a context to its disk and host memory, against reading
// the same file raw. The context is SIZE bytes of random data (default 1 GiB) in the page cache
// (written just before: these are warm reads). Every step is the worker's own code: the checked
// copy from a shared path, the CURVE fetch (what the manager serves), bulk fetches (bulk.hpp:
// what peers serve) from one and two holders, encrypted and in the clear, from a holder's copy in
// memory and from its disk, and the read into host memory. Best of 3 each.
//
//   real_load_bench [--json] [--bytes N]
//
// Prints a table, or with --json one object per step: step, bytes, seconds, GBps, vs_raw_read
// (the step's GB/s over the raw read's).

#include <fcntl.h>
#include <fmt/core.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "bench/timing.hpp"
#include "real_backend/wire/auth.hpp"
#include "real_backend/wire/bulk.hpp"
#include "real_backend/wire/file_hash.hpp"
#include "real_backend/wire/transfer.hpp"

namespace fs = std::filesystem;
using namespace hearth;
using namespace hearth::real;
using hearth::bench::best_of_3;

namespace {

// SIZE random bytes (incompressible, as weights nearly are).
std::string random_content(std::uint64_t size) {
  std::string bytes(size, '\0');
  std::mt19937_64 next(42);
  for (std::uint64_t i = 0; i + 8 <= size; i += 8) {
    std::uint64_t v = next();
    std::memcpy(bytes.data() + i, &v, 8);
  }
  return bytes;
}

// read() of the whole file, 4 MiB at a time, into one reused buffer: the fastest a process can
// have the bytes, the bar every other step is measured against.
void raw_read(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  std::vector<char> buffer(4 << 20);
  while (::read(fd, buffer.data(), buffer.size()) > 0) {
  }
  ::close(fd);
}

// A holder serving the context: from its copy in memory (zero-copy) or from its disk (pread).
struct Holder {
  Holder(const KeyPair& keys, const KeyPair& client, const fs::path& file,
         std::shared_ptr<const std::string> memory)
      : server(
            zmq, keys, {client.public_z85}, "bench holder", "tcp://127.0.0.1:0",
            [file](ContextId, std::uint64_t offset, std::uint32_t length, std::string& out) {
              return read_range(file, offset, length, out) ? "" : "read";
            },
            [memory](ContextId) { return memory; }) {}
  zmq::context_t zmq;  // as in a worker of its own: one ZAP handler per context
  FetchServer server;
};

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  std::uint64_t size = 1ull << 30;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "--bytes" && i + 1 < argc) {
      size = std::strtoull(argv[++i], nullptr, 10);
    } else {
      fmt::print(stderr, "usage: real_load_bench [--json] [--bytes N]\n");
      return 2;
    }
  }
  std::string pattern = (fs::temp_directory_path() / "hearth-bench-XXXXXX").string();
  fs::path dir = mkdtemp(pattern.data());
  fs::path file = dir / "context.bin";
  auto bytes = std::make_shared<const std::string>(random_content(size));
  std::ofstream(file, std::ios::binary).write(bytes->data(), static_cast<std::streamsize>(size));
  ContextInfo info;
  info.name = "context";
  info.size_bytes = size;
  info.hash = digest_bytes(*bytes).hash;
  info.shared_path = file.string();
  info.chunk_bytes = kDigestChunkBytes;
  info.chunk_digests = chunk_digests(*bytes, kDigestChunkBytes);

  struct Step {
    std::string name;
    double seconds;
  };
  std::vector<Step> steps;
  auto step = [&](std::string name, const std::function<void()>& run) {
    steps.push_back({std::move(name), best_of_3(run)});
  };
  std::atomic<bool> abort{false};
  step("raw_read", [&] { raw_read(file); });
  step("sha256_chunks", [&] { (void)chunk_digests(*bytes, kDigestChunkBytes); });
  step("blake2b_whole", [&] { (void)digest_bytes(*bytes); });
  step("host_from_disk", [&] { (void)read_whole_file(file, size); });
  step("disk_from_shared_path", [&] { copy_file(info, dir / "copy.bin", abort); });

  zmq::context_t zmq;
  KeyPair client = make_key_pair();
  KeyPair keys_a = make_key_pair(), keys_b = make_key_pair();
  Holder a(keys_a, client, file, bytes), b(keys_b, client, file, bytes);
  Holder disk_only(keys_a, client, file, nullptr);
  step("curve_fetch_1MiB", [&] {
    fetch_file(zmq, a.server.endpoint(), keys_a.public_z85, client, 0, info, dir / "got.bin",
               abort);
  });
  auto bulk = [&](std::vector<const Holder*> holders, bool encrypt, int streams) {
    return [&, holders, encrypt, streams] {
      std::vector<BulkPeer> peers;
      for (const Holder* h : holders) {
        const std::string& key = h == &b ? keys_b.public_z85 : keys_a.public_z85;
        peers.push_back(open_bulk(zmq, h->server.endpoint(), key, client, 0, encrypt, abort));
      }
      BulkOptions o;
      o.streams_per_source = streams;
      (void)fetch_bulk(peers, info, dir / "got.bin", abort, o);
    };
  };
  for (bool encrypt : {true, false}) {
    const char* how = encrypt ? "aes256gcm" : "clear";
    step(fmt::format("bulk_1_source_{}_1_stream", how), bulk({&a}, encrypt, 1));
    step(fmt::format("bulk_1_source_{}", how), bulk({&a}, encrypt, 2));
    step(fmt::format("bulk_2_sources_{}", how), bulk({&a, &b}, encrypt, 2));
    step(fmt::format("bulk_1_source_{}_from_disk", how), bulk({&disk_only}, encrypt, 2));
  }

  const double raw_gbps = static_cast<double>(size) / 1e9 / steps.front().seconds;
  if (!json) fmt::print("{:<36} {:>9} {:>9} {:>12}\n", "step", "seconds", "GB/s", "vs raw read");
  for (const Step& s : steps) {
    double gbps = static_cast<double>(size) / 1e9 / s.seconds;
    if (json) {
      nlohmann::json line{{"step", s.name},
                          {"bytes", size},
                          {"seconds", s.seconds},
                          {"GBps", gbps},
                          {"vs_raw_read", gbps / raw_gbps}};
      fmt::print("{}\n", line.dump());
    } else {
      fmt::print("{:<36} {:>9.3f} {:>9.2f} {:>11.0f}%\n", s.name, s.seconds, gbps,
                 100 * gbps / raw_gbps);
    }
  }
  fs::remove_all(dir);
}
