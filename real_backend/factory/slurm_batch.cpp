#include "real_backend/factory/slurm_batch.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>

#include "traces/text.hpp"

namespace hearth::real {

namespace {

namespace fs = std::filesystem;

// squeue's states (long form) for jobs that are waiting to start, and for jobs that are over or
// about to be (their worker has left or is being killed).
const std::set<std::string> kQueued = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                                       "SPECIAL_EXIT"};
const std::set<std::string> kOver = {"COMPLETING", "COMPLETED",     "CANCELLED", "FAILED",
                                     "TIMEOUT",    "PREEMPTED",     "NODE_FAIL", "BOOT_FAIL",
                                     "DEADLINE",   "OUT_OF_MEMORY", "REVOKED"};

class Slurm final : public BatchSystem {
 public:
  Slurm(FactorySettings settings, std::string job_name, CommandRunner run)
      : s_(std::move(settings)), job_name_(std::move(job_name)), run_(std::move(run)) {}

  std::string name() const override { return "slurm"; }

  void prepare(const std::string& manager_address) override {
    script_ = s_.work_dir / "slurm-worker.sh";
    fs::create_directories(s_.work_dir / "logs");
    std::string lines =
        "# A hearth worker, submitted to Slurm by `hearth run`.\n"
        "if [ -n \"${SLURM_ARRAY_JOB_ID:-}\" ]; then\n"
        "  job=\"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n"
        "else\n"
        "  job=\"$SLURM_JOB_ID\"\n"
        "fi\n";
    std::string keys = shell_quote(s_.keys.string());
    if (s_.per_job_keys) {
      lines +=
          "# Its own key: $1 holds one per job of the submission, named by array task or by $2.\n"
          "keys=\"$1/${SLURM_ARRAY_TASK_ID:-$2}.key\"\n";
      keys = "\"$keys\"";
    }
    write_text_file(script_, worker_script(s_, manager_address, keys, lines, "slurm-", s_.cache),
                    true);
  }

  std::vector<std::string> submit(int count, const fs::path& key_dir) override {
    if (key_dir.empty() == s_.per_job_keys) {
      throw std::logic_error("slurm: per-job keys and the job script disagree");
    }
    std::vector<std::string> jobs;
    if (s_.slurm.array) {
      std::string id = sbatch(count, key_dir, -1);
      for (int i = 0; i < count; ++i)
        jobs.push_back(fmt::format("{}_{}", id, i));
      return jobs;
    }
    for (int i = 0; i < count; ++i) {
      try {
        jobs.push_back(sbatch(1, key_dir, i));
      } catch (const BatchError& e) {
        if (jobs.empty()) throw;
        spdlog::error("{}", e.what());
        break;
      }
    }
    return jobs;
  }

  std::map<std::string, BatchJobStatus> poll(const std::vector<std::string>& jobs) override {
    std::set<std::string> asked(jobs.begin(), jobs.end());
    std::set<std::string> submissions;  // array job ids cover all their tasks
    for (const std::string& j : jobs)
      submissions.insert(j.substr(0, j.find('_')));
    std::string list;
    for (const std::string& id : submissions)
      list += (list.empty() ? "" : ",") + id;
    CommandResult r = run_({"squeue", "--noheader", "--array", "--jobs=" + list, "--format=%i %T"});
    std::map<std::string, BatchJobStatus> alive;
    if (r.status != 0) {
      // Asked only about jobs it has forgotten (they ended a while ago).
      if (r.err.find("Invalid job id specified") != std::string::npos) return alive;
      throw BatchError(fmt::format("squeue failed: {}", complaint(r)));
    }
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream words(line);
      std::string id, state;
      if (!(words >> id >> state) || !asked.count(id) || kOver.count(state)) continue;
      alive[id].state = kQueued.count(state) ? BatchJobState::queued : BatchJobState::running;
    }
    return alive;
  }

  void cancel(const std::vector<std::string>& jobs) override { cancel_jobs(run_, "scancel", jobs); }

  std::string worker_name(const std::string& job) const override { return "slurm-" + job; }

  std::string log_of(const std::string& job) const override {
    return (s_.work_dir / "logs" / ("slurm-" + job + ".log")).string();
  }

 private:
  // Submits one job (an array of `count` tasks, or the single job `index` of its submission) and
  // returns its id; its script's arguments name the submission's keys.
  std::string sbatch(int count, const fs::path& key_dir, int index) {
    std::vector<std::string> argv = {"sbatch", "--parsable", "--job-name=" + job_name_};
    fs::path logs = s_.work_dir / "logs";
    if (s_.slurm.array) {
      argv.push_back(fmt::format("--array=0-{}", count - 1));
      argv.push_back("--output=" + (logs / "slurm-%A_%a.log").string());
    } else {
      argv.push_back("--output=" + (logs / "slurm-%j.log").string());
    }
    argv.push_back("--chdir=" + s_.work_dir.string());
    if (!s_.slurm.partition.empty()) argv.push_back("--partition=" + s_.slurm.partition);
    if (!s_.slurm.qos.empty()) argv.push_back("--qos=" + s_.slurm.qos);
    if (!s_.slurm.account.empty()) argv.push_back("--account=" + s_.slurm.account);
    if (!s_.slurm.gres.empty()) {
      argv.push_back("--gres=" + s_.slurm.gres);
    } else if (s_.gpus > 0) {
      argv.push_back(fmt::format("--gres=gpu:{}", s_.gpus));
    }
    argv.push_back(fmt::format("--cpus-per-task={}", s_.cpus));
    if (s_.memory_mb > 0) argv.push_back(fmt::format("--mem={}", s_.memory_mb));
    if (s_.disk_mb > 0) argv.push_back(fmt::format("--tmp={}", s_.disk_mb));
    if (s_.time_limit_s > 0) {
      argv.push_back(fmt::format("--time={}", static_cast<long>(std::ceil(s_.time_limit_s / 60))));
    }
    argv.insert(argv.end(), s_.slurm.sbatch_args.begin(), s_.slurm.sbatch_args.end());
    argv.push_back(script_.string());
    if (!key_dir.empty()) {
      argv.push_back(key_dir.string());
      if (index >= 0) argv.push_back(std::to_string(index));
    }
    CommandResult r = submit_or_throw(run_, argv);
    // --parsable prints "ID" or "ID;CLUSTER".
    std::string id(traces::trim(r.out));
    id = id.substr(0, id.find_first_of(";\n"));
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) {
      throw BatchError(fmt::format("sbatch printed \"{}\", not a job id", traces::trim(r.out)));
    }
    return id;
  }

  FactorySettings s_;
  std::string job_name_;
  CommandRunner run_;
  fs::path script_;
};

}  // namespace

std::unique_ptr<BatchSystem> make_slurm(FactorySettings settings, std::string job_name,
                                        CommandRunner run) {
  return std::make_unique<Slurm>(std::move(settings), std::move(job_name), std::move(run));
}

}  // namespace hearth::real
