#include "real_backend/wire/file_hash.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <fstream>
#include <vector>

#include "policy/errors.hpp"

namespace hearth::real {

struct FileHasher::State {
  crypto_generichash_state h;
};

FileHasher::FileHasher() : state_(std::make_unique<State>()) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  crypto_generichash_init(&state_->h, nullptr, 0, 32);
}

FileHasher::~FileHasher() = default;

void FileHasher::add(std::string_view bytes) {
  crypto_generichash_update(&state_->h, reinterpret_cast<const unsigned char*>(bytes.data()),
                            bytes.size());
  size_ += bytes.size();
}

std::string FileHasher::hex() {
  unsigned char digest[32];
  crypto_generichash_final(&state_->h, digest, sizeof digest);
  std::string out;
  for (unsigned char b : digest)
    out += fmt::format("{:02x}", b);
  return out;
}

FileDigest digest_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot read", path.string()));
  FileHasher h;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    h.add({buffer.data(), static_cast<std::size_t>(in.gcount())});
  }
  if (in.bad()) throw InputError(fmt::format("{}: read error", path.string()));
  return {h.size_bytes(), h.hex()};
}

FileDigest digest_bytes(std::string_view bytes) {
  FileHasher h;
  h.add(bytes);
  return {h.size_bytes(), h.hex()};
}

}  // namespace hearth::real
