#include "real_backend/worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "policy/errors.hpp"
#include "real_backend/context_cache.hpp"
#include "real_backend/cuda_device.hpp"
#include "real_backend/model_runtime.hpp"
#include "real_backend/protocol.hpp"
#include "real_backend/transfer.hpp"

namespace hearth::real {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void send(zmq::socket_t& socket, const Message& m) {
  socket.send(zmq::buffer(encode(m)), zmq::send_flags::none);
}

// One inference's result as JSON. A failure of one input is that input's result, so that one bad
// prompt does not fail the task around it.
std::string result_json(const ContextInfo& info, LoadedModel* model,
                        const std::vector<std::int32_t>& input) {
  using nlohmann::ordered_json;
  if (info.task == TaskKind::noop) return "null";
  try {
    if (!model) throw std::runtime_error("the context has no model");
    if (info.task == TaskKind::classify) {
      InferenceResult r = model->classify(input, info.label_tokens);
      ordered_json scores = ordered_json::object();
      for (std::size_t i = 0; i < r.scores.size(); ++i)
        scores[info.labels[i]] = r.scores[i];
      return ordered_json{{"label", info.labels[static_cast<std::size_t>(r.label)]},
                          {"scores", scores}}
          .dump();
    }
    InferenceResult r = model->generate(input, info.max_new_tokens, info.stop_token);
    std::string text;
    for (std::int32_t t : r.tokens) {
      if (t >= 0 && t < 256) text += static_cast<char>(t);
    }
    return ordered_json{{"text", text}, {"tokens", r.tokens}}.dump(
        -1, ' ', false, ordered_json::error_handler_t::replace);
  } catch (const std::exception& e) {
    return ordered_json{{"error", e.what()}}.dump(-1, ' ', false,
                                                  ordered_json::error_handler_t::replace);
  }
}

// A stage or a task, as the executor runs it.
struct Job {
  std::optional<Stage> stage;
  std::optional<Task> task;
  std::atomic<bool> cancelled{false};
};

constexpr const char* kDoneEndpoint = "inproc://executor-done";

// Runs stages and tasks one at a time, in arrival order, and reports each end as an encoded
// message on kDoneEndpoint for the main thread to forward.
class Executor {
 public:
  Executor(zmq::context_t& zmq, ContextCache& cache, const WorkerOptions& options,
           std::string device)
      : zmq_(zmq), cache_(cache), options_(options), device_(std::move(device)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Executor() {
    cancel_all_and_wait();
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  void submit(std::shared_ptr<Job> job) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(job));
    }
    wake_.notify_all();
  }
  void cancel_task(AttemptId attempt) {
    cancel_if([&](const Job& j) { return j.task && j.task->attempt == attempt; });
  }
  void abort_stage(std::uint64_t stage) {
    cancel_if([&](const Job& j) { return j.stage && j.stage->stage == stage; });
  }
  void cancel_all_and_wait() {
    cancel_if([](const Job&) { return true; });
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return !running_ && queue_.empty(); });
  }
  bool has_task() const {
    std::lock_guard lock(mutex_);
    if (running_ && running_->task && !running_->cancelled) return true;
    for (const auto& j : queue_) {
      if (j->task && !j->cancelled) return true;
    }
    return false;
  }

 private:
  template <class Pred>
  void cancel_if(Pred pred) {
    std::lock_guard lock(mutex_);
    if (running_ && pred(*running_)) running_->cancelled = true;
    for (const auto& j : queue_) {
      if (pred(*j)) j->cancelled = true;
    }
  }

  ModelRuntime& runtime() {
    ModelRuntime& r = options_.runtime ? *options_.runtime : torch_runtime();
    if (!threads_set_) {
      r.set_threads(options_.threads);
      threads_set_ = true;
    }
    return r;
  }

  void loop() {
    zmq::socket_t done(zmq_, zmq::socket_type::push);
    done.set(zmq::sockopt::linger, 0);
    done.connect(kDoneEndpoint);
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      running_ = std::move(queue_.front());
      queue_.pop_front();
      if (!running_->cancelled) {
        lock.unlock();
        std::optional<Message> result =
            running_->stage ? run_stage(*running_) : run_task(*running_);
        if (result && !running_->cancelled) send(done, *result);
        lock.lock();
      }
      running_.reset();
      if (queue_.empty()) idle_.notify_all();
    }
  }

  std::optional<Message> run_stage(Job& job) {
    const Stage& s = *job.stage;
    auto start = Clock::now();
    try {
      cache_.wait_freed();  // what was evicted to make room is freed before this stage fills it
      cache_.set_info(s.context, s.info);
      switch (s.tier) {
        case Tier::disk:
          fetch_to_disk(s, job.cancelled);
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
          if (s.info.has_model) model = runtime().load(*host, device_);
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

  void fetch_to_disk(const Stage& s, const std::atomic<bool>& abort) {
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

  std::optional<Message> run_task(Job& job) {
    const Task& t = *job.task;
    std::optional<ContextInfo> info = cache_.info(t.context);
    if (!info || !cache_.on_device(t.context)) {
      return TaskFailed{t.attempt, "the context is not on the device"};
    }
    std::shared_ptr<LoadedModel> model = cache_.model(t.context);
    TaskFinished out{t.attempt, {}};
    out.results.reserve(t.inputs.size());
    for (const auto& input : t.inputs) {
      if (job.cancelled) return std::nullopt;
      out.results.push_back(result_json(*info, model.get(), input));
    }
    return out;
  }

  zmq::context_t& zmq_;
  ContextCache& cache_;
  const WorkerOptions& options_;
  std::string device_;
  bool threads_set_ = false;  // executor thread only
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::shared_ptr<Job> running_;
  bool stopping_ = false;
  std::thread thread_;
};

bool is_loopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "localhost" || host == "[::1]";
}

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

// Answers other workers' fetches from this worker's disk and host copies. Peers of a worker on
// loopback are on this machine; others reach it by its name (or the address given), on every
// interface.
class PeerServer {
 public:
  PeerServer(zmq::context_t& zmq, const WorkerOptions& options, const ContextCache& cache)
      : host_(peer_host(options)),
        server_(zmq, options.keys.peer, {options.keys.worker.public_z85},
                "peer server of " + options.name,
                fmt::format("tcp://{}:0", is_loopback(host_) ? host_ : "*"),
                [&cache](ContextId c, std::uint64_t offset, std::uint32_t length,
                         std::string& out) { return cache.read(c, offset, length, out); }) {
    const std::string& bound = server_.endpoint();
    endpoint_ = fmt::format("tcp://{}:{}", host_, bound.substr(bound.rfind(':') + 1));
  }
  const std::string& endpoint() const { return endpoint_; }

 private:
  static std::string peer_host(const WorkerOptions& options) {
    if (!options.peer_host.empty()) return options.peer_host;
    std::string manager_host = options.manager.substr(0, options.manager.rfind(':'));
    return is_loopback(manager_host) ? "127.0.0.1" : host_name();
  }

  std::string host_;
  FetchServer server_;
  std::string endpoint_;
};

std::string word(std::string s) {
  for (char& c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) c = '-';
  }
  return s;
}

}  // namespace

struct Worker::Impl {
  Impl(WorkerOptions o, WorkerControl& c)
      : options(std::move(o)),
        control(c),
        cache(options.cache_dir),
        manager(zmq, zmq::socket_type::dealer),
        done(zmq, zmq::socket_type::pull) {
    if (options.name.empty()) throw InputError("a worker needs a name");
    cache.clear();
    resolve_device();
    done.bind(kDoneEndpoint);
    peers = std::make_unique<PeerServer>(zmq, options, cache);
    executor = std::make_unique<Executor>(zmq, cache, options, device);
    manager.set(zmq::sockopt::linger, 1000);
    make_curve_client(manager, options.keys.worker, options.keys.manager_public);
    manager.connect("tcp://" + options.manager);
  }

  void resolve_device() {
    device =
        options.device == "cpu"
            ? "cpu"
            : (options.runtime ? *options.runtime : torch_runtime()).resolve_device(options.device);
    double physical =
        static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
    hello.name = options.name;
    hello.device = device;
    hello.gpu_type = "cpu";
    hello.gpu_memory_bytes = physical / 4;
    if (device.rfind("cuda", 0) == 0) {
      int index = device.size() > 5 ? std::stoi(device.substr(5)) : 0;
      if (auto gpu = cuda_device(index)) {
        hello.gpu_type = word(gpu->name);
        hello.gpu_memory_bytes = gpu->memory_bytes;
      } else {
        hello.gpu_type = "cuda";
      }
    }
    if (!options.gpu_type.empty()) hello.gpu_type = word(options.gpu_type);
    if (options.device_memory_bytes > 0) hello.gpu_memory_bytes = options.device_memory_bytes;
    hello.host_memory_bytes =
        options.host_memory_bytes > 0 ? options.host_memory_bytes : physical / 4;
    std::error_code ec;
    hello.disk_bytes = options.disk_bytes > 0
                           ? options.disk_bytes
                           : static_cast<double>(fs::space(options.cache_dir, ec).available);
    hello.speed = options.speed;
    hello.pid = static_cast<std::uint32_t>(getpid());
  }

  void say_hello() {
    hello.peer_endpoint = peers->endpoint();
    send(manager, hello);
    last_hello = Clock::now();
  }

  // Forgets everything, as the manager expects of a worker that joins.
  void start_over(const std::string& why) {
    spdlog::info("{}: dropping every context and joining again", why);
    executor->cancel_all_and_wait();
    cache.clear();
    joined = false;
    // Completions of what was just cancelled must not reach the manager.
    zmq::message_t stale;
    while (done.recv(stale, zmq::recv_flags::dontwait)) {
    }
    say_hello();
  }

  // Returns false when the worker must stop.
  bool handle(const Message& m) {
    if (auto* w = std::get_if<Welcome>(&m)) {
      joined = true;
      heartbeat_s = w->heartbeat_s;
      spdlog::info("joined as worker {} on {} ({})", w->worker, device, hello.gpu_type);
    } else if (auto* s = std::get_if<Stage>(&m)) {
      auto job = std::make_shared<Job>();
      job->stage = *s;
      executor->submit(std::move(job));
    } else if (auto* t = std::get_if<Task>(&m)) {
      auto job = std::make_shared<Job>();
      job->task = *t;
      executor->submit(std::move(job));
    } else if (auto* e = std::get_if<Evict>(&m)) {
      cache.evict(e->context, e->tier);
    } else if (auto* c = std::get_if<Cancel>(&m)) {
      executor->cancel_task(c->attempt);
    } else if (auto* a = std::get_if<AbortStage>(&m)) {
      executor->abort_stage(a->stage);
    } else if (auto* r = std::get_if<Reset>(&m)) {
      start_over("the manager does not know this worker (" + r->reason + ")");
    } else if (std::holds_alternative<Shutdown>(m)) {
      spdlog::info("the manager ends the run");
      return false;
    } else if (!std::holds_alternative<Heartbeat>(m)) {
      spdlog::warn("ignored an unexpected {} from the manager", message_name(m));
    }
    return true;
  }

  void leave() {
    send(manager, Bye{});
    executor.reset();
  }

  void run() {
    say_hello();
    auto last_heard = Clock::now();
    auto last_beat = Clock::now();
    std::optional<Clock::time_point> deadline;
    while (true) {
      if (control.crash) {
        manager.set(zmq::sockopt::linger, 0);
        return;
      }
      if (control.leave) return leave();
      int grace_ms = control.notice_grace_ms.load();
      if (grace_ms >= 0 && !deadline) {
        deadline = Clock::now() + std::chrono::milliseconds(grace_ms);
        spdlog::info("preemption notice: leaving within {:.1f} s", grace_ms / 1000.0);
        send(manager, Notice{grace_ms / 1000.0});
      }
      if (deadline && (!executor->has_task() || Clock::now() >= *deadline)) return leave();

      zmq::pollitem_t items[] = {{manager.handle(), 0, ZMQ_POLLIN, 0},
                                 {done.handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(50));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
      }
      zmq::message_t in;
      while (manager.recv(in, zmq::recv_flags::dontwait)) {
        last_heard = Clock::now();
        try {
          if (!handle(decode(in.to_string_view()))) return;
        } catch (const ProtocolError& e) {
          spdlog::warn("dropped a malformed message from the manager: {}", e.what());
        }
      }
      while (done.recv(in, zmq::recv_flags::dontwait)) {
        if (joined) manager.send(in, zmq::send_flags::none);
      }
      if (!joined && seconds_since(last_hello) > 1.0) say_hello();
      if (joined && seconds_since(last_beat) > heartbeat_s) {
        send(manager, Heartbeat{});
        last_beat = Clock::now();
      }
      if (joined && seconds_since(last_heard) > options.manager_timeout_s) {
        start_over("the manager has been silent too long");
        last_heard = Clock::now();
      }
    }
  }

  WorkerOptions options;
  WorkerControl& control;
  zmq::context_t zmq;
  ContextCache cache;
  std::string device;
  Hello hello;
  zmq::socket_t manager;
  zmq::socket_t done;
  std::unique_ptr<PeerServer> peers;
  std::unique_ptr<Executor> executor;
  bool joined = false;
  double heartbeat_s = 0.5;
  Clock::time_point last_hello;
};

Worker::Worker(WorkerOptions options, WorkerControl& control)
    : impl_(std::make_unique<Impl>(std::move(options), control)) {}

Worker::~Worker() = default;

void Worker::run() {
  impl_->run();
}

}  // namespace hearth::real
