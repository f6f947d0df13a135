#pragma once
// A worker: dials the manager, announces its device and room, and carries out the manager's
// commands (stage a context onto a tier, evict it, run a task, cancel it) while serving the
// context files it holds to its peers. Its results go back to the manager as messages.
//
// Three threads: the main one talks to the manager, an executor runs stages and tasks one at a
// time, a peer server answers other workers' fetches.

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "real_backend/wire/auth.hpp"

namespace hearth::real {

class ModelRuntime;

struct WorkerOptions {
  std::string manager;  // "host:port"
  WorkerCredentials keys;
  std::string name;                 // unique in the pool; stable across restarts
  std::filesystem::path cache_dir;  // its context files there are removed at start
  std::string device = "auto";      // auto, cpu, cuda, cuda:N
  std::string gpu_type;             // announced instead of the device's name, if set
  int threads = 1;                  // libtorch threads; 1 keeps results bit-identical
  double device_memory_bytes = 0;   // room for models on the device; 0: measure
  double host_memory_bytes = 0;     // 0: a quarter of physical memory
  double disk_bytes = 0;            // 0: free space in cache_dir
  double speed = 1.0;               // relative inference speed, for the scheduler
  std::string peer_host;            // address peers reach this worker at; empty: loopback
                                    // if the manager is on loopback, else the host name
  double manager_timeout_s = 15;    // a manager silent this long is gone: join again
  ModelRuntime* runtime = nullptr;  // null: torch_runtime(), loaded on first need
};

// How the outside (a signal handler, a test) steers a running worker. Lock-free atomics only.
struct WorkerControl {
  std::atomic<int> notice_grace_ms{-1};  // >= 0: announce preemption with this grace
  std::atomic<bool> leave{false};        // say bye and stop now
  std::atomic<bool> crash{false};        // stop at once without a word, as if killed
};

class Worker {
 public:
  // Binds the peer server; throws InputError for unusable options.
  Worker(WorkerOptions options, WorkerControl& control);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs until the manager shuts the run down, a notice's grace ends, or control says leave or
  // crash.
  void run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::real
