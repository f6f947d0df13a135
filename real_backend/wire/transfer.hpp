#pragma once
// Moving context files: serving byte ranges (the manager and every worker do), fetching a whole
// file from such a server, and copying one from a shared filesystem. Every copy is checked by size
// and hash (a directory context's pack: by its manifest, pack.hpp) before it is used; a partial or
// wrong copy is deleted.

#include <zmq.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "real_backend/wire/auth.hpp"
#include "real_backend/wire/protocol.hpp"

namespace hearth::real {
class BulkServer;
struct BulkPeer;
}  // namespace hearth::real

namespace hearth::real {

class TransferError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct FetchOptions {
  std::uint32_t chunk_bytes = 1u << 20;
  int window = 8;              // requests in flight
  double idle_timeout_s = 10;  // a server silent this long has failed
};

// Fetches context `context` (described by `info`) from the server at `endpoint` into `dest`.
// Throws TransferError (the server failed, went silent, sent a wrong file, or `abort` was set).
void fetch_file(zmq::context_t& zmq_context, const std::string& endpoint,
                const std::string& server_public, const KeyPair& client, ContextId context,
                const ContextInfo& info, const std::filesystem::path& dest,
                const std::atomic<bool>& abort, const FetchOptions& options = {});

// Asks the FetchServer at `endpoint` (over CURVE, as fetch_file does) to open a bulk transfer of
// `context`, encrypted unless `encrypt` is false: where to connect, with a fresh ticket and key.
// Throws TransferError if it refuses, does not answer within `timeout_s`, or `abort` is set.
BulkPeer open_bulk(zmq::context_t& zmq_context, const std::string& endpoint,
                   const std::string& server_public, const KeyPair& client, ContextId context,
                   bool encrypt, const std::atomic<bool>& abort, double timeout_s = 10);

// Copies `info.shared_path` into `dest`; for a directory context, writes the directory's pack.
// Throws TransferError.
void copy_file(const ContextInfo& info, const std::filesystem::path& dest,
               const std::atomic<bool>& abort);

// Empty if `bytes` are the context `info` says (its hash, or a directory's manifest and the
// padding of its pack), else what differs.
std::string bytes_error(const ContextInfo& info, std::string_view bytes);

// Reads a cached file whole (a symbolic link is refused), checking its size. Throws TransferError.
std::string read_whole_file(const std::filesystem::path& path, std::uint64_t size_bytes);

// Reads bytes [offset, offset + length) of a file the operator named (a job's model, which may
// well be a symbolic link into a model store) into `out`; returns false if it cannot.
bool read_range(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t length,
                std::string& out);
// The same for a file in a worker's cache, where a symbolic link can only be someone else's
// trap: it is refused.
bool read_cached_range(const std::filesystem::path& path, std::uint64_t offset,
                       std::uint64_t length, std::string& out);

// The reply to a Fetch, given how to read the context's bytes: `read(context, offset, length, out)`
// returns an error text, empty on success.
using RangeReader =
    std::function<std::string(ContextId, std::uint64_t, std::uint32_t, std::string&)>;
Chunk serve_fetch(const Fetch& request, const RangeReader& read);

// Answers Fetch requests on a thread of its own: a CURVE router socket with `keys`, bound to
// `bind` (e.g. "tcp://127.0.0.1:0"), open to the clients whose public keys are `clients`, reading
// with `read` (called on that thread). Malformed requests are logged and dropped. Every worker
// serves its peers with one. It also opens bulk transfers (bulk.hpp) on a BulkServer of its own,
// on the same interface, serving from `host` (a context's bytes in memory, without a copy) where
// it gives them, else from `read`. Throws zmq::error_t if it cannot bind, TransferError if the
// bulk server cannot listen.
class FetchServer {
 public:
  FetchServer(zmq::context_t& zmq, const KeyPair& keys, std::set<std::string> clients,
              std::string owner, const std::string& bind, RangeReader read,
              std::function<std::shared_ptr<const std::string>(ContextId)> host = {});
  ~FetchServer();
  // The endpoint bound, with the port chosen: "tcp://127.0.0.1:40123".
  const std::string& endpoint() const { return endpoint_; }

 private:
  void loop();

  Authenticator auth_;
  zmq::socket_t socket_;
  RangeReader read_;
  std::string owner_;
  std::unique_ptr<BulkServer> bulk_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace hearth::real
