#include "real_backend/factory/htcondor_batch.hpp"

#include <fmt/format.h>

#include <regex>
#include <set>
#include <sstream>

#include "traces/text.hpp"

namespace hearth::real {

namespace {

namespace fs = std::filesystem;

// One argument in condor_submit's quoted `arguments` syntax: in single quotes (each ' and "
// doubled) when it holds a space or a quote.
std::string condor_argument(const std::string& text) {
  if (text.find_first_of(" \t'\"") == std::string::npos) return text;
  std::string quoted = "'";
  for (char c : text) {
    quoted += c;
    if (c == '\'' || c == '"') quoted += c;
  }
  return quoted + "'";
}

class HTCondor final : public BatchSystem {
 public:
  HTCondor(FactorySettings settings, std::string batch_name, CommandRunner run)
      : s_(std::move(settings)), batch_name_(std::move(batch_name)), run_(std::move(run)) {}

  std::string name() const override { return "htcondor"; }

  void prepare(const std::string& manager_address) override {
    fs::create_directories(s_.work_dir / "logs");
    std::string cache =
        s_.cache.empty() ? "${_CONDOR_SCRATCH_DIR:-${TMPDIR:-/tmp}}/hearth-cache" : s_.cache;
    write_text_file(s_.work_dir / "htcondor-worker.sh",
                    worker_script(s_, manager_address, "\"$keys\"",
                                  "# A hearth worker, submitted to HTCondor by `hearth run`.\n"
                                  "job=\"$1\"  # CLUSTER.PROC\n"
                                  "keys=\"$2\"  # its key file\n",
                                  "condor-", cache),
                    true);
  }

  std::vector<std::string> submit(int count, const fs::path& key_dir) override {
    fs::path description = s_.work_dir / "htcondor-worker.sub";
    write_text_file(description, submit_description(count, key_dir));
    std::vector<std::string> argv = {"condor_submit", "-terse", description.string()};
    CommandResult r = submit_or_throw(run_, argv);
    // -terse prints "CLUSTER.FIRST - CLUSTER.LAST".
    static const std::regex range(R"((\d+)\.(\d+) - (\d+)\.(\d+))");
    std::smatch m;
    std::string out(traces::trim(r.out));
    if (!std::regex_search(out, m, range) || m[1] != m[3]) {
      throw BatchError(fmt::format("condor_submit printed \"{}\", not job ids", out));
    }
    std::vector<std::string> jobs;
    for (long proc = std::stol(m[2]); proc <= std::stol(m[4]); ++proc)
      jobs.push_back(fmt::format("{}.{}", m[1].str(), proc));
    return jobs;
  }

  std::map<std::string, BatchJobStatus> poll(const std::vector<std::string>& jobs) override {
    std::set<std::string> asked(jobs.begin(), jobs.end());
    std::set<std::string> clusters;
    for (const std::string& j : jobs)
      clusters.insert(j.substr(0, j.find('.')));
    std::vector<std::string> argv = {"condor_q"};
    argv.insert(argv.end(), clusters.begin(), clusters.end());
    for (const char* a : {"-af:j", "JobStatus", "HoldReason"})
      argv.push_back(a);
    CommandResult r = run_(argv);
    if (r.status != 0) throw BatchError(fmt::format("condor_q failed: {}", complaint(r)));
    std::map<std::string, BatchJobStatus> alive;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream words(line);
      std::string id;
      int status = 0;
      if (!(words >> id >> status) || !asked.count(id)) continue;
      // BatchJobStatus: 1 idle, 2 running, 3 removed, 4 completed, 5 held, 6 transferring output,
      // 7 suspended.
      if (status == 3 || status == 4) continue;
      BatchJobStatus& s = alive[id];
      if (status == 1) {
        s.state = BatchJobState::queued;
      } else if (status == 5) {
        s.state = BatchJobState::held;
        std::getline(words >> std::ws, s.reason);
      } else {
        s.state = BatchJobState::running;
      }
    }
    return alive;
  }

  void cancel(const std::vector<std::string>& jobs) override {
    cancel_jobs(run_, "condor_rm", jobs);
  }

  std::string worker_name(const std::string& job) const override { return "condor-" + job; }

  std::string log_of(const std::string& job) const override {
    return (s_.work_dir / "logs" / ("condor-" + job + ".err")).string();
  }

 private:
  // Job i of the cluster (ProcId i) dials with key_dir/i.key, or with the shared key.
  std::string submit_description(int count, const fs::path& key_dir) const {
    std::string d = "# hearth workers, submitted to HTCondor by `hearth run`\n";
    auto line = [&](const std::string& key, const std::string& value) {
      d += key + " = " + value + "\n";
    };
    fs::path key = key_dir.empty() ? s_.keys : key_dir / "$(ProcId).key";
    // A transferred key lands in the job's scratch directory, where the job starts.
    std::string key_arg = s_.htcondor.transfer_keys ? key.filename().string() : key.string();
    line("universe", "vanilla");
    line("executable", (s_.work_dir / "htcondor-worker.sh").string());
    line("arguments", "\"$(ClusterId).$(ProcId) " + condor_argument(key_arg) + "\"");
    line("initialdir", s_.work_dir.string());
    line("batch_name", batch_name_);
    line("output", "logs/condor-$(ClusterId).$(ProcId).out");
    line("error", "logs/condor-$(ClusterId).$(ProcId).err");
    line("log", "logs/condor.log");
    line("should_transfer_files", "YES");
    line("when_to_transfer_output", "ON_EXIT_OR_EVICT");
    if (s_.htcondor.transfer_keys) line("transfer_input_files", key.string());
    line("request_cpus", std::to_string(s_.cpus));
    if (s_.memory_mb > 0) line("request_memory", fmt::format("{}M", s_.memory_mb));
    if (s_.disk_mb > 0) line("request_disk", fmt::format("{}M", s_.disk_mb));
    if (s_.gpus > 0) line("request_gpus", std::to_string(s_.gpus));
    if (!s_.htcondor.requirements.empty()) line("requirements", s_.htcondor.requirements);
    if (s_.time_limit_s > 0) {
      line("allowed_job_duration", std::to_string(static_cast<long>(s_.time_limit_s)));
    }
    for (const std::string& extra : s_.htcondor.submit_lines)
      d += extra + "\n";
    return d + fmt::format("queue {}\n", count);
  }

  FactorySettings s_;
  std::string batch_name_;
  CommandRunner run_;
};

}  // namespace

std::unique_ptr<BatchSystem> make_htcondor(FactorySettings settings, std::string batch_name,
                                           CommandRunner run) {
  return std::make_unique<HTCondor>(std::move(settings), std::move(batch_name), std::move(run));
}

}  // namespace hearth::real
