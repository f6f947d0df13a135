#pragma once
// Every field of a simulated run's summary, once, by the name summary.json gives it: the JSON of
// report.cpp and the bytes one process sends another (result_codec.cpp) are both made from it.
// Includes nlohmann/json: for sim_backend/'s .cpp files only.

#include <nlohmann/json.hpp>

#include "sim_backend/results.hpp"

namespace hearth::sim {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(GpuSeconds, available, computing, loading, idle, lost)

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Summary, scenario, placement, eviction, granularity, replication,
                                   batch_size, seed, detection_delay_s, finished, makespan_s,
                                   lower_bound_s, inferences_total, inferences_done, tasks_done,
                                   attempts, backups, tasks_requeued, preemptions, notices,
                                   stage_failures, evictions, context_loads, shared_storage_bytes,
                                   peer_bytes, output_bytes, gpu_seconds, workers, trace_events,
                                   wall_s, setup_wall_s)

}  // namespace hearth::sim
