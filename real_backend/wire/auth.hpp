#pragma once
// Who may talk to a manager or a worker: ZeroMQ CURVE keys the manager generates, and the ZAP
// handler that admits only the workers' key and logs every connection it turns away.
//
// The manager's state directory holds manager.key (its own key pair), worker.key (credentials any
// worker may use: the manager's public key, a key pair to dial the manager with, and the key pair
// every worker serves and dials its peers with) and the registry of the worker keys it admits
// (key_registry.hpp): worker.key's own is registered as "shared"; `hearth keys issue` and the
// batch factories issue one per worker or job, which can be revoked one by one.

#include <zmq.hpp>

#include <filesystem>
#include <functional>
#include <set>
#include <string>

namespace hearth::real {

struct KeyPair {
  std::string public_z85;  // 40 characters
  std::string secret_z85;
};
KeyPair make_key_pair();

struct WorkerCredentials {
  std::string manager_public;
  KeyPair worker;  // the worker dials the manager with this key: its own, or the shared one
  KeyPair peer;    // every worker serves its peers, and dials them, with this key pair
};

struct ManagerKeys {
  KeyPair manager;
  WorkerCredentials workers;       // the shared worker.key
  std::filesystem::path registry;  // the keys admitted; empty: only workers.worker's
};

// Reads the keys in `dir`, creating the directory and fresh keys (mode 0600) if there are none,
// and the registry with the shared worker key in it if it has none.
ManagerKeys load_or_create_keys(const std::filesystem::path& dir);
// Throws InputError("worker.key:3: ...") if the file is missing or malformed.
WorkerCredentials read_credentials(const std::filesystem::path& file);
// Writes a credentials file that read_credentials reads, mode 0600.
void write_credentials(const std::filesystem::path& file, const WorkerCredentials& credentials);

// Makes `socket` a CURVE server / client. Call before bind / connect. A CURVE server admits any
// client key unless an Authenticator runs in its context: create that first.
void make_curve_server(zmq::socket_t& socket, const KeyPair& keys);
void make_curve_client(zmq::socket_t& socket, const KeyPair& keys,
                       const std::string& server_public_z85);

// A refusal for Authenticator that admits exactly `allowed` ("unknown key ..." for the others).
std::function<std::string(const std::string&)> admit_only(std::set<std::string> allowed);

// Answers ZAP requests for every CURVE server socket of `context`: admits connections whose client
// key `refusal` has no objection to (it returns why not, or ""), refuses and logs the others; an
// admitted connection's messages carry its key as their "User-Id" property. Must exist before
// the server socket binds (without it libzmq admits every key), and be polled (socket()) by the
// thread that owns it.
class Authenticator {
 public:
  using Refusal = std::function<std::string(const std::string& public_z85)>;
  Authenticator(zmq::context_t& context, Refusal refusal, std::string owner);
  // Admits exactly these keys (admit_only).
  Authenticator(zmq::context_t& context, std::set<std::string> allowed_public_z85,
                std::string owner);
  zmq::socket_t& socket() { return socket_; }
  // Answers one pending request. Returns false if none was pending.
  bool handle_one();
  int refused() const { return refused_; }

 private:
  zmq::socket_t socket_;
  Refusal refusal_;
  std::string owner_;
  int refused_ = 0;
};

}  // namespace hearth::real
