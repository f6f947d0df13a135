// Caches and state on machines shared with other users: a worker's cache is a directory only its
// user may write, nothing is written through a link planted in it, the host tier is loaded from
// checked bytes, and results, logs and copies are this user's only.

#include <sys/stat.h>
#include <unistd.h>
#include <catch2/catch_test_macros.hpp>

#include "os/private_dir.hpp"
#include "real_backend/wire/file_hash.hpp"
#include "real_backend/wire/transfer.hpp"
#include "tests/input_error.hpp"
#include "tests/real/hearth_process.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;

namespace {

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("a cache directory that is a link, foreign or writable by others is refused") {
  TempDir dir;
  // Missing: made, 0700, whatever the umask.
  mode_t old = ::umask(0);
  os::require_private_dir(dir / "new" / "cache");
  ::umask(old);
  CHECK(mode_of(dir / "new" / "cache") == 0700);

  fs::create_directory(dir / "real");
  fs::create_directory_symlink(dir / "real", dir / "link");
  CHECK(input_error([&] { os::require_private_dir(dir / "link"); }) ==
        (dir / "link").string() + " is a symbolic link; a cache must be a directory of its own");

  fs::create_directory(dir / "open");
  fs::permissions(dir / "open", fs::perms::all);
  CHECK(input_error([&] { os::require_private_dir(dir / "open"); }) ==
        (dir / "open").string() + " may be written by other users (mode 0777): refused");
  // /tmp itself: root's, and everyone's to write.
  CHECK(!input_error([&] { os::require_private_dir("/tmp"); }).empty());

  if (::geteuid() == 0) {
    fs::create_directory(dir / "foreign");
    REQUIRE(::chown((dir / "foreign").c_str(), 65534, 65534) == 0);
    CHECK(input_error([&] { os::require_private_dir(dir / "foreign"); }) ==
          (dir / "foreign").string() + " belongs to user 65534, not to this one (0): refused");
  }
}

TEST_CASE("a worker with a linked cache refuses to start, before it joins anything") {
  TempDir dir;
  fs::create_directory(dir / "elsewhere");
  fs::create_directory_symlink(dir / "elsewhere", dir / "cache");
  write_file(dir / "worker.key", "not read: the cache is refused first\n");
  pid_t worker = start_hearth({"worker", "--manager", "127.0.0.1:9", "--keys",
                               (dir / "worker.key").string(), "--cache", (dir / "cache").string()},
                              dir / "worker.log");
  CHECK(exit_status(worker, 60) == 2);
  CHECK(lines_with(dir / "worker.log", (dir / "cache").string() + " is a symbolic link") == 1);
}

TEST_CASE("a link planted where a copy goes is replaced, and nothing outside is written") {
  TempDir dir;
  write_file(dir / "victim", "precious");
  write_file(dir / "model", "weights!");
  FileDigest d = digest_bytes("weights!");
  ContextInfo info;
  info.name = "model-file";
  info.size_bytes = d.size_bytes;
  info.hash = d.hash;
  info.shared_path = (dir / "model").string();
  fs::create_directory(dir / "cache");
  fs::create_symlink(dir / "victim", dir / "cache" / "context-0.bin.part");
  fs::create_symlink(dir / "victim", dir / "cache" / "context-0.bin");
  std::atomic<bool> abort{false};
  mode_t old = ::umask(022);
  copy_file(info, dir / "cache" / "context-0.bin", abort);
  ::umask(old);
  CHECK(read_file(dir / "victim") == "precious");
  CHECK(!fs::is_symlink(dir / "cache" / "context-0.bin"));
  CHECK(read_file(dir / "cache" / "context-0.bin") == "weights!");
  CHECK(mode_of(dir / "cache" / "context-0.bin") == 0600);
  // Reading from the cache never follows a link either...
  fs::create_symlink(dir / "victim", dir / "cache" / "context-1.bin");
  std::string out;
  CHECK(!read_cached_range(dir / "cache" / "context-1.bin", 0, 8, out));
  CHECK_THROWS_AS(read_whole_file(dir / "cache" / "context-1.bin", 8), TransferError);
  // ...while a model the operator named may be a link into a model store.
  fs::create_symlink(dir / "model", dir / "model-link");
  REQUIRE(read_range(dir / "model-link", 0, 8, out));
  CHECK(out == "weights!");
}

TEST_CASE("bytes changed after the fetch are caught before they reach the device") {
  FileDigest d = digest_bytes("weights!");
  ContextInfo info;
  info.name = "m";
  info.size_bytes = d.size_bytes;
  info.hash = d.hash;
  CHECK(bytes_error(info, "weights!").empty());
  CHECK(bytes_error(info, "weightz!").starts_with("hash "));
  CHECK(bytes_error(info, "weights") == "7 bytes, expected 8");
}

TEST_CASE("after a run: state 0700, results and logs 0600, copies 0600, caches gone unless kept") {
  TempDir dir;
  write_classify_job(dir / "job.toml", 20, 5);
  mode_t old = ::umask(022);
  pid_t manager =
      start_hearth({"run", (dir / "job.toml").string(), "--workers", "2"}, dir / "manager.log");
  int status = exit_status(manager);
  ::umask(old);
  REQUIRE(status == 0);
  const fs::path state = dir / "job.state";
  CHECK(mode_of(state) == 0700);
  CHECK(mode_of(state / "results.db") == 0600);
  CHECK(mode_of(state / "status.json") == 0600);
  int logs = 0, copies = 0;
  for (const auto& e : fs::recursive_directory_iterator(state / "workers")) {
    if (e.path().extension() == ".log") {
      ++logs;
      CHECK(mode_of(e.path()) == 0600);
    }
    if (e.path().filename().string().starts_with("context-")) ++copies;
  }
  CHECK(logs == 2);
  CHECK(copies == 0);  // removed as the workers ended

  // Kept with --keep-cache: 0600 copies in 0700 caches.
  fs::remove_all(state);
  fs::remove(dir / "out.jsonl");
  old = ::umask(022);
  manager = start_hearth(
      {"run", (dir / "job.toml").string(), "--workers", "2", "--worker-arg=--keep-cache"},
      dir / "manager2.log");
  status = exit_status(manager);
  ::umask(old);
  REQUIRE(status == 0);
  copies = 0;
  for (const auto& e : fs::recursive_directory_iterator(state / "workers")) {
    if (e.path().filename() == "context-0.bin") {
      ++copies;
      CHECK(mode_of(e.path()) == 0600);
      CHECK(mode_of(e.path().parent_path()) == 0700);
    }
  }
  CHECK(copies >= 1);
}
