#pragma once
// A run's status snapshot: what the manager writes to STATE/status.json about once a second and
// hands to ManagerOptions::on_status (docs/real-backend.md, "Watching a run"). This is the
// reader's side: the JSON text checked and turned into plain values, for `hearth status`, the
// status page's /metrics and their tests. Fields this reader does not know are ignored.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hearth::real {

struct StatusProgress {
  std::uint64_t total = 0;        // inferences in the job
  std::uint64_t done = 0;         // done so far, earlier runs included
  std::uint64_t done_before = 0;  // of which by earlier runs
  std::uint64_t given_up = 0;
  double rate_per_s = 0;        // over the last 60 s
  std::optional<double> eta_s;  // unknown: empty
};

struct StatusTasks {
  std::uint64_t running = 0, queued = 0, requeued = 0, failed_attempts = 0, given_up = 0,
                verified = 0, disagreements = 0;
};

struct StatusCounts {
  std::uint64_t joins = 0, losses = 0, notices = 0, quarantines = 0, stage_failures = 0,
                refused_connections = 0;
};

struct StatusBytes {
  double manager = 0, shared = 0, peer = 0;
};

struct StatusGpuType {
  std::string gpu_type;
  std::uint64_t workers = 0;
  std::uint64_t inferences = 0;
  double busy_s = 0;
  double per_s = 0;
};

struct StatusTask {
  std::uint64_t task = 0, attempt = 0;
  std::string context;
  std::uint64_t inferences = 0;
};

struct StatusWorker {
  std::uint64_t id = 0;
  std::string name, gpu_type, host;
  std::string state;  // loading, computing, idle, lost, quarantined
  double since_s = 0;
  std::optional<StatusTask> task;
  // Context names held on each tier.
  std::vector<std::string> gpu, host_memory, disk;
  std::uint64_t tasks_done = 0, tasks_failed = 0, inferences = 0;
  std::optional<double> speed;  // inferences/s while computing, once measured
  std::string quarantined;      // why, when quarantined
  std::optional<double> left_s;
};

struct StatusTransfer {
  std::string worker, context, tier, source, from;  // from: the serving peer, or empty
  double bytes = 0;
  double started_s = 0;
};

struct StatusSegment {
  std::string worker, state;
  double start_s = 0, end_s = 0;  // an open segment ends at the snapshot's elapsed_s
};

struct StatusError {
  double t_s = 0;
  std::string worker, what;
};

struct StatusSnapshot {
  int version = 0;
  std::string job, state_dir;
  std::uint64_t run = 0;
  std::int64_t pid = 0;   // the manager's
  double updated_at = 0;  // unix seconds
  double elapsed_s = 0;
  std::string ended;  // empty while running; else finished, stopped, no_workers or failed
  std::string end_reason;
  StatusProgress progress;
  StatusTasks tasks;
  StatusCounts counts;
  StatusBytes bytes;
  std::vector<StatusGpuType> gpu_types;
  std::vector<StatusWorker> workers;
  std::vector<StatusTransfer> transfers;
  std::vector<StatusSegment> timeline;
  std::vector<StatusError> errors;
};

// The snapshot in `text`. Throws InputError "WHERE: FIELD: what is wrong" (WHERE names the file)
// for text that is not JSON, a version other than 1, or a field missing or of the wrong type.
StatusSnapshot parse_status(const std::string& text, const std::string& where);

}  // namespace hearth::real
