#include "real_backend/factory/local_workers.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "os/process.hpp"
#include "real_backend/model/cuda_device.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

class LocalWorkers final : public WorkerFactory {
 public:
  explicit LocalWorkers(LocalWorkersOptions options)
      : options_(std::move(options)), gpus_(cuda_device_count()) {}

  ~LocalWorkers() override { stop(0); }

  void start(const std::string& manager_address) override {
    address_ = manager_address;
    started_ = Clock::now();
    fs::create_directories(options_.work_dir / "logs");
    for (int i = 0; i < options_.workers; ++i)
      spawn(fmt::format("local-{}", i), "", true);
    if (options_.trace && !options_.trace->events.empty()) {
      trace_t0_ = options_.trace->events.front().time_s;
    }
  }

  std::vector<pid_t> tick(const PoolStatus&) override {
    std::vector<pid_t> ended;
    double now = elapsed_s();
    for (auto it = running_.begin(); it != running_.end();) {
      int status = 0;
      if (waitpid(it->first, &status, WNOHANG) != it->first) {
        ++it;
        continue;
      }
      ended.push_back(it->first);
      const Process& p = it->second;
      spdlog::info("worker process {} ({}) ended: {}", p.name, it->first, describe(status));
      if (p.kept_alive && !stopping_) restart_at_.emplace_back(now + 0.5, p.name);
      forget(p);
      it = running_.erase(it);
    }
    for (auto it = restart_at_.begin(); it != restart_at_.end();) {
      if (it->first > now) {
        ++it;
        continue;
      }
      spawn(it->second, "", true);
      it = restart_at_.erase(it);
    }
    if (options_.trace) {
      const auto& events = options_.trace->events;
      while (next_event_ < events.size() &&
             (events[next_event_].time_s - trace_t0_) * options_.time_scale <= now) {
        apply(events[next_event_++], ended);
      }
    }
    return ended;
  }

  bool exhausted() const override {
    bool trace_over = !options_.trace || next_event_ >= options_.trace->events.size();
    return trace_over && options_.workers == 0 && running_.empty();
  }

  void stop(double wait_s) override {
    stopping_ = true;
    auto deadline = Clock::now() + std::chrono::duration<double>(wait_s);
    while (!running_.empty()) {
      for (auto it = running_.begin(); it != running_.end();) {
        if (waitpid(it->first, nullptr, WNOHANG) == it->first) {
          forget(it->second);
          it = running_.erase(it);
        } else {
          ++it;
        }
      }
      if (running_.empty()) break;
      if (Clock::now() >= deadline) {
        for (const auto& [pid, p] : running_) {
          os::kill_and_reap(pid);
          forget(p);
        }
        running_.clear();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  struct Process {
    std::string name;
    bool kept_alive = false;  // one of the --workers N: started again when it ends
    std::string key;          // its own public key, if it has one
    fs::path key_file;
  };

  // A process ended: its key, if it had its own, is revoked and its file removed.
  void forget(const Process& p) {
    if (p.key.empty()) return;
    options_.keys.revoke({p.key});
    std::error_code ec;
    fs::remove(p.key_file, ec);
  }

  double elapsed_s() const {
    return std::chrono::duration<double>(Clock::now() - started_).count();
  }

  static std::string describe(int status) {
    if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
    return fmt::format("exit status {}", WEXITSTATUS(status));
  }

  pid_t pid_of(const std::string& name) const {
    for (const auto& [pid, p] : running_) {
      if (p.name == name) return pid;
    }
    return -1;
  }

  // Carries out one trace row; a worker it kills is reaped at once (into `ended`), so that an up
  // of the same worker in the same tick starts a new process.
  void apply(const traces::TraceEvent& e, std::vector<pid_t>& ended) {
    pid_t pid = pid_of(e.worker);
    switch (e.kind) {
      case traces::EventKind::up:
        if (pid < 0) spawn(e.worker, e.gpu_type, false);
        break;
      case traces::EventKind::down:
        if (pid > 0) {
          os::kill_and_reap(pid);
          spdlog::info("worker process {} ({}) killed: down in the trace", e.worker, pid);
          forget(running_.at(pid));
          running_.erase(pid);
          ended.push_back(pid);
        }
        break;
      case traces::EventKind::notice:
        if (pid > 0) {
          // The grace period rides on the signal, in real milliseconds.
          sigval value{};
          value.sival_int = static_cast<int>(e.grace_s * options_.time_scale * 1000);
          sigqueue(pid, SIGTERM, value);
        }
        break;
    }
  }

  void spawn(const std::string& name, const std::string& gpu_type, bool kept_alive) {
    Process process{name, kept_alive, "", options_.keys_file};
    if (options_.keys.issue) {
      // Labelled by this manager and this start, so that no run's label meets another's.
      std::string label = fmt::format("{}.{}.{}", name, ::getpid(), spawned_);
      process.key_file = options_.work_dir / "keys" / (label + ".key");
      process.key = options_.keys.issue(label, process.key_file);
    }
    std::vector<std::string> args =
        local_worker_argv(options_.executable, address_, process.key_file, name, options_.work_dir);
    args.push_back("--device");
    args.push_back(gpus_ > 0 ? fmt::format("cuda:{}", spawned_ % gpus_) : "cpu");
    if (!gpu_type.empty()) {
      args.push_back("--gpu-type");
      args.push_back(gpu_type);
    }
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    pid_t pid =
        os::start_process(args, options_.work_dir / "logs" / (name + ".log"), worker_process());
    if (pid < 0) {
      spdlog::error("cannot start worker {}: fork failed", name);
      forget(process);
      return;
    }
    ++spawned_;
    running_[pid] = std::move(process);
    spdlog::info("started worker process {} ({})", name, pid);
  }

  LocalWorkersOptions options_;
  int gpus_ = 0;
  int spawned_ = 0;
  std::string address_;
  Clock::time_point started_;
  double trace_t0_ = 0;
  std::size_t next_event_ = 0;
  std::map<pid_t, Process> running_;
  std::vector<std::pair<double, std::string>> restart_at_;
  bool stopping_ = false;
};

}  // namespace

std::unique_ptr<WorkerFactory> make_local_workers(LocalWorkersOptions options) {
  return std::make_unique<LocalWorkers>(std::move(options));
}

}  // namespace hearth::real
