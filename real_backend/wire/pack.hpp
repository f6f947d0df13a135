#pragma once
// A directory context (a Hugging Face model directory) as one byte stream, its pack: the
// directory's regular files, sorted by name, one after another, each starting at a multiple of
// kPackAlignment (zeros between), so that a safetensors file inside keeps its alignment and can be
// read with O_DIRECT. Its manifest (each file's name, offset, size and hash) is what a worker
// checks a copy against; the manifest's own hash is the context's hash. Workers keep the pack as
// one file; the manager never builds it, it reads ranges of it from the directory.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::real {

class FileHasher;

struct PackedFile {
  std::string name;  // relative path, '/'-separated
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::string hash;  // BLAKE2b-256 hex of the file, as file_hash.hpp computes it
  friend bool operator==(const PackedFile&, const PackedFile&) = default;
};

inline constexpr std::uint64_t kPackAlignment = 4096;
// Most files a manifest may list (a model directory has tens).
inline constexpr std::size_t kMaxPackFiles = 1u << 16;

// The manifest of `dir`'s pack, every file hashed. With `remembered` (a file, created if
// missing), hashes are taken from what it remembers of an earlier call for every file whose size
// and modification time are unchanged, and it is rewritten with what this call found. Throws
// InputError("DIR/x: a symbolic link ...") for anything but regular files and the directories
// holding them: links, special files, empty directories, names with control characters.
std::vector<PackedFile> pack_directory(const std::filesystem::path& dir,
                                       const std::filesystem::path& remembered = {});

// The pack's length: where its last file ends. Requires a non-empty manifest.
std::uint64_t pack_size(const std::vector<PackedFile>& files);
// BLAKE2b-256 hex of the manifest's canonical text (names, offsets, sizes, hashes).
std::string manifest_hash(const std::vector<PackedFile>& files);
// What is wrong with a manifest received from elsewhere, for a pack of `size_bytes` bytes hashing
// to `hash`; empty if nothing. A manifest is right only as pack_directory() lays it out: names
// plain relative paths, strictly ascending; each offset the first aligned one after the previous
// file; the last file ending at size_bytes.
std::string manifest_error(const std::vector<PackedFile>& files, std::uint64_t size_bytes,
                           const std::string& hash);

// Reads bytes [offset, offset + length) of the pack of `dir` as `files` lays it out into `out`.
// Returns an error text, empty on success; a file whose size is not the manifest's ("the
// directory changed") is one.
std::string read_pack_range(const std::filesystem::path& dir, const std::vector<PackedFile>& files,
                            std::uint64_t offset, std::uint64_t length, std::string& out);

// Checks a pack's bytes as they stream by, in order: each file's hash as it ends, and that the
// padding between files is zeros.
class PackChecker {
 public:
  explicit PackChecker(const std::vector<PackedFile>& files);
  ~PackChecker();
  PackChecker(const PackChecker&) = delete;
  PackChecker& operator=(const PackChecker&) = delete;

  // The first thing wrong, empty while all is well.
  std::string add(std::string_view bytes);
  // After the last byte: also that nothing is missing.
  std::string finish();

 private:
  std::string close_ended_files();

  const std::vector<PackedFile>& files_;
  std::size_t next_ = 0;  // the file being read, or the one the padding leads to
  std::uint64_t position_ = 0;
  std::unique_ptr<FileHasher> hasher_;
};

// What is wrong with `bytes`, or the file at `path`, as the pack `files` describes; empty if
// nothing.
std::string pack_error(std::string_view bytes, const std::vector<PackedFile>& files);
std::string pack_file_error(const std::filesystem::path& path,
                            const std::vector<PackedFile>& files);

}  // namespace hearth::real
