#pragma once
// A worker's peer server: answers other workers' fetches from this worker's disk and host copies,
// on a thread of its own. Peers of a worker whose manager is on loopback are on this machine;
// others reach it by its host name (or the address given), on every interface.

#include <zmq.hpp>

#include <string>

#include "real_backend/wire/transfer.hpp"
#include "real_backend/worker/worker.hpp"

namespace hearth::real {

class ContextCache;

class PeerServer {
 public:
  // Binds; throws zmq::error_t if it cannot.
  PeerServer(zmq::context_t& zmq, const WorkerOptions& options, const ContextCache& cache);
  // "tcp://host:port", as peers dial it.
  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string host_;
  FetchServer server_;
  std::string endpoint_;
};

}  // namespace hearth::real
