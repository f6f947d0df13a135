#include "real_backend/wire/pack.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "os/atomic_file.hpp"
#include "os/fd.hpp"
#include "policy/errors.hpp"
#include "real_backend/wire/file_hash.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

// Sizes beyond this are absurd (a petabyte); below it, offsets cannot overflow.
constexpr std::uint64_t kMaxFileBytes = std::uint64_t{1} << 50;

std::uint64_t aligned(std::uint64_t position) {
  return (position + kPackAlignment - 1) / kPackAlignment * kPackAlignment;
}

std::uint64_t end_of(const PackedFile& f) {
  return f.offset + f.size;
}

// Why `name` is not a plain relative path a pack may hold; empty if it is. Control characters are
// refused so that a name is one word at the end of a line in the manifest's text and in logs.
std::string name_error(const std::string& name) {
  if (name.empty() || name.size() > 4096) return "a name of 1 to 4096 bytes";
  if (name.front() == '/') return "not a relative path";
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return "a name with a control character";
  }
  std::string_view rest = name;
  while (true) {
    std::string_view part = rest.substr(0, rest.find('/'));
    if (part.empty() || part == "." || part == "..") return "a name with an empty, . or .. part";
    if (part.size() == rest.size()) return "";
    rest.remove_prefix(part.size() + 1);
  }
}

bool is_hash(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// What an earlier pack_directory() remembered: name -> (size, mtime, hash).
struct Remembered {
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  std::string hash;
};
constexpr const char* kRememberedHeader = "hearth pack hashes 1";

std::map<std::string, Remembered> read_remembered(const fs::path& path) {
  std::map<std::string, Remembered> out;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line) || line != kRememberedHeader) return out;  // none, or not ours
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Remembered r;
    std::string name;
    if (fields >> r.size >> r.mtime >> r.hash && fields.get() == ' ' && std::getline(fields, name))
      out[name] = r;
  }
  return out;
}

}  // namespace

std::vector<PackedFile> pack_directory(const fs::path& dir, const fs::path& remembered) {
  struct Found {
    PackedFile file;
    std::int64_t mtime = 0;
  };
  if (!fs::is_directory(dir)) throw InputError(fmt::format("{}: not a directory", dir.string()));
  fs::path root = dir.lexically_normal();  // "models/smol/" and "models/smol" name files alike
  if (!root.has_filename()) root = root.parent_path();
  std::vector<Found> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path& p = it->path();
    fs::file_status status = it->symlink_status();
    if (fs::is_symlink(status)) {
      throw InputError(fmt::format(
          "{}: a symbolic link; a context directory holds regular files only", p.string()));
    }
    if (fs::is_directory(status)) {
      if (fs::is_empty(p)) throw InputError(fmt::format("{}: an empty directory", p.string()));
      continue;
    }
    if (!fs::is_regular_file(status)) {
      throw InputError(fmt::format(
          "{}: not a regular file; a context directory holds regular files only", p.string()));
    }
    Found f;
    f.file.name = p.lexically_relative(root).generic_string();
    if (std::string e = name_error(f.file.name); !e.empty())
      throw InputError(fmt::format("{}: {}", p.string(), e));
    f.file.size = fs::file_size(p);
    f.mtime = static_cast<std::int64_t>(fs::last_write_time(p).time_since_epoch().count());
    found.push_back(std::move(f));
  }
  if (ec) throw InputError(fmt::format("{}: cannot list: {}", dir.string(), ec.message()));
  if (found.empty()) throw InputError(fmt::format("{}: no files", dir.string()));
  if (found.size() > kMaxPackFiles) {
    throw InputError(
        fmt::format("{}: {} files, more than {}", dir.string(), found.size(), kMaxPackFiles));
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.file.name < b.file.name; });

  std::map<std::string, Remembered> known;
  if (!remembered.empty()) known = read_remembered(remembered);
  std::vector<PackedFile> files;
  std::string memory = std::string(kRememberedHeader) + "\n";
  std::uint64_t position = 0;
  for (Found& f : found) {
    f.file.offset = aligned(position);
    auto k = known.find(f.file.name);
    if (k != known.end() && k->second.size == f.file.size && k->second.mtime == f.mtime) {
      f.file.hash = k->second.hash;
    } else {
      FileDigest d = digest_file(dir / f.file.name);
      if (d.size_bytes != f.file.size) {
        throw InputError(
            fmt::format("{}: changed while it was read", (dir / f.file.name).string()));
      }
      f.file.hash = d.hash;
    }
    position = end_of(f.file);
    memory += fmt::format("{} {} {} {}\n", f.file.size, f.mtime, f.file.hash, f.file.name);
    files.push_back(std::move(f.file));
  }
  if (!remembered.empty()) os::write_file_atomically(remembered, memory);
  return files;
}

std::uint64_t pack_size(const std::vector<PackedFile>& files) {
  return end_of(files.back());
}

std::string manifest_hash(const std::vector<PackedFile>& files) {
  FileHasher h;
  h.add("hearth pack manifest 1\n");
  for (const PackedFile& f : files)
    h.add(fmt::format("{} {} {} {}\n", f.offset, f.size, f.hash, f.name));
  return h.hex();
}

std::string manifest_error(const std::vector<PackedFile>& files, std::uint64_t size_bytes,
                           const std::string& hash) {
  if (files.empty()) return "a manifest without files";
  if (files.size() > kMaxPackFiles)
    return fmt::format("{} files, more than {}", files.size(), kMaxPackFiles);
  std::uint64_t position = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const PackedFile& f = files[i];
    if (std::string e = name_error(f.name); !e.empty()) return fmt::format("file {}: {}", i, e);
    if (i > 0 && !(files[i - 1].name < f.name)) {
      return fmt::format("{} is not after {}: names must ascend", f.name, files[i - 1].name);
    }
    if (f.offset != aligned(position)) {
      return fmt::format("{} at offset {}, the layout puts it at {}", f.name, f.offset,
                         aligned(position));
    }
    if (f.size > kMaxFileBytes) return fmt::format("{} has an absurd size {}", f.name, f.size);
    if (!is_hash(f.hash)) return fmt::format("{} has no BLAKE2b-256 hex hash", f.name);
    position = end_of(f);
  }
  if (position != size_bytes) {
    return fmt::format("the files end at {}, the context has {} bytes", position, size_bytes);
  }
  if (manifest_hash(files) != hash) return "the manifest does not match the context's hash";
  return "";
}

std::string read_pack_range(const fs::path& dir, const std::vector<PackedFile>& files,
                            std::uint64_t offset, std::uint64_t length, std::string& out) {
  std::uint64_t total = pack_size(files);
  if (offset > total || length > total - offset) {
    return fmt::format("range {}+{} is outside the pack of {} bytes", offset, length, total);
  }
  out.assign(length, '\0');  // the padding
  std::uint64_t end = offset + length;
  auto first = std::partition_point(files.begin(), files.end(),
                                    [&](const PackedFile& f) { return end_of(f) <= offset; });
  for (auto f = first; f != files.end() && f->offset < end; ++f) {
    std::uint64_t from = std::max(offset, f->offset);
    std::uint64_t to = std::min(end, end_of(*f));
    fs::path path = dir / f->name;
    os::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd.is_open() || ::fstat(fd.get(), &st) != 0) {
      return fmt::format("cannot read {}", path.string());
    }
    if (static_cast<std::uint64_t>(st.st_size) != f->size) {
      return fmt::format("{} has {} bytes, {} when the job started: the directory changed",
                         path.string(), st.st_size, f->size);
    }
    std::uint64_t got = 0;
    while (from + got < to) {
      ssize_t n = ::pread(fd.get(), out.data() + (from - offset) + got, to - from - got,
                          static_cast<off_t>(from - f->offset + got));
      if (n <= 0) return fmt::format("cannot read {}", path.string());
      got += static_cast<std::uint64_t>(n);
    }
  }
  return "";
}

PackChecker::PackChecker(const std::vector<PackedFile>& files)
    : files_(files), hasher_(std::make_unique<FileHasher>()) {}

PackChecker::~PackChecker() = default;

std::string PackChecker::close_ended_files() {
  while (next_ < files_.size() && position_ == end_of(files_[next_])) {
    const PackedFile& f = files_[next_];
    std::string hash = hasher_->hex();
    if (hash != f.hash) {
      return fmt::format("{}: hash {} does not match the manifest's {}", f.name, hash, f.hash);
    }
    ++next_;
    hasher_ = std::make_unique<FileHasher>();
  }
  return "";
}

std::string PackChecker::add(std::string_view bytes) {
  while (!bytes.empty()) {
    if (std::string e = close_ended_files(); !e.empty()) return e;
    if (next_ == files_.size()) {
      return fmt::format("more than the manifest's {} bytes", pack_size(files_));
    }
    const PackedFile& f = files_[next_];
    std::size_t n = 0;
    if (position_ < f.offset) {
      n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), f.offset - position_));
      auto nonzero = std::find_if(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n),
                                  [](char c) { return c != 0; });
      if (nonzero != bytes.begin() + static_cast<std::ptrdiff_t>(n)) {
        return fmt::format("byte {} of the padding before {} is not zero",
                           position_ + static_cast<std::uint64_t>(nonzero - bytes.begin()), f.name);
      }
    } else {
      n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), end_of(f) - position_));
      hasher_->add(bytes.substr(0, n));
    }
    position_ += n;
    bytes.remove_prefix(n);
  }
  return close_ended_files();
}

std::string PackChecker::finish() {
  if (std::string e = close_ended_files(); !e.empty()) return e;
  if (next_ < files_.size()) {
    return fmt::format("ends at byte {}, in or before {}: the pack has {} bytes", position_,
                       files_[next_].name, pack_size(files_));
  }
  return "";
}

std::string pack_error(std::string_view bytes, const std::vector<PackedFile>& files) {
  PackChecker checker(files);
  std::string e = checker.add(bytes);
  return e.empty() ? checker.finish() : e;
}

std::string pack_file_error(const fs::path& path, const std::vector<PackedFile>& files) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fmt::format("cannot read {}", path.string());
  PackChecker checker(files);
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    std::string e = checker.add({buffer.data(), static_cast<std::size_t>(in.gcount())});
    if (!e.empty()) return e;
  }
  if (in.bad()) return fmt::format("cannot read {}", path.string());
  return checker.finish();
}

}  // namespace hearth::real
