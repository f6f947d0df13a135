#pragma once
// Who may talk to a manager or a worker: ZeroMQ CURVE keys the manager generates, and the ZAP
// handler that admits only the workers' key and logs every connection it turns away.
//
// The manager's state directory holds two files: manager.key (its own key pair) and
// worker.key (what a worker needs: the manager's public key, the key pair workers dial with, and
// the key pair workers serve peers with). Copy worker.key to the machines that run workers.

#include <zmq.hpp>

#include <filesystem>
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
  KeyPair worker;  // every worker dials the manager and its peers with this key
  KeyPair peer;    // every worker serves its peers with this key
};

struct ManagerKeys {
  KeyPair manager;
  WorkerCredentials workers;
};

// Reads the keys in `dir`, creating the directory and fresh keys (mode 0600) if there are none.
ManagerKeys load_or_create_keys(const std::filesystem::path& dir);
// Throws InputError("worker.key:3: ...") if the file is missing or malformed.
WorkerCredentials read_credentials(const std::filesystem::path& file);

// Makes `socket` a CURVE server / client. Call before bind / connect. A CURVE server admits any
// client key unless an Authenticator runs in its context: create that first.
void make_curve_server(zmq::socket_t& socket, const KeyPair& keys);
void make_curve_client(zmq::socket_t& socket, const KeyPair& keys,
                       const std::string& server_public_z85);

// Answers ZAP requests for every CURVE server socket of `context`: admits connections that present
// one of the allowed client keys, refuses and logs the others. Must exist before the server
// socket binds (without it libzmq admits every key), and be polled (socket()) by the thread that
// owns it.
class Authenticator {
 public:
  Authenticator(zmq::context_t& context, std::set<std::string> allowed_public_z85,
                std::string owner);
  zmq::socket_t& socket() { return socket_; }
  // Answers one pending request. Returns false if none was pending.
  bool handle_one();
  int refused() const { return refused_; }

 private:
  zmq::socket_t socket_;
  std::set<std::string> allowed_;
  std::string owner_;
  int refused_ = 0;
};

}  // namespace hearth::real
