// Writes the seed inputs that are binary: one protocol message of every type, model headers
// (hearth's raw format and safetensors) of a small built-in model, and both ends of a bulk data
// connection (fuzz_bulk.hpp). Run once by hand when a format
// changes: `build-fuzz/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus`; the outputs are committed.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <variant>

#include "real_backend/model/builtin_model.hpp"
#include "real_backend/model/raw_model.hpp"
#include "real_backend/model/safetensors.hpp"
#include "real_backend/wire/protocol.hpp"
#include "tests/fuzz/fuzz_bulk.hpp"

namespace {

namespace fs = std::filesystem;
using namespace hearth::real;

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <std::size_t I = 0>
void every_message(const fs::path& dir) {
  if constexpr (I < std::variant_size_v<Message>) {
    const Message m{std::in_place_index<I>};
    write(dir / (std::string(message_name(m)) + ".bin"), encode(m));
    every_message<I + 1>(dir);
  }
}

std::string le(std::uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i, v >>= 8)
    out += static_cast<char>(v & 0xff);
  return out;
}

// Both ends of a bulk transfer of fuzz_bulk.hpp's context: the fetcher's requests (in range, past
// the end, empty) and the holder's answers to a fetch of every chunk, in the order asked.
void bulk_seeds(const fs::path& dir) {
  namespace bulk = hearth::fuzz::bulk;
  const std::string context = bulk::context();
  const std::string requests = le(0, 8) + le(4096, 4) + le(8192, 8) + le(2048, 4) + le(10000, 8) +
                               le(4096, 4) + le(0, 8) + le(0, 4);
  write(dir / "requests.bin", std::string(1, '\0') + requests);
  write(dir / "requests-read.bin", std::string(1, bulk::kFromDisk) + requests);
  write(dir / "requests-sealed.bin", std::string(1, bulk::kEncrypted) + requests);
  std::string answers;
  for (std::uint64_t offset = 0; offset < context.size(); offset += bulk::kChunkBytes) {
    const auto length = std::min<std::uint64_t>(bulk::kChunkBytes, context.size() - offset);
    answers += le(offset, 8) + le(length, 4) + le(0, 4) + context.substr(offset, length);
  }
  write(dir / "answers.bin", std::string(1, bulk::kFetcher) + answers);
  const std::string refusal = "no such context";
  write(dir / "answers-error.bin",
        std::string(1, bulk::kFetcher) + le(0, 8) + le(refusal.size(), 4) + le(1, 4) + refusal);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const fs::path corpus = argv[1];
  every_message(corpus / "protocol");
  fs::create_directories(corpus / "bulk");
  bulk_seeds(corpus / "bulk");
  Hello hello;
  hello.name = "node-7";
  hello.gpu_type = "A100-40GB";
  write(corpus / "protocol" / "hello-named.bin", encode(Message{hello}));

  const BuiltinModelOptions small{.dim = 32, .layers = 2, .heads = 4, .context = 24, .ffn = 48};
  const RawModelLayout layout = layout_builtin_model(plan_builtin_model(small), DType::bf16);
  write(corpus / "model_header" / "raw.bin", std::string(1, '\0') + raw_model_prefix(layout));

  const fs::path st = fs::temp_directory_path() / "hearth-fuzz-seed.safetensors";
  write_safetensors(st,
                    {{"w", DType::f32, {2, 2}, [](char* out) { std::fill(out, out + 16, 0); }},
                     {"b", DType::bf16, {3}, [](char* out) { std::fill(out, out + 6, 0); }}},
                    {{"format", "pt"}});
  std::ifstream in(st, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), {}};
  fs::remove(st);
  write(corpus / "model_header" / "safetensors.bin", std::string(1, '\1') + bytes);
  return 0;
}
