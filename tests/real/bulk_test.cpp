// Bulk transfers (bulk.hpp): several holders and streams at once, every chunk checked against the
// manifest's digests, encrypted unless turned off; a lying, tampering or unknown party gets nothing
// into the file.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "os/fd.hpp"
#include "real_backend/wire/bulk.hpp"
#include "real_backend/wire/file_hash.hpp"
#include "real_backend/wire/transfer.hpp"
#include "tests/real/helpers.hpp"
#include "tests/temp_dir.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;
using Catch::Matchers::ContainsSubstring;

namespace {

constexpr std::uint32_t kChunk = 64 << 10;

std::string content(std::size_t n) {
  std::string bytes(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    bytes[i] = static_cast<char>((i * 7919 + i / 4096) % 251);
  return bytes;
}

ContextInfo chunked_info_of(const std::string& bytes) {
  ContextInfo info;
  info.name.assign(1, 'm');
  info.size_bytes = bytes.size();
  info.hash = digest_bytes(bytes).hash;
  info.chunk_bytes = kChunk;
  info.chunk_digests = chunk_digests(bytes, kChunk);
  return info;
}

// Counts what a holder served, so that a test can make one holder wait for another.
struct Served {
  std::mutex mutex;
  std::condition_variable changed;
  int chunks = 0;
  void add() {
    std::lock_guard lock(mutex);
    ++chunks;
    changed.notify_all();
  }
  void wait_for(int n) {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return chunks >= n; });
  }
};

// A holder (a peer worker) of `bytes` as context 0, reading through `before` (which may wait, or
// spoil the bytes) and counting into `served`.
class Holder {
 public:
  Holder(const KeyPair& client, std::string bytes, Served& served,
         std::function<void(std::string&)> before = {})
      : keys_(make_key_pair()),
        bytes_(std::move(bytes)),
        server_(zmq_, keys_, {client.public_z85}, "test holder", "tcp://127.0.0.1:0",
                [this, &served, before](ContextId, std::uint64_t offset, std::uint32_t length,
                                        std::string& out) {
                  out = bytes_.substr(offset, length);
                  if (before) before(out);
                  served.add();
                  return std::string();
                }) {}
  BulkPeer open(zmq::context_t& zmq, const KeyPair& client, bool encrypt, double timeout_s = 10) {
    std::atomic<bool> abort{false};
    return open_bulk(zmq, server_.endpoint(), keys_.public_z85, client, 0, encrypt, abort,
                     timeout_s);
  }

 private:
  zmq::context_t zmq_;  // a process of its own: one ZAP handler per context
  KeyPair keys_;
  std::string bytes_;
  FetchServer server_;
};

}  // namespace

TEST_CASE("a bulk fetch takes chunks from two holders at once, encrypted or in the clear") {
  TempDir dir;
  zmq::context_t zmq;
  KeyPair client = make_key_pair();
  std::string bytes = content(3 * kChunk * 10 + 1234);  // a short last chunk
  ContextInfo info = chunked_info_of(bytes);
  for (bool encrypt : {true, false}) {
    Served a_served, b_served;
    // Holder a answers only once b has served a chunk: both send part of the file.
    Holder a(client, bytes, a_served, [&](std::string&) { b_served.wait_for(1); });
    Holder b(client, bytes, b_served);
    std::atomic<bool> abort{false};
    BulkOptions o;
    o.streams_per_source = 3;
    BulkReport report = fetch_bulk({a.open(zmq, client, encrypt), b.open(zmq, client, encrypt)},
                                   info, dir / "got", abort, o);
    CHECK(read_file(dir / "got") == bytes);
    CHECK(report.failed.empty());
    REQUIRE(report.bytes_from.size() == 2);
    std::uint64_t total = 0;
    for (auto& [name, n] : report.bytes_from) {
      CHECK(n > 0);
      total += n;
    }
    CHECK(total == bytes.size());
    CHECK_FALSE(std::filesystem::exists(dir / "got.part"));
  }
}

TEST_CASE("a holder that sends wrong bytes is dropped, and the others send its chunks") {
  TempDir dir;
  zmq::context_t zmq;
  KeyPair client = make_key_pair();
  std::string bytes = content(kChunk * 12);
  ContextInfo info = chunked_info_of(bytes);
  for (bool encrypt : {true, false}) {
    Served liar_served, honest_served;
    Holder liar(client, bytes, liar_served, [](std::string& out) { out[out.size() / 2] ^= 1; });
    // The honest holder waits until the liar has sent a chunk, so the liar is caught.
    Holder honest(client, bytes, honest_served, [&](std::string&) { liar_served.wait_for(1); });
    std::atomic<bool> abort{false};
    BulkPeer lying = liar.open(zmq, client, encrypt);
    BulkReport report =
        fetch_bulk({lying, honest.open(zmq, client, encrypt)}, info, dir / "got", abort);
    CHECK(read_file(dir / "got") == bytes);
    REQUIRE(report.failed.count(lying.name) == 1);
    CHECK_THAT(report.failed[lying.name], ContainsSubstring("does not match the manifest"));
    CHECK(report.bytes_from[lying.name] == 0);
  }
}

TEST_CASE("a chunk that does not decrypt, or a data connection without a ticket, gets nothing in") {
  TempDir dir;
  zmq::context_t zmq;
  KeyPair client = make_key_pair();
  std::string bytes = content(kChunk * 4);
  ContextInfo info = chunked_info_of(bytes);
  Served served;
  Holder holder(client, bytes, served);
  std::atomic<bool> abort{false};
  auto fails_with = [&](const BulkPeer& peer, const std::string& why) {
    CHECK_THROWS_WITH(fetch_bulk({peer}, info, dir / "got", abort),
                      ContainsSubstring("no source could send m") && ContainsSubstring(why));
    CHECK_FALSE(std::filesystem::exists(dir / "got"));
    CHECK_FALSE(std::filesystem::exists(dir / "got.part"));
  };
  SECTION("the bytes were changed on the way (the key does not open them)") {
    BulkPeer peer = holder.open(zmq, client, true);
    peer.key[0] ^= 1;
    fails_with(peer, "does not decrypt");
  }
  SECTION("a ticket the holder never granted") {
    BulkPeer peer = holder.open(zmq, client, true);
    peer.ticket[5] ^= 1;
    fails_with(peer, "refused the ticket");
    CHECK(served.chunks == 0);
  }
  SECTION("a stranger cannot open a transfer over CURVE") {
    KeyPair stranger = make_key_pair();
    CHECK_THROWS_WITH(holder.open(zmq, stranger, true, 0.5), ContainsSubstring("did not answer"));
  }
}

TEST_CASE("a holder says it refused a ticket before it closes, even with requests unread") {
  // The fetcher's next request may fail on the reset that closing with unread bytes sends; what
  // the holder said first is still there to read, so the fetcher reports why.
  BulkServer holder("127.0.0.1", BulkSource{[](ContextId) { return nullptr; }, {}}, "test peer");
  os::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(holder.port());
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
  std::string hello = "HBK1" + random_bytes(kBulkTicketBytes) + std::string(4, '\0');
  std::string requests(12 * 100, '\1');  // never read by the holder
  std::string sent = hello + requests;
  REQUIRE(::send(fd.get(), sent.data(), sent.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(sent.size()));
  std::string answer;
  char buffer[4096];
  for (ssize_t n; (n = ::recv(fd.get(), buffer, sizeof buffer, 0)) > 0;)
    answer.append(buffer, static_cast<std::size_t>(n));
  REQUIRE(answer.size() > 16);
  CHECK(answer[12] == 1);  // status 1: an error text follows
  CHECK(static_cast<unsigned char>(answer[8]) == answer.size() - 16);
  CHECK_THAT(answer.substr(16), ContainsSubstring("refused the ticket"));
}

TEST_CASE("a peer server serves a transfer the manager admits, even once its fetcher waits") {
  // As a worker's peer server: no CURVE door, only tickets the manager hands it (AdmitTransfer),
  // which may come just after the fetcher dials.
  TempDir dir;
  std::string bytes = content(kChunk * 5 + 7);
  ContextInfo info = chunked_info_of(bytes);
  auto held = std::make_shared<const std::string>(bytes);
  BulkServer peer("127.0.0.1", BulkSource{[&](ContextId) { return held; }, {}}, "test peer", 60);
  std::string ticket = random_bytes(kBulkTicketBytes), key = random_bytes(kBulkKeyBytes);
  BulkPeer at = bulk_peer_at("tcp://127.0.0.1:" + std::to_string(peer.port()), ticket, key);
  CHECK(at.host == "127.0.0.1");
  std::atomic<bool> abort{false};
  std::thread fetch([&] { fetch_bulk({at}, info, dir / "got", abort); });
  CHECK(peer.grant(0, ticket, key).empty());
  fetch.join();
  CHECK(read_file(dir / "got") == bytes);
  CHECK(peer.grant(0, ticket, key) == "a ticket already in use");
  CHECK_THROWS_WITH(bulk_peer_at("tcp://10.0.0.7", "", ""),
                    ContainsSubstring("names no host and port"));
}

TEST_CASE("chunk digests that do not fit the context are refused") {
  std::string bytes = content(kChunk * 2 + 5);
  ContextInfo info = chunked_info_of(bytes);
  CHECK(chunk_digests_error(info).empty());
  info.chunk_digests.pop_back();
  CHECK_THAT(chunk_digests_error(info), ContainsSubstring("expected 96 for 3 chunks"));
  Stage stage;
  stage.info = info;
  CHECK_THROWS_WITH(decode(encode(stage)), ContainsSubstring("chunk digests"));
  info = chunked_info_of(bytes);
  info.chunk_bytes = 100;
  CHECK_THAT(chunk_digests_error(info), ContainsSubstring("chunk size 100 is out of range"));
}
