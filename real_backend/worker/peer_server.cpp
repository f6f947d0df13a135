#include "real_backend/worker/peer_server.hpp"

#include <fmt/format.h>

#include "os/network.hpp"
#include "real_backend/worker/context_cache.hpp"

namespace hearth::real {

namespace {

std::string peer_host(const WorkerOptions& options) {
  if (!options.peer_host.empty()) return options.peer_host;
  return os::is_loopback(os::host_of(options.manager)) ? "127.0.0.1" : os::host_name();
}

}  // namespace

PeerServer::PeerServer(const WorkerOptions& options, const ContextCache& cache)
    : host_(peer_host(options)),
      server_(os::is_loopback(host_) ? host_ : "0.0.0.0",
              BulkSource{[&cache](ContextId c) { return cache.host(c); },
                         [&cache](ContextId c, std::uint64_t offset, std::uint32_t length,
                                  std::string& out) { return cache.read(c, offset, length, out); }},
              "peer server of " + options.name, 10),
      endpoint_(fmt::format("tcp://{}:{}", host_, server_.port())) {}

}  // namespace hearth::real
