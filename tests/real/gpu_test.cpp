// On a GPU only (hidden: run with `test_real "[gpu]"`, as experiments/h200/run.sh does): the fast
// loader puts exactly the right bytes on the device, and a raw model loaded through it scores as
// through the plain path and as on the CPU.

#include <catch2/catch_test_macros.hpp>

#include <cmath>
#include <cstdlib>

#include "real_backend/model/fast_loader.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "real_backend/model/raw_model.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth::real;
using namespace hearth::testing;

TEST_CASE("the fast loader puts a file's and a buffer's bytes on the GPU exactly", "[.gpu]") {
  TempDir dir;
  const std::string bytes = pattern_bytes((40 << 20) + 4096 + 77, 9);
  write_file(dir / "f.bin", bytes);
  const std::uint64_t length = bytes.size() - 4096;
  for (std::uint64_t chunk : {1ull << 20, 16ull << 20}) {
    for (bool direct : {false, true}) {
      CAPTURE(chunk, direct);
      FastLoaderOptions o;
      o.chunk_bytes = chunk;
      o.direct_io = direct;
      FastLoader loader(0, o);
      void* device = loader.allocate(length);
      std::string back(length, '\0');
      loader.file_to_device(dir / "f.bin", 4096, length, device);
      loader.device_to_host(device, length, back.data());
      CHECK(back == bytes.substr(4096));
      std::string poison(length, '\x7f');
      loader.host_to_device(poison.data(), length, device);
      loader.host_to_device(bytes.data() + 4096, length, device);
      loader.device_to_host(device, length, back.data());
      CHECK(back == bytes.substr(4096));
      loader.release(device);
    }
  }
}

TEST_CASE("a raw model on the GPU loads through the fast loader and scores as the plain way",
          "[.gpu]") {
  TempDir dir;
  BuiltinModelOptions o;
  o.dim = 128;
  o.layers = 2;
  o.heads = 4;
  o.context = 64;
  write_builtin_raw_model(o, DType::f32, dir / "m.raw", 2);
  ModelRuntime& rt = torch_runtime();
  REQUIRE(rt.resolve_device("auto") == "cuda:0");
  const std::string bytes = read_file(dir / "m.raw");
  auto fast = rt.load(bytes, "cuda:0");
  CHECK(rt.last_load().path == "raw-fast");
  auto from_file = rt.load_file((dir / "m.raw").string(), "cuda:0");
  CHECK(rt.last_load().path == "raw-fast-file");
  setenv("HEARTH_FAST_LOADER", "0", 1);
  auto plain = rt.load(bytes, "cuda:0");
  unsetenv("HEARTH_FAST_LOADER");
  CHECK(rt.last_load().path == "raw-plain");
  CHECK(rt.last_load().fallback_reason == "HEARTH_FAST_LOADER=0");
  auto cpu = rt.load(bytes, "cpu");
  for (const std::string& p :
       {std::string("Claim: the tower is in Paris\nVerdict:"), std::string(64, 'x')}) {
    CAPTURE(p);
    InferenceResult f = classify_one(*fast, bytes_of(p), {'S', 'R', 'N'});
    // The same bytes on the same device run the same kernels: bit-identical.
    CHECK(classify_one(*plain, bytes_of(p), {'S', 'R', 'N'}).scores == f.scores);
    CHECK(classify_one(*from_file, bytes_of(p), {'S', 'R', 'N'}).scores == f.scores);
    InferenceResult c = classify_one(*cpu, bytes_of(p), {'S', 'R', 'N'});
    for (std::size_t i = 0; i < 3; ++i)
      CHECK(std::abs(c.scores[i] - f.scores[i]) < 1e-2f * (1 + std::abs(c.scores[i])));
  }
}
