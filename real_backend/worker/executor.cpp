#include "real_backend/worker/executor.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "os/clock.hpp"
#include "real_backend/model/model_files.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "real_backend/text/tokenizer.hpp"
#include "real_backend/wire/bulk.hpp"
#include "real_backend/wire/transfer.hpp"
#include "real_backend/worker/context_cache.hpp"
#include "real_backend/worker/inference.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

using os::seconds_since;

}  // namespace

Executor::Executor(zmq::context_t& zmq, ContextCache& cache, const WorkerOptions& options,
                   std::string device)
    : zmq_(zmq), cache_(cache), options_(options), device_(std::move(device)) {
  thread_ = std::thread([this] { loop(); });
}

Executor::~Executor() {
  cancel_all_and_wait();
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Executor::submit(std::shared_ptr<WorkItem> item) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(item));
  }
  wake_.notify_all();
}

void Executor::cancel_task(AttemptId attempt) {
  cancel_if([&](const WorkItem& i) { return i.task && i.task->attempt == attempt; });
}

void Executor::abort_stage(std::uint64_t stage) {
  cancel_if([&](const WorkItem& i) { return i.stage && i.stage->stage == stage; });
}

void Executor::cancel_all_and_wait() {
  cancel_if([](const WorkItem&) { return true; });
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return !running_ && queue_.empty(); });
}

bool Executor::has_task() const {
  std::lock_guard lock(mutex_);
  if (running_ && running_->task && !running_->cancelled) return true;
  for (const auto& i : queue_) {
    if (i->task && !i->cancelled) return true;
  }
  return false;
}

template <class Pred>
void Executor::cancel_if(Pred pred) {
  std::lock_guard lock(mutex_);
  if (running_ && pred(*running_)) running_->cancelled = true;
  for (const auto& i : queue_) {
    if (pred(*i)) i->cancelled = true;
  }
}

ModelRuntime& Executor::runtime() {
  ModelRuntime& r = options_.runtime ? *options_.runtime : torch_runtime();
  if (!threads_set_) {
    r.set_threads(options_.threads);
    threads_set_ = true;
  }
  return r;
}

void Executor::loop() {
  zmq::socket_t done(zmq_, zmq::socket_type::push);
  done.set(zmq::sockopt::linger, 0);
  done.connect(kExecutorDoneEndpoint);
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    running_ = std::move(queue_.front());
    queue_.pop_front();
    if (!running_->cancelled) {
      lock.unlock();
      std::optional<Message> result = running_->stage ? run_stage(*running_) : run_task(*running_);
      if (result && !running_->cancelled) done.send(zmq::buffer(encode(*result)));
      lock.lock();
    }
    running_.reset();
    if (queue_.empty()) idle_.notify_all();
  }
}

std::optional<Message> Executor::run_stage(WorkItem& item) {
  const Stage& s = *item.stage;
  auto start = Clock::now();
  try {
    cache_.wait_freed();  // what was evicted to make room is freed before this stage fills it
    cache_.set_info(s.context, s.info);
    switch (s.tier) {
      case Tier::disk:
        fetch_to_disk(s, item.cancelled);
        cache_.disk_ready(s.context);
        break;
      case Tier::host: {
        // The device is loaded from these bytes: checked here, whatever happened to the file
        // since it was fetched and checked.
        auto bytes = std::make_shared<const std::string>(
            read_whole_file(cache_.file(s.context), s.info.size_bytes));
        if (std::string e = bytes_error(s.info, *bytes); !e.empty()) {
          throw TransferError(
              fmt::format("the cached copy of {} is not what was fetched: {}", s.info.name, e));
        }
        cache_.host_ready(s.context, std::move(bytes));
        break;
      }
      case Tier::gpu: {
        std::shared_ptr<const std::string> host = cache_.host(s.context);
        if (!host) throw TransferError("no copy in host memory to build the model from");
        std::shared_ptr<LoadedModel> model;
        std::shared_ptr<const text::Tokenizer> tokenizer;
        if (s.info.inference.has_model && s.info.files.empty()) {
          model = runtime().load(*host, device_);
        } else if (s.info.inference.has_model) {
          // A model directory: the pack's files as ModelFiles, the weights viewed in place where
          // the device allows.
          std::unique_ptr<ModelFiles> files =
              packed_files(host, file_slices(s.info), "context " + s.info.name);
          model = runtime().load_model(*files, device_);
          // Generated tokens are decoded to text; classify needs no tokenizer here (the manager
          // tokenized the prompts and labels).
          if (s.info.inference.task == TaskKind::generate && files->has("tokenizer.json")) {
            tokenizer = std::make_shared<const text::Tokenizer>(text::Tokenizer::from_json(
                files->read("tokenizer.json"), s.info.name + "/tokenizer.json"));
          }
        }
        if (model) model->set_max_batch(s.info.inference.max_batch);
        cache_.device_ready(s.context, std::move(model), std::move(tokenizer));
        break;
      }
    }
    return StageReady{s.stage, seconds_since(start)};
  } catch (const std::exception& e) {
    spdlog::warn("stage of {} to {} failed: {}", s.info.name, to_string(s.tier), e.what());
    return StageFailed{s.stage, e.what()};
  }
}

void Executor::fetch_to_disk(const Stage& s, const std::atomic<bool>& abort) {
  fs::path dest = cache_.file(s.context);
  switch (s.source) {
    case StageSource::shared_path:
      copy_file(s.info, dest, abort);
      return;
    case StageSource::manager: {
      const std::string manager = "tcp://" + options_.manager;
      if (s.info.chunk_digests.empty()) {
        fetch_file(zmq_, manager, options_.keys.manager_public, options_.keys.worker, s.context,
                   s.info, dest, abort);
        return;
      }
      // Opened over this worker's own CURVE connection, where the manager's key checks apply.
      BulkPeer from = open_bulk(zmq_, manager, options_.keys.manager_public, options_.keys.worker,
                                s.context, transfer_encryption_.load(), abort);
      (void)fetch_bulk({from}, s.info, dest, abort, bulk_options());
      return;
    }
    case StageSource::peer:
      // The manager made this transfer's ticket and told the holder: peers serve nothing else.
      if (s.peer_ticket.empty()) throw TransferError("a peer stage without a ticket");
      (void)fetch_bulk({bulk_peer_at(s.peer_endpoint, s.peer_ticket, s.peer_key)}, s.info, dest,
                       abort, bulk_options());
      return;
    case StageSource::lower_tier:
      break;
  }
  throw TransferError("a disk stage needs a source other than the tier below");
}

BulkOptions Executor::bulk_options() const {
  BulkOptions o;
  o.streams_per_source = transfer_streams_.load();
  return o;
}

void Executor::set_transfer(bool encryption, int streams_per_source) {
  transfer_encryption_ = encryption;
  transfer_streams_ = std::max(1, streams_per_source);
}

std::optional<Message> Executor::run_task(WorkItem& item) {
  const Task& t = *item.task;
  std::optional<ContextInfo> info = cache_.info(t.context);
  if (!info || !cache_.on_device(t.context)) {
    return TaskFailed{t.attempt, "the context is not on the device"};
  }
  if (std::string problem = task_problem(info->inference, t); !problem.empty()) {
    return TaskFailed{t.attempt, problem};
  }
  std::shared_ptr<LoadedModel> model = cache_.model(t.context);
  std::shared_ptr<const text::Tokenizer> tokenizer = cache_.tokenizer(t.context);
  try {
    return TaskFinished{t.attempt, run_inferences(info->inference, model.get(), tokenizer.get(), t,
                                                  [&] { return item.cancelled.load(); })};
  } catch (const Cancelled&) {
    return std::nullopt;
  } catch (const std::exception& e) {
    return TaskFailed{t.attempt, e.what()};  // the model or the tokenizer failed the whole task
  }
}

}  // namespace hearth::real
