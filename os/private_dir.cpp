#include "os/private_dir.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "policy/errors.hpp"

namespace hearth::os {

namespace fs = std::filesystem;

fs::path make_private_temp_dir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  fs::path base = tmp && *tmp ? fs::path(tmp) : fs::path("/tmp");
  std::string pattern = (base / (prefix + "XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data())) {  // mode 0700
    throw InputError(
        fmt::format("cannot make a directory in {}: {}", base.string(), std::strerror(errno)));
  }
  return fs::path(buffer.data());
}

void require_private_dir(const fs::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      throw InputError(fmt::format("{}: {}", dir.string(), std::strerror(errno)));
    }
    std::error_code ec;
    if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      throw InputError(fmt::format("cannot make {}: {}", dir.string(), std::strerror(errno)));
    }
    if (::lstat(dir.c_str(), &st) != 0) {
      throw InputError(fmt::format("{}: {}", dir.string(), std::strerror(errno)));
    }
  }
  if (S_ISLNK(st.st_mode)) {
    throw InputError(
        fmt::format("{} is a symbolic link; a cache must be a directory of its own", dir.string()));
  }
  if (!S_ISDIR(st.st_mode)) throw InputError(fmt::format("{} is not a directory", dir.string()));
  if (st.st_uid != ::geteuid()) {
    throw InputError(fmt::format("{} belongs to user {}, not to this one ({}): refused",
                                 dir.string(), st.st_uid, ::geteuid()));
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    throw InputError(fmt::format("{} may be written by other users (mode {:04o}): refused",
                                 dir.string(), st.st_mode & 07777));
  }
}

bool tighten_mode(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return false;
  mode_t wanted = S_ISDIR(st.st_mode) ? 0700 : 0600;
  if ((st.st_mode & 07777 & ~wanted) == 0) return false;
  if (::chmod(path.c_str(), st.st_mode & 07777 & wanted) != 0) {
    throw InputError(
        fmt::format("cannot restrict {} to its owner: {}", path.string(), std::strerror(errno)));
  }
  return true;
}

}  // namespace hearth::os
