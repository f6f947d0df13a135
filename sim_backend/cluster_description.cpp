#include "sim_backend/cluster_description.hpp"

#include <fmt/format.h>

#include "policy/errors.hpp"
#include "sim_backend/cluster_description_reader.hpp"

namespace hearth::sim {

const GpuType* ClusterDescription::find(std::string_view name) const {
  for (const GpuType& t : gpu_types) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const GpuType& ClusterDescription::reference() const {
  const GpuType* t = find(reference_gpu);
  return t != nullptr ? *t : gpu_types.front();
}

double ClusterDescription::speed(const GpuType& type) const {
  return reference().per_inference_s / type.per_inference_s;
}

WorkerSpec ClusterDescription::worker_spec(const GpuType& type) const {
  WorkerSpec s;
  s.gpu_type = type.name;
  s.gpu_memory_bytes = type.gpu_memory_bytes;
  s.host_memory_bytes = type.host_memory_bytes;
  s.disk_bytes = type.disk_bytes;
  s.speed = speed(type);
  s.disk_read_Bps = type.disk_read_Bps;
  s.host_to_gpu_Bps = type.host_to_gpu_Bps;
  s.network_Bps = type.network_Bps;
  return s;
}

ClusterDescription read_cluster_description(const Node& node) {
  node.only_keys({"reference_gpu", "latency_s", "output_bytes_per_inference", "manager",
                  "shared_storage", "gpu_types"});
  ClusterDescription c;
  c.source = node.source();
  c.latency_s = node.non_negative_or("latency_s", 0.0);
  c.output_bytes_per_inference = node.non_negative_or("output_bytes_per_inference", 0.0);

  Node manager = node.table("manager");
  manager.only_keys({"network_Bps"});
  c.manager_network_Bps = manager.positive("network_Bps");

  Node storage = node.table("shared_storage");
  storage.only_keys({"bandwidth_Bps"});
  c.shared_storage_Bps = storage.positive("bandwidth_Bps");

  for (const auto& [name, t] : node.named_tables("gpu_types")) {
    t.only_keys({"gpu_memory_bytes", "host_memory_bytes", "disk_bytes", "disk_read_Bps",
                 "disk_write_Bps", "host_to_gpu_Bps", "network_Bps", "per_batch_s",
                 "per_inference_s"});
    GpuType g;
    g.name = name;
    g.gpu_memory_bytes = t.positive("gpu_memory_bytes");
    g.host_memory_bytes = t.positive("host_memory_bytes");
    g.disk_bytes = t.positive("disk_bytes");
    g.disk_read_Bps = t.positive("disk_read_Bps");
    g.disk_write_Bps = t.positive_or("disk_write_Bps", g.disk_read_Bps);
    g.host_to_gpu_Bps = t.positive("host_to_gpu_Bps");
    g.network_Bps = t.positive("network_Bps");
    g.per_batch_s = t.non_negative_or("per_batch_s", 0.0);
    g.per_inference_s = t.positive("per_inference_s");
    c.gpu_types.push_back(std::move(g));
  }
  if (c.gpu_types.empty()) node.fail("gpu_types", "describes no GPU type");

  c.reference_gpu = node.text_or("reference_gpu", c.gpu_types.front().name);
  if (c.find(c.reference_gpu) == nullptr) {
    node.fail("reference_gpu", fmt::format("'{}' is not one of gpu_types", c.reference_gpu));
  }
  return c;
}

ClusterDescription load_cluster_description(const std::string& path) {
  Document doc = read_document(path);
  return read_cluster_description(doc.top());
}

}  // namespace hearth::sim
