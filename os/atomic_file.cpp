#include "os/atomic_file.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <stdexcept>

namespace hearth::os {

namespace fs = std::filesystem;

AtomicFile::AtomicFile(fs::path target, fs::path temp, std::optional<mode_t> mode)
    : target_(std::move(target)), temp_(std::move(temp)) {
  out_.open(temp_, std::ios::binary | std::ios::trunc);
  if (out_ && mode && ::chmod(temp_.c_str(), *mode) != 0) out_.setstate(std::ios::failbit);
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
