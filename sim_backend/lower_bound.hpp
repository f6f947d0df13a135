#pragma once
// A makespan no policy can beat on a given trace and workload (docs/simulator.md, "The lower
// bound"): the earliest time T by which the GPU capacity the trace makes available covers all
// the inference work, when every stretch of up time a GPU spends working first pays one
// uncontended context load.
//
//   capacity(T) = sum over up intervals [u, d) of worker i:
//                   rate_i * max(0, min(T, d) - u - load_i)
//   rate_i      = B / (per_batch_s + B * per_inference_s)   inferences per second of i's type,
//                 B = the largest batch the run may use (batch size, at most a context's work)
//   load_i      = the fastest way to bring the cheapest context to i's GPU with nothing else
//                 running: latency + size / min(source link, i's link, i's disk write), the
//                 source being shared storage or the fastest peer, then size / disk_read_Bps,
//                 size / host_to_gpu_Bps and init_s
//   lower bound = min { T : capacity(T) >= total inferences }
//
// Every real run does at least this: tasks of at most B inferences, loads that share links and
// shared storage, a load at each join before any work, work lost to preemptions.

#include <cstdint>

#include "sim_backend/scenario.hpp"

namespace hearth::sim {

// +inf when the trace never offers enough capacity (no worker stays up at its end).
double lower_bound_s(const Scenario& scenario);

// The uncontended time to bring a context to a worker of `type` from nothing (load_i above).
double best_load_s(const Scenario& scenario, const GpuType& type);

}  // namespace hearth::sim
