#pragma once
// A batch system as hearth's factory uses it: submit workers as jobs, learn which of them are still
// there, cancel them. Slurm (slurm_batch.hpp), HTCondor (htcondor_batch.hpp) and processes on this
// machine (local_batch.hpp) implement it; batch_factory.hpp decides when to call what.

#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "os/process.hpp"
#include "real_backend/factory/batch_settings.hpp"

namespace hearth::real {

// A batch system refused a command or could not be asked; the message carries its error output.
class BatchError : public std::runtime_error {
 public:
  explicit BatchError(const std::string& what) : std::runtime_error(what) {}
};

enum class BatchJobState {
  queued,   // waiting for resources: counts as a worker asked for, and can be withdrawn
  running,  // started: its worker has joined or is starting
  held,     // will not run unless someone acts (HTCondor's hold): the factory removes it
};

struct BatchJobStatus {
  BatchJobState state = BatchJobState::queued;
  std::string reason;  // why it is held
};

class BatchSystem {
 public:
  virtual ~BatchSystem() = default;
  // "slurm", "htcondor", "local": in messages and in the record of submitted jobs.
  virtual std::string name() const = 0;
  // Called once before any submission, with the address workers dial ("host:port"): writes the
  // worker's job script or submit description.
  virtual void prepare(const std::string& manager_address) = 0;
  // Submits `count` (>= 1) workers, one job each, and returns the jobs' ids, the i-th job's worker
  // dialing with the key file key_dir/i.key (with the settings' shared key file if key_dir is
  // empty). Fewer ids than `count` when it accepted only the first ones. Throws BatchError with
  // the batch system's own message if it accepted none.
  virtual std::vector<std::string> submit(int count, const std::filesystem::path& key_dir) = 0;
  // The jobs among `jobs` that the batch system still holds, queued or running; a job missing
  // from the answer has ended. Throws BatchError if the batch system cannot be asked.
  virtual std::map<std::string, BatchJobStatus> poll(const std::vector<std::string>& jobs) = 0;
  // Asks the batch system to end these jobs (a preemption notice for a running worker). Errors
  // are logged, not thrown: a job may have ended meanwhile.
  virtual void cancel(const std::vector<std::string>& jobs) = 0;
  // The name a job's worker joins the manager with.
  virtual std::string worker_name(const std::string& job) const = 0;
  // Where a job's own output goes, for messages about it.
  virtual std::string log_of(const std::string& job) const = 0;
};

using os::CommandResult;
using os::run_command;

// How batch systems run their commands: os::run_command, or a fake in tests.
using CommandRunner = std::function<CommandResult(const std::vector<std::string>& argv)>;

// What a failed command said: its error output (else its output, else its exit status), trimmed.
std::string complaint(const CommandResult& result);

// Runs a command that submits workers; throws BatchError, with what it said and the command, if
// it fails.
CommandResult submit_or_throw(const CommandRunner& run, const std::vector<std::string>& argv);

// Runs `command jobs...` to cancel jobs (nothing if there are none); a failure is only logged:
// the jobs may have ended already.
void cancel_jobs(const CommandRunner& run, const std::string& command,
                 const std::vector<std::string>& jobs);

// "sbatch --parsable ..." for messages; each argument quoted if it needs to be.
std::string command_line(const std::vector<std::string>& argv);

// `text` as one word of a POSIX shell command, in single quotes when it needs them.
std::string shell_quote(const std::string& text);

// The shell script a worker's job runs: `job_lines` set $job to the job's id, then it execs
// `settings.hearth worker`, dialing `manager_address` with the key file `keys` (a shell word, as
// "\"$keys\"" or shell_quote(path)), named `name_prefix` + $job,
// with --cache `cache` (expanded by the shell; none if empty) and the settings' worker_args.
// SIGTERM from the batch system then reaches the worker itself: a preemption notice.
std::string worker_script(const FactorySettings& settings, const std::string& manager_address,
                          const std::string& keys, const std::string& job_lines,
                          const std::string& name_prefix, const std::string& cache);

// Writes `text` to `path`, whole or not at all, with mode 0755 (0644 unless executable), replacing
// what was there and creating its folder.
void write_text_file(const std::filesystem::path& path, const std::string& text,
                     bool executable = false);

}  // namespace hearth::real
