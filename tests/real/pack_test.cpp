// Directory contexts: a directory's pack (its files one after another, aligned), its manifest and
// hash, ranges read from the directory, and copies checked file by file.

#include <sys/stat.h>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <atomic>

#include "real_backend/wire/file_hash.hpp"
#include "real_backend/wire/pack.hpp"
#include "real_backend/wire/transfer.hpp"
#include "real_backend/worker/context_cache.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;
using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::Equals;

namespace {

// "same", or where two byte strings first differ: a failed check of megabytes says only that.
std::string compare(const std::string& a, const std::string& b) {
  auto [i, j] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  if (i == a.end() && j == b.end()) return "same";
  return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size()) +
         ", first difference at byte " + std::to_string(i - a.begin());
}

// The pack of `dir`, read whole as the manager reads ranges of it.
std::string whole_pack(const fs::path& dir, const std::vector<PackedFile>& files) {
  std::string out;
  std::string e = read_pack_range(dir, files, 0, pack_size(files), out);
  REQUIRE(e.empty());
  return out;
}

ContextInfo info_of(const fs::path& dir) {
  ContextInfo info;
  info.name = "model-dir";
  info.files = pack_directory(dir);
  info.size_bytes = pack_size(info.files);
  info.hash = manifest_hash(info.files);
  info.shared_path = dir.string();
  return info;
}

// Serves the pack of `dir` as context 0, reading ranges from the directory as the manager does,
// with the byte at `flipped` (if any) changed on the way.
class PackServer {
 public:
  PackServer(zmq::context_t& zmq, const KeyPair& server, const std::string& client_public,
             const ContextInfo& info, std::optional<std::uint64_t> flipped = std::nullopt)
      : server_(zmq, server, {client_public}, "test server", "tcp://127.0.0.1:0",
                [=](ContextId, std::uint64_t offset, std::uint32_t length, std::string& out) {
                  std::string e =
                      read_pack_range(info.shared_path, info.files, offset, length, out);
                  if (flipped && *flipped >= offset && *flipped < offset + length)
                    out[*flipped - offset] ^= 1;
                  return e;
                }) {}
  const std::string& endpoint() const { return server_.endpoint(); }

 private:
  FetchServer server_;
};

}  // namespace

TEST_CASE("a directory packs its files sorted by name, each at a multiple of 4096, zeros between") {
  TempDir dir;
  write_model_directory(dir / "m");
  std::vector<PackedFile> files = pack_directory(dir / "m");
  // The layout helpers.hpp works out by hand.
  std::vector<std::tuple<std::string, std::uint64_t, std::uint64_t>> layout;
  for (const PackedFile& f : files)
    layout.emplace_back(f.name, f.offset, f.size);
  CHECK(layout == std::vector<std::tuple<std::string, std::uint64_t, std::uint64_t>>{
                      {"config.json", 0, 19},
                      {"model-00001-of-00002.safetensors", 4096, 3'000'001},
                      {"model-00002-of-00002.safetensors", 3'006'464, 1'500'000},
                      {"sub/deeper/empty.txt", 4'509'696, 0},
                      {"sub/notes.md", 4'509'696, 5},
                      {"tokenizer.json", 4'513'792, 4096}});
  CHECK(pack_size(files) == kModelDirectoryPackBytes);
  std::string pack = whole_pack(dir / "m", files);
  REQUIRE(pack.size() == kModelDirectoryPackBytes);
  std::uint64_t position = 0;
  for (const PackedFile& f : files) {
    CHECK(pack.find_first_not_of('\0', position) >= f.offset);  // zeros up to the file
    std::string bytes = read_file(dir / "m" / f.name);
    CHECK(compare(pack.substr(f.offset, f.size), bytes) == "same");
    CHECK(f.hash == digest_bytes(bytes).hash);
    position = f.offset + f.size;
  }
  CHECK(pack_error(pack, files).empty());
  CHECK(manifest_error(files, pack.size(), manifest_hash(files)).empty());
  CHECK(pack_directory(dir.path / "m" / "") == files);  // named with a trailing slash
}

TEST_CASE("a range of a pack reads across file boundaries the bytes of the whole pack") {
  TempDir dir;
  write_model_directory(dir / "m");
  std::vector<PackedFile> files = pack_directory(dir / "m");
  std::string pack = whole_pack(dir / "m", files);
  // Inside a file, across padding into the next, across five files into a sixth, the last byte.
  for (auto [offset, length] : std::vector<std::pair<std::uint64_t, std::uint64_t>>{
           {5, 10}, {10, 5000}, {3'004'000, 1'510'000}, {4'509'690, 8000}, {4'517'887, 1}}) {
    std::string out;
    CHECK(read_pack_range(dir / "m", files, offset, length, out).empty());
    CHECK(compare(out, pack.substr(offset, length)) == "same");
  }
  std::string out;
  CHECK(read_pack_range(dir / "m", files, 4'517'887, 2, out) ==
        "range 4517887+2 is outside the pack of 4517888 bytes");
}

TEST_CASE("a directory's manifest hash is stable and changes with any byte or name") {
  TempDir dir;
  write_model_directory(dir / "m");
  std::string hash = manifest_hash(pack_directory(dir / "m"));
  CHECK(hash.size() == 64);
  CHECK(manifest_hash(pack_directory(dir / "m")) == hash);

  std::string shard = read_file(dir / "m/model-00002-of-00002.safetensors");
  shard[777'777] ^= 0x40;
  write_file(dir / "m/model-00002-of-00002.safetensors", shard);
  std::string flipped = manifest_hash(pack_directory(dir / "m"));
  CHECK(flipped != hash);
  shard[777'777] ^= 0x40;
  write_file(dir / "m/model-00002-of-00002.safetensors", shard);
  CHECK(manifest_hash(pack_directory(dir / "m")) == hash);

  fs::rename(dir / "m/sub/notes.md", dir / "m/sub/notez.md");
  CHECK(manifest_hash(pack_directory(dir / "m")) != hash);
  fs::rename(dir / "m/sub/notez.md", dir / "m/sub/notes.md");
  fs::remove(dir / "m/sub/deeper/empty.txt");  // an empty file counts too
  fs::remove(dir / "m/sub/deeper");
  CHECK(manifest_hash(pack_directory(dir / "m")) != hash);
}

TEST_CASE("links, special files, empty directories and odd names are refused, saying which") {
  TempDir dir;
  write_model_directory(dir / "m");
  fs::path m = dir / "m";
  fs::create_symlink(m / "config.json", m / "link.json");
  CHECK(input_error([&] { pack_directory(m); }) ==
        (m / "link.json").string() +
            ": a symbolic link; a context directory holds regular files only");
  fs::remove(m / "link.json");
  fs::create_directory_symlink(m / "sub", m / "subdir-link");
  CHECK(input_error([&] {
          pack_directory(m);
        }).ends_with("subdir-link: a symbolic link; a context directory holds regular files only"));
  fs::remove(m / "subdir-link");
  REQUIRE(mkfifo((m / "pipe").c_str(), 0600) == 0);
  CHECK(input_error([&] { pack_directory(m); }) ==
        (m / "pipe").string() +
            ": not a regular file; a context directory holds regular files only");
  fs::remove(m / "pipe");
  fs::create_directories(m / "sub/void");
  CHECK(input_error([&] { pack_directory(m); }) ==
        (m / "sub/void").string() + ": an empty directory");
  fs::remove(m / "sub/void");
  write_file(m / "two\nlines", "x");
  CHECK(input_error([&] { pack_directory(m); }) ==
        (m / "two\nlines").string() + ": a name with a control character");
  fs::remove(m / "two\nlines");
  CHECK(input_error([&] { pack_directory(m / "config.json"); }) ==
        (m / "config.json").string() + ": not a directory");
  fs::create_directory(dir / "nothing");
  CHECK(input_error([&] { pack_directory(dir / "nothing"); }) ==
        (dir / "nothing").string() + ": no files");
  CHECK(pack_directory(m).size() == 6);  // as it was
}

TEST_CASE("a pack's check catches a flipped byte in any file or its padding, and a wrong length") {
  TempDir dir;
  write_model_directory(dir / "m");
  std::vector<PackedFile> files = pack_directory(dir / "m");
  const std::string pack = whole_pack(dir / "m", files);
  for (const PackedFile& f : files) {
    if (f.size == 0) continue;
    std::string bad = pack;
    bad[f.offset + f.size / 2] ^= 1;
    CHECK_THAT(pack_error(bad, files),
               ContainsSubstring(f.name + ": hash ") && ContainsSubstring("does not match"));
  }
  std::string bad = pack;
  bad[4095] = 'x';  // the last byte of the padding after config.json
  CHECK(pack_error(bad, files) ==
        "byte 4095 of the padding before model-00001-of-00002.safetensors is not zero");
  bad = pack;
  bad[4'509'700] ^= 1;  // sub/notes.md's last byte, right after a file of none
  CHECK_THAT(pack_error(bad, files), ContainsSubstring("sub/notes.md: hash "));
  CHECK(pack_error(pack.substr(0, pack.size() - 1), files) ==
        "ends at byte 4517887, in or before tokenizer.json: the pack has 4517888 bytes");
  CHECK(pack_error(pack + '\0', files) == "more than the manifest's 4517888 bytes");
  write_file(dir / "pack", pack);
  CHECK(pack_file_error(dir / "pack", files).empty());
  write_file(dir / "pack", bad);
  CHECK_THAT(pack_file_error(dir / "pack", files), ContainsSubstring("sub/notes.md: hash "));
}

TEST_CASE("hashes remembered are reused for files whose size and time did not change") {
  TempDir dir;
  write_model_directory(dir / "m");
  fs::path shard = dir / "m/model-00001-of-00002.safetensors";
  std::string first = manifest_hash(pack_directory(dir / "m", dir / "remembered"));
  // Same size, same time, other bytes: taken for unchanged (the price of not reading it again).
  auto time = fs::last_write_time(shard);
  std::string bytes = read_file(shard);
  bytes[0] ^= 1;
  write_file(shard, bytes);
  fs::last_write_time(shard, time);
  CHECK(manifest_hash(pack_directory(dir / "m", dir / "remembered")) == first);
  // Touched: hashed again.
  fs::last_write_time(shard, time + std::chrono::seconds(1));
  std::string second = manifest_hash(pack_directory(dir / "m", dir / "remembered"));
  CHECK(second != first);
  CHECK(second == manifest_hash(pack_directory(dir / "m")));
}

TEST_CASE("a directory context is fetched as its pack, checked file by file, or not kept") {
  TempDir dir;
  write_model_directory(dir / "m");
  ContextInfo info = info_of(dir / "m");
  zmq::context_t zmq;
  KeyPair server = make_key_pair(), client = make_key_pair();
  std::atomic<bool> abort{false};
  FetchOptions small;
  small.chunk_bytes = 100'000;  // chunks that start and end inside files and padding
  {
    PackServer files(zmq, server, client.public_z85, info);
    fetch_file(zmq, files.endpoint(), server.public_z85, client, 0, info, dir / "got", abort,
               small);
  }
  CHECK(compare(read_file(dir / "got"), whole_pack(dir / "m", info.files)) == "same");
  CHECK(pack_file_error(dir / "got", info.files).empty());
  CHECK(!fs::exists(dir / "got.part"));
  // A byte flipped in transit, in the second shard: refused when that file ends.
  {
    PackServer files(zmq, server, client.public_z85, info, 4'000'000);
    CHECK_THROWS_WITH(fetch_file(zmq, files.endpoint(), server.public_z85, client, 0, info,
                                 dir / "bad", abort, small),
                      ContainsSubstring("model-dir: model-00002-of-00002.safetensors: hash "));
  }
  CHECK(!fs::exists(dir / "bad"));
  CHECK(!fs::exists(dir / "bad.part"));
}

TEST_CASE("a directory copied from the shared filesystem becomes its pack, unless it changed") {
  TempDir dir;
  write_model_directory(dir / "m");
  ContextInfo info = info_of(dir / "m");
  std::atomic<bool> abort{false};
  copy_file(info, dir / "copy", abort);
  CHECK(pack_file_error(dir / "copy", info.files).empty());
  CHECK(fs::file_size(dir / "copy") == kModelDirectoryPackBytes);

  write_file(dir / "m/sub/notes.md", "notes, longer");
  CHECK_THROWS_WITH(copy_file(info, dir / "copy2", abort),
                    Equals((dir / "m/sub/notes.md").string() +
                           " has 13 bytes, 5 when the job started: the directory changed"));
  CHECK(!fs::exists(dir / "copy2"));
  CHECK(!fs::exists(dir / "copy2.part"));
  write_file(dir / "m/sub/notes.md", "NOTES");  // same size, other bytes
  CHECK_THROWS_WITH(copy_file(info, dir / "copy2", abort),
                    ContainsSubstring("model-dir: sub/notes.md: hash "));
  CHECK(!fs::exists(dir / "copy2"));
}

TEST_CASE("a directory context's files are slices of its pack for the model loader") {
  TempDir dir;
  write_model_directory(dir / "m");
  ContextInfo info = info_of(dir / "m");
  std::vector<FileSlice> slices = file_slices(info);
  REQUIRE(slices.size() == 6);
  CHECK(slices[2].name == "model-00002-of-00002.safetensors");
  CHECK(slices[2].offset == 3'006'464);
  CHECK(slices[2].size == 1'500'000);
  CHECK(file_slices(ContextInfo{}).empty());
}
