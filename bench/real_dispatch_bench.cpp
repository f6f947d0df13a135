// real_dispatch_bench: how fast the manager dispatches tasks, from one worker to a thousand.
// No-op tasks of one inference each (batch 1), over loopback TCP with CURVE; every finished task
// is committed to SQLite before it counts, as in a real run. Each worker count runs in a
// process of its own (the manager), with its workers in another process (so that the manager's
// memory is its own): tasks per second over the whole run, and in the steady part
// (from the moment the last worker had the context on its device to the last task), and the
// manager's resident memory, per worker. The workers are light ones (worker_host below), so that
// a thousand of them fit beside the manager on two cores. Work Queue (cctools' work_queue_bench,
// built beside this program when coop-computing-tools-dev is installed) runs the same counts side
// by side, and so does hearth with one task per worker at a time ("hearth-serial", [policy]
// pipeline = false), to show what holding the next task is worth.
//
//   real_dispatch_bench [--workers 1,4,1000] [--tasks N] [--json]
//                       [--work-queue-tasks N (5000)] [--no-work-queue] [--no-serial]
//
// --json prints one object per line: system, workers, tasks, seconds, tasks_per_s,
// steady_tasks_per_s, manager_rss_mb (hearth: and manager_grew_mb, from before the job was read to
// the end of the run), then {"system": "hearth", "manager_kb_per_worker": ...}: how much more the
// manager grew per added worker, between the smallest and the largest count.

#include <fmt/core.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "os/logging.hpp"
#include "real_backend/manager/manager.hpp"
#include "real_backend/manager/result_store.hpp"
#include "real_backend/manager/run_plan.hpp"
#include "real_backend/wire/auth.hpp"
#include "real_backend/wire/protocol.hpp"

namespace fs = std::filesystem;
using namespace hearth;
using namespace hearth::real;
using nlohmann::json;

extern char** environ;

namespace {

// A job of `tasks` no-op inferences, one per task, in a fresh directory; workers copy the (tiny)
// context from the shared path.
fs::path write_job(const fs::path& dir, int tasks, bool pipeline) {
  fs::create_directories(dir);
  {
    std::ofstream d(dir / "rows.jsonl");
    for (int i = 0; i < tasks; ++i)
      d << "{\"id\": " << i << ", \"prompt\": \"x\"}\n";
  }
  std::ofstream(dir / "context.bin") << std::string(1000, 'c');
  std::ofstream(dir / "job.toml")
      << "output = \"out.jsonl\"\n[policy]\nbatch_size = 1\n"
      << (pipeline ? "" : "pipeline = false\n")
      << "[[contexts]]\nname = \"noop\"\nmodel = \"context.bin\"\nformat = \"bytes\"\n"
         "task = \"noop\"\ndataset = \"rows.jsonl\"\nsource = \"shared\"\n";
  return dir / "job.toml";
}

double rss_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6));
  }
  return 0;
}

void raise_file_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
    throw std::runtime_error(fmt::format("cannot start {}", args[0]));
  }
  return pid;
}

// The output of a command, and whether it exited 0.
std::pair<std::string, bool> output_of(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return {"", false};
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof buffer, p))
    out.append(buffer, n);
  return {out, pclose(p) == 0};
}

// --worker-host ADDRESS KEYFILE N: N light workers on one thread of this process. Each is a
// connection of its own, with the shared worker key, that speaks the worker's protocol as
// `hearth worker` does (hello until welcomed, heartbeats, stage_ready for every stage, a null
// result for every no-op inference), without a peer server or an executor: what the manager sees
// of a thousand workers, at a cost this machine can carry beside it.
int worker_host(const std::string& address, const fs::path& keyfile, int n) {
  using Clock = std::chrono::steady_clock;
  raise_file_limit();
  WorkerCredentials keys = read_credentials(keyfile);
  zmq::context_t zmq;
  zmq.set(zmq::ctxopt::max_sockets, n + 64);
  struct Light {
    zmq::socket_t socket;
    bool joined = false, over = false;
    Clock::time_point last_sent;
  };
  std::vector<Light> workers(static_cast<std::size_t>(n));
  Hello hello;
  hello.gpu_type = "light";
  hello.device = "cpu";
  hello.gpu_memory_bytes = hello.host_memory_bytes = hello.disk_bytes = 1e12;
  hello.peer_endpoint = "tcp://127.0.0.1:9";  // serves no peer: the job reads shared storage
  hello.pid = static_cast<std::uint32_t>(getpid());
  auto send = [](Light& w, const Message& m) {
    w.socket.send(zmq::buffer(encode(m)), zmq::send_flags::dontwait);
    w.last_sent = Clock::now();
  };
  auto say_hello = [&](std::size_t i) {
    hello.name = fmt::format("w{}", i);
    send(workers[i], hello);
  };
  for (std::size_t i = 0; i < workers.size(); ++i) {
    workers[i].socket = zmq::socket_t(zmq, zmq::socket_type::dealer);
    workers[i].socket.set(zmq::sockopt::linger, 0);
    make_curve_client(workers[i].socket, keys.worker, keys.manager_public);
    workers[i].socket.connect("tcp://" + address);
    say_hello(i);
  }
  double heartbeat_s = 1;
  std::vector<zmq::pollitem_t> items;
  for (Light& w : workers)
    items.push_back({w.socket.handle(), 0, ZMQ_POLLIN, 0});
  int over = 0;
  auto last_message = Clock::now();
  while (over < n && std::chrono::duration<double>(Clock::now() - last_message).count() < 60) {
    zmq::poll(items, std::chrono::milliseconds(100));
    auto now = Clock::now();
    for (std::size_t i = 0; i < workers.size(); ++i) {
      Light& w = workers[i];
      if (w.over) continue;
      zmq::message_t raw;
      while ((items[i].revents & ZMQ_POLLIN) && w.socket.recv(raw, zmq::recv_flags::dontwait)) {
        last_message = now;
        Message m = decode(raw.to_string_view());
        if (auto* welcome = std::get_if<Welcome>(&m)) {
          w.joined = true;
          heartbeat_s = welcome->heartbeat_s;
        } else if (auto* stage = std::get_if<Stage>(&m)) {
          send(w, StageReady{stage->stage, 0.0});
        } else if (auto* task = std::get_if<Task>(&m)) {
          send(w,
               TaskFinished{task->attempt, std::vector<std::string>(task->inputs.size(), "null")});
        } else if (std::holds_alternative<Reset>(m)) {
          w.joined = false;
          say_hello(i);
        } else if (std::holds_alternative<Shutdown>(m)) {
          w.over = true;
          ++over;
          break;
        }
      }
      if (w.over) continue;
      double quiet = std::chrono::duration<double>(now - w.last_sent).count();
      if (!w.joined && quiet > 1) say_hello(i);
      if (w.joined && quiet > heartbeat_s) send(w, Heartbeat{});
    }
  }
  return over == n ? 0 : 1;
}

// --measure N TASKS DIR PIPELINE: a manager for N workers (started in a worker host), one JSON
// line.
int measure(const std::string& self, int workers, int tasks, const fs::path& dir, bool pipeline) {
  raise_file_limit();
  double rss_before = rss_kb();
  RunPlan plan(read_job_file(write_job(dir, tasks, pipeline)));
  ManagerOptions options;
  options.keys.manager = make_key_pair();
  options.keys.workers = {options.keys.manager.public_z85, make_key_pair(), make_key_pair()};
  options.record_decisions = true;
  // A thousand workers on two cores: heartbeats once a second, and a second's silence is no
  // loss.
  options.heartbeat_s = 1;
  options.heartbeat_timeout_s = 30;
  write_credentials(dir / "worker.key", options.keys.workers);
  Manager manager(plan, plan.job().engine, options);
  pid_t host = spawn({self, "--worker-host", manager.address(), (dir / "worker.key").string(),
                      std::to_string(workers)});
  std::atomic<bool> stop{false};
  auto start = std::chrono::steady_clock::now();
  manager.run(stop);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double rss_after = rss_kb();
  int status = 0;
  waitpid(host, &status, 0);
  // The steady part: from the last worker's first context on its device to the last task.
  double ready = 0, last = 0;
  std::uint64_t finished_after = 0;
  std::vector<std::string> events = manager.event_lines();
  for (const std::string& line : events) {
    std::istringstream in(line);
    double t = 0;
    std::string what;
    in >> t >> what;
    if (what == "ready" && line.ends_with(" gpu")) ready = t;
  }
  for (const std::string& line : events) {
    std::istringstream in(line);
    double t = 0;
    std::string what;
    in >> t >> what;
    if (what == "finished" && t > ready) {
      ++finished_after;
      last = t;
    }
  }
  std::uint64_t done = manager.stats().tasks_done;
  json out{{"system", pipeline ? "hearth" : "hearth-serial"},
           {"workers", workers},
           {"tasks", done},
           {"seconds", seconds},
           {"tasks_per_s", static_cast<double>(done) / seconds},
           {"steady_tasks_per_s",
            last > ready ? static_cast<double>(finished_after) / (last - ready) : 0.0},
           {"manager_rss_mb", rss_after / 1024},
           {"manager_grew_mb", (rss_after - rss_before) / 1024}};
  fmt::print("{}\n", out.dump());
  return done == static_cast<std::uint64_t>(tasks) ? 0 : 1;
}

std::vector<int> parse_counts(const std::string& list) {
  std::vector<int> counts;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ','))
    counts.push_back(std::stoi(item));
  return counts;
}

}  // namespace

int main(int argc, char** argv) {
  os::configure_logging("bench", os::LogLevel::quiet);
  std::string self = fs::canonical("/proc/self/exe").string();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 4 && args[0] == "--worker-host")
    return worker_host(args[1], args[2], std::stoi(args[3]));
  if (args.size() == 5 && args[0] == "--measure")
    return measure(self, std::stoi(args[1]), std::stoi(args[2]), args[3], args[4] == "on");

  std::vector<int> counts{1, 4, 16};
  int tasks = 20000;
  int work_queue_tasks = 5000;  // a hundred times slower: fewer tasks, as long a run
  bool json_lines = false, work_queue = true, serial = true;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--workers" && i + 1 < args.size()) {
      counts = parse_counts(args[++i]);
    } else if (args[i] == "--tasks" && i + 1 < args.size()) {
      tasks = std::stoi(args[++i]);
    } else if (args[i] == "--json") {
      json_lines = true;
    } else if (args[i] == "--work-queue-tasks" && i + 1 < args.size()) {
      work_queue_tasks = std::stoi(args[++i]);
    } else if (args[i] == "--no-work-queue") {
      work_queue = false;
    } else if (args[i] == "--no-serial") {
      serial = false;
    } else {
      fmt::print(stderr,
                 "usage: real_dispatch_bench [--workers 1,4,1000] [--tasks N] [--json] "
                 "[--work-queue-tasks N] [--no-work-queue] [--no-serial]\n");
      return 2;
    }
  }
  fs::path wq = fs::path(self).parent_path() / "work_queue_bench";
  work_queue = work_queue && fs::exists(wq);
  std::string pattern = (fs::temp_directory_path() / "hearth-bench-XXXXXX").string();
  fs::path scratch = mkdtemp(pattern.data());
  if (!json_lines) {
    fmt::print("{:<14} {:>8} {:>8} {:>9} {:>10} {:>15} {:>11}\n", "system", "workers", "tasks",
               "seconds", "tasks/s", "steady tasks/s", "manager MB");
  }
  int failures = 0;
  std::map<int, double> grew_mb;  // hearth's, by worker count
  for (int workers : counts) {
    auto hearth = [&](bool pipeline) {
      return fmt::format("{} --measure {} {} {} {}", self, workers, tasks,
                         (scratch / fmt::format("w{}{}", workers, pipeline ? "" : "s")).string(),
                         pipeline ? "on" : "off");
    };
    std::vector<std::pair<std::string, std::string>> runs{{"hearth", hearth(true)}};
    if (serial) runs.emplace_back("hearth-serial", hearth(false));
    if (work_queue)
      runs.emplace_back("work_queue",
                        fmt::format("{} {} {}", wq.string(), workers, work_queue_tasks));
    for (auto& [system, command] : runs) {
      auto [out, ok] = output_of(command);
      json line;
      try {
        line = json::parse(out.substr(0, out.find('\n')));
      } catch (const json::exception&) {
        ok = false;
      }
      if (!ok) {
        fmt::print(stderr, "{} with {} workers failed: {}\n", system, workers, out);
        ++failures;
        continue;
      }
      if (system == "hearth") grew_mb[workers] = line["manager_grew_mb"].get<double>();
      if (json_lines) {
        fmt::print("{}\n", line.dump());
        continue;
      }
      auto number = [&](const char* key) {
        return line.contains(key) ? line[key].get<double>() : 0.0;
      };
      fmt::print("{:<14} {:>8} {:>8} {:>9.2f} {:>10.0f} {:>15.0f} {:>11.1f}\n", system, workers,
                 line["tasks"].get<std::uint64_t>(), number("seconds"), number("tasks_per_s"),
                 line.contains("steady_tasks_per_s") ? number("steady_tasks_per_s")
                                                     : number("tasks_per_s"),
                 number("manager_rss_mb"));
    }
  }
  if (grew_mb.size() >= 2) {
    auto [few, few_mb] = *grew_mb.begin();
    auto [many, many_mb] = *grew_mb.rbegin();
    double kb = 1024 * (many_mb - few_mb) / (many - few);
    if (json_lines) {
      fmt::print("{}\n", json{{"system", "hearth"}, {"manager_kb_per_worker", kb}}.dump());
    } else {
      fmt::print("manager memory per added worker ({} to {} workers): {:.1f} KB\n", few, many, kb);
    }
  }
  // The part of a task's overhead that is the SQLite transaction recording it.
  if (!json_lines) {
    ResultStore store(scratch / "commit.db", "bench");
    int commits = 5000;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < commits; ++i)
      store.record_task(i, 0, {static_cast<std::uint64_t>(i)}, {"null"}, "w0");
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print("one-row task committed to SQLite: {:.1f} us\n", 1e6 * s / commits);
  }
  fs::remove_all(scratch);
  return failures == 0 ? 0 : 1;
}
