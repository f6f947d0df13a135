#pragma once
// The status page of `hearth run --status-listen HOST:PORT`: a read-only HTTP server on its own
// threads (cpp-httplib) that serves the latest status snapshot the manager published:
//   /             the page (status_page.html, compiled in), which polls /status.json every second
//   /status.json  the snapshot, as the manager wrote it
//   /metrics      the snapshot in Prometheus' text format (status_metrics.hpp)
//   /chart.min.js Chart.js, from the Debian package libjs-chart.js (404 where it is not installed:
//                 the page then shows numbers without charts)
// On a loopback address anyone on this machine may read it; on any other address every request
// must carry the token the server drew (?token=...), else it gets 403.

#include <memory>
#include <string>

namespace hearth::real {

struct StatusServerOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
  std::string chart_script = "/usr/share/javascript/chart.js/chart.min.js";
};

class StatusServer {
 public:
  // Binds the address and starts serving. Throws InputError if the address is malformed or cannot
  // be bound.
  explicit StatusServer(StatusServerOptions options);
  // Stops serving and joins the server's threads.
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // The snapshot to serve from now on (any thread; the manager's calls it about once a second).
  void publish(std::string snapshot);

  // "http://host:port/", with "?token=..." when the address is not loopback; a wildcard host
  // (0.0.0.0, ::) is replaced by this machine's name.
  std::string url() const;
  int port() const;
  // Empty on loopback.
  const std::string& token() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::real
