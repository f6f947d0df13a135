#pragma once
// Context files are checked by size and BLAKE2b-256 hash (libsodium) wherever they are copied.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace hearth::real {

class FileHasher {
 public:
  FileHasher();
  ~FileHasher();
  FileHasher(const FileHasher&) = delete;
  FileHasher& operator=(const FileHasher&) = delete;

  void add(std::string_view bytes);
  std::uint64_t size_bytes() const { return size_; }
  // Lower-case hex of the 32-byte digest. Call once, after the last add().
  std::string hex();

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::uint64_t size_ = 0;
};

struct FileDigest {
  std::uint64_t size_bytes = 0;
  std::string hash;
  friend bool operator==(const FileDigest&, const FileDigest&) = default;
};

// Throws InputError("path: cannot read") if the file cannot be read.
FileDigest digest_file(const std::filesystem::path& path);
FileDigest digest_bytes(std::string_view bytes);

}  // namespace hearth::real
