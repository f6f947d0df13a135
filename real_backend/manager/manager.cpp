// The manager's loop: the socket workers dial, their handshakes and messages, liveness, the
// factory's ticks and the delivery of the core's events. What the messages mean for the core is
// WireCluster's (wire_cluster.hpp); who is connected is WorkerRegistry's (worker_registry.hpp).

#include "real_backend/manager/manager.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <unordered_map>

#include "os/atomic_file.hpp"
#include "os/network.hpp"
#include "policy/errors.hpp"
#include "policy/wired_engine.hpp"
#include "real_backend/factory/worker_factory.hpp"
#include "real_backend/manager/run_monitor.hpp"
#include "real_backend/manager/run_plan.hpp"
#include "real_backend/manager/wire_cluster.hpp"
#include "real_backend/manager/worker_registry.hpp"
#include "real_backend/wire/bulk.hpp"
#include "real_backend/wire/key_registry.hpp"
#include "real_backend/wire/protocol.hpp"
#include "real_backend/wire/transfer.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

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

void clip(std::string& reason) {
  constexpr std::size_t kMaxReason = 1000;
  if (reason.size() > kMaxReason) reason = reason.substr(0, kMaxReason) + " [...]";
}

bool usable_size(double v) {
  return std::isfinite(v) && v >= 0;
}

// What only the manager may send: a worker that sends one of these is talking nonsense.
bool manager_message(const Message& m) {
  return std::holds_alternative<Welcome>(m) || std::holds_alternative<Stage>(m) ||
         std::holds_alternative<AbortStage>(m) || std::holds_alternative<Evict>(m) ||
         std::holds_alternative<Task>(m) || std::holds_alternative<Cancel>(m) ||
         std::holds_alternative<Reset>(m) || std::holds_alternative<Shutdown>(m) ||
         std::holds_alternative<Chunk>(m) || std::holds_alternative<BulkOpened>(m) ||
         std::holds_alternative<AdmitTransfer>(m);
}

// What a worker announced, as the core's WorkerSpec (a worker does not announce bandwidths: they
// keep WorkerSpec's defaults). Its announced speed is not believed: every worker starts at 1, and
// the core learns how fast its GPU type is from the tasks it finishes.
WorkerSpec spec_of(WorkerId w, const Hello& h) {
  return {.id = w,
          .name = h.name,
          .gpu_type = h.gpu_type,
          .gpu_memory_bytes = h.gpu_memory_bytes,
          .host_memory_bytes = h.host_memory_bytes,
          .disk_bytes = h.disk_bytes,
          .speed = 1.0};
}

std::string gigabytes(double bytes) {
  return bytes >= 1e9 ? fmt::format("{:.2f} GB", bytes / 1e9)
                      : fmt::format("{:.1f} MB", bytes / 1e6);
}

RunMonitorSetup monitor_setup(RunPlan& plan, const EngineConfig& config, const ManagerOptions& o) {
  RunMonitorSetup s;
  s.job = plan.job().file.string();
  s.state_dir = plan.job().state_dir.string();
  s.run = static_cast<std::uint64_t>(plan.store().run());
  s.total = plan.rows();
  s.done_before = plan.done_before();
  for (ContextId c = 0; c < plan.context_count(); ++c)
    s.contexts.emplace_back(plan.info(c).name, static_cast<double>(plan.info(c).size_bytes));
  s.policy = config.policies.placement;
  s.events_path = o.events_path;
  return s;
}

// Who may connect: the keys of the registry, or the shared worker key alone if there is none.
// A key issued since the registry was last read is admitted: it is read again first.
Authenticator::Refusal admitted_keys(const ManagerKeys& keys, KeyRing& ring) {
  if (!keys.registry.empty()) {
    return [&ring](const std::string& key) {
      ring.reload_if_changed();
      return ring.refusal(key);
    };
  }
  return admit_only({keys.workers.worker.public_z85});
}

// The key a message's connection authenticated with ("" if none).
std::string key_of(const zmq::message_t& body) {
  const char* key = zmq_msg_gets(body.handle(), "User-Id");
  return key ? key : "";
}

Wiring wiring_of(const ManagerOptions& o) {
  Wiring w;
  w.check_contract = o.check_contract;
  w.record = o.record_decisions;
  return w;
}

}  // namespace

struct Manager::Impl {
  Impl(RunPlan& p, EngineConfig engine_config, ManagerOptions o)
      : plan(p),
        options(std::move(o)),
        key_ring(options.keys.registry),
        auth(zmq, admitted_keys(options.keys, key_ring), "manager"),
        router(zmq, zmq::socket_type::router),
        monitor(zmq, zmq::socket_type::pair),
        started(Clock::now()),
        workload(plan.workload()),
        config(std::move(engine_config)),
        run_monitor(monitor_setup(plan, config, options), [this] { return clock_s(); }),
        cluster(
            plan, workers, run_monitor, [this](WorkerId w, const Message& m) { send_to(w, m); },
            [this] { return clock_s(); }, hooks()),
        core(cluster, workload, config, wiring_of(options)) {
    cluster.attach(core.engine());
    cluster.set_verify(plan.job().verify, plan.job().verify_tolerance);
    remaining = workload.inferences;
    // A context an earlier run finished rows of works: its failures now are the workers'.
    for (ContextId c = 0; c < plan.context_count(); ++c) {
      if (plan.done_before(c) > 0) finished_by[c].insert(kEarlierRun);
    }
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
    try {
      bulk = std::make_unique<BulkServer>(
          bind_host_of(options.listen),
          BulkSource{{},
                     [this](ContextId c, std::uint64_t offset, std::uint32_t length,
                            std::string& out) { return read_context(c, offset, length, out); }},
          "manager");
    } catch (const TransferError& e) {
      throw InputError(fmt::format("bulk transfers: {}", e.what()));
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
    if (workers[w].alive && !send_raw(workers[w].routing, encode(m))) {
      lose(w, "its connection is gone");
    }
  }

  // The worker is gone: the core hears of it, and the worker, in case it is still there (silent,
  // or talking nonsense), must start over.
  void lose(WorkerId w, const std::string& why) {
    if (!workers.lose(w)) return;
    if (factory) factory->worker_left(workers[w].name);
    ++counters.losses;
    spdlog::info("worker {} ({}) lost: {}", w, workers[w].name, why);
    run_monitor.worker_lost(w, why);
    cluster.lost(w);
    send_raw(workers[w].routing, encode(Reset{why}));
  }

  // ---- revoked keys --------------------------------------------------------------------------
  // A worker whose key is revoked gets nothing more and is told to exit; its connection is
  // ignored (a new one is refused by the authenticator).

  void drop_revoked(WorkerId w) {
    const WorkerSlot& slot = workers[w];
    blocked.insert(slot.routing);
    if (!workers.lose(w)) return;
    if (factory) factory->worker_left(slot.name);
    ++counters.revoked;
    ++counters.losses;
    std::string why = fmt::format("its key ({}) was revoked", key_ring.label(slot.key));
    spdlog::warn("worker {} ({}) dropped: {}", w, slot.name, why);
    run_monitor.worker_lost(w, why);
    cluster.lost(w);
    send_raw(slot.routing, encode(Shutdown{}));
  }

  // Reads the registry again if it changed, and drops the workers whose keys it revokes.
  void check_keys() {
    if (options.keys.registry.empty()) return;
    key_ring.reload_if_changed();
    if (key_ring.generation() == keys_checked) return;
    keys_checked = key_ring.generation();
    for (WorkerId w : workers.live_ids()) {
      if (key_ring.revoked(workers[w].key)) drop_revoked(w);
    }
  }

  // ---- bad workers ---------------------------------------------------------------------------
  // A quarantined worker gets no more work: the core hears of it as lost, its connection is
  // ignored from then on, and its name may not join again in this run. It is told to exit with
  // quarantine_exit, else left idle (an operator may want to look at it).

  void quarantine(WorkerId w, const std::string& why) {
    if (!workers[w].alive) {
      quarantined_names.insert(workers[w].name);
      return;
    }
    const std::string name = workers[w].name;
    spdlog::error("worker {} ({}) quarantined: {}", w, name, why);
    ++counters.quarantines;
    quarantined_names.insert(name);
    // A key of its own is the worker; the shared worker.key is every worker's.
    if (workers[w].key != options.keys.workers.worker.public_z85)
      quarantined_keys.insert(workers[w].key);
    workers.lose(w);
    if (factory) factory->worker_left(name);
    run_monitor.worker_quarantined(w, why);
    cluster.lost(w);
    blocked.insert(workers[w].routing);
    send_raw(workers[w].routing,
             options.quarantine_exit ? encode(Shutdown{}) : encode(Reset{"quarantined: " + why}));
  }

  struct Health {
    int in_a_row = 0;  // failed tasks since its last finished one
    int finished = 0;
    int failed = 0;
    std::set<ContextId> streak;  // the contexts of those failed tasks
    std::string last_reason;
  };

  // A worker whose tasks keep failing while others' do not is quarantined: quarantine_after
  // failures in a row once another worker (or an earlier run) has finished a task of one of
  // those contexts (until then it may be the context that is broken, not the worker: its tasks
  // are given up, and a context whose tasks fail everywhere ends the run), or, after 8 tasks,
  // more than half failed while the rest of the pool fails under a sixth as often. Results that
  // no hearth worker sends, whatever its model, quarantine at once, even in a fresh job.
  void task_outcome(WorkerId w, ContextId c, std::uint64_t inferences, WireCluster::Outcome outcome,
                    const std::string& reason) {
    if (w >= health.size()) health.resize(w + 1);
    Health& h = health[w];
    if (outcome == WireCluster::Outcome::malformed) {
      return quarantine(w, reason);  // "its results are malformed: ..."
    }
    if (outcome == WireCluster::Outcome::finished) {
      ++h.finished;
      h.in_a_row = 0;
      h.streak.clear();
      finished_by[c].insert(w);
      if (c < remaining.size()) remaining[c] -= std::min(remaining[c], inferences);
      // Workers that failed tasks of this context in a row are now to blame.
      for (WorkerId o = 0; o < health.size(); ++o) {
        if (o != w && health[o].in_a_row >= plan.job().quarantine_after &&
            health[o].streak.count(c) && workers[o].alive) {
          quarantine(o, fmt::format("{} failed tasks in a row while others finished theirs, the "
                                    "last: {}",
                                    health[o].in_a_row, health[o].last_reason));
        }
      }
      return;
    }
    ++h.failed;
    ++h.in_a_row;
    h.streak.insert(c);
    h.last_reason = reason;
    if (h.in_a_row >= plan.job().quarantine_after) {
      for (ContextId s : h.streak) {
        const std::set<WorkerId>& done = finished_by[s];
        if (std::any_of(done.begin(), done.end(), [&](WorkerId o) { return o != w; })) {
          return quarantine(w, fmt::format("{} failed tasks in a row while others finished "
                                           "theirs, the last: {}",
                                           h.in_a_row, reason));
        }
      }
    }
    int mine = h.finished + h.failed, others_finished = 0, others_failed = 0;
    for (WorkerId o = 0; o < health.size(); ++o) {
      if (o == w) continue;
      others_finished += health[o].finished;
      others_failed += health[o].failed;
    }
    double my_rate = static_cast<double>(h.failed) / mine;
    int others = others_finished + others_failed;
    double pool_rate = others > 0 ? static_cast<double>(others_failed) / others : 0;
    if (mine >= 8 && others >= 8 && my_rate > 0.5 && pool_rate < my_rate / 6) {
      quarantine(w, fmt::format("{} of its {} tasks failed, against {:.0f}% in the rest of the "
                                "pool; the last: {}",
                                h.failed, mine, 100 * pool_rate, reason));
    }
  }

  // Tasks of a context given up on several workers while none of its tasks ever finished: the
  // context fails everywhere, and the run ends rather than give up every row.
  void given_up(ContextId c, const std::string& reason) {
    ++given_up_by[c];
    if (given_up_by[c] >= 2 && finished_by[c].empty()) {
      fail(
          fmt::format("the tasks of context {} fail on every worker ({} given up after {} tries, "
                      "none finished); the last error: {}",
                      plan.info(c).name, given_up_by[c], config.max_task_failures, reason));
    }
  }

  // Verification caught `w` returning wrong results: it is quarantined and everything it did in
  // this run is discarded (a later run redoes it).
  void liar(WorkerId w, const std::string& why) {
    if (quarantined_names.count(workers[w].name)) return;  // caught already
    std::uint64_t rows = plan.store().discard_worker(
        workers[w].name, fmt::format("discarded: worker {} was caught returning wrong results "
                                     "({}); run the job again to redo this row",
                                     workers[w].name, why));
    discarded += rows;
    spdlog::error(
        "worker {} ({}) returned wrong results: {}; its {} results of this run are "
        "discarded",
        w, workers[w].name, why, rows);
    quarantine(w, "wrong results: " + why);
  }

  // ---- runs that cannot go on ------------------------------------------------------------------

  void fail(std::string why) {
    if (!failure.empty()) return;
    spdlog::error("{}", why);
    failure = std::move(why);
  }

  // Who could not load a context, and whether any worker did.
  struct LoadTrouble {
    bool loaded = false;
    std::map<WorkerId, std::string> failed;  // worker, its message
    std::set<std::string> gpu_types;
  };

  // A context that failed to load on workers of two GPU types, or on two workers and every live
  // worker that tried, with no worker loading it, will not load anywhere: the run stops, with the
  // workers' own messages. A context the manager itself cannot serve stops it at once. Failures
  // reading from a peer say nothing about the context.
  void stage_failed(WorkerId w, ContextId c, Tier tier, const Source& source,
                    const std::string& reason) {
    if (source.kind == SourceKind::peer) return;
    const std::string& name = plan.info(c).name;
    if (std::lock_guard lock(unservable_mutex); unservable.count(c)) {
      return fail(fmt::format("context {} cannot be served by the manager; worker {} said: {}",
                              name, workers[w].name, reason));
    }
    LoadTrouble& t = trouble[c];
    if (t.loaded) return;
    t.failed[w] = fmt::format("{} ({}, stage to {}): {}", workers[w].name,
                              specs.count(w) ? specs[w].gpu_type : "?", to_string(tier), reason);
    if (specs.count(w)) t.gpu_types.insert(specs[w].gpu_type);
    bool every_live_failed = true;
    for (WorkerId o : workers.live_ids())
      every_live_failed = every_live_failed && t.failed.count(o);
    if (t.gpu_types.size() >= 2 || (t.failed.size() >= 2 && every_live_failed) ||
        (every_live_failed && workers.live() == 1 && t.failed.size() == 1 &&
         ++single_worker_failures[c] >= config.max_stage_failures)) {
      std::string messages;
      for (const auto& [o, m] : t.failed)
        messages += "\n  " + m;
      fail(
          fmt::format("context {} cannot be loaded: it failed on {} worker{} of {} GPU type{} "
                      "and loaded on none:{}",
                      name, t.failed.size(), t.failed.size() == 1 ? "" : "s", t.gpu_types.size(),
                      t.gpu_types.size() == 1 ? "" : "s", messages));
    }
  }

  void stage_ready(WorkerId, ContextId c, Tier tier) {
    if (tier == Tier::gpu) trouble[c].loaded = true;
  }

  // A context with work left that no live worker has room for (on disk, in host memory and on its
  // device) is reported at once; if no such worker joins within wait_for_capacity_s, the run
  // fails.
  void check_capacity() {
    if (workers.live() == 0) {
      short_since = -1;
      return;
    }
    std::string report;
    for (ContextId c = 0; c < plan.context_count(); ++c) {
      if (remaining[c] == 0) continue;
      double size = static_cast<double>(plan.info(c).size_bytes);
      double disk = 0, host = 0, gpu = 0;
      bool fits = false;
      for (WorkerId w : workers.live_ids()) {
        const WorkerSpec& s = specs[w];
        fits = fits ||
               (s.disk_bytes >= size && s.host_memory_bytes >= size && s.gpu_memory_bytes >= size);
        disk = std::max(disk, s.disk_bytes);
        host = std::max(host, s.host_memory_bytes);
        gpu = std::max(gpu, s.gpu_memory_bytes);
      }
      if (fits) continue;
      report = fmt::format(
          "context {} needs {} on disk, in host memory and in device memory; of the {} joined "
          "workers the largest have {} of disk, {} of host memory and {} of device memory",
          plan.info(c).name, gigabytes(size), workers.live(), gigabytes(disk), gigabytes(host),
          gigabytes(gpu));
      break;
    }
    double now = clock_s();
    if (report.empty()) {
      if (short_since >= 0) spdlog::info("a worker with room for every context has joined");
      short_since = -1;
      return;
    }
    if (short_since < 0) {
      short_since = now;
      spdlog::error(
          "{}; waiting up to {:.0f} s for a worker that can hold it "
          "(--wait-for-capacity)",
          report, options.wait_for_capacity_s);
      run_monitor.error(kNoWorker, report);
    }
    if (now - short_since >= options.wait_for_capacity_s) {
      fail(fmt::format("{}; no worker with room joined within {:.0f} s", report,
                       options.wait_for_capacity_s));
    }
  }

  // ---- status --------------------------------------------------------------------------------

  RunTotals totals() const {
    const EngineStats& st = core.engine().stats();
    RunTotals t;
    t.done = st.inferences_done;
    t.pending = core.engine().pool_status().pending_inferences;
    t.requeued = st.tasks_requeued;
    t.given_up_tasks = st.tasks_failed;
    t.stage_failures = st.stage_failures;
    t.joins = counters.joins;
    t.losses = counters.losses;
    t.refused_connections = counters.refused_connections + auth.refused();
    return t;
  }

  std::string status_text() const {
    return run_monitor.snapshot(totals()).dump(-1, ' ', false,
                                               nlohmann::ordered_json::error_handler_t::replace);
  }

  void publish_status() {
    if (options.status_file.empty() && !options.on_status) return;
    std::string text = status_text();
    if (options.on_status) options.on_status(text);
    if (options.status_file.empty()) return;
    try {
      os::AtomicFile f(options.status_file, options.status_file.string() + ".tmp", 0600);
      f.stream() << text << '\n';
      if (!f.commit() && !status_write_failed) {
        status_write_failed = true;
        spdlog::warn("{}: cannot write the status file", options.status_file.string());
      }
    } catch (const std::exception& e) {
      if (!status_write_failed) spdlog::warn("cannot write the status file: {}", e.what());
      status_write_failed = true;
    }
  }

  WireCluster::Hooks hooks() {
    WireCluster::Hooks h;
    h.task_outcome = [this](WorkerId w, ContextId c, std::uint64_t n, WireCluster::Outcome o,
                            const std::string& reason) { task_outcome(w, c, n, o, reason); };
    h.stage_failed = [this](WorkerId w, ContextId c, Tier tier, const Source& source,
                            const std::string& reason) {
      stage_failed(w, c, tier, source, reason);
    };
    h.stage_ready = [this](WorkerId w, ContextId c, Tier tier) { stage_ready(w, c, tier); };
    h.liar = [this](WorkerId w, const std::string& why) { liar(w, why); };
    h.given_up = [this](ContextId c, const std::string& reason) { given_up(c, reason); };
    return h;
  }

  // ---- workers' messages --------------------------------------------------------------------

  void malformed(const std::string& routing, const std::string& what) {
    ++counters.malformed_messages;
    int n = ++malformed_by_routing[routing];
    WorkerId w = workers.on_connection(routing);
    std::string who = w == kNoWorker ? "a connection" : "worker " + workers[w].name;
    spdlog::warn("dropped a malformed message from {}: {}", who, what);
    if (n < options.max_malformed) return;
    spdlog::warn("dropping {} after {} malformed messages", who, n);
    ++counters.dropped_connections;
    blocked.insert(routing);
    if (w != kNoWorker) lose(w, "it sent malformed messages");
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
    if (manager_message(m)) {
      return malformed(routing, fmt::format("a worker does not send {}", message_name(m)));
    }
    // A connection whose key was revoked since it connected neither joins nor fetches (a joined
    // worker's is dropped by check_keys).
    if (std::holds_alternative<Fetch>(m) || std::holds_alternative<OpenBulk>(m) ||
        std::holds_alternative<Hello>(m)) {
      if (key_ring.revoked(key_of(body))) {
        blocked.insert(routing);
        return;
      }
    }
    if (auto* f = std::get_if<Fetch>(&m)) return serve(routing, *f);
    if (auto* o = std::get_if<OpenBulk>(&m)) {
      send_raw(routing, encode(BulkOpened{o->context, bulk->port(),
                                          bulk->grant(o->context, o->ticket, o->key)}));
      return;
    }
    if (auto* h = std::get_if<Hello>(&m)) return on_hello(routing, *h, body);
    WorkerId w = workers.on_connection(routing);
    if (w == kNoWorker) {
      if (!std::holds_alternative<Bye>(m)) send_raw(routing, encode(Reset{"unknown connection"}));
      return;
    }
    workers.heard(w, liveness_s);
    // A worker's words go to logs, the status and the run's failure message: bounded, whatever
    // it sends.
    if (auto* f = std::get_if<StageFailed>(&m)) clip(f->reason);
    if (auto* f = std::get_if<TaskFailed>(&m)) clip(f->reason);
    std::visit(
        [&](const auto& msg) {
          using T = std::decay_t<decltype(msg)>;
          if constexpr (std::is_same_v<T, Notice>) {
            double grace = std::isfinite(msg.grace_s) ? std::max(0.0, msg.grace_s) : 0.0;
            spdlog::info("worker {} ({}) will leave within {:.1f} s", w, workers[w].name, grace);
            run_monitor.notice(w, grace);
            cluster.notice(w, grace);
          } else if constexpr (std::is_same_v<T, Bye>) {
            lose(w, "it left");
          } else if constexpr (std::is_same_v<T, StageReady> || std::is_same_v<T, StageFailed>) {
            cluster.stage_ended(w, msg);
          } else if constexpr (std::is_same_v<T, TaskFinished>) {
            cluster.task_finished(w, msg);
          } else if constexpr (std::is_same_v<T, TaskFailed>) {
            cluster.task_failed(w, msg.attempt, msg.reason);
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
    if (WorkerId known = workers.on_connection(routing); known != kNoWorker) {
      send_raw(routing, encode(Welcome{known, session, options.heartbeat_s}));  // repeated
      return;
    }
    std::string key = key_of(body);
    if (quarantined_names.count(h.name) || quarantined_keys.count(key)) {
      spdlog::warn("refused worker {}: it (or its key) is quarantined in this run", h.name);
      blocked.insert(routing);
      if (options.quarantine_exit) send_raw(routing, encode(Shutdown{}));
      return;
    }
    int fd = zmq_msg_get(body.handle(), ZMQ_SRCFD);
    for (WorkerId other : workers.replaced_by(h.name, fd)) {
      lose(other, workers[other].name == h.name ? "it joined again on a new connection"
                                                : "its connection was closed");  // socket reused
    }
    const char* address = zmq_msg_gets(body.handle(), "Peer-Address");
    WorkerSlot slot;
    slot.routing = routing;
    slot.name = h.name;
    slot.key = key;
    slot.peer_endpoint = h.peer_endpoint;
    slot.fd = fd;
    slot.local = address && os::is_loopback(address);
    slot.host = address ? address : "";
    slot.pid = h.pid;
    slot.last_heard_s = liveness_s;
    std::string host = slot.host;
    WorkerId w = workers.join(std::move(slot));
    ++counters.joins;
    std::string label = key_ring.label(key);
    spdlog::info("worker {} ({}) joined: {}, {:.1f} GB device memory{}{}", w, h.name, h.gpu_type,
                 h.gpu_memory_bytes / 1e9, label.empty() ? "" : ", key ", label);
    if (factory) factory->worker_joined(h.name);
    send_raw(routing,
             encode(Welcome{w, session, options.heartbeat_s, plan.job().transfer_encryption,
                            static_cast<std::uint32_t>(plan.job().transfer_streams)}));
    specs[w] = spec_of(w, h);
    run_monitor.worker_joined(w, h.name, h.gpu_type, host);
    cluster.joined(specs[w]);
  }

  // The manager is shared storage for contexts whose source is "manager". A directory context is
  // read from the directory, as its pack; if the directory changed since the job started, no
  // copy can be right: the fetch fails, and the manager says why, once per context.
  void serve(const std::string& routing, const Fetch& f) {
    send_raw(routing, encode(serve_fetch(f, [this](ContextId c, std::uint64_t offset,
                                                   std::uint32_t length, std::string& out) {
               return read_context(c, offset, length, out);
             })));
  }

  // Bytes of a context, as the manager serves them (called on the bulk server's threads too).
  std::string read_context(ContextId c, std::uint64_t offset, std::uint32_t length,
                           std::string& out) {
    if (c >= plan.context_count()) return fmt::format("no context {}", c);
    const ContextInfo& info = plan.info(c);
    if (offset >= info.size_bytes || length > info.size_bytes - offset) {
      return fmt::format("range {}+{} is outside {}", offset, length, info.name);
    }
    const fs::path& model = plan.job().contexts[c].model;
    if (!info.files.empty()) {
      std::string e = read_pack_range(model, info.files, offset, length, out);
      if (!e.empty()) {
        std::lock_guard lock(unservable_mutex);
        if (unservable.insert(c).second)
          spdlog::error("context {} cannot be served: {}", info.name, e);
      }
      return e;
    }
    if (!read_range(model, offset, length, out)) return fmt::format("cannot read {}", info.name);
    return "";
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
        for (WorkerId w : workers.on_socket(static_cast<int>(value)))
          lose(w, "its connection closed");
      } else {
        ++counters.refused_connections;
        spdlog::warn(
            "refused a connection: its handshake failed (not CURVE, an unknown key or a wrong "
            "manager key)");
      }
    }
  }

  // ---- liveness ------------------------------------------------------------------------------
  // Silence is measured on a clock that stops while the manager itself does not run: after a
  // stall of its loop (a starved process, a paused VM) heartbeats may still sit in buffers it has
  // not read, so a stall counts for at most kLivenessStepS. And no worker is judged while
  // messages wait unread (for up to a timeout): a manager behind its inbox must not blame the
  // workers.
  static constexpr double kLivenessStepS = 0.25;

  void advance_liveness_clock() {
    double now = clock_s();
    liveness_s += std::min(now - liveness_seen_s, kLivenessStepS);
    liveness_seen_s = now;
  }

  void check_liveness() {
    // Behind its inbox, the manager waits to judge, but not for longer than a timeout: a flood of
    // messages must not keep a silent worker alive.
    if (drained_s == liveness_s || liveness_s - drained_s > options.heartbeat_timeout_s) {
      for (WorkerId w : workers.silent(liveness_s, options.heartbeat_timeout_s)) {
        lose(w, fmt::format("silent for {:.1f} s", liveness_s - workers[w].last_heard_s));
      }
    }
    if (!factory) return;
    for (pid_t pid : factory->tick(core.engine().pool_status())) {
      for (WorkerId w : workers.of_process(static_cast<std::uint32_t>(pid)))
        lose(w, "its process ended");
    }
  }

  // Reads what workers sent (up to a bound, so that timers keep running under a flood). The
  // results of every task finished in the pass are committed in one transaction, and only then
  // does the core hear of the pass's events, in the order they came: a task counts as done once
  // its results are on disk, and a busy manager pays one commit per pass, not one per task.
  void receive() {
    plan.store().begin_batch();
    read_inbox();
    plan.store().commit_batch();
    cluster.deliver_events(core.events());
  }

  void read_inbox() {
    zmq::message_t from, body;
    for (int i = 0; i < 4096; ++i) {
      if (!router.recv(from, zmq::recv_flags::dontwait)) {
        drained_s = liveness_s;
        return;
      }
      if (!router.get(zmq::sockopt::rcvmore)) continue;
      (void)router.recv(body);
      if (router.get(zmq::sockopt::rcvmore)) {  // extra frames: not our protocol
        while (router.get(zmq::sockopt::rcvmore))
          (void)router.recv(body);
        malformed(from.to_string(), "a message of several frames");
      } else {
        on_message(from.to_string(), body);
      }
    }
  }

  RunEnd run(const std::atomic<bool>& stop, WorkerFactory* run_factory) {
    factory = run_factory;
    if (factory) factory->start(address());
    double last_beat = 0, last_check = 0, last_progress = 0, last_status = -1e9;
    double status_every = options.status_s;
    RunEnd end = RunEnd::finished;
    // Ends when the core is done and so are the checks of its results that a worker can run.
    while (!core.engine().finished() || cluster.checks_pending() > 0) {
      if (!failure.empty()) {
        end = RunEnd::failed;
        break;
      }
      if (stop.load()) {
        end = RunEnd::stopped;
        break;
      }
      if (factory && factory->exhausted() && workers.live() == 0) {
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
      cluster.deliver_events(core.events());
      advance_liveness_clock();
      receive();
      double now = clock_s();
      if (now - last_beat >= options.heartbeat_s) {
        last_beat = now;
        for (WorkerId w : workers.live_ids())
          send_to(w, Heartbeat{});
      }
      if (now - last_check >= 0.05) {
        last_check = now;
        check_liveness();
        check_keys();
        check_capacity();
        cluster.verify_tick(core.engine().finished());
      }
      if (now - last_status >= status_every) {
        last_status = now;
        publish_status();
        // Watching must not slow the run: a snapshot (25 ms for 500 busy workers,
        // bench/run_monitor_bench.cpp) takes at most 2% of the loop's time.
        status_every = std::max(options.status_s, 50 * (clock_s() - now));
      }
      if (options.progress_s > 0 && now - last_progress >= options.progress_s) {
        last_progress = now;
        spdlog::info("{} of {} inferences done, {} workers", core.engine().stats().inferences_done,
                     workload.total_inferences(), workers.live());
      }
      cluster.deliver_events(core.events());
    }
    for (WorkerId w : workers.live_ids())
      send_raw(workers[w].routing, encode(Shutdown{}));
    if (factory) factory->stop(3.0);
    factory = nullptr;
    static constexpr const char* kEndNames[] = {"finished", "stopped", "no_workers", "failed"};
    run_monitor.ended(kEndNames[static_cast<int>(end)], failure,
                      plan.done_before() + core.engine().stats().inferences_done);
    publish_status();
    return end;
  }

  std::string address() const { return endpoint.substr(endpoint.find("//") + 2); }

  RunPlan& plan;
  ManagerOptions options;
  zmq::context_t zmq;
  KeyRing key_ring;                // read only if options.keys.registry is set
  std::uint64_t keys_checked = 0;  // the key_ring generation live workers were checked against
  Authenticator auth;
  zmq::socket_t router;
  zmq::socket_t monitor;
  std::string endpoint;
  Clock::time_point started;
  std::uint64_t session = 0;
  Workload workload;
  EngineConfig config;
  WorkerRegistry workers;
  RunMonitor run_monitor;
  WireCluster cluster;
  WiredEngine core;
  std::vector<std::uint64_t> remaining;  // per context: inferences neither done nor given up
  std::map<WorkerId, WorkerSpec> specs;  // as the core knows them, by the last join
  std::vector<Health> health;
  // Workers that finished a task of each context; kEarlierRun stands for the runs before this one.
  std::map<ContextId, std::set<WorkerId>> finished_by;
  static constexpr WorkerId kEarlierRun = kNoWorker;
  std::map<ContextId, int> given_up_by;
  std::set<std::string> quarantined_names;
  std::set<std::string> quarantined_keys;  // another name with the same key is the same worker
  std::map<ContextId, LoadTrouble> trouble;
  std::map<ContextId, int> single_worker_failures;
  double short_since = -1;  // since when a context has had no worker with room for it
  std::string failure;
  std::uint64_t discarded = 0;
  bool status_write_failed = false;
  std::unordered_map<std::string, int> malformed_by_routing;
  std::set<std::string> blocked;
  std::mutex unservable_mutex;
  std::set<ContextId> unservable;  // contexts whose files the manager failed to read
  Counters counters;
  WorkerFactory* factory = nullptr;  // during run()
  double liveness_s = 0;             // the clock silences are measured on
  double liveness_seen_s = 0;        // clock_s() when it last moved
  double drained_s = 0;              // liveness_s when receive() last read every message waiting
  // Bulk transfers of contexts whose source is the manager (last: its threads read the plan).
  std::unique_ptr<BulkServer> bulk;
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
  return impl_->core.engine().stats();
}

const Workload& Manager::workload() const {
  return impl_->workload;
}

const EngineConfig& Manager::engine_config() const {
  return impl_->config;
}

std::vector<std::string> Manager::event_lines() const {
  return impl_->core.event_lines();
}

std::vector<std::string> Manager::command_lines() const {
  return impl_->core.command_lines();
}

const std::string& Manager::failure() const {
  return impl_->failure;
}

std::string Manager::status_json() const {
  return impl_->status_text();
}

std::uint64_t Manager::discarded_rows() const {
  return impl_->discarded;
}

const Manager::Counters& Manager::counters() const {
  return impl_->counters;
}

}  // namespace hearth::real
