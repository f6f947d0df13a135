#pragma once
// The worker's executor: runs the manager's stages and tasks one at a time, in arrival order, on a
// thread of its own, and reports each end as an encoded message (StageReady, StageFailed,
// TaskFinished, TaskFailed) on kExecutorDoneEndpoint for the worker's main thread to forward.
// Cancelled work reports nothing.

#include <zmq.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "real_backend/wire/bulk.hpp"
#include "real_backend/wire/protocol.hpp"
#include "real_backend/worker/worker.hpp"

namespace hearth::real {

class ContextCache;

inline constexpr const char* kExecutorDoneEndpoint = "inproc://executor-done";

// A stage or a task, as the executor runs it.
struct WorkItem {
  std::optional<Stage> stage;
  std::optional<Task> task;
  std::atomic<bool> cancelled{false};
};

class Executor {
 public:
  // Starts the thread; the PULL end of kExecutorDoneEndpoint must be bound in `zmq` already.
  Executor(zmq::context_t& zmq, ContextCache& cache, const WorkerOptions& options,
           std::string device);
  // Cancels everything and waits for what runs to stop.
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void submit(std::shared_ptr<WorkItem> item);
  void cancel_task(AttemptId attempt);
  void abort_stage(std::uint64_t stage);
  void cancel_all_and_wait();
  // A task runs or waits, not cancelled.
  bool has_task() const;
  // How bulk transfers from peers go (the manager's Welcome says): encrypted or not, and data
  // connections per source.
  void set_transfer(bool encryption, int streams_per_source);

 private:
  template <class Pred>
  void cancel_if(Pred pred);
  ModelRuntime& runtime();
  void loop();
  std::optional<Message> run_stage(WorkItem& item);
  void fetch_to_disk(const Stage& s, const std::atomic<bool>& abort);
  BulkOptions bulk_options() const;
  std::optional<Message> run_task(WorkItem& item);

  zmq::context_t& zmq_;
  ContextCache& cache_;
  const WorkerOptions& options_;
  std::string device_;
  bool threads_set_ = false;  // executor thread only
  std::atomic<bool> transfer_encryption_{true};
  std::atomic<int> transfer_streams_{2};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::shared_ptr<WorkItem>> queue_;
  std::shared_ptr<WorkItem> running_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hearth::real
