// The bulk data connection (real_backend/wire/bulk.hpp), each end against the input as the other
// end, over loopback. The first byte (fuzz_bulk.hpp) picks the end and the grant; the rest is:
//  - for the holder (BulkServer), the fetcher's requests after a hello with a granted ticket (or,
//    with kNoHello, everything it gets): it must answer every whole request, each answer framed as
//    the protocol says, a chunk in the clear being the very bytes asked for;
//  - for the fetcher (fetch_bulk), the holder's answers: it must end with the file equal to the
//    context, or with TransferError.
// A hang shows as libFuzzer's timeout.

#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "os/fd.hpp"
#include "real_backend/wire/bulk.hpp"
#include "real_backend/wire/transfer.hpp"
#include "tests/fuzz/fuzz_bulk.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

namespace fs = std::filesystem;
namespace bulk = hearth::fuzz::bulk;
using namespace hearth;
using namespace hearth::real;

const std::string kContext = bulk::context();
const std::string kKey(kBulkKeyBytes, 'k');

[[noreturn]] void wrong(const char* what) {
  std::fprintf(stderr, "fuzz_bulk: %s\n", what);
  std::abort();
}

std::uint64_t le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Waits for `fd` to be readable (or writable); false after 5 s: a hang. (libFuzzer's timer
// interrupts poll every second.)
bool ready(int fd, short events) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, 100);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
  return false;
}

// Everything the peer sends until it closes.
std::string read_to_end(int fd) {
  std::string out;
  char buffer[65536];
  while (true) {
    if (!ready(fd, POLLIN)) wrong("the other end neither sent nor closed within 5 s");
    ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return out;
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    if (!ready(fd, POLLOUT)) wrong("the other end stopped reading for 5 s");
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return;  // it closed: what it read so far is what it acts on
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

os::Fd dial(std::uint16_t port) {
  os::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) wrong("cannot connect");
  return fd;
}

// ---- the holder's side

std::atomic<bool> from_disk{false};

BulkSource source() {
  BulkSource s;
  s.host = [](ContextId) -> std::shared_ptr<const std::string> {
    if (from_disk) return nullptr;
    static const auto copy = std::make_shared<const std::string>(kContext);
    return copy;
  };
  s.read = [](ContextId, std::uint64_t offset, std::uint32_t length, std::string& out) {
    if (offset > kContext.size() || length > kContext.size() - offset) return std::string("past");
    out.assign(kContext, offset, length);
    return std::string();
  };
  return s;
}

// Each input is a TCP connection, and each closed one holds its pair of ports for a minute
// (TIME_WAIT): a few hundred inputs a second to one port would use up the client ports (28,000)
// and fail to connect. So each listening port serves this many inputs, then a new one listens.
constexpr std::uint64_t kInputsPerPort = 500;

void holder(std::uint8_t mode, std::string_view rest) {
  // One server for many inputs (below its 1,024 grants a minute), then a new one.
  static std::unique_ptr<BulkServer> server;
  static std::uint64_t tickets = 0;
  std::string ticket(kBulkTicketBytes, '\0');
  std::memcpy(ticket.data(), &++tickets, sizeof tickets);
  const std::string key = mode & bulk::kEncrypted ? kKey : "";
  if (!server || tickets % kInputsPerPort == 0 || !server->grant(0, ticket, key).empty()) {
    server.reset();
    server = std::make_unique<BulkServer>("127.0.0.1", source(), "fuzz holder");
    if (!server->grant(0, ticket, key).empty()) wrong("a new server refused a grant");
  }
  from_disk = (mode & bulk::kFromDisk) != 0;
  os::Fd fd = dial(server->port());
  std::string hello;
  if (!(mode & bulk::kNoHello)) hello = "HBK1" + ticket + std::string(4, '\0');
  send_all(fd.get(), hello + std::string(rest));
  ::shutdown(fd.get(), SHUT_WR);
  const std::string answers = read_to_end(fd.get());
  if (mode & bulk::kNoHello) return;  // only that it closes

  // Each whole request has its answer, in order, and nothing follows.
  std::string_view in = answers;
  for (std::size_t at = 0; at + 12 <= rest.size(); at += 12) {
    const std::uint64_t offset = le(rest.data() + at, 8);
    const std::uint64_t length = le(rest.data() + at + 8, 4);
    if (in.size() < 16) wrong("a request went unanswered");
    const std::uint64_t got_offset = le(in.data(), 8), got_length = le(in.data() + 8, 4);
    const std::uint64_t status = le(in.data() + 12, 4);
    in.remove_prefix(16);
    if (status == 1) {
      if (got_length > 1024 || in.size() < got_length) wrong("an error text out of bounds");
      in.remove_prefix(got_length);
      continue;
    }
    if (status != 0) wrong("an answer with a status that is neither 0 nor 1");
    if (got_offset != offset || got_length != length) wrong("a chunk that was not asked for");
    const std::uint64_t wire = length + (key.empty() ? 0 : 16);
    if (in.size() < wire) wrong("a chunk cut short");
    if (key.empty() && in.substr(0, length) != std::string_view(kContext).substr(offset, length))
      wrong("a chunk whose bytes are not the context's");
    in.remove_prefix(wire);
  }
  if (!in.empty()) wrong("bytes after the last answer");
}

// ---- the fetcher's side

void fetcher(std::uint8_t mode, std::string_view rest) {
  static os::Fd listener;
  static std::uint16_t port = 0;
  static std::uint64_t inputs = 0;
  if (inputs++ % kInputsPerPort == 0) {
    listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listener.get(), 16) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
      wrong("cannot listen");
    port = ntohs(a.sin_port);
  }
  static const fs::path dest = hearth::fuzz::work_dir() / "context.bin";

  // The holder: takes the connection, sends the input and closes its side, then reads what the
  // fetcher sent (hello and requests) until it closes.
  std::thread holder_end([&] {
    if (!ready(listener.get(), POLLIN)) wrong("the fetcher never connected");
    os::Fd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    send_all(fd.get(), rest);
    ::shutdown(fd.get(), SHUT_WR);
    read_to_end(fd.get());
  });

  ContextInfo info;
  info.name = "fuzz context";
  info.size_bytes = kContext.size();
  info.chunk_bytes = bulk::kChunkBytes;
  info.chunk_digests = chunk_digests(kContext, bulk::kChunkBytes);
  BulkPeer peer{"fuzz holder", "127.0.0.1", port, std::string(kBulkTicketBytes, 't'),
                mode & bulk::kEncrypted ? kKey : ""};
  const std::atomic<bool> abort{false};
  try {
    fetch_bulk({peer}, info, dest, abort, {.streams_per_source = 1, .idle_timeout_s = 5});
    std::ifstream in(dest, std::ios::binary);
    if (std::string(std::istreambuf_iterator<char>(in), {}) != kContext)
      wrong("a fetch that succeeded with the wrong bytes");
  } catch (const TransferError&) {
  }
  holder_end.join();
  std::error_code ignored;
  fs::remove(dest, ignored);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  const std::string_view rest = hearth::fuzz::as_text(data + 1, size - 1);
  if (data[0] & bulk::kFetcher) {
    fetcher(data[0], rest);
  } else {
    holder(data[0], rest);
  }
  return 0;
}
