#pragma once
// Converts what an HTCondor pool said about itself over time into a trace: a series of
// `condor_status` snapshots, each the GPUs a user's job could have claimed at that moment. A slot
// offers its GPUs while it is Unclaimed (a partitionable slot: the GPUs it has not given to
// dynamic slots yet) or running backfill (Backfill, which a user's job preempts); Claimed, Owner,
// Matched, Preempting and Drained slots offer none. Each machine's offer is a count series, so
// its GPUs are workers MACHINE/gpu1, MACHINE/gpu2, ..., the most recently offered leaving first
// when the offer drops (traces/FORMAT.md, "HTCondor").
//
// Two shapes, told apart by the first character:
// - `condor_status -json` output, one JSON array of machine ads per snapshot, appended to one
//   file; a snapshot's time is the latest MyCurrentTime or LastHeardFrom of its ads;
// - `date +%s; condor_status -af Name State Activity GPUs [GPUs_DeviceName]`, appended: a line
//   with one number (the snapshot's time, in seconds) starts a snapshot, each other line is one
//   slot (what `hearth trace record --htcondor` keeps beside its trace).
// Times are counted from the first snapshot; the trace ends at the last one.

#include <string>
#include <string_view>

#include "traces/trace.hpp"

namespace hearth::traces {

struct HtcondorOptions {
  // Every worker's GPU type. Empty: a machine's GPUs_DeviceName (condor_gpu_discovery's), which
  // -json snapshots carry on GPU machines; a snapshot without it is an error.
  std::string gpu_type;
  double max_at_once = kMostWorkersAtOnce;    // trace.hpp
  std::size_t max_events = kMostCountEvents;  // trace.hpp
};

// Throws InputError at the offending line for malformed snapshots, time going backwards, and a
// series where no GPU is ever offered.
Trace convert_htcondor(std::string_view text, std::string_view source_name,
                       const HtcondorOptions& options);

}  // namespace hearth::traces
