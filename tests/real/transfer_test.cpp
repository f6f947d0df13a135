// Context files move between machines checked by size and hash; a wrong copy is never used.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <atomic>
#include <thread>

#include "real_backend/wire/file_hash.hpp"
#include "real_backend/wire/transfer.hpp"
#include "real_backend/worker/context_cache.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;
using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::Equals;

namespace {

// Serves `bytes` as context 0, the way the manager and peers do, on a thread.
class FileServer {
 public:
  FileServer(zmq::context_t& zmq, const KeyPair& server, const std::string& client_public,
             std::string bytes)
      : bytes_(std::move(bytes)),
        server_(zmq, server, {client_public}, "test server", "tcp://127.0.0.1:0",
                [this](ContextId, std::uint64_t offset, std::uint32_t length, std::string& out) {
                  out = bytes_.substr(offset, length);
                  return std::string();
                }) {}
  const std::string& endpoint() const { return server_.endpoint(); }

 private:
  std::string bytes_;
  FetchServer server_;
};

ContextInfo info_of(const std::string& bytes) {
  ContextInfo info;
  info.name.assign(1, 'm');  // (assigning "m" trips a false -Wrestrict in GCC 12)
  FileDigest d = digest_bytes(bytes);
  info.size_bytes = d.size_bytes;
  info.hash = d.hash;
  return info;
}

}  // namespace

TEST_CASE("a fetched file arrives whole, in small chunks, with its hash checked") {
  TempDir dir;
  zmq::context_t zmq;
  KeyPair server = make_key_pair(), client = make_key_pair();
  std::string bytes(2'500'000, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<char>(i * 7919 % 251);
  FileServer files(zmq, server, client.public_z85, bytes);
  std::atomic<bool> abort{false};
  FetchOptions small;
  small.chunk_bytes = 100'000;  // 25 chunks, 8 in flight
  fetch_file(zmq, files.endpoint(), server.public_z85, client, 0, info_of(bytes), dir / "got",
             abort, small);
  CHECK(read_file(dir / "got") == bytes);
  CHECK(!fs::exists(dir / "got.part"));
}

TEST_CASE("a file whose bytes do not match the expected hash is refused and not kept") {
  TempDir dir;
  zmq::context_t zmq;
  KeyPair server = make_key_pair(), client = make_key_pair();
  FileServer files(zmq, server, client.public_z85, "the wrong bytes!");
  ContextInfo info = info_of("the right bytes!");  // same size, other content
  std::atomic<bool> abort{false};
  std::string why = "does not match the expected ";
  why.append(info.hash);
  CHECK_THROWS_WITH(
      fetch_file(zmq, files.endpoint(), server.public_z85, client, 0, info, dir / "got", abort),
      ContainsSubstring(why));
  CHECK(!fs::exists(dir / "got"));
  CHECK(!fs::exists(dir / "got.part"));
}

TEST_CASE("a server that does not know the client's key sends nothing, and the fetch gives up") {
  TempDir dir;
  zmq::context_t zmq;
  KeyPair server = make_key_pair(), client = make_key_pair(), stranger = make_key_pair();
  FileServer files(zmq, server, client.public_z85, "bytes");
  std::atomic<bool> abort{false};
  FetchOptions quick;
  quick.idle_timeout_s = 0.5;
  CHECK_THROWS_WITH(fetch_file(zmq, files.endpoint(), server.public_z85, stranger, 0,
                               info_of("bytes"), dir / "got", abort, quick),
                    ContainsSubstring("sent nothing for"));
}

TEST_CASE("a copy from the shared filesystem is checked by size") {
  TempDir dir;
  write_file(dir / "model", "12345");
  ContextInfo info = info_of("123456");
  info.shared_path = (dir / "model").string();
  std::atomic<bool> abort{false};
  CHECK_THROWS_WITH(copy_file(info, dir / "copy", abort), Equals("m: got 5 bytes, expected 6"));
  info = info_of("12345");
  info.shared_path = (dir / "model").string();
  copy_file(info, dir / "copy", abort);
  CHECK(read_file(dir / "copy") == "12345");
}

TEST_CASE("a worker's cache, emptied at start, deletes only its own files from its directory") {
  TempDir dir;
  write_file(dir / "notes.txt", "mine");
  write_file(dir / "context-3.bin", "old context");
  write_file(dir / "context-4.bin.part", "old partial copy");
  ContextCache cache(dir.path);
  cache.clear();
  CHECK(fs::exists(dir / "notes.txt"));
  CHECK(!fs::exists(dir / "context-3.bin"));
  CHECK(!fs::exists(dir / "context-4.bin.part"));
}

TEST_CASE("a peer serves a context from its host copy after the disk copy is evicted") {
  TempDir dir;
  ContextCache cache(dir.path);
  write_file(cache.file(0), "0123456789");
  cache.disk_ready(0);
  cache.host_ready(0, std::make_shared<const std::string>("0123456789"));
  cache.evict(0, Tier::disk);
  CHECK(!fs::exists(cache.file(0)));
  std::string out;
  CHECK(cache.read(0, 4, 3, out) == "");
  CHECK(out == "456");
  cache.evict(0, Tier::host);
  CHECK(cache.read(0, 0, 3, out) == "context 0 is not here");
}

namespace {

// A model whose destruction lasts until the test lets it end, as freeing gigabytes can take long;
// it notes the thread that freed it.
class SlowToFree final : public LoadedModel {
 public:
  SlowToFree(const std::atomic<bool>& release, std::atomic<std::thread::id>& freed_on)
      : release_(release), freed_on_(freed_on) {}
  ~SlowToFree() override {
    // A cache that frees on its caller's thread never returns the release: it ends in a minute.
    wait_for([&] { return release_.load(); }, 60);
    freed_on_ = std::this_thread::get_id();
  }
  std::vector<InferenceResult> classify(const std::vector<std::vector<std::int32_t>>&,
                                        const std::vector<std::vector<std::int32_t>>&,
                                        const CancelCheck&) override {
    return {};
  }
  std::vector<InferenceResult> generate(const std::vector<std::vector<std::int32_t>>&,
                                        const GenerateOptions&, const StopCheck&,
                                        const CancelCheck&) override {
    return {};
  }
  void set_max_batch(std::size_t) override {}

 private:
  const std::atomic<bool>& release_;
  std::atomic<std::thread::id>& freed_on_;
};

}  // namespace

TEST_CASE("an eviction returns at once and frees what it dropped on the cache's own thread") {
  // A worker evicts on the thread that talks to the manager: if freeing a model took that
  // thread, the manager would hear nothing and count the worker lost (seen on the H200).
  TempDir dir;
  std::atomic<bool> release{false};
  std::atomic<std::thread::id> freed_on{};
  ContextCache cache(dir.path);
  cache.device_ready(0, std::make_shared<SlowToFree>(release, freed_on));
  write_file(cache.file(0), "old copy");
  cache.disk_ready(0);
  cache.evict(0, Tier::gpu);
  cache.evict(0, Tier::disk);
  // Both returned while the model is still being freed.
  CHECK(freed_on.load() == std::thread::id{});
  CHECK(!cache.on_device(0));
  CHECK(!fs::exists(cache.file(0)));
  write_file(cache.file(0), "new copy");  // a new copy may land while the old one is deleted
  release = true;
  cache.wait_freed();
  CHECK(freed_on.load() != std::thread::id{});
  CHECK(freed_on.load() != std::this_thread::get_id());
  CHECK(read_file(cache.file(0)) == "new copy");
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& f : fs::directory_iterator(dir.path))
    ++files;
  CHECK(files == 1);
}
