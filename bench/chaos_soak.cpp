// chaos_soak: hearth run under every fault at once, for as long as asked (docs/BENCHMARKS.md,
// "Chaos soak"). A benchmark, not a test: it takes minutes and its figures are counts.
//
//   chaos_soak [--minutes 20] [--inferences 50000] [--workers 8] [--seed 1] [--dir DIR]
//              [--worker-kill-s 20] [--manager-kill-s 150] [--time-scale 0.1]
//              [--dim 128] [--layers 4]
//
// A job of `inferences` rows (nine in ten classified, one in ten continued by generation) with the
// built-in model (`hearth model builtin --dim --layers`: the defaults make a job of 50,000 last
// minutes on two cores, so that faults land inside it) runs once without faults, as the
// reference. Then, until `minutes` have passed,
// rounds of the same job run under:
//   - a generated high-churn availability trace of `workers` machines, replayed by hearth run
//     (workers started, given preemption notices, killed and replaced);
//   - a SIGKILL of a random worker process every worker-kill-s on average;
//   - a SIGKILL of the manager every manager-kill-s on average, after which it is started again
//     on the same state (it resumes; its workers die with it);
//   - one worker, on a thread of this program, that answers every task with garbage, and joins
//     again each time a new manager does not know it.
// Every round's output must hold each row exactly once, with the reference's result. Prints
// one JSON object per round and one for the whole soak, with the count of each fault; exits 1
// if any row was lost, doubled or different, or a manager ended any other way than done or
// killed by this program.

#include <fmt/core.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "os/process.hpp"
#include "real_backend/wire/auth.hpp"
#include "real_backend/wire/protocol.hpp"

namespace fs = std::filesystem;
using namespace hearth;
using namespace hearth::real;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  double minutes = 20;
  int inferences = 50000;
  int workers = 8;
  std::uint64_t seed = 1;
  fs::path dir;
  double worker_kill_s = 20;
  double manager_kill_s = 150;
  double time_scale = 0.1;
  int dim = 128;
  int layers = 4;
};

[[noreturn]] void usage(const std::string& why) {
  fmt::print(stderr, "chaos_soak: {}\n", why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) usage(flag + " needs a value");
    std::string value = argv[++i];
    try {
      if (flag == "--minutes")
        o.minutes = std::stod(value);
      else if (flag == "--inferences")
        o.inferences = std::stoi(value);
      else if (flag == "--workers")
        o.workers = std::stoi(value);
      else if (flag == "--seed")
        o.seed = std::stoull(value);
      else if (flag == "--dir")
        o.dir = value;
      else if (flag == "--worker-kill-s")
        o.worker_kill_s = std::stod(value);
      else if (flag == "--manager-kill-s")
        o.manager_kill_s = std::stod(value);
      else if (flag == "--time-scale")
        o.time_scale = std::stod(value);
      else if (flag == "--dim")
        o.dim = std::stoi(value);
      else if (flag == "--layers")
        o.layers = std::stoi(value);
      else
        usage("unknown option " + flag);
    } catch (const std::logic_error&) {
      usage(flag + ": not a number: " + value);
    }
  }
  if (o.minutes < 0 || o.inferences < 10 || o.workers < 1 || o.worker_kill_s <= 0 ||
      o.manager_kill_s <= 0 || o.time_scale <= 0 || o.dim < 1 || o.layers < 1) {
    usage("--minutes >= 0, --inferences >= 10, --workers >= 1 and positive times, please");
  }
  return o;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void run_or_die(const std::vector<std::string>& argv) {
  os::CommandResult r = os::run_command(argv, 600);
  if (r.status != 0) {
    fmt::print(stderr, "chaos_soak: {} exited {}: {}{}\n", argv[0], r.status, r.out, r.err);
    std::exit(1);
  }
}

// The job in `dir`: its model, its two datasets, its file.
fs::path write_job(const fs::path& dir, const Options& o) {
  const int inferences = o.inferences;
  fs::create_directories(dir);
  run_or_die({HEARTH_EXECUTABLE, "model", "builtin", (dir / "tiny.pt").string(), "--dim",
              std::to_string(o.dim), "--layers", std::to_string(o.layers)});
  static const char* words[] = {"the", "tower",  "is",   "in",    "Paris", "Rome",  "a",
                                "cat", "claims", "that", "river", "flows", "north", "never"};
  std::mt19937_64 random(7);
  int continued = inferences / 10;
  for (auto [file, n] : {std::pair{"claims.jsonl", inferences - continued},
                         std::pair{"openings.jsonl", continued}}) {
    std::ofstream out(dir / file);
    for (int i = 0; i < n; ++i) {
      out << "{\"id\": \"r" << i << "\", \"prompt\": \"";
      for (int w = 0; w < 6; ++w)
        out << (w ? " " : "") << words[random() % 14];
      out << "\"}\n";
    }
  }
  std::ofstream(dir / "job.toml") << R"(output = "out.jsonl"
[policy]
batch_size = 40
[[contexts]]
name = "verdict"
model = "tiny.pt"
task = "classify"
dataset = "claims.jsonl"
template = "Claim: {prompt}\nVerdict:"
labels = ["SUPPORTS", "REFUTES", "NOT-ENOUGH-INFO"]
label_tokens = ["S", "R", "N"]
[[contexts]]
name = "continue"
model = "tiny.pt"
source = "shared"
task = "generate"
max_new_tokens = 4
dataset = "openings.jsonl"
)";
  return dir / "job.toml";
}

// (context, id) -> result of an output file, and the rows seen more than once.
struct Output {
  std::map<std::pair<std::string, std::string>, std::string> rows;
  int doubled = 0;
};

Output read_output(const fs::path& file) {
  Output out;
  std::istringstream in(read_file(file));
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    auto key = std::pair{j.at("context").get<std::string>(), j.at("id").get<std::string>()};
    std::string result = j.contains("result") ? j["result"].dump() : "error: " + j["error"].dump();
    if (!out.rows.emplace(key, result).second) ++out.doubled;
  }
  return out;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    usage(std::string("cannot find a free port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// A hostile worker on a thread: joins with the shared worker key, says every stage is ready
// without fetching anything, answers every task with labels that do not exist, and says hello
// again whenever a manager does not know it (a restarted one).
class GarbageWorker {
 public:
  // Joins as soon as the manager has written its keys: in a fresh job, before any task has
  // finished. Labels the job lacks are results no model makes, so the worker is quarantined from
  // its first task, not taken for a broken model.
  GarbageWorker(const fs::path& keys, int port)
      : thread_([this, keys, port] { serve(keys, port); }) {}
  ~GarbageWorker() {
    stop_ = true;
    thread_.join();
  }
  int tasks_answered() const { return answered_; }
  int joins() const { return joins_; }

 private:
  void serve(const fs::path& keys, int port) {
    std::error_code ignored;
    while (!stop_ && !fs::exists(keys, ignored))
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (stop_) return;
    WorkerCredentials credentials = read_credentials(keys);
    zmq::context_t zmq;
    zmq::socket_t socket(zmq, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    make_curve_client(socket, credentials.worker, credentials.manager_public);
    socket.connect(fmt::format("tcp://127.0.0.1:{}", port));
    Hello hello;
    hello.name = "garbage";
    hello.gpu_type = "T4-16GB";
    hello.device = "cpu";
    hello.gpu_memory_bytes = hello.host_memory_bytes = hello.disk_bytes = 1e12;
    hello.speed = 4;  // the fastest worker there is, to be given as much work as possible
    hello.peer_endpoint = "tcp://127.0.0.1:9";
    hello.pid = static_cast<std::uint32_t>(getpid());
    auto send = [&](const Message& m) {
      socket.send(zmq::buffer(encode(m)), zmq::send_flags::dontwait);
    };
    send(hello);
    auto last_beat = Clock::now();
    while (!stop_) {
      if (Clock::now() - last_beat > std::chrono::milliseconds(500)) {
        send(Heartbeat{});
        last_beat = Clock::now();
      }
      zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
      zmq::message_t m;
      if (!socket.recv(m, zmq::recv_flags::dontwait)) continue;
      Message msg;
      try {
        msg = decode(m.to_string_view());
      } catch (const std::exception&) {
        continue;
      }
      if (std::holds_alternative<Welcome>(msg)) {
        ++joins_;
      } else if (auto* s = std::get_if<Stage>(&msg)) {
        send(StageReady{s->stage, 0.0});
      } else if (auto* t = std::get_if<Task>(&msg)) {
        send(TaskFinished{t->attempt, std::vector<std::string>(
                                          t->inputs.size(), R"({"label":"maybe","scores":{}})")});
        ++answered_;
      } else if (auto* r = std::get_if<Reset>(&msg); r && r->reason.rfind("quarantined", 0) != 0) {
        send(hello);  // a manager that does not know us: join it
      }
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0}, joins_{0};
  std::thread thread_;
};

// The worker processes of the manager `pid`.
std::vector<pid_t> workers_of(pid_t pid) {
  std::istringstream in(read_file(fmt::format("/proc/{}/task/{}/children", pid, pid)));
  std::vector<pid_t> out;
  for (pid_t c; in >> c;) {
    std::string cmdline = read_file(fmt::format("/proc/{}/cmdline", c));
    if (cmdline.find(std::string("worker\0", 7)) != std::string::npos) out.push_back(c);
  }
  return out;
}

int lines_with(const fs::path& file, const std::string& text) {
  std::istringstream in(read_file(file));
  int n = 0;
  for (std::string line; std::getline(in, line);)
    n += line.find(text) != std::string::npos;
  return n;
}

struct Faults {
  int worker_kills = 0, manager_kills = 0;
};

os::StartOptions dying_with_us() {
  os::StartOptions options;
  options.die_with_parent = true;
  return options;
}

// Waits for `pid`; its exit status.
int reap(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return os::exit_status(status);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  bool temporary = o.dir.empty();
  if (temporary) {
    char pattern[] = "/tmp/hearth-chaos-XXXXXX";
    if (!mkdtemp(pattern)) usage("cannot make a directory in /tmp");
    o.dir = pattern;
  }
  fs::create_directories(o.dir);
  std::mt19937_64 random(o.seed);
  auto exponential = [&](double mean) {
    return std::chrono::duration<double>(std::exponential_distribution<double>(1 / mean)(random));
  };
  const std::string workers = std::to_string(o.workers);

  // The reference: no faults at all.
  fs::path ref_job = write_job(o.dir / "reference", o);
  auto started = Clock::now();
  pid_t ref =
      os::start_process({HEARTH_EXECUTABLE, "run", ref_job.string(), "--workers", workers, "-q"},
                        o.dir / "reference/run.log", dying_with_us());
  if (reap(ref) != 0)
    usage("the fault-free run failed: see " + (o.dir / "reference/run.log").string());
  double reference_s = std::chrono::duration<double>(Clock::now() - started).count();
  Output reference = read_output(o.dir / "reference/out.jsonl");
  if (reference.rows.size() != static_cast<std::size_t>(o.inferences) || reference.doubled) {
    usage(fmt::format("the fault-free run gave {} rows ({} doubled), not {}", reference.rows.size(),
                      reference.doubled, o.inferences));
  }
  fmt::print("{}\n", json{{"reference_s", reference_s}, {"inferences", o.inferences}}.dump());

  // The churn: machines of `workers` slots that stay a minute on average (in real time), with
  // notices a tenth of their stay before they go, and newcomers arriving about as fast.
  const double mean_life_s = 60 / o.time_scale;
  fs::path trace = o.dir / "trace.csv";
  run_or_die({HEARTH_EXECUTABLE,
              "trace",
              "generate",
              "--seed",
              std::to_string(o.seed),
              "--duration",
              fmt::format("{:.0f}s", (o.minutes + 30) * 60 / o.time_scale),
              "--pool",
              fmt::format("T4-16GB={}", 4 * o.workers),
              "--max-held",
              workers,
              "--initial",
              workers,
              "--arrivals",
              fmt::format("poisson:{:.3f}", o.workers * 3600 / mean_life_s),
              "--lifetime",
              fmt::format("exp:{:.0f}", mean_life_s),
              "--notice-s",
              fmt::format("{:.0f}", mean_life_s / 10),
              "-o",
              trace.string()});

  const auto deadline = started + std::chrono::duration<double>(o.minutes * 60);
  Faults total;
  int rounds = 0, bad_rounds = 0;
  json summary = json::object();
  for (std::string key : {"lost", "notices", "quarantines", "resumed", "garbage_tasks"})
    summary[key] = 0;
  do {
    fs::path dir = o.dir / fmt::format("round-{}", ++rounds);
    fs::path job = write_job(dir, o);
    const int port = free_port();
    fs::path log = dir / "manager.log";
    auto start_manager = [&] {
      return os::start_process(
          {HEARTH_EXECUTABLE, "run", job.string(), "--trace", trace.string(), "--time-scale",
           fmt::format("{}", o.time_scale), "--listen", fmt::format("127.0.0.1:{}", port),
           "--events", (dir / "events.jsonl").string()},
          log, dying_with_us());
    };
    auto round_started = Clock::now();
    Faults faults;
    int last_status = 0;
    GarbageWorker garbage(dir / "job.state/keys/worker.key", port);
    pid_t manager = start_manager();
    auto next_worker_kill = Clock::now() + exponential(o.worker_kill_s);
    auto next_manager_kill = Clock::now() + exponential(o.manager_kill_s);
    for (;;) {
      int status = 0;
      if (waitpid(manager, &status, WNOHANG) == manager) {
        last_status = os::exit_status(status);
        break;
      }
      auto now = Clock::now();
      if (now >= next_manager_kill) {
        kill(manager, SIGKILL);
        reap(manager);
        ++faults.manager_kills;
        manager = start_manager();
        next_manager_kill = now + exponential(o.manager_kill_s);
      } else if (now >= next_worker_kill) {
        std::vector<pid_t> w = workers_of(manager);
        if (!w.empty()) {
          kill(w[random() % w.size()], SIGKILL);
          ++faults.worker_kills;
        }
        next_worker_kill = now + exponential(o.worker_kill_s);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Output got = read_output(dir / "out.jsonl");
    int missing = 0, different = 0;
    for (const auto& [key, result] : reference.rows) {
      auto it = got.rows.find(key);
      if (it == got.rows.end())
        ++missing;
      else if (it->second != result)
        ++different;
    }
    int extra =
        static_cast<int>(got.rows.size()) - (static_cast<int>(reference.rows.size()) - missing);
    bool ok = last_status == 0 && missing == 0 && different == 0 && extra == 0 && got.doubled == 0;
    bad_rounds += !ok;
    json r = {{"round", rounds},
              {"ok", ok},
              {"exit", last_status},
              {"seconds", std::chrono::duration<double>(Clock::now() - round_started).count()},
              {"rows", got.rows.size()},
              {"missing", missing},
              {"doubled", got.doubled},
              {"different", different},
              {"unknown", extra},
              {"manager_kills", faults.manager_kills},
              {"worker_kills", faults.worker_kills},
              {"lost", lines_with(log, ") lost: ")},
              {"notices", lines_with(log, ") will leave within")},
              {"quarantines", lines_with(log, ") quarantined: ")},
              {"resumed", lines_with(log, "resuming run ")},
              {"garbage_tasks", garbage.tasks_answered()},
              {"garbage_joins", garbage.joins()}};
    fmt::print("{}\n", r.dump());
    std::fflush(stdout);
    total.worker_kills += faults.worker_kills;
    total.manager_kills += faults.manager_kills;
    for (auto& [key, value] : summary.items())
      value = value.get<int>() + r[key].get<int>();
    if (!ok) fmt::print(stderr, "chaos_soak: round {} went wrong: see {}\n", rounds, dir.string());
  } while (Clock::now() < deadline);

  summary["rounds"] = rounds;
  summary["bad_rounds"] = bad_rounds;
  summary["inferences_checked"] = static_cast<long>(rounds) * o.inferences;
  summary["manager_kills"] = total.manager_kills;
  summary["worker_kills"] = total.worker_kills;
  summary["minutes"] = std::chrono::duration<double>(Clock::now() - started).count() / 60;
  summary["dir"] = o.dir.string();
  fmt::print("{}\n", summary.dump());
  if (temporary && bad_rounds == 0) fs::remove_all(o.dir);
  return bad_rounds == 0 ? 0 : 1;
}
