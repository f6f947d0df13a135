// The manager with workers on threads and scripted workers that speak the protocol by hand: who
// may join, what happens when a worker vanishes or misbehaves, and that the core decides as it
// would on a replay of the same events.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <catch2/catch_test_macros.hpp>

#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <sstream>
#include <thread>

#include "policy/command_log.hpp"
#include "real_backend/wire/key_registry.hpp"
#include "real_backend/wire/protocol.hpp"
#include "tests/real/gate.hpp"
#include "tests/real/helpers.hpp"
#include "tests/real/log_lines.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;

namespace {

// What a fixture's job does with each row: nothing, or classify it with the built-in model (which
// a gated worker can be made to wait for).
enum class Work { noop, classify };

// A job of `rows` rows on a manager that records its decisions; workers are added by each test.
struct Fixture {
  LogLines log;  // first: it outlives the manager's thread
  TempDir dir;
  ManagerKeys keys = load_or_create_keys(dir / "keys");  // the registry holds the shared key
  std::unique_ptr<RunPlan> plan;
  std::unique_ptr<ManagerThread> manager;

  // `adjust` changes the job as read, before the run starts. The first `earlier` rows of a no-op
  // job are recorded by an earlier run of it, as a manager started again finds them.
  Fixture(int rows, int batch_size, Work work = Work::noop, ManagerOptions o = {},
          const std::function<void(JobFile&)>& adjust = {}, int earlier = 0) {
    fs::path job = work == Work::noop ? write_noop_job(dir.path, rows, batch_size)
                                      : write_classify_job(dir / "job.toml", rows, batch_size);
    JobFile file = read_job_file(job);
    if (adjust) adjust(file);
    if (earlier > 0) {
      RunPlan first(file);
      std::vector<std::uint64_t> done(static_cast<std::size_t>(earlier));
      std::iota(done.begin(), done.end(), 0);
      first.store().record_task(0, 0, done, std::vector<std::string>(done.size(), "null"),
                                "earlier");
    }
    plan = std::make_unique<RunPlan>(file);
    o.keys = keys;
    o.record_decisions = true;
    o.check_contract = true;  // a command that breaks policy/cluster.hpp's contract aborts
    manager = std::make_unique<ManagerThread>(*plan, o);
    manager->start();
  }
  Manager& m() { return manager->manager(); }
  WorkerOptions worker(const std::string& name, ModelRuntime* runtime = nullptr) {
    return worker_options(m(), keys, dir.path, name, runtime);
  }
  // Lines of the output file, after the run.
  std::vector<std::string> output() {
    plan->write_output();
    std::vector<std::string> lines;
    std::istringstream in(read_file(dir / "out.jsonl"));
    for (std::string l; std::getline(in, l);)
      lines.push_back(l);
    return lines;
  }
  // After the run: whether an event line contains `text`.
  bool event(const std::string& text) { return event_index(text) >= 0; }
  // After the run: the index of the first event line containing `text`, or -1.
  int event_index(const std::string& text) {
    auto lines = m().event_lines();
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].find(text) != std::string::npos) return static_cast<int>(i);
    }
    return -1;
  }
};

// A worker on a thread whose inferences wait at a gate of its own, closed until the test opens it
// (and opened before the worker is joined, so that a failing test does not hang).
struct GatedWorker {
  GatedWorker(Fixture& f, const std::string& name)
      : fixture(f),
        name(name),
        gate(f.dir / ("gate-" + name)),
        runtime(torch_runtime(), gate),
        thread(f.worker(name, &runtime)) {}
  ~GatedWorker() { gate.open(); }

  // Lets n more inferences through and waits until they are spent and the next one waits: the
  // worker is then in the middle of a task.
  void run_until_blocked(std::uint64_t n) {
    std::uint64_t total = gate.used() + n;
    gate.allow(total);
    REQUIRE(wait_for([&] { return gate.used() == total && gate.waiting(); }, 60));
  }
  // After n inferences, in the middle of a task: a crash, without a bye, as when a process is
  // killed. Returns when it has stopped talking; its connection closes once the worker is gone.
  void crash_after(std::uint64_t n) {
    run_until_blocked(n);
    thread.control.crash = true;
    REQUIRE(wait_for([&] { return thread.returned.load(); }));
  }
  // After n inferences, in the middle of a task: a preemption notice. Returns when the manager has
  // counted it lost because it left. Its inference cannot end meanwhile, so only the grace period
  // can end its stay; the wait allows the grace and 29 s more for a loaded machine, a bound that
  // only a worker waiting for its task, or reading its grace in another unit, reaches.
  void notice_after(std::uint64_t n, int grace_ms) {
    run_until_blocked(n);
    thread.control.notice_grace_ms = grace_ms;
    REQUIRE(fixture.log.wait("(" + name + ") lost: it left", 1, grace_ms / 1000.0 + 29));
  }

  Fixture& fixture;
  std::string name;
  Gate gate;
  GatedRuntime runtime;
  WorkerThread thread;
};

// A worker that speaks the protocol by hand, from the test's thread.
class ScriptedWorker {
 public:
  ScriptedWorker(Fixture& f, const std::string& name, const KeyPair& key,
                 std::string peer_endpoint = "tcp://127.0.0.1:9")
      : socket_(zmq_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    make_curve_client(socket_, key, f.keys.manager.public_z85);
    socket_.connect(f.m().endpoint());
    hello_.name = name;
    hello_.gpu_type = "scripted";
    hello_.gpu_memory_bytes = hello_.host_memory_bytes = hello_.disk_bytes = 1e12;
    hello_.peer_endpoint = std::move(peer_endpoint);
  }
  void send_raw(const std::string& bytes) { socket_.send(zmq::buffer(bytes)); }
  void send(const Message& m) { send_raw(encode(m)); }
  void hello() { send(hello_); }
  // The next message other than a heartbeat, within timeout_s.
  std::optional<Message> next(double timeout_s) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(10));
      zmq::message_t m;
      if (!socket_.recv(m, zmq::recv_flags::dontwait)) continue;
      Message msg = decode(m.to_string_view());
      if (!std::holds_alternative<Heartbeat>(msg)) return msg;
    }
    return std::nullopt;
  }
  // Until `done`: answers every stage with ready and heartbeats, and keeps the tasks it is given
  // (never finishing them).
  void hold(const std::function<bool()>& done, bool heartbeat = true) {
    while (!done()) {
      if (heartbeat) send(Heartbeat{});
      auto m = next(0.05);
      if (!m) continue;
      if (auto* s = std::get_if<Stage>(&*m)) send(StageReady{s->stage, 0.0});
      if (auto* t = std::get_if<Task>(&*m)) take(*t);
    }
  }
  // What a scripted worker answers a task with; nullopt: not yet (asked again later).
  using Answer = std::function<std::optional<std::vector<std::string>>(const Task&)>;
  // Until `done`: heartbeats, answers every stage with ready (without fetching anything) and every
  // task, in order, with what `answer` makes of it.
  void serve(const std::function<bool()>& done, const Answer& answer) {
    std::size_t answered = 0;
    while (!done()) {
      send(Heartbeat{});
      if (answered < tasks.size()) {
        if (auto results = answer(tasks[answered])) {
          send(TaskFinished{tasks[answered].attempt, *results});
          ++answered;
        }
      }
      auto m = next(0.05);
      if (!m) continue;
      if (auto* s = std::get_if<Stage>(&*m)) send(StageReady{s->stage, 0.0});
      if (auto* t = std::get_if<Task>(&*m)) take(*t);
    }
  }
  void set_speed(double speed) { hello_.speed = speed; }
  void close() { socket_.close(); }

  std::vector<Task> tasks;                  // for the thread that serves
  std::atomic<std::size_t> tasks_taken{0};  // for any thread

 private:
  void take(const Task& t) {
    tasks.push_back(t);
    ++tasks_taken;
  }
  zmq::context_t zmq_;
  zmq::socket_t socket_;
  Hello hello_;
};

// A port that takes connections and never says a word: a peer whose server hangs.
class SilentPort {
 public:
  SilentPort() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
  }
  ~SilentPort() { ::close(fd_); }
  std::string endpoint() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  // Someone dialled it (the connection waits, unaccepted).
  bool dialled() const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

 private:
  int fd_;
  int port_ = 0;
};

std::vector<std::string> ids_in(const std::vector<std::string>& lines) {
  std::vector<std::string> ids;
  for (const std::string& l : lines)
    ids.push_back(l.substr(6, l.find(',') - 6));  // {"id":"p17",...
  return ids;
}

std::vector<std::string> expected_ids(int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i)
    ids.push_back("\"p" + std::to_string(i) + "\"");
  return ids;
}

}  // namespace

TEST_CASE("workers on threads run every row once, and the output names who did it") {
  Fixture f(300, 7, Work::classify);
  {
    GatedWorker a(f, "a"), b(f, "b"), c(f, "c");
    // No row is done before all three have joined.
    REQUIRE(f.log.wait(") joined: ", 3));
    for (GatedWorker* w : {&a, &b, &c})
      w->gate.open();
    CHECK(f.manager->join() == RunEnd::finished);
  }
  std::vector<std::string> lines = f.output();
  CHECK(ids_in(lines) == expected_ids(300));
  CHECK(lines[0].starts_with(R"({"id":"p0","context":"verdict","result":{"label":")"));
  CHECK(std::all_of(lines.begin(), lines.end(), [](const std::string& l) {
    return l.ends_with(R"(,"worker":"a"})") || l.ends_with(R"(,"worker":"b"})") ||
           l.ends_with(R"(,"worker":"c"})");
  }));
  CHECK(f.m().stats().tasks_done == 43);  // ceil(300 / 7)
  CHECK(f.m().counters().joins == 3);
  CHECK(f.m().counters().losses == 0);
}

TEST_CASE("a job's model may be a symbolic link into a model store: the manager serves it") {
  // Only a worker's cache refuses links; a model the operator names is theirs to place.
  Fixture f(40, 8, Work::classify, {}, [](JobFile& job) {
    fs::path model = job.contexts.at(0).model;
    fs::create_directory(model.parent_path() / "store");
    fs::rename(model, model.parent_path() / "store" / "tiny.pt");
    fs::create_symlink("store/tiny.pt", model);
  });
  WorkerThread w(f.worker("w"));
  CHECK(f.manager->join() == RunEnd::finished);
  CHECK(ids_in(f.output()) == expected_ids(40));
}

TEST_CASE("connections without CURVE or with an unknown key are refused, and counted") {
  Fixture f(20, 5);
  {
    zmq::context_t zmq;
    zmq::socket_t plain(zmq, zmq::socket_type::dealer);
    plain.set(zmq::sockopt::linger, 0);
    plain.connect(f.m().endpoint());
    Hello h;
    h.name = "intruder";
    plain.send(zmq::buffer(encode(h)));
    ScriptedWorker stranger(f, "stranger", make_key_pair());
    stranger.hello();
    // Both handshakes fail before the worker below may join and end the run.
    REQUIRE(f.log.wait("refused a connection", 2));
    CHECK(!stranger.next(1.0));  // no welcome
    zmq::message_t reply;
    CHECK(!plain.recv(reply, zmq::recv_flags::dontwait));
  }
  WorkerThread a(f.worker("a"));
  CHECK(f.manager->join() == RunEnd::finished);
  CHECK(f.m().counters().refused_connections >= 2);
  CHECK(f.m().counters().joins == 1);
}

TEST_CASE("malformed messages are dropped, and a connection that keeps sending them is cut off") {
  Fixture f(20, 5);
  ScriptedWorker noisy(f, "noisy", f.keys.workers.worker);
  noisy.send_raw("\xc8garbage");
  noisy.send_raw("");
  noisy.send(Welcome{});  // a worker does not send this
  noisy.hello();          // too late: the connection is cut off
  REQUIRE(f.log.wait("dropping a connection after 3 malformed messages"));
  CHECK(!noisy.next(0.5));
  WorkerThread a(f.worker("a"));
  CHECK(f.manager->join() == RunEnd::finished);
  CHECK(f.m().counters().malformed_messages == 3);
  CHECK(f.m().counters().dropped_connections == 1);
  CHECK(f.m().counters().joins == 1);
  CHECK(ids_in(f.output()) == expected_ids(20));
}

TEST_CASE("a revoked key is refused, and the worker holding it is dropped and told to exit") {
  Fixture f(40, 5);
  KeyPair own = issue_worker_key(f.keys, "w1", f.dir / "issued" / "w1.key");
  CHECK(read_credentials(f.dir / "issued" / "w1.key").worker.public_z85 == own.public_z85);
  CHECK(fs::status(f.dir / "issued" / "w1.key").permissions() ==
        (fs::perms::owner_read | fs::perms::owner_write));
  ScriptedWorker w1(f, "w1", own);
  w1.hello();
  REQUIRE(std::holds_alternative<Welcome>(*w1.next(30)));
  w1.hold([&] { return !w1.tasks.empty(); });  // it holds a task, and never finishes it
  CHECK(revoke_keys(f.keys.registry, "w1") == 1);
  bool told_to_exit = false;
  for (int i = 0; i < 600 && !told_to_exit; ++i) {
    w1.send(Heartbeat{});
    if (auto m = w1.next(0.1)) told_to_exit = std::holds_alternative<Shutdown>(*m);
  }
  CHECK(told_to_exit);
  REQUIRE(f.log.wait("(w1) dropped: its key (w1) was revoked"));
  // The key cannot come back, not even under another name.
  ScriptedWorker again(f, "w1-again", own);
  again.hello();
  CHECK(!again.next(1));
  REQUIRE(wait_for([&] { return f.m().counters().refused_connections >= 1; }));
  // Its task goes to a worker in good standing.
  WorkerThread a(f.worker("a"));
  CHECK(f.manager->join() == RunEnd::finished);
  CHECK(f.m().counters().revoked == 1);
  CHECK(f.m().counters().joins == 2);
  CHECK(ids_in(f.output()) == expected_ids(40));
}

TEST_CASE("the key registry: issued, listed, revoked by label or key; its mistakes say where") {
  TempDir dir;
  ManagerKeys keys = load_or_create_keys(dir / "keys");
  KeyRing ring(keys.registry);
  CHECK(ring.refusal(keys.workers.worker.public_z85).empty());
  CHECK(ring.label(keys.workers.worker.public_z85) == "shared");
  std::vector<std::string> batch = issue_worker_keys(keys, "slurm-7_", 3, dir / "s1");
  REQUIRE(batch.size() == 3);
  CHECK(read_credentials(dir / "s1" / "2.key").worker.public_z85 == batch[2]);
  CHECK(read_credentials(dir / "s1" / "2.key").peer.public_z85 == keys.workers.peer.public_z85);
  CHECK(fs::status(dir / "s1").permissions() == fs::perms::owner_all);
  CHECK(ring.reload_if_changed());
  CHECK(!ring.reload_if_changed());
  CHECK(ring.refusal(batch[1]).empty());
  CHECK(input_error([&] { issue_worker_key(keys, "slurm-7_1", dir / "x.key"); })
            .ends_with("an active key is labelled slurm-7_1 already: revoke it or choose another "
                       "label"));
  CHECK(input_error([&] {
          issue_worker_key(keys, "a b", dir / "y.key");
        }).starts_with("key label \"a b\": use 1 to 100 letters"));
  CHECK(revoke_keys(keys.registry, "slurm-7_1") == 1);
  CHECK(revoke_keys(keys.registry, std::vector<std::string>{batch[0], batch[1]}) == 1);
  CHECK(revoke_keys(keys.registry, "slurm-7_1") == 0);
  CHECK(ring.reload_if_changed());
  CHECK(ring.refusal(batch[1]) == "revoked key slurm-7_1");
  CHECK(ring.revoked(batch[0]));
  CHECK(ring.refusal(batch[2]).empty());
  CHECK(ring.refusal(make_key_pair().public_z85).starts_with("unknown key "));
  CHECK(read_key_registry(keys.registry).size() == 4);
  // A registry broken by hand: the manager keeps what it knew, and says where.
  write_file(keys.registry, read_file(keys.registry) + "nonsense\n");
  CHECK(input_error([&] { read_key_registry(keys.registry); }) ==
        keys.registry.string() + ":6: expected PUBLIC_KEY active|revoked LABEL");
  CHECK(!ring.reload_if_changed());
  CHECK(ring.refusal(batch[2]).empty());
}

TEST_CASE("a worker that goes silent is lost after the heartbeat timeout and its task requeued",
          "[liveness]") {
  // Heartbeats ten times as often as the timeout: a worker that is alive, on a loaded machine,
  // is not taken for a silent one.
  ManagerOptions o;
  o.heartbeat_s = 0.1;
  o.heartbeat_timeout_s = 1;
  Fixture f(20, 5, Work::noop, o);
  ScriptedWorker silent(f, "silent", f.keys.workers.worker);
  silent.hello();
  REQUIRE(std::holds_alternative<Welcome>(*silent.next(2)));
  silent.hold([&] { return !silent.tasks.empty(); });
  // It holds task 0 and stops talking; its connection stays open. Once the manager counts it
  // lost, it tells it to start over.
  std::optional<Message> reset = silent.next(60);
  while (reset && std::holds_alternative<Task>(*reset))
    reset = silent.next(60);  // the task it would run next
  REQUIRE(reset);
  REQUIRE(std::holds_alternative<Reset>(*reset));
  CHECK(std::get<Reset>(*reset).reason.starts_with("silent for "));
  WorkerThread a(f.worker("a"));
  CHECK(f.manager->join() == RunEnd::finished);
  CHECK(f.event("lost 0"));
  CHECK(f.m().stats().tasks_requeued == 1);
  CHECK(ids_in(f.output()) == expected_ids(20));
}

TEST_CASE("a worker that joins later is seeded from a peer, not from the manager") {
  Fixture f(300, 3, Work::classify);
  GatedWorker a(f, "a");
  a.run_until_blocked(60);
  // a holds the context and the run cannot end until b has its copy.
  WorkerThread b(f.worker("b"));
  REQUIRE(wait_for([&] { return fs::exists(f.dir / "cache-b/context-0.bin"); }, 60));
  a.gate.open();
  CHECK(f.manager->join() == RunEnd::finished);
  std::vector<std::string> commands = f.m().command_lines();
  CHECK(std::count_if(commands.begin(), commands.end(), [](const std::string& l) {
          return l.find("disk from shared") != std::string::npos;
        }) == 1);
  CHECK(std::any_of(commands.begin(), commands.end(), [](const std::string& l) {
    return l.find("stage w1 c0 disk from peer:0") != std::string::npos;
  }));
  CHECK(f.event("ready 1 0 disk"));
  CHECK(ids_in(f.output()) == expected_ids(300));
}

TEST_CASE(
    "a stage reading from a peer that dies fails on the receiver, which then loads elsewhere") {
  Fixture f(20, 5);
  // Worker 0 holds the context (it says so) and serves it from a port that never answers.
  SilentPort hung;
  ScriptedWorker holder(f, "holder", f.keys.workers.worker, hung.endpoint());
  holder.hello();
  REQUIRE(std::holds_alternative<Welcome>(*holder.next(2)));
  holder.hold([&] { return !holder.tasks.empty(); });
  // Worker 1 is sent to fetch from it (pcm reads shared storage only while nobody holds the
  // context) and waits for bytes that never come, until the holder vanishes.
  WorkerThread b(f.worker("b"));
  holder.hold([&] { return hung.dialled(); });
  holder.close();
  CHECK(f.manager->join() == RunEnd::finished);
  std::vector<std::string> commands = f.m().command_lines();
  auto has = [&](const std::string& text) {
    return std::any_of(commands.begin(), commands.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  };
  CHECK(has("stage w1 c0 disk from peer:0"));
  CHECK(has("stage w1 c0 disk from shared"));
  int lost = f.event_index("lost 0");
  int failed = f.event_index("stage_failed 1 0 disk");
  CHECK(lost >= 0);
  CHECK(failed == lost + 1);  // at once, right after the loss
  CHECK(ids_in(f.output()) == expected_ids(20));
}

TEST_CASE("a worker that crashes mid-run is lost by its closed connection, and nothing is lost",
          "[liveness]") {
  Fixture f(300, 3, Work::classify);
  GatedWorker(f, "a").crash_after(60);  // gone after this line: its connection closes
  WorkerThread b(f.worker("b")), c(f.worker("c"));
  CHECK(f.manager->join() == RunEnd::finished);
  CHECK(f.event("lost 0"));
  CHECK(f.m().counters().losses == 1);
  CHECK(f.m().stats().inferences_done == 300);
  CHECK(ids_in(f.output()) == expected_ids(300));
}

TEST_CASE("a worker given a preemption notice tells the manager and leaves within its grace",
          "[liveness]") {
  Fixture f(300, 3, Work::classify);
  {
    GatedWorker a(f, "a");
    a.notice_after(60, 1000);
    CHECK(a.gate.waiting());  // it left while its inference still waited
  }
  WorkerThread b(f.worker("b"));
  CHECK(f.manager->join() == RunEnd::finished);
  int notice = f.event_index("notice 0 1");
  int lost = f.event_index("lost 0");
  CHECK(notice >= 0);
  CHECK(lost > notice);
  CHECK(f.m().stats().notices == 1);
  CHECK(ids_in(f.output()) == expected_ids(300));
}

TEST_CASE("replaying the events the manager delivered gives the commands it issued") {
  // One worker crashes, the next is preempted with notice, a third finishes: the core, fed the
  // recorded events afresh, decides exactly what it decided live.
  Fixture f(400, 4, Work::classify);
  GatedWorker(f, "a").crash_after(100);
  GatedWorker(f, "b").notice_after(100, 500);
  WorkerThread c(f.worker("c"));
  CHECK(f.manager->join() == RunEnd::finished);
  std::vector<std::string> events = f.m().event_lines();
  auto count = [&](const std::string& verb) {
    return std::count_if(events.begin(), events.end(), [&](const std::string& l) {
      return l.find(" " + verb + " ") != std::string::npos;
    });
  };
  CHECK(count("joined") == 3);
  CHECK(count("notice") == 1);
  CHECK(count("lost") == 2);
  CHECK(replay_events(events, f.m().workload(), f.m().engine_config()) == f.m().command_lines());
}

// ---- bad workers
// ---------------------------------------------------------------------------------

namespace {

// A scripted worker serving on a thread of its own until the test is done with it.
struct BadWorker {
  BadWorker(Fixture& f, const std::string& name, ScriptedWorker::Answer answer, double speed = 1)
      : worker(f, name, f.keys.workers.worker) {
    worker.set_speed(speed);
    thread = std::thread([this, answer] {
      worker.hello();
      worker.serve([&] { return stop.load(); }, answer);
    });
  }
  ~BadWorker() {
    stop = true;
    thread.join();
  }
  ScriptedWorker worker;
  std::atomic<bool> stop{false};
  std::thread thread;
};

// One line of out.jsonl per row: its worker, or "" for a row with an error.
std::string worker_of(const std::string& line) {
  auto at = line.find(R"("worker":")");
  return at == std::string::npos ? "" : line.substr(at + 10, line.rfind('"') - at - 10);
}

}  // namespace

namespace {

// What a model gone NaN makes, as a worker sends it: the shape is right, the scores are null.
std::optional<std::vector<std::string>> nan_scores(const Task& t) {
  return std::vector<std::string>(
      t.inputs.size(),
      R"({"label":"SUPPORTS","scores":{"SUPPORTS":null,"REFUTES":null,"NOT-ENOUGH-INFO":null}})");
}

}  // namespace

TEST_CASE(
    "a worker whose scores fail the check is quarantined once others finish, rows all right") {
  Fixture f(60, 5, Work::classify);
  {
    // a finishes two tasks and waits in its third; then bad comes and gets task after task: each
    // fails the manager's check (a broken model could give such scores, so one failure does not
    // condemn the worker), its retry goes to another worker first, and the third failure in a
    // row, with a doing fine, quarantines it.
    GatedWorker a(f, "a");
    a.run_until_blocked(11);
    BadWorker bad(f, "bad", nan_scores);
    REQUIRE(f.log.wait("(bad) quarantined: 3 failed tasks in a row while others finished theirs", 1,
                       120));
    // Three tasks failed; pipelined, it was sent the one it would have run next as well.
    CHECK(bad.worker.tasks_taken >= 3);
    CHECK(bad.worker.tasks_taken <= 4);
    // The quarantine covers bad's name, not the shared worker.key every worker dials with.
    WorkerThread c(f.worker("c"));
    REQUIRE(f.log.wait("(c) joined", 1, 120));
    a.gate.open();
    CHECK(f.manager->join() == RunEnd::finished);
  }
  CHECK(f.m().counters().quarantines == 1);
  CHECK(f.m().stats().tasks_failed == 0);  // nothing given up
  std::vector<std::string> lines = f.output();
  CHECK(ids_in(lines) == expected_ids(60));
  CHECK(std::all_of(lines.begin(), lines.end(), [](const std::string& l) {
    return worker_of(l) != "bad" && l.find(R"("result":{"label":")") != std::string::npos;
  }));
  nlohmann::json status = nlohmann::json::parse(f.m().status_json());
  CHECK(status["counts"]["quarantines"] == 1);
  CHECK(status["workers"][1]["name"] == "bad");
  CHECK(status["workers"][1]["state"] == "quarantined");
  CHECK(status["progress"]["done"] == 60);
}

TEST_CASE("a worker sending results no model makes is quarantined at once, even alone and fresh") {
  // A fresh job, and the first to join answers with a label the job lacks. No model makes that,
  // so the worker is to blame from its first task, before any task of the context has finished:
  // with one failure giving a task up (max_task_failures = 1), the task goes back as lost, and a
  // good worker joining later does every row.
  Fixture f(60, 5, Work::classify, {}, [](JobFile& j) { j.engine.max_task_failures = 1; });
  auto garbage = [](const Task& t) {
    return std::optional(
        std::vector<std::string>(t.inputs.size(), R"({"label":"maybe","scores":{}})"));
  };
  {
    BadWorker bad(f, "bad", garbage);
    REQUIRE(
        f.log.wait("(bad) quarantined: its results are malformed: result 0: label \"maybe\" "
                   "is not one of the job's",
                   1, 120));
    CHECK(bad.worker.tasks_taken >= 1);
    CHECK(bad.worker.tasks_taken <= 2);  // its task, and the next one pipelined
    WorkerThread good(f.worker("good"));
    CHECK(f.manager->join() == RunEnd::finished);
  }
  CHECK(f.m().counters().quarantines == 1);
  CHECK(f.m().stats().tasks_failed == 0);
  std::vector<std::string> lines = f.output();
  CHECK(ids_in(lines) == expected_ids(60));
  CHECK(std::all_of(lines.begin(), lines.end(), [](const std::string& l) {
    return worker_of(l) == "good" && l.find(R"("result":{"label":")") != std::string::npos;
  }));
}

TEST_CASE("after a restart, a garbage worker alone is quarantined and no row is given up") {
  // A manager started again on a job whose context finished rows before: the first to join is a
  // worker whose scores fail the check. One failure quarantines (quarantine_after = 1), and one
  // gives a task up (max_task_failures = 1): the quarantine must come first, so that the task
  // goes back to the queue as lost rather than be given up.
  Fixture f(
      60, 5, Work::classify, {},
      [](JobFile& j) {
        j.quarantine_after = 1;
        j.engine.max_task_failures = 1;
      },
      10);
  {
    BadWorker bad(f, "bad", nan_scores);
    REQUIRE(f.log.wait("(bad) quarantined: 1 failed tasks in a row while others finished theirs", 1,
                       120));
    WorkerThread good(f.worker("good"));
    CHECK(f.manager->join() == RunEnd::finished);
  }
  CHECK(f.m().counters().quarantines == 1);
  CHECK(f.m().stats().tasks_failed == 0);
  std::vector<std::string> lines = f.output();
  CHECK(ids_in(lines) == expected_ids(60));
  CHECK(std::none_of(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("\"error\"") != std::string::npos;
  }));
}

TEST_CASE("tasks that fail on every worker end the run, and no worker is blamed") {
  // Two workers whose model gives NaN: the context is broken, not they.
  Fixture f(60, 5, Work::classify);
  BadWorker x(f, "x", nan_scores), y(f, "y", nan_scores);
  CHECK(f.manager->join() == RunEnd::failed);
  CHECK(
      f.m().failure().starts_with("the tasks of context verdict fail on every worker (2 given "
                                  "up after 3 tries, none finished); the last error: "));
  CHECK(f.m().counters().quarantines == 0);
}

TEST_CASE("under verify, a worker that forges plausible results is caught and its rows discarded") {
  // Every finished task runs again on another worker; the liar announces a speed of 50.
  Fixture f(60, 5, Work::classify, {}, [](JobFile& job) { job.verify = 1; });
  std::atomic<std::size_t> forged{0};
  auto forge = [&](const Task& t) {
    ++forged;
    return std::optional(std::vector<std::string>(
        t.inputs.size(),
        R"({"label":"REFUTES","scores":{"SUPPORTS":-3.5,"REFUTES":-0.2,"NOT-ENOUGH-INFO":-4.0}})"));
  };
  {
    // The honest workers hold the model, each in the middle of a task, when the liar comes and
    // takes the rest of the work.
    GatedWorker a(f, "a"), b(f, "b");
    a.run_until_blocked(1);
    b.run_until_blocked(1);
    BadWorker liar(f, "liar", forge, 50);
    REQUIRE(wait_for([&] { return forged >= 2; }, 60));
    a.gate.open();
    b.gate.open();
    CHECK(f.manager->join() == RunEnd::finished);
  }
  CHECK(f.m().counters().quarantines == 1);
  CHECK(f.log.count("(liar) quarantined: wrong results: ") == 1);
  std::vector<std::string> lines = f.output();
  CHECK(ids_in(lines) == expected_ids(60));
  std::size_t discarded = 0, honest = 0;
  for (const std::string& l : lines) {
    CHECK(worker_of(l) != "liar");
    if (l.find("discarded: worker liar was caught") != std::string::npos) ++discarded;
    if (worker_of(l) == "a" || worker_of(l) == "b") ++honest;
  }
  CHECK(discarded == f.m().discarded_rows());
  CHECK(discarded >= 10);  // its first two tasks at least
  CHECK(discarded + honest == 60);
  nlohmann::json status = nlohmann::json::parse(f.m().status_json());
  CHECK(status["tasks"]["disagreements"].get<int>() >= 1);
  CHECK(status["tasks"]["verified"].get<int>() >= 1);
}
