#pragma once
// The thin layer between hearth and the SimGrid calls that SimGrid 4 renamed (platform building,
// model settings, hosts going on and off). Moving to SimGrid 4 touches simgrid_shim.cpp only; the
// activities and actors that sim_cluster.cpp uses kept their names.
//
// The platform (docs/simulator.md, "The model"): a star. Every node hangs off one center by its
// own link; a transfer from A to B crosses A's link up and B's link down, so it is limited by the
// slower of the two and shares each with the other transfers crossing it.
//   worker    a host (speed 1: an execution of x flops takes x seconds), its network link
//             (split duplex, network_Bps each way), a disk-write link on its way in (every
//             transfer into a worker lands on its local disk), a local disk (disk_read_Bps) and
//             a "pcie" disk whose reads are the host-to-GPU copies (host_to_gpu_Bps).
//   storage   shared storage: one link of shared_storage_Bps that all readers share.
//   manager   the manager's host and link (task outputs go there).
// Every route has latency_s in all: half on each end's link.

#include <simgrid/forward.h>

#include <string>
#include <vector>

#include "sim_backend/cluster_description.hpp"

namespace hearth::sim {

struct WorkerHost {
  simgrid::s4u::Host* host = nullptr;
  simgrid::s4u::Disk* disk = nullptr;  // local disk, read into host memory
  simgrid::s4u::Disk* pcie = nullptr;  // host memory to GPU memory
};

struct Platform {
  simgrid::s4u::Host* manager = nullptr;
  simgrid::s4u::Host* storage = nullptr;
  std::vector<WorkerHost> workers;  // indexed by WorkerId
};

struct PlannedWorker {
  std::string name;
  const GpuType* type = nullptr;
};

// Model settings that make bandwidth sharing plain max-min fairness with no correction factors
// (so that hand-computed times are exact). Call after creating the engine, before the platform.
void configure_models();

// Builds the whole platform and seals it. Every host starts on.
Platform build_platform(const ClusterDescription& cluster,
                        const std::vector<PlannedWorker>& workers);

void set_host_on(simgrid::s4u::Host* host, bool on);

}  // namespace hearth::sim
