// os/atomic_file.hpp: a reader sees the old file or the new one, never half of one; a key file is
// private from its first byte.

#include <sys/stat.h>
#include <unistd.h>
#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "os/atomic_file.hpp"

namespace fs = std::filesystem;
using hearth::os::AtomicFile;
using hearth::os::temp_beside;
using hearth::os::write_file_atomically;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path dir =
      fs::temp_directory_path() / ("hearth-os-test-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

mode_t permissions(const fs::path& path) {
  struct stat s {};
  REQUIRE(::stat(path.c_str(), &s) == 0);
  return s.st_mode & 07777;
}

}  // namespace

TEST_CASE("the target keeps its old bytes until commit, then has the new ones whole") {
  const fs::path dir = fresh_dir("commit");
  write_file_atomically(dir / "f", "old\n");
  {
    AtomicFile file(dir / "f", temp_beside(dir / "f"));
    file.stream() << "new\n";
    file.stream().flush();
    CHECK(read_file(dir / "f") == "old\n");
    CHECK(read_file(dir / "f.tmp") == "new\n");
    CHECK(file.commit());
  }
  CHECK(read_file(dir / "f") == "new\n");
  CHECK(!fs::exists(dir / "f.tmp"));
  fs::remove_all(dir);
}

TEST_CASE("an atomic file dropped without commit leaves the target as it was and no temporary") {
  const fs::path dir = fresh_dir("drop");
  write_file_atomically(dir / "f", "old\n");
  {
    AtomicFile file(dir / "f", temp_beside(dir / "f", ".part"));
    file.stream() << "half";
  }
  CHECK(read_file(dir / "f") == "old\n");
  CHECK(!fs::exists(dir / "f.part"));
  fs::remove_all(dir);
}

TEST_CASE("a mode given is the file's before its first byte and after the rename") {
  const fs::path dir = fresh_dir("mode");
  {
    AtomicFile file(dir / "key", temp_beside(dir / "key"), 0600);
    CHECK(permissions(dir / "key.tmp") == 0600);
    file.stream() << "secret\n";
    CHECK(file.commit());
  }
  CHECK(permissions(dir / "key") == 0600);
  write_file_atomically(dir / "script", "#!/bin/sh\n", 0755);
  CHECK(permissions(dir / "script") == 0755);
  fs::remove_all(dir);
}

TEST_CASE("a link left where the temporary goes is replaced, never written through") {
  const fs::path dir = fresh_dir("link");
  std::ofstream(dir / "victim") << "not yours\n";
  fs::create_symlink(dir / "victim", dir / "out.tmp");
  write_file_atomically(dir / "out", "mine\n");
  CHECK(read_file(dir / "victim") == "not yours\n");
  CHECK(read_file(dir / "out") == "mine\n");
  CHECK_FALSE(fs::exists(fs::symlink_status(dir / "out.tmp")));
  fs::remove_all(dir);
}

TEST_CASE("a file that cannot be written is reported by its temporary's name") {
  const fs::path target = "/nonexistent/folder/f";
  try {
    write_file_atomically(target, "text");
    FAIL("nothing was thrown");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "/nonexistent/folder/f.tmp: cannot write");
  }
}
