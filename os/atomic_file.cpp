#include "os/atomic_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>

namespace hearth::os {

namespace fs = std::filesystem;

AtomicFile::AtomicFile(fs::path target, fs::path temp, std::optional<mode_t> mode)
    : target_(std::move(target)), temp_(std::move(temp)) {
  // Created afresh with its mode (not opened with the default one and changed later: a reader
  // that opened it in between would keep reading it), and never through a link left in its place.
  ::unlink(temp_.c_str());
  int fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  mode.value_or(0666));
  // The umask may have cut the mode asked for; fchmod sets it exactly.
  bool made = fd >= 0 && (!mode || ::fchmod(fd, *mode) == 0);
  if (fd >= 0) ::close(fd);
  if (made) out_.open(temp_, std::ios::binary | std::ios::trunc);
  if (!made) out_.setstate(std::ios::failbit);
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  out_.close();
  std::error_code ec;
  fs::remove(temp_, ec);
}

bool AtomicFile::commit() {
  out_.close();
  if (!out_) return false;
  fs::rename(temp_, target_);
  committed_ = true;
  return true;
}

fs::path temp_beside(const fs::path& path, std::string_view suffix) {
  fs::path temp = path;
  temp += suffix;
  return temp;
}

void write_file_atomically(const fs::path& target, std::string_view text,
                           std::optional<mode_t> mode) {
  AtomicFile file(target, temp_beside(target), mode);
  file.stream() << text;
  if (!file.commit())
    throw std::runtime_error(fmt::format("{}: cannot write", file.temp().string()));
}

}  // namespace hearth::os
