#pragma once
// The manager: hosts the policy core (policy/engine.hpp, unchanged) and is its Cluster, on one
// thread. Its loop (manager.cpp) runs the socket workers dial and the factory; the core's commands
// become messages to workers and workers' messages become the core's events in WireCluster
// (wire_cluster.hpp); who is connected is kept by WorkerRegistry (worker_registry.hpp).
//
// A worker is lost when its connection closes, when it is silent for heartbeat_timeout_s, when it
// says bye, when its local process (started by a trace or --workers factory) ends, or when it keeps
// sending malformed messages; stages reading from it then fail on their receivers.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "policy/engine.hpp"
#include "real_backend/wire/auth.hpp"

namespace hearth::real {

class RunPlan;
class WorkerFactory;

struct ManagerOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
  ManagerKeys keys;
  double heartbeat_s = 0.5;
  double heartbeat_timeout_s = 5;
  int max_malformed = 3;          // malformed messages a connection may send before it is dropped
  bool record_decisions = false;  // keep the core's events and commands (command_log.hpp lines)
#ifdef NDEBUG
  bool check_contract = false;  // check the core's commands (policy/contract_check.hpp)
#else
  bool check_contract = true;
#endif
  double progress_s = 0;  // log progress this often; 0: never

  // The status snapshot (run_monitor.hpp) is written to status_file (atomically, 0600) and
  // handed to on_status about every status_s seconds and once at the end; empty / null: not.
  std::filesystem::path status_file;
  std::function<void(const std::string&)> on_status;
  double status_s = 1;
  std::filesystem::path events_path;  // the events file (JSON lines); empty: none

  // A context that no joined worker has room for fails the run after this long.
  double wait_for_capacity_s = 300;
  bool quarantine_exit = false;  // tell a quarantined worker to exit (else it is left idle)
};

enum class RunEnd {
  finished,    // every inference is done (or given up)
  stopped,     // asked to stop; the state is saved
  no_workers,  // the factory will start no more workers and none is left
  failed,      // it cannot go on: a context no worker can load or hold (Manager::failure())
};

class Manager {
 public:
  // Binds the listening socket. Throws InputError if the address cannot be used.
  Manager(RunPlan& plan, EngineConfig config, ManagerOptions options);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // "tcp://host:port", as bound.
  const std::string& endpoint() const;
  // "host:port", what `hearth worker --manager` takes.
  std::string address() const;

  // Runs the job: until it is finished, `stop` is set, or the factory (which the manager starts,
  // ticks and stops) runs out of workers. Sends every worker Shutdown at the end.
  RunEnd run(const std::atomic<bool>& stop, WorkerFactory* factory = nullptr);

  // What follows reads the manager's state without a lock: while run() runs on another thread,
  // read it only after run() has returned.
  const EngineStats& stats() const;
  const Workload& workload() const;
  const EngineConfig& engine_config() const;
  // Why the run failed (RunEnd::failed), with the workers' own messages.
  const std::string& failure() const;
  // The status snapshot now (after run(): the final one), as JSON text.
  std::string status_json() const;
  // Rows whose results were discarded because the worker that produced them was caught lying
  // (verification): they are missing from the store, and a later run redoes them.
  std::uint64_t discarded_rows() const;
  // With record_decisions: what the core received and what it issued.
  std::vector<std::string> event_lines() const;
  std::vector<std::string> command_lines() const;

  // Counted by run()'s thread; any thread may read them while it runs.
  struct Counters {
    std::atomic<int> refused_connections = 0;  // failed handshakes and unknown keys
    std::atomic<int> malformed_messages = 0;
    std::atomic<int> dropped_connections = 0;  // for sending too many malformed messages
    std::atomic<int> joins = 0;
    std::atomic<int> losses = 0;
    std::atomic<int> quarantines = 0;
    std::atomic<int> revoked = 0;  // workers dropped because their key was revoked
  };
  const Counters& counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::real
