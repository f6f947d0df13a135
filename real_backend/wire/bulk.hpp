#pragma once
// Bulk context transfers at the wire's speed: the bytes travel over plain TCP connections, several
// per transfer and from several sources at once, in chunks that are each checked against the
// SHA-256 digest the manager put in the context's manifest (ContextInfo::chunk_digests) and, unless
// the job turned encryption off for a trusted network, encrypted with AES-256-GCM.
//
// The CURVE channel (transfer.hpp) stays the door: a fetcher asks the holder for a transfer over
// it (OpenBulk), sending a fresh random ticket and key; the holder admits data connections that
// present that ticket for a minute, and encrypts with that key. So a data connection is only as
// good as a CURVE-authenticated request, every byte is checked against the manager's digests
// whatever the holder sends, and no two transfers share a key.
//
// Data connection: the client sends "HBK1", the 32-byte ticket and its stream number (u32); then
// requests {offset u64, length u32}; the holder answers each with a header {offset u64, length
// u32, status u32} and, status 0, `length` bytes (encrypted: followed by the 16-byte tag; the
// header is the associated data, the nonce the stream number and the count of chunks sent on the
// stream), or, status 1, an error text of `length` bytes. A ticket it does not admit gets one
// status-1 answer, then the holder closes. Integers are little-endian.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "real_backend/wire/protocol.hpp"

namespace hearth::real {

// Chunks of 4 MiB: big enough for large aligned writes and cheap per-chunk work, small enough that
// a 1 GiB context spreads over many streams.
inline constexpr std::uint32_t kDigestChunkBytes = 4u << 20;
inline constexpr std::size_t kChunkDigestBytes = 32;  // SHA-256
inline constexpr std::size_t kBulkTicketBytes = 32;
inline constexpr std::size_t kBulkKeyBytes = 32;  // AES-256

// SHA-256 of each chunk_bytes-long piece of a context, concatenated. `read(offset, length, out)`
// fills `out` with those bytes and returns false if it cannot (then this returns "").
std::string chunk_digests(
    std::uint64_t size_bytes, std::uint32_t chunk_bytes,
    const std::function<bool(std::uint64_t, std::uint32_t, std::string&)>& read);
std::string chunk_digests(std::string_view bytes, std::uint32_t chunk_bytes);

// Empty if `info` has chunk digests that fit its size (or none), else what is wrong.
std::string chunk_digests_error(const ContextInfo& info);

// The interface a ZeroMQ bind ("tcp://127.0.0.1:0", "*:5555", "[::1]:0") names, as BulkServer
// binds it ("*": "0.0.0.0").
std::string bind_host_of(std::string_view zmq_bind);

// Random bytes for a ticket or key.
std::string random_bytes(std::size_t n);

// Where a holder's bytes come from. `host(c)` gives the holder's copy in memory, served without a
// copy (null when there is none); otherwise `read` copies the range, as FetchServer's reader does.
struct BulkSource {
  std::function<std::shared_ptr<const std::string>(ContextId)> host;
  std::function<std::string(ContextId, std::uint64_t, std::uint32_t, std::string&)> read;
};

// The holder's side: listens on `host` (an address to bind, "0.0.0.0" for every interface) at a
// port of its own and serves each admitted connection on a thread of its own.
class BulkServer {
 public:
  // Throws TransferError if it cannot listen. A connection with a ticket not granted yet waits
  // up to `admission_wait_s` for it: a peer server hears of a transfer from the manager at about
  // the time the fetcher is told to make it.
  BulkServer(const std::string& host, BulkSource source, std::string owner,
             double admission_wait_s = 0);
  ~BulkServer();
  BulkServer(const BulkServer&) = delete;
  BulkServer& operator=(const BulkServer&) = delete;

  std::uint16_t port() const { return port_; }
  // Admits connections presenting `ticket` (kBulkTicketBytes) for the next minute, to read
  // `context`, encrypted with `key` (kBulkKeyBytes; empty: in the clear). Returns an error text,
  // empty if granted.
  std::string grant(ContextId context, const std::string& ticket, const std::string& key);

  static constexpr int kMaxConnections = 64;
  static constexpr int kMaxStreamsPerTicket = 32;

 private:
  struct Grant;
  struct Connection;
  void accept_loop();
  void serve(Connection& c);
  std::shared_ptr<Grant> admit(const std::string& ticket, std::uint32_t stream);

  BulkSource source_;
  std::string owner_;
  double admission_wait_s_ = 0;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Grant>> grants_;  // by ticket
  std::list<Connection> connections_;
  std::thread acceptor_;
};

// One holder a fetch reads from: where its BulkServer listens and the grant it made.
struct BulkPeer {
  std::string name;  // for messages: its CURVE endpoint
  std::string host;
  std::uint16_t port = 0;
  std::string ticket;
  std::string key;  // empty: in the clear
};

// The holder at `endpoint` ("tcp://host:port", as peers announce their peer servers) with a
// ticket and key. Throws TransferError if the endpoint has no port.
BulkPeer bulk_peer_at(const std::string& endpoint, std::string ticket, std::string key);

struct BulkOptions {
  int streams_per_source = 2;
  int depth = 2;               // requests in flight per stream
  double idle_timeout_s = 10;  // a source silent this long has failed
};

// What a fetch did: bytes from each source (by name), and the sources that failed, with why.
struct BulkReport {
  std::map<std::string, std::uint64_t> bytes_from;
  std::map<std::string, std::string> failed;
};

// Fetches the context `info` describes (it must have chunk digests; the sources' tickets name it)
// from `sources` at once into `dest` (through DEST.part, renamed when every chunk is in and
// checked). A source that fails (refuses, goes silent, sends a chunk whose digest is wrong, or one
// that does not decrypt) is dropped and its chunks go to the others. Throws TransferError when no
// source is left or `abort` is set; the partial file is removed.
BulkReport fetch_bulk(const std::vector<BulkPeer>& sources, const ContextInfo& info,
                      const std::filesystem::path& dest, const std::atomic<bool>& abort,
                      const BulkOptions& options = {});

}  // namespace hearth::real
