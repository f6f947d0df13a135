#include "real_backend/manager/manager.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <unordered_map>

#include "os/network.hpp"
#include "policy/command_log.hpp"
#include "policy/errors.hpp"
#include "real_backend/factory/worker_factory.hpp"
#include "real_backend/manager/run_plan.hpp"
#include "real_backend/wire/protocol.hpp"
#include "real_backend/wire/transfer.hpp"

namespace hearth::real {

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kMonitorEndpoint = "inproc://manager-monitor";

// Names and GPU types travel through logs and the core's event lines as single words.
bool is_word(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (unsigned char c : s) {
    if (c <= ' ' || c >= 127) return false;
  }
  return true;
}

bool usable_size(double v) {
  return std::isfinite(v) && v >= 0;
}

}  // namespace

struct Manager::Impl final : Cluster {
  // A worker the core knows, by its WorkerId.
  struct Slot {
    bool alive = false;
    std::string routing;  // ZeroMQ routing id of its connection
    std::string name;
    std::string peer_endpoint;
    int fd = -1;         // its connection's socket, to match a disconnect
    bool local = false;  // connected over loopback: its pid means something here
    std::uint32_t pid = 0;
    double last_heard_s = 0;
  };
  struct StageRecord {
    WorkerId worker = 0;
    ContextId context = 0;
    Tier tier = Tier::disk;
    Source source;
  };
  struct AttemptRecord {
    WorkerId worker = 0;
    TaskSpec task;
  };

  Impl(RunPlan& p, EngineConfig engine_config, ManagerOptions o)
      : plan(p),
        options(std::move(o)),
        auth(zmq, {options.keys.workers.worker.public_z85}, "manager"),
        router(zmq, zmq::socket_type::router),
        monitor(zmq, zmq::socket_type::pair),
        started(Clock::now()),
        workload(plan.workload()),
        config(std::move(engine_config)) {
    std::random_device rd;
    session = (std::uint64_t{rd()} << 32) | rd();
    router.set(zmq::sockopt::linger, 1000);
    router.set(zmq::sockopt::router_mandatory, 1);
    router.set(zmq::sockopt::sndhwm, 0);
    router.set(zmq::sockopt::rcvhwm, 0);
    make_curve_server(router, options.keys.manager);
    if (zmq_socket_monitor(router.handle(), kMonitorEndpoint,
                           ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0) {
      throw std::runtime_error("cannot monitor the manager's socket");
    }
    monitor.connect(kMonitorEndpoint);
    try {
      router.bind("tcp://" + options.listen);
    } catch (const zmq::error_t& e) {
      throw InputError(fmt::format("cannot listen on {}: {}", options.listen, e.what()));
    }
    endpoint = router.get(zmq::sockopt::last_endpoint);
    Cluster& cluster = *this;
    if (options.record_decisions) command_log = std::make_unique<CommandLog>(cluster);
    engine = std::make_unique<Engine>(command_log ? *command_log : cluster, workload, config);
    events = engine.get();
    if (options.record_decisions) {
      event_log = std::make_unique<EventLog>(*this, *engine);
      events = event_log.get();
    }
  }

  double clock_s() const { return std::chrono::duration<double>(Clock::now() - started).count(); }

  // ---- sending ----------------------------------------------------------------------------

  // Returns false if the peer is gone.
  bool send_raw(const std::string& routing, const std::string& payload) {
    try {
      router.send(zmq::buffer(routing), zmq::send_flags::sndmore);
      router.send(zmq::buffer(payload), zmq::send_flags::dontwait);
      return true;
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH || e.num() == EAGAIN) return false;
      throw;
    }
  }

  // A worker already lost (its loss not yet delivered to the core) gets nothing more.
  void send_to(WorkerId w, const Message& m) {
    if (slots[w].alive && !send_raw(slots[w].routing, encode(m))) {
      lose(w, "its connection is gone");
    }
  }

  // ---- events -----------------------------------------------------------------------------

  // Events wait here until the loop delivers them, one at a time: never inside a command.
  void post(std::function<void(ClusterEvents&)> event) { queue.push_back(std::move(event)); }

  void pump() {
    while (!queue.empty()) {
      auto event = std::move(queue.front());
      queue.pop_front();
      now_s = clock_s();
      event(*events);
    }
  }

  // The worker is gone: forgets what it was doing and tells the core, then fails the stages that
  // were reading from it.
  void lose(WorkerId w, const std::string& why) {
    Slot& s = slots[w];
    if (!s.alive) return;
    s.alive = false;
    by_routing.erase(s.routing);
    ++counters.losses;
    spdlog::info("worker {} ({}) lost: {}", w, s.name, why);
    std::erase_if(attempts, [&](const auto& a) { return a.second.worker == w; });
    std::erase_if(stages, [&](const auto& st) { return st.second.worker == w; });
    post([w](ClusterEvents& e) { e.worker_lost(w); });
    for (auto it = stages.begin(); it != stages.end();) {
      const StageRecord& r = it->second;
      if (r.source.kind == SourceKind::peer && r.source.peer == w) {
        send_raw(slots[r.worker].routing, encode(AbortStage{it->first}));
        post([r](ClusterEvents& e) {
          e.stage_failed(r.worker, r.context, r.tier, "the peer it read from was lost");
        });
        it = stages.erase(it);
      } else {
        ++it;
      }
    }
    // In case it is still there (silent, or talking nonsense): it must start over.
    send_raw(s.routing, encode(Reset{why}));
  }

  // ---- Cluster: the core's commands ---------------------------------------------------------

  double now() const override { return now_s; }

  // A command for a worker whose loss the core has not heard of yet is dropped: the loss, already
  // queued, ends everything on it.
  void stage_context(WorkerId w, ContextId c, Tier tier, Source source) override {
    if (!slots[w].alive) return;
    Stage m;
    m.stage = next_stage++;
    m.context = c;
    m.tier = tier;
    m.info = plan.info(c);
    if (source.kind == SourceKind::lower_tier) {
      m.source = StageSource::lower_tier;
    } else if (source.kind == SourceKind::shared_storage) {
      m.source = plan.job().contexts[c].origin == ContextOrigin::manager ? StageSource::manager
                                                                         : StageSource::shared_path;
    } else {
      m.source = StageSource::peer;
      m.peer_endpoint = slots[source.peer].peer_endpoint;
      if (!slots[source.peer].alive) {
        post([=](ClusterEvents& e) { e.stage_failed(w, c, tier, "the peer is gone"); });
        return;
      }
    }
    stages[m.stage] = {w, c, tier, source};
    send_to(w, m);
  }

  void evict_context(WorkerId w, ContextId c, Tier tier) override { send_to(w, Evict{c, tier}); }

  void start_task(WorkerId w, const TaskSpec& task) override {
    if (!slots[w].alive) return;
    attempts[task.attempt] = {w, task};
    send_to(w, Task{task.attempt, task.context, plan.inputs(task.context, task.first, task.count)});
  }

  void cancel_task(WorkerId w, AttemptId attempt) override {
    attempts.erase(attempt);
    send_to(w, Cancel{attempt});
  }

  // ---- workers' messages --------------------------------------------------------------------

  void malformed(const std::string& routing, const std::string& what) {
    ++counters.malformed_messages;
    int n = ++malformed_by_routing[routing];
    auto it = by_routing.find(routing);
    std::string who = it == by_routing.end() ? "a connection" : "worker " + slots[it->second].name;
    spdlog::warn("dropped a malformed message from {}: {}", who, what);
    if (n < options.max_malformed) return;
    spdlog::warn("dropping {} after {} malformed messages", who, n);
    ++counters.dropped_connections;
    blocked.insert(routing);
    if (it != by_routing.end()) lose(it->second, "it sent malformed messages");
  }

  void on_message(const std::string& routing, const zmq::message_t& body) {
    if (blocked.count(routing)) return;
    Message m;
    try {
      m = decode(body.to_string_view());
    } catch (const ProtocolError& e) {
      malformed(routing, e.what());
      return;
    }
    if (std::holds_alternative<Welcome>(m) || std::holds_alternative<Stage>(m) ||
        std::holds_alternative<AbortStage>(m) || std::holds_alternative<Evict>(m) ||
        std::holds_alternative<Task>(m) || std::holds_alternative<Cancel>(m) ||
        std::holds_alternative<Reset>(m) || std::holds_alternative<Shutdown>(m) ||
        std::holds_alternative<Chunk>(m)) {
      return malformed(routing, fmt::format("a worker does not send {}", message_name(m)));
    }
    if (auto* f = std::get_if<Fetch>(&m)) return serve(routing, *f);
    if (auto* h = std::get_if<Hello>(&m)) return on_hello(routing, *h, body);
    auto it = by_routing.find(routing);
    if (it == by_routing.end()) {
      if (!std::holds_alternative<Bye>(m)) send_raw(routing, encode(Reset{"unknown connection"}));
      return;
    }
    WorkerId w = it->second;
    slots[w].last_heard_s = clock_s();
    std::visit(
        [&](const auto& msg) {
          using T = std::decay_t<decltype(msg)>;
          if constexpr (std::is_same_v<T, Heartbeat>) {
          } else if constexpr (std::is_same_v<T, Notice>) {
            double grace = std::isfinite(msg.grace_s) ? std::max(0.0, msg.grace_s) : 0.0;
            spdlog::info("worker {} ({}) will leave within {:.1f} s", w, slots[w].name, grace);
            post([w, grace](ClusterEvents& e) { e.preemption_notice(w, grace); });
          } else if constexpr (std::is_same_v<T, Bye>) {
            lose(w, "it left");
          } else if constexpr (std::is_same_v<T, StageReady> || std::is_same_v<T, StageFailed>) {
            on_stage_end(w, msg);
          } else if constexpr (std::is_same_v<T, TaskFinished>) {
            on_finished(w, msg);
          } else if constexpr (std::is_same_v<T, TaskFailed>) {
            on_failed(w, msg.attempt, msg.reason);
          }
        },
        m);
  }

  void on_hello(const std::string& routing, const Hello& h, const zmq::message_t& body) {
    if (h.version != kProtocolVersion) {
      spdlog::warn("refused worker {}: protocol version {}, this manager speaks {}", h.name,
                   h.version, kProtocolVersion);
      send_raw(routing, encode(Shutdown{}));
      return;
    }
    if (!is_word(h.name) || !is_word(h.gpu_type) || !usable_size(h.gpu_memory_bytes) ||
        !usable_size(h.host_memory_bytes) || !usable_size(h.disk_bytes) ||
        !(std::isfinite(h.speed) && h.speed > 0) || h.peer_endpoint.rfind("tcp://", 0) != 0) {
      return malformed(routing, "a hello with a bad name, GPU type, size or endpoint");
    }
    if (auto it = by_routing.find(routing); it != by_routing.end()) {
      send_raw(routing, encode(Welcome{it->second, session, options.heartbeat_s}));  // repeated
      return;
    }
    int fd = zmq_msg_get(body.handle(), ZMQ_SRCFD);
    for (WorkerId other = 0; other < slots.size(); ++other) {
      const Slot& s = slots[other];
      if (!s.alive) continue;
      if (s.name == h.name) lose(other, "it joined again on a new connection");
      if (fd >= 0 && s.fd == fd) lose(other, "its connection was closed");  // socket reused
    }
    auto [named, fresh] = by_name.try_emplace(h.name, static_cast<WorkerId>(slots.size()));
    WorkerId w = named->second;
    if (fresh) slots.emplace_back();
    Slot& s = slots[w];
    const char* address = zmq_msg_gets(body.handle(), "Peer-Address");
    bool local = address && os::is_loopback(address);
    s = Slot{true, routing, h.name, h.peer_endpoint, fd, local, h.pid, clock_s()};
    by_routing[routing] = w;
    ++counters.joins;
    spdlog::info("worker {} ({}) joined: {}, {:.1f} GB device memory", w, h.name, h.gpu_type,
                 h.gpu_memory_bytes / 1e9);
    if (factory) factory->worker_joined(h.name);
    send_raw(routing, encode(Welcome{w, session, options.heartbeat_s}));
    WorkerSpec spec;
    spec.id = w;
    spec.name = h.name;
    spec.gpu_type = h.gpu_type;
    spec.gpu_memory_bytes = h.gpu_memory_bytes;
    spec.host_memory_bytes = h.host_memory_bytes;
    spec.disk_bytes = h.disk_bytes;
    spec.speed = h.speed;
    post([spec](ClusterEvents& e) { e.worker_joined(spec); });
  }

  template <class M>
  void on_stage_end(WorkerId w, const M& msg) {
    auto it = stages.find(msg.stage);
    if (it == stages.end() || it->second.worker != w) return;  // aborted, or not this worker's
    StageRecord r = it->second;
    stages.erase(it);
    if constexpr (std::is_same_v<M, StageReady>) {
      post([r](ClusterEvents& e) { e.context_ready(r.worker, r.context, r.tier); });
    } else {
      std::string reason = msg.reason;
      post([r, reason](ClusterEvents& e) { e.stage_failed(r.worker, r.context, r.tier, reason); });
    }
  }

  void on_finished(WorkerId w, const TaskFinished& m) {
    auto it = attempts.find(m.attempt);
    if (it == attempts.end() || it->second.worker != w) return;  // cancelled or superseded
    const WorkerState& ws = engine->state().worker(w);
    if (!ws.alive || ws.attempt != m.attempt) {
      spdlog::error("worker {} finished attempt {}, which the core does not run", w, m.attempt);
      attempts.erase(it);
      return;
    }
    TaskSpec t = it->second.task;
    if (m.results.size() != t.count) {
      return on_failed(w, m.attempt,
                       fmt::format("{} results for {} inferences", m.results.size(), t.count));
    }
    double bytes = 0;
    for (const std::string& r : m.results) {
      if (!nlohmann::json::accept(r)) return on_failed(w, m.attempt, "a result is not JSON");
      bytes += static_cast<double>(r.size());
    }
    attempts.erase(it);
    // Committed before the core counts the task done: a manager killed after this line finds the
    // results on restart, one killed before it reruns the task.
    plan.store().record_task(t.task, t.context, plan.rows_of(t.context, t.first, t.count),
                             m.results, slots[w].name);
    AttemptId attempt = m.attempt;
    post([w, attempt, bytes](ClusterEvents& e) { e.task_finished(w, attempt, bytes); });
  }

  void on_failed(WorkerId w, AttemptId attempt, const std::string& reason) {
    auto it = attempts.find(attempt);
    if (it == attempts.end() || it->second.worker != w) return;
    TaskSpec t = it->second.task;
    attempts.erase(it);
    spdlog::warn("task {} failed on worker {} ({}): {}", t.task, w, slots[w].name, reason);
    post([this, w, attempt, reason, t](ClusterEvents& e) {
      e.task_failed(w, attempt, reason);
      if (engine->state().task(t.task).state == TaskState::failed) {
        plan.store().record_failed(t.context, plan.rows_of(t.context, t.first, t.count), reason);
      }
    });
  }

  void serve(const std::string& routing, const Fetch& f) {
    Chunk reply =
        serve_fetch(f,
                    [&](ContextId c, std::uint64_t offset, std::uint32_t length,
                        std::string& out) -> std::string {
                      if (c >= plan.context_count()) return fmt::format("no context {}", c);
                      const ContextInfo& info = plan.info(c);
                      if (offset >= info.size_bytes || length > info.size_bytes - offset) {
                        return fmt::format("range {}+{} is outside {}", offset, length, info.name);
                      }
                      if (!read_range(plan.job().contexts[c].model, offset, length, out)) {
                        return fmt::format("cannot read {}", info.name);
                      }
                      return "";
                    });
    send_raw(routing, encode(reply));
  }

  void on_monitor_event() {
    zmq::message_t event, address;
    while (monitor.recv(event, zmq::recv_flags::dontwait)) {
      if (monitor.get(zmq::sockopt::rcvmore)) (void)monitor.recv(address);
      if (event.size() < 6) continue;
      std::uint16_t id = 0;
      std::uint32_t value = 0;
      std::memcpy(&id, event.data(), 2);
      std::memcpy(&value, static_cast<const char*>(event.data()) + 2, 4);
      if (id == ZMQ_EVENT_DISCONNECTED) {
        for (WorkerId w = 0; w < slots.size(); ++w) {
          if (slots[w].alive && slots[w].fd == static_cast<int>(value)) {
            lose(w, "its connection closed");
          }
        }
      } else {
        ++counters.refused_connections;
        spdlog::warn(
            "refused a connection: its handshake failed (not CURVE, an unknown key or a wrong "
            "manager key)");
      }
    }
  }

  // What the factory sizes its pool by.
  PoolStatus pool_status() const {
    const SchedulerState& state = engine->state();
    PoolStatus pool;
    pool.pending_inferences = state.pending_inferences();
    for (ContextId c = 0; c < state.context_count(); ++c) {
      const ContextState& cs = state.context(c);
      pool.unfinished_inferences += cs.total - cs.done - cs.failed;
    }
    for (WorkerId w = 0; w < state.worker_slots(); ++w) {
      const WorkerState& ws = state.worker(w);
      pool.live_workers += ws.alive;
      pool.busy_workers += ws.alive && ws.task != kNoTask;
    }
    return pool;
  }

  void check_liveness() {
    double now = clock_s();
    for (WorkerId w = 0; w < slots.size(); ++w) {
      if (slots[w].alive && now - slots[w].last_heard_s > options.heartbeat_timeout_s) {
        lose(w, fmt::format("silent for {:.1f} s", now - slots[w].last_heard_s));
      }
    }
    if (!factory) return;
    for (pid_t pid : factory->tick(pool_status())) {
      for (WorkerId w = 0; w < slots.size(); ++w) {
        if (slots[w].alive && slots[w].local && slots[w].pid == static_cast<std::uint32_t>(pid)) {
          lose(w, "its process ended");
        }
      }
    }
  }

  int live_workers() const {
    int n = 0;
    for (const Slot& s : slots)
      n += s.alive;
    return n;
  }

  RunEnd run(const std::atomic<bool>& stop, WorkerFactory* run_factory) {
    factory = run_factory;
    if (factory) factory->start(address());
    double last_beat = 0, last_check = 0, last_progress = 0;
    RunEnd end = RunEnd::finished;
    while (!engine->finished()) {
      if (stop.load()) {
        end = RunEnd::stopped;
        break;
      }
      if (factory && factory->exhausted() && live_workers() == 0) {
        end = RunEnd::no_workers;
        break;
      }
      zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                                 {auth.socket().handle(), 0, ZMQ_POLLIN, 0},
                                 {monitor.handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 3, std::chrono::milliseconds(20));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
      }
      while (auth.handle_one()) {
      }
      on_monitor_event();
      pump();
      zmq::message_t from, body;
      for (int i = 0; i < 4096 && router.recv(from, zmq::recv_flags::dontwait); ++i) {
        if (!router.get(zmq::sockopt::rcvmore)) continue;
        (void)router.recv(body);
        if (router.get(zmq::sockopt::rcvmore)) {  // extra frames: not our protocol
          while (router.get(zmq::sockopt::rcvmore))
            (void)router.recv(body);
          malformed(from.to_string(), "a message of several frames");
        } else {
          on_message(from.to_string(), body);
        }
        pump();
      }
      double now = clock_s();
      if (now - last_beat >= options.heartbeat_s) {
        last_beat = now;
        for (WorkerId w = 0; w < slots.size(); ++w) {
          if (slots[w].alive) send_to(w, Heartbeat{});
        }
      }
      if (now - last_check >= 0.05) {
        last_check = now;
        check_liveness();
      }
      if (options.progress_s > 0 && now - last_progress >= options.progress_s) {
        last_progress = now;
        const EngineStats& s = engine->stats();
        spdlog::info("{} of {} inferences done, {} workers", s.inferences_done,
                     workload.total_inferences(), live_workers());
      }
      pump();
    }
    for (WorkerId w = 0; w < slots.size(); ++w) {
      if (slots[w].alive) send_raw(slots[w].routing, encode(Shutdown{}));
    }
    if (factory) factory->stop(3.0);
    factory = nullptr;
    return end;
  }

  std::string address() const { return endpoint.substr(endpoint.find("//") + 2); }

  RunPlan& plan;
  ManagerOptions options;
  zmq::context_t zmq;
  Authenticator auth;
  zmq::socket_t router;
  zmq::socket_t monitor;
  std::string endpoint;
  Clock::time_point started;
  double now_s = 0;
  std::uint64_t session = 0;
  Workload workload;
  EngineConfig config;
  std::unique_ptr<CommandLog> command_log;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<EventLog> event_log;
  ClusterEvents* events = nullptr;
  std::deque<std::function<void(ClusterEvents&)>> queue;
  std::vector<Slot> slots;
  std::unordered_map<std::string, WorkerId> by_routing;
  std::map<std::string, WorkerId> by_name;
  std::unordered_map<std::string, int> malformed_by_routing;
  std::set<std::string> blocked;
  std::map<std::uint64_t, StageRecord> stages;
  std::uint64_t next_stage = 1;
  std::unordered_map<AttemptId, AttemptRecord> attempts;
  Counters counters;
  WorkerFactory* factory = nullptr;  // during run()
};

Manager::Manager(RunPlan& plan, EngineConfig config, ManagerOptions options)
    : impl_(std::make_unique<Impl>(plan, std::move(config), std::move(options))) {}

Manager::~Manager() = default;

const std::string& Manager::endpoint() const {
  return impl_->endpoint;
}

std::string Manager::address() const {
  return impl_->address();
}

RunEnd Manager::run(const std::atomic<bool>& stop, WorkerFactory* factory) {
  return impl_->run(stop, factory);
}

const EngineStats& Manager::stats() const {
  return impl_->engine->stats();
}

const Workload& Manager::workload() const {
  return impl_->workload;
}

const EngineConfig& Manager::engine_config() const {
  return impl_->config;
}

std::vector<std::string> Manager::event_lines() const {
  return impl_->event_log ? impl_->event_log->lines() : std::vector<std::string>{};
}

std::vector<std::string> Manager::command_lines() const {
  return impl_->command_log ? impl_->command_log->lines() : std::vector<std::string>{};
}

const Manager::Counters& Manager::counters() const {
  return impl_->counters;
}

}  // namespace hearth::real
