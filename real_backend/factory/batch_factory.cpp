#include "real_backend/factory/batch_factory.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "os/atomic_file.hpp"
#include "os/network.hpp"
#include "real_backend/factory/htcondor_batch.hpp"
#include "real_backend/factory/local_batch.hpp"
#include "real_backend/factory/slurm_batch.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

constexpr int kMaxFailedStarts = 10;
constexpr int kMaxRefusedSubmissions = 3;
constexpr int kMaxBackoffDoublings = 5;
constexpr double kKeyGraceS = 300;  // the longest a worker keeps its key after its job ended

double steady_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// "123_0 ... 123_3" for messages.
std::string span_of(const std::vector<std::string>& jobs) {
  if (jobs.empty()) return "";
  if (jobs.size() == 1) return jobs.front();
  return fmt::format("{} ... {}", jobs.front(), jobs.back());
}

// A job's own key: its public half and its credentials file.
struct JobKey {
  std::string public_z85;  // empty: none
  fs::path file;
};

class BatchWorkers final : public WorkerFactory {
 public:
  BatchWorkers(std::unique_ptr<BatchSystem> system, BatchFactoryOptions options)
      : system_(std::move(system)), options_(std::move(options)) {
    if (!options_.clock_s) options_.clock_s = steady_s;
  }

  ~BatchWorkers() override {
    try {
      stop(0);
    } catch (const std::exception& e) {
      spdlog::error("cannot cancel the {} jobs: {}", system_->name(), e.what());
    }
  }

  void start(const std::string& manager_address) override {
    cancel_leftovers();
    if (options_.keys.issue_many) {
      fs::create_directories(options_.key_dir);
      fs::permissions(options_.key_dir, fs::perms::owner_all);
    }
    std::string address = options_.manager_address.empty() ? reachable_address(manager_address)
                                                           : options_.manager_address;
    system_->prepare(address);
    spdlog::info("asking {} for {} to {} workers; they dial {}", system_->name(),
                 options_.limits.min_workers, options_.limits.max_workers, address);
  }

  std::vector<pid_t> tick(const PoolStatus& pool) override {
    double now = options_.clock_s();
    expire_leaving(now);
    if (!jobs_.empty() && now >= next_poll_s_) {
      next_poll_s_ = now + options_.poll_interval_s;
      poll();
    }
    int target = pool_target(pool, options_.limits);
    int have = static_cast<int>(jobs_.size());
    if (have > target) {
      withdraw(have - target);
    } else if (have < target && pool.pending_inferences > 0 && poll_ok_ && submission_due(now)) {
      submit(std::min(target - have, options_.submit_batch), now);
    }
    report(target);
    return {};
  }

  void worker_joined(const std::string& name) override {
    auto it = by_worker_.find(name);
    if (it == by_worker_.end()) return;
    present_.insert(name);
    jobs_.at(it->second).joined = true;
    failed_starts_ = 0;
    failed_submissions_ = 0;
  }

  bool exhausted() const override { return false; }

  void stop(double wait_s) override {
    // Every key goes at once; a job not seen leaving keeps its line (and key) in the record.
    std::vector<JobKey> keys;
    for (const auto& [id, job] : jobs_)
      keys.push_back(job.key);
    for (const auto& [name, leaving] : leaving_)
      keys.push_back(leaving.key);
    leaving_.clear();
    retire(keys);
    if (jobs_.empty()) {
      write_record();
      return;
    }
    std::vector<std::string> ids = job_ids();
    spdlog::info("cancelling {} {} jobs", ids.size(), system_->name());
    system_->cancel(ids);
    // Wait for them to leave the queue; those not seen leaving stay in the record, for the next
    // run to cancel again.
    double deadline = steady_s() + wait_s;
    while (!ids.empty() && steady_s() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      try {
        auto alive = system_->poll(ids);
        std::erase_if(ids, [&](const std::string& id) { return !alive.count(id); });
      } catch (const BatchError&) {
        break;
      }
    }
    std::erase_if(jobs_, [&](const auto& job) {
      return std::find(ids.begin(), ids.end(), job.first) == ids.end();
    });
    write_record();
    jobs_.clear();
    by_worker_.clear();
  }

 private:
  struct BatchJob {
    BatchJobState state = BatchJobState::queued;
    std::uint64_t order = 0;       // submission order of jobs
    std::uint64_t submission = 0;  // which submission it came in
    bool joined = false;           // its worker joined the manager
    JobKey key;                    // its own, if it has one
  };

  // Keys issued for a submission: public keys and files, in job order.
  struct Keys {
    fs::path dir;  // empty: none issued
    std::vector<std::string> publics;
    fs::path file(std::size_t i) const { return dir / fmt::format("{}.key", i); }
  };

  // Revokes these keys (their jobs ended, were withdrawn or cancelled) and removes their files.
  void retire(const std::vector<JobKey>& keys) {
    std::vector<std::string> publics;
    for (const JobKey& key : keys) {
      if (key.public_z85.empty()) continue;
      publics.push_back(key.public_z85);
      std::error_code ec;
      fs::remove(key.file, ec);
      fs::remove(key.file.parent_path(), ec);  // once its submission's last key is gone
    }
    if (!publics.empty()) options_.keys.revoke(publics);
  }

  // A job is over. Its key goes now, unless its worker is still joined: one preempted with a
  // notice finishes its task in its grace period, and reports it, with that key. It goes when
  // the worker leaves, or kKeyGraceS after the job's end at the latest.
  void job_over(const std::string& id, const BatchJob& job, double now) {
    std::string name = system_->worker_name(id);
    if (!job.key.public_z85.empty() && present_.count(name)) {
      leaving_[name] = {job.key, now + kKeyGraceS};
    } else {
      retire({job.key});
    }
  }

  void worker_left(const std::string& name) override {
    present_.erase(name);
    auto it = leaving_.find(name);
    if (it == leaving_.end()) return;
    retire({it->second.key});
    leaving_.erase(it);
    write_record();
  }

  // Revokes the keys of workers that outstayed their job by kKeyGraceS.
  void expire_leaving(double now) {
    std::vector<JobKey> expired;
    for (auto it = leaving_.begin(); it != leaving_.end();) {
      if (now < it->second.deadline_s) {
        ++it;
        continue;
      }
      spdlog::warn("{} is still joined {} s after its job ended: revoking its key", it->first,
                   kKeyGraceS);
      expired.push_back(it->second.key);
      it = leaving_.erase(it);
    }
    if (expired.empty()) return;
    retire(expired);
    write_record();
  }

  // Issues a key for each of `count` jobs, in key_dir/sN, and lists them in the record before
  // they can be used.
  Keys issue_keys(int count) {
    Keys keys;
    if (!options_.keys.issue_many) return keys;
    std::uint64_t n = ++key_batches_;
    keys.dir = options_.key_dir / fmt::format("s{}", n);
    std::error_code ec;
    fs::remove_all(keys.dir, ec);
    keys.publics = options_.keys.issue_many(
        fmt::format("{}-pending.{}.{}.", system_->name(), ::getpid(), n), count, keys.dir);
    pending_keys_ = keys.publics;
    write_record();
    return keys;
  }

  // Revokes the keys from `first` on (their jobs were never submitted) and removes their files.
  void drop_keys(const Keys& keys, std::size_t first) {
    pending_keys_.clear();
    if (keys.dir.empty()) return;
    std::vector<std::string> unused(keys.publics.begin() + first, keys.publics.end());
    std::error_code ec;
    for (std::size_t i = first; i < keys.publics.size(); ++i)
      fs::remove(keys.file(i), ec);
    if (first == 0) fs::remove(keys.dir, ec);
    if (!unused.empty()) options_.keys.revoke(unused);
  }

  std::vector<std::string> job_ids() const {
    std::vector<std::string> ids;
    for (const auto& [id, job] : jobs_)
      ids.push_back(id);
    return ids;
  }

  void poll() {
    std::map<std::string, BatchJobStatus> alive;
    try {
      alive = system_->poll(job_ids());
    } catch (const BatchError& e) {
      if (poll_ok_) {
        spdlog::warn("cannot ask {} about its jobs (no submission until it answers): {}",
                     system_->name(), e.what());
      }
      poll_ok_ = false;
      return;
    }
    if (!poll_ok_) spdlog::info("{} answers again", system_->name());
    poll_ok_ = true;
    std::vector<std::string> held;
    std::size_t before = jobs_.size();
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      auto found = alive.find(it->first);
      if (found != alive.end() && found->second.state != BatchJobState::held) {
        it->second.state = found->second.state;
        ++it;
        continue;
      }
      if (found != alive.end()) {
        spdlog::warn("{} job {} is held ({}): removing it", system_->name(), it->first,
                     found->second.reason);
        held.push_back(it->first);
      }
      job_over(it->first, it->second, options_.clock_s());
      ended(it->first, it->second);
      by_worker_.erase(system_->worker_name(it->first));
      it = jobs_.erase(it);
    }
    if (!held.empty()) system_->cancel(held);
    if (jobs_.size() != before) write_record();
  }

  void ended(const std::string& id, const BatchJob& job) {
    if (job.joined) {
      spdlog::info("{} job {} ended", system_->name(), id);
      return;
    }
    ++failed_starts_;
    if (job.submission != last_failed_submission_) {
      ++failed_submissions_;
      last_failed_submission_ = job.submission;
    }
    spdlog::warn("{} job {} ended before its worker joined; its log: {}", system_->name(), id,
                 system_->log_of(id));
    if (failed_starts_ >= kMaxFailedStarts) {
      throw std::runtime_error(fmt::format(
          "{} {} jobs in a row ended before their worker joined the manager; the last one's log: "
          "{}",
          failed_starts_, system_->name(), system_->log_of(id)));
    }
  }

  void withdraw(int excess) {
    std::vector<std::pair<std::uint64_t, std::string>> queued;
    for (const auto& [id, job] : jobs_) {
      if (job.state == BatchJobState::queued) queued.emplace_back(job.order, id);
    }
    std::sort(queued.rbegin(), queued.rend());
    if (queued.size() > static_cast<std::size_t>(excess)) queued.resize(excess);
    if (queued.empty()) return;
    std::vector<std::string> ids;
    for (const auto& [order, id] : queued) {
      ids.push_back(id);
      by_worker_.erase(system_->worker_name(id));
      retire({jobs_.at(id).key});
      jobs_.erase(id);
    }
    spdlog::info("withdrawing {} queued {} jobs: fewer workers are needed", ids.size(),
                 system_->name());
    system_->cancel(ids);
    write_record();
  }

  void submit(int count, double now) {
    Keys keys = issue_keys(count);
    std::vector<std::string> ids;
    try {
      ids = system_->submit(count, keys.dir);
    } catch (const BatchError& e) {
      drop_keys(keys, 0);
      write_record();
      ++refused_submissions_;
      if (submissions_ == 0 || refused_submissions_ >= kMaxRefusedSubmissions) throw;
      spdlog::error("{} (trying again in {} s)", e.what(), options_.submit_interval_s);
      last_submission_s_ = now;
      return;
    }
    refused_submissions_ = 0;
    ++submissions_;
    std::map<std::string, std::string> labels;  // public key -> the worker's name
    for (std::size_t i = 0; i < ids.size(); ++i) {
      BatchJob& job = jobs_[ids[i]];
      job = BatchJob{BatchJobState::queued, next_order_++, submissions_, false, {}};
      by_worker_[system_->worker_name(ids[i])] = ids[i];
      if (!keys.dir.empty()) {
        job.key = {keys.publics.at(i), keys.file(i)};
        labels[job.key.public_z85] = system_->worker_name(ids[i]);
      }
    }
    drop_keys(keys, ids.size());
    write_record();
    if (!labels.empty()) options_.keys.relabel(labels);
    spdlog::info("asked {} for {} workers: job {}", system_->name(), ids.size(), span_of(ids));
    last_submission_s_ = now;
  }

  // The interval doubles with each submission in a row whose jobs ended before their workers
  // joined.
  bool submission_due(double now) const {
    double backoff = 1 << std::min(failed_submissions_, kMaxBackoffDoublings);
    return now >= last_submission_s_ + options_.submit_interval_s * backoff;
  }

  // Logs the pool whenever it changes.
  void report(int target) {
    int queued = 0, starting = 0, joined = 0;
    for (const auto& [id, job] : jobs_) {
      if (job.joined) {
        ++joined;
      } else if (job.state == BatchJobState::queued) {
        ++queued;
      } else {
        ++starting;
      }
    }
    auto now = std::tuple{target, queued, starting, joined};
    if (now == reported_) return;
    reported_ = now;
    spdlog::info("{}: {} workers wanted; {} jobs queued, {} starting, {} joined", system_->name(),
                 target, queued, starting, joined);
  }

  // Lists the jobs held, or removes the record when there is none.
  void write_record() const {
    if (options_.record.empty()) return;
    if (jobs_.empty() && pending_keys_.empty() && leaving_.empty()) {
      std::error_code ec;
      fs::remove(options_.record, ec);
      return;
    }
    std::string text;
    for (const auto& [id, job] : jobs_) {
      const std::string& key = job.key.public_z85;
      text += fmt::format("{} {}{}{}\n", system_->name(), id, key.empty() ? "" : " ", key);
    }
    for (const std::string& key : pending_keys_)
      text += fmt::format("{} - {}\n", system_->name(), key);
    for (const auto& [name, leaving] : leaving_)
      text += fmt::format("{} - {}\n", system_->name(), leaving.key.public_z85);
    os::write_file_atomically(options_.record, text, 0600);
  }

  // A run killed before it could cancel its jobs left them in the record (lines "SYSTEM JOB
  // [KEY]", or "SYSTEM - KEY" for a key whose job was not submitted yet); their workers would
  // dial a manager that is gone. Their keys are revoked and the files of any left removed.
  void cancel_leftovers() {
    if (options_.record.empty()) return;
    fs::create_directories(options_.record.parent_path());
    std::ifstream in(options_.record);
    std::vector<std::string> ours, keys;
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string system, id, key;
      if (!(words >> system >> id)) continue;
      if (words >> key) keys.push_back(key);
      if (id == "-") continue;
      if (system == system_->name()) {
        ours.push_back(id);
      } else {
        spdlog::warn("{} job {} of an earlier run may still be there: cancel it by hand", system,
                     id);
      }
    }
    if (!ours.empty()) {
      spdlog::warn("cancelling {} {} jobs left by an earlier run: {}", ours.size(), system_->name(),
                   span_of(ours));
      system_->cancel(ours);
    }
    if (!keys.empty() && options_.keys.revoke) {
      spdlog::info("revoking {} keys of jobs left by an earlier run", keys.size());
      options_.keys.revoke(keys);
    }
    std::error_code ec;
    if (!options_.key_dir.empty()) fs::remove_all(options_.key_dir, ec);
    fs::remove(options_.record, ec);
  }

  std::unique_ptr<BatchSystem> system_;
  BatchFactoryOptions options_;
  std::map<std::string, BatchJob> jobs_;          // by job id: every job queued or running
  std::map<std::string, std::string> by_worker_;  // worker name -> job id
  std::vector<std::string> pending_keys_;         // issued for a submission under way
  std::set<std::string> present_;                 // our workers joined now, by name
  struct Leaving {
    JobKey key;
    double deadline_s = 0;
  };
  std::map<std::string, Leaving> leaving_;  // by worker name: joined, its job over
  std::uint64_t key_batches_ = 0;           // submissions keys were issued for
  std::uint64_t next_order_ = 0;
  double next_poll_s_ = 0;
  double last_submission_s_ = -std::numeric_limits<double>::infinity();  // or refusal
  bool poll_ok_ = true;
  std::uint64_t submissions_ = 0;  // accepted
  int refused_submissions_ = 0;    // in a row
  int failed_starts_ = 0;          // jobs in a row that ended before their worker joined
  int failed_submissions_ = 0;     // submissions in a row with such jobs
  std::uint64_t last_failed_submission_ = 0;
  std::tuple<int, int, int, int> reported_{-1, -1, -1, -1};
};

}  // namespace

std::unique_ptr<WorkerFactory> make_batch_workers(std::unique_ptr<BatchSystem> system,
                                                  BatchFactoryOptions options) {
  return std::make_unique<BatchWorkers>(std::move(system), std::move(options));
}

std::unique_ptr<WorkerFactory> make_factory(const std::string& kind,
                                            const FactorySettings& settings,
                                            const std::string& job_name, WorkerKeys keys) {
  BatchFactoryOptions options;
  if (settings.per_job_keys) {
    options.keys = std::move(keys);
    options.key_dir = settings.work_dir / "keys";
  }
  options.record = settings.work_dir / "jobs";
  options.manager_address = settings.manager;
  options.limits = {settings.min_workers, settings.max_workers, settings.inferences_per_worker};
  options.submit_batch = settings.submit_batch;
  options.submit_interval_s = settings.submit_interval_s;
  options.poll_interval_s = settings.poll_interval_s;
  CommandRunner run = [](const std::vector<std::string>& argv) { return run_command(argv); };
  std::unique_ptr<BatchSystem> system;
  if (kind == "local") {
    system = make_local_batch(settings);
  } else if (kind == "slurm") {
    system = make_slurm(settings, job_name, run);
  } else if (kind == "htcondor") {
    system = make_htcondor(settings, job_name, run);
  } else {
    throw std::invalid_argument("no factory kind " + kind);
  }
  return make_batch_workers(std::move(system), std::move(options));
}

std::string reachable_address(const std::string& address) {
  std::string_view host = os::host_of(address);
  if (host != "0.0.0.0" && host != "[::]" && host != "*") return address;
  return os::host_name() + address.substr(host.size());
}

}  // namespace hearth::real
