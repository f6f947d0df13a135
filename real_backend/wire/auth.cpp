#include "real_backend/wire/auth.hpp"

#include <zmq_addon.hpp>

#include <spdlog/spdlog.h>

#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "os/atomic_file.hpp"
#include "policy/errors.hpp"
#include "real_backend/wire/key_registry.hpp"
#include "traces/text.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

KeyPair make_key_pair() {
  char pub[41] = {};
  char sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    throw std::runtime_error("zmq_curve_keypair failed: libzmq was built without CURVE");
  }
  return {pub, sec};
}

namespace {

// key = value lines; '#' starts a comment.
std::map<std::string, std::string> read_key_file(const fs::path& file,
                                                 const std::vector<std::string>& required) {
  std::ifstream in(file);
  if (!in) throw InputError(fmt::format("{}: cannot open key file", file.string()));
  std::map<std::string, std::string> values;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      throw InputError(fmt::format("{}:{}: expected key = value", file.string(), n));
    }
    std::string key(traces::trim(std::string_view(line).substr(0, eq)));
    std::string value(traces::trim(std::string_view(line).substr(eq + 1)));
    if (value.size() != 40) {
      throw InputError(
          fmt::format("{}:{}: {} is not a 40-character Z85 key", file.string(), n, key));
    }
    values[key] = value;
  }
  for (const std::string& key : required) {
    if (!values.count(key)) throw InputError(fmt::format("{}: missing {}", file.string(), key));
  }
  return values;
}

// Readable by its owner only, from its first byte.
void write_key_file(const fs::path& file, const std::string& comment,
                    const std::vector<std::pair<std::string, std::string>>& values) {
  std::string text = "# " + comment + "\n";
  for (const auto& [k, v] : values)
    text += k + " = " + v + "\n";
  os::write_file_atomically(file, text, 0600);
}

}  // namespace

ManagerKeys load_or_create_keys(const fs::path& dir) {
  fs::path manager_file = dir / "manager.key";
  fs::path worker_file = dir / "worker.key";
  if (!fs::exists(manager_file) || !fs::exists(worker_file)) {
    fs::create_directories(dir);
    ManagerKeys k;
    k.manager = make_key_pair();
    k.workers.manager_public = k.manager.public_z85;
    k.workers.worker = make_key_pair();
    k.workers.peer = make_key_pair();
    k.registry = dir / "registry";
    fs::remove(k.registry);  // keys of a manager no longer there
    register_keys(k.registry, {k.workers.worker.public_z85}, "shared");
    write_credentials(worker_file, k.workers);
    write_key_file(
        manager_file, "hearth manager key pair: keep it here",
        {{"manager_public", k.manager.public_z85}, {"manager_secret", k.manager.secret_z85}});
    return k;
  }
  auto m = read_key_file(manager_file, {"manager_public", "manager_secret"});
  ManagerKeys k;
  k.manager = {m["manager_public"], m["manager_secret"]};
  k.workers = read_credentials(worker_file);
  if (k.workers.manager_public != k.manager.public_z85) {
    throw InputError(fmt::format("{}: manager_public does not match {}", worker_file.string(),
                                 manager_file.string()));
  }
  k.registry = dir / "registry";
  // A state made before keys were registered: its shared key was the only one.
  if (!fs::exists(k.registry)) register_keys(k.registry, {k.workers.worker.public_z85}, "shared");
  return k;
}

void write_credentials(const fs::path& file, const WorkerCredentials& c) {
  write_key_file(file, "hearth worker credentials: hearth worker --keys THIS_FILE",
                 {{"manager_public", c.manager_public},
                  {"worker_public", c.worker.public_z85},
                  {"worker_secret", c.worker.secret_z85},
                  {"peer_public", c.peer.public_z85},
                  {"peer_secret", c.peer.secret_z85}});
}

WorkerCredentials read_credentials(const fs::path& file) {
  auto v = read_key_file(
      file, {"manager_public", "worker_public", "worker_secret", "peer_public", "peer_secret"});
  return {v["manager_public"],
          {v["worker_public"], v["worker_secret"]},
          {v["peer_public"], v["peer_secret"]}};
}

void make_curve_server(zmq::socket_t& socket, const KeyPair& keys) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_z85);
}

void make_curve_client(zmq::socket_t& socket, const KeyPair& keys,
                       const std::string& server_public_z85) {
  socket.set(zmq::sockopt::curve_serverkey, server_public_z85);
  socket.set(zmq::sockopt::curve_publickey, keys.public_z85);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_z85);
}

Authenticator::Authenticator(zmq::context_t& context, Refusal refusal, std::string owner)
    : socket_(context, zmq::socket_type::rep),
      refusal_(std::move(refusal)),
      owner_(std::move(owner)) {
  socket_.bind("inproc://zeromq.zap.01");
}

Authenticator::Authenticator(zmq::context_t& context, std::set<std::string> allowed_public_z85,
                             std::string owner)
    : Authenticator(context, admit_only(std::move(allowed_public_z85)), std::move(owner)) {}

std::function<std::string(const std::string&)> admit_only(std::set<std::string> allowed) {
  return [allowed = std::move(allowed)](const std::string& key) {
    return allowed.count(key) ? std::string() : fmt::format("unknown key {}", key);
  };
}

// ZAP (ZeroMQ RFC 27): version, request id, domain, address, identity, mechanism, credentials;
// the reply is version, request id, status code, status text, user id, metadata.
bool Authenticator::handle_one() {
  std::vector<zmq::message_t> request;
  if (!zmq::recv_multipart(socket_, std::back_inserter(request), zmq::recv_flags::dontwait)) {
    return false;
  }
  std::string request_id = request.size() > 1 ? request[1].to_string() : "";
  std::string address = request.size() > 3 ? request[3].to_string() : "?";
  std::string mechanism = request.size() > 5 ? request[5].to_string() : "";
  bool ok = false;
  std::string why = "not CURVE";
  char z85[41] = {};
  if (mechanism == "CURVE" && request.size() > 6 && request[6].size() == 32) {
    zmq_z85_encode(z85, static_cast<const std::uint8_t*>(request[6].data()), 32);
    why = refusal_(z85);
    ok = why.empty();
  }
  if (!ok) {
    ++refused_;
    spdlog::warn("{}: refused an unauthenticated connection from {}: {}", owner_, address, why);
  }
  std::vector<zmq::const_buffer> reply = {zmq::str_buffer("1.0"),
                                          zmq::buffer(request_id),
                                          zmq::buffer(std::string_view(ok ? "200" : "400")),
                                          zmq::buffer(std::string_view(ok ? "OK" : "refused")),
                                          zmq::buffer(std::string_view(ok ? z85 : "")),
                                          zmq::str_buffer("")};
  zmq::send_multipart(socket_, reply);
  return true;
}

}  // namespace hearth::real
