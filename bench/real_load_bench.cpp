// real_load_bench: what bringing a context to each tier costs on a worker, against reading the
// same file raw. The context is the built-in model made large (about 100 MB); every step is the
// worker's own code: the checked copy from a shared path, the fetch over loopback (the protocol a
// manager and a peer serve), the read into host memory, and building the model on the device
// (CPU here). Files are in the page cache (written just before), so these are warm reads.
//
//   real_load_bench [dim] [layers]     (default 512 8: ~100 MB)

#include <fmt/core.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <zmq.hpp>

#include "bench/timing.hpp"
#include "real_backend/model/builtin_model.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "real_backend/wire/auth.hpp"
#include "real_backend/wire/file_hash.hpp"
#include "real_backend/wire/transfer.hpp"

namespace fs = std::filesystem;
using namespace hearth;
using namespace hearth::real;
using hearth::bench::best_of_3;
using hearth::bench::seconds;

namespace {}  // namespace

int main(int argc, char** argv) {
  BuiltinModelOptions options;
  options.dim = argc > 1 ? std::atoi(argv[1]) : 512;
  options.layers = argc > 2 ? std::atoi(argv[2]) : 8;
  options.heads = 8;
  std::string pattern = (fs::temp_directory_path() / "hearth-bench-XXXXXX").string();
  fs::path dir = mkdtemp(pattern.data());
  fs::path model = dir / "model.pt";
  ModelRuntime& runtime = torch_runtime();
  runtime.set_threads(1);
  runtime.save_builtin(make_builtin_model(options), model.string());
  FileDigest digest = digest_file(model);
  ContextInfo info;
  info.name = "model";
  info.size_bytes = digest.size_bytes;
  info.hash = digest.hash;
  info.shared_path = model.string();
  const double mb = static_cast<double>(digest.size_bytes) / 1e6;

  double raw = best_of_3([&] {
    std::ifstream in(model, std::ios::binary);
    std::string bytes(digest.size_bytes, '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
  std::string bytes = read_whole_file(model, digest.size_bytes);
  double hash = best_of_3([&] { digest_bytes(bytes); });
  std::atomic<bool> abort{false};
  double shared = best_of_3([&] { copy_file(info, dir / "copy.bin", abort); });
  zmq::context_t zmq;
  KeyPair server = make_key_pair(), client = make_key_pair();
  // Serves the file's byte ranges the way the manager does (read_range per chunk).
  FetchServer files(zmq, server, {client.public_z85}, "bench", "tcp://127.0.0.1:0",
                    [&](ContextId, std::uint64_t offset, std::uint32_t length, std::string& out) {
                      return read_range(model, offset, length, out) ? "" : "read";
                    });
  // The fetch at its default chunk (1 MiB, 8 in flight) and two others.
  std::vector<std::pair<std::uint32_t, double>> fetched;
  for (std::uint32_t chunk : {1u << 20, 256u << 10, 4u << 20}) {
    FetchOptions o;
    o.chunk_bytes = chunk;
    fetched.emplace_back(chunk, best_of_3([&] {
                           fetch_file(zmq, files.endpoint(), server.public_z85, client, 0, info,
                                      dir / "fetched.bin", abort, o);
                         }));
  }
  double host = best_of_3([&] { read_whole_file(dir / "copy.bin", digest.size_bytes); });
  double device = best_of_3([&] { runtime.load(bytes, "cpu"); });

  fmt::print("context: built-in model dim {} layers {}, {:.1f} MB\n", options.dim, options.layers,
             mb);
  fmt::print("{:<44} {:>9} {:>9} {:>9}\n", "step", "seconds", "MB/s", "vs raw");
  auto row = [&](const char* what, double s) {
    fmt::print("{:<44} {:>9.3f} {:>9.0f} {:>8.2f}x\n", what, s, mb / s, s / raw);
  };
  row("raw read of the file (page cache)", raw);
  row("BLAKE2b hash of the bytes", hash);
  row("disk from shared path (copy + hash)", shared);
  for (auto [chunk, s] : fetched) {
    row(fmt::format("disk from manager/peer, {} KiB chunks", chunk >> 10).c_str(), s);
  }
  row("host from disk (read into memory)", host);
  row("gpu from host (TorchScript load, CPU)", device);
  fs::remove_all(dir);
}
