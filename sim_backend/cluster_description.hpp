#pragma once
// A cluster description: what the simulated pool is made of. A user writes it as TOML or JSON
// (docs/cluster-description.md); sizes are bytes, bandwidths bytes per second, times seconds.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/model.hpp"

namespace hearth::sim {

// One kind of worker: a GPU and the machine around it. Workers of one type are alike.
struct GpuType {
  std::string name;  // as traces name it, e.g. "A100-40GB"
  double gpu_memory_bytes = 0;
  double host_memory_bytes = 0;
  double disk_bytes = 0;
  double disk_read_Bps = 0;   // local disk to host memory
  double disk_write_Bps = 0;  // every transfer into the worker lands on its disk
  double host_to_gpu_Bps = 0;
  double network_Bps = 0;  // the worker's link, each direction
  // A task of n inferences takes per_batch_s + n * per_inference_s once its context is on GPU.
  double per_batch_s = 0;
  double per_inference_s = 0;

  double task_s(std::uint64_t inferences) const {
    return per_batch_s + static_cast<double>(inferences) * per_inference_s;
  }
};

struct ClusterDescription {
  std::string source;  // where it was read from, for messages
  std::vector<GpuType> gpu_types;
  // Speeds are relative to this type: speed = its per_inference_s / a type's per_inference_s.
  std::string reference_gpu;
  double latency_s = 0;  // between any two nodes (workers, manager, shared storage)
  double manager_network_Bps = 0;
  double shared_storage_Bps = 0;          // all readers together
  double output_bytes_per_inference = 0;  // sent back to the manager after each task

  // nullptr when there is no such type.
  const GpuType* find(std::string_view name) const;
  const GpuType& reference() const;
  double speed(const GpuType& type) const;
  // What a worker of this type tells the core (id and name left to the caller).
  WorkerSpec worker_spec(const GpuType& type) const;
};

// Throws InputError ("file: key x.y: what") for a description that is malformed or incomplete.
ClusterDescription load_cluster_description(const std::string& path);

}  // namespace hearth::sim
