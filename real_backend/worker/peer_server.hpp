#pragma once
// A worker's peer server: serves bulk transfers of the contexts this worker holds (its host copy
// without a copy, else its disk copy) to other workers, each transfer admitted by the manager
// (AdmitTransfer), on threads of its own. Peers of a worker whose manager is on loopback are on
// this machine; others reach it by its host name (or the address given), on every interface.

#include <string>

#include "real_backend/wire/bulk.hpp"
#include "real_backend/worker/worker.hpp"

namespace hearth::real {

class ContextCache;

class PeerServer {
 public:
  // Listens; throws TransferError if it cannot.
  PeerServer(const WorkerOptions& options, const ContextCache& cache);
  // "tcp://host:port", as peers dial it.
  const std::string& endpoint() const { return endpoint_; }
  // Serves `context` to the peer that presents `ticket` (the manager's word); an error text, empty
  // if admitted.
  std::string admit(ContextId context, const std::string& ticket, const std::string& key) {
    return server_.grant(context, ticket, key);
  }

 private:
  std::string host_;
  BulkServer server_;
  std::string endpoint_;
};

}  // namespace hearth::real
