#pragma once
// What a simulated run yields: the summary `hearth simulate` prints, one row per task attempt, and
// each worker's timeline. Plain values; report.hpp writes them out.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "policy/model.hpp"

namespace hearth::sim {

// How a worker's up time was spent. Every second a worker is up is in exactly one state.
enum class GpuState : std::uint8_t {
  idle,       // up, nothing running, nothing arriving
  loading,    // no task running, a context on its way to one of its tiers
  computing,  // a task attempt running (inference and output transfer)
  lost,       // computing or loading since its last finished task, when it was preempted
};
const char* to_string(GpuState state);

struct GpuSeconds {
  double available = 0;  // up time, from each join to its loss or the end of the run
  double computing = 0;
  double loading = 0;
  double idle = 0;
  double lost = 0;

  // The seconds GPUs spent in `state`.
  double& in(GpuState state) {
    switch (state) {
      case GpuState::computing:
        return computing;
      case GpuState::loading:
        return loading;
      case GpuState::idle:
        return idle;
      case GpuState::lost:
        break;
    }
    return lost;
  }
};

struct Summary {
  std::string scenario;
  std::string placement;
  std::string eviction;
  std::string granularity;
  std::string replication;
  std::uint64_t batch_size = 0;
  std::uint64_t seed = 0;
  double detection_delay_s = 0;

  bool finished = false;  // every inference done; false when the pool could no longer progress
  double makespan_s =
      0;  // when the last inference was done (when the run stopped, if not finished)
  double lower_bound_s = 0;  // +inf when the trace never offers enough capacity
  std::uint64_t inferences_total = 0;
  std::uint64_t inferences_done = 0;
  std::uint64_t tasks_done = 0;
  std::uint64_t attempts = 0;
  std::uint64_t backups = 0;
  std::uint64_t tasks_requeued = 0;
  std::uint64_t preemptions = 0;
  std::uint64_t notices = 0;
  std::uint64_t stage_failures = 0;
  std::uint64_t evictions = 0;
  std::array<std::uint64_t, kLoadSourceCount> context_loads{};  // indexed by LoadSource
  double shared_storage_bytes = 0;  // read from shared storage by stages that completed
  double peer_bytes = 0;            // moved between workers by stages that completed
  double output_bytes = 0;
  GpuSeconds gpu_seconds;

  std::uint64_t workers = 0;       // distinct workers in the trace
  std::uint64_t trace_events = 0;  // trace rows replayed before the run ended
  double wall_s = 0;               // host time of the simulation proper (after set-up)
  double setup_wall_s = 0;         // host time to build the platform and the core
};

enum class AttemptOutcome : std::uint8_t {
  finished,
  cancelled,   // the core stopped it (a backup lost the race, or a notice)
  preempted,   // its worker was lost
  unfinished,  // still running when the run ended
};
const char* to_string(AttemptOutcome outcome);

// One attempt: the task spec the core started (task, attempt, context, first, count), on which
// worker, when, and how it ended.
struct AttemptRow : TaskSpec {
  WorkerId worker = 0;
  double start_s = 0;
  double end_s = 0;
  AttemptOutcome outcome = AttemptOutcome::unfinished;
};

struct Segment {
  WorkerId worker = 0;
  std::uint32_t incarnation = 0;  // 1 for the worker's first join, 2 after it came back, ...
  double start_s = 0;
  double end_s = 0;
  GpuState state = GpuState::idle;
};

struct SimResult {
  Summary summary;
  std::vector<std::string> worker_names;  // indexed by WorkerId
  std::vector<std::string> worker_types;
  std::vector<AttemptRow> attempts;  // in start order
  std::vector<Segment> timeline;     // in the order segments ended
  // With SimOptions::record_logs: what passed through the cluster interface, as the lines of
  // policy/command_log.hpp.
  std::vector<std::string> event_log;
  std::vector<std::string> command_log;
};

}  // namespace hearth::sim
