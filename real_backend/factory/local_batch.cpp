#include "real_backend/factory/local_batch.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>

#include "os/process.hpp"
#include "real_backend/factory/worker_factory.hpp"
#include "real_backend/model/cuda_device.hpp"

namespace hearth::real {

namespace {

class LocalBatch final : public BatchSystem {
 public:
  explicit LocalBatch(FactorySettings settings)
      : s_(std::move(settings)), gpus_(cuda_device_count()) {}

  ~LocalBatch() override {
    for (const auto& [name, pid] : running_)
      os::kill_and_reap(pid);
  }

  std::string name() const override { return "local"; }

  void prepare(const std::string& manager_address) override {
    address_ = manager_address;
    std::filesystem::create_directories(s_.work_dir / "logs");
  }

  std::vector<std::string> submit(int count, const std::filesystem::path& key_dir) override {
    std::vector<std::string> jobs;
    for (int i = 0; i < count; ++i) {
      std::string name = fmt::format("local-{}", started_);
      std::vector<std::string> argv = local_worker_argv(
          s_.hearth.string(), address_,
          key_dir.empty() ? s_.keys : key_dir / fmt::format("{}.key", i), name, s_.work_dir);
      const std::vector<std::string>& extra = s_.worker_args;
      if (gpus_ > 0 && std::find(extra.begin(), extra.end(), "--device") == extra.end()) {
        argv.push_back("--device");
        argv.push_back(fmt::format("cuda:{}", started_ % gpus_));
      }
      argv.insert(argv.end(), extra.begin(), extra.end());
      pid_t pid = os::start_process(argv, log_of(name), worker_process());
      if (pid < 0) {
        if (jobs.empty()) throw BatchError("cannot start a worker process: fork failed");
        break;
      }
      ++started_;
      running_[name] = pid;
      jobs.push_back(name);
    }
    return jobs;
  }

  std::map<std::string, BatchJobStatus> poll(const std::vector<std::string>& jobs) override {
    std::map<std::string, BatchJobStatus> alive;
    for (const std::string& job : jobs) {
      auto it = running_.find(job);
      if (it == running_.end()) continue;
      if (waitpid(it->second, nullptr, WNOHANG) == it->second) {
        running_.erase(it);
      } else {
        alive[job].state = BatchJobState::running;
      }
    }
    return alive;
  }

  void cancel(const std::vector<std::string>& jobs) override {
    for (const std::string& job : jobs) {
      auto it = running_.find(job);
      if (it != running_.end()) kill(it->second, SIGTERM);
    }
  }

  std::string worker_name(const std::string& job) const override { return job; }

  std::string log_of(const std::string& job) const override {
    return (s_.work_dir / "logs" / (job + ".log")).string();
  }

 private:
  FactorySettings s_;
  int gpus_ = 0;
  int started_ = 0;
  std::string address_;
  std::map<std::string, pid_t> running_;  // by name
};

}  // namespace

std::unique_ptr<BatchSystem> make_local_batch(FactorySettings settings) {
  return std::make_unique<LocalBatch>(std::move(settings));
}

}  // namespace hearth::real
