#include "real_backend/worker/executor.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "real_backend/model/model_runtime.hpp"
#include "real_backend/wire/transfer.hpp"
#include "real_backend/worker/context_cache.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

std::vector<std::string> results_json(const InferenceSettings& info, LoadedModel* model,
                                      const std::vector<std::vector<std::int32_t>>& inputs,
                                      const CancelCheck& cancelled) {
  using nlohmann::ordered_json;
  auto error_json = [](const std::string& what) {
    return ordered_json{{"error", what}}.dump(-1, ' ', false,
                                              ordered_json::error_handler_t::replace);
  };
  if (info.task == TaskKind::noop) return std::vector<std::string>(inputs.size(), "null");
  std::vector<InferenceResult> results;
  try {
    if (!model) throw std::runtime_error("the context has no model");
    if (info.task == TaskKind::classify) {
      std::vector<std::vector<std::int32_t>> labels;
      for (std::int32_t t : info.label_tokens)
        labels.push_back({t});
      results = model->classify(inputs, labels, cancelled);
    } else {
      GenerateOptions options;
      options.max_new_tokens = info.max_new_tokens;
      if (info.stop_token >= 0) options.stop_tokens = {info.stop_token};
      results = model->generate(inputs, options, {}, cancelled);
    }
  } catch (const Cancelled&) {
    throw;
  } catch (const std::exception& e) {
    return std::vector<std::string>(inputs.size(), error_json(e.what()));
  }
  std::vector<std::string> out;
  for (const InferenceResult& r : results) {
    if (!r.error.empty()) {
      out.push_back(error_json(r.error));
    } else if (info.task == TaskKind::classify) {
      ordered_json scores = ordered_json::object();
      for (std::size_t i = 0; i < r.scores.size(); ++i)
        scores[info.labels[i]] = r.scores[i];
      out.push_back(ordered_json{
          {"label", info.labels[static_cast<std::size_t>(r.label)]},
          {"scores",
           scores}}.dump());
    } else {
      std::string text;
      for (std::int32_t t : r.tokens) {
        if (t >= 0 && t < 256) text += static_cast<char>(t);
      }
      out.push_back(ordered_json{{"text", text}, {"tokens", r.tokens}}.dump(
          -1, ' ', false, ordered_json::error_handler_t::replace));
    }
  }
  return out;
}

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
      case Tier::host:
        cache_.host_ready(s.context, std::make_shared<const std::string>(read_whole_file(
                                         cache_.file(s.context), s.info.size_bytes)));
        break;
      case Tier::gpu: {
        std::shared_ptr<const std::string> host = cache_.host(s.context);
        if (!host) throw TransferError("no copy in host memory to build the model from");
        std::shared_ptr<LoadedModel> model;
        if (s.info.inference.has_model) model = runtime().load(*host, device_);
        cache_.device_ready(s.context, std::move(model));
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
    case StageSource::manager:
      fetch_file(zmq_, "tcp://" + options_.manager, options_.keys.manager_public,
                 options_.keys.worker, s.context, s.info, dest, abort);
      return;
    case StageSource::peer:
      fetch_file(zmq_, s.peer_endpoint, options_.keys.peer.public_z85, options_.keys.worker,
                 s.context, s.info, dest, abort);
      return;
    case StageSource::lower_tier:
      break;
  }
  throw TransferError("a disk stage needs a source other than the tier below");
}

std::optional<Message> Executor::run_task(WorkItem& item) {
  const Task& t = *item.task;
  std::optional<ContextInfo> info = cache_.info(t.context);
  if (!info || !cache_.on_device(t.context)) {
    return TaskFailed{t.attempt, "the context is not on the device"};
  }
  std::shared_ptr<LoadedModel> model = cache_.model(t.context);
  try {
    return TaskFinished{t.attempt, results_json(info->inference, model.get(), t.inputs,
                                                [&] { return item.cancelled.load(); })};
  } catch (const Cancelled&) {
    return std::nullopt;
  }
}

}  // namespace hearth::real
