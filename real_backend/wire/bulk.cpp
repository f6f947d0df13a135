#include "real_backend/wire/bulk.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <optional>

#include "os/atomic_file.hpp"
#include "os/fd.hpp"
#include "os/network.hpp"
#include "real_backend/wire/transfer.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[4] = {'H', 'B', 'K', '1'};
constexpr std::size_t kHelloBytes = 4 + kBulkTicketBytes + 4;
constexpr std::size_t kRequestBytes = 12;
constexpr std::size_t kHeaderBytes = 16;
constexpr std::size_t kTagBytes = 16;
constexpr std::uint32_t kMaxErrorBytes = 1024;
constexpr std::chrono::seconds kGrantLife{60};

void put_u32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<char>(v >> (8 * i));
}
void put_u64(char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<char>(v >> (8 * i));
}
std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
std::uint64_t get_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

struct Header {
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  std::uint32_t status = 0;
  void write(char* p) const {
    put_u64(p, offset);
    put_u32(p + 8, length);
    put_u32(p + 12, status);
  }
  static Header read(const char* p) { return {get_u64(p), get_u32(p + 8), get_u32(p + 12)}; }
};

// The nonce of the n-th chunk sent on a stream: unique per (key, stream, n), and a key is never
// used for two transfers.
void make_nonce(unsigned char nonce[12], std::uint32_t stream, std::uint64_t n) {
  put_u32(reinterpret_cast<char*>(nonce), stream);
  put_u64(reinterpret_cast<char*>(nonce) + 4, n);
}

// AES-256-GCM of one chunk, the header as associated data.
class Aead {
 public:
  explicit Aead(const std::string& key) : ctx_(EVP_CIPHER_CTX_new()), key_(key) {
    if (!ctx_) throw TransferError("cannot make a cipher context");
  }
  ~Aead() { EVP_CIPHER_CTX_free(ctx_); }
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;

  // Encrypts `n` bytes of `in` into `out`, then the tag into out + n.
  bool seal(const unsigned char nonce[12], const char* header, const char* in, std::size_t n,
            char* out) {
    int len = 0;
    auto* o = reinterpret_cast<unsigned char*>(out);
    return EVP_EncryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, key(), nonce) == 1 &&
           EVP_EncryptUpdate(ctx_, nullptr, &len, reinterpret_cast<const unsigned char*>(header),
                             kHeaderBytes) == 1 &&
           update(true, reinterpret_cast<const unsigned char*>(in), n, o) &&
           EVP_EncryptFinal_ex(ctx_, o + n, &len) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, kTagBytes, o + n) == 1;
  }
  // Decrypts `n` bytes in place, checking the tag at data + n; false if they were tampered with.
  bool open(const unsigned char nonce[12], const char* header, char* data, std::size_t n) {
    int len = 0;
    auto* d = reinterpret_cast<unsigned char*>(data);
    return EVP_DecryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, key(), nonce) == 1 &&
           EVP_DecryptUpdate(ctx_, nullptr, &len, reinterpret_cast<const unsigned char*>(header),
                             kHeaderBytes) == 1 &&
           update(false, d, n, d) &&
           EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, kTagBytes, d + n) == 1 &&
           EVP_DecryptFinal_ex(ctx_, d + n, &len) == 1;
  }

 private:
  const unsigned char* key() const { return reinterpret_cast<const unsigned char*>(key_.data()); }
  // EVP takes int lengths: a chunk goes through in pieces of at most 1 GiB.
  bool update(bool encrypt, const unsigned char* in, std::size_t n, unsigned char* out) {
    for (std::size_t done = 0; done < n;) {
      int piece = static_cast<int>(std::min<std::size_t>(n - done, 1u << 30));
      int len = 0;
      int ok = encrypt ? EVP_EncryptUpdate(ctx_, out + done, &len, in + done, piece)
                       : EVP_DecryptUpdate(ctx_, out + done, &len, in + done, piece);
      if (ok != 1 || len != piece) return false;
      done += static_cast<std::size_t>(piece);
    }
    return true;
  }

  EVP_CIPHER_CTX* ctx_;
  std::string key_;
};

void sha256(const char* data, std::size_t n, unsigned char out[kChunkDigestBytes]) {
  unsigned int len = 0;
  if (EVP_Digest(data, n, out, &len, EVP_sha256(), nullptr) != 1 || len != kChunkDigestBytes)
    throw TransferError("SHA-256 failed");
}

// Waits until `fd` is readable (or writable), `stop` is set, or `idle_s` pass; false unless ready.
bool wait_fd(int fd, short events, const std::atomic<bool>& stop, double idle_s) {
  auto start = std::chrono::steady_clock::now();
  while (!stop.load()) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, 200);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > idle_s)
      return false;
  }
  return false;
}

// Reads exactly n bytes; false on end of stream, error, stop, or idle_s without a byte.
bool recv_all(int fd, char* p, std::size_t n, const std::atomic<bool>& stop, double idle_s) {
  while (n > 0) {
    ssize_t got = ::recv(fd, p, n, MSG_DONTWAIT);
    if (got > 0) {
      p += got;
      n -= static_cast<std::size_t>(got);
      continue;
    }
    if (got == 0) return false;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
    if (!wait_fd(fd, POLLIN, stop, idle_s)) return false;
  }
  return true;
}

// The text of an answer with a non-zero status (its first kMaxErrorBytes), or nothing if the
// connection ended before it.
std::optional<std::string> error_text(int fd, const Header& header, const std::atomic<bool>& stop,
                                      double idle_s) {
  std::string text(std::min(header.length, kMaxErrorBytes), '\0');
  if (!recv_all(fd, text.data(), text.size(), stop, idle_s)) return std::nullopt;
  return text;
}

// Sends every byte of the pieces; false on error, stop, or idle_s without progress.
bool send_all(int fd, iovec* pieces, int count, const std::atomic<bool>& stop, double idle_s) {
  while (count > 0) {
    msghdr m{};
    m.msg_iov = pieces;
    m.msg_iovlen = static_cast<std::size_t>(count);
    ssize_t sent = ::sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      if (!wait_fd(fd, POLLOUT, stop, idle_s)) return false;
      continue;
    }
    auto left = static_cast<std::size_t>(sent);
    while (count > 0 && left >= pieces->iov_len) {
      left -= pieces->iov_len;
      ++pieces;
      --count;
    }
    if (count > 0) {
      pieces->iov_base = static_cast<char*>(pieces->iov_base) + left;
      pieces->iov_len -= left;
    }
  }
  return true;
}

// No delay for requests; socket buffers as large as a chunk, so that a chunk crosses in few
// wakeups (20% faster encrypted over loopback on 2 cores, real_load_bench).
void tune(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int bytes = static_cast<int>(kDigestChunkBytes);
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

// A connected TCP socket, or an error text.
os::Fd dial(const std::string& host, std::uint16_t port, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int e = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); e != 0) {
    error = fmt::format("cannot resolve {}: {}", host, ::gai_strerror(e));
    return {};
  }
  os::Fd fd;
  for (addrinfo* a = found; a; a = a->ai_next) {
    fd.reset(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (fd.is_open() && ::connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0) break;
    error = fmt::format("cannot connect to {}:{}: {}", host, port, std::strerror(errno));
    fd.reset();
  }
  ::freeaddrinfo(found);
  if (fd.is_open()) tune(fd.get());
  return fd;
}

}  // namespace

std::string chunk_digests(
    std::uint64_t size_bytes, std::uint32_t chunk_bytes,
    const std::function<bool(std::uint64_t, std::uint32_t, std::string&)>& read) {
  std::string digests;
  std::string buffer;
  unsigned char d[kChunkDigestBytes];
  for (std::uint64_t offset = 0; offset < size_bytes; offset += chunk_bytes) {
    auto length =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(chunk_bytes, size_bytes - offset));
    if (!read(offset, length, buffer) || buffer.size() != length) return "";
    sha256(buffer.data(), buffer.size(), d);
    digests.append(reinterpret_cast<const char*>(d), sizeof d);
  }
  return digests;
}

std::string chunk_digests(std::string_view bytes, std::uint32_t chunk_bytes) {
  return chunk_digests(bytes.size(), chunk_bytes,
                       [&](std::uint64_t offset, std::uint32_t length, std::string& out) {
                         out.assign(bytes.substr(offset, length));
                         return true;
                       });
}

std::string chunk_digests_error(const ContextInfo& info) {
  if (info.chunk_digests.empty()) return "";
  if (info.chunk_bytes < 4096 || info.chunk_bytes > kMaxChunkBytes)
    return fmt::format("chunk size {} is out of range", info.chunk_bytes);
  std::uint64_t chunks = (info.size_bytes + info.chunk_bytes - 1) / info.chunk_bytes;
  if (info.chunk_digests.size() != chunks * kChunkDigestBytes) {
    return fmt::format("{} bytes of chunk digests, expected {} for {} chunks",
                       info.chunk_digests.size(), chunks * kChunkDigestBytes, chunks);
  }
  return "";
}

BulkPeer bulk_peer_at(const std::string& endpoint, std::string ticket, std::string key) {
  std::string_view address = endpoint;
  if (address.starts_with("tcp://")) address.remove_prefix(6);
  std::size_t colon = address.rfind(':');
  int port = 0;
  if (colon != std::string_view::npos) {
    std::string digits(address.substr(colon + 1));
    port = digits.find_first_not_of("0123456789") == std::string::npos && digits.size() <= 5
               ? std::atoi(digits.c_str())
               : 0;
  }
  if (port <= 0 || port > 65535)
    throw TransferError(fmt::format("{} names no host and port", endpoint));
  std::string host(address.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return BulkPeer{endpoint, host, static_cast<std::uint16_t>(port), std::move(ticket),
                  std::move(key)};
}

std::string bind_host_of(std::string_view b) {
  if (b.starts_with("tcp://")) b.remove_prefix(6);
  std::string host(os::host_of(b));
  if (host == "*") return "0.0.0.0";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    return host.substr(1, host.size() - 2);
  return host;
}

std::string random_bytes(std::size_t n) {
  std::string bytes(n, '\0');
  randombytes_buf(bytes.data(), n);
  return bytes;
}

// ---- the holder's side ------------------------------------------------------------------------

struct BulkServer::Grant {
  ContextId context = 0;
  std::string key;
  std::chrono::steady_clock::time_point expires;
  std::vector<std::uint32_t> streams;  // stream numbers admitted: each at most once (its nonces)
};

struct BulkServer::Connection {
  os::Fd fd;
  std::thread thread;
  std::atomic<bool> done{false};
};

BulkServer::BulkServer(const std::string& host, BulkSource source, std::string owner,
                       double admission_wait_s)
    : source_(std::move(source)), owner_(std::move(owner)), admission_wait_s_(admission_wait_s) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (int e = ::getaddrinfo(host.c_str(), "0", &hints, &found); e != 0)
    throw TransferError(fmt::format("cannot resolve {}: {}", host, ::gai_strerror(e)));
  std::string error = "no address";
  for (addrinfo* a = found; a && listen_fd_ < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd >= 0 && ::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
      listen_fd_ = fd;
      sockaddr_storage bound{};
      socklen_t len = sizeof bound;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
      port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    } else {
      error = std::strerror(errno);
      if (fd >= 0) ::close(fd);
    }
  }
  ::freeaddrinfo(found);
  if (listen_fd_ < 0) throw TransferError(fmt::format("cannot listen on {}: {}", host, error));
  acceptor_ = std::thread([this] { accept_loop(); });
}

BulkServer::~BulkServer() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);  // wakes the acceptor's poll at once
  acceptor_.join();
  for (Connection& c : connections_)
    c.thread.join();
  ::close(listen_fd_);
}

std::string BulkServer::grant(ContextId context, const std::string& ticket,
                              const std::string& key) {
  if (ticket.size() != kBulkTicketBytes) return "a ticket of the wrong size";
  if (!key.empty() && key.size() != kBulkKeyBytes) return "a key of the wrong size";
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  std::erase_if(grants_, [&](const auto& g) { return g.second->expires < now; });
  if (grants_.size() >= 1024) return "too many transfers open";
  auto g = std::make_shared<Grant>();
  g->context = context;
  g->key = key;
  g->expires = now + kGrantLife;
  if (!grants_.emplace(ticket, std::move(g)).second) return "a ticket already in use";
  return "";
}

std::shared_ptr<BulkServer::Grant> BulkServer::admit(const std::string& ticket,
                                                     std::uint32_t stream) {
  std::lock_guard lock(mutex_);
  auto it = grants_.find(ticket);
  if (it == grants_.end() || it->second->expires < std::chrono::steady_clock::now()) return nullptr;
  std::vector<std::uint32_t>& streams = it->second->streams;
  if (streams.size() >= kMaxStreamsPerTicket ||
      std::find(streams.begin(), streams.end(), stream) != streams.end())
    return nullptr;
  streams.push_back(stream);
  return it->second;
}

void BulkServer::accept_loop() {
  while (!stop_) {
    {
      std::lock_guard lock(mutex_);
      for (auto it = connections_.begin(); it != connections_.end();) {
        if (!it->done) {
          ++it;
          continue;
        }
        it->thread.join();
        it = connections_.erase(it);
      }
    }
    // Idle, a server costs a wakeup a second (a thousand workers on one machine stay quiet).
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0 || stop_) continue;
    os::Fd fd(::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd.is_open()) continue;
    std::lock_guard lock(mutex_);
    if (connections_.size() >= kMaxConnections) continue;  // closed: the client tries another
    tune(fd.get());
    Connection& c = connections_.emplace_back();
    c.fd = std::move(fd);
    c.thread = std::thread([this, &c] {
      serve(c);
      c.fd.reset();
      c.done = true;
    });
  }
}

void BulkServer::serve(Connection& c) {
  constexpr double kIdleS = 60;  // a client that asks for nothing this long is gone
  int fd = c.fd.get();
  char hello[kHelloBytes];
  if (!recv_all(fd, hello, sizeof hello, stop_, 10) || std::memcmp(hello, kMagic, 4) != 0) return;
  std::uint32_t stream = get_u32(hello + 4 + kBulkTicketBytes);
  const std::string ticket(hello + 4, kBulkTicketBytes);
  std::shared_ptr<Grant> grant = admit(ticket, stream);
  auto waited_since = std::chrono::steady_clock::now();
  while (!grant && !stop_ &&
         std::chrono::duration<double>(std::chrono::steady_clock::now() - waited_since).count() <
             admission_wait_s_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    grant = admit(ticket, stream);
  }
  if (!grant) {
    spdlog::warn("{}: refused a data connection with an unknown, expired or reused ticket", owner_);
    // Said before closing, so that the client reports why even if its next request fails first.
    const std::string why = "refused the ticket (unknown, expired or reused)";
    char header[kHeaderBytes];
    Header{0, static_cast<std::uint32_t>(why.size()), 1}.write(header);
    iovec pieces[] = {{header, kHeaderBytes}, {const_cast<char*>(why.data()), why.size()}};
    (void)send_all(fd, pieces, 2, stop_, 1);
    return;
  }
  std::unique_ptr<Aead> aead;
  if (!grant->key.empty()) aead = std::make_unique<Aead>(grant->key);
  std::string copy, sealed;
  std::uint64_t sent_chunks = 0;
  char request[kRequestBytes];
  char header[kHeaderBytes];
  while (recv_all(fd, request, sizeof request, stop_, kIdleS)) {
    Header h{get_u64(request), get_u32(request + 8), 0};
    std::string error;
    const char* bytes = nullptr;
    std::shared_ptr<const std::string> host = source_.host ? source_.host(grant->context) : nullptr;
    if (h.length == 0 || h.length > kMaxChunkBytes) {
      error = fmt::format("chunk length {} out of range", h.length);
    } else if (host) {
      if (h.offset >= host->size() || h.length > host->size() - h.offset) {
        error = fmt::format("range {}+{} is past the end", h.offset, h.length);
      } else {
        bytes = host->data() + h.offset;
      }
    } else {
      error = source_.read(grant->context, h.offset, h.length, copy);
      if (error.empty() && copy.size() != h.length) error = "short read";
      bytes = copy.data();
    }
    if (!error.empty()) {
      error.resize(std::min<std::size_t>(error.size(), kMaxErrorBytes));
      h.status = 1;
      h.length = static_cast<std::uint32_t>(error.size());
      h.write(header);
      iovec pieces[] = {{header, kHeaderBytes}, {error.data(), error.size()}};
      if (!send_all(fd, pieces, 2, stop_, kIdleS)) return;
      continue;
    }
    h.write(header);
    if (aead) {
      unsigned char nonce[12];
      make_nonce(nonce, stream, sent_chunks++);
      sealed.resize(h.length + kTagBytes);
      if (!aead->seal(nonce, header, bytes, h.length, sealed.data())) return;
      bytes = sealed.data();
    }
    iovec pieces[] = {{header, kHeaderBytes},
                      {const_cast<char*>(bytes), h.length + (aead ? kTagBytes : 0)}};
    if (!send_all(fd, pieces, 2, stop_, kIdleS)) return;
  }
}

// ---- the fetcher's side -----------------------------------------------------------------------

namespace {

// What the streams of one fetch share: which chunks are left, which are in, and which sources are
// still trusted.
class FetchState {
 public:
  FetchState(std::uint64_t chunks, std::size_t sources)
      : done_(chunks, false), alive_(sources, true), streams_left_(sources, 0) {
    for (std::uint64_t i = 0; i < chunks; ++i)
      todo_.push_back(i);
  }
  void add_stream(std::size_t source) {
    std::lock_guard lock(mutex_);
    ++streams_left_[source];
  }
  // The next chunk for a stream of `source`, waiting while others are in flight elsewhere;
  // nullopt when everything is in, or the fetch (or that source) is over.
  std::optional<std::uint64_t> take(std::size_t source, bool may_wait) {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (stopped_ || !alive_[source] || finished_ == done_.size()) return std::nullopt;
      if (!todo_.empty()) {
        std::uint64_t i = todo_.front();
        todo_.pop_front();
        return i;
      }
      if (!may_wait) return std::nullopt;
      changed_.wait(lock);
    }
  }
  void finished(std::size_t source, std::uint64_t chunk, std::uint64_t bytes) {
    std::lock_guard lock(mutex_);
    done_[chunk] = true;
    ++finished_;
    bytes_[source] += bytes;
    changed_.notify_all();
  }
  // Gives back chunks a stream took but did not finish.
  void give_back(const std::deque<std::uint64_t>& chunks) {
    std::lock_guard lock(mutex_);
    for (std::uint64_t i : chunks)
      if (!done_[i]) todo_.push_front(i);
    changed_.notify_all();
  }
  void source_failed(std::size_t source, std::string why) {
    std::lock_guard lock(mutex_);
    if (alive_[source]) failures_[source] = std::move(why);
    alive_[source] = false;
    changed_.notify_all();
  }
  void stream_ended(std::size_t source) {
    std::lock_guard lock(mutex_);
    if (--streams_left_[source] == 0 && alive_[source] && finished_ < done_.size()) {
      failures_[source] = "its streams ended";
      alive_[source] = false;
    }
    changed_.notify_all();
  }
  void stop() {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    changed_.notify_all();
  }
  // Waits a little for progress; true once every chunk is in or no source is left.
  bool settled(std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    auto over = [&] {
      return finished_ == done_.size() ||
             std::none_of(alive_.begin(), alive_.end(), [](bool a) { return a; });
    };
    changed_.wait_for(lock, wait, over);
    return over();
  }
  bool complete() {
    std::lock_guard lock(mutex_);
    return finished_ == done_.size();
  }
  std::map<std::size_t, std::string> failures() {
    std::lock_guard lock(mutex_);
    return failures_;
  }
  std::map<std::size_t, std::uint64_t> bytes() {
    std::lock_guard lock(mutex_);
    return bytes_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::uint64_t> todo_;
  std::vector<bool> done_;
  std::uint64_t finished_ = 0;
  std::vector<bool> alive_;
  std::vector<int> streams_left_;
  std::map<std::size_t, std::string> failures_;
  std::map<std::size_t, std::uint64_t> bytes_;
  bool stopped_ = false;
};

struct StreamJob {
  const BulkPeer& peer;
  std::size_t source = 0;
  std::uint32_t stream = 0;
  const ContextInfo& info;
  int file = -1;
  const BulkOptions& options;
  const std::atomic<bool>& stop;
};

// One data connection: takes chunks, keeps `depth` requests in flight, checks and writes each.
// Returns an error text if the source failed, empty if the stream ended because the fetch did.
std::string run_stream(const StreamJob& job, FetchState& state) {
  std::string error;
  os::Fd fd = dial(job.peer.host, job.peer.port, error);
  if (!fd.is_open()) return error;
  char hello[kHelloBytes];
  std::memcpy(hello, kMagic, 4);
  std::memcpy(hello + 4, job.peer.ticket.data(), kBulkTicketBytes);
  put_u32(hello + 4 + kBulkTicketBytes, job.stream);
  // When a send fails, the holder may have said why just before it closed (Linux keeps what
  // arrived before a reset readable): its error text, or "closed the connection".
  const std::string closed = "closed the connection";
  auto why_closed = [&] {
    char header[kHeaderBytes];
    if (!recv_all(fd.get(), header, sizeof header, job.stop, 1)) return closed;
    Header got = Header::read(header);
    if (got.status == 0) return closed;
    return error_text(fd.get(), got, job.stop, 1).value_or(closed);
  };
  iovec h{hello, sizeof hello};
  if (!send_all(fd.get(), &h, 1, job.stop, job.options.idle_timeout_s)) return why_closed();
  std::unique_ptr<Aead> aead;
  if (!job.peer.key.empty()) aead = std::make_unique<Aead>(job.peer.key);
  const std::uint64_t size = job.info.size_bytes;
  const std::uint32_t chunk_bytes = job.info.chunk_bytes;
  std::deque<std::uint64_t> in_flight;
  std::uint64_t received = 0;
  std::string buffer(chunk_bytes + kTagBytes, '\0');
  auto length_of = [&](std::uint64_t i) {
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(chunk_bytes, size - i * chunk_bytes));
  };
  // Waits for a chunk only when the stream holds none (one it holds may be what others wait for).
  auto request_more = [&](bool holding) -> bool {
    while (static_cast<int>(in_flight.size()) < job.options.depth) {
      std::optional<std::uint64_t> i = state.take(job.source, !holding && in_flight.empty());
      if (!i) break;
      in_flight.push_back(*i);
      char r[kRequestBytes];
      put_u64(r, *i * chunk_bytes);
      put_u32(r + 8, length_of(*i));
      iovec piece{r, sizeof r};
      if (!send_all(fd.get(), &piece, 1, job.stop, job.options.idle_timeout_s)) return false;
    }
    return true;
  };
  auto fail = [&](std::string why) {
    state.give_back(in_flight);
    return why;
  };
  if (!request_more(false)) return fail(why_closed());
  while (!in_flight.empty()) {
    std::uint64_t i = in_flight.front();
    char header[kHeaderBytes];
    if (!recv_all(fd.get(), header, sizeof header, job.stop, job.options.idle_timeout_s)) {
      if (job.stop) return fail("");
      return fail(received == 0 ? "refused the ticket or sent nothing"
                                : fmt::format("went silent or closed after {} chunks", received));
    }
    Header got = Header::read(header);
    if (got.status != 0) {
      return fail(error_text(fd.get(), got, job.stop, job.options.idle_timeout_s)
                      .value_or("sent an error and closed before its text"));
    }
    if (got.offset != i * chunk_bytes || got.length != length_of(i))
      return fail(
          fmt::format("sent bytes {}+{} when asked for chunk {}", got.offset, got.length, i));
    std::size_t wire = got.length + (aead ? kTagBytes : 0);
    if (!recv_all(fd.get(), buffer.data(), wire, job.stop, job.options.idle_timeout_s))
      return fail(job.stop ? "" : fmt::format("went silent in chunk {}", i));
    in_flight.pop_front();
    // The next request goes out before this chunk is checked, so the holder is never idle.
    if (!request_more(true)) {
      in_flight.push_front(i);
      return fail(why_closed());
    }
    if (aead) {
      unsigned char nonce[12];
      make_nonce(nonce, job.stream, received);
      if (!aead->open(nonce, header, buffer.data(), got.length)) {
        in_flight.push_front(i);
        return fail(fmt::format("sent chunk {} that does not decrypt (tampered with?)", i));
      }
    }
    unsigned char digest[kChunkDigestBytes];
    sha256(buffer.data(), got.length, digest);
    if (std::memcmp(digest, job.info.chunk_digests.data() + i * kChunkDigestBytes, sizeof digest)) {
      in_flight.push_front(i);
      return fail(fmt::format("sent chunk {} whose digest does not match the manifest", i));
    }
    for (std::size_t done = 0; done < got.length;) {
      ssize_t n = ::pwrite(job.file, buffer.data() + done, got.length - done,
                           static_cast<off_t>(got.offset + done));
      if (n <= 0) throw TransferError(fmt::format("cannot write: {}", std::strerror(errno)));
      done += static_cast<std::size_t>(n);
    }
    ++received;
    state.finished(job.source, i, got.length);
    if (in_flight.empty() && !request_more(false)) return fail(why_closed());
  }
  return "";
}

}  // namespace

BulkReport fetch_bulk(const std::vector<BulkPeer>& sources, const ContextInfo& info,
                      const fs::path& dest, const std::atomic<bool>& abort,
                      const BulkOptions& options) {
  if (info.chunk_digests.empty())
    throw TransferError(fmt::format("{} has no chunk digests", info.name));
  if (std::string e = chunk_digests_error(info); !e.empty())
    throw TransferError(fmt::format("{}: {}", info.name, e));
  if (sources.empty()) throw TransferError("no source to fetch from");
  fs::path part = os::temp_beside(dest, ".part");
  std::error_code ignored;
  fs::remove(part, ignored);
  os::Fd file(::open(part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!file.is_open()) throw TransferError(fmt::format("cannot write {}", part.string()));
  struct RemovePart {
    const fs::path& path;
    bool keep = false;
    ~RemovePart() {
      std::error_code e;
      if (!keep) fs::remove(path, e);
    }
  } cleanup{part};
  if (::ftruncate(file.get(), static_cast<off_t>(info.size_bytes)) != 0)
    throw TransferError(
        fmt::format("cannot make room for {} in {}", info.size_bytes, part.string()));

  std::uint64_t chunks = (info.size_bytes + info.chunk_bytes - 1) / info.chunk_bytes;
  FetchState state(chunks, sources.size());
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::mutex write_error_mutex;
  std::string write_error;
  for (std::size_t s = 0; s < sources.size(); ++s) {
    for (int k = 0; k < std::max(1, options.streams_per_source); ++k) {
      state.add_stream(s);
      threads.emplace_back([&, s, k] {
        StreamJob job{sources[s], s,   static_cast<std::uint32_t>(k), info, file.get(),
                      options,    stop};
        try {
          if (std::string why = run_stream(job, state); !why.empty()) state.source_failed(s, why);
        } catch (const TransferError& e) {  // our own disk: the fetch cannot go on
          std::lock_guard lock(write_error_mutex);
          write_error = e.what();
          state.stop();
        }
        state.stream_ended(s);
      });
    }
  }
  while (!state.settled(std::chrono::milliseconds(100))) {
    if (abort.load()) break;
    std::lock_guard lock(write_error_mutex);
    if (!write_error.empty()) break;
  }
  stop = true;
  state.stop();
  for (std::thread& t : threads)
    t.join();

  BulkReport report;
  for (auto& [s, why] : state.failures())
    report.failed[sources[s].name] = why;
  for (auto& [s, bytes] : state.bytes())
    report.bytes_from[sources[s].name] += bytes;
  for (auto& [name, why] : report.failed)
    spdlog::warn("fetch of {}: dropped {}: {}", info.name, name, why);
  if (!write_error.empty()) throw TransferError(fmt::format("{}: {}", part.string(), write_error));
  if (abort.load() && !state.complete()) throw TransferError("aborted");
  if (!state.complete()) {
    std::string why;
    for (auto& [name, text] : report.failed)
      why += fmt::format("{}{}: {}", why.empty() ? "" : "; ", name, text);
    throw TransferError(fmt::format("no source could send {}: {}", info.name, why));
  }
  file.reset();
  fs::rename(part, dest);
  cleanup.keep = true;
  return report;
}

}  // namespace hearth::real
