#include "real_backend/worker/worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <optional>

#include "os/clock.hpp"
#include "policy/errors.hpp"
#include "real_backend/model/cuda_device.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "real_backend/wire/protocol.hpp"
#include "real_backend/worker/context_cache.hpp"
#include "real_backend/worker/executor.hpp"
#include "real_backend/worker/peer_server.hpp"

namespace hearth::real {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

using os::seconds_since;

void send(zmq::socket_t& socket, const Message& m) {
  socket.send(zmq::buffer(encode(m)), zmq::send_flags::none);
}

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
    done.bind(kExecutorDoneEndpoint);
    peers = std::make_unique<PeerServer>(options, cache);
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
      executor->set_transfer(w->transfer_encryption, static_cast<int>(w->transfer_streams));
      spdlog::info("joined as worker {} on {} ({})", w->worker, device, hello.gpu_type);
    } else if (auto* s = std::get_if<Stage>(&m)) {
      auto item = std::make_shared<WorkItem>();
      item->stage = *s;
      executor->submit(std::move(item));
    } else if (auto* t = std::get_if<Task>(&m)) {
      auto item = std::make_shared<WorkItem>();
      item->task = *t;
      executor->submit(std::move(item));
    } else if (auto* a = std::get_if<AdmitTransfer>(&m)) {
      if (std::string e = peers->admit(a->context, a->ticket, a->key); !e.empty())
        spdlog::warn("cannot serve context {} to a peer: {}", a->context, e);
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
