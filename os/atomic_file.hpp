#pragma once
// A file written whole or not at all: the bytes go to a temporary file beside the target, which
// is then renamed over it, so that a reader sees the old file or the new one, never half of one,
// and a crash leaves at worst the temporary behind.

#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string_view>

namespace hearth::os {

class AtomicFile {
 public:
  // Creates `temp` afresh for writing, replacing what a crash (or anyone) left there, a link
  // included, which is never followed; it must be beside `target` (on the same file system).
  // With `mode`, the file is created with exactly these permissions (0600: a key is never
  // readable by others, not even for a moment); without, those of any new file (0666 less the
  // umask).
  AtomicFile(std::filesystem::path target, std::filesystem::path temp,
             std::optional<mode_t> mode = std::nullopt);
  // Removes the temporary unless committed.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Where the bytes go; false once a write failed (or the temporary could not be opened).
  std::ofstream& stream() { return out_; }
  const std::filesystem::path& temp() const { return temp_; }

  // Closes the temporary and renames it over the target. Returns false, the target untouched, if
  // any write failed: the caller reports temp() its own way. Throws
  // std::filesystem::filesystem_error if the rename fails.
  [[nodiscard]] bool commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::ofstream out_;
  bool committed_ = false;
};

// `path` with `suffix` appended: a temporary beside it ("labels.jsonl.tmp").
std::filesystem::path temp_beside(const std::filesystem::path& path,
                                  std::string_view suffix = ".tmp");

// Writes `text` to `target` whole or not at all, through temp_beside(target), with `mode` as
// AtomicFile takes it. Throws std::runtime_error("TEMP: cannot write") if it could not.
void write_file_atomically(const std::filesystem::path& target, std::string_view text,
                           std::optional<mode_t> mode = std::nullopt);

}  // namespace hearth::os
