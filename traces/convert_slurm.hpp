#pragma once
// Converts Slurm accounting into a trace: `sacct --parsable2 -a -X -o
// JobID,Partition,State,Start,End,NodeList,AllocTRES` over the jobs of a preemptible partition.
// Each job that started held its GPUs from Start to End: its GPUs are workers (slurm-JOBID, or
// slurm-JOBID/gpuN for a job of several), up at its start and down at its end, the down carrying
// the job's end state (slurm_state=PREEMPTED, COMPLETED, CANCELLED, ...); a job still running
// stays up to the trace's end (traces/FORMAT.md, "Slurm accounting").

#include <string>
#include <string_view>

#include "traces/trace.hpp"

namespace hearth::traces {

struct SlurmOptions {
  std::string gpu_type;   // every worker's; empty: the GRES type in AllocTRES (gres/gpu:a100=2)
  std::string partition;  // only this partition's jobs (with a Partition column); empty: all
  double max_at_once = kMostWorkersAtOnce;    // trace.hpp
  std::size_t max_events = kMostCountEvents;  // trace.hpp
};

// Times are sacct's (local, as printed), counted from the first start; the trace ends at the
// last start or end. Throws InputError at the offending line for a missing header or column, a
// malformed time, a job without a GPU type, and a series where no job ever started.
Trace convert_slurm(std::string_view text, std::string_view source_name,
                    const SlurmOptions& options);

}  // namespace hearth::traces
