#include "real_backend/status/status_server.hpp"

#include <fmt/core.h>
#include <httplib.h>
#include <sys/random.h>

#include <atomic>
#include <charconv>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

#include "os/network.hpp"
#include "policy/errors.hpp"
#include "real_backend/status/status_metrics.hpp"
#include "real_backend/status/status_page.hpp"
#include "real_backend/status/status_snapshot.hpp"

namespace hearth::real {

namespace {

// 128 random bits as 32 hex digits.
std::string random_token() {
  unsigned char bytes[16];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  std::string token;
  for (unsigned char b : bytes)
    token += fmt::format("{:02x}", b);
  return token;
}

// Compares in time that does not depend on where the first difference is.
bool same_token(const std::string& given, const std::string& expected) {
  if (given.size() != expected.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return diff == 0;
}

bool is_wildcard(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "*";
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

struct StatusServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> listen_returned{false};
  std::string host;  // as given, without brackets
  int port = 0;
  std::string token;
  std::string chart_script;  // empty: not installed

  std::mutex mutex;
  std::string snapshot;  // the latest published; empty: none yet

  std::string latest() {
    std::lock_guard lock(mutex);
    return snapshot;
  }

  void routes() {
    // Nothing here is cached, framed by another site or sent on as a referrer (the URL may hold
    // the token).
    server.set_default_headers({{"Cache-Control", "no-store"},
                                {"X-Content-Type-Options", "nosniff"},
                                {"X-Frame-Options", "DENY"},
                                {"Referrer-Policy", "no-referrer"}});
    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (token.empty() || same_token(req.get_param_value("token"), token)) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      res.status = 403;
      res.set_content(
          "403: this status page needs its token: ?token=... (hearth run printed the "
          "whole URL)\n",
          "text/plain; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    });
    server.Get("/", [](const httplib::Request&, httplib::Response& res) {
      std::string_view page = status_page_html();
      res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
    });
    server.Get("/status.json", [this](const httplib::Request&, httplib::Response& res) {
      std::string s = latest();
      if (s.empty()) {
        res.status = 503;
        res.set_content(R"({"error": "the manager has published no status yet"})",
                        "application/json");
        return;
      }
      res.set_content(s, "application/json");
    });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      std::string s = latest();
      if (s.empty()) {
        res.status = 503;
        res.set_content("the manager has published no status yet\n", "text/plain");
        return;
      }
      try {
        res.set_content(prometheus_metrics(parse_status(s, "status")),
                        "text/plain; version=0.0.4; charset=utf-8");
      } catch (const InputError& e) {
        res.status = 500;
        res.set_content(std::string(e.what()) + "\n", "text/plain");
      }
    });
    server.Get("/chart.min.js", [this](const httplib::Request&, httplib::Response& res) {
      if (chart_script.empty()) {
        res.status = 404;
        res.set_content("Chart.js is not installed here (Debian package libjs-chart.js)\n",
                        "text/plain");
        return;
      }
      res.set_content(chart_script, "application/javascript");
    });
  }
};

StatusServer::StatusServer(StatusServerOptions options) : impl_(std::make_unique<Impl>()) {
  const std::string& listen = options.listen;
  std::size_t colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    const char* first = listen.data() + colon + 1;
    const char* last = listen.data() + listen.size();
    auto [end, ec] = std::from_chars(first, last, port);
    if (ec != std::errc() || end != last || first == last || port > 65535) port = -1;
  }
  if (port < 0) {
    throw InputError(
        fmt::format("--status-listen {}: expected HOST:PORT (port 0 to 65535)", listen));
  }
  std::string host(os::host_of(listen));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  impl_->host = host;
  if (!os::is_loopback(host)) impl_->token = random_token();
  impl_->chart_script = read_whole(options.chart_script);
  // A few threads: a browser opens several connections at once, and a scraper may come too.
  // Keep-alive connections are dropped soon so that an idle browser tab does not hold a thread.
  impl_->server.new_task_queue = [] { return new httplib::ThreadPool(4); };
  impl_->server.set_keep_alive_timeout(1);
  impl_->server.set_read_timeout(5);
  impl_->server.set_write_timeout(5);
  impl_->server.set_payload_max_length(1 << 16);
  impl_->routes();

  std::string bind_host = is_wildcard(host) ? (host == "::" ? "::" : "0.0.0.0") : host;
  if (port == 0) {
    impl_->port = impl_->server.bind_to_any_port(bind_host);
  } else if (impl_->server.bind_to_port(bind_host, port)) {
    impl_->port = port;
  }
  if (impl_->port <= 0) {
    throw InputError(fmt::format(
        "--status-listen {}: cannot listen there (port in use, or not an address of this machine)",
        listen));
  }
  impl_->thread = std::thread([this] {
    impl_->server.listen_after_bind();
    impl_->listen_returned = true;
  });
  // stop() does nothing to a server not yet running, so the destructor waits until it runs.
  while (!impl_->server.is_running() && !impl_->listen_returned)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

StatusServer::~StatusServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void StatusServer::publish(std::string snapshot) {
  std::lock_guard lock(impl_->mutex);
  impl_->snapshot = std::move(snapshot);
}

std::string StatusServer::url() const {
  std::string host = is_wildcard(impl_->host) ? os::host_name() : impl_->host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  std::string url = fmt::format("http://{}:{}/", host, impl_->port);
  return impl_->token.empty() ? url : url + "?token=" + impl_->token;
}

int StatusServer::port() const {
  return impl_->port;
}

const std::string& StatusServer::token() const {
  return impl_->token;
}

}  // namespace hearth::real
